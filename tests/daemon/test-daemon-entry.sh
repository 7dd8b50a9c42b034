#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Entry sequences with breaks and delays through the daemon (umockdev-sim boards): a
# break reaches the simulated board through libserialport and the shim (counted, and
# harmless to a bootloader wired by DTR/RTS), a sequence with delays and an exit part
# flashes a board running its code and resets it into the new code, a break resets a
# board wired brk-nrst, bad sequences are refused naming 'entry', a Cancel ends a long
# pause of the entry sequence at once, and a garbled reply to the option-byte write does
# not let the exit sequence or the next job reset the chip while it programs them.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
command -v gdbus >/dev/null || skip "gdbus missing"
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"

make_hex "$TMPDIR/fw.hex" 0x08000000 4000 21
make_bin "$TMPDIR/old.bin" 2048 22

# ttyUSB0: a G0 running its code behind the usual auto-reset circuit (DTR -> NRST,
# RTS -> BOOT0). ttyUSB1: an F030 whose NRST follows a break on TX (BOOT0 strapped high).
# ttyUSB2: a blank factory C011 behind the auto-reset circuit, whose option-byte
# programming lasts 400 ms and the reply to its first one arrives garbled.
DAEMON_ARGS="--state-dir=$STATE" start_daemon \
        --board "ttyUSB0=0x466,uid=1,boot0=0,nboot-sel=0,image=$TMPDIR/old.bin,wiring=dtr-nrst,rts-boot0" \
        --board "ttyUSB1=0x444,uid=2,wiring=brk-nrst" \
        --board "ttyUSB2=0x443,uid=3,wiring=dtr-nrst,rts-boot0,ob-ack=garble,ob-program-ms=400"
control "info ttyUSB0" | grep -q 'state=user-code' || fail "ttyUSB0 does not run its code: $(control "info ttyUSB0")"

# 1. A break, then the DTR/RTS entry: the board sees one break, ignores it, and is
# entered and flashed.
ctl --json flash ttyUSB0 "$TMPDIR/fw.hex" --entry 'brk,20ms,rts&dtr,-dtr' >"$TMPDIR/flash1.json" 2>"$TMPDIR/err" ||
        fail "flash with a break: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash1.json")"
json_check "$TMPDIR/flash1.json" 'j["result"]["error"] == "" and j["result"]["bytes_verified"] == 4000'
[ "$(sim_field ttyUSB0 breaks)" = 1 ] || fail "ttyUSB0 did not see one break: $(control "info ttyUSB0")"
control "dump ttyUSB0 $TMPDIR/dump1.bin" >/dev/null
cmp -n 4000 "$TMPDIR/dump1.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB0 does not hold the image"
last_log_check 'x["port"] == "/dev/ttyUSB0" and x["result"] == "pass" and x["options"]["entry"] == "brk,20ms,rts&dtr,-dtr"'

# 2. Delays and an exit part: entered again (a second break), flashed, then reset into
# the application by the exit sequence.
make_hex "$TMPDIR/fw2.hex" 0x08000000 3000 23
resets_before=$(sim_field ttyUSB0 resets)
ctl --json flash ttyUSB0 "$TMPDIR/fw2.hex" --entry 'brk,10ms,rts&dtr,30ms,-dtr,50ms:-rts&dtr,20ms,-dtr' \
        >"$TMPDIR/flash2.json" 2>"$TMPDIR/err" || fail "flash with delays: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash2.json")"
json_check "$TMPDIR/flash2.json" 'j["result"]["error"] == "" and j["result"]["bytes_verified"] == 3000'
[ "$(sim_field ttyUSB0 breaks)" = 2 ] || fail "ttyUSB0: $(control "info ttyUSB0")"
resets_after=$(sim_field ttyUSB0 resets)
# entry and exit: a reset by NRST each
[ $((resets_after - resets_before)) -ge 2 ] || fail "no entry and exit resets: $(control "info ttyUSB0")"
control "info ttyUSB0" | grep -q 'state=user-code' || fail "ttyUSB0 was not reset into its code: $(control "info ttyUSB0")"
control "dump ttyUSB0 $TMPDIR/dump2.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump2.bin" "$TMPDIR/fw2.hex.bin" || fail "ttyUSB0 does not hold the second image"

# 3. A board reset by a break: exactly one reset, by the break (DTR/RTS go nowhere here).
resets_before=$(sim_field ttyUSB1 resets)
ctl --json info ttyUSB1 --entry 'brk,30ms' >"$TMPDIR/info1.json" 2>"$TMPDIR/err" ||
        fail "info with a break reset: $(cat "$TMPDIR/err") $(cat "$TMPDIR/info1.json")"
json_check "$TMPDIR/info1.json" 'j["chip"]["pid"] == 0x444'
[ "$(sim_field ttyUSB1 breaks)" = 1 ] || fail "ttyUSB1: $(control "info ttyUSB1")"
[ $(($(sim_field ttyUSB1 resets) - resets_before)) = 1 ] || fail "ttyUSB1 was not reset once: $(control "info ttyUSB1")"

# 4. Bad sequences: refused before the port is touched (InvalidArgs naming 'entry').
syncs_before=$(sim_field ttyUSB1 syncs)
for seq in '-brk' 'dtr,0ms' 'dtr,5001ms' '10ms&dtr' 'brk,10s'; do
        expect_rc 2 ctl info ttyUSB1 --entry "$seq" -q 2>"$TMPDIR/err"
        port_call ttyUSB1 Probe "{'entry': <'$seq'>}" >"$TMPDIR/out" && fail "Probe took entry '$seq': $(cat "$TMPDIR/out")"
        grep -q "org.freedesktop.DBus.Error.InvalidArgs" "$TMPDIR/out" || fail "Probe entry '$seq': $(cat "$TMPDIR/out")"
        grep -q "'entry'" "$TMPDIR/out" || fail "the error does not name the option: $(cat "$TMPDIR/out")"
done
[ "$(sim_field ttyUSB1 syncs)" = "$syncs_before" ] || fail "a refused sequence reached the board: $(control "info ttyUSB1")"
[ "$(sim_field ttyUSB1 breaks)" = 1 ] || fail "a refused sequence sent a break: $(control "info ttyUSB1")"

# 5. Cancel while the entry sequence holds the board in reset for 5 s: the Flash fails
# with Cancelled long before the pause would have ended, the board never saw a sync,
# an erase or a write, and it is not left held in reset (the port's close drops DTR).
# The Cancel is sent once the job runs (the port's State leaves idle).
counters() {
        control "info ttyUSB0" | tr ' ' '\n' | grep -E '^(syncs|writes|page-erases|mass-erases)='
}
counters >"$TMPDIR/counters.before"
monitor_start
t0=$(date +%s%N)
ctl --json flash ttyUSB0 "$TMPDIR/fw.hex" --entry 'rts&dtr,5000ms,-dtr' >"$TMPDIR/cancel.json" 2>"$TMPDIR/err" &
FLASH_PID=$!
monitor_wait '"event":"changed".*"port":"/dev/ttyUSB0".*"State":"probing"'
ctl cancel ttyUSB0 || fail "cancel"
rc=0; wait $FLASH_PID || rc=$?
t1=$(date +%s%N)
[ $rc = 20 ] || fail "flash cancelled in the entry pause: exit $rc: $(cat "$TMPDIR/err") $(cat "$TMPDIR/cancel.json")"
json_check "$TMPDIR/cancel.json" 'j["error"] == "io.github.Stm32Isp1.Error.Cancelled" and "entry" in j["message"]'
ms=$(((t1 - t0) / 1000000))
[ $ms -lt 4000 ] || fail "the cancelled flash waited the pause out: $ms ms"
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB0","operation":"flash","error":"io.github.Stm32Isp1.Error.Cancelled"'
monitor_stop
counters >"$TMPDIR/counters.after"
cmp -s "$TMPDIR/counters.before" "$TMPDIR/counters.after" ||
        fail "a cancelled entry reached the bootloader: $(paste "$TMPDIR/counters.before" "$TMPDIR/counters.after")"
# reset released with BOOT0 low (both lines dropped): the board runs its code, not held off
control "info ttyUSB0" | grep -q 'state=user-code' || fail "ttyUSB0 is held in reset: $(control "info ttyUSB0")"
last_log_check 'x["port"] == "/dev/ttyUSB0" and x["result"] != "pass" and x["error"] == "io.github.Stm32Isp1.Error.Cancelled"'
# the next job is not cancelled: it flashes (the second image is still in the flash)
ctl --json flash ttyUSB0 "$TMPDIR/fw.hex" --entry 'rts&dtr,-dtr' >"$TMPDIR/flash5.json" 2>"$TMPDIR/err" ||
        fail "flash after the cancel: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash5.json")"
json_check "$TMPDIR/flash5.json" 'j["result"]["error"] == "" and j["result"]["bytes_verified"] == 4000'
control "dump ttyUSB0 $TMPDIR/dump5.bin" >/dev/null
cmp -n 4000 "$TMPDIR/dump5.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB0 does not hold the image after the cancel"

# 6. The reply to the option-byte write arrives garbled: the job sends nothing and does not
# end (so neither its exit sequence nor the next job's port open and entry sequence can
# reset the chip) before the programming is certainly over; then it syncs, reads the
# option area back as written, and the exit sequence starts the code by a reset. The
# chip is never reset while it programs, never locked.
ctl --json flash ttyUSB2 "$TMPDIR/fw.hex" --entry dtr-nrst,rts-boot0 >"$TMPDIR/flash6.json" 2>"$TMPDIR/err" ||
        fail "flash with a garbled option-byte reply: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash6.json")"
json_check "$TMPDIR/flash6.json" 'j["result"]["error"] == "" and j["result"]["boot0_changed"] and
        j["result"]["started"] and j["result"]["start_method"] == "reset"'
control "info ttyUSB2" | grep -q 'state=user-code' || fail "ttyUSB2 was not reset into its code: $(control "info ttyUSB2")"
last_log_check 'x["port"] == "/dev/ttyUSB2" and x["result"] == "pass" and x["start_method"] == "reset"'
ctl --json info ttyUSB2 --entry dtr-nrst,rts-boot0 >"$TMPDIR/info6.json" 2>"$TMPDIR/err" || fail "info ttyUSB2: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/info6.json" '(j["chip"]["optr"] >> 24) & 7 == 6 and j["chip"]["optr"] & 0xFF == 0xAA'
[ "$(sim_field ttyUSB2 ob-writes)" = 1 ] || fail "ttyUSB2: $(control "info ttyUSB2")"
[ "$(sim_field ttyUSB2 ob-interrupted)" = 0 ] || fail "ttyUSB2 was reset while programming: $(control "info ttyUSB2")"
control "info ttyUSB2" | grep -q 'state=locked' && fail "ttyUSB2 is locked: $(control "info ttyUSB2")"

stop_daemon
if grep -q "Sanitizer\|runtime error" "$TMPDIR/daemon.log"; then
        fail "the daemon's sanitizer report: $(grep -A20 "Sanitizer\|runtime error" "$TMPDIR/daemon.log")"
fi
echo PASS
