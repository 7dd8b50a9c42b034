/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Manager object (io.github.Stm32Isp1.Manager + ObjectManager) and the port
 * registry: udev ports from hotplug, ports added by callers (AddPort), lookup, the
 * adapter allow/deny configuration, auto-flash profiles, the results log, shutdown and
 * sd_notify STATUS. It owns the ports and hears from them through their hooks. Main
 * thread only. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Manager Manager;

int manager_new(sd_event *event, sd_bus *bus, bool verbose, Manager **ret);
/* Joins every worker. */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Reads the configuration file (config.h) and arms its [AutoFlash] profile. */
int manager_load_config(Manager *m, const char *path);
/* Keeps the results log in dir (results.jsonl, rotated past max_size; 0: the default).
 * Without it results go to the log only. */
int manager_set_state_dir(Manager *m, const char *dir, uint64_t max_size);
/* Registers the objects, starts the udev monitor and enumerates the present ports. */
int manager_start(Manager *m);

/* SIGTERM/SIGINT: cancel jobs; exit the event loop once they ended, at the latest
 * after the deadline. */
void manager_shutdown(Manager *m);
/* True if the shutdown deadline passed with jobs still running: do not join them. */
bool manager_abandoned(Manager *m);
