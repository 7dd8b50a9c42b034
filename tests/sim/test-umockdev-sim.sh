#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/umockdev-sim's board options and limits, from a host that talks raw termios
# (Python, no project code): 60 ports open in one process at once (umockdev's preload
# alone aborts above 50: the shim opens the ptys itself), max-baud= (a host above it
# gets no answer to its sync and falls back), id= (Get ID answers another PID), the
# control socket's info baud=, and bad option values refused.
set -u

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

builddir=${TOP_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
harness=$builddir/tests/umockdev-sim
python=/usr/bin/python3
n=60
[ -x "$python" ] || { echo "SKIP: no $python"; exit 77; }
[ -x "$harness" ] || fail "$harness is not built"
tmp=${TMPDIR:-/tmp}

# Refused option values; the message names the option.
for opt in max-baud=100 max-baud=3000001 max-baud=fast id=0 id=0x10000; do
        out=$("$harness" --board "ttyUSB0=0x466,$opt" -- true 2>&1) && fail "$opt accepted"
        echo "$out" | grep -q "bad board option '${opt%%=*}'" || fail "$opt: $out"
done

cat > "$tmp/host.py" <<'EOF'
import os, select, socket, sys, termios

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


# every port open at once, then a sync on each at 115200 8E1
fds = [os.open("/dev/ttyUSB%d" % i, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC) for i in range(n)]
for fd in fds:
    configure(fd, termios.B115200)
for i in range(n - 3):
    check("sync ttyUSB%d" % i, xfer(fds[i], [0x7F], 1), bytes([ACK]))

# default board (ttyUSB{n-3}): no answer at 460800, nor at 115200 8N1; then 115200 8E1
fd = fds[n - 3]
configure(fd, termios.B460800)
check("460800 on a default board", xfer(fd, [0x7F], 1, 0.3), b"")   # silence: no event to wait for
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
echo "PASS: umockdev-sim options"
