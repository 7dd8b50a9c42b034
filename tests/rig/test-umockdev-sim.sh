#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/umockdev-sim's board options and limits, from a host that talks raw termios
# (Python, no project code): 60 ports open in one process at once (umockdev's preload
# alone aborts above 50: the shim opens the ptys itself), max-baud= (a host above it
# gets no answer to its sync and falls back), id= (Get ID answers another PID), the
# control socket's info baud=, and bad option values refused. usb-port=N (the slot): the
# sysfs path and udev properties a libudev host sees, a re-plug into the same port
# announced over udev with the same ID_PATH, and a second board in a held port refused.
set -u

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

builddir=${TOP_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
harness=$builddir/tests/rig/umockdev-sim
python=/usr/bin/python3
n=60
[ -x "$python" ] || { echo "SKIP: no $python"; exit 77; }
[ -x "$harness" ] || { echo "SKIP: $harness is not built (configure found no umockdev)"; exit 77; }
tmp=${TMPDIR:-/tmp}

# Refused option values; the message names the option.
for opt in max-baud=100 max-baud=3000001 max-baud=fast id=0 id=0x10000 usb-port=0 usb-port=128 usb-port=x; do
        out=$("$harness" --board "ttyUSB0=0x466,$opt" -- true 2>&1) && fail "$opt accepted"
        echo "$out" | grep -q "bad board option '${opt%%=*}'" || fail "$opt: $out"
done

# One control-socket request, shared by the Python hosts below (they import it).
cat > "$tmp/simctl.py" <<'EOF'
import socket


def control_line(control, line):
    """Sends one line to umockdev-sim's control socket; returns its answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(control)
    s.sendall(line.encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        k = s.recv(1024)
        if not k:
            break
        answer += k
    s.close()
    return answer.decode().strip()
EOF

cat > "$tmp/host.py" <<'EOF'
import os, select, socket, sys, termios
import simctl

n, control = int(sys.argv[1]), sys.argv[2]
ACK = 0x79


def configure(fd, baud, parity=True):
    a = termios.tcgetattr(fd)
    a[0] = a[1] = a[3] = 0
    a[2] = termios.CS8 | termios.CREAD | termios.CLOCAL | (termios.PARENB if parity else 0)
    a[4] = a[5] = baud
    termios.tcsetattr(fd, termios.TCSANOW, a)


def xfer(fd, out, n, timeout=3.0):
    """Sends out, returns up to n bytes (fewer when none come for timeout seconds)."""
    os.write(fd, bytes(out))
    buf = b""
    while len(buf) < n:
        if not select.select([fd], [], [], timeout)[0]:
            break
        buf += os.read(fd, n - len(buf))
    return buf


def check(what, got, want):
    if got != want:
        sys.exit("FAIL: %s: got %s, want %s" % (what, got.hex(), want.hex()))


def control_line(line):
    return simctl.control_line(control, line)


# every port open at once, then a sync on each at 115200 8E1
fds = [os.open("/dev/ttyUSB%d" % i, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC) for i in range(n)]
for fd in fds:
    configure(fd, termios.B115200)
for i in range(n - 3):
    check("sync ttyUSB%d" % i, xfer(fds[i], [0x7F], 1), bytes([ACK]))

# default board (ttyUSB{n-3}): no answer at 460800, and that 0x7F, too fast to measure,
# left it deaf (the harness says so): nothing at 115200 8E1 either until it is reset;
# then nothing at 115200 8N1 (not heard at all), then 115200 8E1
fd = fds[n - 3]
configure(fd, termios.B460800)
check("460800 on a default board", xfer(fd, [0x7F], 1, 0.3), b"")   # silence: no event to wait for
info = control_line("info ttyUSB%d" % (n - 3))
if "state=deaf" not in info:
    sys.exit("FAIL: not deaf after a sync it cannot measure: %s" % info)
configure(fd, termios.B115200)
check("deaf until reset", xfer(fd, [0x7F], 1, 0.3), b"")
if control_line("reset ttyUSB%d" % (n - 3)) != "ok":
    sys.exit("FAIL: reset")
configure(fd, termios.B115200, parity=False)
check("8N1", xfer(fd, [0x7F], 1, 0.3), b"")
configure(fd, termios.B115200)
check("fallback sync", xfer(fd, [0x7F], 1), bytes([ACK]))
check("Get ID", xfer(fd, [0x02, 0xFD], 5), bytes([ACK, 0x01, 0x04, 0x66, ACK]))

# max-baud=921600 (ttyUSB{n-2}): 460800 syncs, and the harness says so
fd = fds[n - 2]
configure(fd, termios.B460800)
check("sync at 460800", xfer(fd, [0x7F], 1), bytes([ACK]))
check("Get ID at 460800", xfer(fd, [0x02, 0xFD], 5), bytes([ACK, 0x01, 0x04, 0x66, ACK]))
info = control_line("info ttyUSB%d" % (n - 2))
if not info.startswith("ok ") or " baud=460800" not in info:
    sys.exit("FAIL: info: %s" % info)

# id=0x4a1 (ttyUSB{n-1}): Get ID answers it; the rest is a G0 (its bootloader ID byte)
fd = fds[n - 1]
check("sync id board", xfer(fd, [0x7F], 1), bytes([ACK]))
check("Get ID override", xfer(fd, [0x02, 0xFD], 5), bytes([ACK, 0x01, 0x04, 0xA1, ACK]))
check("Read Memory cmd", xfer(fd, [0x11, 0xEE], 1), bytes([ACK]))
check("Read Memory addr", xfer(fd, [0x1F, 0xFF, 0x1F, 0xFE, 0x1F ^ 0xFF ^ 0x1F ^ 0xFE], 1), bytes([ACK]))
check("bootloader ID", xfer(fd, [0x00, 0xFF], 2), bytes([ACK, 0x53]))
info = control_line("info ttyUSB%d" % (n - 1))
if " pid=0x466 " not in " " + info[3:] + " ":
    sys.exit("FAIL: info of the id board: %s" % info)

for fd in fds:
    os.close(fd)
print("%d ports open at once; max-baud, id and info baud= behave" % n)
EOF

set --
i=0
while [ $i -lt $((n - 2)) ]; do
        set -- "$@" --board "ttyUSB$i=0x466"
        i=$((i + 1))
done
set -- "$@" --board "ttyUSB$((n - 2))=0x466,max-baud=921600" --board "ttyUSB$((n - 1))=0x466,id=0x4a1"

"$harness" --control "$tmp/control.sock" "$@" -- "$python" "$tmp/host.py" "$n" "$tmp/control.sock" ||
        fail "host checks (status $?)"

# usb-port=: two boards in one port at startup are refused, and the message says which.
out=$("$harness" --board ttyUSB0=0x466,usb-port=2 --board ttyUSB1=0x466,usb-port=2 -- true 2>&1) &&
        fail "two boards in port 2 accepted"
echo "$out" | grep -q "ttyUSB1=0x466,usb-port=2: USB port 2 is taken by ttyUSB0" || fail "two in port 2: $out"

# A host with libudev (ctypes): what it finds in sysfs and udev for a board in a port,
# and the uevents of a re-plug into that port.
cat > "$tmp/slot.py" <<'EOF'
import ctypes, os, select, socket, sys, termios
import simctl

control = sys.argv[1]
USB = "/sys/devices/pci0000:00/0000:00:14.0/usb1"

lib = ctypes.CDLL("libudev.so.1")
P, S, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
for name, res, args in (
        ("udev_new", P, []),
        ("udev_monitor_new_from_netlink", P, [P, S]),
        ("udev_monitor_filter_add_match_subsystem_devtype", I, [P, S, S]),
        ("udev_monitor_enable_receiving", I, [P]),
        ("udev_monitor_get_fd", I, [P]),
        ("udev_monitor_receive_device", P, [P]),
        ("udev_device_new_from_subsystem_sysname", P, [P, S, S]),
        ("udev_device_get_action", S, [P]),
        ("udev_device_get_syspath", S, [P]),
        ("udev_device_get_property_value", S, [P, S]),
        ("udev_device_unref", P, [P])):
    f = getattr(lib, name)
    f.restype, f.argtypes = res, args
udev = lib.udev_new()


def props(dev):
    """What a udev client reads of a device: some properties and the syspath."""
    d = {}
    for k in ("DEVNAME", "ID_PATH", "ID_PATH_TAG", "DEVLINKS", "ID_SERIAL_SHORT"):
        v = lib.udev_device_get_property_value(dev, k.encode())
        d[k] = v.decode() if v else None
    d["syspath"] = lib.udev_device_get_syspath(dev).decode()
    return d


def lookup(name):
    dev = lib.udev_device_new_from_subsystem_sysname(udev, b"tty", name.encode())
    if not dev:
        sys.exit("FAIL: libudev finds no tty %s" % name)
    try:
        return props(dev)
    finally:
        lib.udev_device_unref(dev)


def control_line(line):
    return simctl.control_line(control, line)


def expect(what, got, want):
    if got != want:
        sys.exit("FAIL: %s: got %r, want %r" % (what, got, want))


def in_port(name, port):
    """Checks that tty NAME sits in USB port PORT, as sysfs and udev say."""
    tty = "%s/1-%d/1-%d:1.0/%s/tty/%s" % (USB, port, port, name, name)
    expect("sysfs of " + name, os.path.realpath("/sys/class/tty/" + name), tty)
    with open("%s/1-%d/devpath" % (USB, port)) as f:
        expect("devpath of " + name, f.read().strip(), str(port))
    p = lookup(name)
    expect("syspath of " + name, p["syspath"], tty)
    expect("ID_PATH of " + name, p["ID_PATH"], "pci-0000:00:14.0-usb-0:%d:1.0" % port)
    expect("ID_PATH_TAG of " + name, p["ID_PATH_TAG"], "pci-0000_00_14_0-usb-0_%d_1_0" % port)
    link = "/dev/serial/by-path/pci-0000:00:14.0-usb-0:%d:1.0-port0" % port
    if link not in (p["DEVLINKS"] or "").split():
        sys.exit("FAIL: no %s in DEVLINKS of %s: %s" % (link, name, p["DEVLINKS"]))
    return p


def devnum(port):
    with open("%s/1-%d/devnum" % (USB, port)) as f:
        return int(f.read())


def next_event(mon, fd):
    """The next tty uevent: (action, properties)."""
    while True:
        if not select.select([fd], [], [], 10)[0]:
            sys.exit("FAIL: no uevent within 10 s")
        dev = lib.udev_monitor_receive_device(mon)
        if dev:
            try:
                return lib.udev_device_get_action(dev).decode(), props(dev)
            finally:
                lib.udev_device_unref(dev)


# At startup: ttyUSB0 in port 1 (plug order), ttyUSB1 in port 3 (usb-port=3).
in_port("ttyUSB0", 1)
old = in_port("ttyUSB1", 3)
old_devnum = devnum(3)
expect("info usb-port", control_line("info ttyUSB1").rsplit(" ", 1)[-1], "usb-port=3")

# Port 3 is held: refused, and no device appears. A board without usb-port= whose plug
# order says port 3 goes to the next free one, 4.
expect("a second board in port 3", control_line("add ttyUSB2=0x466,usb-port=3"),
       "error USB port 3 is taken by ttyUSB1; remove it first")
expect("ttyUSB2 after the refusal", os.path.exists("/sys/class/tty/ttyUSB2"), False)
expect("add ttyUSB2 (plug order)", control_line("add ttyUSB2=0x466"), "ok")
in_port("ttyUSB2", 4)
# A hung-up board still sits in its port.
expect("hangup ttyUSB0", control_line("hangup ttyUSB0"), "ok")
expect("port 1 while hung up", control_line("add ttyUSB3=0x466,usb-port=1"),
       "error USB port 1 is taken by ttyUSB0; remove it first")

mon = lib.udev_monitor_new_from_netlink(udev, b"udev")
if not mon or lib.udev_monitor_filter_add_match_subsystem_devtype(mon, b"tty", None) < 0 or \
        lib.udev_monitor_enable_receiving(mon) < 0:
    sys.exit("FAIL: no udev monitor")
mfd = lib.udev_monitor_get_fd(mon)

# Unplug port 3, plug another adapter (another name, another UID) into it.
expect("remove ttyUSB1", control_line("remove ttyUSB1"), "ok")
action, p = next_event(mon, mfd)
expect("remove event", (action, p["DEVNAME"], p["ID_PATH"]), ("remove", "/dev/ttyUSB1", old["ID_PATH"]))
expect("ttyUSB1 after the remove", os.path.exists("/sys/class/tty/ttyUSB1"), False)
expect("add ttyUSB5 in port 3", control_line("add ttyUSB5=0x466,usb-port=3,uid=9"), "ok")
action, p = next_event(mon, mfd)
expect("add event", (action, p["DEVNAME"], p["ID_PATH"], p["syspath"]),
       ("add", "/dev/ttyUSB5", old["ID_PATH"], "%s/1-3/1-3:1.0/ttyUSB5/tty/ttyUSB5" % USB))
new = in_port("ttyUSB5", 3)
expect("info usb-port after the re-plug", control_line("info ttyUSB5").rsplit(" ", 1)[-1], "usb-port=3")
if new["ID_SERIAL_SHORT"] == old["ID_SERIAL_SHORT"]:
    sys.exit("FAIL: the new adapter has the old one's serial %s" % new["ID_SERIAL_SHORT"])
if devnum(3) == old_devnum:
    sys.exit("FAIL: the re-plugged device kept devnum %d" % old_devnum)
# A board without usb-port= after them: the 5th plug (refusals do not count), port 5.
expect("add ttyUSB6 (plug order)", control_line("add ttyUSB6=0x466"), "ok")
in_port("ttyUSB6", 5)

# The board in the slot answers.
fd = os.open("/dev/ttyUSB5", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
a = termios.tcgetattr(fd)
a[0] = a[1] = a[3] = 0
a[2] = termios.CS8 | termios.CREAD | termios.CLOCAL | termios.PARENB
a[4] = a[5] = termios.B115200
termios.tcsetattr(fd, termios.TCSANOW, a)
os.write(fd, b"\x7f")
if not select.select([fd], [], [], 3)[0] or os.read(fd, 1) != b"\x79":
    sys.exit("FAIL: no ACK from the board in port 3")
os.close(fd)
print("port 3 re-plugged: %s -> %s, devnum %d -> %d" % (old["DEVNAME"], new["DEVNAME"], old_devnum, devnum(3)))
EOF
"$harness" --control "$tmp/slot.sock" --board ttyUSB0=0x466 --board ttyUSB1=0x466,usb-port=3 -- \
        "$python" "$tmp/slot.py" "$tmp/slot.sock" || fail "usb-port checks (status $?)"
echo "PASS: umockdev-sim options"
