#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A job belongs to its caller: a client that calls Flash and leaves the bus mid-write
# has its job cancelled (the results log says why; the flash is not left to look done),
# unless it asked detach=true: then the job runs to its end and the bytes are in the
# simulated flash. `stm32ispctl flash --detach` returns once the job started and says how
# to follow it. A real dbus-daemon, a real-time simulated board (16 KiB take seconds).
. "$(dirname "$0")/../client/test-client-lib.sh"
need_daemon
need_gi_python
start_bus
STATE="$TMPDIR/state"
mkdir -p "$STATE"
DAEMON_ARGS="--state-dir=$STATE" start_daemon --board ttyUSB0=0x466,timing=1
make_bin "$TMPDIR/fw.bin" 16384 5

# leaver DETACH: calls Flash (options {"detach": DETACH}) without a timeout, and exits as
# soon as the daemon reports writing, before the reply. Exit 3: the reply came first.
leaver() {
        "$GI_PYTHON" - "$BUS_ADDR" "$TMPDIR/fw.bin" "$1" <<'PY'
import os, sys
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
addr, image, detach = sys.argv[1], sys.argv[2], sys.argv[3] == "True"
B, P = "io.github.Stm32Isp1", "io.github.Stm32Isp1.Port"
bus = Gio.DBusConnection.new_for_address_sync(
    addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
port = bus.call_sync(B, "/io/github/Stm32Isp1", "io.github.Stm32Isp1.Manager", "GetPort",
                     GLib.Variant("(s)", ("ttyUSB0",)), None, Gio.DBusCallFlags.NONE, -1, None)[0]
def progress(conn, sender, path, iface, name, params):
    if params[0] == "writing":
        os._exit(0)     # gone from the bus, the call unanswered
bus.signal_subscribe(B, P, "Progress", port, None, Gio.DBusSignalFlags.NONE, progress)
def replied(conn, res):
    try:
        conn.call_with_unix_fd_list_finish(res)
        print("the flash ended before the client left", file=sys.stderr)
    except GLib.Error as e:
        print(e.message, file=sys.stderr)
    os._exit(3)
fds = Gio.UnixFDList.new()
with open(image, "rb") as f:
    index = fds.append(f.fileno())
# No timeout: G_MAXINT (GDBus's "-1" means its 25 s default).
bus.call_with_unix_fd_list(B, port, P, "Flash",
                           GLib.Variant("(ha{sv})", (index, {"detach": GLib.Variant("b", detach)})), None,
                           Gio.DBusCallFlags.NONE, GLib.MAXINT, fds, None, replied)
GLib.MainLoop().run()
PY
}

monitor_start
# The caller leaves: cancelled, recorded as such, the flash not the image.
leaver False || fail "the leaving client exited $?"
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB0","operation":"flash","error":"io.github.Stm32Isp1.Error.Cancelled"'
last_log_check 'x["operation"] == "flash" and x["result"] == "fail" and x["error"].endswith("Cancelled") and
        x["message"].startswith("The caller left the bus: ")'
grep -q "ttyUSB0: The caller of flash left the bus, cancelling it" "$TMPDIR/daemon.log" || fail "no word in the log"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
! cmp -s -n 16384 "$TMPDIR/dump.bin" "$TMPDIR/fw.bin" || fail "the flash was completed for a caller that left"

# detach=true: the job outlives its caller.
leaver True || fail "the detached client exited $?"
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB0","operation":"flash","error":""'
last_log_check 'x["operation"] == "flash" and x["result"] == "pass" and x["bytes_verified"] == 16384'
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 16384 "$TMPDIR/dump.bin" "$TMPDIR/fw.bin" || fail "the detached flash is not in the flash"

# The client's --detach: back at once, with how to follow the job; the job completes.
make_bin "$TMPDIR/fw2.bin" 16384 6
ctl flash ttyUSB0 "$TMPDIR/fw2.bin" --detach >"$TMPDIR/out" 2>&1 || fail "flash --detach: $(cat "$TMPDIR/out")"
grep -q "^Started flash on ttyUSB0; it runs on without this client. Follow it with 'stm32ispctl monitor'" "$TMPDIR/out" ||
        fail "flash --detach: $(cat "$TMPDIR/out")"
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB0","operation":"flash","error":""'
monitor_stop
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 16384 "$TMPDIR/dump.bin" "$TMPDIR/fw2.bin" || fail "flash --detach did not complete"
# --detach is for jobs that write: not for read (its file is the client's to finish)
expect_rc 2 ctl read ttyUSB0 "$TMPDIR/x.bin" --detach -q
echo PASS
