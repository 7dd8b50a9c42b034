# SPDX-License-Identifier: LGPL-2.1-or-later
# The start-up shared by the daemon-level shell tests, sourced by test-client-lib.sh and
# test-integration-lib.sh: a private dbus-daemon, stm32ispd under umockdev-sim, fail/skip,
# the python3-gi lookup and one cleanup trap. Expects TOP_BUILDDIR/TOP_SRCDIR (make check
# sets them) and a private TMPDIR.
#
# Knobs a sourcing library or test may set:
#   NEED_BUILT=()     programs need_daemon fails without (not built: a build error)
#   NEED_COMMANDS=()  commands need_daemon skips without, besides dbus-daemon
#   BUS_EXTRA_POLICY  rules added to start_bus's default policy
#   DAEMON_ARGS     extra stm32ispd arguments for start_daemon
# and `add_cleanup FUNCTION` runs FUNCTION on exit before the daemon and the bus stop.

set -eu

: "${TOP_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${TOP_SRCDIR:=$TOP_BUILDDIR}"
: "${TMPDIR:=$(mktemp -d /tmp/stm32isp-test.XXXXXX)}"
export TMPDIR

DAEMON="$TOP_BUILDDIR/daemon/stm32ispd"
SIM="$TOP_BUILDDIR/tests/rig/umockdev-sim"
BUS_NAME=io.github.Stm32Isp1
MANAGER_PATH=/io/github/Stm32Isp1

BUS_PID=""
BUS_ADDR=""
SIM_PID=""
CONTROL="$TMPDIR/control.sock"
GI_PYTHON=""
NEED_BUILT=()
NEED_COMMANDS=()
CLEANUP_HOOKS=()

# fail MESSAGE: the test fails, with the daemon's last words if it ran.
fail() {
        echo "FAIL: $*" >&2
        if [ -s "$TMPDIR/daemon.log" ]; then
                echo "--- daemon log:" >&2
                tail -n 30 "$TMPDIR/daemon.log" >&2
        fi
        exit 1
}

skip() {
        echo "SKIP: $*" >&2
        exit 77
}

need_daemon() {
        local c
        for c in "${NEED_BUILT[@]}"; do
                [ -x "$c" ] || fail "$c not built"
        done
        [ -x "$DAEMON" ] || skip "the daemon is not built"
        [ -x "$SIM" ] || skip "umockdev-sim is not built (configure found no umockdev)"
        for c in dbus-daemon "${NEED_COMMANDS[@]}"; do
                command -v "$c" >/dev/null || skip "$c missing"
        done
}

# need_gi_python: sets GI_PYTHON to a python3 with the GObject bindings (Gio passes file
# descriptors and names D-Bus errors; busctl does neither), or skips. The system's first:
# other users (setpriv) may not reach one installed under root's home.
need_gi_python() {
        local p
        for p in /usr/bin/python3 python3; do
                if command -v "$p" >/dev/null &&
                   "$p" -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' 2>/dev/null; then
                        GI_PYTHON=$(command -v "$p")
                        return 0
                fi
        done
        skip "no python3 with python3-gi"
}

# add_cleanup FUNCTION: FUNCTION runs on exit (pass, fail or signal), hooks in reverse
# order of adding, all before the daemon and the bus stop.
add_cleanup() {
        CLEANUP_HOOKS+=("$1")
}

cleanup() {
        local rc=$? i
        # Cleaning up must not stop half-way on a failing kill.
        set +e
        for ((i = ${#CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do
                "${CLEANUP_HOOKS[i]}"
        done
        stop_daemon
        if [ -n "$BUS_PID" ]; then
                kill "$BUS_PID" 2>/dev/null
                BUS_PID=""
        fi
        exit $rc
}
trap cleanup EXIT
# Killed (make's timeout, Ctrl-C): still clean up.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# start_bus_with CONFIG: dbus-daemon with that config file; sets BUS_ADDR and BUS_PID.
# --fork returns once the bus listens.
start_bus_with() {
        local out
        out=$(dbus-daemon --config-file="$1" --fork --nopidfile --print-address=1 --print-pid=1 2>"$TMPDIR/bus.err") ||
                fail "dbus-daemon did not start: $(cat "$TMPDIR/bus.err")"
        BUS_ADDR=$(echo "$out" | sed -n 1p)
        BUS_PID=$(echo "$out" | sed -n 2p)
        export BUS_ADDR
}

# start_bus: a private bus that nothing else uses, that activates nothing and where
# anything goes but $BUS_EXTRA_POLICY.
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
        start_bus_with "$TMPDIR/bus.conf"
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
        # shellcheck disable=SC2086 # DAEMON_ARGS is a list of words
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
