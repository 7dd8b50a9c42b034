/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Port D-Bus object (io.github.Stm32Isp1.Port): properties, methods turned into
 * jobs for the port's worker thread, Progress/Finished signals, and the one reply per
 * method call when its job ends. It reports upward only through the hooks it is given
 * at creation. Main thread only. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "job.h"
#include "link.h"
#include "macro.h"
#include "polkit.h"
#include "serialstore.h"
#include "station.h"

typedef struct Port Port;

/* What is known about a port when it appears. Strings are borrowed. */
typedef struct PortInfo {
        const char *name;               /* registry key: kernel name "ttyUSB0", or the URL */
        const char *device;             /* "/dev/ttyUSB0" or "tcp://host:port" */
        LinkTransport transport;
        uint16_t vendor_id, product_id;
        const char *serial, *manufacturer, *product, *physical_path;
        bool mm_ignored;                /* udev's ID_MM_DEVICE_IGNORE=1: ModemManager leaves it alone */
} PortInfo;

/* How a port tells its owner what happened; userdata is port_new()'s. */
typedef struct PortHooks {
        /* A job started or ended. */
        void (*busy_changed)(Port *p, void *userdata);
        /* A finished job's results entry (results.h), before the reply; error is how the
         * job ended (0 or a negative errno). */
        void (*record)(Port *p, const Job *j, json_object *entry, int error, void *userdata);
        /* A failed job's wire trace, to keep: ret gets the file's path (malloc'd).
         * Optional. */
        int (*save_trace)(Port *p, const Job *j, uint64_t timestamp_usec, char **ret, void *userdata);
        /* The job ended and was answered. drop: the port's device is gone for good. The
         * port may be unreferenced from here: it lives until its handler returns. */
        void (*job_done)(Port *p, bool drop, void *userdata);
        /* A poll (port_poll()) ended: j->error, j->chip. Nothing else saw it: no signal,
         * no State, no log entry. */
        void (*polled)(Port *p, const Job *j, void *userdata);
} PortHooks;

/* Creates the worker, registers the object and announces it (InterfacesAdded). polkit
 * authorizes the port's method calls; it and hooks must outlive the port. */
int port_new(sd_bus *bus, sd_event *event, Polkit *polkit, bool verbose, const PortInfo *info,
             const PortHooks *hooks, void *userdata, Port **ret);
Port *port_ref(Port *p);
/* The last reference withdraws the object (InterfacesRemoved), stops and joins the
 * worker, and answers a still pending call with Disconnected. */
Port *port_unref(Port *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Port *, port_unref);

const char *port_name(const Port *p);
const char *port_path(const Port *p);
const char *port_device(const Port *p);
bool port_is_busy(const Port *p);
/* When the port was added (CLOCK_MONOTONIC, usec). */
uint64_t port_added_usec(const Port *p);
uint16_t port_vendor_id(const Port *p);
uint16_t port_product_id(const Port *p);
const char *port_serial(const Port *p);
const char *port_physical_path(const Port *p);

/* Runs j (taken, also on failure) with no caller, as an auto-flash does: the usual
 * signals, State and LastResult. -EBUSY if a job runs, or the port is going. */
int port_submit(Port *p, Job *j);

/* Asks the port's line for a bootloader (a Probe job with poll_syncs = syncs) without
 * a trace anywhere: State stays idle, a method call meanwhile is queued behind it and
 * the port is busy with that call as usual. The polled hook gets the answer. -EBUSY
 * while a job or a poll runs, or the port is going. */
int port_poll(Port *p, unsigned syncs);
bool port_is_polling(const Port *p);
/* The port's station slot (auto-flash detect=poll), the manager's to drive; after a
 * change, port_station_changed() announces the Station property. */
Station *port_station(Port *p);
void port_station_changed(Port *p);
/* What the armed auto-flash profile does with this port, for station views: "" (none
 * armed), "plug", "poll" or "unmatched". A constant string. */
void port_set_station_profile(Port *p, const char *profile);

/* Where Flash calls with sn-address take their numbers (borrowed: must outlive the
 * port); NULL: such calls are refused. */
void port_set_serial_store(Port *p, SerialStore *store);
/* A USB adapter udev reported (at startup or as it appeared), not a port added by
 * name: what an auto-flash profile without a port glob may touch. */
void port_set_plugged(Port *p, bool plugged);
bool port_plugged(const Port *p);

/* The adapter went away: a running job ends with Disconnected (then job_done asks for
 * the drop). Returns true if a job is still running. */
bool port_unplug(Port *p);
/* The daemon is stopping: new calls get Cancelled, a running job is cancelled (its
 * caller gets Cancelled). Returns true if one runs. */
bool port_shutdown(Port *p);
/* Shutdown deadline passed: answer the pending call with Cancelled now. */
void port_abandon(Port *p);
