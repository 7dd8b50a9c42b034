/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon integration tests' environment: a private dbus-daemon, stm32ispd started on
 * it (ready = its READY=1 on a NOTIFY_SOCKET), an sd-bus client, and simulated boards
 * behind TCP listeners (a raw TCP serial server, as ser2net would be). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "sim.h"

typedef struct DaemonEnv {
        pid_t bus_pid;
        char address[512];
        pid_t daemon_pid;
        int notify_fd;
        char notify_path[256];
        char status[256];               /* the last STATUS= the daemon sent (under notify_mutex) */
        pthread_t notify_thread;
        bool notify_thread_started;
        int notify_stop[2];
        pthread_mutex_t notify_mutex;
        pthread_cond_t notify_cond;
        sd_bus *bus;                    /* the test's client connection */
} DaemonEnv;

/* One asynchronous method call and its outcome: send with
 * sd_bus_call_async(bus, NULL, m, daemon_call_on_reply, c, timeout) after zeroing c
 * (error = SD_BUS_ERROR_NULL), wait with daemon_env_run_until(e, &c->done, timeout). */
typedef struct DaemonCall {
        bool done;
        sd_bus_error error;
        sd_bus_message *reply;          /* on success */
} DaemonCall;

int daemon_call_on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
void daemon_call_clear(DaemonCall *c);
/* The error name, or "ok". */
const char *daemon_call_outcome(const DaemonCall *c);

/* Starts dbus-daemon and the daemon (extra arguments may be NULL), waits for READY=1
 * and connects. Returns 77-worthy -EOPNOTSUPP when dbus-daemon is missing. */
int daemon_env_start(DaemonEnv *e, char *const *extra_args);
/* The last STATUS= the daemon sent. */
void daemon_env_status(DaemonEnv *e, char *buf, size_t size);
/* Waits until the daemon's STATUS= equals want (it comes on its own socket, so it may
 * trail a bus reply); false after the timeout. */
bool daemon_env_wait_status(DaemonEnv *e, const char *want, uint64_t timeout_usec);
/* SIGTERM, then waits for exit; returns the exit status (or -1 on a signal / timeout)
 * and the time it took. */
int daemon_env_stop_daemon(DaemonEnv *e, uint64_t *ret_usec);
void daemon_env_stop(DaemonEnv *e);

/* Runs the client bus until *flag becomes true or the timeout passes (then aborts). */
void daemon_env_run_until(DaemonEnv *e, const bool *flag, uint64_t timeout_usec);

/* A simulated board behind 127.0.0.1:port. Each accepted connection is relayed to one
 * long-lived Sim, so the board keeps its memory across connections. */
typedef struct SimTcp {
        Sim *sim;
        int sp[2];                      /* sp[0]: relay side, sp[1]: served by the Sim */
        int listen_fd;
        int stop_pipe[2];
        uint16_t port;
        char url[64];
        pthread_t thread;
        atomic_ulong cut_after;         /* close the connection after this many host bytes (0: never) */
        atomic_ulong host_bytes;        /* bytes received from the host on this connection */
        atomic_uint connections;
        int cut_pipe[2];                /* sim_tcp_cut() */
} SimTcp;

int sim_tcp_new(uint16_t pid, uint32_t uid_seed, SimTcp **ret);
SimTcp *sim_tcp_free(SimTcp *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(SimTcp *, sim_tcp_free);

/* Copies the simulated flash out. */
void sim_tcp_flash(SimTcp *t, uint8_t **ret, size_t *ret_size);
/* The adapter goes away now: the relay closes the connection (the next one is served:
 * the board keeps power and its state). */
void sim_tcp_cut(SimTcp *t);

/* A temporary regular file holding data (unlinked; the fd stays valid). */
int daemon_env_memfd(const void *data, size_t size);
void daemon_env_random(void *buf, size_t n, uint32_t seed);

/* ---- helpers the daemon tests share (they abort on a failed call) ---- */

/* The object path of the port named name (ttyUSB0). Free it. */
char *daemon_env_port_path(const char *name);
/* Manager.GetPort(device): the path (free it), or NULL with the error name in ret_error. */
char *daemon_env_get_port(DaemonEnv *e, const char *device, char *ret_error, size_t size);
/* A string property of a port. Free it. */
char *daemon_env_get_string(DaemonEnv *e, const char *path, const char *property);
/* Positions m, an a{sv} reply (rewound first), at the variant of key: 1; 0 when absent. */
int daemon_env_dict_seek(sd_bus_message *m, const char *key);
/* The "pid" entry of an a{sv} chip dictionary (the message is rewound first); 0 if none. */
uint16_t daemon_env_chip_pid(sd_bus_message *m);
/* A failed assertion aborts: from then on SIGABRT takes e's daemon and bus down first. */
void daemon_env_kill_on_abort(DaemonEnv *e);

/* The Manager's InterfacesAdded and InterfacesRemoved, in the order they came: the object
 * paths. */
#define DAEMON_OBJECTS_MAX 64
typedef struct DaemonObjects {
        char added[DAEMON_OBJECTS_MAX][256], removed[DAEMON_OBJECTS_MAX][256];
        unsigned n_added, n_removed;
        sd_bus_slot *slot_added, *slot_removed;
} DaemonObjects;

/* Records into o from now on (e's client bus must be processed for it to fill). */
void daemon_env_watch_objects(DaemonEnv *e, DaemonObjects *o);
/* Stops recording; what o holds stays. */
void daemon_objects_unwatch(DaemonObjects *o);
