/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* logind inhibitors held while a job runs, so that a laptop does not suspend mid-flash:
 * sleep blocked, shutdown delayed (two Inhibit calls: logind takes one mode per call).
 * Asked asynchronously on the daemon's bus from the main thread; where logind does not
 * answer (containers, minimal stations, a session or test bus) or refuses, the job runs
 * without them. */

#include <systemd/sd-bus.h>

#include "macro.h"

typedef struct Inhibitor Inhibitor;

/* Asks logind for the locks and returns at once; what systemd-inhibit --list shows:
 * "stm32ispd", and why "<operation> on <device>". */
int inhibitor_new(sd_bus *bus, const char *operation, const char *device, Inhibitor **ret);
/* Releases the locks, or drops the requests still under way. */
Inhibitor *inhibitor_free(Inhibitor *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Inhibitor *, inhibitor_free);
