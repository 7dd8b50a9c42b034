/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The client's side of the D-Bus contract: connecting, naming ports, running one job
 * (a Port method that replies when the operation ends) with progress and Ctrl-C. */

#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "progress.h"

typedef enum BusKind {
        BUS_KIND_SYSTEM,
        BUS_KIND_USER,
        BUS_KIND_ADDRESS,
        BUS_KIND_REMOTE,        /* the system bus of [USER@]HOST over ssh (address) */
} BusKind;

typedef struct ClientBus {
        sd_bus *bus;
        sd_event *event;
        BusKind kind;
        const char *address;
} ClientBus;

/* Connects and attaches an event loop. On failure fills error (for error reporting). */
int client_bus_open(ClientBus *c, BusKind kind, const char *address);
void client_bus_close(ClientBus *c);

/* Prints "stm32ispctl: <what>: <message>" for a failed call, or the one line about
 * starting the daemon, and returns the exit code (exit-codes.h). */
int client_report_error(const ClientBus *c, const char *what, const sd_bus_error *e, int r);

/* Appends one entry KEY -> VALUE (a variant of the basic type) to the a{sv} being built
 * in m: the options of a method call. */
int client_append_option(sd_bus_message *m, const char *key, const char *type, ...);

/* PORT as the user typed it -> the port's object path (malloc'd). Object paths pass
 * through; URLs (tcp://) go through Manager.AddPort; devices through Manager.GetPort,
 * retried with the resolved symlink target (by-id/by-path links). */
int client_resolve_port(ClientBus *c, const char *name, char **ret_path, sd_bus_error *error);

/* The same for a port the daemon knows already: nothing is added. */
int client_find_port(ClientBus *c, const char *name, char **ret_path, sd_bus_error *error);

typedef struct JobResult {
        sd_bus_message *reply;  /* the method return, or NULL on error */
        sd_bus_error error;
        int r;
        bool interrupted;       /* Ctrl-C/SIGTERM: Cancel was sent */
        bool started;           /* detach: the job started, no reply waited for */
} JobResult;

void job_result_done(JobResult *j);

/* Sends call (a Port method) without a timeout, showing Progress signals of port_path
 * on progress (may be NULL) while waiting. SIGINT/SIGTERM send Port.Cancel() and keep
 * waiting for the reply; a second one gives up at once. Returns 0 when the call got a
 * reply (success or error, see ret), negative errno on local failures. detach (the call
 * carries detach=true): returns 0 as soon as the job started (ret->started, no reply),
 * or when an error came first. */
int client_run_job(ClientBus *c, const char *port_path, sd_bus_message *call, Progress *progress, bool detach,
                   JobResult *ret);
