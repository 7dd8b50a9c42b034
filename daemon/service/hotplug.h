/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which ttys are USB-serial adapters: libudev enumeration at start, then a udev
 * monitor on the event loop. A tty counts when a parent is in the usb-serial
 * subsystem (ch341, cp210x, ftdi_sio, pl2303, ...) or bound to cdc_acm.
 * Enumerated devices are not filtered on "initialized": without udevd (containers,
 * umockdev) nothing is. */

#include <systemd/sd-event.h>

#include "macro.h"
#include "port.h"

typedef struct Hotplug Hotplug;

/* info is valid during the call only. name is the kernel name ("ttyUSB0"). */
typedef void (*hotplug_added_t)(void *userdata, const PortInfo *info);
typedef void (*hotplug_removed_t)(void *userdata, const char *name);

/* Starts the monitor first, then enumerates, so nothing plugged in between is lost
 * (an adapter seen twice is ignored by the registry). */
int hotplug_new(sd_event *event, hotplug_added_t added, hotplug_removed_t removed, void *userdata,
                Hotplug **ret);
Hotplug *hotplug_free(Hotplug *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hotplug *, hotplug_free);
