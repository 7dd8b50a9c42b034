#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl's exit code for each error class it can be made to meet against the real
# daemon and simulated boards, the --json error object, Ctrl-C (SIGINT) cancelling the
# job on the daemon (exit 130), a job cancelled by another client (20), a busy port (18),
# an unplugged adapter (19), access denied by the bus policy (4), write-protected pages
# (21, and --unprotect), no way back into the bootloader (23, and --force), and the
# "Started" line saying how the code was started.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
# The bus refuses Go to everyone: the AccessDenied case.
BUS_EXTRA_POLICY='<deny send_destination="io.github.Stm32Isp1" send_interface="io.github.Stm32Isp1.Port" send_member="Go"/>'
start_bus
# ttyUSB0: G0 in its bootloader (64 KiB); ttyUSB1: an F0 running its code (BOOT0 low), whose
# adapter drives NRST with DTR and BOOT0 with RTS; ttyUSB2: a 32 KiB G0; ttyUSB3: a G0 whose
# pages 1-2 are write-protected; ttyUSB4: a factory C031.
make_bin "$TMPDIR/code.bin" 1024 9
cd "$TMPDIR"    # umockdev-sim takes no '/' in a --board (image=code.bin)
start_daemon --board ttyUSB0=0x466 --board "ttyUSB1=0x444,boot0=0,image=code.bin,wiring=dtr-nrst,rts-boot0" \
             --board ttyUSB2=0x466,flash-kb=32 --board ttyUSB3=0x466,wrp=1-2 --board ttyUSB4=0x453

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
# A read that fails leaves the file it would replace as it was, and no temporary.
mkdir "$TMPDIR/rd"
echo "precious" >"$TMPDIR/rd/keep.bin"
expect_rc 10 ctl read ttyUSB1 "$TMPDIR/rd/keep.bin" --length 16 -q
[ "$(cat "$TMPDIR/rd/keep.bin")" = precious ] || fail "a failed read destroyed the output file"
[ "$(ls -A "$TMPDIR/rd")" = keep.bin ] || fail "a failed read left: $(ls -A "$TMPDIR/rd")"
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
# the client cannot open the file: a file error (6), and nothing was sent
expect_rc 6 ctl flash ttyUSB0 "$TMPDIR/missing.bin" -q
# An output that cannot be written: the same exit code, FileError in JSON.
rc=0; ctl read ttyUSB0 "$TMPDIR/no-such-dir/dump.bin" --length 16 --json >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 6 ] || fail "unwritable output: exit $rc"
json_check "$TMPDIR/e.json" 'j["error"] == "FileError" and j["exit_code"] == 6 and "no-such-dir" in j["message"]'

# InvalidArgs from the daemon (2): a bad entry sequence
expect_rc 2 ctl info ttyUSB0 --entry 'no such sequence' -q
# --address with a file that carries its own addresses (HEX, ELF, S-record): refused, not
# ignored, whatever the format's name; nothing reaches the board
make_hex "$TMPDIR/app.hex" 0x08000000 512 4
writes=$(sim_field ttyUSB0 writes)
for fmt in "" "--format hex"; do
        rc=0
        # shellcheck disable=SC2086 # the option's words
        ctl flash ttyUSB0 "$TMPDIR/app.hex" --address 0x08001000 $fmt 2>"$TMPDIR/err" || rc=$?
        [ $rc = 2 ] || fail "flash HEX --address $fmt: exit $rc"
        grep -q "InvalidArgs" "$TMPDIR/err" && grep -q "this Intel HEX file carries its own addresses" "$TMPDIR/err" ||
                fail "flash HEX --address: $(cat "$TMPDIR/err")"
done
printf 'S00600004844521B\nS1130000000102030405060708090A0B0C0D0E0F74\nS9030000FC\n' >"$TMPDIR/app.srec"
rc=0; ctl flash ttyUSB0 "$TMPDIR/app.srec" --address 0x08000000 2>"$TMPDIR/err" || rc=$?
[ $rc = 2 ] && grep -q "S-record file carries its own addresses" "$TMPDIR/err" || fail "srec --address: $rc $(cat "$TMPDIR/err")"
[ "$(sim_field ttyUSB0 writes)" = "$writes" ] || fail "something was written"
# A HEX linked at 0 (below the flash): how to relocate it
make_hex "$TMPDIR/zero.hex" 0 512 4
rc=0; ctl flash ttyUSB0 "$TMPDIR/zero.hex" 2>"$TMPDIR/err" || rc=$?
[ $rc = 16 ] || fail "HEX at 0: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "linked at 0; relocate it to the flash, e.g. objcopy --change-addresses 0x08000000 IN OUT" "$TMPDIR/err" ||
        fail "HEX at 0: $(cat "$TMPDIR/err")"
[ "$(sim_field ttyUSB0 writes)" = "$writes" ] || fail "something was written"

# WriteProtected (21): pages 1-2 of ttyUSB3; info shows them, a flash over them is refused
# before anything is erased; with --unprotect it lifts the protection and flashes.
ctl info ttyUSB3 >"$TMPDIR/info3.txt" || fail "info ttyUSB3"
grep -q "Write-protected pages: *1-2$" "$TMPDIR/info3.txt" || fail "info: $(cat "$TMPDIR/info3.txt")"
make_bin "$TMPDIR/six.bin" 6144 7
rc=0; ctl --json flash ttyUSB3 "$TMPDIR/six.bin" >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 21 ] || fail "write-protected: exit $rc"
err_json "$TMPDIR/e.json" WriteProtected 21
json_check "$TMPDIR/e.json" '"pages 1-2" in j["message"]'
[ "$(sim_field ttyUSB3 page-erases)$(sim_field ttyUSB3 mass-erases)$(sim_field ttyUSB3 writes)" = 000 ] ||
        fail "ttyUSB3 was touched: $(control "info ttyUSB3")"
ctl --json flash ttyUSB3 "$TMPDIR/six.bin" --unprotect >"$TMPDIR/f3.json" 2>"$TMPDIR/err" ||
        fail "flash --unprotect: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/f3.json" 'j["result"]["write_unprotected"] and not j["result"]["unprotected"] and
        j["result"]["bytes_verified"] == 6144'
# the results log records it (this daemon has no state directory: the log goes to its output)
grep -q 'ttyUSB3: flash passed: .*"write_unprotected":true' "$TMPDIR/daemon.log" ||
        fail "the results log does not record the Write Unprotect: $(grep ttyUSB3 "$TMPDIR/daemon.log")"
ctl info ttyUSB3 | grep -q "Write-protected pages: *none$" || fail "still protected: $(ctl info ttyUSB3)"

# NeedsForce (23): a factory C031 flashed with --no-boot0 would boot its code whatever
# BOOT0 says: refused before anything is written; --force does it; lock the same.
rc=0; ctl --json flash ttyUSB4 "$TMPDIR/code.bin" --no-boot0 >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 23 ] || fail "no way back: exit $rc"
err_json "$TMPDIR/e.json" NeedsForce 23
[ "$(sim_field ttyUSB4 writes)$(sim_field ttyUSB4 page-erases)" = 00 ] || fail "ttyUSB4 was written: $(control "info ttyUSB4")"
ctl flash ttyUSB4 "$TMPDIR/code.bin" --no-boot0 --force -q || fail "flash --force"
[ "$(sim_field ttyUSB4 ob-writes)" = 0 ] || fail "ttyUSB4's option bytes were written: $(control "info ttyUSB4")"
expect_rc 23 ctl lock ttyUSB4 -q
[ "$(sim_field ttyUSB4 rdp)" = 0 ] || fail "ttyUSB4 was locked: $(control "info ttyUSB4")"
ctl lock ttyUSB4 --force -q || fail "lock --force"
[ "$(sim_field ttyUSB4 rdp)" = 1 ] || fail "ttyUSB4: $(control "info ttyUSB4")"
expect_rc 2 ctl info ttyUSB0 --force -q

# The "Started" line says the code was started by Go (and what that leaves behind).
ctl flash ttyUSB3 "$TMPDIR/six.bin" --go >"$TMPDIR/go.txt" 2>/dev/null || fail "flash --go"
grep -q "Started: *yes, by Go (the bootloader's context stays" "$TMPDIR/go.txt" || fail "started: $(cat "$TMPDIR/go.txt")"

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
# A cancelled read (Ctrl-C) leaves the old file and no temporary.
env --default-signal=INT "$CTL" --bus-address="$BUS_ADDR" read "$TCP_URL" "$TMPDIR/rd/keep.bin" --length 16384 \
        >"$TMPDIR/read.out" 2>"$TMPDIR/read.err" &
READ_PID=$!
monitor_wait '"port":"'"$TCP_URL"'","stage":"reading"'
kill -INT $READ_PID
rc=0; wait $READ_PID || rc=$?
[ $rc = 130 ] || fail "SIGINT during read: exit $rc ($(cat "$TMPDIR/read.err"))"
[ "$(cat "$TMPDIR/rd/keep.bin")" = precious ] || fail "a cancelled read destroyed the output file"
[ "$(ls -A "$TMPDIR/rd")" = keep.bin ] || fail "a cancelled read left: $(ls -A "$TMPDIR/rd")"
# A read that completes replaces it.
ctl read "$TCP_URL" "$TMPDIR/rd/keep.bin" --length 256 -q || fail "read $TCP_URL"
[ "$(stat -c %s "$TMPDIR/rd/keep.bin")" = 256 ] && [ "$(ls -A "$TMPDIR/rd")" = keep.bin ] ||
        fail "read: $(ls -lA "$TMPDIR/rd")"

# Cancelled by another client (20)
ctl flash "$TCP_URL" "$TMPDIR/slow.bin" -q &
FLASH_PID=$!
monitor_wait "$TCPW"
ctl cancel "$TCP_URL" >"$TMPDIR/cancel.out" || fail "cancel"
grep -q "^Cancelled the job on $TCP_URL (it was writing).$" "$TMPDIR/cancel.out" || fail "cancel: $(cat "$TMPDIR/cancel.out")"
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
