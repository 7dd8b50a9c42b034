#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A user's own daemon (stm32ispd --session, daemon/service/statedir.c) keeps its results log where
# the XDG Base Directory specification says, with no --state-dir: ~/.local/state/stm32ispd
# (made, private), or $XDG_STATE_HOME/stm32ispd; `stm32ispctl --user log` shows it with
# no options. --state-dir still wins.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
start_bus
# The session bus of this test, and a home of its own.
export DBUS_SESSION_BUS_ADDRESS="$BUS_ADDR"
export HOME="$TMPDIR/home"
unset XDG_STATE_HOME
mkdir -m 0755 "$HOME"

user_log() { # user_log: the --user log as JSON lines, no options
        "$CTL" --user --json log
}

DAEMON_ARGS=--session start_daemon --board ttyUSB0=0x466
"$CTL" --user -q info ttyUSB0 || fail "--user info"
LOG="$HOME/.local/state/stm32ispd/results.jsonl"
[ -f "$LOG" ] || fail "no $LOG: $(find "$HOME")"
for d in "$HOME/.local" "$HOME/.local/state" "$HOME/.local/state/stm32ispd"; do
        [ "$(stat -c %a "$d")" = 700 ] || fail "$d is mode $(stat -c %a "$d"), not 700"
done
user_log >"$TMPDIR/log.json" || fail "--user log"
json_check "$TMPDIR/log.json" 'j["operation"] == "probe" and j["result"] == "pass" and j["port"] == "/dev/ttyUSB0"'
stop_daemon

# $XDG_STATE_HOME, when set (absolute), is the base.
export XDG_STATE_HOME="$TMPDIR/xdg"
DAEMON_ARGS=--session start_daemon --board ttyUSB0=0x466
user_log >"$TMPDIR/log.json" || fail "--user log"
[ ! -s "$TMPDIR/log.json" ] || fail "the new base shows the old log: $(cat "$TMPDIR/log.json")"
"$CTL" --user -q erase ttyUSB0 || fail "--user erase"
[ "$(wc -l <"$XDG_STATE_HOME/stm32ispd/results.jsonl")" = 1 ] || fail "not logged under \$XDG_STATE_HOME"
[ "$(wc -l <"$LOG")" = 1 ] || fail "the old log changed"
stop_daemon

# --state-dir wins.
mkdir "$TMPDIR/explicit"
DAEMON_ARGS="--session --state-dir=$TMPDIR/explicit" start_daemon --board ttyUSB0=0x466
"$CTL" --user -q info ttyUSB0 || fail "--user info"
[ -s "$TMPDIR/explicit/results.jsonl" ] || fail "--state-dir was not used"
[ "$(wc -l <"$XDG_STATE_HOME/stm32ispd/results.jsonl")" = 1 ] || fail "\$XDG_STATE_HOME used despite --state-dir"
echo PASS
