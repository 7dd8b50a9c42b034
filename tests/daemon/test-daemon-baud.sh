#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Baud rates above 115200 through the daemon (umockdev-sim boards with max-baud=N): a
# chip that manages the rate is flashed at it; one that does not answer there is deaf
# until reset (its baud detection took a 0x7F it could not measure), so it is flashed at
# 115200 only after the entry sequence resets it, and without one the job fails
# NoBootloader saying the board needs a reset; one that answers at neither rate fails
# NoBootloader naming both; rates out of range are refused by the client, the Port
# methods and the auto-flash profiles.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
command -v gdbus >/dev/null || skip "gdbus missing"
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"

# Stops the daemon; under the sanitizers its log must be clean.
stop_checked() {
        stop_daemon
        if grep -q "Sanitizer\|runtime error" "$TMPDIR/daemon.log"; then
                fail "the daemon's sanitizer report: $(grep -A20 "Sanitizer\|runtime error" "$TMPDIR/daemon.log")"
        fi
}

make_hex "$TMPDIR/fw.hex" 0x08000000 6000 11
make_bin "$TMPDIR/old.bin" 2048 12

# ttyUSB0: a chip whose autobaud measures up to 921600. ttyUSB1: a default chip (up
# to 115200). ttyUSB2: an F030 running its code (BOOT0 low): no bootloader at any rate.
# ttyUSB3: a G0 running its code behind an auto-reset circuit, default autobaud.
# ttyUSB6: a default chip that an earlier session synced at 57600.
DAEMON_ARGS="--state-dir=$STATE" start_daemon \
        --board ttyUSB0=0x466,max-baud=921600,uid=1 \
        --board ttyUSB1=0x466,uid=2 \
        --board ttyUSB2=0x444,boot0=0 \
        --board "ttyUSB3=0x466,uid=4,boot0=0,nboot-sel=0,image=$TMPDIR/old.bin,wiring=dtr-nrst,rts-boot0" \
        --board ttyUSB6=0x466,uid=7

# 1. At 460800 on a chip that manages it: no fallback.
ctl --json flash ttyUSB0 "$TMPDIR/fw.hex" --baud 460800 >"$TMPDIR/flash0.json" 2>"$TMPDIR/err" ||
        fail "flash at 460800: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash0.json")"
json_check "$TMPDIR/flash0.json" 'j["result"]["error"] == "" and j["result"]["baudrate"] == 460800 and
        j["result"]["bytes_verified"] == 6000'
[ "$(sim_field ttyUSB0 baud)" = 460800 ] || fail "ttyUSB0 was not synced at 460800: $(control "info ttyUSB0")"
[ "$(sim_field ttyUSB0 syncs)" -ge 1 ] || fail "ttyUSB0: $(control "info ttyUSB0")"
control "dump ttyUSB0 $TMPDIR/dump0.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump0.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB0 does not hold the image"
last_log_check 'x["port"] == "/dev/ttyUSB0" and x["result"] == "pass" and x["baudrate"] == 460800 and
        x["options"]["baudrate"] == 460800'
busctl --address="$BUS_ADDR" get-property -j "$BUS_NAME" /io/github/Stm32Isp1/port/ttyUSB0 io.github.Stm32Isp1.Port \
        LastResult >"$TMPDIR/last0.json" || fail "LastResult"
json_check "$TMPDIR/last0.json" 'j["data"]["baudrate"]["data"] == 460800 and j["data"]["operation"]["data"] == "flash"'

# 2. At 460800 on a chip that measures at most 115200, without an entry sequence: that
# 0x7F left it deaf, so there is no second try: NoBootloader saying to reset the board,
# nothing written, no byte sent at 115200.
expect_rc 10 ctl --json flash ttyUSB1 "$TMPDIR/fw.hex" --baud 460800 >"$TMPDIR/flash1.json" 2>"$TMPDIR/err"
json_check "$TMPDIR/flash1.json" 'j["error"] == "io.github.Stm32Isp1.Error.NoBootloader" and
        "no answer at 460800 baud on /dev/ttyUSB1" in j["message"] and "reset or power-cycle" in j["message"]'
[ "$(sim_field ttyUSB1 state)" = deaf ] || fail "ttyUSB1 is not deaf: $(control "info ttyUSB1")"
[ "$(sim_field ttyUSB1 writes)" = 0 ] || fail "ttyUSB1 was written: $(control "info ttyUSB1")"
last_log_check 'x["port"] == "/dev/ttyUSB1" and x["result"] == "fail" and x["baudrate"] == 460800 and
        x["options"]["baudrate"] == 460800'
# After a power cycle the default rate flashes it.
control "power-cycle ttyUSB1" >/dev/null
ctl --json flash ttyUSB1 "$TMPDIR/fw.hex" >"$TMPDIR/flash1.json" 2>"$TMPDIR/err" ||
        fail "flash after the power cycle: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash1.json")"
json_check "$TMPDIR/flash1.json" 'j["result"]["error"] == "" and j["result"]["baudrate"] == 115200 and
        j["result"]["bytes_written"] == 6000 and j["result"]["bytes_verified"] == 6000'
[ "$(sim_field ttyUSB1 baud)" = 115200 ] || fail "ttyUSB1 was not synced at 115200: $(control "info ttyUSB1")"
control "dump ttyUSB1 $TMPDIR/dump1.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump1.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB1 does not hold the image"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(0 if d[6000:8192] == b"\xff" * 2192 else 1)' \
        "$TMPDIR/dump1.bin" || fail "ttyUSB1: bytes after the image are not erased"

# 3. The entry sequence runs again before the retry: it resets the chip into its
# bootloader, which then measures the new rate.
resets_before=$(sim_field ttyUSB3 resets)
ctl --json flash ttyUSB3 "$TMPDIR/fw.hex" --baud 921600 --entry dtr-nrst,rts-boot0 >"$TMPDIR/flash3.json" \
        2>"$TMPDIR/err" || fail "flash with entry by fallback: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash3.json")"
json_check "$TMPDIR/flash3.json" 'j["result"]["baudrate"] == 115200 and j["result"]["bytes_verified"] == 6000'
resets_after=$(sim_field ttyUSB3 resets)
# entry, entry again, exit: three resets by nRST
[ $((resets_after - resets_before)) -ge 3 ] || fail "the entry sequence did not run again: $(control "info ttyUSB3")"
control "info ttyUSB3" | grep -q 'state=user' || fail "ttyUSB3 was not reset into its code: $(control "info ttyUSB3")"
control "dump ttyUSB3 $TMPDIR/dump3.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump3.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB3 does not hold the image"

# 4. No bootloader at either rate (an entry sequence that holds BOOT0 low): NoBootloader (exit 10)
# naming both, after the entry sequence ran again; nothing written.
expect_rc 10 ctl --json flash ttyUSB3 "$TMPDIR/fw.hex" --baud 460800 --entry '-rts&dtr,-dtr' >"$TMPDIR/flash2.json" \
        2>"$TMPDIR/err"
json_check "$TMPDIR/flash2.json" 'j["error"] == "io.github.Stm32Isp1.Error.NoBootloader" and
        "460800" in j["message"] and "115200" in j["message"]'
grep -q "no answer at 460800 baud nor at 115200" "$TMPDIR/flash2.json" || fail "message: $(cat "$TMPDIR/flash2.json")"
last_log_check 'x["port"] == "/dev/ttyUSB3" and x["result"] == "fail" and x["error"].endswith("NoBootloader") and
        x["baudrate"] == 115200 and "nor at 115200" in x["message"]'
# An F030 running its code (BOOT0 low), no entry sequence: no second try, nothing written.
expect_rc 10 ctl --json flash ttyUSB2 "$TMPDIR/fw.hex" --baud 460800 >"$TMPDIR/flash2.json" 2>"$TMPDIR/err"
json_check "$TMPDIR/flash2.json" 'j["error"] == "io.github.Stm32Isp1.Error.NoBootloader" and "reset" in j["message"]'
[ "$(sim_field ttyUSB2 writes)" = 0 ] || fail "ttyUSB2 was written: $(control "info ttyUSB2")"
# At the default rate there is nothing to fall back to: the flasher's own sentence.
expect_rc 10 ctl --json info ttyUSB2 >"$TMPDIR/info2.json" 2>/dev/null
json_check "$TMPDIR/info2.json" 'j["error"].endswith("NoBootloader") and "nor at" not in j["message"]'

# 4b. A chip that answers at a different rate: an earlier job synced it at 57600 (the
# autobaud measures once per reset), so at 115200 it hears garbage and never answers. The
# port remembers the rate its last job left the chip at and tries it after the silence
# (no entry sequence reset the chip): flashed at 57600, and the result, the results log
# and the daemon's log say so.
ctl --json info ttyUSB6 --baud 57600 >"$TMPDIR/info6.json" || fail "info ttyUSB6 at 57600"
[ "$(sim_field ttyUSB6 baud)" = 57600 ] || fail "ttyUSB6: $(control "info ttyUSB6")"
ctl --json flash ttyUSB6 "$TMPDIR/fw.hex" >"$TMPDIR/flash6.json" 2>"$TMPDIR/err" ||
        fail "flash ttyUSB6 after a job at 57600: $(cat "$TMPDIR/err") $(cat "$TMPDIR/flash6.json")"
json_check "$TMPDIR/flash6.json" 'j["result"]["error"] == "" and j["result"]["baudrate"] == 57600 and
        j["result"]["baudrate_remembered"] is True and j["result"]["bytes_verified"] == 6000'
[ "$(sim_field ttyUSB6 baud)" = 57600 ] || fail "ttyUSB6 measured again: $(control "info ttyUSB6")"
control "dump ttyUSB6 $TMPDIR/dump6.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump6.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB6 does not hold the image"
last_log_check 'x["port"] == "/dev/ttyUSB6" and x["result"] == "pass" and x["baudrate"] == 57600 and
        x["baudrate_remembered"] is True and x["options"].get("baudrate", 115200) == 115200'
grep -q "ttyUSB6.*the chip answered at 57600 baud, the rate an earlier job left it synced at" "$TMPDIR/daemon.log" ||
        fail "the daemon's log does not say so: $(grep ttyUSB6 "$TMPDIR/daemon.log")"
# (the client's sentence says it too)
ctl flash ttyUSB6 "$TMPDIR/fw.hex" >"$TMPDIR/out" 2>/dev/null || fail "flash ttyUSB6 (text)"
grep -q "verified, at 57600 baud (the rate an earlier job left the chip at), in" "$TMPDIR/out" ||
        fail "flash ttyUSB6 (text): $(cat "$TMPDIR/out")"
# Asked at its own rate: no memory needed, nothing to say.
ctl --json flash ttyUSB6 "$TMPDIR/fw.hex" --baud 57600 >"$TMPDIR/flash6.json" || fail "flash ttyUSB6 at 57600"
json_check "$TMPDIR/flash6.json" 'j["result"]["baudrate"] == 57600 and "baudrate_remembered" not in j["result"]'
# Started (Go): the bootloader is gone, the memory with it; no bootloader at any rate.
ctl go ttyUSB6 -q || fail "go ttyUSB6"
expect_rc 10 ctl --json info ttyUSB6 >"$TMPDIR/info6.json" 2>/dev/null
json_check "$TMPDIR/info6.json" 'j["error"].endswith("NoBootloader")'


# 5. Rates out of range: the client refuses them, and so do the daemon's methods.
for b in 0 1199 3000001 5000000 fast; do
        expect_rc 2 ctl flash ttyUSB1 "$TMPDIR/fw.hex" --baud "$b" 2>"$TMPDIR/err"
        grep -q "invalid baud rate '$b' (1200-3000000)" "$TMPDIR/err" || fail "--baud $b: $(cat "$TMPDIR/err")"
done
for b in 0 5000000; do
        port_call ttyUSB1 Probe "{'baudrate': <uint32 $b>}" >"$TMPDIR/out" &&
                fail "Probe took baudrate $b: $(cat "$TMPDIR/out")"
        grep -q "org.freedesktop.DBus.Error.InvalidArgs" "$TMPDIR/out" || fail "Probe baudrate $b: $(cat "$TMPDIR/out")"
        grep -q "'baudrate'" "$TMPDIR/out" || fail "the error does not name the option: $(cat "$TMPDIR/out")"
done
# The top of the range is taken (a chip whose autobaud measures it answers).
control "power-cycle ttyUSB0" >/dev/null
port_call ttyUSB0 Probe "{'baudrate': <uint32 921600>}" >"$TMPDIR/out" || fail "Probe at 921600: $(cat "$TMPDIR/out")"
# (ttyUSB1 freshly powered up: a 0x7F at 3000000 leaves it deaf, and the 115200 its last
# job left it at is tried in vain: a stale memory costs a try, nothing more)
control "power-cycle ttyUSB1" >/dev/null
port_call ttyUSB1 Probe "{'baudrate': <uint32 3000000>}" >"$TMPDIR/out" &&
        fail "Probe at 3000000 on a default chip: $(cat "$TMPDIR/out")"
grep -q "NoBootloader" "$TMPDIR/out" || fail "Probe at 3000000: $(cat "$TMPDIR/out")"

# SetAutoFlash: the profile's baudrate has the same range.
for b in 0 3000001; do
        if set_auto_flash "$TMPDIR/fw.hex" "{'baudrate': ('u', $b)}" 2>"$TMPDIR/err"; then
                fail "SetAutoFlash took baudrate $b"
        fi
        grep -q "InvalidArgs" "$TMPDIR/err" && grep -q "'baudrate'" "$TMPDIR/err" ||
                fail "SetAutoFlash baudrate $b: $(cat "$TMPDIR/err")"
done
set_auto_flash "$TMPDIR/fw.hex" "{'baudrate': ('u', 921600), 'serial': ('s', 'FAST*')}" 2>"$TMPDIR/err" ||
        fail "SetAutoFlash at 921600: $(cat "$TMPDIR/err")"
monitor_start
control "add ttyUSB4=0x466,max-baud=921600,serial=FAST04,uid=5" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB4","operation":"flash","error":""'
monitor_stop
[ "$(sim_field ttyUSB4 baud)" = 921600 ] || fail "ttyUSB4 was not flashed at 921600: $(control "info ttyUSB4")"
control "dump ttyUSB4 $TMPDIR/dump4.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump4.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB4 does not hold the image"
last_log_check 'x["auto"] and x["port"] == "/dev/ttyUSB4" and x["baudrate"] == 921600'
stop_checked

# 6. A profile from the config file at 460800 on a default chip behind an auto-reset
# circuit: flashed by the fallback, after the entry sequence reset it.
cat >"$TMPDIR/stm32ispd.conf" <<CONF
[AutoFlash]
Image=$TMPDIR/fw.hex
Baudrate=460800
Entry=dtr-nrst,rts-boot0
ExpectChip=0x466
CONF
rm -f "$STATE/results.jsonl"
DAEMON_ARGS="--state-dir=$STATE --config=$TMPDIR/stm32ispd.conf" start_daemon
busctl --address="$BUS_ADDR" get-property -j "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager AutoFlash \
        >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["source"]["data"] == "config" and j["data"]["baudrate"]["data"] == 460800'
monitor_start
control "add ttyUSB5=0x466,uid=6,wiring=dtr-nrst,rts-boot0" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB5","operation":"flash","error":""'
monitor_stop
# reset into its code by the exit sequence: the log says which rate ran
[ "$(sim_field ttyUSB5 state)" = user-code ] || fail "ttyUSB5: $(control "info ttyUSB5")"
control "dump ttyUSB5 $TMPDIR/dump5.bin" >/dev/null
cmp -n 6000 "$TMPDIR/dump5.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB5 does not hold the image"
last_log_check 'x["auto"] and x["port"] == "/dev/ttyUSB5" and x["baudrate"] == 115200 and x["options"]["baudrate"] == 460800'
stop_checked

# A config whose rate is out of range is refused at startup.
sed -i 's/^Baudrate=.*/Baudrate=3000001/' "$TMPDIR/stm32ispd.conf"
rc=0
timeout 60 "$SIM" -- "$DAEMON" --bus-address="$BUS_ADDR" --state-dir="$STATE" --config="$TMPDIR/stm32ispd.conf" \
        >"$TMPDIR/bad.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a config with Baudrate=3000001 started"
grep -qi "baudrate" "$TMPDIR/bad.log" || fail "the error does not name Baudrate: $(cat "$TMPDIR/bad.log")"

echo PASS
