#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make install DESTDIR=...` from the build tree puts the system-integration files where
# pkg-config says (unless configure was told otherwise, as distcheck does), the programs
# where the unit and the activation file look for them; `make uninstall` takes it all away.
. "$(dirname "$0")/../test-lib.sh"

# A make of its own, not the one running the tests (its jobserver, its command line).
submake() {
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES ${MAKE:-make} -s -C "$TOP_BUILDDIR" "$@"
}

submake integration-print-dirs >"$TMPDIR/dirs" || fail "make integration-print-dirs"
dir() { sed -n "s/^$1=//p" "$TMPDIR/dirs"; }
config=$("$TOP_BUILDDIR/config.status" --config)

# expect_dir NAME MODULE VARIABLE [SUFFIX]: the directory is pkg-config's, unless
# configure had --with-NAME.
expect_dir() {
        local got want
        got=$(dir "$1")
        [ -n "$got" ] || fail "no $1"
        case "$config" in *"--with-$1="*) echo "$1=$got (configure option)"; return 0 ;; esac
        command -v pkg-config >/dev/null || return 0
        want=$(pkg-config --variable="$3" "$2" 2>/dev/null) || return 0
        [ -n "$want" ] || return 0
        [ "$got" = "$want${4:-}" ] || fail "$1 is $got, pkg-config $2 says $want${4:-}"
        echo "$1=$got (pkg-config $2 $3)"
}
expect_dir systemdsystemunitdir systemd systemdsystemunitdir
expect_dir sysusersdir systemd sysusersdir
expect_dir udevrulesdir udev udevdir /rules.d
expect_dir dbuspolicydir dbus-1 datadir /dbus-1/system.d
expect_dir dbussystemservicedir dbus-1 system_bus_services_dir
expect_dir dbusinterfacesdir dbus-1 interfaces_dir
expect_dir polkitactiondir polkit-gobject-1 actiondir

DEST="$TMPDIR/dest"
submake install DESTDIR="$DEST" >"$TMPDIR/install.log" 2>&1 || { cat "$TMPDIR/install.log"; fail "make install"; }

expect_file() {
        [ -f "$DEST$1" ] || fail "not installed: $1"
        [ ! -x "$DEST$1" ] || [ "${2:-}" = exec ] || fail "executable: $1"
}
sbindir=$(dir sbindir)
expect_file "$sbindir/stm32ispd" exec
[ -x "$DEST$sbindir/stm32ispd" ] || fail "stm32ispd not executable"
expect_file "$(dir bindir)/stm32ispctl" exec
expect_file "$(dir systemdsystemunitdir)/stm32ispd.service"
expect_file "$(dir sysusersdir)/stm32ispd.conf"
expect_file "$(dir udevrulesdir)/70-stm32ispd.rules"
expect_file "$(dir dbuspolicydir)/io.github.Stm32Isp1.conf"
expect_file "$(dir dbussystemservicedir)/io.github.Stm32Isp1.service"
expect_file "$(dir dbusinterfacesdir)/io.github.Stm32Isp1.Manager.xml"
expect_file "$(dir dbusinterfacesdir)/io.github.Stm32Isp1.Port.xml"
expect_file "$(dir polkitactiondir)/io.github.stm32isp.policy"
expect_file "$(dir polkitrulesdir)/60-stm32ispd.rules"

# The unit and the activation file name the installed daemon, not a build path.
grep -qx "ExecStart=$sbindir/stm32ispd" "$DEST$(dir systemdsystemunitdir)/stm32ispd.service" || fail "unit ExecStart"
grep -qx "Exec=$sbindir/stm32ispd" "$DEST$(dir dbussystemservicedir)/io.github.Stm32Isp1.service" || fail "activation Exec"
if grep -r '@[a-z_]*@' "$DEST$(dir systemdsystemunitdir)" "$DEST$(dir dbussystemservicedir)"; then
        fail "unsubstituted @variables@"
fi
# The installed files are the shipped ones.
cmp "$TOP_SRCDIR/dbus/io.github.Stm32Isp1.conf" "$DEST$(dir dbuspolicydir)/io.github.Stm32Isp1.conf" || fail "policy differs"
cmp "$TOP_SRCDIR/udev/70-stm32ispd.rules" "$DEST$(dir udevrulesdir)/70-stm32ispd.rules" || fail "rules differ"

submake uninstall DESTDIR="$DEST" >"$TMPDIR/uninstall.log" 2>&1 || { cat "$TMPDIR/uninstall.log"; fail "make uninstall"; }
left=$(find "$DEST" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "PASS: make install/uninstall with DESTDIR"
