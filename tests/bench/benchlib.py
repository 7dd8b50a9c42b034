# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the benchmarks share: timer slack, and a private dbus-daemon."""

import ctypes
import os
import subprocess

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s/bus.sock</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>
"""


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
