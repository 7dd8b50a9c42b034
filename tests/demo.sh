#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: stm32ispd flashing a simulated STM32G031 on a simulated USB-serial adapter.
#
# On a fresh Debian 12 machine, as root, from a clean clone: installs what is missing
# (tests/install-deps.sh), builds out of tree in build/demo, starts a private D-Bus bus,
# the daemon under umockdev-sim with a simulated STM32G031 on /dev/ttyUSB0 (in real time:
# 115200 baud wire time), and runs the
# client: the chip's info, then flashing an example image with its progress bar, and the
# result, checked by reading the flash back. It cleans up after itself; run it again at
# will. Under `make check` (TOP_BUILDDIR set) it uses that build and installs nothing.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ -t 1 ] || step() { printf '\n==> %s\n' "$*"; }

if [ -n "${TOP_BUILDDIR:-}" ] && [ -x "$TOP_BUILDDIR/client/stm32ispctl" ]; then
        build=$TOP_BUILDDIR
else
        step "Installing what is missing"
        "$src/tests/install-deps.sh"
        if [ -e "$src/config.status" ]; then
                echo "The source tree is configured in place; run 'make distclean' there first." >&2
                exit 1
        fi
        step "Building in build/demo"
        cd "$src"
        [ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
        build=$src/build/demo
        mkdir -p "$build"
        cd "$build"
        [ -f Makefile ] || "$src/configure" -q
        make -j"$(nproc)" >/dev/null
fi

ctl="$build/client/stm32ispctl"
daemon="$build/daemon/stm32ispd"
sim="$build/tests/rig/umockdev-sim"
if [ ! -x "$sim" ]; then
        echo "$sim is not built: configure found no umockdev (Debian: libumockdev-dev)" >&2
        [ "$build" = "${TOP_BUILDDIR:-}" ] && exit 77      # under make check: a skip
        exit 1
fi

# Everything the demo creates lives here and goes at exit.
tmp=$(mktemp -d /tmp/stm32isp-demo.XXXXXX)
bus_pid=""
daemon_pid=""
cleanup() {
        [ -z "$daemon_pid" ] || { kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; }
        [ -z "$bus_pid" ] || kill "$bus_pid" 2>/dev/null || true
        daemon_pid="" bus_pid=""
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR=$tmp

step "Starting a private D-Bus bus"
cat >"$tmp/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$tmp/bus.sock</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
{ read -r bus; read -r bus_pid; } < <(dbus-daemon --config-file="$tmp/bus.conf" --fork --nopidfile \
                                                   --print-address=1 --print-pid=1)
echo "$bus"

step "Starting stm32ispd with a simulated STM32G031 on /dev/ttyUSB0 (umockdev)"
# timing=1: the simulator's timing model, the wire time of 115200 baud and the chip's
# erase and write times, so the progress bar and the time taken are those of a real board.
"$sim" --board ttyUSB0=0x466,timing=1 -- "$daemon" --bus-address="$bus" 2>"$tmp/daemon.log" &
daemon_pid=$!
# Ready when the daemon owns its bus name (it enumerates the ports first).
if ! gdbus wait --address "$bus" --timeout 30 io.github.Stm32Isp1; then
        cat "$tmp/daemon.log" >&2
        exit 1
fi
"$ctl" --bus-address="$bus" list

step "stm32ispctl info /dev/ttyUSB0"
"$ctl" --bus-address="$bus" info /dev/ttyUSB0

step "An example image: demo.hex (Intel HEX, 24 KiB at 0x08000000)"
# A Cortex-M0+ vector table (stack at the top of the 8 KiB RAM, reset handler at 0x08000100:
# a branch-to-self) followed by a pattern, so there is something to write and verify.
python3 - "$tmp/demo.hex" "$tmp/demo.bin" <<'PY'
import struct, sys
size = 24 * 1024
img = bytearray(((i * 7 + (i >> 8)) & 0xff) for i in range(size))
img[0:8] = struct.pack("<II", 0x20002000, 0x08000101)
img[0x100:0x102] = b"\xfe\xe7"                  # b .
lines = [":020000040800F2"]
for off in range(0, size, 16):
    rec = [16, off >> 8 & 0xff, off & 0xff, 0] + list(img[off:off + 16])
    lines.append(":" + "".join("%02X" % b for b in rec) + "%02X" % (-sum(rec) & 0xff))
lines.append(":00000001FF")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
open(sys.argv[2], "wb").write(img)
PY
head -n 3 "$tmp/demo.hex"
echo "..."

step "stm32ispctl flash /dev/ttyUSB0 demo.hex"
"$ctl" --bus-address="$bus" flash /dev/ttyUSB0 "$tmp/demo.hex" | tee "$tmp/flash.out"
# 24 KiB written and read back at 115200 baud (10 bits a byte) are about 4 s on the wire:
# much less means the board answered faster than any real one would.
secs=$(sed -n 's/.* in \([0-9.]*\) s\.$/\1/p' "$tmp/flash.out")
if ! awk -v s="${secs:-0}" 'BEGIN { exit !(s >= 3) }'; then
        echo "The flash took ${secs:-?} s: the simulated board does not keep a real board's time." >&2
        exit 1
fi

step "Checking: reading the flash back"
"$ctl" --bus-address="$bus" --quiet read /dev/ttyUSB0 "$tmp/back.bin" --length 24K
if cmp -s "$tmp/back.bin" "$tmp/demo.bin"; then
        echo "The flash holds demo.hex: $(stat -c %s "$tmp/back.bin") bytes read back, identical."
else
        echo "The flash differs from demo.hex!" >&2
        exit 1
fi

cleanup
trap - EXIT
step "Done"
echo "The daemon, the bus and the simulated board are stopped; nothing is left behind."
