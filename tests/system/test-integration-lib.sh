# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the system-integration tests: test-lib.sh's private bus (permissive) and
# stm32ispd under umockdev-sim, plus a bus set up like the system bus with the shipped
# policy. They talk to the daemon with busctl.

# Next to this file, wherever the test runs from (VPATH builds run it from the source tree).
# shellcheck source=tests/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test-lib.sh"

NEED_COMMANDS+=(busctl)

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
