#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The checks of the system test, run inside the booted container by stm32isp-checks.service
# (tests/system/test-system.tap sets it up): the shipped files as `make install` put them,
# under systemd as PID 1. Each check prints one line to $RESULTS:
#   PASS name  |  FAIL name<TAB>why (the last lines of its output)  |  # comment
# and "PLAN n" first, so the host counts a check that never ran as failed.
set -u

TEST_DIR=/usr/lib/stm32isp-test
# shellcheck source=/dev/null
. "$TEST_DIR/env"               # the simulated boards (FAST_URL ...), WATCHDOG_SEC
RESULTS=/var/lib/stm32isp-test/results
LOG=/var/lib/stm32isp-test/checks.log
UNIT=stm32ispd.service
STATE_DIR=/var/lib/stm32ispd
CTL=stm32ispctl
mkdir -p /var/lib/stm32isp-test
: >"$RESULTS"
exec >>"$LOG" 2>&1

CHECKS=()
# check NAME FUNCTION: FUNCTION runs in a subshell with its output kept; it fails by
# exiting non-zero (`why`), the reason being its last output lines.
check() {
        CHECKS+=("$1|$2")
}

run_checks() {
        local c name fn out t0 rc
        echo "PLAN ${#CHECKS[@]}" >>"$RESULTS"
        for c in "${CHECKS[@]}"; do
                name=${c%%|*}
                fn=${c#*|}
                out=/var/lib/stm32isp-test/check.out
                t0=$EPOCHREALTIME
                echo "=== $name"
                rc=0
                ("$fn") >"$out" 2>&1 || rc=$?
                cat "$out"
                if [ $rc = 0 ]; then
                        echo "PASS $name" >>"$RESULTS"
                else
                        printf 'FAIL %s\t%s\n' "$name" "$(tail -n 3 "$out" | tr '\n' ' ')" >>"$RESULTS"
                fi
                echo "# $name: $(elapsed "$t0") s" >>"$RESULTS"
        done
}

elapsed() {
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

# why MESSAGE: the check fails, for this reason.
why() {
        echo "$*"
        exit 1
}

prop() {
        systemctl show -p "$1" --value "$UNIT"
}

# wait_until SECONDS COMMAND...: systemd state without a signal to wait on (a restart).
wait_until() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}

as_user() { # as_user USER [GROUPS] COMMAND...: GROUPS "" for none
        local user=$1 groups=$2
        shift 2
        setpriv --reuid="$user" --regid="$(id -g "$user")" \
                ${groups:+--groups="$groups"} ${groups:---clear-groups} "$@"
}

# ---- the service user, the udev rules

check_sysusers() {
        getent passwd stm32ispd || why "systemd-sysusers made no user stm32ispd"
        id -nG stm32ispd | tr ' ' '\n' | grep -qx dialout || why "stm32ispd is not in dialout: $(id stm32ispd)"
}
check "sysusers creates the user stm32ispd in dialout" check_sysusers

# systemd 252 has no `udevadm verify`: `udevadm test` reads every rules file and names the
# lines it cannot parse ("FILE:LINE Invalid key/value pair"). A copy with a bad key
# proves that the check sees such errors.
udev_errors() {
        udevadm test --action=add /sys/class/tty/tty0 2>&1 | grep -E "^$1:[0-9]+:? " || true
}
check_udev() {
        local rules
        rules=$(ls /usr/lib/udev/rules.d/*stm32ispd.rules) || why "no rules file installed"
        if udevadm verify --help >/dev/null 2>&1; then
                udevadm verify "$rules" || why "udevadm verify $rules failed"
                return 0
        fi
        udevadm test --action=add /sys/class/tty/tty0 2>&1 | grep -qF "Reading rules file: $rules" ||
                why "udevadm test did not read $rules"
        [ -z "$(udev_errors "$rules")" ] || why "udev cannot parse: $(udev_errors "$rules")"
        mkdir -p /etc/udev/rules.d
        local broken=/etc/udev/rules.d/${rules##*/}
        { cat "$rules"; echo 'SUBSYSTEM=="tty", STM32ISPD_BOGUS="1"'; } >"$broken"
        local seen
        seen=$(udev_errors "$broken")
        rm -f "$broken"
        [ -n "$seen" ] || why "the parse check does not see a broken line"
        echo "parse check catches: $seen"
}
check "the udev rules parse (udevadm)" check_udev

# ---- D-Bus activation

check_activation() {
        [ "$(prop ActiveState)" != active ] || why "stm32ispd runs before any client called"
        [ "$(prop Type)" = dbus ] || why "Type=$(prop Type)"
        $CTL list || why "stm32ispctl list failed"
        [ "$(prop ActiveState)" = active ] || why "not active after the call: $(prop ActiveState)"
        journalctl -b -u dbus.service -o cat |
                grep -F "Activating via systemd: service name='io.github.Stm32Isp1' unit='$UNIT'" ||
                why "the bus did not activate it through systemd"
        local pid
        pid=$(prop MainPID)
        [ "$(stat -c %U "/proc/$pid")" = stm32ispd ] || why "runs as $(stat -c %U "/proc/$pid")"
}
check "the first client call activates stm32ispd.service (Type=dbus)" check_activation

# ---- flashing over tcp:// under the hardened unit

check_flash_tcp() {
        $CTL --json flash "$FAST_URL" "$FAST_IMAGE" >/tmp/flash.json || why "flash failed: $(cat /tmp/flash.json)"
        cat /tmp/flash.json
        grep -q "\"bytes_written\": *$(stat -c %s "$FAST_IMAGE")" /tmp/flash.json || why "not every byte written"
}
check "the hardened unit flashes a board over tcp:// (the host checks the bytes)" check_flash_tcp

check_watchdog() {
        local pid restarts t0 took
        [ "$(prop WatchdogUSec)" = "${WATCHDOG_SEC}s" ] || why "WatchdogSec is $(prop WatchdogUSec)"
        pid=$(prop MainPID)
        restarts=$(prop NRestarts)
        t0=$EPOCHREALTIME
        $CTL -q flash "$SLOW_URL" "$SLOW_IMAGE" &
        # For the inhibitor check: logind's list while the job runs, and after.
        local client=$! rc=0
        wait_until 10 inhibited "$SLOW_URL" || true
        systemd-inhibit --list --no-pager >/tmp/inhibit.during 2>&1
        wait "$client" || rc=$?
        took=$(elapsed "$t0")
        systemd-inhibit --list --no-pager >/tmp/inhibit.after 2>&1
        [ $rc = 0 ] || why "the long flash failed"

        echo "the flash took $took s, WatchdogSec=$WATCHDOG_SEC"
        awk -v t="$took" -v w="$WATCHDOG_SEC" 'BEGIN { exit !(t > 1.5 * w) }' ||
                why "the flash ($took s) was not longer than 1.5 x WatchdogSec"
        [ "$(prop MainPID)" = "$pid" ] && [ "$(prop NRestarts)" = "$restarts" ] ||
                why "the service restarted during the flash"
        ! journalctl -b -u "$UNIT" -o cat | grep -i "watchdog timeout" || why "the watchdog fired"
}
check "a flash longer than WatchdogSec does not trip the watchdog" check_watchdog

inhibited() {
        systemd-inhibit --list --no-pager 2>/dev/null | grep -F "$1" | grep -q stm32ispd
}
check_inhibitor() {
        cat /tmp/inhibit.during
        grep -E "^ *stm32ispd .* sleep +flash on $SLOW_URL +block *$" /tmp/inhibit.during ||
                why "no sleep inhibitor (block) with the port in the reason during the flash"
        grep -E "^ *stm32ispd .* shutdown +flash on $SLOW_URL +delay *$" /tmp/inhibit.during ||
                why "no shutdown inhibitor (delay) during the flash"
        ! grep -q stm32ispd /tmp/inhibit.after || why "the inhibitors outlive the job: $(cat /tmp/inhibit.after)"
}
check "while a job runs, logind inhibits sleep (block) and shutdown (delay), the port in the reason" check_inhibitor

# ---- what the runs leave behind

check_results_log() {
        local log=$STATE_DIR/results.jsonl
        [ -f "$log" ] || why "no $log"
        ls -ld "$STATE_DIR" "$log"
        [ "$(stat -c %U "$STATE_DIR")" = stm32ispd ] && [ "$(stat -c %U "$log")" = stm32ispd ] ||
                why "not owned by stm32ispd"
        [ $((0$(stat -c %a "$log") & 07)) = 0 ] && [ $((0$(stat -c %a "$STATE_DIR") & 07)) = 0 ] ||
                why "others have access"
        ! as_user nobody "" cat "$log" >/dev/null 2>&1 || why "nobody can read $log"
        [ "$(grep -c '"result":"pass"' "$log")" -ge 2 ] || why "the two flashes are not logged"
}
check "the results log in StateDirectory is the service user's, unreadable to others" check_results_log

check_journal() {
        local sha entry
        sha=$(sha256sum "$FAST_IMAGE" | cut -d' ' -f1)
        entry=$(journalctl -b -u "$UNIT" -o verbose STM32ISP_OPERATION=flash STM32ISP_IMAGE_SHA256="$sha")
        echo "$entry"
        for f in "STM32ISP_PORT=$FAST_URL" STM32ISP_RESULT=pass STM32ISP_CHIP_PID= STM32ISP_UID= STM32ISP_BYTES_WRITTEN=; do
                echo "$entry" | grep -q "^ *$f" || why "no $f in the journal entry"
        done
}
check "journal entries carry the STM32ISP_* fields" check_journal

# ---- polkit: who may use the ports (dbus/io.github.stm32isp.policy, 60-stm32ispd.rules)

# The callers: op in dialout, guest in nothing, benchuser in a group a local rule grants
# the actions, desk at the machine (an active session on seat0, started below); root's
# password is what polkit asks desk for (the default admin identity).
ADMIN_PASSWORD=stm32isp-test
setup_users() {
        useradd --no-create-home --groups dialout op
        useradd --no-create-home guest
        groupadd bench
        useradd --no-create-home --groups bench benchuser
        useradd --create-home desk
        echo "root:$ADMIN_PASSWORD" | chpasswd
        mkdir -p /etc/polkit-1/rules.d
        cat >/etc/polkit-1/rules.d/40-bench.rules <<'RULES'
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("io.github.stm32isp.") == 0 && subject.isInGroup("bench"))
                return polkit.Result.YES;
});
RULES
}

# as USER COMMAND...: with the user's own groups, no session.
as() {
        local user=$1
        shift
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"
}

# in_session USER COMMAND...: in an active local session of USER (PAM, logind, seat0),
# as a desktop login would make it.
in_session() {
        local user=$1
        shift
        systemd-run --quiet --wait --pipe -p PAMName=login -p User="$user" -E XDG_SEAT=seat0 \
                -E XDG_SESSION_CLASS=user -E XDG_SESSION_TYPE=tty -E FAST_URL="$FAST_URL" -- "$@"
}

check_polkit_dialout() {
        as op $CTL --no-ask-password -q flash "$FAST_URL" "$FAST_IMAGE" || why "a member of dialout may not flash"
        [ "$(systemctl is-active polkit)" = active ] || why "polkitd did not answer (not running)"
}
check "polkit: root and a member of dialout may flash (the shipped rule)" check_polkit_dialout

check_polkit_refused() {
        local rc=0
        as guest $CTL --json info "$FAST_URL" >/tmp/guest.json 2>/tmp/guest.err || rc=$?
        cat /tmp/guest.err /tmp/guest.json
        [ $rc = 4 ] || why "exit $rc, not 4"
        grep -q '"error": *"org.freedesktop.DBus.Error.AccessDenied"' /tmp/guest.json || why "not AccessDenied"
        grep -q "add you to the group dialout, or to grant the action in a polkit rule" /tmp/guest.err ||
                why "the message does not say what to do"
}
check "polkit: a user outside dialout and any session is refused, told what to do" check_polkit_refused

check_polkit_rule() {
        as benchuser $CTL --no-ask-password -q flash "$FAST_URL" "$FAST_IMAGE" ||
                why "a member of bench, granted by /etc/polkit-1/rules.d/40-bench.rules, may not flash"
}
check "polkit: a group that a local rules file grants io.github.stm32isp.* may flash" check_polkit_rule

check_polkit_session() {
        local rc=0
        in_session desk $CTL --no-ask-password --json info "$FAST_URL" >/tmp/desk.json 2>/tmp/desk.err || rc=$?
        cat /tmp/desk.err /tmp/desk.json
        [ $rc = 4 ] || why "a non-interactive call from the session: exit $rc, not 4"
        grep -q '"error": *"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"' /tmp/desk.json ||
                why "not InteractiveAuthorizationRequired (a challenge), for a user at the machine"
        in_session desk "$TEST_DIR/authenticate.sh" "$ADMIN_PASSWORD" $CTL -q flash "$FAST_URL" "$FAST_IMAGE" ||
                why "the interactive flash with the administrator's password failed"
}
check "polkit: a user in an active local session is asked to authenticate (auth_admin_keep)" check_polkit_session

# ---- the unit itself

check_security() {
        local out score
        out=$(systemd-analyze security --no-pager "$UNIT") || true
        score=$(echo "$out" | sed -n "s/.*Overall exposure level for $UNIT: \([0-9.]*\).*/\1/p")
        echo "exposure: ${score:-?}"
        [ -n "$score" ] || why "no score: $(echo "$out" | tail -n 2)"
        awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || why "exposure $score > 2.0"
}
check "systemd-analyze security stm32ispd: exposure at most 2.0" check_security

restarted() {
        [ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" != 0 ] && [ "$(prop MainPID)" != "$1" ]
}
check_crash() {
        local pid restarts
        pid=$(prop MainPID)
        restarts=$(prop NRestarts)
        [ "$pid" != 0 ] || why "not running"
        systemctl kill --kill-who=main -s SEGV "$UNIT"
        wait_until 15 restarted "$pid" || why "no restart: $(systemctl status --no-pager "$UNIT" | tail -n 5)"
        [ "$(prop NRestarts)" = $((restarts + 1)) ] || why "NRestarts $(prop NRestarts)"
        $CTL list >/dev/null || why "the restarted service does not answer"
}
check "a crash (SIGSEGV) is followed by a restart" check_crash

check_stop() {
        local client took rc=0 path
        path=$(busctl call io.github.Stm32Isp1 /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager \
                       AddPort 'sa{sv}' "$STOP_URL" 0 | sed 's/^o "\(.*\)"$/\1/') || why "AddPort failed"
        $CTL -q flash "$STOP_URL" "$STOP_IMAGE" 2>/tmp/stop.err &
        client=$!
        writing() {
                busctl get-property io.github.Stm32Isp1 "$path" io.github.Stm32Isp1.Port State 2>/dev/null |
                        grep -q '"writing"'
        }
        wait_until 15 writing || why "the flash did not start"
        local t0=$EPOCHREALTIME
        systemctl stop "$UNIT"
        took=$(elapsed "$t0")
        wait "$client" || rc=$?
        echo "systemctl stop took $took s with a flash running; the client exited $rc: $(cat /tmp/stop.err)"
        awk -v t="$took" 'BEGIN { exit !(t < 2.0) }' || why "stop took $took s"
        [ "$(prop Result)" = success ] || why "Result=$(prop Result)"
        [ $rc != 0 ] || why "the interrupted flash reported success"
}
check "systemctl stop takes under 2 s, with a flash running" check_stop

setup_users
run_checks
echo "=== done"
journalctl -b --no-pager -o short-monotonic >/var/lib/stm32isp-test/journal.txt
