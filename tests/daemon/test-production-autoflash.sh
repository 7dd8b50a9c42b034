#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Auto-flash on plug (umockdev-sim): a profile armed over D-Bus flashes 8 boards plugged
# one after another, then (those unplugged) 8 new boards plugged at once, each exactly
# once (one log line per UID, the simulator's counters), each with a correct log line;
# an unmatched adapter, a wrong chip, a verify failure, a disarmed profile; the station
# view's counts; then a profile from the config file.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
command -v busctl >/dev/null || skip "busctl missing"
# SetAutoFlash passes a descriptor: GDBus from the system's python3 (python3-gi).
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
M=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager)



# The monitor's events, read with bash alone: a line costs no process (a grep per line
# would make this test slow on a loaded machine). Finished jobs and removed ports are
# noted as they pass, whatever one waits for.
declare -A FINISHED=() REMOVED=()
EVENT=""
next_event() {
        IFS= read -r -t 30 -u 7 EVENT ||
                fail "monitor: nothing for 30 s while waiting for $1 (got: $(cat "$TMPDIR/monitor.log" "$TMPDIR/monitor.err"))"
        printf '%s\n' "$EVENT" >>"$TMPDIR/monitor.log"
        local re='"event":"finished".*"port":"([^"]*)","operation":"([^"]*)","error":"([^"]*)"'
        if [[ $EVENT =~ $re ]]; then
                [ -z "${FINISHED[${BASH_REMATCH[1]}]+x}" ] || fail "${BASH_REMATCH[1]} finished twice: $EVENT"
                FINISHED[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
        fi
        re='"event":"removed".*"port":"([^"]*)"'
        if [[ $EVENT =~ $re ]]; then
                REMOVED[${BASH_REMATCH[1]}]=1
        fi
        return 0
}
# wait_finished ERROR PORT...: each PORT's job ended with ERROR ("" for success).
wait_finished() {
        local want=$1 p
        shift
        for p; do
                while [ -z "${FINISHED[$p]+x}" ]; do
                        next_event "the end of the job on $p"
                done
                [ "${FINISHED[$p]}" = "flash $want" ] || fail "$p: ${FINISHED[$p]}, expected flash $want"
        done
}
wait_removed() {
        local p
        for p; do
                while [ -z "${REMOVED[$p]+x}" ]; do
                        next_event "$p to leave"
                done
        done
}
# wait_event REGEX: the next event (from now) matching REGEX.
wait_event() {
        next_event "$1"
        until [[ $EVENT =~ $1 ]]; do
                next_event "$1"
        done
}

make_hex "$TMPDIR/fw.hex" 0x08000000 3000 7
SHA=$(sha256sum "$TMPDIR/fw.hex" | cut -d' ' -f1)

# A board present at startup is not a plugged board: never touched.
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB0=0x466,serial=STATION00
busctl get-property "${M[@]}" AutoFlash >"$TMPDIR/out" || fail "AutoFlash"
grep -q '"armed" b false' "$TMPDIR/out" || fail "AutoFlash before arming: $(cat "$TMPDIR/out")"

# Bad arguments leave nothing armed.
if set_auto_flash "$TMPDIR/fw.hex" '{"colour": ("s", "red")}' 2>"$TMPDIR/err"; then
        fail "SetAutoFlash took an unknown option"
fi
grep -qi "unknown option" "$TMPDIR/err" || fail "SetAutoFlash: $(cat "$TMPDIR/err")"
echo "not an image" >"$TMPDIR/bad.hex"
if set_auto_flash "$TMPDIR/bad.hex" '{"format": ("s", "hex")}' 2>"$TMPDIR/err"; then
        fail "SetAutoFlash took a bad image"
fi
grep -q "InvalidImage\|cannot be parsed" "$TMPDIR/err" || fail "SetAutoFlash: $(cat "$TMPDIR/err")"
if set_auto_flash "$TMPDIR/fw.hex" '{"entry": ("s", "dtr-nrst,rts-bogus")}' 2>"$TMPDIR/err"; then
        fail "SetAutoFlash took a bad entry sequence"
fi
grep -q "option 'entry'" "$TMPDIR/err" || fail "SetAutoFlash: $(cat "$TMPDIR/err")"
busctl get-property "${M[@]}" AutoFlash >"$TMPDIR/out" || fail "AutoFlash"
grep -q '"armed" b false' "$TMPDIR/out" || fail "armed after bad calls: $(cat "$TMPDIR/out")"

monitor_start
# ("chip": expect-chip's former name, accepted for one release)
set_auto_flash "$TMPDIR/fw.hex" '{"serial": ("s", "STATION*"), "chip": ("q", 0x466), "go": ("b", True),
        "image-name": ("s", "fw-1.2.hex")}' || fail "SetAutoFlash"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["armed"]["data"] and j["data"]["source"]["data"] == "bus" and
        j["data"]["sha256"]["data"] == "'"$SHA"'" and j["data"]["image_name"]["data"] == "fw-1.2.hex" and
        j["data"]["image_size"]["data"] == 3000 and
        j["data"]["go"]["data"] and j["data"]["match"]["data"] == {"serial": {"type": "s", "data": "STATION*"}} and
        j["data"]["expect_chip"]["data"] == 0x466'

# Eight boards one after another: each is flashed as it comes.
FIRST="1 2 3 4 5 6 7 8"
SECOND="21 22 23 24 25 26 27 28"
for n in $FIRST; do
        control "add ttyUSB$n=0x466,serial=STATION$n,uid=$n" >/dev/null
        wait_finished "" /dev/ttyUSB$n
done
# check_flashed N...: the board holds the image, was started, and saw one flash (the
# simulator's counters: one go, the same number of writes on every board).
WRITES=""
check_flashed() {
        local n info w
        for n; do
                control "dump ttyUSB$n $TMPDIR/dump$n.bin" >/dev/null
                cmp -n 3000 "$TMPDIR/dump$n.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB$n does not hold the image"
                info=$(control "info ttyUSB$n")
                [[ $info == *" gos=1 "* ]] || fail "ttyUSB$n was not started once: $info"
                w=$(echo "$info" | sed -n 's/.* writes=\([0-9]*\) .*/\1/p')
                [ -n "$w" ] && [ "$w" -gt 0 ] || fail "ttyUSB$n: no writes: $info"
                : "${WRITES:=$w}"
                [ "$w" = "$WRITES" ] || fail "ttyUSB$n: $w writes, others $WRITES: $info"
        done
}
check_flashed $FIRST
# Unplugged: the ports leave, nothing else happens.
for n in $FIRST; do
        control "remove ttyUSB$n" >/dev/null
done
wait_removed $(printf '/dev/ttyUSB%s ' $FIRST)
# An adapter no profile matches (serial), then eight new boards plugged at once.
control "add ttyUSB9=0x466,serial=OTHER09" >/dev/null
pids=()
for n in $SECOND; do
        control "add ttyUSB$n=0x466,serial=STATION$n,uid=$n" >/dev/null &
        pids+=($!)
done
for p in "${pids[@]}"; do
        wait "$p" || fail "could not plug the second batch"
done
wait_finished "" $(printf '/dev/ttyUSB%s ' $SECOND)
check_flashed $SECOND
# A wrong chip (an F0 board on the station): refused before anything is erased.
control "add ttyUSB10=0x444,serial=STATION10,image=$TMPDIR/fw.hex.bin" >/dev/null
wait_finished io.github.Stm32Isp1.Error.UnsupportedChip /dev/ttyUSB10
# A board whose read-back is corrupted: FAIL, and never started.
control "add ttyUSB11=0x466,serial=STATION11,corrupt-read=6" >/dev/null
wait_finished io.github.Stm32Isp1.Error.VerifyFailed /dev/ttyUSB11
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" '[j["data"][k]["data"] for k in ("started", "passed", "failed")] == [18, 16, 2]'

# Disarmed: the next board stays as it is.
busctl call "${M[@]}" ClearAutoFlash || fail "ClearAutoFlash"
control "add ttyUSB12=0x466,serial=STATION12" >/dev/null
wait_event '"event":"added".*"port":"/dev/ttyUSB12"'
# A job would have started when the port was added, before the bus saw it: a probe
# now must find the port idle, and the log must not name it.
ctl info ttyUSB12 -q || fail "info ttyUSB12"
monitor_stop
# Nothing finished twice, nothing else finished (the probe of ttyUSB12 is not an auto job
# and ended before the monitor stopped, or after: either way it is no flash).
python3 - "$TMPDIR/monitor.log" <<'PY' || fail "monitor: $(cat "$TMPDIR/monitor.log")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
flashes = sorted(e["port"] for e in ev if e["event"] == "finished" and e["operation"] == "flash")
want = sorted("/dev/ttyUSB%d" % n for n in list(range(1, 9)) + list(range(21, 29)) + [10, 11])
assert flashes == want, flashes
PY

for n in 0 9 12; do
        control "info ttyUSB$n" | grep -q ' writes=0 .* gos=0 ' || fail "ttyUSB$n was touched: $(control "info ttyUSB$n")"
done
control "info ttyUSB9" | grep -q ' syncs=0 ' || fail "ttyUSB9 was opened: $(control "info ttyUSB9")"
control "info ttyUSB10" | grep -q ' writes=0 .*page-erases=0 mass-erases=0 .* gos=0 ' ||
        fail "the wrong chip was changed: $(control "info ttyUSB10")"
control "info ttyUSB11" | grep -q ' gos=0 ' || fail "the failed board was started: $(control "info ttyUSB11")"

busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"] == {"armed": {"type": "b", "data": False}}'

# The log: one line per board, in the file and through the client.
ctl log --json >"$TMPDIR/log.json" || fail "log --json"
python3 - "$STATE/results.jsonl" "$TMPDIR/log.json" "$SHA" <<'PY' || fail "the results log: $(cat "$STATE/results.jsonl")"
import json, sys
f = [json.loads(l) for l in open(sys.argv[1])]
c = [json.loads(l) for l in open(sys.argv[2])]
sha = sys.argv[3]
assert f == c, "the client shows something else than the file"
auto = [x for x in f if x["auto"]]
assert len(auto) == 18, len(auto)
assert all(x["operation"] == "flash" and x["image_name"] == "fw-1.2.hex" and x["image_sha256"] == sha for x in auto), auto
first, second = range(1, 9), range(21, 29)
ports = sorted(x["port"] for x in auto)
assert ports == sorted("/dev/ttyUSB%d" % n for n in list(first) + list(second) + [10, 11]), ports
good = [x for x in auto if x["result"] == "pass"]
assert len(good) == 16 and all(x["chip_pid"] == 0x466 and x["chip_name"] == "STM32G03x/04x" and x["started"] and
                               x["bytes_written"] == x["bytes_verified"] == 3000 and x["flash_size"] == 65536 and
                               x["error"] == "" and x["duration_usec"] > 0 for x in good), good
# each board once: one line per UID, the second batch new boards
uids = [x["uid"] for x in good]
assert len(set(uids)) == 16 and all(len(u) == 24 and int(u, 16) for u in uids), uids
assert all(sum(1 for x in f if x["uid"] == u) == 1 for u in uids), "a board flashed twice"
batch = lambda ns: {x["uid"] for x in good if int(x["port"][len("/dev/ttyUSB"):]) in ns}
assert len(batch(first)) == len(batch(second)) == 8 and not batch(first) & batch(second)
assert all(x["adapter_serial"] == "STATION" + x["port"][len("/dev/ttyUSB"):] for x in good), good
assert all(x["physical_path"].startswith("pci-") for x in auto), auto
assert len({x["physical_path"] for x in auto}) == 18, "each adapter in its own USB port"
# the file's timestamps: ordered, and the same instant as timestamp_usec
import datetime
ts = [x["timestamp_usec"] for x in f]
assert ts == sorted(ts), ts
for x in f:
    t = datetime.datetime.strptime(x["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert round(t.timestamp() * 1e6) == x["timestamp_usec"], x
assert all(x["options"]["expect_chip"] == 0x466 and x["options"]["go"] for x in auto), auto
bad = {x["port"]: x for x in auto if x["result"] == "fail"}
assert bad["/dev/ttyUSB10"]["error"].endswith("UnsupportedChip") and bad["/dev/ttyUSB10"]["chip_pid"] == 0x444, bad
assert "0x444" in bad["/dev/ttyUSB10"]["message"], bad
assert bad["/dev/ttyUSB11"]["error"].endswith("VerifyFailed") and "started" not in bad["/dev/ttyUSB11"], bad
# Only the probe of ttyUSB12 by hand, nothing on ttyUSB0 and ttyUSB9.
rest = [x for x in f if not x["auto"]]
assert [(x["port"], x["operation"]) for x in rest] == [("/dev/ttyUSB12", "probe")], rest
PY
ctl log --result fail >"$TMPDIR/out" || fail "log --result fail"
grep -q '^2 entries: 0 passed, 2 failed.$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
# 16 flashes and the probe of ttyUSB12
ctl log --result pass >"$TMPDIR/out" || fail "log --result pass"
grep -q '^17 entries: 17 passed, 0 failed.$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
# The station view: a row per USB slot with its board's UID and counts.
if "$CTL" --help | grep -q 'monitor \[station'; then
        ctl monitor station --once --json >"$TMPDIR/station.json" || fail "monitor station"
        python3 - "$TMPDIR/station.json" "$STATE/results.jsonl" <<'PY' || fail "station: $(cat "$TMPDIR/station.json")"
import json, sys
rows = {r["slot"]: r for r in json.load(open(sys.argv[1]))}
log = [json.loads(l) for l in open(sys.argv[2])]
flash = {x["physical_path"]: x for x in log if x["operation"] == "flash"}
assert set(flash) <= set(rows), (flash.keys(), rows.keys())
for path, x in flash.items():
    r = rows[path]
    assert (r["pass"], r["fail"]) == ((1, 0) if x["result"] == "pass" else (0, 1)), r
    assert r["uid"] == x["uid"] and r["last_result"] == x["result"], (r, x)
    assert r["state"] == ("empty" if 1 <= int(x["port"][len("/dev/ttyUSB"):]) <= 8 else "idle"), r
assert sum(r["pass"] for r in rows.values()) == 16 and sum(r["fail"] for r in rows.values()) == 2
PY
fi
stop_daemon

# A profile from the config file: match on the adapter's USB IDs (FTDI), chip checked.
cat >"$TMPDIR/stm32ispd.conf" <<CONF
[AutoFlash]
Image=$TMPDIR/fw.hex
MatchUSB=0403:6001
ExpectChip=0x466
Erase=mass
Verify=yes
Go=no
Entry=dtr-nrst,rts-boot0
CONF
rm -f "$STATE/results.jsonl"
DAEMON_ARGS="--state-dir=$STATE --config=$TMPDIR/stm32ispd.conf" start_daemon --board ttyUSB0=0x466
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["source"]["data"] == "config" and j["data"]["image_name"]["data"] == "fw.hex" and
        j["data"]["erase"]["data"] == "mass" and not j["data"]["go"]["data"] and
        j["data"]["match"]["data"] == {"vid": {"type": "q", "data": 0x403}, "pid": {"type": "q", "data": 0x6001}} and
        j["data"]["expect_chip"]["data"] == 0x466'
FINISHED=()
monitor_start
control "add ttyUSB1=0x466,adapter=ch340" >/dev/null
# ttyUSB2 runs its code (BOOT0 low) behind an auto-reset circuit: the entry preset
# brings it into the bootloader, the exit sequence back into its application.
# (Old code in its flash: a G0 whose flash was empty at power-up boots the bootloader.)
make_bin "$TMPDIR/old.bin" 4096 9
control "add ttyUSB2=0x466,uid=22,boot0=0,nboot-sel=0,image=$TMPDIR/old.bin,wiring=dtr-nrst,rts-boot0" >/dev/null
wait_finished "" /dev/ttyUSB2
monitor_stop
control "dump ttyUSB2 $TMPDIR/dump.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB2 does not hold the image"
control "info ttyUSB2" | grep -q 'state=user-code .* mass-erases=1 .* gos=0 ' || fail "ttyUSB2: $(control "info ttyUSB2")"
control "info ttyUSB1" | grep -q ' syncs=0 ' || fail "the CH340 was touched: $(control "info ttyUSB1")"
[ "$(wc -l <"$STATE/results.jsonl")" = 1 ] || fail "results: $(cat "$STATE/results.jsonl")"
json_check "$STATE/results.jsonl" 'j["auto"] and j["port"] == "/dev/ttyUSB2" and j["result"] == "pass" and
        j["image_name"] == "fw.hex" and j["options"]["erase"] == "mass" and j["options"]["entry"] == "dtr-nrst,rts-boot0"'

# A config whose image is missing does not start.
sed -i "s|^Image=.*|Image=$TMPDIR/missing.hex|" "$TMPDIR/stm32ispd.conf"
stop_daemon
if "$DAEMON" --bus-address="$BUS_ADDR" --config="$TMPDIR/stm32ispd.conf" 2>"$TMPDIR/err"; then
        fail "the daemon started without its auto-flash image"
fi
grep -q "missing.hex" "$TMPDIR/err" || fail "no word about the image: $(cat "$TMPDIR/err")"
exit 0
