#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Named diagnoses, with their messages and exit codes: an adapter that drops parity
# (AdapterParity, 25: the sync answered, Get not, Get Version yes), a port another
# process holds (PortInUse, 24: named by pid and command; ModemManager with its fix).
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
start_bus
start_daemon --board ttyUSB0=0x466,parity=dropped --board ttyUSB1=0x466 --board ttyUSB2=0x466

# 1. parity dropped by the adapter: named, with what to do
rc=0; ctl info ttyUSB0 --trace "$TMPDIR/p.txt" 2>"$TMPDIR/err" || rc=$?
[ $rc = 25 ] || fail "parity: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "AdapterParity" "$TMPDIR/err" || fail "parity: $(cat "$TMPDIR/err")"
grep -q "does not seem to send even parity" "$TMPDIR/err" || fail "parity: $(cat "$TMPDIR/err")"
grep -q "FTDI or CP210x" "$TMPDIR/err" || fail "parity: no fix named: $(cat "$TMPDIR/err")"
# the trace shows the pattern: the sync and Get Version answered, Get not
grep -Eq '> 7f +sync$' "$TMPDIR/p.txt" || fail "parity trace: no sync"
grep -Eq 'no reply to Get before the deadline$' "$TMPDIR/p.txt" || fail "parity trace: Get answered?"
grep -Eq '> 01 fe +Get Version$' "$TMPDIR/p.txt" || fail "parity trace: no Get Version"
grep -A1 -E '> 01 fe +Get Version$' "$TMPDIR/p.txt" | grep -q ' ACK' || fail "parity trace: Get Version not ACKed"
rc=0; ctl --json info ttyUSB0 --trace "$TMPDIR/p2.json" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 25 ] || fail "parity --json: exit $rc"
json_check "$TMPDIR/e.json" "j['error'] == 'io.github.Stm32Isp1.Error.AdapterParity' and j['exit_code'] == 25"
json_check "$TMPDIR/p2.json" "[e[\"note\"] for e in j[\"events\"]][-1].startswith(\"probe failed: The adapter on /dev/ttyUSB0 does not seem to send even parity\")"
# the same board behind a good adapter works: nothing else is wrong
ctl info ttyUSB1 -q || fail "a good adapter"

# 2. a port another process holds (a lock on it, as picocom or pyserial's exclusive
# ports take): named by pid and command. The holder runs in the daemon's testbed.
daemon_pid=$(pgrep -P "$SIM_PID" | head -1)
[ -n "$daemon_pid" ] || fail "no daemon process"
hold() { # hold TTY NAME: a process called NAME holding /dev/TTY locked, until killed
        rm -f "$TMPDIR/held"
        # shellcheck disable=SC2046 # the testbed's environment, word by word
        env $(tr '\0' '\n' <"/proc/$daemon_pid/environ" | grep -E '^(LD_PRELOAD|UMOCKDEV_DIR|STM32SIM_SHIM_SOCKET)=') \
                python3 -c '
import ctypes, fcntl, os, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[2].encode(), 0, 0, 0)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[3], "w").close()
time.sleep(60)' "/dev/$1" "$2" "$TMPDIR/held" &
        HOLDER=$!
        for _ in $(seq 100); do [ -e "$TMPDIR/held" ] && return 0; sleep 0.1; done
        fail "the holder did not start"
}
hold ttyUSB2 minicom
rc=0; ctl info ttyUSB2 2>"$TMPDIR/err" || rc=$?
[ $rc = 24 ] || fail "held: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "PortInUse" "$TMPDIR/err" || fail "held: $(cat "$TMPDIR/err")"
grep -q "/dev/ttyUSB2 is held by pid $HOLDER (minicom): close it" "$TMPDIR/err" || fail "held: $(cat "$TMPDIR/err")"
grep -q "is held by pid $HOLDER (minicom)" "$TMPDIR/daemon.log" || fail "held: not in the daemon log"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true
ctl info ttyUSB2 -q || fail "the port once released"

# ModemManager probing the port: named, with the udev rule as the fix
hold ttyUSB2 ModemManager
rc=0; ctl info ttyUSB2 2>"$TMPDIR/err" || rc=$?
[ $rc = 24 ] || fail "ModemManager: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "held by pid $HOLDER (ModemManager): ModemManager is probing it as a modem; .*ID_MM_DEVICE_IGNORE=1" \
        "$TMPDIR/err" || fail "ModemManager: $(cat "$TMPDIR/err")"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true
echo "OK"
