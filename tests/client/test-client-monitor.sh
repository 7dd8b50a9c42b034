#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl monitor: ports present at start, plug and unplug, state changes, progress
# and results of a job another client runs, the daemon leaving; one JSON object per
# line with --json, text lines otherwise.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
start_bus
start_daemon --board ttyUSB0=0x466

make_hex "$TMPDIR/fw.hex" 0x08000000 5000 7

# --json
monitor_start
grep -q '"event":"present".*"port":"/dev/ttyUSB0".*"properties":{' "$TMPDIR/monitor.log" ||
        fail "no present event: $(cat "$TMPDIR/monitor.log")"
ctl flash ttyUSB0 "$TMPDIR/fw.hex" -q || fail "flash"
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB0","operation":"flash","error":""'
control "add ttyUSB1=0x457,adapter=cp2102" >/dev/null
monitor_wait '"event":"added".*"port":"/dev/ttyUSB1".*"VendorId":4292'
control "remove ttyUSB1" >/dev/null
monitor_wait '"event":"removed".*"port":"/dev/ttyUSB1"'
stop_daemon
monitor_wait '"event":"daemon".*"running":false'
# the daemon comes back: its ports are listed again
start_daemon --board ttyUSB0=0x466
monitor_wait '"event":"daemon".*"running":true'
monitor_wait '"event":"present".*"port":"/dev/ttyUSB0"'
monitor_stop

python3 - "$TMPDIR/monitor.log" <<'PY' || fail "monitor --json: $(cat "$TMPDIR/monitor.log")"
import json, re, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kinds = [e["event"] for e in events]
for k in ("present", "ready", "changed", "progress", "finished", "added", "removed", "daemon"):
    assert k in kinds, k
assert kinds.index("present") < kinds.index("ready") < kinds.index("progress")
writing = [e for e in events if e["event"] == "progress" and e["stage"] == "writing"]
assert writing and writing[-1]["done"] == writing[-1]["total"] == 5000, writing
states = [e["properties"]["State"] for e in events if e["event"] == "changed" and "State" in e["properties"]]
assert "writing" in states and states[-1] == "idle", states
# the one timestamp form (ISO 8601 UTC, microseconds), and the same instant as a number
assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["timestamp"]) and
           isinstance(e["timestamp_usec"], int) for e in events), events
PY

# text, not on a terminal: plain lines
rm -f "$TMPDIR/text.fifo"
mkfifo "$TMPDIR/text.fifo"
env --default-signal=INT "$CTL" --bus-address="$BUS_ADDR" monitor >"$TMPDIR/text.fifo" 2>&1 &
MON_PID=$!
exec 7<"$TMPDIR/text.fifo"
: >"$TMPDIR/monitor.log"
monitor_wait 'ttyUSB0: present (0403:6001 FT232R USB UART'
ctl flash ttyUSB0 "$TMPDIR/fw.hex" -q || fail "flash"
monitor_wait '/dev/ttyUSB0: flash passed'
monitor_stop
grep -q '^[0-9:]* /dev/ttyUSB0: State writing$' "$TMPDIR/monitor.log" || fail "text monitor: $(cat "$TMPDIR/monitor.log")"
grep -q '^/dev/ttyUSB0 writing: 5000/5000 bytes (100%)$' "$TMPDIR/monitor.log" || fail "text progress: $(cat "$TMPDIR/monitor.log")"
echo PASS
