#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""flash-bench: how fast stm32ispd flashes, side by side with stm32flash and the
protocol's bound, against the bootloader simulator's timing model (issue 7).

  /usr/bin/python3 tests/bench/flash-bench.py --builddir BUILD [--rounds 3]
      [--latency-us 1000] [--case NAME]... [--with-flasher] [--no-floor] [--stm32flash PATH]
      [--fast-baud 460800]

Every simulated board runs with the timing model on: 11 bits a byte at the host's baud
(8E1), the adapter latency before every reply burst, and the datasheet program/erase
times. Columns, per image:
  stm32ispd     stm32ispctl flash (verify on, the default) through the daemon on a
                private dbus-daemon, the boards served by tests/rig/umockdev-sim; factory-fresh
                boards (one per flash), 115200 baud (its default)
  flasher       (--with-flasher) the same flasher library without the daemon
                (tests/bench/bench-flasher over link-serial)
  floor         the rig's floor: exactly the bound's commands and nothing else
                (bench-flasher --bound-sequence over link-serial, same board, same
                pty): what any host gets through this rig; stm32ispd's time over it
                is the host's own overhead (--no-floor: no column)
  stm32ispd-460800  stm32ispctl --baud 460800 flash, on boards whose autobaud goes up
                to 921600 (umockdev-sim max-baud=921600: a chip and adapter that work
                faster); its ratio is to the bound at 460800 (--fast-baud 0: no column)
  sf-115200-v   stm32flash -b 115200 -w IMG -v
  sf-default-v  stm32flash -w IMG -v (its default baud, 57600)
  bound         computed from the protocol, see bound() below
Times are wall-clock seconds of the flashing command; medians over the rounds; the
tools alternate within each round. The ratio is to the bound (at 115200, except for the
stm32ispd-460800 column).
"""

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time

import benchlib  # tests/bench/, next to this script

BAUD = 115200
SF_DEFAULT_BAUD = 57600
FAST_MAX_BAUD = 921600      # the faster boards' autobaud limit (max-baud=)

# name, PID, flash KiB of the simulated part (the image fills it), image KiB
CASES = [
    ("G031 32K", 0x466, 32, 32),
    ("G031 64K", 0x466, 64, 64),
    ("C011 32K", 0x443, 32, 32),
    ("F030 32K", 0x444, 32, 32),
    ("L011 16K", 0x457, 16, 16),
]
# the simulator's model (tests/sim/sim-devices.c, from the datasheets)
PROGRAM_USEC = {  # per 256-byte block
    0x466: 32 * 85.0,        # 32 double words, 85 us each
    0x443: 32 * 85.0,
    0x444: 128 * 53.5,       # 128 half-words, 53.5 us each
    0x457: 4 * 3200.0,       # 4 half-pages, 3.2 ms each
}
MASS_ERASE_USEC = {0x466: 22100.0, 0x443: 22100.0, 0x444: 30000.0}
PAGE = {0x466: 2048, 0x443: 2048, 0x444: 1024, 0x457: 128}
PAGE_ERASE_USEC = {0x466: 22000.0, 0x443: 22000.0, 0x444: 30000.0, 0x457: 3200.0}
STM32FLASH_KNOWS = {0x444, 0x457, 0x466}


def bound(pid, image_bytes, latency_us, baud=BAUD):
    """The least time any host needs for sync, Get ID, erase, write and verify.

    A reply is one turn of the line (the host stops and waits for the chip); each costs
    one adapter latency. Bytes both ways cost 11 bits each. Blocks are 256 bytes."""
    out_b = in_b = replies = 0
    chip_us = 0.0
    # sync: 7F / ACK
    out_b += 1; in_b += 1; replies += 1
    # Get ID: 02 FD / ACK N PID PID ACK
    out_b += 2; in_b += 5; replies += 1
    # erase: one mass erase, or (L0) every page in one Extended Erase
    if pid in MASS_ERASE_USEC:
        out_b += 2 + 3; in_b += 2; replies += 2
        chip_us += MASS_ERASE_USEC[pid]
    else:
        pages = -(-image_bytes // PAGE[pid])
        out_b += 2 + 2 + 2 * pages + 1; in_b += 2; replies += 2
        chip_us += pages * PAGE_ERASE_USEC[pid]
    blocks = -(-image_bytes // 256)
    # Write Memory: 31 CE / ACK, addr+cks / ACK, N data cks / ACK
    out_b += blocks * (2 + 5 + 1 + 256 + 1); in_b += blocks * 3; replies += blocks * 3
    chip_us += blocks * PROGRAM_USEC[pid]
    # Read Memory: 11 EE / ACK, addr+cks / ACK, N ~N / ACK data
    out_b += blocks * (2 + 5 + 2); in_b += blocks * (3 + 256); replies += blocks * 3
    wire_us = (out_b + in_b) * 11 * 1e6 / baud
    return (wire_us + replies * latency_us + chip_us) / 1e6


def run_timed(argv):
    """--time-cmd: runs argv (inside umockdev-sim), prints 'elapsed=S rc=N'."""
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr.decode(errors="replace")[-2000:])
    print("elapsed=%.6f rc=%d" % (t, p.returncode), flush=True)
    return 0


class Bench:
    def __init__(self, args):
        self.a = args
        self.b, self.tmp, self.harness, self.daemon = benchlib.setup(args, "flash-bench.")
        self.ctl = args.ctl or os.path.join(self.b, "client/stm32ispctl")
        self.flasher = os.path.join(self.b, "tests/bench/bench-flasher")
        self.sf = args.stm32flash or shutil.which("stm32flash")
        self.images = {}
        rng = random.Random(7)
        for name, pid, fkb, ikb in CASES:
            path = os.path.join(self.tmp, "img-%s.bin" % name.replace(" ", "-"))
            with open(path, "wb") as f:
                f.write(bytes(rng.getrandbits(8) for _ in range(ikb * 1024)))
            self.images[name] = path
        self.bus = None
        self.bus_pid = None

    def board(self, name, pid, fkb, max_baud=None):
        spec = "%s=0x%03x,flash-kb=%d,timing=1,latency-us=%d" % (name, pid, fkb, self.a.latency_us)
        return spec + (",max-baud=%d" % max_baud if max_baud else "")

    # ---- one harness with one board around one timed command ----
    def timed_under_harness(self, pid, fkb, argv):
        cmd = [self.harness, "--board", self.board("ttyUSB0", pid, fkb), "--",
               "/usr/bin/python3", os.path.abspath(__file__), "--time-cmd", "--"] + argv
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        out = p.stdout.decode()
        for line in out.splitlines():
            if line.startswith("elapsed="):
                el, rc = line.split()
                if rc != "rc=0":
                    sys.stderr.write("%s failed: %s\n" % (" ".join(argv), p.stderr.decode()[-1000:]))
                    return None
                return float(el.split("=")[1])
        sys.stderr.write("%s: no result: %s\n" % (" ".join(argv), p.stderr.decode()[-1000:]))
        return None

    def stm32flash(self, case, baud):
        name, pid, fkb, ikb = case
        if not self.sf or pid not in STM32FLASH_KNOWS:
            return None
        argv = [self.sf]
        if baud:
            argv += ["-b", str(baud)]
        argv += ["-w", self.images[name], "-v", "/dev/ttyUSB0"]
        return self.timed_under_harness(pid, fkb, argv)

    def lib_flasher(self, case, bound_sequence=False):
        name, pid, fkb, ikb = case
        return self.timed_under_harness(pid, fkb, [self.flasher, "--device", "/dev/ttyUSB0",
                                                   "--baud", str(BAUD)] +
                                        (["--bound-sequence"] if bound_sequence else []) + [self.images[name]])

    # ---- the daemon: one harness per round, a fresh board per case ----
    def start_bus(self):
        self.bus, self.bus_pid = benchlib.start_private_bus(self.tmp)

    def stop_bus(self):
        if self.bus_pid:
            os.kill(self.bus_pid, signal.SIGTERM)
            self.bus_pid = None

    def start_daemon(self):
        boards = []
        for i, (name, pid, fkb, ikb) in enumerate(CASES):
            boards += ["--board", self.board("ttyUSB%d" % i, pid, fkb)]
        if self.a.fast_baud:
            # a second, fresh board per case for the faster column
            for i, (name, pid, fkb, ikb) in enumerate(CASES):
                boards += ["--board", self.board("ttyUSB%d" % (len(CASES) + i), pid, fkb, FAST_MAX_BAUD)]
        self.dlog = open(os.path.join(self.tmp, "daemon.log"), "ab")
        self.dproc = subprocess.Popen([self.harness] + boards + ["--", self.daemon, "--bus-address=" + self.bus],
                                      stdout=self.dlog, stderr=subprocess.STDOUT)
        subprocess.run(["gdbus", "wait", "--address", self.bus, "--timeout", "30", "io.github.Stm32Isp1"],
                       check=True)
        # the ports appear through hotplug: wait until the daemon lists them all
        for _ in range(200):
            p = subprocess.run([self.ctl, "--bus-address=" + self.bus, "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
            if all(("ttyUSB%d" % i) in p.stdout.decode() for i in range(len(boards) // 2)):
                return
            time.sleep(0.05)
        raise RuntimeError("the daemon did not list the simulated ports")

    def stop_daemon(self):
        self.dproc.send_signal(signal.SIGTERM)
        self.dproc.wait(timeout=30)
        self.dlog.close()

    def daemon_flash(self, i, case, baud=None):
        name = case[0]
        t0 = time.monotonic()
        p = subprocess.run([self.ctl, "--bus-address=" + self.bus, "-q"] +
                           (["--baud", str(baud)] if baud else []) +
                           ["flash", "ttyUSB%d" % i, self.images[name]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.monotonic() - t0
        if p.returncode != 0:
            sys.stderr.write("stm32ispctl flash %s failed: %s\n" % (name, p.stderr.decode()[-1000:]))
            return None
        return t

    def run(self):
        a = self.a
        for exe in (self.harness, self.ctl, self.daemon) + ((self.flasher,) if a.with_flasher or a.floor else ()):
            if not os.access(exe, os.X_OK):
                sys.exit("%s is not built (make bench builds everything)" % exe)
        cases = [c for c in CASES if not a.case or c[0] in a.case]
        cols = ["stm32ispd"] + (["flasher"] if a.with_flasher else []) + (["floor"] if a.floor else []) + \
            ["sf-115200-v", "sf-default-v"] + \
            (["stm32ispd-%d" % a.fast_baud] if a.fast_baud else [])
        res = {(c[0], col): [] for c in cases for col in cols}
        self.start_bus()
        try:
            for rnd in range(a.rounds):
                self.start_daemon()
                try:
                    for case in cases:
                        i = CASES.index(case)
                        for col in cols:
                            if col == "stm32ispd":
                                t = self.daemon_flash(i, case)
                            elif col == "flasher":
                                t = self.lib_flasher(case)
                            elif col == "floor":
                                t = self.lib_flasher(case, bound_sequence=True)
                            elif col == "sf-115200-v":
                                t = self.stm32flash(case, BAUD)
                            elif col == "sf-default-v":
                                t = self.stm32flash(case, None)
                            else:
                                t = self.daemon_flash(len(CASES) + i, case, a.fast_baud)
                            if t is not None:
                                res[(case[0], col)].append(t)
                            sys.stderr.write("round %d %-9s %-13s %s\n" % (rnd + 1, case[0], col,
                                             "%.3f s" % t if t is not None else "n/a"))
                finally:
                    self.stop_daemon()
        finally:
            self.stop_bus()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.print_table(cases, cols, res)

    def print_table(self, cases, cols, res):
        """The medians (the result), then the best of the rounds: on a shared VM a run
        is now and then slowed by a few percent as a whole, and the best round shows
        what each tool needs when nothing else interferes."""
        self.print_one_table(cases, cols, res, statistics.median, "median")
        print()
        self.print_one_table(cases, cols, res, min, "best")

    def print_one_table(self, cases, cols, res, stat, stat_name):
        a = self.a
        hdr = "| image | " + " | ".join("%s s (×bound)" % c for c in cols) + " | bound s" + \
              (" | bound at %d s" % a.fast_baud if a.fast_baud else "") + \
              (" | stm32ispd ÷ floor" if a.floor else "") + \
              " | stm32ispd vs sf-115200-v | stm32ispd vs sf-default-v |"
        print("Simulator timing model: %d baud 8E1, %d us adapter latency per reply, datasheet "
              "program/erase times; %s of %d rounds%s." % (BAUD, a.latency_us, stat_name, a.rounds,
                                                          ", SCHED_FIFO" if a.realtime else ""))
        print()
        print(hdr)
        print("|" + "---|" * (hdr.count("|") - 1))
        for name, pid, fkb, ikb in cases:
            bd = bound(pid, ikb * 1024, a.latency_us)
            bd_fast = bound(pid, ikb * 1024, a.latency_us, a.fast_baud) if a.fast_baud else None
            med = {}
            cells = []
            for c in cols:
                v = res[(name, c)]
                if v:
                    med[c] = stat(v)
                    b = bd_fast if c.startswith("stm32ispd-") else bd
                    cells.append("%.2f (%.3f)" % (med[c], med[c] / b))
                else:
                    cells.append("n/a")
            def speedup(other):
                if "stm32ispd" in med and other in med:
                    return "%.2f× faster" % (med[other] / med["stm32ispd"])
                return "n/a"
            over_floor = ""
            if a.floor:
                over_floor = " | %.3f" % (med["stm32ispd"] / med["floor"]) \
                    if "stm32ispd" in med and "floor" in med else " | n/a"
            print("| %s | %s | %.2f%s%s | %s | %s |" % (name, " | ".join(cells), bd,
                                                        " | %.2f" % bd_fast if bd_fast else "", over_floor,
                                                        speedup("sf-115200-v"), speedup("sf-default-v")))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--time-cmd" and sys.argv[2] == "--":
        return run_timed(sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default=".")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-us", type=int, default=1000)
    ap.add_argument("--case", action="append", help="only this image (e.g. 'G031 32K'); repeatable")
    ap.add_argument("--with-flasher", action="store_true",
                    help="also time the flasher library without the daemon (bench-flasher)")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="no rig-floor column (bench-flasher --bound-sequence)")
    ap.add_argument("--stm32flash", help="stm32flash binary (default: from PATH)")
    ap.add_argument("--fast-baud", type=int, default=460800,
                    help="baud of the stm32ispd column on faster boards (max-baud=%d); 0: none" % FAST_MAX_BAUD)
    ap.add_argument("--ctl", help="stm32ispctl binary (default: BUILDDIR/client/stm32ispctl)")
    benchlib.add_build_args(ap)
    ap.add_argument("--realtime", action="store_true",
                    help="run every process of the benchmark SCHED_FIFO (root): on a loaded "
                         "machine the simulator's sleeps (one per reply) otherwise wake late")
    args = ap.parse_args()
    benchlib.prepare(args)
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
