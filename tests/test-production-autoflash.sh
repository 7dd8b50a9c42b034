#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Auto-flash on plug (umockdev-sim): a profile armed over D-Bus flashes 8 boards plugged
# one after another and then at once, each exactly once, each with a correct log line;
# an unmatched adapter, a wrong chip, a verify failure, a disarmed profile; then a profile
# from the config file.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
command -v busctl >/dev/null || skip "busctl missing"
# SetAutoFlash passes a descriptor: GDBus from the system's python3 (python3-gi).
GI_PYTHON=""
for p in /usr/bin/python3 python3; do
        if "$p" -c 'import gi' 2>/dev/null; then
                GI_PYTHON=$p
                break
        fi
done
[ -n "$GI_PYTHON" ] || skip "no python3 with python3-gi"
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
M=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager)


# set_auto_flash FILE 'PYTHON-DICT of name: (type, value)': Manager.SetAutoFlash with the
# file's descriptor (busctl cannot pass one). Prints the D-Bus error on failure.
set_auto_flash() {
        "$GI_PYTHON" - "$BUS_ADDR" "$1" "$2" <<'PY'
import sys
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
addr, path, opts = sys.argv[1], sys.argv[2], eval(sys.argv[3])
bus = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
fds = Gio.UnixFDList.new()
with open(path, "rb") as f:
    index = fds.append(f.fileno())
options = {k: GLib.Variant(t, v) for k, (t, v) in opts.items()}
try:
    bus.call_with_unix_fd_list_sync("io.github.Stm32Isp1", "/io/github/Stm32Isp1", "io.github.Stm32Isp1.Manager",
                                    "SetAutoFlash", GLib.Variant("(ha{sv})", (index, options)), None,
                                    Gio.DBusCallFlags.NONE, 10000, fds, None)
except GLib.Error as e:
    print(e.message, file=sys.stderr)
    sys.exit(1)
PY
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
set_auto_flash "$TMPDIR/fw.hex" '{"serial": ("s", "STATION*"), "chip": ("q", 0x466), "go": ("b", True),
        "image-name": ("s", "fw-1.2.hex")}' || fail "SetAutoFlash"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["armed"]["data"] and j["data"]["source"]["data"] == "bus" and
        j["data"]["sha256"]["data"] == "'"$SHA"'" and j["data"]["image_name"]["data"] == "fw-1.2.hex" and
        j["data"]["go"]["data"] and j["data"]["match"]["data"] == {"serial": {"type": "s", "data": "STATION*"},
        "chip": {"type": "q", "data": 0x466}}'

# Four boards one after another: each is flashed as it comes.
for n in 1 2 3 4; do
        control "add ttyUSB$n=0x466,serial=STATION0$n,uid=$n" >/dev/null
        monitor_wait "\"event\":\"finished\".*\"port\":\"/dev/ttyUSB$n\",\"operation\":\"flash\",\"error\":\"\""
done
# An adapter no profile matches (serial), then four boards at once.
control "add ttyUSB9=0x466,serial=OTHER09" >/dev/null
for n in 5 6 7 8; do
        control "add ttyUSB$n=0x466,serial=STATION0$n,uid=$n" >/dev/null
done
for n in 5 6 7 8; do
        grep -qi "\"event\":\"finished\".*\"port\":\"/dev/ttyUSB$n\",\"operation\":\"flash\",\"error\":\"\"" \
                "$TMPDIR/monitor.log" ||
                monitor_wait "\"event\":\"finished\".*\"port\":\"/dev/ttyUSB$n\",\"operation\":\"flash\",\"error\":\"\""
done
# A wrong chip (an F0 board on the station): refused before anything is erased.
control "add ttyUSB10=0x444,serial=STATION10,image=$TMPDIR/fw.hex.bin" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB10","operation":"flash","error":"io.github.Stm32Isp1.Error.UnsupportedChip"'
# A board whose read-back is corrupted: FAIL, and never started.
control "add ttyUSB11=0x466,serial=STATION11,corrupt-read=6" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB11","operation":"flash","error":"io.github.Stm32Isp1.Error.VerifyFailed"'
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" '[j["data"][k]["data"] for k in ("started", "passed", "failed")] == [10, 8, 2]'

# Disarmed: the next board stays as it is.
busctl call "${M[@]}" ClearAutoFlash || fail "ClearAutoFlash"
control "add ttyUSB12=0x466,serial=STATION12" >/dev/null
monitor_wait '"event":"added".*"port":"/dev/ttyUSB12"'
# A job would have started when the port was added, before the bus saw it: a probe
# now must find the port idle, and the log must not name it.
ctl info ttyUSB12 -q || fail "info ttyUSB12"
monitor_stop

for n in 1 2 3 4 5 6 7 8; do
        control "dump ttyUSB$n $TMPDIR/dump$n.bin" >/dev/null
        cmp -n 3000 "$TMPDIR/dump$n.bin" "$TMPDIR/fw.hex.bin" || fail "ttyUSB$n does not hold the image"
        control "info ttyUSB$n" | grep -q ' gos=1 ' || fail "ttyUSB$n was not started: $(control "info ttyUSB$n")"
done
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
assert len(auto) == 10, len(auto)
assert all(x["operation"] == "Flash" and x["image_name"] == "fw-1.2.hex" and x["image_sha256"] == sha for x in auto), auto
ports = sorted(x["port"] for x in auto)
assert ports == sorted("/dev/ttyUSB%d" % n for n in range(1, 12) if n != 9), ports
good = [x for x in auto if x["result"] == "pass"]
assert len(good) == 8 and all(x["chip_pid"] == 0x466 and x["started"] and x["bytes_verified"] == 3000 for x in good), good
assert len({x["uid"] for x in good}) == 8 and all(len(x["uid"]) == 24 for x in good), good
assert all(x["adapter_serial"] == "STATION0" + x["port"][-1] for x in good), good
assert all(x["options"]["expect_chip"] == 0x466 and x["options"]["go"] for x in auto), auto
bad = {x["port"]: x for x in auto if x["result"] == "fail"}
assert bad["/dev/ttyUSB10"]["error"].endswith("UnsupportedChip") and bad["/dev/ttyUSB10"]["chip_pid"] == 0x444, bad
assert "0x444" in bad["/dev/ttyUSB10"]["message"], bad
assert bad["/dev/ttyUSB11"]["error"].endswith("VerifyFailed") and "started" not in bad["/dev/ttyUSB11"], bad
# Only the probe of ttyUSB12 by hand, nothing on ttyUSB0 and ttyUSB9.
rest = [x for x in f if not x["auto"]]
assert [(x["port"], x["operation"]) for x in rest] == [("/dev/ttyUSB12", "Probe")], rest
PY
ctl log --result fail >"$TMPDIR/out" || fail "log --result fail"
grep -q '^2 entries: 0 passed, 2 failed.$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
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
        j["data"]["match"]["data"] == {"vid": {"type": "q", "data": 0x403}, "pid": {"type": "q", "data": 0x6001},
        "chip": {"type": "q", "data": 0x466}}'
monitor_start
control "add ttyUSB1=0x466,adapter=ch340" >/dev/null
# ttyUSB2 runs its code (BOOT0 low) behind an auto-reset circuit: the entry preset
# brings it into the bootloader, the exit sequence back into its application.
# (Old code in its flash: a G0 whose flash was empty at power-up boots the bootloader.)
make_bin "$TMPDIR/old.bin" 4096 9
control "add ttyUSB2=0x466,uid=22,boot0=0,nboot-sel=0,image=$TMPDIR/old.bin,wiring=dtr-nrst,rts-boot0" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB2","operation":"flash","error":""'
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
