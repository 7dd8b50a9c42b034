#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The configuration verbs against stm32ispd on a private bus: autoflash show/set/clear
# (the profile the daemon holds, options mapped to its keys, the board flashed), remove,
# list in port order, and a tcp:// host that does not resolve.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
start_bus
# Named so that the daemon's order is not the port order: ttyUSB10 after ttyUSB2.
start_daemon --board ttyUSB10=0x466 --board ttyUSB2=0x466

# list: sorted by port (ttyUSB2 before ttyUSB10), text and JSON
ctl list >"$TMPDIR/out" || fail "list"
[ "$(sed -n '2s/ .*//p;3s/ .*//p' "$TMPDIR/out" | tr '\n' ' ')" = "/dev/ttyUSB2 /dev/ttyUSB10 " ] ||
        fail "list is not in port order: $(cat "$TMPDIR/out")"
ctl list --json >"$TMPDIR/list.json" || fail "list --json"
json_check "$TMPDIR/list.json" '[p["device"] for p in j] == ["/dev/ttyUSB2", "/dev/ttyUSB10"]'

# the completion offers the daemon's ports (plain bash, no bash-completion)
out=$(PATH="$(dirname "$CTL"):$PATH" bash --norc --noprofile -c '. "$1"
        COMP_WORDS=(stm32ispctl "--bus-address=$2" info ""); COMP_CWORD=3; COMP_LINE="${COMP_WORDS[*]}"
        COMP_POINT=${#COMP_LINE}; _stm32ispctl stm32ispctl "" info; printf "%s\n" "${COMPREPLY[@]}"' _ \
        "$TOP_SRCDIR/client/stm32ispctl.bash" "$BUS_ADDR" 2>&1)
grep -qx /dev/ttyUSB2 <<<"$out" && grep -qx /dev/ttyUSB10 <<<"$out" || fail "completion of the daemon's ports: $out"

# autoflash: nothing armed
ctl autoflash >"$TMPDIR/out" || fail "autoflash"
grep -q "^Auto-flash is not armed.$" "$TMPDIR/out" || fail "autoflash show: $(cat "$TMPDIR/out")"
ctl autoflash show --json >"$TMPDIR/af.json" || fail "autoflash show --json"
json_check "$TMPDIR/af.json" 'j["operation"] == "autoflash" and j["auto_flash"]["armed"] is False'

# usage: a verb it does not know, set without an image, options where they mean nothing
expect_rc 2 ctl autoflash arm 2>/dev/null
expect_rc 2 ctl autoflash set 2>/dev/null
expect_rc 2 ctl autoflash clear --vid 0x0403 2>/dev/null
expect_rc 2 ctl flash ttyUSB2 x.bin --expect-chip 0x466 2>/dev/null
expect_rc 6 ctl autoflash set "$TMPDIR/no-such.bin" 2>/dev/null

# set: the flash options and the profile options reach the daemon as its keys
make_bin "$TMPDIR/auto.bin" 2048 4
ctl autoflash set "$TMPDIR/auto.bin" --no-verify --erase mass --baud 57600 --vid 0x0403 --pid 0x6001 \
        --adapter-serial 'STSIM*' --expect-chip 0x466 --detect plug --poll-ms 250 >"$TMPDIR/out" || fail "autoflash set"
grep -q "^Auto-flash armed (over the bus): auto.bin$" "$TMPDIR/out" || fail "autoflash set: $(cat "$TMPDIR/out")"
ctl autoflash --json >"$TMPDIR/af.json" || fail "autoflash show"
json_check "$TMPDIR/af.json" 'a["armed"] and a["image_name"] == "auto.bin" and a["image_size"] == 2048 and
        a["verify"] is False and a["erase"] == "mass" and a["baudrate"] == 57600 and
        a["match"]["vid"] == 0x0403 and a["match"]["pid"] == 0x6001 and a["match"]["serial"] == "STSIM*" and
        a["expect_chip"] == 0x466 and a["detect"] == "plug" and a["poll_ms"] == 250 for a in [j["auto_flash"]]'
# a bad value is refused by the client, and nothing changes
expect_rc 2 ctl autoflash set "$TMPDIR/auto.bin" --vid 0x10000 2>/dev/null
ctl autoflash --json >"$TMPDIR/af.json" || fail "autoflash show"
json_check "$TMPDIR/af.json" 'j["auto_flash"]["match"]["vid"] == 0x0403'
# ... and armed, it flashes a board that appears
monitor_start
control "add ttyUSB3=0x466" >/dev/null
monitor_wait '"event":"finished".*"port":"/dev/ttyUSB3","operation":"flash","error":""'
control "dump ttyUSB3 $TMPDIR/dump3.bin" >/dev/null
cmp -n 2048 "$TMPDIR/dump3.bin" "$TMPDIR/auto.bin" || fail "auto-flash did not write the image"

# clear
ctl autoflash clear >"$TMPDIR/out" || fail "autoflash clear"
grep -q "^Auto-flash is not armed.$" "$TMPDIR/out" || fail "autoflash clear: $(cat "$TMPDIR/out")"

# remove: a port the client added, by its URL; then it is gone. An unknown port: 5.
start_tcp_board --pid 0x466
ctl info "$TCP_URL" -q || fail "info $TCP_URL"
ctl list --json >"$TMPDIR/list.json"
json_check "$TMPDIR/list.json" 'len(j) == 4'
ctl remove "$TCP_URL" >"$TMPDIR/out" || fail "remove"
grep -q "^Removed $TCP_URL.$" "$TMPDIR/out" || fail "remove: $(cat "$TMPDIR/out")"
ctl list --json >"$TMPDIR/list.json"
json_check "$TMPDIR/list.json" 'len(j) == 3 and all(p["transport"] != "tcp" for p in j)'
rc=0; ctl remove "$TCP_URL" --json >"$TMPDIR/e.json" 2>/dev/null || rc=$?
[ $rc = 5 ] || fail "remove of an unknown port: exit $rc"
json_check "$TMPDIR/e.json" 'j["error"].endswith("NotFound") and j["exit_code"] == 5'

# a tcp:// host that does not resolve: said so, and no port is kept
rc=0; ctl info tcp://no-such-host.invalid:4001 2>"$TMPDIR/err" || rc=$?
[ $rc = 5 ] || fail "unresolvable host: exit $rc ($(cat "$TMPDIR/err"))"
grep -q "does not resolve" "$TMPDIR/err" || fail "unresolvable host: $(cat "$TMPDIR/err")"
ctl list --json >"$TMPDIR/list.json"
json_check "$TMPDIR/list.json" 'len(j) == 3'
echo PASS
