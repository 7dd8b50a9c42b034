#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What an auto-flash profile may touch. A misspelt [AutoFlash] key in the config file
# (MatchVendor=, ExpectedChip=) is no wider profile: the daemon runs, the profile is not
# armed, the AutoFlash property and the log say which key on which line, a plugged board
# is left alone; an unknown SetAutoFlash key is InvalidArgs. A profile without a match
# flashes USB adapters as they appear, never a port named by hand: `stm32ispctl info
# tcp://...` (which adds the port) only probes; a "port" glob that names it flashes it.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
command -v busctl >/dev/null || skip "busctl missing"
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
M=(--address="$BUS_ADDR" "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager)

make_hex "$TMPDIR/fw.hex" 0x08000000 1024 3

cat >"$TMPDIR/stm32ispd.conf" <<CONF
[AutoFlash]
Image=$TMPDIR/fw.hex
MatchVendor=0403
ExpectedChip=0x466
Go=yes
CONF
DAEMON_ARGS="--state-dir=$STATE --config=$TMPDIR/stm32ispd.conf" start_daemon
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"] == {"armed": {"type": "b", "data": False},
        "error": {"type": "s", "data": "line 3: unknown key MatchVendor="}}'
grep -qF "stm32ispd.conf:3: unknown key [AutoFlash] MatchVendor=, the auto-flash profile is not armed" \
        "$TMPDIR/daemon.log" || fail "no word about MatchVendor"
grep -qF "stm32ispd.conf:4: unknown key [AutoFlash] ExpectedChip=" "$TMPDIR/daemon.log" ||
        fail "no word about ExpectedChip"
! grep -q "Auto-flash armed" "$TMPDIR/daemon.log" || fail "armed with a misspelt key"
# The client says so.
ctl list >"$TMPDIR/out" 2>"$TMPDIR/err" || fail "list"
grep -qF "the auto-flash profile is not armed: line 3: unknown key MatchVendor=" "$TMPDIR/err" ||
        fail "list: $(cat "$TMPDIR/err")"

# A plugged board is left alone.
monitor_start
control "add ttyUSB1=0x466,serial=STATION1" >/dev/null
monitor_wait '"event":"added".*"port":"/dev/ttyUSB1"'
ctl info ttyUSB1 -q || fail "info ttyUSB1 (busy with a flash?)"
[ "$(sim_field ttyUSB1 writes)" = 0 ] || fail "ttyUSB1 was written: $(control "info ttyUSB1")"

# The bus: an unknown key is InvalidArgs, and nothing changes.
if set_auto_flash "$TMPDIR/fw.hex" '{"expected-chip": ("q", 0x466)}' 2>"$TMPDIR/err"; then
        fail "SetAutoFlash took an unknown key"
fi
grep -q "InvalidArgs: Unknown option 'expected-chip'" "$TMPDIR/err" || fail "SetAutoFlash: $(cat "$TMPDIR/err")"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'not j["data"]["armed"]["data"] and "MatchVendor" in j["data"]["error"]["data"]'

# Armed with no match: every USB adapter that appears, said so in the log.
set_auto_flash "$TMPDIR/fw.hex" '{}' || fail "SetAutoFlash"
grep -q "Auto-flash armed: fd (sha256 [0-9a-f]*) on every USB adapter" "$TMPDIR/daemon.log" ||
        fail "the armed line: $(grep armed "$TMPDIR/daemon.log")"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["armed"]["data"] and "error" not in j["data"]'
ctl list >"$TMPDIR/out" 2>"$TMPDIR/err" || fail "list"
[ ! -s "$TMPDIR/err" ] || fail "list: $(cat "$TMPDIR/err")"

# A network port named to look at it is probed, never flashed.
start_tcp_board --pid 0x466
ctl --json info "$TCP_URL" >"$TMPDIR/tcp.json" || fail "info $TCP_URL"
json_check "$TMPDIR/tcp.json" 'j["chip"]["pid"] == 0x466'
python3 - "$STATE/results.jsonl" "$TCP_URL" <<'PY' || fail "results: $(cat "$STATE/results.jsonl")"
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
tcp = [(x["operation"], x["auto"]) for x in log if x["port"] == sys.argv[2]]
assert tcp == [("probe", False)], tcp
assert not any(x["auto"] for x in log), log
PY

# Named by the profile's port glob: flashed when it is added.
PORT=$(busctl --address="$BUS_ADDR" call "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager \
        GetPort s "$TCP_URL" | cut -d'"' -f2)
busctl call "${M[@]}" RemovePort o "$PORT" || fail "RemovePort"
set_auto_flash "$TMPDIR/fw.hex" '{"port": ("s", "tcp://127.0.0.1:*"), "image-name": ("s", "net.hex")}' ||
        fail "SetAutoFlash port"
grep -qF "on port tcp://127.0.0.1:*" "$TMPDIR/daemon.log" || fail "the armed line: $(grep armed "$TMPDIR/daemon.log")"
busctl get-property -j "${M[@]}" AutoFlash >"$TMPDIR/af.json" || fail "AutoFlash"
json_check "$TMPDIR/af.json" 'j["data"]["match"]["data"] == {"port": {"type": "s", "data": "tcp://127.0.0.1:*"}}'
busctl call "${M[@]}" AddPort sa{sv} "$TCP_URL" 0 >/dev/null || fail "AddPort"
monitor_wait '"event":"finished".*"port":"'"$TCP_URL"'","operation":"flash","error":""'
monitor_stop
last_log_check 'x["auto"] and x["port"] == "'"$TCP_URL"'" and x["result"] == "pass" and
        x["image_name"] == "net.hex" and x["bytes_written"] == x["bytes_verified"] == 1024'
# The USB adapter plugged earlier was never touched.
[ "$(sim_field ttyUSB1 writes)" = 0 ] || fail "ttyUSB1 was written: $(control "info ttyUSB1")"
echo PASS
