#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl monitor station (umockdev-sim, a config-file auto-flash profile): one row per
# slot with state, chip, last UID and pass/fail counts. Boards auto-flashed (one fails
# verify, one is the wrong chip) and flashed by hand; a slot emptied by an unplug keeps its
# row; a re-plug in the same slot counts on the same row, over real udev events (another
# adapter, tty name and board in the same USB port: umockdev-sim's usb-port=) and for a
# TCP port removed and added again (its slot is its URL, no udev); the live counts
# (--json, plain lines) agree with the log; a monitor started after the flashes, and after
# a daemon restart, gets the counts from the results log.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
command -v busctl >/dev/null || skip "busctl missing"
[ -x "$TOP_BUILDDIR/tests/rig/sim/stm32-bootsim" ] || skip "stm32-bootsim is not built"
# The view needs the command line of client/main.c ('monitor [station [--once] [--since DATE]]').
"$CTL" --help | grep -q 'monitor \[station' || skip "this stm32ispctl has no 'monitor station'"

# The completion knows the view and its options.
out=$(bash -c '
        _init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
                             cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD - 1]}; }
        . "$1"
        comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _stm32ispctl; echo "${COMPREPLY[*]}"; }
        comp stm32ispctl monitor st
        comp stm32ispctl --json monitor station --o
        comp stm32ispctl monitor station --si' _ "$TOP_SRCDIR/client/stm32ispctl.bash" 2>&1)
[ "$out" = $'station\n--once\n--since=' ] || fail "completion: $out"

# Usage errors, and no daemon on the bus.
start_bus
expect_rc 2 "$CTL" --bus-address="$BUS_ADDR" monitor stations
expect_rc 2 "$CTL" --bus-address="$BUS_ADDR" monitor --once
expect_rc 2 "$CTL" --bus-address="$BUS_ADDR" monitor --since 2020-01-01
expect_rc 2 "$CTL" --bus-address="$BUS_ADDR" monitor station extra
expect_rc 3 "$CTL" --bus-address="$BUS_ADDR" monitor station --once
expect_rc 3 "$CTL" --bus-address="$BUS_ADDR" monitor station --json

STATE="$TMPDIR/state"
mkdir -p "$STATE"
M=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager)
make_hex "$TMPDIR/fw.hex" 0x08000000 3000 7
# MatchPort=*: the plugged adapters and the TCP port added below (without it a port
# added by name is never auto-flashed).
cat >"$TMPDIR/stm32ispd.conf" <<CONF
[AutoFlash]
Image=$TMPDIR/fw.hex
ExpectChip=0x466
MatchPort=*
CONF

# station_wait REGEX: like monitor_wait, but also finds a line already read (boards
# flashed at the same time finish in any order).
station_wait() {
        grep -qi -- "$1" "$TMPDIR/monitor.log" || monitor_wait "$1"
}

# ttyUSB0 is there at startup: not a plugged board, so not auto-flashed.
DAEMON_ARGS="--state-dir=$STATE --config=$TMPDIR/stm32ispd.conf" start_daemon --board ttyUSB0=0x466,uid=100

# 1. The live view as JSON while boards are plugged and flashed.
monitor_start station
grep -q '"event":"slot".*"device":"/dev/ttyUSB0","object":"[^"]*","state":"idle".*"pass":0,"fail":0' \
        "$TMPDIR/monitor.log" || fail "no row for ttyUSB0: $(cat "$TMPDIR/monitor.log")"
control "add ttyUSB1=0x466,uid=1" >/dev/null
control "add ttyUSB2=0x466,uid=2" >/dev/null
control "add ttyUSB3=0x466,uid=3,corrupt-read=6" >/dev/null
control "add ttyUSB4=0x444,uid=4" >/dev/null
station_wait '"device":"/dev/ttyUSB1".*"state":"idle".*"pass":1,"fail":0,"last_result":"pass"'
station_wait '"device":"/dev/ttyUSB2".*"state":"idle".*"pass":1,"fail":0,"last_result":"pass"'
station_wait '"device":"/dev/ttyUSB3".*"state":"idle".*"pass":0,"fail":1,"last_result":"fail","last_error":"VerifyFailed"'
station_wait '"device":"/dev/ttyUSB4".*"state":"idle".*"pass":0,"fail":1,"last_result":"fail","last_error":"UnsupportedChip"'
# By hand: counted too.
ctl flash ttyUSB1 "$TMPDIR/fw.hex" -q || fail "flash ttyUSB1"
ctl flash ttyUSB0 "$TMPDIR/fw.hex" -q || fail "flash ttyUSB0"
station_wait '"device":"/dev/ttyUSB1".*"state":"idle".*"pass":2,"fail":0'
station_wait '"device":"/dev/ttyUSB0".*"state":"idle".*"pass":1,"fail":0'
# Other operations are not flashes: no count.
ctl info ttyUSB2 -q || fail "info ttyUSB2"
# An unplug empties the slot; its row stays.
control "remove ttyUSB2" >/dev/null
station_wait '"slot":"pci-0000:00:14.0-usb-0:3:1.0",.*"device":"","object":"","state":"empty".*"pass":1,"fail":0'
# Another adapter (another tty name, another board: uid=5) plugged into the same USB
# port, auto-flashed: the same row counts on, with the new device and the new UID
# (phase 3 compares it with the log).
control "add ttyUSB5=0x466,uid=5,usb-port=3" | grep -qx ok || fail "add ttyUSB5 in USB port 3"
station_wait '"slot":"pci-0000:00:14.0-usb-0:3:1.0",.*"device":"/dev/ttyUSB5",.*"state":"idle".*"pass":2,"fail":0,"last_result":"pass"'
monitor_stop
cp "$TMPDIR/monitor.log" "$TMPDIR/live.json"
grep -q '"state":"writing"' "$TMPDIR/live.json" || fail "no writing state: $(cat "$TMPDIR/live.json")"
# ttyUSB5 showed up in port 3's row only: no row of its own, not even for a moment.
! grep '"device":"/dev/ttyUSB5"' "$TMPDIR/live.json" | grep -qv '"slot":"pci-0000:00:14.0-usb-0:3:1.0"' ||
        fail "ttyUSB5 outside its slot: $(cat "$TMPDIR/live.json")"

# 2. The plain-line view (not a terminal) over a re-plug in one slot: a TCP port (no USB
# path: its slot is its URL) removed and added again with the next board behind it.
start_tcp_server "$TOP_BUILDDIR/tests/rig/sim/stm32-bootsim" --pid 0x466
rm -f "$TMPDIR/text.fifo"
mkfifo "$TMPDIR/text.fifo"
env --default-signal=INT "$CTL" --bus-address="$BUS_ADDR" monitor station >"$TMPDIR/text.fifo" 2>"$TMPDIR/monitor.err" &
MON_PID=$!
exec 7<"$TMPDIR/text.fifo"
: >"$TMPDIR/monitor.log"
monitor_wait '^TIME  *SLOT  *DEVICE  *STATE  *PROG  *CHIP  *LAST UID  *PASS  *FAIL  *STATION$'
monitor_wait '^[0-9:]* usb-0:5:1.0  *ttyUSB4  *idle  *-  *F03xx4/6 .* 0  *1  *FAIL: Chip 0x444 is not the expected 0x466 — take the board out$'
busctl call "${M[@]}" AddPort 'sa{sv}' "$TCP_URL" 0 >"$TMPDIR/out" || fail "AddPort"
TCP_OBJ=$(sed -n 's/^o "\(.*\)"$/\1/p' "$TMPDIR/out")
[ -n "$TCP_OBJ" ] || fail "AddPort: $(cat "$TMPDIR/out")"
monitor_wait "^[0-9:]* $TCP_URL  *$TCP_URL  *idle  *-  *G03x/04x  *[0-9a-f]\{24\}  *1  *0  *PASS — take the board out$"
busctl call "${M[@]}" RemovePort o "$TCP_OBJ" || fail "RemovePort"
monitor_wait "^[0-9:]* $TCP_URL  *-  *empty  .*  *1  *0  *passed$"
busctl call "${M[@]}" AddPort 'sa{sv}' "$TCP_URL" 0 >/dev/null || fail "AddPort again"
monitor_wait "^[0-9:]* $TCP_URL  *$TCP_URL  *idle  *-  *G03x/04x  *[0-9a-f]\{24\}  *2  *0  *PASS — take the board out$"
monitor_stop
[ "$(grep -c "^[0-9:]* $TCP_URL " "$TMPDIR/monitor.log")" -ge 5 ] || fail "too few lines: $(cat "$TMPDIR/monitor.log")"
# No progress in the lines (a change is anything else).
! grep -q '[0-9]%' "$TMPDIR/monitor.log" || fail "progress in the lines: $(cat "$TMPDIR/monitor.log")"
stop_tcp_board

# 3. Started after the flashes: the counts come from the log.
ctl monitor station --once --json >"$TMPDIR/once.json" || fail "monitor station --once --json"
ctl monitor station --once >"$TMPDIR/once.txt" || fail "monitor station --once"
python3 - "$TMPDIR/once.json" "$TMPDIR/once.txt" "$TMPDIR/live.json" "$STATE/results.jsonl" "$TCP_URL" <<'PY' ||
import json, sys
rows = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
live = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
log = [json.loads(l) for l in open(sys.argv[4])]
tcp = sys.argv[5]

flashes = [e for e in log if e["operation"] == "flash"]
by_port = {e["port"]: e for e in flashes}           # the last flash of each port
slot_of = {e["port"]: e["physical_path"] or e["port"] for e in log}
# ttyUSB2 and then ttyUSB5 sat in USB port 3: one slot, ttyUSB5's board the last flashed
assert slot_of["/dev/ttyUSB2"] == slot_of["/dev/ttyUSB5"] == "pci-0000:00:14.0-usb-0:3:1.0", slot_of
assert by_port["/dev/ttyUSB2"]["uid"] != by_port["/dev/ttyUSB5"]["uid"], by_port
want = {"/dev/ttyUSB0": (1, 0, "pass", ""), "/dev/ttyUSB1": (2, 0, "pass", ""), "/dev/ttyUSB5": (2, 0, "pass", ""),
        "/dev/ttyUSB3": (0, 1, "fail", "VerifyFailed"), "/dev/ttyUSB4": (0, 1, "fail", "UnsupportedChip"),
        tcp: (2, 0, "pass", "")}
assert len(rows) == len(want), rows
byslot = {r["slot"]: r for r in rows}
for port, (p, f, res, err) in want.items():
    r = byslot[slot_of[port]]
    assert (r["pass"], r["fail"], r["last_result"], r["last_error"]) == (p, f, res, err), (port, r)
    assert r["uid"] == by_port[port]["uid"], (port, r, by_port[port])
    assert r["chip"] == by_port[port]["chip_name"], (port, r)
    assert r["last_timestamp_usec"] == by_port[port]["timestamp_usec"], (port, r)
    assert r["last_timestamp"] == by_port[port]["timestamp"], (port, r)
# slots are USB paths (ID_PATH), the TCP port its URL; port 3 holds ttyUSB5 now
assert all(byslot[slot_of["/dev/ttyUSB%d" % n]]["slot"].startswith("pci-") for n in range(6))
assert byslot[slot_of["/dev/ttyUSB5"]]["state"] == "idle" and byslot[slot_of["/dev/ttyUSB5"]]["device"] == "/dev/ttyUSB5"
assert byslot[tcp]["state"] == "idle" and byslot[tcp]["device"] == tcp
assert byslot[slot_of["/dev/ttyUSB1"]]["device"] == "/dev/ttyUSB1"
assert len({r["uid"] for r in rows if r["last_result"] == "pass"}) == 4   # ttyUSB0, 1, 5 and the TCP board
assert all(len(r["uid"]) == 24 for r in rows if r["last_result"] == "pass")
# the live view's last row of each slot says the same (phase 1's slots)
last = {}
for e in live:
    if e["event"] == "slot":
        last[e["slot"]] = e
for n in range(6):
    s = slot_of["/dev/ttyUSB%d" % n]
    for k in ("pass", "fail", "uid", "last_result", "last_error", "chip", "last_timestamp_usec"):
        assert last[s][k] == byslot[s][k], (s, k, last[s], byslot[s])
# the text table: the same rows, by name
assert text[0].split() == ["SLOT", "DEVICE", "STATE", "PROG", "CHIP", "LAST", "UID", "PASS", "FAIL", "STATION"], text
lines = {l.split()[0]: l.split() for l in text[1:-1]}
assert len(lines) == len(rows), text
for r in rows:
    t = lines[r["name"]]
    assert t[2] == r["state"] and t[5] == (r["uid"] or "-"), (t, r)
    assert [int(t[6]), int(t[7])] == [r["pass"], r["fail"]], (t, r)
    assert " ".join(t[8:]) == " ".join(r["station"].split()), (t, r)
    assert r["station"] in ("passed", "PASS — take the board out") if r["last_result"] == "pass" else \
        r["station"].startswith("FAIL: ") or r["station"].startswith("failed: "), r
assert lines["usb-0:3:1.0"][1] == "ttyUSB5", text
# aligned, the long TCP URL included: every row's state starts under STATE
col = text[0].index("STATE")
assert any(len(l.split()[0]) > 11 for l in text[1:-1]), text
for l in text[1:-1]:
    assert l[col - 1] == " " and l[col] != " " and l[col:].split()[0] == l.split()[2], (l, text)
assert text[-1].startswith("6 slots: 7 passed, 2 failed since "), text[-1]
PY
        fail "station rows: $(cat "$TMPDIR/once.json" "$TMPDIR/once.txt")"

# 4. On a terminal (script(1) gives it one): the table, redrawn in place on a change.
if command -v script >/dev/null; then
        rm -f "$TMPDIR/tty.fifo"
        mkfifo "$TMPDIR/tty.fifo"
        script -qfec "stty cols 160; exec $CTL --bus-address=$BUS_ADDR monitor station" /dev/null \
                >"$TMPDIR/tty.fifo" 2>&1 &
        TTY_PID=$!
        exec 8<"$TMPDIR/tty.fifo"
        : >"$TMPDIR/tty.log"
        # tty_wait TEXT: reads the terminal's lines until one holds TEXT.
        tty_wait() {
                local line
                while IFS= read -r -t 30 -u 8 line; do
                        printf '%s\n' "$line" >>"$TMPDIR/tty.log"
                        [[ $line == *"$1"* ]] && return 0
                done
                fail "terminal: nothing like $1 (got: $(cat -v "$TMPDIR/tty.log"))"
        }
        tty_wait "6 slots: 7 passed, 2 failed since "
        ctl flash ttyUSB0 "$TMPDIR/fw.hex" -q || fail "flash ttyUSB0"
        # The cursor goes back up over the table (header, 6 rows, summary) and redraws it.
        tty_wait $'\e[8ASLOT '
        tty_wait "6 slots: 8 passed, 2 failed since "
        grep -q $'^usb-0:1:1.0 *ttyUSB0 *idle *- *G03x/04x *[0-9a-f]\{24\} *2 *0  passed\e\[K' "$TMPDIR/tty.log" ||
                fail "terminal: $(cat -v "$TMPDIR/tty.log")"
        pkill -INT -P "$TTY_PID" || true
        wait "$TTY_PID" || true
        exec 8<&-
        ctl monitor station --once --json >"$TMPDIR/once.json" || fail "monitor station --once --json"
        json_check "$TMPDIR/once.json" 'sum(r["pass"] for r in j) == 8'
fi

# 5. After a restart, nothing plugged: every slot empty, the counts from the log.
stop_daemon
DAEMON_ARGS="--state-dir=$STATE --config=$TMPDIR/stm32ispd.conf" start_daemon
ctl monitor station --once --json >"$TMPDIR/again.json" || fail "monitor station --once --json after a restart"
python3 - "$TMPDIR/once.json" "$TMPDIR/again.json" <<'PY' || fail "after a restart: $(cat "$TMPDIR/again.json")"
import json, sys
before = {r["slot"]: r for r in json.load(open(sys.argv[1]))}
after = {r["slot"]: r for r in json.load(open(sys.argv[2]))}
assert before.keys() == after.keys(), (before.keys(), after.keys())
for s, r in after.items():
    assert r["state"] == "empty" and r["device"] == "" and r["progress"] is None, r
    for k in ("pass", "fail", "uid", "chip", "last_result", "last_error"):
        assert r[k] == before[s][k], (s, k, r, before[s])
PY
# --since: a window without flashes has no rows.
ctl monitor station --once --json --since "$(date -d tomorrow +%Y-%m-%d)" >"$TMPDIR/out" || fail "--since"
[ "$(cat "$TMPDIR/out")" = "[]" ] || fail "--since tomorrow: $(cat "$TMPDIR/out")"
ctl monitor station --once --since "$(date -d tomorrow +%Y-%m-%d)" >"$TMPDIR/out" || fail "--since"
grep -q '^0 slots: 0 passed, 0 failed since ' "$TMPDIR/out" || fail "--since tomorrow: $(cat "$TMPDIR/out")"
ctl monitor station --once --json --since "$(date -d yesterday +%Y-%m-%d)" >"$TMPDIR/out" || fail "--since"
json_check "$TMPDIR/out" 'sum(r["pass"] for r in j) == (8 if "'"$(command -v script)"'" else 7) and sum(r["fail"] for r in j) == 2'
echo PASS
