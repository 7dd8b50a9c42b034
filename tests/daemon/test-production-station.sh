#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A fixture station (auto-flash detect=poll, umockdev-sim's "swap"): the adapter stays
# plugged in and boards are swapped behind it. Each board is flashed exactly once (one
# left in place is not flashed again) with the next serial number, a failed board is
# retried once and then left alone and consumes no number, a board put back gets its
# own number again, the counter goes on after a restart of the daemon, nothing is
# polled once disarmed, and the log pairs each UID with its number.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
M=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager)

make_hex "$TMPDIR/fw.hex" 0x08000000 3000 7
# info_field BOARD FIELD: one of the simulator's counters.
info_field() {
        control "info $1" | sed -n "s/.* $2=\([0-9a-fx]*\).*/\1/p"
}
# wait_polled BOARD N: N more polls reached the board in the slot. A chip a poll left
# waiting for a command answers the next poll's second 0x7F with a NACK, so its NACK
# count is the number of polls (there is no event for a poll that changes nothing: the
# counter is read until it gets there).
wait_polled() {
        local i want=$(($(info_field "$1" nacks) + $2))
        for ((i = 0; i < 300; i++)); do
                [ "$(info_field "$1" nacks)" -ge "$want" ] && return 0
                sleep 0.1
        done
        fail "$1: fewer than $2 polls after 30 s: $(control "info $1")"
}
# check_number N: the board in the slot holds the image with N at 0x100 (le32).
check_number() {
        control "dump ttyUSB1 $TMPDIR/dump.bin" >/dev/null
        python3 - "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" "$1" <<'PY' || fail "the board does not hold the image with $1"
import struct, sys
dump, image, n = open(sys.argv[1], "rb").read(), bytearray(open(sys.argv[2], "rb").read()), int(sys.argv[3])
image[0x100:0x104] = struct.pack("<I", n)
assert dump[:len(image)] == bytes(image), (dump[0x100:0x104].hex(), n)
PY
}
# wait_flash ERROR: the next Flash on the fixture ends with ERROR ("" for success).
wait_flash() {
        monitor_wait '"event":"finished".*ttyUSB1.*"flash".*"error":"'"$1"'"'
}

wait_station() {
        local i
        for ((i = 0; i < 300; i++)); do
                busctl get-property -j "${P[@]}" Station >"$TMPDIR/st.json" || fail "Station"
                python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["data"]["state"]["data"] != sys.argv[2])' \
                        "$TMPDIR/st.json" "$1" && return 0
                sleep 0.1
        done
        fail "the station never got to $1: $(cat "$TMPDIR/st.json")"
}
# swap_board SPEC: the operator takes the board out (the slot goes quiet for more than
# one interval: the station says so) and puts the next one in. Taken out and put in at
# the very instant of a poll, a board could hear the middle of the poll's exchange as
# its first byte and stay deaf until it is reseated (facts §4); a hand is never that fast.
swap_board() {
        control "swap ttyUSB1 none" | grep -q "^ok" || fail "swap none"
        wait_station waiting
        json_check "$TMPDIR/st.json" 'j["data"]["text"]["data"] == "waiting for a board"'
        control "swap ttyUSB1 $1" | grep -q "^ok" || fail "swap $1"
}

# The fixture's adapter is there from the start, with a board in it.
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB1=0x466,serial=FIXTURE1,uid=1 \
        --board ttyUSB2=0x466,serial=OTHER2,uid=99
monitor_start
# Bad values are refused, naming the key.
for bad in '"detect": ("s", "sometimes")' '"poll-ms": ("u", 99)' '"poll-ms": ("u", 10001)'; do
        if set_auto_flash "$TMPDIR/fw.hex" "{$bad}" 2>"$TMPDIR/err"; then
                fail "SetAutoFlash took $bad"
        fi
        grep -q "option '" "$TMPDIR/err" || fail "SetAutoFlash $bad: $(cat "$TMPDIR/err")"
done
set_auto_flash "$TMPDIR/fw.hex" '{"serial": ("s", "FIXTURE*"), "detect": ("s", "poll"), "poll-ms": ("u", 100),
        "image-name": ("s", "fw.hex"), "chip": ("q", 0x466), "sn-address": ("t", 0x08000100),
        "sn-first": ("t", 1000)}' || fail "SetAutoFlash"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["detect"]["data"] == "poll" and j["data"]["poll_ms"]["data"] == 100 and
        j["data"]["sn_address"]["data"] == 0x08000100 and j["data"]["sn_format"]["data"] == "le32"'

# The board present at arming is found by the poll and flashed, with the first number.
wait_flash ""
check_number 1000
cmp -s "$TMPDIR/fw.hex.bin" <(head -c 3000 "$TMPDIR/dump.bin") && fail "the caller's image, not a numbered one"
P=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1/port/ttyUSB1 io.github.Stm32Isp1.Port)
busctl get-property -j "${P[@]}" Station >"$TMPDIR/st.json" || fail "Station"
json_check "$TMPDIR/st.json" 'j["data"]["state"]["data"] == "passed" and
        j["data"]["text"]["data"] == "PASS — take the board out"'
# The station view: the slot in the operator's words, the other port marked as matching
# no profile, the armed profile named, the columns aligned.
ctl monitor station --once --json >"$TMPDIR/view.json" || fail "monitor station --once --json"
json_check "$TMPDIR/view.json" '{r["device"]: (r["station"], r["profile"]) for r in j} ==
        {"/dev/ttyUSB1": ("PASS — take the board out", "poll"), "/dev/ttyUSB2": ("no profile matches this port", "unmatched")}'
ctl monitor station --once >"$TMPDIR/view.txt" || fail "monitor station --once"
python3 - "$TMPDIR/view.txt" <<'PY' || fail "station view: $(cat "$TMPDIR/view.txt")"
import sys
lines = open(sys.argv[1]).read().splitlines()
col = lines[0].index("STATION")
assert lines[1][col:].startswith("PASS — take the board out"), lines
assert lines[2][col:].startswith("no profile matches this port"), lines
assert "Armed: fw.hex (SHA-256 " in lines[-1] and "detect poll, serial numbers from counter default." in lines[-1], lines
PY
# Left in place: polled (two 0x7F: the chip waits for a command), never flashed again.
writes=$(info_field ttyUSB1 writes)
wait_polled ttyUSB1 5
[ "$(info_field ttyUSB1 writes)" = "$writes" ] || fail "a board left in place was written again: $(control "info ttyUSB1")"

# Two more boards swapped in one after another: each flashed once.
for uid in 2 3; do
        swap_board 0x466,uid=$uid
        wait_flash ""
        check_number $((999 + uid))
        writes=$(info_field ttyUSB1 writes)
        wait_polled ttyUSB1 4
        [ "$(info_field ttyUSB1 writes)" = "$writes" ] || fail "board $uid was written again"
done

# A board that fails (another chip than the profile expects): FAIL, one automatic
# retry, then left alone.
swap_board 0x444,uid=4
wait_flash "io.github.Stm32Isp1.Error.UnsupportedChip"
wait_flash "io.github.Stm32Isp1.Error.UnsupportedChip"
busctl get-property -j "${P[@]}" Station >"$TMPDIR/st.json" || fail "Station"
json_check "$TMPDIR/st.json" 'j["data"]["state"]["data"] == "failed" and
        j["data"]["text"]["data"].startswith("FAIL: Chip 0x444 is not the expected 0x466") and
        j["data"]["text"]["data"].endswith(" — take the board out")'
writes=$(info_field ttyUSB1 writes)
wait_polled ttyUSB1 5
[ "$(info_field ttyUSB1 writes)" = "$writes" ] || fail "a board that failed twice was written again"
# A board that passes after it (the failed one taken out): the failure took no number.
swap_board 0x466,uid=5
wait_flash ""
check_number 1003
# The first board again: a new insertion, flashed again, with its own number.
swap_board 0x466,uid=1
wait_flash ""
check_number 1000
busctl call "${M[@]}" ClearAutoFlash || fail "ClearAutoFlash"
monitor_stop

# Disarmed: no more polls (a last one may have been on its way).
nacks=$(info_field ttyUSB1 nacks)
ctl list >/dev/null || fail "list"
ctl list >/dev/null || fail "list"
[ "$(info_field ttyUSB1 nacks)" -le $((nacks + 1)) ] || fail "polled after ClearAutoFlash"
# The other adapter matched no profile: never opened.
[ "$(info_field ttyUSB2 syncs)" = 0 ] || fail "ttyUSB2 was polled: $(control "info ttyUSB2")"

stop_daemon

# The counter goes on after a restart: the next new board gets 1004.
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB1=0x466,serial=FIXTURE1,uid=6
monitor_start
set_auto_flash "$TMPDIR/fw.hex" '{"serial": ("s", "FIXTURE*"), "detect": ("s", "poll"), "poll-ms": ("u", 100),
        "image-name": ("s", "fw.hex"), "chip": ("q", 0x466), "sn-address": ("t", 0x08000100),
        "sn-first": ("t", 1000)}' || fail "SetAutoFlash after the restart"
wait_flash ""
check_number 1004
busctl call "${M[@]}" ClearAutoFlash || fail "ClearAutoFlash"
monitor_stop
# By hand, without naming the port (the daemon knows one): the chip keeps its number;
# another counter gives it that counter's first.
ctl flash "$TMPDIR/fw.hex" --sn-address 0x08000100 --sn-first 1000 --json >"$TMPDIR/flash.json" ||
        fail "flash with a serial number: $(cat "$TMPDIR/flash.json")"
json_check "$TMPDIR/flash.json" 'j["result"]["serial_number"] == 1004'
check_number 1004
ctl flash "$TMPDIR/fw.hex" --sn-address 0x08000100 --sn-first 7 --sn-counter rev-b --sn-format be32 -q ||
        fail "flash with another counter"
control "dump ttyUSB1 $TMPDIR/dump.bin" >/dev/null
[ "$(od -An -tx1 -j256 -N4 "$TMPDIR/dump.bin" | tr -d ' ')" = 00000007 ] || fail "rev-b: $(od -An -tx1 -j256 -N4 "$TMPDIR/dump.bin")"
expect_rc 2 ctl flash "$TMPDIR/fw.hex" --sn-first 7
expect_rc 2 ctl flash ttyUSB1 "$TMPDIR/fw.hex" --sn-address 0x08000100 --sn-format text:%s

# The log: one pass per good board (UIDs 1, 2, 3, 5, 1 again, 6), two failures of board 4,
# each pass with its board's number.
python3 - "$STATE/results.jsonl" <<'PY' || fail "the results log: $(cat "$STATE/results.jsonl")"
import json, sys
f = [json.loads(l) for l in open(sys.argv[1])]
numbers = [(x["uid"], x.get("serial_number")) for x in f]
u = [x["uid"] for x in f]
assert [n for _, n in numbers] == [1000, 1001, 1002, None, None, 1003, 1000, 1004, 1004, 7], numbers
assert u[0] == u[6] and len({u[0], u[1], u[2], u[3], u[5], u[7]}) == 6, u
assert not f[8]["auto"] and not f[9]["auto"] and f[7]["uid"] == f[8]["uid"] == f[9]["uid"], f
f = f[:7]
assert all(x["auto"] and x["port"] == "/dev/ttyUSB1" and x["operation"].lower() == "flash" for x in f), f
good = [x["uid"] for x in f if x["result"] == "pass"]
bad = [x["uid"] for x in f if x["result"] == "fail"]
assert len(good) == 5 and len(set(good)) == 4 and good[0] == good[4], good
assert len(bad) == 2 and len(set(bad)) == 1 and bad[0] not in good, bad
assert [x["result"] for x in f] == ["pass", "pass", "pass", "fail", "fail", "pass", "pass"], f
PY
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); c=j["counters"]["default"]; assert c["next"] == 1005 and c["free"] == [] and len(c["chips"]) == 5 and j["counters"]["rev-b"]["next"] == 8 and all(v["written"] for v in c["chips"].values()), j' "$STATE/serials.json" ||
        fail "serials.json: $(cat "$STATE/serials.json")"
# The log finds a board by its number and shows the number next to the UID.
ctl log --serial 1001 --json >"$TMPDIR/log.json" || fail "log --serial"
json_check "$TMPDIR/log.json" 'j["serial_number"] == 1001 and j["result"] == "pass"'
uid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uid"])' "$TMPDIR/log.json")
ctl log --uid "$uid" >"$TMPDIR/log.txt" || fail "log --uid"
grep -q "SERIAL" "$TMPDIR/log.txt" && grep -q "$uid  *1001 " "$TMPDIR/log.txt" || fail "log --uid: $(cat "$TMPDIR/log.txt")"
ctl log --serial 999 >"$TMPDIR/log.txt" || fail "log --serial 999"
grep -q "^No results" "$TMPDIR/log.txt" || fail "log --serial 999: $(cat "$TMPDIR/log.txt")"
# The engineer's numbers: per slot and in total, failures ranked.
ctl log --stats --json >"$TMPDIR/stats.json" || fail "log --stats"
json_check "$TMPDIR/stats.json" 'j["total"]["passed"] == 8 and j["total"]["failed"] == 2 and
        abs(j["total"]["yield"] - 0.8) < 1e-9 and j["total"]["failures"] == [{"reason": "UnsupportedChip", "count": 2}] and
        len(j["slots"]) == 1 and j["slots"][0]["port"] == "/dev/ttyUSB1"'
ctl log --stats >"$TMPDIR/stats.txt" || fail "log --stats"
grep -q "^Total: 8 passed, 2 failed, yield 80.0%" "$TMPDIR/stats.txt" && grep -q "  *2  UnsupportedChip" "$TMPDIR/stats.txt" ||
        fail "log --stats: $(cat "$TMPDIR/stats.txt")"
ctl log --stats --since @$(( $(date +%s) + 3600 )) --json >"$TMPDIR/stats.json" || fail "log --stats --since"
json_check "$TMPDIR/stats.json" 'j["total"]["passed"] == 0 and j["slots"] == []'
stop_daemon

# flash IMAGE with several ports: they are listed, exit 2.
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB1=0x466 --board ttyUSB2=0x466
expect_rc 2 ctl flash "$TMPDIR/fw.hex" 2>"$TMPDIR/err"
grep -q "several ports" "$TMPDIR/err" && grep -q "/dev/ttyUSB1" "$TMPDIR/err" && grep -q "/dev/ttyUSB2" "$TMPDIR/err" ||
        fail "flash without a port: $(cat "$TMPDIR/err")"
[ "$(info_field ttyUSB1 syncs)" = 0 ] && [ "$(info_field ttyUSB2 syncs)" = 0 ] || fail "a port was touched"
stop_daemon
