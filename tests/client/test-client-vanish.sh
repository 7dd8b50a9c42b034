#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The vanishing port (issue 17): a USB-serial port that goes away less than
# DIAGNOSE_VANISH_USEC (2 s) after it appeared while brltty is installed is logged with
# the cause and the fix, and GetPort's NotFound for it (info PORT, exit 5) says the same.
# A port that lived longer, or one that vanished without brltty, is not blamed on brltty.
#
# brltty is made "installed" for this test only, with no knob in the daemon: the test runs
# in a private mount namespace and bind-mounts over /usr/lib/udev/rules.d a copy of it
# with 85-brltty.rules added (one of the files diagnose_brltty_installed() looks for).

# Re-run in a private mount namespace: the bind mount goes with it when the test ends.
if [ "${STM32ISP_TEST_IN_MOUNT_NS:-}" != 1 ]; then
        if ! command -v unshare >/dev/null || ! unshare -m --propagation private true 2>/dev/null; then
                echo "SKIP: no private mount namespace here (unshare -m needs root or CAP_SYS_ADMIN)" >&2
                exit 77
        fi
        STM32ISP_TEST_IN_MOUNT_NS=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
fi

. "$(dirname "$0")/test-client-lib.sh"
need_daemon
RULES=/usr/lib/udev/rules.d
[ -d "$RULES" ] || skip "no $RULES to add brltty's udev rules to"

# brltty_installed: what the daemon's check sees (daemon/core/diagnose.c).
brltty_installed() {
        local f
        for f in /usr/bin/brltty /bin/brltty {/usr,}/lib/udev/rules.d/{85-brltty,90-brltty-device}.rules; do
                [ -e "$f" ] && return 0
        done
        return 1
}

start_bus
start_daemon --board ttyUSB0=0x466
monitor_start

# plug_unplug NAME: a board that appears and goes away as soon as the daemon has it.
plug_unplug() {
        control "add $1=0x466" >/dev/null
        monitor_wait "\"event\":\"added\".*\"port\":\"/dev/$1\""
        control "remove $1" >/dev/null
        # The daemon judges the port before it drops it (and InterfacesRemoved is sent).
        monitor_wait "\"event\":\"removed\".*\"port\":\"/dev/$1\""
}

# not_blamed NAME WHY: the port is simply not found, and brltty is not named.
not_blamed() {
        local rc=0
        ctl info "$1" 2>"$TMPDIR/err" || rc=$?
        [ $rc = 5 ] || fail "$2: exit $rc ($(cat "$TMPDIR/err"))"
        grep -q "No port $1" "$TMPDIR/err" || fail "$2: $(cat "$TMPDIR/err")"
        ! grep -q brltty "$TMPDIR/err" || fail "$2: blamed on brltty: $(cat "$TMPDIR/err")"
        ! grep -q "/dev/$1 went away" "$TMPDIR/daemon.log" || fail "$2: blamed in the log"
}

# 1. without brltty, a port that vanishes at once is just gone
if brltty_installed; then
        echo "brltty is installed on this system: the check without it is left out"
else
        plug_unplug ttyUSB1
        not_blamed ttyUSB1 "without brltty"
fi

# brltty installed, for this namespace (the daemon's) only
mkdir "$TMPDIR/rules.d"
cp -a "$RULES/." "$TMPDIR/rules.d/"
echo '# brltty, as the test places it: nothing reads it' >"$TMPDIR/rules.d/85-brltty.rules"
mount --bind "$TMPDIR/rules.d" "$RULES" || skip "cannot bind-mount over $RULES"
[ -e "$RULES/85-brltty.rules" ] || fail "the bind mount did not take"

# 2. a port that lived longer than DIAGNOSE_VANISH_USEC is not brltty's doing. The time
# that passes is what is tested here: a sleep, not a synchronisation.
control "add ttyUSB2=0x466" >/dev/null
monitor_wait '"event":"added".*"port":"/dev/ttyUSB2"'
sleep 2.5
control "remove ttyUSB2" >/dev/null
monitor_wait '"event":"removed".*"port":"/dev/ttyUSB2"'
not_blamed ttyUSB2 "after 2.5 s"

# 3. the port that brltty takes: gone within 2 s of appearing, logged with cause and fix
plug_unplug ttyUSB3
line=$(grep "/dev/ttyUSB3 went away" "$TMPDIR/daemon.log") || fail "the vanished port is not in the log"
echo "$line" | grep -Eq "/dev/ttyUSB3 went away [01]\.[0-9] s after it appeared, and brltty is installed: " ||
        fail "log: $line"
echo "$line" | grep -q "Remove it ('apt remove brltty') or disable its udev rules (85-brltty.rules, 90-brltty-device.rules), then plug the adapter in again" ||
        fail "log: no fix: $line"
# and a client asking for it is told the same
rc=0; ctl info ttyUSB3 2>"$TMPDIR/err" || rc=$?
[ $rc = 5 ] || fail "vanished: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "NotFound" "$TMPDIR/err" || fail "vanished: $(cat "$TMPDIR/err")"
grep -Eq "No port ttyUSB3: /dev/ttyUSB3 went away [01]\.[0-9] s after it appeared, and brltty is installed" \
        "$TMPDIR/err" || fail "vanished: cause not named: $(cat "$TMPDIR/err")"
grep -q "Remove it ('apt remove brltty') or disable its udev rules" "$TMPDIR/err" ||
        fail "vanished: no fix: $(cat "$TMPDIR/err")"
rc=0; ctl --json info ttyUSB3 >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 5 ] || fail "vanished --json: exit $rc"
json_check "$TMPDIR/e.json" "j['error'] == 'io.github.Stm32Isp1.Error.NotFound' and j['exit_code'] == 5 and 'apt remove brltty' in j['message']"
# the long-lived port is still not blamed now that a vanished one is remembered
not_blamed ttyUSB2 "after 2.5 s, with another port blamed"

# an adapter that stays is a port like any other, brltty or not (the testbed names a
# board plugged in again anew)
control "add ttyUSB4=0x466" >/dev/null
monitor_wait '"event":"added".*"port":"/dev/ttyUSB4"'
ctl info ttyUSB4 -q || fail "a port that stays"
monitor_stop
echo "OK"
