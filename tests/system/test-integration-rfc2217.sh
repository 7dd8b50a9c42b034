#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# rfc2217:// ports against two real RFC 2217 servers, each in front of a simulated board's
# pty with the test shim preloaded (so the line settings the server applies reach the
# board, which answers only 8E1, and DTR/RTS drive its nRST/BOOT0):
#   ser2net 4 (a telnet(rfc2217) accepter) and pyserial's PortManager (tests/rig/rfc2217-server.py).
# For each: stm32ispctl flashes through rfc2217://127.0.0.1:PORT with an entry sequence,
# and the board's flash then holds exactly the image; a client that does not set even
# parity (pyserial's own rfc2217 client at 8N1) gets no answer where one at 8E1 does.
# A server that leaves parity unset fails the flash with a message naming parity, and the
# board is not touched.
. "$(dirname "$0")/test-integration-lib.sh"

BOOTSIM="$TOP_BUILDDIR/tests/rig/sim/stm32-bootsim"
SHIM="$TOP_BUILDDIR/tests/rig/shim/.libs/serial-shim.so"
SERVER_PY="$TOP_SRCDIR/tests/rig/rfc2217-server.py"
CTL="$TOP_BUILDDIR/client/stm32ispctl"
NEED_BUILT+=("$BOOTSIM" "$SHIM" "$CTL")
NEED_COMMANDS+=(ser2net)
need_daemon
/usr/bin/python3 -c 'import serial.rfc2217' 2>/dev/null || skip "python3-serial missing"

PIDS=()
stop_servers() {
        local p
        for p in "${PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null
        done
        for p in "${PIDS[@]}"; do
                # ser2net may ignore TERM while it starts: never hang the run
                timeout 5 tail --pid="$p" -s 0.1 -f /dev/null || kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        PIDS=()
}
add_cleanup stop_servers

ctl() {
        "$CTL" --bus-address="$BUS_ADDR" "$@"
}

# start_board NAME: a simulated F0 (0x444; BOOT0 on RTS, nRST on DTR) on a pty; sets
# PTY_<NAME>, SOCK_<NAME>, BOARD_<NAME> (its pid). Its flash goes to $TMPDIR/NAME.flash
# when it stops.
start_board() {
        local name=$1 fifo="$TMPDIR/$1.fifo" pty
        mkfifo "$fifo"
        "$BOOTSIM" --pid 0x444 --pty --wiring dtr-nrst,rts-boot0 --line-socket "$TMPDIR/$name.sock" \
                --dump "$TMPDIR/$name.flash" >"$fifo" 2>"$TMPDIR/$name.err" &
        PIDS+=($!)
        eval "BOARD_$name=\$!"
        read -r -t 30 pty <"$fifo" || fail "board $name did not start: $(cat "$TMPDIR/$name.err")"
        eval "PTY_$name=\$pty"
        eval "SOCK_$name=\$TMPDIR/\$name.sock"
}

# stop_board NAME: the board writes its flash dump and exits.
stop_board() {
        local pid
        eval "pid=\$BOARD_$1"
        kill -TERM "$pid"
        wait "$pid" || fail "board $1 failed: $(cat "$TMPDIR/$1.err")"
}

# free_port: a TCP port nobody listens on (ser2net needs one named in its config).
free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listen PORT: until something accepts on 127.0.0.1:PORT.
wait_listen() {
        local i
        for i in $(seq 100); do
                python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2).close()" 2>/dev/null &&
                        return 0
                sleep 0.1
        done
        fail "nothing listens on port $1"
}

# start_ser2net NAME: ser2net 4 with an rfc2217 accepter in front of board NAME's pty;
# sets URL_<NAME>. The pty starts at 9600 8N1: only the client's settings make it 8E1.
start_ser2net() {
        local name=$1 port pty sock
        port=$(free_port)
        eval "pty=\$PTY_$name sock=\$SOCK_$name"
        cat >"$TMPDIR/$name.yaml" <<YAML
%YAML 1.1
---
connection: &$name
    accepter: telnet(rfc2217),tcp,127.0.0.1,$port
    connector: serialdev,$pty,9600n81,local
    options:
      kickolduser: true
YAML
        # the server opens the board's pty through the test shim (a simple command, so
        # that $! is the server itself)
        STM32SIM_SHIM_SOCKET=$sock LD_PRELOAD=$SHIM ser2net -n -d -c "$TMPDIR/$name.yaml" \
                >"$TMPDIR/$name.ser2net.log" 2>&1 &
        PIDS+=($!)
        wait_listen "$port"
        eval "URL_$name=rfc2217://127.0.0.1:\$port"
}

# start_pyserial NAME [--ignore-parity]: pyserial's PortManager in front of board NAME.
start_pyserial() {
        local name=$1 port pty sock fifo="$TMPDIR/$1.server.fifo"
        shift
        eval "pty=\$PTY_$name sock=\$SOCK_$name"
        mkfifo "$fifo"
        STM32SIM_SHIM_SOCKET=$sock LD_PRELOAD=$SHIM /usr/bin/python3 "$SERVER_PY" "$pty" "$@" \
                >"$fifo" 2>"$TMPDIR/$name.server.log" &
        PIDS+=($!)
        read -r -t 30 port <"$fifo" || fail "the pyserial server did not start: $(cat "$TMPDIR/$name.server.log")"
        eval "URL_$name=rfc2217://127.0.0.1:\$port"
}

# parity_check URL: pyserial's own RFC 2217 client runs the entry sequence and sends the
# sync at 8N1 (no answer: the board needs 8E1), then at 8E1 (ACK); then it resets the
# board into its code.
parity_check() {
        /usr/bin/python3 - "$1" <<'PY' || fail "parity check through $1"
import sys, time, serial
def sync(parity):
    s = serial.serial_for_url(sys.argv[1], baudrate=115200, parity=parity, timeout=0.5)
    s.rts = True; s.dtr = True; time.sleep(0.05); s.dtr = False; time.sleep(0.05)
    s.reset_input_buffer()
    s.write(b"\x7f")
    got = s.read(1)
    s.close()
    return got
none = sync(serial.PARITY_NONE)
even = sync(serial.PARITY_EVEN)
if none != b"" or even != b"\x79":
    print(f"8N1 got {none!r}, 8E1 got {even!r}", file=sys.stderr)
    sys.exit(1)
# BOOT0 low, a reset pulse: the board runs its (empty) code and ignores a sync, so the
# flash that follows works only if its entry sequence gets through the server
s = serial.serial_for_url(sys.argv[1], baudrate=115200, parity=serial.PARITY_EVEN, timeout=0.5)
s.rts = False; s.dtr = True; time.sleep(0.05); s.dtr = False; time.sleep(0.05)
s.reset_input_buffer()
s.write(b"\x7f")
if s.read(1) != b"":
    print("the board still answers after a reset into its code", file=sys.stderr)
    sys.exit(1)
s.close()
PY
}

# flash_check NAME: flash a random image through URL_<NAME> with an entry sequence, then
# the board's flash holds exactly the image, erased (0xFF) after it.
flash_check() {
        local name=$1 url size=$((5 * 1024 + 100))
        eval "url=\$URL_$name"
        head -c $size /dev/urandom >"$TMPDIR/$name.bin"
        ctl --json flash "$url" "$TMPDIR/$name.bin" --entry dtr-nrst,rts-boot0 >"$TMPDIR/$name.json" 2>"$TMPDIR/$name.ctl.err" ||
                fail "flash through $url: $(cat "$TMPDIR/$name.ctl.err") $(cat "$TMPDIR/$name.json")"
        stop_board "$name"
        cmp -n $size "$TMPDIR/$name.flash" "$TMPDIR/$name.bin" || fail "$name: the flash differs from the image"
        tail -c +$((size + 1)) "$TMPDIR/$name.flash" | tr -d '\377' | cmp -s - /dev/null ||
                fail "$name: the flash after the image is not erased"
        echo "$name: $url flashed byte-exact"
}

start_bus
start_daemon --board ttyUSB0=0x466

# 1. ser2net
start_board s2n
start_ser2net s2n
parity_check "$URL_s2n"
flash_check s2n

# 2. pyserial's PortManager
start_board py
start_pyserial py
parity_check "$URL_py"
flash_check py

# 3. a server that leaves parity unset: the job fails naming parity, the board untouched
start_board bad
start_pyserial bad --ignore-parity
head -c 1024 /dev/urandom >"$TMPDIR/bad.bin"
rc=0
ctl flash "$URL_bad" "$TMPDIR/bad.bin" --entry dtr-nrst,rts-boot0 >"$TMPDIR/bad.out" 2>&1 || rc=$?
[ $rc = 25 ] || fail "flash through a server without parity: exit $rc: $(cat "$TMPDIR/bad.out")"
grep -q "parity" "$TMPDIR/bad.out" || fail "the error does not name parity: $(cat "$TMPDIR/bad.out")"
stop_board bad
tr -d '\377' <"$TMPDIR/bad.flash" | cmp -s - /dev/null || fail "the board behind the bad server was written"
echo "bad: $(cat "$TMPDIR/bad.out")"
