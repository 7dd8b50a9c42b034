#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shipped bus policy (dbus/io.github.Stm32Isp1.conf) on a bus configured like the
# system bus, and the daemon's authorization without polkitd (no polkit on this bus): the
# daemon (root) owns its name; any user may reach the methods, and the daemon lets root and
# a member of dialout probe and flash a simulated board, while nobody gets AccessDenied from
# the daemon for every method that touches a chip or the configuration (GetPort, and Cancel
# with no job running, do neither); everyone may introspect, read properties, list the
# objects and receive signals; no one else may own the name.
# (Before polkit the bus policy itself refused nobody's calls: the assertions changed with
# the access model of design.md, "Access (from 2026-12)".)
. "$(dirname "$0")/test-integration-lib.sh"
need_daemon
[ "$(id -u)" = 0 ] || skip "needs root (the callers are other users, via setpriv)"
command -v setpriv >/dev/null || skip "setpriv missing (util-linux)"
getent group dialout >/dev/null || skip "no group dialout"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || skip "no user nobody/nogroup"
need_gi_python

# Other users reach only $SHARED: the bus socket, the caller script, the images.
chmod 0711 "$TMPDIR"
SHARED="$TMPDIR/shared"
mkdir -m 0755 "$SHARED"
cp "$TOP_SRCDIR/tests/system/test-integration-call.py" "$SHARED/call.py"
chmod 0644 "$SHARED/call.py"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$GI_PYTHON" -c 'import gi' ||
        skip "user nobody cannot run $GI_PYTHON"

start_system_bus "$SHARED"
start_daemon --board ttyUSB0=0x466

NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
DIALOUT="setpriv --reuid=nobody --regid=nogroup --groups=dialout"
call() {
        (cd "$SHARED" && "$GI_PYTHON" "$SHARED/call.py" "$BUS_ADDR" "$@")
}
call_as() {
        local who=$1
        shift
        (cd "$SHARED" && $who "$GI_PYTHON" "$SHARED/call.py" "$BUS_ADDR" "$@")
}

make_image() {
        python3 -c 'import random,sys; open(sys.argv[1],"wb").write(bytes(random.Random(int(sys.argv[2])).getrandbits(8) for _ in range(2048)))' "$1" "$2"
        chmod 0644 "$1"
}

# expect_flash IMAGE: the simulated flash starts with IMAGE.
expect_flash() {
        control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null || fail "dump"
        cmp -n 2048 "$TMPDIR/dump.bin" "$1" || fail "the flash does not hold $1"
}

PORT=$(call getport ttyUSB0) || fail "root: GetPort"
case "$PORT" in /io/github/Stm32Isp1/port/*) ;; *) fail "GetPort returned '$PORT'" ;; esac

# nobody listens for the signals of the jobs others start.
mkfifo "$TMPDIR/listen.fifo"
call_as "$NOBODY" listen "$PORT" >"$TMPDIR/listen.fifo" 2>"$TMPDIR/listen.err" &
LISTEN_PID=$!
exec 7<"$TMPDIR/listen.fifo"
read -r -t 30 -u 7 line || fail "the listener did not start: $(cat "$TMPDIR/listen.err")"
[ "$line" = ready ] || fail "listener: $line"

# root
[ "$(call probe "$PORT")" = "pid=0x466" ] || fail "root: Probe"
read -r -t 30 -u 7 line || fail "nobody received no Finished signal: $(cat "$TMPDIR/listen.err")"
[ "$line" = "Finished probe -" ] || fail "nobody received '$line'"
wait "$LISTEN_PID" || fail "the listener failed"
exec 7<&-
make_image "$SHARED/root.bin" 1
[ "$(call flash "$PORT" "$SHARED/root.bin")" = "bytes_written=2048" ] || fail "root: Flash"
expect_flash "$SHARED/root.bin"

# a member of dialout (uid nobody)
[ "$(call_as "$DIALOUT" getport /dev/ttyUSB0)" = "$PORT" ] || fail "dialout: GetPort"
[ "$(call_as "$DIALOUT" probe "$PORT")" = "pid=0x466" ] || fail "dialout: Probe"
make_image "$SHARED/dialout.bin" 2
[ "$(call_as "$DIALOUT" flash "$PORT" "$SHARED/dialout.bin")" = "bytes_written=2048" ] || fail "dialout: Flash"
expect_flash "$SHARED/dialout.bin"

# nobody: the bus passes the calls, the daemon refuses them; the board is untouched
call_as "$NOBODY" methods "$PORT" >"$TMPDIR/methods" || fail "nobody: calls"
cat "$TMPDIR/methods"
[ "$(wc -l <"$TMPDIR/methods")" = 13 ] || fail "nobody: not every method was called"
for m in Manager.AddPort Manager.RemovePort Port.Probe Port.Diagnose Port.Flash Port.Erase Port.Read Port.Lock \
         Port.Unlock Port.Go Properties.Set; do
        grep -qx "$m org\.freedesktop\.DBus\.Error\.AccessDenied" "$TMPDIR/methods" || fail "nobody was not denied $m"
done
grep -qx "Manager.GetPort ok" "$TMPDIR/methods" || fail "nobody cannot look a port up"
grep -qx "Port.Cancel ok" "$TMPDIR/methods" || fail "nobody's Cancel of no job failed"
expect_flash "$SHARED/dialout.bin"

# ... but reads everything
call_as "$NOBODY" read "$PORT" >"$TMPDIR/read" || fail "nobody: reads"
cat "$TMPDIR/read"
for want in "Introspect.manager ok" "Introspect.port ok" "GetAll.manager ok Version=" \
            "GetAll.port ok Device=/dev/ttyUSB0" "Get.port ok" "GetManagedObjects ok ports=1" "Ping ok"; do
        grep -q "^$want" "$TMPDIR/read" || fail "nobody: no '$want'"
done

# Only the daemon's users own the name (the daemon holds it; a second owner would queue).
[ "$(call_as "$NOBODY" own)" = org.freedesktop.DBus.Error.AccessDenied ] || fail "nobody may own the name"
[ "$(call_as "$DIALOUT" own)" = org.freedesktop.DBus.Error.AccessDenied ] || fail "dialout may own the name"

echo "PASS: the bus lets everyone call and read; the daemon lets root and dialout use the ports"
