#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl -H [USER@]HOST / --host=: sd-bus's remote transport (ssh HOST
# systemd-stdio-bridge), with an ssh stand-in on PATH that runs the bridge here against
# the test's bus. list, info and erase reach the daemon; the stand-in saw each user@host;
# flash and read, which pass file descriptors, are refused before anything is sent, with
# what to do; an ssh that fails is exit 3 with a hint.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
command -v systemd-stdio-bridge >/dev/null || skip "systemd-stdio-bridge missing (systemd)"
start_bus
start_daemon --board ttyUSB0=0x466

# ssh [OPTIONS] [--] HOST COMMAND...: COMMAND here, on the test's bus, through pipes as
# over a network; HOST to a log.
mkdir "$TMPDIR/bin" "$TMPDIR/bin-down"
cat >"$TMPDIR/bin/ssh" <<SSH
#!/bin/sh
while [ \$# -gt 0 ]; do
        case "\$1" in
        --) shift; break ;;
        -p|-l|-o|-i) shift 2 ;;
        -*) shift ;;
        *) break ;;
        esac
done
echo "\$1" >>"$TMPDIR/ssh.hosts"
shift
[ "\$1" = systemd-stdio-bridge ] || { echo "ssh stand-in: unexpected command: \$*" >&2; exit 1; }
# Pipes, as an ssh channel: bytes only, no file descriptors. (sd-bus hands over its
# socket non-blocking; cat wants it blocking.)
python3 -c 'import os; os.set_blocking(0, True); os.set_blocking(1, True)'
cat | "\$@" --bus-path="$BUS_ADDR" | cat
SSH
# A host that does not answer.
printf '#!/bin/sh\necho "ssh: connect to host: No route to host" >&2\nexit 255\n' >"$TMPDIR/bin-down/ssh"
chmod +x "$TMPDIR/bin/ssh" "$TMPDIR/bin-down/ssh"
remote() {
        PATH="$TMPDIR/bin:$PATH" "$CTL" "$@"
}

remote -H station1 list >"$TMPDIR/list" 2>&1 || fail "-H station1 list: $(cat "$TMPDIR/list")"
grep -q '^/dev/ttyUSB0 ' "$TMPDIR/list" || fail "list over ssh: $(cat "$TMPDIR/list")"
remote --host=op@station2 --json info ttyUSB0 >"$TMPDIR/info.json" || fail "--host=op@station2 info"
json_check "$TMPDIR/info.json" 'j["chip"]["pid"] == 0x466'
remote -H station1 -q erase ttyUSB0 || fail "-H station1 erase"
[ "$(cat "$TMPDIR/ssh.hosts")" = "station1
op@station2
station1" ] || fail "ssh was asked for: $(cat "$TMPDIR/ssh.hosts")"

# File descriptors do not cross ssh: refused up front, nothing runs on the station.
make_bin "$TMPDIR/fw.bin" 1024 1
for cmd in "flash ttyUSB0 $TMPDIR/fw.bin" "read ttyUSB0 $TMPDIR/out.bin"; do
        rc=0
        # shellcheck disable=SC2086 # the command's words
        remote -H station1 $cmd 2>"$TMPDIR/err" || rc=$?
        [ $rc = 2 ] || fail "$cmd over ssh: exit $rc"
        grep -q "over ssh: copy it there and run 'ssh station1 stm32ispctl" "$TMPDIR/err" ||
                fail "$cmd over ssh: $(cat "$TMPDIR/err")"
done
[ ! -e "$TMPDIR/out.bin" ] || fail "read over ssh left an output file"
[ "$(sim_field ttyUSB0 writes)" = 0 ] || fail "something was written: $(control "info ttyUSB0")"

rc=0
PATH="$TMPDIR/bin-down:$PATH" "$CTL" -H nowhere list 2>"$TMPDIR/err" || rc=$?
[ $rc = 3 ] || fail "unreachable host: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "cannot reach stm32ispd on nowhere over ssh" "$TMPDIR/err" || fail "unreachable host: $(cat "$TMPDIR/err")"
echo PASS
