# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the system-integration tests: a private dbus-daemon (permissive, or like the
# system bus with the shipped policy), stm32ispd under umockdev-sim, helpers.
# Expects TOP_BUILDDIR/TOP_SRCDIR (make check sets them) and a private TMPDIR.

set -eu

: "${TOP_BUILDDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${TOP_SRCDIR:=$TOP_BUILDDIR}"
: "${TMPDIR:=$(mktemp -d /tmp/stm32isp-test.XXXXXX)}"
export TMPDIR

DAEMON="$TOP_BUILDDIR/daemon/stm32ispd"
SIM="$TOP_BUILDDIR/tests/umockdev-sim"
BUS_NAME=io.github.Stm32Isp1
MANAGER_PATH=/io/github/Stm32Isp1

BUS_PID=""
BUS_ADDR=""
SIM_PID=""
CONTROL="$TMPDIR/control.sock"

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

integration_cleanup() {
        local rc=$?
        stop_daemon
        if [ -n "$BUS_PID" ]; then
                kill "$BUS_PID" 2>/dev/null || true
                BUS_PID=""
        fi
        exit $rc
}
trap integration_cleanup EXIT

need_daemon() {
        [ -x "$DAEMON" ] || skip "the daemon is not built"
        [ -x "$SIM" ] || skip "umockdev-sim is not built"
        command -v dbus-daemon >/dev/null || skip "dbus-daemon missing"
        command -v busctl >/dev/null || skip "busctl missing"
}

# A python3 with the GObject bindings (Gio: fd passing, D-Bus error names), or skip. The
# system's first: other users (setpriv) may not reach one installed under root's home.
find_python_gi() {
        local p
        for p in /usr/bin/python3 python3; do
                if command -v "$p" >/dev/null && "$p" -c 'import gi; gi.require_version("Gio", "2.0"); from gi.repository import Gio' 2>/dev/null; then
                        PYTHON_GI=$(command -v "$p")
                        return 0
                fi
        done
        skip "no python3 with gi (python3-gi)"
}

# Starts dbus-daemon with the config file $1; sets BUS_ADDR and BUS_PID. --fork returns
# once the bus listens.
start_bus_with() {
        local out
        out=$(dbus-daemon --config-file="$1" --fork --nopidfile --print-address=1 --print-pid=1 2>"$TMPDIR/bus.err") ||
                fail "dbus-daemon did not start: $(cat "$TMPDIR/bus.err")"
        BUS_ADDR=$(echo "$out" | sed -n 1p)
        BUS_PID=$(echo "$out" | sed -n 2p)
        export BUS_ADDR
}

# A bus where anything goes (for tests that are not about the policy).
start_open_bus() {
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
  </policy>
</busconfig>
CONF
        start_bus_with "$TMPDIR/bus.conf"
}

# A bus like the system bus: Debian's system.conf (its default deny policy, auth, limits)
# minus the parts that need a real system (user switch, fork, pid file, syslog, activation
# helper, the system's own policy folders), listening on a socket in DIR ($1, which other
# users must be able to reach) and including only a folder with the shipped policy file.
start_system_bus() {
        local dir=$1 system_conf=/usr/share/dbus-1/system.conf
        [ -r "$system_conf" ] || system_conf=/etc/dbus-1/system.conf
        [ -r "$system_conf" ] || skip "no system.conf of dbus-daemon to start from"
        mkdir -p "$dir/system.d"
        cp "$TOP_SRCDIR/dbus/io.github.Stm32Isp1.conf" "$dir/system.d/"
        python3 - "$system_conf" "$dir" >"$dir/system.conf" <<'PY' || fail "cannot derive a bus config from $system_conf"
import sys
import xml.etree.ElementTree as ET
src, folder = sys.argv[1], sys.argv[2]
root = ET.parse(src).getroot()
drop = {"user", "fork", "pidfile", "syslog", "servicehelper", "standard_system_servicedirs",
        "servicedir", "listen", "include", "includedir", "keep_umask", "apparmor", "selinux"}
for child in list(root):
    if child.tag in drop:
        root.remove(child)
assert root.find("type").text == "system"
assert root.find("policy[@context='default']/deny[@send_type='method_call']") is not None
listen = ET.Element("listen")
listen.text = "unix:path=%s/system_bus_socket" % folder
root.insert(1, listen)
inc = ET.SubElement(root, "includedir")
inc.text = folder + "/system.d"
print('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
      ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">')
print(ET.tostring(root, encoding="unicode"))
PY
        start_bus_with "$dir/system.conf"
}

# Blocks until the daemon owns its name on the bus (an event, not a sleep).
wait_for_name() {
        if command -v gdbus >/dev/null; then
                gdbus wait --address "$BUS_ADDR" --timeout 30 "$BUS_NAME" ||
                        fail "the daemon did not appear on the bus"
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
        "$SIM" --control "$CONTROL" "$@" -- "$DAEMON" --bus-address="$BUS_ADDR" \
                >"$TMPDIR/daemon.log" 2>&1 &
        SIM_PID=$!
        wait_for_name
}

stop_daemon() {
        if [ -n "$SIM_PID" ]; then
                kill -TERM "$SIM_PID" 2>/dev/null || true
                wait "$SIM_PID" 2>/dev/null || true
                SIM_PID=""
        fi
}

# control LINE: one command to umockdev-sim's control socket; prints the answer.
control() {
        "$SIM" --send "$CONTROL" "$1"
}
