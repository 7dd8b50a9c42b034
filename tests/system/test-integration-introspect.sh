#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shipped introspection XML (dbus/*.xml, installed to dbus-1/interfaces) says what the
# running daemon says: the same methods, properties and signals, with the same argument
# names, types and directions, property types, access and change signalling.
. "$(dirname "$0")/test-integration-lib.sh"
need_daemon
start_bus
start_daemon --board ttyUSB0=0x466

busctl --address="$BUS_ADDR" introspect --xml-interface "$BUS_NAME" "$MANAGER_PATH" \
        >"$TMPDIR/manager.xml" || fail "introspect $MANAGER_PATH"
PORT=$(busctl --address="$BUS_ADDR" call "$BUS_NAME" "$MANAGER_PATH" io.github.Stm32Isp1.Manager \
        GetPort s ttyUSB0) || fail "GetPort ttyUSB0"
PORT=${PORT#o }
PORT=${PORT//\"/}
case "$PORT" in /io/github/Stm32Isp1/port/*) ;; *) fail "GetPort returned '$PORT'" ;; esac
busctl --address="$BUS_ADDR" introspect --xml-interface "$BUS_NAME" "$PORT" \
        >"$TMPDIR/port.xml" || fail "introspect $PORT"

python3 - "$TOP_SRCDIR/dbus" "$TMPDIR/manager.xml" "$TMPDIR/port.xml" <<'PY' || fail "the introspection XML differs from the daemon"
import sys
import xml.etree.ElementTree as ET

EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"

def describe(iface):
    """Every member of an interface element, as comparable tuples."""
    out = {}
    for m in iface.findall("method"):
        out["method " + m.get("name")] = tuple(
            (a.get("name"), a.get("type"), a.get("direction", "in")) for a in m.findall("arg"))
    for s in iface.findall("signal"):
        out["signal " + s.get("name")] = tuple((a.get("name"), a.get("type")) for a in s.findall("arg"))
    for p in iface.findall("property"):
        emits = [a.get("value") for a in p.findall("annotation") if a.get("name") == EMITS]
        out["property " + p.get("name")] = (p.get("type"), p.get("access"), emits[0] if emits else "true")
    return out

def interface(path, name):
    found = [i for i in ET.parse(path).getroot().findall("interface") if i.get("name") == name]
    if len(found) != 1:
        sys.exit("%s: %d interfaces named %s" % (path, len(found), name))
    return found[0]

folder, live_manager, live_port = sys.argv[1:]
ok = True
for name, live in (("io.github.Stm32Isp1.Manager", live_manager), ("io.github.Stm32Isp1.Port", live_port)):
    shipped_path = "%s/%s.xml" % (folder, name)
    shipped_root = ET.parse(shipped_path).getroot()
    # One interface per file, named like the file.
    names = [i.get("name") for i in shipped_root.findall("interface")]
    if names != [name]:
        print("%s holds %s" % (shipped_path, names))
        ok = False
    shipped, running = describe(interface(shipped_path, name)), describe(interface(live, name))
    if not running:
        print("%s: the daemon shows no members" % name)
        ok = False
    for key in sorted(set(shipped) | set(running)):
        if shipped.get(key) != running.get(key):
            print("%s %s:\n  shipped: %s\n  daemon:  %s" % (name, key, shipped.get(key), running.get(key)))
            ok = False
    print("%s: %d members compared" % (name, len(running)))
# The Manager object also serves the ObjectManager.
if interface(live_manager, "org.freedesktop.DBus.ObjectManager") is None:
    ok = False
sys.exit(0 if ok else 1)
PY
echo "PASS: the daemon's introspection matches dbus/*.xml"
