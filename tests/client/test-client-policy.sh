#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The client against the project's system-bus policy (dbus/io.github.Stm32Isp1.conf) on a
# bus with the system bus's default policy and no polkitd: a user outside dialout may list
# the ports but the daemon refuses a probe (AccessDenied: exit 4, with what to do) and the
# cancel of another user's job; a member of dialout may probe.
# (Before polkit the bus refused every method call of such a user, Cancel of no job too;
# now the bus lets the call through and the daemon decides: design.md, "Access".)
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
[ "$(id -u)" = 0 ] || skip "needs root (to run the client as other users)"
command -v setpriv >/dev/null || skip "setpriv missing"
getent group dialout >/dev/null && id nobody >/dev/null 2>&1 || skip "no dialout group or nobody user"
[ -r "$TOP_SRCDIR/dbus/io.github.Stm32Isp1.conf" ] || skip "no policy file"

# Other users reach the bus socket, and the client binary (the builds live under root).
chmod 0755 "$TMPDIR"
mkdir "$TMPDIR/system.d"
cp "$TOP_SRCDIR/dbus/io.github.Stm32Isp1.conf" "$TMPDIR/system.d/"
cat >"$TMPDIR/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$TMPDIR/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <!-- the default policy of Debian's system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>$TMPDIR/system.d</includedir>
</busconfig>
CONF
out=$(dbus-daemon --config-file="$TMPDIR/bus.conf" --fork --nopidfile --print-address=1 --print-pid=1) ||
        fail "dbus-daemon did not start"
BUS_ADDR=$(echo "$out" | sed -n 1p)
BUS_PID=$(echo "$out" | sed -n 2p)
start_daemon --board ttyUSB0=0x466

as_user() { # as_user GROUPS COMMAND...: GROUPS "" for none
        local groups=$1
        shift
        if [ -n "$groups" ]; then
                setpriv --reuid=nobody --regid=nogroup --groups="$groups" "$@"
        else
                setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
        fi
}

# Not in dialout: properties and the list, yes; a job, no.
as_user "" "$CTL" --bus-address="$BUS_ADDR" list >"$TMPDIR/out" 2>&1 || fail "list as nobody: $(cat "$TMPDIR/out")"
grep -q '^/dev/ttyUSB0 ' "$TMPDIR/out" || fail "list as nobody: $(cat "$TMPDIR/out")"
rc=0; as_user "" "$CTL" --bus-address="$BUS_ADDR" --json info ttyUSB0 >"$TMPDIR/e.json" 2>"$TMPDIR/err" || rc=$?
[ $rc = 4 ] || fail "info as nobody: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "dialout" "$TMPDIR/err" || fail "no hint: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/e.json" 'j["error"] == "org.freedesktop.DBus.Error.AccessDenied" and j["exit_code"] == 4'
# diagnose only reads, and needs the same right as info
rc=0; as_user "" "$CTL" --bus-address="$BUS_ADDR" diagnose ttyUSB0 >/dev/null 2>"$TMPDIR/err" || rc=$?
[ $rc = 4 ] || fail "diagnose as nobody: exit $rc ($(cat "$TMPDIR/err"))"
as_user dialout "$CTL" --bus-address="$BUS_ADDR" --json diagnose ttyUSB0 >"$TMPDIR/d.json" 2>"$TMPDIR/err" ||
        fail "diagnose as a dialout member: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/d.json" 'j["diagnosis"]["chip"]["pid"] == 0x466'

# Another user's job: nobody may not cancel it; it goes on and ends well.
start_tcp_board --pid 0x466
make_bin "$TMPDIR/long.bin" 16384 1
monitor_start
"$CTL" --bus-address="$BUS_ADDR" -q flash "$TCP_URL" "$TMPDIR/long.bin" 2>"$TMPDIR/flash.err" &
flash_pid=$!
monitor_wait '"port":"'"$TCP_URL"'","stage":"writing"'
rc=0; as_user "" "$CTL" --bus-address="$BUS_ADDR" cancel "$TCP_URL" 2>"$TMPDIR/err" || rc=$?
[ $rc = 4 ] || fail "cancel of root's job as nobody: exit $rc ($(cat "$TMPDIR/err"))"
wait "$flash_pid" || fail "root's flash did not survive nobody's cancel: $(cat "$TMPDIR/flash.err")"
monitor_stop

# In dialout: allowed
as_user dialout "$CTL" --bus-address="$BUS_ADDR" --json info ttyUSB0 >"$TMPDIR/info.json" 2>"$TMPDIR/err" ||
        fail "info as a dialout member: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/info.json" 'j["chip"]["pid"] == 0x466'
echo PASS
