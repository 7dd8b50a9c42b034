# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the benchmarks share: the build's programs, a private TMPDIR, timer slack, and a
private dbus-daemon."""

import ctypes
import os
import signal
import subprocess
import sys
import tempfile

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s/bus.sock</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>
"""


def add_build_args(ap):
    """The programs a benchmark runs, when not the build's."""
    ap.add_argument("--daemon", help="stm32ispd binary (default: BUILDDIR/daemon/stm32ispd)")
    ap.add_argument("--harness", help="umockdev-sim binary (default: BUILDDIR/tests/rig/umockdev-sim)")


def prepare(args):
    """Timer slack; SCHED_FIFO with --realtime (root); killed (make's timeout, Ctrl-C):
    unwind, so the bus and the harness stop too."""
    set_timer_slack()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


def setup(args, prefix):
    """A private TMPDIR (also for the children) and the build's programs: returns
    (builddir, tmp, harness, daemon); --harness and --daemon override the last two."""
    builddir = os.path.abspath(args.builddir)
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.environ["TMPDIR"] = tmp
    return (builddir, tmp,
            args.harness or os.path.join(builddir, "tests/rig/umockdev-sim"),
            args.daemon or os.path.join(builddir, "daemon/stm32ispd"))


def set_timer_slack():
    # 1 ns timer slack for us and, inherited, every child (harness, daemon, tools): the
    # simulator sleeps once per reply, and the default 50 us slack would be added to each
    # of a flash's 770 replies.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


def start_private_bus(tmp):
    """Starts a dbus-daemon listening in tmp; returns (address, pid)."""
    conf = os.path.join(tmp, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_CONF % tmp)
    out = subprocess.check_output(["dbus-daemon", "--config-file=" + conf, "--fork", "--nopidfile",
                                   "--print-address=1", "--print-pid=1"]).decode().split()
    return out[0], int(out[1])
