#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every stm32ispctl subcommand against stm32ispd on a private bus, with simulated boards
# (umockdev-sim): text and --json output, what ends up in the simulated flash, progress
# lines when stderr is not a terminal.
. "$(dirname "$0")/test-client-lib.sh"
need_daemon
need_gi_python
start_bus
start_daemon --board ttyUSB0=0x466 --board ttyUSB1=0x444,adapter=ch340

# list
ctl list >"$TMPDIR/out" || fail "list"
grep -q '^/dev/ttyUSB0  *0403:6001 FT232R USB UART  *STSIM000  .*  idle  *-$' "$TMPDIR/out" || fail "list: $(cat "$TMPDIR/out")"
grep -q '^/dev/ttyUSB1 .*1a86:7523' "$TMPDIR/out" || fail "list: $(cat "$TMPDIR/out")"
ctl list --json >"$TMPDIR/list.json" || fail "list --json"
json_check "$TMPDIR/list.json" 'len(j) == 2 and sorted(p["device"] for p in j) == ["/dev/ttyUSB0", "/dev/ttyUSB1"] and
        [p for p in j if p["device"] == "/dev/ttyUSB0"][0]["vendor_id"] == 0x0403 and
        all(k == k.lower() for p in j for k in p)'
OBJ=/io/github/Stm32Isp1/port/ttyUSB0
grep -q "\"object\":\"$OBJ\"" "$TMPDIR/list.json" || fail "list: no $OBJ"

# info, by every kind of name
ctl info /dev/ttyUSB0 >"$TMPDIR/out" 2>"$TMPDIR/err" || fail "info: $(cat "$TMPDIR/err")"
grep -q '^STM32G03x/04x on /dev/ttyUSB0:' "$TMPDIR/out" || fail "info: $(cat "$TMPDIR/out")"
grep -q 'Product ID: *0x466' "$TMPDIR/out" || fail "info pid: $(cat "$TMPDIR/out")"
grep -q 'nBOOT_SEL: *1' "$TMPDIR/out" || fail "info nBOOT_SEL: $(cat "$TMPDIR/out")"
# (a by-id style link: the client follows it when the daemon does not know that name)
mkdir -p "$TMPDIR/serial/by-id"
ln -s /dev/ttyUSB0 "$TMPDIR/serial/by-id/usb-FTDI_FT232R_USB_UART_STSIM000-if00-port0"
for name in ttyUSB0 "$OBJ" "$TMPDIR/serial/by-id/usb-FTDI_FT232R_USB_UART_STSIM000-if00-port0"; do
        ctl --json info "$name" >"$TMPDIR/info.json" || fail "info $name"
        json_check "$TMPDIR/info.json" 'j["operation"] == "info" and j["chip"]["pid"] == 0x466 and j["chip"]["flash_size"] == 65536 and
                j["chip"]["rdp_level"] == 0 and j["chip"]["nboot_sel"] == 1 and len(j["chip"]["uid"]) == 24'
done
# the bootloader's commands by name (JSON: the bytes and the names)
grep -q 'Commands: *Get, Get Version, Get ID, Read Memory, Go, Write Memory, Extended Erase, Write Protect, Write Unprotect, Readout Protect, Readout Unprotect$' \
        "$TMPDIR/out" || fail "info commands: $(cat "$TMPDIR/out")"
json_check "$TMPDIR/info.json" 'j["chip"]["command_names"][:3] == ["Get", "Get Version", "Get ID"] and
        len(j["chip"]["command_names"]) * 2 == len(j["chip"]["commands"])'
ctl info ttyUSB1 --json >"$TMPDIR/info1.json" || fail "info ttyUSB1"
json_check "$TMPDIR/info1.json" 'j["chip"]["pid"] == 0x444 and "nboot_sel" not in j["chip"]'

# flash an Intel HEX image; stderr is not a terminal: plain progress lines
make_hex "$TMPDIR/fw.hex" 0x08000000 3000 1
ctl flash ttyUSB0 "$TMPDIR/fw.hex" >"$TMPDIR/out" 2>"$TMPDIR/err" || fail "flash: $(cat "$TMPDIR/err")"
grep -q '^writing: 3000/3000 bytes (100%)$' "$TMPDIR/err" || fail "no plain progress: $(cat "$TMPDIR/err")"
grep -q '^verifying: ' "$TMPDIR/err" || fail "no verify progress: $(cat "$TMPDIR/err")"
if grep -q $'\r' "$TMPDIR/err"; then fail "a progress bar without a terminal"; fi
# the result names the board: the chip and its UID
grep -q "^Flashed $TMPDIR/fw.hex to ttyUSB0 (STM32G03x/04x, UID [0-9a-f]\{24\}): 2.9 KiB written, verified, in" \
        "$TMPDIR/out" || fail "flash: $(cat "$TMPDIR/out")"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" || fail "the flash does not hold the image"

# on a terminal: a progress bar redrawn in place (script(1) gives the client a pty)
if command -v script >/dev/null; then
        script -qefc "'$CTL' --bus-address='$BUS_ADDR' flash ttyUSB0 '$TMPDIR/fw.hex'" /dev/null >"$TMPDIR/tty.out" ||
                fail "flash on a terminal: $(cat "$TMPDIR/tty.out")"
        grep -q $'\rwriting    \[#*\] 100%  2.9 KiB/2.9 KiB' "$TMPDIR/tty.out" || fail "no progress bar: $(cat -A "$TMPDIR/tty.out")"
        grep -q $'\r\e\[K' "$TMPDIR/tty.out" || grep -q 'ETA' "$TMPDIR/tty.out" || fail "no ETA: $(cat -A "$TMPDIR/tty.out")"
        grep -q '^Flashed ' "$TMPDIR/tty.out" || fail "flash on a terminal: no result"
fi

# a read past the end of the flash: refused by the client before anything is sent (the
# layout of the last probe), and by the daemon (a Read the client did not check)
rc=0; ctl read ttyUSB0 "$TMPDIR/x.bin" --address 0x0800FFF0 --length 32 2>"$TMPDIR/err" || rc=$?
[ $rc = 2 ] && grep -q "runs past the end of the flash" "$TMPDIR/err" || fail "read past the end: $rc $(cat "$TMPDIR/err")"
rc=0; "$GI_PYTHON" - "$BUS_ADDR" "$OBJ" <<'PY' 2>"$TMPDIR/err" || rc=$?
import os, sys
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
bus = Gio.DBusConnection.new_for_address_sync(
    sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
def call(method, args, fds=None):
    try:
        bus.call_with_unix_fd_list_sync("io.github.Stm32Isp1", sys.argv[2], "io.github.Stm32Isp1.Port", method, args,
                                        None, Gio.DBusCallFlags.NONE, 30000, fds, None)
    except GLib.Error as e:
        return e.message
    return "ok"
fds = Gio.UnixFDList.new()
fds.append(os.open("/dev/null", os.O_WRONLY))
m = call("Read", GLib.Variant("(htta{sv})", (0, 0x0800FFF0, 32, {})), fds)
assert "InvalidArgs" in m and "runs past the end" in m and "nothing was read" in m, m
# Go: an odd (Thumb) address is refused by the daemon too
m = call("Go", GLib.Variant("(t)", (0x08000001,)))
assert "InvalidArgs" in m and "Thumb" in m, m
PY
[ $rc = 0 ] || fail "the daemon's refusals: $(cat "$TMPDIR/err")"

# read it back through the client: a range, then (default) the whole flash
ctl read ttyUSB0 "$TMPDIR/back.bin" --length 3000 >"$TMPDIR/out" || fail "read"
cmp "$TMPDIR/back.bin" "$TMPDIR/fw.hex.bin" || fail "read back differs"
grep -q "^Read 3000 bytes at 0x08000000 from ttyUSB0" "$TMPDIR/out" || fail "read: $(cat "$TMPDIR/out")"
ctl --json read ttyUSB0 "$TMPDIR/all.bin" >"$TMPDIR/read.json" || fail "read all"
json_check "$TMPDIR/read.json" 'j["operation"] == "read" and j["result"]["bytes_read"] == 65536 and j["result"]["address"] == 0x08000000'
[ "$(stat -c %s "$TMPDIR/all.bin")" = 65536 ] || fail "read all: size"
cmp "$TMPDIR/all.bin" "$TMPDIR/dump.bin" || fail "read all differs from the flash"

# flash a binary at an address, --json, options passed
make_bin "$TMPDIR/app.bin" 4096 2
ctl flash ttyUSB0 "$TMPDIR/app.bin" --address 0x08001000 --json --no-boot0 >"$TMPDIR/flash.json" 2>/dev/null || fail "flash bin"
json_check "$TMPDIR/flash.json" 'j["operation"] == "flash" and j["port"] == "ttyUSB0" and j["result"]["bytes_written"] == 4096 and
        j["result"]["bytes_verified"] == 4096 and j["result"]["boot0_changed"] is False and j["result"]["error"] == ""'
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" || fail "auto erase touched the first page"
cmp -i 4096:0 -n 4096 "$TMPDIR/dump.bin" "$TMPDIR/app.bin" || fail "the binary is not at 0x08001000"

# a binary inside page 1, which holds the end of fw.hex: erase=auto keeps that end
# (read before the erase, written back, verified), and says how much it kept
make_bin "$TMPDIR/mid.bin" 256 4
KEPT=$(python3 -c 'import sys; print(sum(b != 0xff for b in open(sys.argv[1], "rb").read()[2048:3000]))' "$TMPDIR/fw.hex.bin")
ctl flash ttyUSB0 "$TMPDIR/mid.bin" --address 0x08000C00 --no-boot0 >"$TMPDIR/out" 2>/dev/null || fail "flash mid-page"
grep -q "^Flashed $TMPDIR/mid.bin to ttyUSB0 (STM32G03x/04x, UID [0-9a-f]*): 256 B written, verified, $KEPT B of its pages kept as they were, in" "$TMPDIR/out" ||
        fail "flash mid-page: $(cat "$TMPDIR/out")"
ctl flash ttyUSB0 "$TMPDIR/mid.bin" --address 0x08000C00 --no-boot0 --json >"$TMPDIR/mid.json" 2>/dev/null || fail "flash mid-page --json"
json_check "$TMPDIR/mid.json" "j['result']['preserved_bytes'] == $KEPT and j['result']['bytes_written'] == 256 and
        j['result']['pages_erased'] == 1"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" || fail "flash mid-page lost the end of fw.hex"
cmp -i 3072:0 -n 256 "$TMPDIR/dump.bin" "$TMPDIR/mid.bin" || fail "mid.bin is not at 0x08000C00"

# from standard input (a pipe: the client hands the daemon a copy in a memfd)
ctl flash ttyUSB0 - --format hex -q <"$TMPDIR/fw.hex" || fail "flash from stdin"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 3000 "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" || fail "flash from stdin: the flash differs"

# --quiet: nothing on stdout or stderr
ctl -q flash ttyUSB0 "$TMPDIR/app.bin" --address 0x08001000 --no-verify >"$TMPDIR/out" 2>"$TMPDIR/err" || fail "flash -q"
[ ! -s "$TMPDIR/out" ] && [ ! -s "$TMPDIR/err" ] || fail "--quiet printed something"

# erase page 0 (2 KiB on G0): only it
ctl erase ttyUSB0 --pages 0 >"$TMPDIR/out" 2>/dev/null || fail "erase --pages"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
python3 - "$TMPDIR/dump.bin" "$TMPDIR/fw.hex.bin" <<'PY' || fail "erase --pages 0 erased the wrong bytes"
import sys
d, fw = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert d[:2048] == b"\xff" * 2048
assert d[2048:3000] == fw[2048:3000]
PY
# erase by range, then mass erase (the default)
ctl erase ttyUSB0 --address 0x08001000 --length 2048 -q || fail "erase range"
ctl --json erase ttyUSB0 >"$TMPDIR/erase.json" 2>/dev/null || fail "erase"
json_check "$TMPDIR/erase.json" 'j["operation"] == "erase" and j["port"] == "ttyUSB0"'
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(0 if d == b"\xff" * 65536 else 1)' "$TMPDIR/dump.bin" ||
        fail "mass erase left data"

# unlock on a chip that is not read-protected: nothing done (its flash kept), said so;
# --force unlocks anyway, the mass erase included
make_bin "$TMPDIR/keep.bin" 1024 8
ctl flash ttyUSB0 "$TMPDIR/keep.bin" -q || fail "flash before unlock"
erases=$(sim_field ttyUSB0 mass-erases)
ctl unlock ttyUSB0 >"$TMPDIR/out" 2>&1 || fail "unlock of an unprotected chip: $(cat "$TMPDIR/out")"
grep -q "^The chip is not read-protected: nothing done (--force unlocks it anyway" "$TMPDIR/out" ||
        fail "unlock: $(cat "$TMPDIR/out")"
ctl --json unlock ttyUSB0 >"$TMPDIR/unlock.json" 2>/dev/null || fail "unlock --json"
json_check "$TMPDIR/unlock.json" 'j["result"]["nothing_done"] and j["result"]["operation"] == "unlock"'
[ "$(sim_field ttyUSB0 mass-erases)" = "$erases" ] || fail "unlock erased an unprotected chip"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
cmp -n 1024 "$TMPDIR/dump.bin" "$TMPDIR/keep.bin" || fail "unlock changed the flash"
ctl unlock ttyUSB0 --force >"$TMPDIR/out" 2>&1 || fail "unlock --force: $(cat "$TMPDIR/out")"
grep -q "^Unlocked ttyUSB0" "$TMPDIR/out" || fail "unlock --force: $(cat "$TMPDIR/out")"
control "dump ttyUSB0 $TMPDIR/dump.bin" >/dev/null
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(0 if d == b"\xff" * 65536 else 1)' "$TMPDIR/dump.bin" ||
        fail "unlock --force did not erase"

# lock: read protection; read then fails with ReadProtected (14); unlock clears it
ctl lock ttyUSB0 >"$TMPDIR/out" 2>/dev/null || fail "lock"
grep -q "^Locked ttyUSB0" "$TMPDIR/out" || fail "lock: $(cat "$TMPDIR/out")"
# locked already: nothing done, said so
ctl lock ttyUSB0 >"$TMPDIR/out" 2>/dev/null || fail "lock again"
grep -q "^The chip is read-protected already: nothing done." "$TMPDIR/out" || fail "lock again: $(cat "$TMPDIR/out")"
ctl --json info ttyUSB0 >"$TMPDIR/info.json" 2>/dev/null || fail "info after lock"
json_check "$TMPDIR/info.json" 'j["chip"]["rdp_level"] == 1'
expect_rc 14 ctl read ttyUSB0 "$TMPDIR/x.bin" --length 16 -q
# the hints name the command line's flag and verb, not the D-Bus option
rc=0; ctl read ttyUSB0 "$TMPDIR/x.bin" --length 16 2>"$TMPDIR/err" || rc=$?
[ $rc = 14 ] && grep -q "'stm32ispctl unlock' first" "$TMPDIR/err" || fail "read-protected hint: $(cat "$TMPDIR/err")"
rc=0; ctl --json flash ttyUSB0 "$TMPDIR/fw.hex" >"$TMPDIR/e.json" 2>"$TMPDIR/err" || rc=$?
[ $rc = 14 ] || fail "flash of a locked chip: exit $rc"
grep -q "flash with --unprotect to erase it.*stm32ispctl unlock" "$TMPDIR/err" || fail "flash hint: $(cat "$TMPDIR/err")"
json_check "$TMPDIR/e.json" '"--unprotect" in j["message"] and "with unprotect" not in j["message"]'
ctl unlock ttyUSB0 -q || fail "unlock"
ctl --json info ttyUSB0 >"$TMPDIR/info.json" 2>/dev/null || fail "info after unlock"
json_check "$TMPDIR/info.json" 'j["chip"]["rdp_level"] == 0'

# cancel with nothing running: fine, and says so
ctl cancel ttyUSB0 >"$TMPDIR/out" || fail "cancel"
grep -q "^Nothing ran on ttyUSB0: nothing to cancel.$" "$TMPDIR/out" || fail "cancel: $(cat "$TMPDIR/out")"
ctl cancel ttyUSB0 --json >"$TMPDIR/cancel.json" || fail "cancel --json"
json_check "$TMPDIR/cancel.json" 'j["operation"] == "cancel" and j["result"]["cancelled"] is False'

# go: the board runs its code, and the bootloader no longer answers (NoBootloader, 10)
make_bin "$TMPDIR/small.bin" 256 3
ctl flash ttyUSB0 "$TMPDIR/small.bin" -q || fail "flash before go"
ctl go ttyUSB0 0x08000000 >"$TMPDIR/out" 2>/dev/null || fail "go"
grep -q "^Started the code on ttyUSB0" "$TMPDIR/out" || fail "go: $(cat "$TMPDIR/out")"
control "info ttyUSB0" | grep -q "state=user" || fail "the board is not running its code: $(control "info ttyUSB0")"
expect_rc 10 ctl info ttyUSB0 -q

echo PASS
