#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl diagnose (Port.Diagnose) against every simulated family through the daemon:
# every read-only inference holds on a simulator as the chip table describes it, the
# option fields and the boot prediction are decoded, a simulator made to differ (another
# bootloader protocol version) is named in the report, a read-protected chip is
# diagnosed without reads, --report writes the file whole, and nothing is ever written:
# the simulated flash and option bytes are the same before and after.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
start_bus
make_bin "$TMPDIR/code.bin" 1024 5
cd "$TMPDIR"    # umockdev-sim takes no '/' in a --board (image=code.bin)
# ttyUSB0..4: one board per family, blank; ttyUSB5: a G0 about to be flashed with its
# factory options kept (no way back after a power cycle); ttyUSB6: a G0 whose bootloader says protocol 3.0;
# ttyUSB7: a read-protected G0 behind a CH340.
start_daemon --board ttyUSB0=0x443 --board ttyUSB1=0x453 --board ttyUSB2=0x444 --board ttyUSB3=0x466 \
             --board ttyUSB4=0x457 --board ttyUSB5=0x466 --board ttyUSB6=0x466,protocol=0x30 \
             --board ttyUSB7=0x466,rdp=1,adapter=ch340

snapshot() { # snapshot NAME TAG: the board's flash and option bytes
        control "dump $1 $TMPDIR/$1.$2.flash" >/dev/null || fail "dump $1"
        control "dump-ob $1 $TMPDIR/$1.$2.ob" >/dev/null || fail "dump-ob $1"
}
unchanged() { # unchanged NAME
        cmp -s "$TMPDIR/$1.before.flash" "$TMPDIR/$1.after.flash" || fail "diagnose changed the flash of $1"
        cmp -s "$TMPDIR/$1.before.ob" "$TMPDIR/$1.after.ob" || fail "diagnose changed the option bytes of $1"
}

# Flashed blank with nBOOT_SEL left set: the EMPTY flag keeps it in the bootloader until
# its next power-on, which would start the code.
ctl flash ttyUSB5 "$TMPDIR/code.bin" --no-boot0 --force -q || fail "flash ttyUSB5"
for n in 0 1 2 3 4 5 6 7; do
        snapshot ttyUSB$n before
done

# Every family: all read-only checks hold, none differs.
for spec in ttyUSB0:0x443:C0 ttyUSB1:0x453:C0 ttyUSB2:0x444:F0 ttyUSB3:0x466:G0 ttyUSB4:0x457:L0; do
        IFS=: read -r port pid family <<<"$spec"
        ctl --json diagnose "$port" >"$TMPDIR/d.json" 2>"$TMPDIR/err" || fail "diagnose $port: $(cat "$TMPDIR/err")"
        json_check "$TMPDIR/d.json" "j['operation'] == 'diagnose' and j['diagnosis']['chip']['pid'] == $pid and \
                j['diagnosis']['chip']['family'] == '$family'"
        json_check "$TMPDIR/d.json" "all(c['verdict'] in ('holds', 'not_checked') for c in j['diagnosis']['checks']) and \
                sum(c['verdict'] == 'holds' for c in j['diagnosis']['checks']) == 7"
        json_check "$TMPDIR/d.json" "[o['value'] for o in j['diagnosis']['options'] if o['name'] == 'RDP'] == [0xAA]"
        json_check "$TMPDIR/d.json" "j['diagnosis']['chip']['bootloader_version'] == '3.1' and \
                'Readout Unprotect' in j['diagnosis']['chip']['command_names'] and \
                j['diagnosis']['adapter']['latency_usec'] > 0 and j['diagnosis']['adapter']['latency_round_trips'] == 5 and \
                j['diagnosis']['adapter']['flash_verify_32k_round_trips'] > 0 and \
                j['diagnosis']['adapter']['driver'] == 'ftdi_sio' and j['diagnosis']['adapter']['vendor_id'] == 0x0403 and \
                j['diagnosis']['adapter']['latency_timer_ms'] == 1 and \
                j['diagnosis']['adapter']['serial'] != ''"
        json_check "$TMPDIR/d.json" "j['diagnosis']['boot']['known'] and \
                j['diagnosis']['boot']['power_on_boot0_high'] == 'system memory (the bootloader)'"
done
# A blank C0/G0 starts its bootloader whatever BOOT0 says (the empty check); an F0 only with BOOT0 high.
ctl --json diagnose ttyUSB3 >"$TMPDIR/d.json"
json_check "$TMPDIR/d.json" "j['diagnosis']['boot']['flash_empty'] and \
        j['diagnosis']['boot']['power_on_boot0_low'] == 'system memory (the bootloader)' and \
        [o['value'] for o in j['diagnosis']['options'] if o['name'] == 'nBOOT_SEL'] == [1]"
ctl --json diagnose ttyUSB2 >"$TMPDIR/d.json"
json_check "$TMPDIR/d.json" "j['diagnosis']['boot']['power_on_boot0_low'] == 'main flash'"
# A C0 warns about the debugger's BOOT0 lock-out.
ctl diagnose ttyUSB0 >"$TMPDIR/d.txt" || fail "diagnose ttyUSB0 (text)"
grep -q "BOOT0 stays forced low" "$TMPDIR/d.txt" || fail "no C0 warning: $(cat "$TMPDIR/d.txt")"
grep -q "^7 hold, 0 differ" "$TMPDIR/d.txt" || fail "text summary: $(cat "$TMPDIR/d.txt")"

# Code in flash with the factory options: the warning in plain words.
/usr/bin/time -f "%e s" -o "$TMPDIR/time" "$CTL" --bus-address="$BUS_ADDR" diagnose ttyUSB5 -q
echo "diagnose took $(cat "$TMPDIR/time")" >&2
ctl diagnose ttyUSB5 >"$TMPDIR/d.txt" || fail "diagnose ttyUSB5"
grep -q "nBOOT_SEL is set and the flash is not empty: after a power cycle this chip will not enter the bootloader" \
        "$TMPDIR/d.txt" || fail "no nBOOT_SEL warning: $(cat "$TMPDIR/d.txt")"
grep -q "main flash, whatever the BOOT0 pin says" "$TMPDIR/d.txt" || fail "boot: $(cat "$TMPDIR/d.txt")"

# A simulator made to differ: the report names the check and what the chip said.
rm -f "$TMPDIR/report.json"
ctl diagnose ttyUSB6 --report "$TMPDIR/report.json" >"$TMPDIR/d.txt" || fail "diagnose ttyUSB6"
grep -q "^  differs  *The bootloader speaks" "$TMPDIR/d.txt" || fail "text shows no difference: $(cat "$TMPDIR/d.txt")"
grep -q "1 differ" "$TMPDIR/d.txt" || fail "text summary: $(cat "$TMPDIR/d.txt")"
# (pretty-printed for people: json_check reads one object per line)
python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$TMPDIR/report.json" \
        >"$TMPDIR/report1.json" || fail "the report is no JSON: $(cat "$TMPDIR/report.json")"
json_check "$TMPDIR/report1.json" "j['report'] == 'stm32ispctl diagnose' and j['port'] == 'ttyUSB6' and \
        'Get Version' in json.dumps(j['trace']) and 'Read Memory' in json.dumps(j['trace']) and \
        [c['id'] for c in j['diagnosis']['checks'] if c['verdict'] == 'differs'] == ['protocol_version'] and \
        'Get: 3.0' in [c['found'] for c in j['diagnosis']['checks'] if c['id'] == 'protocol_version'][0]"
[ "$(ls -A "$TMPDIR" | grep -c '^\.report')" = 0 ] || fail "a temporary report was left behind"
# With --trace the trace goes to its own file, and the report says where.
ctl diagnose ttyUSB6 --report "$TMPDIR/report.json" --trace "$TMPDIR/t.txt" -q || fail "diagnose --trace"
grep -q "Get ID" "$TMPDIR/t.txt" || fail "trace: $(cat "$TMPDIR/t.txt")"
grep -q "\"trace_note\": \"$TMPDIR/t.txt\"" "$TMPDIR/report.json" || fail "report: $(cat "$TMPDIR/report.json")"

# Read-protected: nothing readable, nothing differs, the warning says how to unlock.
ctl --json diagnose ttyUSB7 >"$TMPDIR/d.json" || fail "diagnose ttyUSB7"
json_check "$TMPDIR/d.json" "j['diagnosis']['chip']['rdp_level'] == 1 and not j['diagnosis']['boot']['known'] and \
        'option_bytes' not in j['diagnosis']['chip'] and j['diagnosis']['options'] == [] and \
        all(c['verdict'] != 'differs' for c in j['diagnosis']['checks']) and \
        any('read-protected (level 1)' in w for w in j['diagnosis']['warnings']) and \
        j['diagnosis']['adapter']['driver'] == 'ch341' and j['diagnosis']['adapter']['latency_timer_ms'] == 0"

# A report that cannot be written: a failure, the old file kept.
echo keep >"$TMPDIR/old.json"
chmod a-w "$TMPDIR"
rc=0; ctl diagnose ttyUSB3 --report "$TMPDIR/old.json" -q 2>"$TMPDIR/err" || rc=$?
chmod u+w "$TMPDIR"
if [ "$(id -u)" != 0 ]; then
        [ $rc = 1 ] || fail "unwritable report: exit $rc"
        [ "$(cat "$TMPDIR/old.json")" = keep ] || fail "the old report was damaged"
fi
expect_rc 2 ctl diagnose ttyUSB3 --report ""
expect_rc 2 ctl info ttyUSB3 --report x.json

# Nothing was written to any board.
for n in 0 1 2 3 4 5 6 7; do
        snapshot ttyUSB$n after
        unchanged ttyUSB$n
done
echo "PASS"
