#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl's exit code for each error class it can be made to meet against the real
# daemon and simulated boards, the --json error object, Ctrl-C (SIGINT) cancelling the
# job on the daemon (exit 130), a job cancelled by another client (20), a busy port (18),
# an unplugged adapter (19), access denied by the bus policy (4).
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
# The bus refuses Go to everyone: the AccessDenied case.
BUS_EXTRA_POLICY='<deny send_destination="io.github.Stm32Isp1" send_interface="io.github.Stm32Isp1.Port" send_member="Go"/>'
start_bus
# ttyUSB0: G0 in its bootloader (64 KiB); ttyUSB1: an F0 running its code (BOOT0 low), whose
# adapter drives NRST with DTR and BOOT0 with RTS; ttyUSB2: a 32 KiB G0.
make_bin "$TMPDIR/code.bin" 1024 9
cd "$TMPDIR"    # umockdev-sim takes no '/' in a --board (image=code.bin)
start_daemon --board ttyUSB0=0x466 --board "ttyUSB1=0x444,boot0=0,image=code.bin,wiring=dtr-nrst,rts-boot0" \
             --board ttyUSB2=0x466,flash-kb=32

err_json() { # err_json FILE ERROR CODE
        json_check "$1" "j['error'] == 'io.github.Stm32Isp1.Error.$2' and j['exit_code'] == $3 and j['message'] != ''"
}

# NotFound (5)
expect_rc 5 ctl info ttyUSB9 -q
rc=0; ctl info ttyUSB9 --json >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 5 ] || fail "not found: exit $rc"
err_json "$TMPDIR/e.json" NotFound 5
expect_rc 5 ctl flash /dev/ttyUSB9 "$TMPDIR/code.bin"

# NoBootloader (10), also as JSON
rc=0; ctl --json info ttyUSB1 >"$TMPDIR/e.json" 2>"$TMPDIR/err" || rc=$?
[ $rc = 10 ] || fail "no bootloader: exit $rc ($(cat "$TMPDIR/err"))"
err_json "$TMPDIR/e.json" NoBootloader 10
grep -q "NoBootloader" "$TMPDIR/err" || fail "no bootloader: $(cat "$TMPDIR/err")"
# ... until the client asks for the entry sequence: BOOT0 high, reset, release
ctl --json info ttyUSB1 --entry 'rts&dtr,-dtr' >"$TMPDIR/info.json" 2>/dev/null || fail "info --entry"
json_check "$TMPDIR/info.json" 'j["chip"]["pid"] == 0x444'

# ImageTooLarge (17): 40 KiB into 32 KiB
make_bin "$TMPDIR/big.bin" 40960 4
rc=0; ctl --json flash ttyUSB2 "$TMPDIR/big.bin" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 17 ] || fail "too large: exit $rc"
err_json "$TMPDIR/e.json" ImageTooLarge 17

# InvalidImage (16): not Intel HEX; empty; outside the flash
printf ':10000000ZZ\n' >"$TMPDIR/bad.hex"
expect_rc 16 ctl flash ttyUSB0 "$TMPDIR/bad.hex" -q
expect_rc 16 ctl flash ttyUSB0 "$TMPDIR/bad.hex" --format hex -q
: >"$TMPDIR/empty.bin"
expect_rc 16 ctl flash ttyUSB0 "$TMPDIR/empty.bin" -q
# the client cannot open the file: a generic failure, and nothing was sent
expect_rc 1 ctl flash ttyUSB0 "$TMPDIR/missing.bin" -q

# InvalidArgs from the daemon (2): a bad entry sequence
expect_rc 2 ctl info ttyUSB0 --entry 'no such sequence' -q

# AccessDenied (4): the bus policy refuses Go
rc=0; ctl go ttyUSB0 2>"$TMPDIR/err" || rc=$?
[ $rc = 4 ] || fail "access denied: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "dialout" "$TMPDIR/err" || fail "access denied: no hint: $(cat "$TMPDIR/err")"

# Long jobs to interrupt: a board behind a raw TCP serial server, in real time (16 KiB
# take seconds at 115200 baud). The client adds the port (Manager.AddPort).
start_tcp_board --pid 0x466
make_bin "$TMPDIR/slow.bin" 16384 5
ctl --json info "$TCP_URL" >"$TMPDIR/tcp.json" 2>/dev/null || fail "info $TCP_URL"
json_check "$TMPDIR/tcp.json" 'j["chip"]["pid"] == 0x466'
TCPW='"port":"'"$TCP_URL"'","stage":"writing"'

# Busy (18): a second job on a port that is flashing; then Ctrl-C (SIGINT) cancels the
# first on the daemon and the client exits 130 once the daemon answered.
monitor_start
# (A script's background commands start with SIGINT ignored; give the client the default
# disposition an interactive shell would.)
env --default-signal=INT "$CTL" --bus-address="$BUS_ADDR" flash "$TCP_URL" "$TMPDIR/slow.bin" \
        >"$TMPDIR/flash.out" 2>"$TMPDIR/flash.err" &
FLASH_PID=$!
monitor_wait "$TCPW"
rc=0; ctl --json info "$TCP_URL" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 18 ] || fail "busy: exit $rc"
err_json "$TMPDIR/e.json" Busy 18
kill -INT $FLASH_PID
rc=0; wait $FLASH_PID || rc=$?
[ $rc = 130 ] || fail "SIGINT: exit $rc ($(cat "$TMPDIR/flash.err"))"
grep -q "cancelled" "$TMPDIR/flash.err" || fail "SIGINT: $(cat "$TMPDIR/flash.err")"
monitor_wait '"event":"finished".*"port":"'"$TCP_URL"'","operation":"flash","error":"io.github.Stm32Isp1.Error.Cancelled"'
# the port is usable again
ctl info "$TCP_URL" -q || fail "info after the cancel"

# Cancelled by another client (20)
ctl flash "$TCP_URL" "$TMPDIR/slow.bin" -q &
FLASH_PID=$!
monitor_wait "$TCPW"
ctl cancel "$TCP_URL" || fail "cancel"
rc=0; wait $FLASH_PID || rc=$?
[ $rc = 20 ] || fail "cancelled by another client: exit $rc"
monitor_wait '"event":"finished".*"port":"'"$TCP_URL"'",.*"error":"io.github.Stm32Isp1.Error.Cancelled"'

# Disconnected (19): the connection drops while flashing
ctl flash "$TCP_URL" "$TMPDIR/slow.bin" -q &
FLASH_PID=$!
monitor_wait "$TCPW"
tcp_unplug
rc=0; wait $FLASH_PID || rc=$?
[ $rc = 19 ] || fail "disconnected: exit $rc"
monitor_wait '"event":"finished".*"port":"'"$TCP_URL"'",.*"error":"io.github.Stm32Isp1.Error.Disconnected"'

# Timeout (11): the board stops answering in the middle, the line stays up
ctl flash "$TCP_URL" "$TMPDIR/slow.bin" -q &
FLASH_PID=$!
monitor_wait "$TCPW"
tcp_freeze
rc=0; wait $FLASH_PID || rc=$?
[ $rc = 11 ] || fail "timeout: exit $rc"
monitor_stop

# Faults injected into a simulated board: NACK (12), VerifyFailed (13)
faultsim="$TOP_BUILDDIR/tests/client/test-client-faultsim"
make_bin "$TMPDIR/fw.bin" 4096 6
start_tcp_server "$faultsim" --pid 0x466 --fault nack-all-writes
rc=0; ctl --json flash "$TCP_URL" "$TMPDIR/fw.bin" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 12 ] || fail "nack: exit $rc"
err_json "$TMPDIR/e.json" Nack 12
# (the probe reads 5 blocks; the 10th read is the verify's)
start_tcp_server "$faultsim" --pid 0x466 --fault corrupt-read:10
rc=0; ctl --json flash "$TCP_URL" "$TMPDIR/fw.bin" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 13 ] || fail "verify failed: exit $rc"
err_json "$TMPDIR/e.json" VerifyFailed 13

echo PASS
