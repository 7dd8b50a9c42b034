/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Manager object (io.github.Stm32Isp1.Manager + ObjectManager) and the port
 * registry: udev ports from hotplug, ports added by callers (AddPort), lookup, the
 * adapter allow/deny configuration, shutdown, sd_notify STATUS, and the daemon's
 * logging. Main thread only. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "string-util.h"
#include "port.h"

typedef struct Manager Manager;

int manager_new(sd_event *event, sd_bus *bus, bool verbose, Manager **ret);
/* Joins every worker. */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Reads the [Adapters] Allow=/Deny= lists of VID:PID (hex; PID may be '*') and an
 * [AutoFlash] profile (Image= is read now: the config is trusted, callers are not). */
int manager_load_config(Manager *m, const char *path);
/* Keeps the results log in dir (results.jsonl, rotated past max_size; 0: the default).
 * Without it results go to the log only. */
int manager_set_state_dir(Manager *m, const char *dir, uint64_t max_size);
/* Appends one operation's entry to the results log (failures are logged, not returned). */
void manager_record_result(Manager *m, json_object *entry);
/* An auto-flash job ended: counts it, announces AutoFlash. */
void manager_autoflash_done(Manager *m, bool pass);
/* Registers the objects, starts the udev monitor and enumerates the present ports. */
int manager_start(Manager *m);

sd_bus *manager_bus(Manager *m);
sd_event *manager_event(Manager *m);
bool manager_verbose(Manager *m);
bool manager_exiting(Manager *m);

/* Hotplug callbacks. */
void manager_udev_added(Manager *m, const PortInfo *info);
void manager_udev_removed(Manager *m, const char *name);
/* True if the adapter's VID:PID passes the configured lists. */
bool manager_adapter_allowed(Manager *m, uint16_t vid, uint16_t pid);

/* Called by a port when its job ended (after the reply), or when it wants to leave
 * (unplugged and idle). May free the port. */
void manager_port_idle(Manager *m, Port *p, bool drop);
/* Job state changed: refreshes STATUS=. */
void manager_update_status(Manager *m);

/* SIGTERM/SIGINT: cancel jobs; exit the event loop once they ended, at the latest
 * after the deadline. Returns true when the event loop should end at once. */
void manager_shutdown(Manager *m);
/* True if the shutdown deadline passed with jobs still running: do not join them. */
bool manager_abandoned(Manager *m);

/* Logging: stderr, or the journal with fields when JOURNAL_STREAM is set. */
void log_setup(bool verbose);
bool log_to_journal(void);
void log_msg(int priority, const char *port, const char *fmt, ...) _printf_(3, 4);
#define log_debug(port, ...) log_msg(LOG_DEBUG, port, __VA_ARGS__)
#define log_info(port, ...) log_msg(LOG_INFO, port, __VA_ARGS__)
#define log_warning(port, ...) log_msg(LOG_WARNING, port, __VA_ARGS__)
#define log_error(port, ...) log_msg(LOG_ERR, port, __VA_ARGS__)
