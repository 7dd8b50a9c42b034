/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Port D-Bus object (io.github.Stm32Isp1.Port): properties, methods turned into
 * jobs for the port's worker thread, Progress/Finished signals, and the one reply per
 * method call when its job ends. Main thread only. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "link.h"
#include "macro.h"

typedef struct Manager Manager;
typedef struct Port Port;

/* What is known about a port when it appears. Strings are borrowed. */
typedef struct PortInfo {
        const char *name;               /* registry key: kernel name "ttyUSB0", or the URL */
        const char *device;             /* "/dev/ttyUSB0" or "tcp://host:port" */
        const char *syspath;            /* udev ports only */
        LinkTransport transport;
        uint16_t vendor_id, product_id;
        const char *serial, *manufacturer, *product, *physical_path;
} PortInfo;

/* Creates the worker, registers the object and announces it (InterfacesAdded). */
int port_new(Manager *m, const PortInfo *info, Port **ret);
/* Withdraws the object (InterfacesRemoved), stops and joins the worker, and answers a
 * still pending call with Disconnected. */
Port *port_free(Port *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Port *, port_free);

const char *port_name(const Port *p);
const char *port_path(const Port *p);
const char *port_device(const Port *p);
const char *port_syspath(const Port *p);
bool port_is_busy(const Port *p);

typedef struct AutoFlash AutoFlash;
/* Flashes the profile's image with no caller: the usual signals, State and LastResult;
 * the result goes to the log with "auto": true. -EBUSY if a job runs. */
int port_start_auto(Port *p, const AutoFlash *a);
uint16_t port_vendor_id(const Port *p);
uint16_t port_product_id(const Port *p);
const char *port_serial(const Port *p);
const char *port_physical_path(const Port *p);

/* Cancels the running job (its caller gets Cancelled). */
void port_cancel(Port *p);
/* The adapter went away: a running job ends with Disconnected and the manager drops the
 * port when it does. Returns true if a job is still running (the drop is deferred). */
bool port_unplug(Port *p);
/* Shutdown deadline passed: answer the pending call with Cancelled now. */
void port_abandon(Port *p);
