# SPDX-License-Identifier: LGPL-2.1-or-later
# A D-Bus caller for tests/test-integration-policy.sh, run as different users (setpriv).
# Needs the GObject bindings (Gio) for fd passing and D-Bus error names.
#
#   test-integration-call.py ADDRESS methods PORT      every Manager/Port method and
#                                                      Properties.Set: "Member ERROR|ok" lines
#   test-integration-call.py ADDRESS read PORT         Introspect, Get, GetAll, GetManagedObjects,
#                                                      Ping: "what ERROR|ok" lines
#   test-integration-call.py ADDRESS probe PORT        prints the chip's pid
#   test-integration-call.py ADDRESS flash PORT FILE   flashes FILE (opened here), prints
#                                                      bytes_written
#   test-integration-call.py ADDRESS getport DEVICE    prints the object path
#   test-integration-call.py ADDRESS own               tries to own the daemon's name: prints
#                                                      "ERROR|ok"
#   test-integration-call.py ADDRESS listen PORT       prints "ready" once subscribed, then the
#                                                      first Finished signal of PORT

import os
import sys

import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "io.github.Stm32Isp1"
MANAGER = "/io/github/Stm32Isp1"
MANAGER_IFACE = "io.github.Stm32Isp1.Manager"
PORT_IFACE = "io.github.Stm32Isp1.Port"
TIMEOUT_MS = 60000

address, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
conn = Gio.DBusConnection.new_for_address_sync(
    address,
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)


def call(path, iface, method, sig, values, fds=()):
    """Returns ("ok", unpacked reply) or (error name, message)."""
    fd_list = Gio.UnixFDList.new()
    for fd in fds:
        fd_list.append(fd)
    params = GLib.Variant(sig, values) if sig else None
    try:
        reply, _ = conn.call_with_unix_fd_list_sync(NAME, path, iface, method, params, None,
                                                    Gio.DBusCallFlags.NO_AUTO_START, TIMEOUT_MS,
                                                    fd_list, None)
        return "ok", reply.unpack()
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e) or "local:" + e.message, e.message


def checked(result):
    if result[0] != "ok":
        sys.exit("%s: %s" % result)
    return result[1]


if command == "methods":
    port = args[0]
    null = os.open("/dev/null", os.O_RDWR)
    calls = [
        (MANAGER, MANAGER_IFACE, "AddPort", "(sa{sv})", ("tcp://127.0.0.1:9", {}), ()),
        (MANAGER, MANAGER_IFACE, "RemovePort", "(o)", (port,), ()),
        (MANAGER, MANAGER_IFACE, "GetPort", "(s)", ("ttyUSB0",), ()),
        (port, PORT_IFACE, "Probe", "(a{sv})", ({},), ()),
        (port, PORT_IFACE, "Diagnose", "(a{sv})", ({},), ()),
        (port, PORT_IFACE, "Flash", "(ha{sv})", (0, {}), (null,)),
        (port, PORT_IFACE, "Erase", "(a{sv})", ({},), ()),
        (port, PORT_IFACE, "Read", "(htta{sv})", (0, 0x08000000, 16, {}), (null,)),
        (port, PORT_IFACE, "Lock", "(a{sv})", ({},), ()),
        (port, PORT_IFACE, "Unlock", "(a{sv})", ({},), ()),
        (port, PORT_IFACE, "Go", "(t)", (0x08000000,), ()),
        (port, PORT_IFACE, "Cancel", None, None, ()),
        (port, "org.freedesktop.DBus.Properties", "Set", "(ssv)",
         (PORT_IFACE, "State", GLib.Variant("s", "idle")), ()),
    ]
    for path, iface, method, sig, values, fds in calls:
        print(iface.rsplit(".", 1)[-1] + "." + method, call(path, iface, method, sig, values, fds)[0])

elif command == "read":
    port = args[0]
    props = "org.freedesktop.DBus.Properties"
    checks = [
        ("Introspect.manager", MANAGER, "org.freedesktop.DBus.Introspectable", "Introspect", None, None),
        ("Introspect.port", port, "org.freedesktop.DBus.Introspectable", "Introspect", None, None),
        ("GetAll.manager", MANAGER, props, "GetAll", "(s)", (MANAGER_IFACE,)),
        ("GetAll.port", port, props, "GetAll", "(s)", (PORT_IFACE,)),
        ("Get.port", port, props, "Get", "(ss)", (PORT_IFACE, "Device")),
        ("GetManagedObjects", MANAGER, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None, None),
        ("Ping", MANAGER, "org.freedesktop.DBus.Peer", "Ping", None, None),
    ]
    for what, path, iface, method, sig, values in checks:
        status, reply = call(path, iface, method, sig, values)
        detail = ""
        if status == "ok" and what == "GetAll.port":
            detail = " Device=" + reply[0]["Device"]
        elif status == "ok" and what == "GetManagedObjects":
            detail = " ports=%d" % sum(1 for p in reply[0] if p.startswith(MANAGER + "/port/"))
        elif status == "ok" and what == "GetAll.manager":
            detail = " Version=" + reply[0]["Version"]
        print(what, status + detail)

elif command == "probe":
    chip = checked(call(args[0], PORT_IFACE, "Probe", "(a{sv})", ({},)))[0]
    print("pid=0x%x" % chip["pid"])

elif command == "flash":
    fd = os.open(args[1], os.O_RDONLY)
    result = checked(call(args[0], PORT_IFACE, "Flash", "(ha{sv})",
                          (0, {"format": GLib.Variant("s", "bin")}), (fd,)))[0]
    print("bytes_written=%d" % result["bytes_written"])

elif command == "getport":
    print(checked(call(MANAGER, MANAGER_IFACE, "GetPort", "(s)", (args[0],)))[0])

elif command == "own":
    try:
        conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "RequestName", GLib.Variant("(su)", (NAME, 0)), None, Gio.DBusCallFlags.NONE,
                       TIMEOUT_MS, None)
        print("ok")
    except GLib.Error as e:
        print(Gio.DBusError.get_remote_error(e) or "local:" + e.message)

elif command == "listen":
    loop = GLib.MainLoop()
    got = []

    def on_signal(_conn, sender, path, iface, signal, params):
        got.append(params.unpack())
        loop.quit()

    conn.signal_subscribe(None, PORT_IFACE, "Finished", args[0], None, Gio.DBusSignalFlags.NONE, on_signal)
    # A round trip to the bus: the match rule is in place once it returns.
    conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "GetId", None, None, Gio.DBusCallFlags.NONE, TIMEOUT_MS, None)
    print("ready", flush=True)
    GLib.timeout_add_seconds(30, loop.quit)
    loop.run()
    if not got:
        sys.exit("no Finished signal")
    print("Finished %s %s" % (got[0][0], got[0][1] or "-"))

else:
    sys.exit("unknown command " + command)
