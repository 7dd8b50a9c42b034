#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# --trace FILE: the job's wire trace as text (it starts with the 0x7F sync and shows each
# command decoded, then how the job ended) and, with --json, as JSON; a failed job's
# trace is kept in the state directory and its error message and results entry name it.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
make_bin "$TMPDIR/code.bin" 4096 5
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB0=0x466 --board ttyUSB1=0x466,corrupt-read=6

# text: the first byte sent is the sync, each command follows with its bytes
ctl flash ttyUSB0 "$TMPDIR/code.bin" -q --trace "$TMPDIR/t.txt" || fail "flash --trace"
head -1 "$TMPDIR/t.txt" | grep -q '^# stm32ispd wire trace: /dev/ttyUSB0, flash$' || fail "header: $(head -1 "$TMPDIR/t.txt")"
sed -n 2p "$TMPDIR/t.txt" | grep -Eq '^# started [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z by stm32ispd ' || fail "header: $(sed -n 2p "$TMPDIR/t.txt")"
first=$(grep -m1 '^+[0-9.]* > ' "$TMPDIR/t.txt")
echo "$first" | grep -Eq '^\+[0-9]+\.[0-9]{6} > 7f +sync$' || fail "the first byte sent: $first"
line() { # line REGEX: a line of the trace matches
        grep -Eq "$1" "$TMPDIR/t.txt" || fail "no line matching '$1' in the trace"
}
line '^\+[0-9.]+ < 79 +ACK$'
line '^\+[0-9.]+ > 00 ff +Get$'
line '^\+[0-9.]+ > 02 fd +Get ID$'
line 'PID 0x466$'
line '^\+[0-9.]+ > 44 bb +Extended Erase$'
line '^\+[0-9.]+ > 31 ce +Write Memory$'
line '^\+[0-9.]+ > 08 00 00 00 08 +address 0x08000000$'
line ' Write Memory 0x08000000 256 bytes$'
line ' Write Memory 0x08000f00 256 bytes$'
line ' Read Memory 0x08000f00 256 bytes$'
tail -1 "$TMPDIR/t.txt" | grep -q ' flash done$' || fail "last line: $(tail -1 "$TMPDIR/t.txt")"
# a successful job keeps nothing
[ ! -e "$STATE/traces" ] || [ -z "$(ls "$STATE/traces")" ] || fail "a passed job's trace was kept"

# JSON, for tools (info: one job, one object)
ctl --json info ttyUSB0 --trace "$TMPDIR/t.json" >/dev/null || fail "info --json --trace"
json_check "$TMPDIR/t.json" 'j["op"] == "probe" and [e for e in j["events"] if e["dir"] == "tx"][0]["bytes"] == "7f" and any(e["note"] == "Get ID" for e in j["events"])'

# a trace file the client cannot create: a file error (6), no job
expect_rc 6 ctl info ttyUSB0 -q --trace "$TMPDIR/no/such/dir/t.txt"
# the daemon refuses a trace fd it cannot write to
rc=0; "$GI_PYTHON" - "$BUS_ADDR" "$TMPDIR/code.bin" <<'PY' || rc=$?
import sys
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
bus = Gio.DBusConnection.new_for_address_sync(
    sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
fds = Gio.UnixFDList.new()
with open(sys.argv[2], "rb") as f:
    index = fds.append(f.fileno())
try:
    bus.call_with_unix_fd_list_sync("io.github.Stm32Isp1", "/io/github/Stm32Isp1/port/ttyUSB0", "io.github.Stm32Isp1.Port",
                                    "Probe", GLib.Variant("(a{sv})", ({"trace-fd": GLib.Variant("h", index)},)), None,
                                    Gio.DBusCallFlags.NONE, 10000, fds, None)
except GLib.Error as e:
    print(e.message, file=sys.stderr)
    sys.exit(0 if "Option 'trace-fd' is not a writable file descriptor" in e.message else 1)
sys.exit(1)
PY
[ $rc = 0 ] || fail "a read-only trace-fd was not refused by name"

# a failed job: its trace is kept and named, in the message and in the results log
rc=0; ctl flash ttyUSB1 "$TMPDIR/code.bin" -q 2>"$TMPDIR/err" || rc=$?
[ $rc = 13 ] || fail "verify failure: exit $rc ($(cat "$TMPDIR/err"))"
kept=$(sed -n 's/.*(wire trace: \([^)]*\)).*/\1/p' "$TMPDIR/err")
[ -n "$kept" ] || fail "the message does not name the trace: $(cat "$TMPDIR/err")"
case "$kept" in "$STATE/traces/trace-"*-ttyUSB1.txt) ;; *) fail "kept trace at $kept" ;; esac
[ -f "$kept" ] || fail "$kept is missing"
grep -q '^# stm32ispd wire trace: /dev/ttyUSB1, flash$' "$kept" || fail "kept trace header"
grep -Eq '> 7f +sync$' "$kept" || fail "kept trace: no sync"
grep -q 'flash failed: ' "$kept" || fail "kept trace: no failure line"
ctl --json log ttyUSB1 --result fail >"$TMPDIR/log.json" || fail "log"
json_check "$TMPDIR/log.json" "j['trace_file'] == '$kept'"
grep -q "trace_file" "$TMPDIR/daemon.log" || fail "the daemon log does not name the trace"
# ... and the port's LastResult
busctl --address="$BUS_ADDR" get-property io.github.Stm32Isp1 /io/github/Stm32Isp1/port/ttyUSB1 \
        io.github.Stm32Isp1.Port LastResult | grep -q "\"trace_file\" s \"$kept\"" || fail "LastResult has no trace_file"
echo "OK"
