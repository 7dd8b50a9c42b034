#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# authenticate.sh PASSWORD COMMAND...: COMMAND on a pseudo-terminal (script), as a user at a
# terminal runs it; when the text polkit agent that COMMAND starts there (stm32ispctl runs
# pkttyagent on a terminal) asks for a password, this types PASSWORD. Fails if COMMAND
# fails or no password was asked for. Used by tests/system/checks.sh in a user's session.
set -u
password=$1
shift

# The agent's terminal, once it turned echo off to read the password.
agent_reads_password() {
        local p tty
        for p in /proc/[0-9]*; do
                [ "$(cat "$p/comm" 2>/dev/null)" = pkttyagent ] || continue
                tty=$(readlink "$p/fd/0") || continue
                stty -F "$tty" -a 2>/dev/null | grep -qw -- -echo && return 0
        done
        return 1
}

coproc CMD { script -qfec "$(printf '%q ' "$@")" /dev/null 2>&1; }
exec {out}<&"${CMD[0]}" {in}>&"${CMD[1]}"
pid=$CMD_PID
asked=no
while IFS= read -r -d ':' -t 60 -u "$out" chunk; do
        printf '%s:' "$chunk"
        case "$chunk" in
        *Password)
                asked=yes
                break
                ;;
        esac
done
if [ $asked = yes ]; then
        # The prompt comes before the agent flushes the terminal's input: type after.
        for _ in $(seq 100); do
                agent_reads_password && break
                sleep 0.05
        done
        echo "$password" >&"$in"
fi
cat <&"$out"
rc=0
wait "$pid" || rc=$?
echo "asked for a password: $asked; the command exited $rc"
[ $asked = yes ] && [ $rc = 0 ]
