# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the client tests (and the daemon-level ones that drive it): test-lib.sh's
# private bus and stm32ispd under umockdev-sim, plus the client, its output checks, test
# images, a monitor in the background and a TCP serial server with simulated boards.

# Next to this file, wherever the test runs from (VPATH builds run it from the source tree).
# shellcheck source=tests/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test-lib.sh"

CTL="$TOP_BUILDDIR/client/stm32ispctl"
NEED_BUILT+=("$CTL")
MON_PID=""
TCP_PID=""

client_cleanup() {
        [ -z "$MON_PID" ] || kill "$MON_PID" 2>/dev/null || true
        stop_tcp_board
}
add_cleanup client_cleanup

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

ctl() {
        "$CTL" --bus-address="$BUS_ADDR" "$@"
}

# expect_rc CODE COMMAND...: runs COMMAND, fails unless it exits with CODE.
expect_rc() {
        local want=$1 rc=0
        shift
        "$@" || rc=$?
        [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want"
}

# json_check FILE PYTHON-EXPR: the expression over the parsed JSON `j` must be true.
json_check() {
        python3 - "$1" "$2" <<'PY' || fail "JSON check failed: $2 (in $(cat "$1"))"
import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
lines = [l for l in text.splitlines() if l.strip()]
j = json.loads(text) if len(lines) == 1 else [json.loads(l) for l in lines]
ok = eval("(" + sys.argv[2] + ")")
sys.exit(0 if ok else 1)
PY
}

# make_hex FILE ADDRESS SIZE SEED: an Intel HEX image of SIZE pseudo-random bytes.
make_hex() {
        python3 - "$@" <<'PY'
import random, sys
path, address, size, seed = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0), int(sys.argv[4])
data = bytes(random.Random(seed).getrandbits(8) for _ in range(size))
out = []
def rec(kind, addr, payload):
    b = [len(payload), (addr >> 8) & 0xff, addr & 0xff, kind] + list(payload)
    out.append(":" + "".join("%02X" % x for x in b) + "%02X" % ((-sum(b)) & 0xff))
upper = None
for off in range(0, size, 16):
    a = address + off
    if a >> 16 != upper:
        upper = a >> 16
        rec(4, 0, [(upper >> 8) & 0xff, upper & 0xff])
    rec(0, a & 0xffff, data[off:off + 16])
rec(1, 0, [])
open(path, "w").write("\n".join(out) + "\n")
open(path + ".bin", "wb").write(data)
PY
}

# make_bin FILE SIZE SEED
make_bin() {
        python3 -c 'import random,sys; open(sys.argv[1],"wb").write(bytes(random.Random(int(sys.argv[3])).getrandbits(8) for _ in range(int(sys.argv[2],0))))' "$@"
}

# monitor_start [ARGS...]: `stm32ispctl monitor --json` in the background; its lines are
# read with monitor_wait. Waits for its "ready" event (it has subscribed and listed).
monitor_start() {
        rm -f "$TMPDIR/monitor.fifo"
        mkfifo "$TMPDIR/monitor.fifo"
        # Background commands of a script start with SIGINT ignored: restore it, as Ctrl-C
        # (monitor_stop) is what ends a monitor.
        env --default-signal=INT "$CTL" --bus-address="$BUS_ADDR" monitor --json "$@" \
                >"$TMPDIR/monitor.fifo" 2>"$TMPDIR/monitor.err" &
        MON_PID=$!
        exec 7<"$TMPDIR/monitor.fifo"
        : >"$TMPDIR/monitor.log"
        monitor_wait '"event":"ready"'
}

# monitor_wait REGEX: reads the monitor's lines (each logged to monitor.log) until one
# matches; fails after 30 s without a match.
monitor_wait() {
        local line
        while IFS= read -r -t 30 -u 7 line; do
                echo "$line" >>"$TMPDIR/monitor.log"
                if echo "$line" | grep -qi -- "$1"; then
                        return 0
                fi
        done
        fail "monitor: no event matching $1 (got: $(cat "$TMPDIR/monitor.log"; cat "$TMPDIR/monitor.err"))"
}

monitor_stop() {
        local rc=0
        [ -n "$MON_PID" ] || return 0
        kill -INT "$MON_PID"
        # Keep the rest of its output.
        cat <&7 >>"$TMPDIR/monitor.log" || true
        wait "$MON_PID" || rc=$?
        exec 7<&-
        MON_PID=""
        [ $rc = 0 ] || fail "monitor exited $rc"
}

# start_tcp_board [stm32-bootsim options...]: a raw TCP serial server on 127.0.0.1 with a
# real-time simulated board behind it (stm32-bootsim --timing: 115200 baud wire time), a
# fresh board per connection. Sets TCP_URL. `tcp_unplug` drops the open connection.
start_tcp_board() {
        local bootsim="$TOP_BUILDDIR/tests/rig/sim/stm32-bootsim"
        [ -x "$bootsim" ] || skip "stm32-bootsim is not built"
        start_tcp_server "$bootsim" --timing "$@"
}

# start_tcp_server PROGRAM ARGS...: the same server, running PROGRAM ARGS --fd N for
# each connection.
start_tcp_server() {
        stop_tcp_board
        rm -f "$TMPDIR/tcp.fifo"
        mkfifo "$TMPDIR/tcp.fifo"
        python3 - "$@" >"$TMPDIR/tcp.fifo" 2>"$TMPDIR/tcp.log" <<'PY' &
import os, signal, socket, subprocess, sys
procs = []
def unplug(*_):
    for p in procs:
        p.kill()
def freeze(*_):
    for p in procs:
        p.send_signal(signal.SIGSTOP)
def stop(*_):
    for p in procs:
        p.send_signal(signal.SIGCONT)
    unplug()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGUSR1, unplug)
signal.signal(signal.SIGUSR2, freeze)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    procs = [p for p in procs if p.poll() is None]
    procs.append(subprocess.Popen(sys.argv[1:] + ["--fd", str(c.fileno())], pass_fds=[c.fileno()]))
    c.close()
PY
        TCP_PID=$!
        local port
        read -r -t 30 port <"$TMPDIR/tcp.fifo" || fail "the TCP board did not start: $(cat "$TMPDIR/tcp.log")"
        TCP_URL="tcp://127.0.0.1:$port"
}

tcp_unplug() {
        kill -USR1 "$TCP_PID"
}

# The board stops answering, the connection stays.
tcp_freeze() {
        kill -USR2 "$TCP_PID"
}

stop_tcp_board() {
        [ -z "$TCP_PID" ] || { kill "$TCP_PID" 2>/dev/null || true; wait "$TCP_PID" 2>/dev/null || true; }
        TCP_PID=""
}

# sim_field NAME KEY: one key=value of umockdev-sim's "info NAME" line.
sim_field() {
        control "info $1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# port_call PORT METHOD ARGS...: a Port method through gdbus; prints the reply or the error.
port_call() {
        local port=$1 method=$2
        shift 2
        gdbus call --address "$BUS_ADDR" --dest "$BUS_NAME" --object-path "/io/github/Stm32Isp1/port/$port" \
                --method "io.github.Stm32Isp1.Port.$method" "$@" 2>&1
}

# last_log_check EXPR: a Python expression over the newest entry (x) of the results log in
# $STATE (the daemon's --state-dir, set by the test).
last_log_check() {
        tail -n 1 "$STATE/results.jsonl" >"$TMPDIR/last.json"
        json_check "$TMPDIR/last.json" "(lambda x: $1)(j)"
}
