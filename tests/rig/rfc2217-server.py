#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""An RFC 2217 server in front of a tty: pyserial's serial.rfc2217.PortManager (Debian
python3-serial) does the protocol; this script only carries bytes between one TCP client
at a time and the tty. Run it with the test shim preloaded and the tty a simulator's pty,
and the client's line settings (baud, parity, DTR/RTS, break) reach the simulated board.

    rfc2217-server.py TTY [--ignore-parity]

Prints the TCP port it listens on (127.0.0.1, chosen by the kernel) on the first line.
--ignore-parity: a server that leaves parity unset: it keeps the tty at no parity and
answers SET-PARITY with what it has (NONE).
"""
import argparse
import socket
import sys
import threading

import serial
import serial.rfc2217


class NoParitySerial(serial.Serial):
    """A port whose parity cannot be changed: it stays NONE, whatever is asked."""

    @property
    def parity(self):
        return self._parity

    @parity.setter
    def parity(self, value):
        self._parity = serial.PARITY_NONE
        if self.is_open:
            self._reconfigure_port()


class Connection:
    """What PortManager writes its Telnet answers to."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data):
        with self.lock:
            self.sock.sendall(data)


def tty_to_client(port, manager, conn, stop):
    while not stop.is_set():
        try:
            data = port.read(port.in_waiting or 1)
        except (serial.SerialException, OSError, TypeError):
            break
        if data:
            try:
                conn.write(b"".join(manager.escape(data)))
            except OSError:
                break


def serve(sock, tty, ignore_parity):
    cls = NoParitySerial if ignore_parity else serial.Serial
    # 9600 8N1 until the client says otherwise: a client that sets nothing talks 8N1
    port = cls(tty, 9600, timeout=0.05)
    conn = Connection(sock)
    manager = serial.rfc2217.PortManager(port, conn)
    stop = threading.Event()
    reader = threading.Thread(target=tty_to_client, args=(port, manager, conn, stop), daemon=True)
    reader.start()
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            out = b"".join(manager.filter(data))
            if out:
                port.write(out)
    except OSError:
        pass
    finally:
        stop.set()
        reader.join()
        port.close()
        sock.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tty")
    p.add_argument("--ignore-parity", action="store_true")
    args = p.parse_args()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serve(sock, args.tty, args.ignore_parity)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
