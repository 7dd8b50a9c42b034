#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Traceability: every operation leaves one JSON line in the daemon's results log
# (--state-dir), served by Manager.GetResults and shown by `stm32ispctl log`.
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB0=0x466,uid=1 --board ttyUSB1=0x444,uid=2,adapter=ch340,serial=LINE7

# No operation yet: an empty log.
ctl log --json >"$TMPDIR/log.json" || fail "log on an empty log"
[ ! -s "$TMPDIR/log.json" ] || fail "an empty log printed: $(cat "$TMPDIR/log.json")"
ctl log >"$TMPDIR/out" || fail "log (text) on an empty log"
grep -q '^No results.$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"

# Seven operations (read probes first for the flash size), one failing.
ctl info ttyUSB0 -q || fail "info"
make_hex "$TMPDIR/fw.hex" 0x08000000 3000 1
ctl flash ttyUSB0 "$TMPDIR/fw.hex" -q 2>/dev/null || fail "flash"
make_bin "$TMPDIR/app.bin" 1024 2
ctl flash ttyUSB1 - -q <"$TMPDIR/app.bin" 2>/dev/null || fail "flash from stdin"
ctl lock ttyUSB1 -q || fail "lock"
expect_rc 14 ctl read ttyUSB1 "$TMPDIR/x.bin" --length 16 -q
ctl unlock ttyUSB1 -q || fail "unlock"

HEX_SHA=$(sha256sum "$TMPDIR/fw.hex" | cut -d' ' -f1)
BIN_SHA=$(sha256sum "$TMPDIR/app.bin" | cut -d' ' -f1)

# The file: one parseable line per operation, in order, with every field.
[ "$(wc -l <"$STATE/results.jsonl")" = 7 ] || fail "results.jsonl: $(cat "$STATE/results.jsonl")"
python3 - "$STATE/results.jsonl" "$HEX_SHA" "$BIN_SHA" <<'PY' || fail "results.jsonl: $(cat "$STATE/results.jsonl")"
import json, re, sys, datetime
lines = open(sys.argv[1]).read().splitlines()
e = [json.loads(l) for l in lines]
hex_sha, bin_sha = sys.argv[2], sys.argv[3]
keys = {"timestamp", "timestamp_usec", "operation", "port", "adapter_serial", "physical_path", "chip_pid",
        "chip_name", "uid", "flash_size", "options", "result", "error", "message", "duration_usec"}
for x in e:
    assert keys <= set(x), (keys - set(x), x)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", x["timestamp"]), x["timestamp"]
    t = datetime.datetime.strptime(x["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert int(t.timestamp() * 1e6 + 0.5) == x["timestamp_usec"], x
    assert x["duration_usec"] > 0, x
    assert isinstance(x["options"], dict), x
assert [x["operation"] for x in e] == ["probe", "flash", "flash", "lock", "probe", "read", "unlock"], e
assert [x["result"] for x in e] == ["pass", "pass", "pass", "pass", "pass", "fail", "pass"], e
assert [x["port"] for x in e] == ["/dev/ttyUSB0"] * 2 + ["/dev/ttyUSB1"] * 5, e
assert e[0]["adapter_serial"] == "STSIM000" and e[2]["adapter_serial"] == "LINE7", e
assert all(x["physical_path"] for x in e), e
assert e[0]["chip_pid"] == 0x466 and e[0]["chip_name"] == "STM32G03x/04x" and e[0]["flash_size"] == 65536, e[0]
assert e[2]["chip_pid"] == 0x444 and e[2]["flash_size"] == 32768, e[2]
assert re.fullmatch(r"[0-9a-f]{24}", e[0]["uid"]) and e[0]["uid"] == e[1]["uid"] != e[2]["uid"], e
assert e[1]["image_name"] == "fw.hex" and e[1]["image_sha256"] == hex_sha, e[1]
assert e[2]["image_name"] == "stdin" and e[2]["image_sha256"] == bin_sha, e[2]
assert "image_sha256" not in e[0] and "image_name" not in e[3], e
o = e[1]["options"]
assert o["erase"] == "auto" and o["verify"] is True and o["go"] is False and o["address"] == 0x08000000, o
assert e[1]["bytes_written"] == 3000 and e[1]["bytes_verified"] == 3000, e[1]
# a blank page's rest holds no data to keep; every flash line says how much was kept
assert e[1]["preserved_bytes"] == 0 and e[2]["preserved_bytes"] == 0, e
assert e[5]["error"] == "io.github.Stm32Isp1.Error.ReadProtected" and e[5]["message"], e[5]
assert e[5]["options"] == {"address": 0x08000000, "length": 16}, e[5]
assert all(x["error"] == "" for x in e if x["result"] == "pass"), e
PY

# Over the bus, through the client: the same entries.
ctl log --json >"$TMPDIR/log.json" || fail "log --json"
cmp <(python3 -c 'import json,sys; [print(json.dumps(json.loads(l), sort_keys=True)) for l in open(sys.argv[1])]' "$STATE/results.jsonl") \
    <(python3 -c 'import json,sys; [print(json.dumps(json.loads(l), sort_keys=True)) for l in open(sys.argv[1])]' "$TMPDIR/log.json") ||
        fail "log --json differs from the file: $(cat "$TMPDIR/log.json")"
UID0=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["uid"])' "$STATE/results.jsonl")

ctl log --json --result fail >"$TMPDIR/log.json" || fail "log --result fail"
json_check "$TMPDIR/log.json" 'j["operation"] == "read" and j["result"] == "fail" and j["port"] == "/dev/ttyUSB1"'
ctl log --json --result pass >"$TMPDIR/log.json" || fail "log --result pass"
[ "$(wc -l <"$TMPDIR/log.json")" = 6 ] || fail "log --result pass: $(cat "$TMPDIR/log.json")"
ctl log --json --uid "${UID0^^}" >"$TMPDIR/log.json" || fail "log --uid"
json_check "$TMPDIR/log.json" 'len(j) == 2 and [x["operation"] for x in j] == ["probe", "flash"]'
ctl log --json ttyUSB1 >"$TMPDIR/log.json" || fail "log PORT"
json_check "$TMPDIR/log.json" 'len(j) == 5 and all(x["port"] == "/dev/ttyUSB1" for x in j)'
ctl log --json --limit 2 >"$TMPDIR/log.json" || fail "log --limit"
json_check "$TMPDIR/log.json" '[x["operation"] for x in j] == ["read", "unlock"]'
ctl log --json --since "$(date -u -d tomorrow +%Y-%m-%d)" >"$TMPDIR/log.json" || fail "log --since tomorrow"
[ ! -s "$TMPDIR/log.json" ] || fail "log --since tomorrow: $(cat "$TMPDIR/log.json")"
ctl log --json --since "$(date -u -d yesterday +%Y-%m-%d)" --until "@$(( $(date +%s) + 60 ))" >"$TMPDIR/log.json" ||
        fail "log --since --until"
[ "$(wc -l <"$TMPDIR/log.json")" = 7 ] || fail "log --since --until: $(cat "$TMPDIR/log.json")"

ctl log >"$TMPDIR/out" || fail "log (text)"
grep -q '^TIME  *PORT  *OPERATION  *RESULT  *CHIP  *UID  *SERIAL  *IMAGE  *ERROR$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
grep -q " ttyUSB0  *flash  *pass  *STM32G03x/04x  *$UID0  *-  *fw.hex *$" "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
grep -q " ttyUSB1  *read  *fail .* ReadProtected$" "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"
grep -q '^7 entries: 6 passed, 1 failed.$' "$TMPDIR/out" || fail "log: $(cat "$TMPDIR/out")"

# Bad filters and options.
expect_rc 2 ctl log --result maybe
expect_rc 2 ctl log --since yesterday-ish
if busctl --address="$BUS_ADDR" call "$BUS_NAME" /io/github/Stm32Isp1 io.github.Stm32Isp1.Manager GetResults \
        'a{sv}' 1 colour s red >"$TMPDIR/out" 2>&1; then
        fail "GetResults took an unknown filter"
fi
grep -qi "unknown filter" "$TMPDIR/out" || fail "GetResults: $(cat "$TMPDIR/out")"

# The daemon logged the same entries (stderr here; the journal under systemd).
grep -q 'flash passed: {.*"image_sha256":"'"$HEX_SHA"'"' "$TMPDIR/daemon.log" || fail "not in the daemon's log"
exit 0
