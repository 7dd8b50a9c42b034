# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the client tests: a private dbus-daemon, stm32ispd under umockdev-sim with
# simulated boards, and helpers. Expects TOP_BUILDDIR/TOP_SRCDIR (set by make check) and
# a private TMPDIR.

set -eu

: "${TOP_BUILDDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${TOP_SRCDIR:=$TOP_BUILDDIR}"
: "${TMPDIR:=$(mktemp -d /tmp/stm32isp-test.XXXXXX)}"
export TMPDIR

CTL="$TOP_BUILDDIR/client/stm32ispctl"
DAEMON="$TOP_BUILDDIR/daemon/stm32ispd"
SIM="$TOP_BUILDDIR/tests/umockdev-sim"
BUS_NAME=io.github.Stm32Isp1

BUS_PID=""
SIM_PID=""
BUS_ADDR=""
CONTROL="$TMPDIR/control.sock"

fail() {
        echo "FAIL: $*" >&2
        [ ! -s "$TMPDIR/daemon.log" ] || { echo "--- daemon log:" >&2; tail -n 30 "$TMPDIR/daemon.log" >&2; }
        exit 1
}

skip() {
        echo "SKIP: $*" >&2
        exit 77
}

# need_gi_python: sets GI_PYTHON to a python3 with python3-gi (GDBus can pass file
# descriptors, busctl cannot), or skips the test.
need_gi_python() {
        GI_PYTHON=""
        for p in /usr/bin/python3 python3; do
                if "$p" -c 'import gi' 2>/dev/null; then
                        GI_PYTHON=$p
                        break
                fi
        done
        [ -n "$GI_PYTHON" ] || skip "no python3 with python3-gi"
}

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

need_daemon() {
        [ -x "$CTL" ] || fail "$CTL not built"
        [ -x "$DAEMON" ] || skip "the daemon is not built"
        [ -x "$SIM" ] || skip "umockdev-sim is not built"
        command -v dbus-daemon >/dev/null || skip "dbus-daemon missing"
}

cleanup() {
        local rc=$?
        [ -z "$MON_PID" ] || kill "$MON_PID" 2>/dev/null || true
        stop_tcp_board
        stop_daemon
        if [ -n "$BUS_PID" ]; then
                kill "$BUS_PID" 2>/dev/null || true
                BUS_PID=""
        fi
        exit $rc
}
trap cleanup EXIT
# Killed (make's timeout, Ctrl-C): still clean up.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# A private bus that nothing else uses and that activates nothing.
start_bus() {
        cat >"$TMPDIR/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$TMPDIR/bus.sock</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    ${BUS_EXTRA_POLICY:-}
  </policy>
</busconfig>
CONF
        # --fork returns once the bus listens; it prints the address and the pid.
        local out
        out=$(dbus-daemon --config-file="$TMPDIR/bus.conf" --fork --nopidfile --print-address=1 --print-pid=1) ||
                fail "dbus-daemon did not start"
        BUS_ADDR=$(echo "$out" | sed -n 1p)
        BUS_PID=$(echo "$out" | sed -n 2p)
        export BUS_ADDR
}

# Blocks until the daemon owns its name on the bus (an event, not a sleep).
wait_for_name() {
        if command -v gdbus >/dev/null; then
                local waiter done_pid
                gdbus wait --address "$BUS_ADDR" --timeout 30 "$BUS_NAME" &
                waiter=$!
                # Whichever ends first: the name appears, or the daemon (umockdev-sim) exits.
                wait -n -p done_pid "$waiter" "$SIM_PID" || true
                if [ "$done_pid" = "$SIM_PID" ]; then
                        kill "$waiter" 2>/dev/null || true
                        SIM_PID=""
                        fail "the daemon exited before it was ready"
                fi
                wait "$waiter" || fail "the daemon did not appear on the bus"
        else
                local i
                for i in $(seq 300); do
                        busctl --address="$BUS_ADDR" status "$BUS_NAME" >/dev/null 2>&1 && return 0
                        kill -0 "$SIM_PID" 2>/dev/null || fail "the daemon exited"
                        sleep 0.1
                done
                fail "the daemon did not appear on the bus"
        fi
}

# start_daemon [umockdev-sim options...]: e.g. --board ttyUSB0=0x466
start_daemon() {
        rm -f "$CONTROL"
        "$SIM" --control "$CONTROL" "$@" -- "$DAEMON" --bus-address="$BUS_ADDR" ${DAEMON_ARGS:-} \
                >"$TMPDIR/daemon.log" 2>&1 &
        SIM_PID=$!
        wait_for_name
}

stop_daemon() {
        if [ -n "$SIM_PID" ]; then
                kill -TERM "$SIM_PID" 2>/dev/null || true
                # A daemon that does not stop must not hang the test run.
                if ! timeout 20 tail --pid="$SIM_PID" -s 0.1 -f /dev/null; then
                        pkill -KILL -P "$SIM_PID" 2>/dev/null || true
                        kill -KILL "$SIM_PID" 2>/dev/null || true
                fi
                wait "$SIM_PID" 2>/dev/null || true
                SIM_PID=""
        fi
}

# control LINE: one command to umockdev-sim's control socket; prints the answer.
control() {
        "$SIM" --send "$CONTROL" "$1"
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
MON_PID=""
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
TCP_PID=""
start_tcp_board() {
        local bootsim="$TOP_BUILDDIR/tests/sim/stm32-bootsim"
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
