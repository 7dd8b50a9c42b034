#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""scale-bench: stm32ispd flashing 1, 8, 32 and 64 simulated ports at once (issue 7, "Scale").

  /usr/bin/python3 tests/bench/scale-bench.py --builddir BUILD [--ports 1,8,32,64]
      [--idle-seconds 10] [--latency-us 1000] [--daemon PATH] [--harness PATH] [--realtime]
      [--poll-ms MS]

For each N: tests/rig/umockdev-sim serves N boards ttyUSB0..N-1 (G031 with 32 KiB of flash,
factory-fresh, the simulator's timing model at the host's 115200 baud, 1 ms adapter
latency per reply) around stm32ispd on a private dbus-daemon. One client (this script,
over GDBus) calls Flash on all N ports at once (verify on, the defaults otherwise) with
the same 32 KiB random image and waits for every reply. Then, ports still plugged and
nothing running, it counts the daemon's system calls for --idle-seconds with
`strace -f -c -p PID` (every thread) and its context switches from /proc.

Columns: N; aggregate wall time from the first call to the last reply; its ratio to
N=1; the daemon's CPU seconds per flash over that window, divided by N, twice: utime+stime
from /proc/PID/stat (clock-tick samples) and the scheduler's exact run time summed over
its threads (/proc/PID/task/*/schedstat); that CPU as % of one core per active port; the
daemon's peak RSS (VmHWM); the idle syscalls and context switches. The simulator's and the bus's CPU in
the same window are printed too (they share the machine's cores with the daemon).

With --poll-ms MS, after the idle check (nothing armed: no wake-ups expected) an
auto-flash profile with detect=poll and poll-ms=MS is armed on every port (the same
image, a fixture station: issue 16); once every slot says "passed" (each board flashed
once by the station) the daemon's CPU while it polls the N occupied idle ports is taken
over --idle-seconds (schedstat, % of one core per port), with its RSS (VmRSS) and its
context switches per second; then the profile is cleared.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import benchlib  # tests/bench/, next to this script

import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "io.github.Stm32Isp1"
MANAGER = "/io/github/Stm32Isp1"
PID = 0x466
FLASH_KB = 32
NO_TIMEOUT = 0x7FFFFFFF
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_seconds(pid):
    """Time on a CPU of every live thread of pid, from the scheduler's own accounting
    (/proc/PID/task/TID/schedstat, nanoseconds). utime+stime in /proc/PID/stat are
    sampled at the clock tick (100 Hz here) and are coarse for a process that runs in
    short bursts; the daemon's threads (main loop and one worker per port) live as long
    as their ports, so none is lost between two samples."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def ctxt_switches(pid):
    """Context switches of every thread of pid (each is a wake-up or a preemption)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


class Scale:
    def __init__(self, args):
        self.a = args
        self.b, self.tmp, self.harness, self.daemon = benchlib.setup(args, "scale-bench.")
        self.image = os.path.join(self.tmp, "g031-32k.bin")
        rng = random.Random(7)
        with open(self.image, "wb") as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(FLASH_KB * 1024)))
        self.bus_addr = None
        self.bus_pid = None
        self.conn = None
        self.poll_rows = []

    # ---- the private bus ----
    def start_bus(self):
        self.bus_addr, self.bus_pid = benchlib.start_private_bus(self.tmp)
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.bus_addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def stop_bus(self):
        if self.conn:
            self.conn.close_sync(None)
        if self.bus_pid:
            os.kill(self.bus_pid, signal.SIGTERM)

    def call(self, path, iface, method, args, reply_type=None):
        return self.conn.call_sync(BUS_NAME if path != "/org/freedesktop/DBus" else "org.freedesktop.DBus",
                                   path, iface, method, args,
                                   GLib.VariantType(reply_type) if reply_type else None,
                                   Gio.DBusCallFlags.NONE, 30000, None)

    # ---- one station of N ports ----
    def start_station(self, n):
        boards = []
        for i in range(n):
            boards += ["--board", "ttyUSB%d=0x%03x,flash-kb=%d,timing=1,latency-us=%d" %
                       (i, PID, FLASH_KB, self.a.latency_us)]
        self.log = open(os.path.join(self.tmp, "station-%d.log" % n), "wb")
        self.proc = subprocess.Popen([self.harness] + boards + ["--", self.daemon, "--bus-address=" + self.bus_addr],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        subprocess.run(["gdbus", "wait", "--address", self.bus_addr, "--timeout", "60", BUS_NAME], check=True)
        (self.dpid,) = self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                 GLib.Variant("(s)", (BUS_NAME,)), "(u)").unpack()
        # The ports come through hotplug enumeration; there is no event to wait on from
        # here before the name is known, so ask (bounded).
        self.paths = [None] * n
        deadline = time.monotonic() + 60
        while None in self.paths:
            for i in range(n):
                if self.paths[i] is None:
                    try:
                        (self.paths[i],) = self.call(MANAGER, "io.github.Stm32Isp1.Manager", "GetPort",
                                                     GLib.Variant("(s)", ("ttyUSB%d" % i,)), "(o)").unpack()
                    except GLib.Error:
                        pass
            if None in self.paths:
                if time.monotonic() > deadline:
                    raise RuntimeError("the daemon did not list all %d ports" % n)
                time.sleep(0.05)

    def stop_station(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def flash_all(self):
        """Flash on every port at once; returns (wall seconds, per-port results)."""
        loop = GLib.MainLoop()
        n = len(self.paths)
        results = [None] * n
        pending = [n]

        def done(conn, res, i):
            try:
                reply, _ = conn.call_with_unix_fd_list_finish(res)
                results[i] = reply.unpack()[0]
            except GLib.Error as e:
                results[i] = {"error": e.message}
            pending[0] -= 1
            if pending[0] == 0:
                loop.quit()

        t0 = time.monotonic()
        for i, path in enumerate(self.paths):
            fds = Gio.UnixFDList.new()
            fd = os.open(self.image, os.O_RDONLY | os.O_CLOEXEC)
            index = fds.append(fd)
            os.close(fd)
            self.conn.call_with_unix_fd_list(BUS_NAME, path, "io.github.Stm32Isp1.Port", "Flash",
                                             GLib.Variant("(ha{sv})", (index, {})), None,
                                             Gio.DBusCallFlags.NONE, NO_TIMEOUT, fds, None, done, i)
        loop.run()
        return time.monotonic() - t0, results

    def idle(self):
        """System calls and context switches of the idle daemon (ports plugged)."""
        time.sleep(1)   # let the last replies and property changes go out
        c0 = ctxt_switches(self.dpid)
        time.sleep(3)
        ctx = ctxt_switches(self.dpid) - c0
        out = os.path.join(self.tmp, "strace.txt")
        p = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(self.dpid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(self.a.idle_seconds)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
        # "% time seconds usecs/call calls [errors] syscall"; no system call at all: no table
        calls = 0
        with open(out) as f:
            text = f.read()
        for line in text.splitlines():
            fields = line.split()
            if fields and fields[-1] == "total":
                calls = int(fields[3])
        return calls, ctx, text

    def poll_phase(self):
        """Arms detect=poll on every port, waits until each slot passed, then measures the
        daemon polling N idle occupied ports."""
        fds = Gio.UnixFDList.new()
        fd = os.open(self.image, os.O_RDONLY | os.O_CLOEXEC)
        index = fds.append(fd)
        os.close(fd)
        opts = {"detect": GLib.Variant("s", "poll"), "poll-ms": GLib.Variant("u", self.a.poll_ms),
                "format": GLib.Variant("s", "bin")}
        self.conn.call_with_unix_fd_list_sync(BUS_NAME, MANAGER, "io.github.Stm32Isp1.Manager", "SetAutoFlash",
                                              GLib.Variant("(ha{sv})", (index, opts)), None,
                                              Gio.DBusCallFlags.NONE, 30000, fds, None)
        # No event says "every slot passed" at once: ask, bounded.
        deadline = time.monotonic() + 600
        while True:
            states = []
            for path in self.paths:
                (v,) = self.call(path, "org.freedesktop.DBus.Properties", "Get",
                                 GLib.Variant("(ss)", ("io.github.Stm32Isp1.Port", "Station")), "(v)").unpack()
                states.append(v["state"])
            if all(st == "passed" for st in states):
                break
            if "failed" in states or time.monotonic() > deadline:
                raise RuntimeError("the poll station did not pass every slot: %s" % states)
            time.sleep(0.2)
        time.sleep(1)
        run0, c0, t0 = run_seconds(self.dpid), ctxt_switches(self.dpid), time.monotonic()
        time.sleep(self.a.idle_seconds)
        run, ctx, wall = run_seconds(self.dpid) - run0, ctxt_switches(self.dpid) - c0, time.monotonic() - t0
        rss = status_kb(self.dpid, "VmRSS")
        self.call(MANAGER, "io.github.Stm32Isp1.Manager", "ClearAutoFlash", None)
        return run, wall, ctx, rss

    def run(self):
        a = self.a
        for exe in (self.harness, self.daemon):
            if not os.access(exe, os.X_OK):
                sys.exit("%s is not built (make bench-scale builds everything)" % exe)
        if not shutil.which("strace"):
            sys.exit("strace is needed for the idle check")
        rows = []
        self.start_bus()
        try:
            for n in a.ports:
                self.start_station(n)
                try:
                    harness_cpu0, bus_cpu0 = cpu_seconds(self.proc.pid), cpu_seconds(self.bus_pid)
                    cpu0, run0 = cpu_seconds(self.dpid), run_seconds(self.dpid)
                    load = os.getloadavg()[0]
                    wall, results = self.flash_all()
                    cpu, run = cpu_seconds(self.dpid) - cpu0, run_seconds(self.dpid) - run0
                    harness_cpu = cpu_seconds(self.proc.pid) - harness_cpu0
                    bus_cpu = cpu_seconds(self.bus_pid) - bus_cpu0
                    bad = [(i, r) for i, r in enumerate(results)
                           if r.get("error") or r.get("bytes_verified", 0) < FLASH_KB * 1024]
                    if bad:
                        raise RuntimeError("%d of %d flashes failed, e.g. ttyUSB%d: %s" %
                                           (len(bad), n, bad[0][0], bad[0][1]))
                    hwm = status_kb(self.dpid, "VmHWM")
                    calls, ctx, trace = self.idle()
                    rows.append((n, wall, cpu, run, hwm, calls, ctx, harness_cpu, bus_cpu, load))
                    if a.poll_ms:
                        prun, pwall, pctx, prss = self.poll_phase()
                        self.poll_rows.append((n, prun, pwall, pctx, prss))
                        sys.stderr.write("N=%d polling every %d ms: daemon %.3f%% of a core per port, "
                                         "VmRSS %d KiB, %.1f ctxt sw/s\n" %
                                         (n, a.poll_ms, 100.0 * prun / pwall / n, prss, pctx / pwall))
                    sys.stderr.write("N=%d wall %.2f s, daemon cpu %.2f s (schedstat %.2f s), VmHWM %d KiB, "
                                     "idle syscalls %d, ctxt %d, sim cpu %.2f s, bus cpu %.2f s, load %.1f\n" %
                                     (n, wall, cpu, run, hwm, calls, ctx, harness_cpu, bus_cpu, load))
                    if calls:
                        sys.stderr.write(trace)
                except Exception:
                    self.log.flush()
                    with open(self.log.name, "rb") as f:
                        sys.stderr.write("station log (tail):\n%s\n" % f.read()[-3000:].decode(errors="replace"))
                    raise
                finally:
                    self.stop_station()
        finally:
            self.stop_bus()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.print_table(rows)

    def print_table(self, rows):
        a = self.a
        base = rows[0][1] if rows and rows[0][0] == 1 else None
        print("G031 32 KiB random image, factory-fresh boards, flash + verify at 115200 baud 8E1, "
              "%d us adapter latency; one GDBus client calls Flash on all N ports at once; "
              "idle: strace -f -c over %d s%s." % (a.latency_us, a.idle_seconds,
                                                   "; SCHED_FIFO" if a.realtime else ""))
        print()
        print("| N | wall s | ×N=1 | daemon CPU s/flash (stat; schedstat) | % core/port (stat; schedstat) "
              "| daemon VmHWM MiB | idle syscalls | idle ctxt sw (3 s) | sim CPU s | bus CPU s | load |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n, wall, cpu, run, hwm, calls, ctx, hcpu, bcpu, load in rows:
            print("| %d | %.2f | %s | %.3f; %.3f | %.2f; %.2f | %.1f | %d | %d | %.1f | %.1f | %.1f |" %
                  (n, wall, "%.3f" % (wall / base) if base else "n/a", cpu / n, run / n,
                   100.0 * cpu / wall / n, 100.0 * run / wall / n, hwm / 1024.0, calls, ctx, hcpu, bcpu, load))
        if self.poll_rows:
            print()
            print("detect=poll every %d ms on every port, each slot holding a board it flashed (idle: polls "
                  "only), over %d s:" % (a.poll_ms, a.idle_seconds))
            print()
            print("| N | daemon % core/port (schedstat) | daemon VmRSS MiB | daemon ctxt sw/s |")
            print("|---|---|---|---|")
            for n, prun, pwall, pctx, prss in self.poll_rows:
                print("| %d | %.3f | %.1f | %.1f |" % (n, 100.0 * prun / pwall / n, prss / 1024.0, pctx / pwall))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default=".")
    ap.add_argument("--ports", default="1,8,32,64",
                    type=lambda s: [int(x) for x in s.split(",")], help="comma-separated N (default 1,8,32,64)")
    ap.add_argument("--idle-seconds", type=int, default=10)
    ap.add_argument("--latency-us", type=int, default=1000)
    benchlib.add_build_args(ap)
    ap.add_argument("--realtime", action="store_true",
                    help="run the station (client, harness, simulators, daemon, bus) SCHED_FIFO (root), "
                         "so that other work on a shared machine does not delay its replies")
    ap.add_argument("--poll-ms", type=int, default=0,
                    help="also measure the daemon polling every port (auto-flash detect=poll, 100..10000)")
    args = ap.parse_args()
    benchlib.prepare(args)
    Scale(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
