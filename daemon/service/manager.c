/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager object, the port registry and the daemon-wide plumbing around it. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "autoflash.h"
#include "bus-dict.h"
#include "configfile.h"
#include "diagnose.h"
#include "hotplug.h"
#include "link.h"
#include "log.h"
#include "manager.h"
#include "options.h"
#include "polkit.h"
#include "port.h"
#include "request.h"
#include "results.h"
#include "traces.h"
#include "serialstore.h"
#include "stm32isp.h"
#include "string-util.h"

#define SHUTDOWN_DEADLINE_USEC (1500 * USEC_PER_MSEC)

struct Manager {
        sd_event *event;
        sd_bus *bus;
        bool verbose;

        sd_bus_slot *object_manager_slot, *vtable_slot;
        Hotplug *hotplug;

        Port **ports;
        size_t n_ports;

        Config config;

        bool exiting, abandoned;
        sd_event_source *shutdown_timer;
        char *last_status;
        ResultsLog *results;
        char *state_dir;                /* failed jobs' traces go here; NULL: nowhere */
        /* The last ports that went away as soon as they appeared, and why (brltty), for
         * a caller that asks for one of them: a ring. */
        struct {
                char name[64];
                char message[512];
        } vanished[4];
        unsigned n_vanished;
        SerialStore *serials;           /* in the state directory; NULL: none */

        Polkit *polkit;
        AutoFlash *autoflash;           /* armed profile, NULL: none */
        sd_event_source *poll_timer;    /* detect=poll: asks idle ports for a bootloader */
        char *autoflash_error;          /* why the configured profile is not armed */
        bool started;                   /* enumeration done: new ports are plugged boards */
};

static void manager_update_status(Manager *m);
static void manager_update_poll(Manager *m);

bool manager_abandoned(Manager *m) {
        return m->abandoned;
}

/* ---- registry ---- */

static Port *find_port_by_name(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_ports; i++)
                if (streq(port_name(m->ports[i]), name))
                        return m->ports[i];
        return NULL;
}

static Port *find_port_by_path(Manager *m, const char *path) {
        for (size_t i = 0; i < m->n_ports; i++)
                if (streq(port_path(m->ports[i]), path))
                        return m->ports[i];
        return NULL;
}

/* Collapses "//", "/./" and "/x/../" of an absolute path in place, without touching
 * the file system. */
static void path_normalize(char *path) {
        char *out = path, *in = path;

        while (*in) {
                if (in[0] == '/' && (in[1] == '/' || in[1] == '\0') && out != path) {
                        in++;
                        continue;
                }
                if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || in[2] == '\0')) {
                        in += 2;
                        continue;
                }
                if (in[0] == '/' && in[1] == '.' && in[2] == '.' && (in[3] == '/' || in[3] == '\0')) {
                        while (out > path && *--out != '/')
                                ;
                        in += 3;
                        continue;
                }
                *out++ = *in++;
        }
        if (out == path)
                *out++ = '/';
        *out = '\0';
}

/* Follows a symlink chain (by-id, by-path) by reading the links, never opening
 * anything, up to the first node directly in /dev; the result is lexically normalised. readlink() rather than realpath(): the
 * node itself need not be resolved, and under umockdev only readlink() is redirected
 * into the testbed for /dev. */
static int resolve_links(const char *device, char **ret) {
        _cleanup_free_ char *path = strdup(device);

        if (!path)
                return -ENOMEM;
        for (unsigned hops = 0;; hops++) {
                char target[PATH_MAX];
                ssize_t n;
                char *next;

                if (hops > 16)
                        return -ELOOP;
                n = readlink(path, target, sizeof target - 1);
                if (n < 0) {
                        if (errno != EINVAL)
                                return -errno;
                        break;                  /* not a link: done */
                }
                target[n] = '\0';
                if (target[0] == '/')
                        next = strdup(target);
                else {
                        char *slash = strrchr(path, '/');

                        *slash = '\0';
                        if (asprintf(&next, "%s/%s", path, target) < 0)
                                next = NULL;
                }
                if (!next)
                        return -ENOMEM;
                free(path);
                path = next;
                path_normalize(path);
                /* A node directly in /dev is a port name, as for "/dev/ttyUSB0" given
                 * as such (under umockdev the node itself is a link into the testbed). */
                if (strncmp(path, "/dev/", 5) == 0 && path[5] && !strchr(path + 5, '/'))
                        break;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* Device name as a caller gives it -> the registry key: a URL as is, "/dev/x" or a
 * symlink to it -> "x", a bare kernel name as is. */
static int port_key(const char *device, char **ret) {
        char *k;

        if (!(link_transport_caps(link_transport_from_url(device)) & LINK_CAP_DEVICE_NODE))
                k = strdup(device);
        else if (strncmp(device, "/dev/", 5) == 0 && device[5] && !strchr(device + 5, '/'))
                k = strdup(device + 5);
        else if (device[0] == '/') {
                _cleanup_free_ char *real = NULL;
                int r;

                r = resolve_links(device, &real);
                if (r < 0)
                        return r;
                /* Only a node directly in /dev is a port. */
                if (strncmp(real, "/dev/", 5) != 0 || !real[5] || strchr(real + 5, '/'))
                        return -ENOENT;
                k = strdup(real + 5);
        } else if (device[0] && !strchr(device, '/') && !streq(device, ".") && !streq(device, ".."))
                k = strdup(device);
        else
                return -EINVAL;
        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

static void manager_emit_autoflash(Manager *m) {
        if (m->started)
                (void) sd_bus_emit_properties_changed(m->bus, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                                      "AutoFlash", NULL);
}

/* What the profile's match sees of a port. plugged: a USB adapter udev reported (at
 * startup or as it appeared), not one added by name. */
static AutoFlashCandidate port_candidate(Port *p) {
        return (AutoFlashCandidate) {
                .name = port_name(p),
                .device = port_device(p),
                .plugged = port_plugged(p),
                .vid = port_vendor_id(p),
                .pid = port_product_id(p),
                .serial = port_serial(p),
                .id_path = port_physical_path(p),
        };
}

static bool port_matches(const Manager *m, Port *p) {
        AutoFlashCandidate c = port_candidate(p);

        return m->autoflash && autoflash_matches(m->autoflash, &c);
}

/* Starts the armed profile's flash on p. */
static void manager_autoflash_start(Manager *m, Port *p) {
        _cleanup_(job_freep) Job *j = NULL;
        AutoFlash *a = m->autoflash;
        int r;

        r = autoflash_new_job(a, &j);
        if (r >= 0 && a->serial.enabled)
                r = m->serials ? serial_job_attach(j, m->serials, &a->serial) : -ENOMEDIUM;
        if (r >= 0) {
                log_info(port_name(p), "Auto-flashing %s", j->image_name);
                r = port_submit(p, TAKE_PTR(j));
        }
        if (r < 0) {
                log_error(port_name(p), "Cannot start auto-flash: %s", strerror(-r));
                return;
        }
        a->n_started++;
        station_flash_started(port_station(p));
        port_station_changed(p);
        manager_emit_autoflash(m);
}

/* A port appeared: flash it when the armed profile matches (detect=plug). Ports present
 * at startup are not plugged boards: they are left alone. */
static void manager_autoflash_port(Manager *m, Port *p) {
        AutoFlash *a = m->autoflash;

        if (!a || !m->started || m->exiting)
                return;
        if (!port_matches(m, p)) {
                log_debug(port_name(p), "The auto-flash profile does not match, leaving the port alone");
                return;
        }
        if (a->detect_poll)
                return;                 /* the poll timer finds the boards */
        manager_autoflash_start(m, p);
}

/* ---- detect=poll: boards swapped on adapters that stay (station.h) ---- */

static bool poll_armed(const Manager *m) {
        return m->autoflash && m->autoflash->detect_poll && m->started && !m->exiting;
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        const AutoFlash *a = m->autoflash;
        int r;

        if (!poll_armed(m))
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        /* Idle ports only: none while a job (or the last poll) runs. */
        for (size_t i = 0; i < m->n_ports; i++) {
                Port *p = m->ports[i];

                if (port_is_busy(p) || port_is_polling(p) || !port_matches(m, p))
                        continue;
                r = port_poll(p, station_poll_syncs(port_station(p)));
                if (r < 0 && r != -EBUSY)
                        log_warning(port_name(p), "Cannot poll for a board: %s", strerror(-r));
        }
        r = sd_event_source_set_time_relative(s, (uint64_t) a->poll_ms * USEC_PER_MSEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        return r;
}

/* Tells each port what the armed profile does with it (its Station property). */
static void manager_mark_port(Manager *m, Port *p) {
        const AutoFlash *a = m->autoflash;

        if (!a)
                port_set_station_profile(p, "");
        else if (!port_matches(m, p))
                port_set_station_profile(p, "unmatched");
        else
                port_set_station_profile(p, a->detect_poll ? "poll" : "plug");
}

/* The timer runs only while a detect=poll profile is armed: no wake-ups otherwise. */
static void manager_update_poll(Manager *m) {
        int r;

        for (size_t i = 0; i < m->n_ports; i++)
                manager_mark_port(m, m->ports[i]);

        if (!poll_armed(m)) {
                if (m->poll_timer)
                        (void) sd_event_source_set_enabled(m->poll_timer, SD_EVENT_OFF);
                return;
        }
        if (m->poll_timer) {
                r = sd_event_source_get_enabled(m->poll_timer, NULL);
                if (r > 0)
                        return;
                r = sd_event_source_set_time_relative(m->poll_timer, (uint64_t) m->autoflash->poll_ms * USEC_PER_MSEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->poll_timer, SD_EVENT_ON);
        } else
                r = sd_event_add_time_relative(m->event, &m->poll_timer, CLOCK_MONOTONIC,
                                               (uint64_t) m->autoflash->poll_ms * USEC_PER_MSEC,
                                               (uint64_t) m->autoflash->poll_ms * USEC_PER_MSEC / 20,
                                               on_poll_timer, m);
        if (r < 0)
                log_error(NULL, "Cannot start polling for boards: %s", strerror(-r));
}

/* A poll's answer: a board to flash, one to leave alone, or an empty slot. */
static void port_polled(Port *p, const Job *j, void *userdata) {
        Manager *m = userdata;
        Station *st = port_station(p);
        StationState before = st->state;
        const uint8_t *uid = j->error == 0 && j->have_chip && j->chip.have_uid ? j->chip.uid : NULL;
        bool flash;

        /* A method call took the port meanwhile, or the profile changed. */
        if (!poll_armed(m) || port_is_busy(p))
                return;
        flash = station_polled(st, j->error, uid);
        if (flash) {
                log_info(port_name(p), "A board answered the poll (0x%03x)", j->chip.pid);
                manager_autoflash_start(m, p);
        } else if (st->state != before)
                port_station_changed(p);
}

/* ---- what ports report ---- */

static void port_busy_changed(Port *p, void *userdata) {
        manager_update_status(userdata);
}

/* A finished job's entry: the results log, and the count of an auto-flash. */
static void port_record(Port *p, const Job *j, json_object *entry, int error, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->results) {
                r = results_log_append(m->results, entry);
                if (r < 0)
                        log_error(NULL, "Cannot append to %s: %s", results_log_path(m->results), strerror(-r));
        }
        if (!j->automatic || !m->autoflash)
                return;
        station_flash_done(port_station(p), error, error < 0 ? j->message : NULL);
        port_station_changed(p);
        if (error == 0)
                m->autoflash->n_passed++;
        else
                m->autoflash->n_failed++;
        manager_emit_autoflash(m);
}

/* A failed job's trace, kept next to the results log. */
static int port_save_trace(Port *p, const Job *j, uint64_t timestamp_usec, char **ret, void *userdata) {
        Manager *m = userdata;

        if (!m->state_dir)
                return 0;
        return traces_save(m->state_dir, port_name(p), timestamp_usec, j->trace, ret);
}

static void registry_drop(Manager *m, Port *p);
static void maybe_exit(Manager *m);

static void port_job_done(Port *p, bool drop, void *userdata) {
        Manager *m = userdata;

        if (drop)
                registry_drop(m, p);
        else
                manager_update_status(m);
        maybe_exit(m);
}

static const PortHooks port_hooks = {
        .busy_changed = port_busy_changed,
        .record = port_record,
        .save_trace = port_save_trace,
        .job_done = port_job_done,
        .polled = port_polled,
};

/* plugged: udev reported the adapter as it appeared (not AddPort). */
static int registry_add(Manager *m, const PortInfo *info, bool plugged, Port **ret) {
        Port **a, *p;
        int r;

        a = realloc(m->ports, (m->n_ports + 1) * sizeof(Port *));
        if (!a)
                return -ENOMEM;
        m->ports = a;
        r = port_new(m->bus, m->event, m->polkit, m->verbose, info, &port_hooks, m, &p);
        if (r < 0)
                return r;
        port_set_serial_store(p, m->serials);
        port_set_plugged(p, plugged);
        manager_mark_port(m, p);
        m->ports[m->n_ports++] = p;
        log_info(info->name, "Port added (%s, %04x:%04x)", info->device, info->vendor_id, info->product_id);
        manager_update_status(m);
        if (ret)
                *ret = p;
        manager_autoflash_port(m, p);
        return 0;
}

static void registry_drop(Manager *m, Port *p) {
        for (size_t i = 0; i < m->n_ports; i++)
                if (m->ports[i] == p) {
                        memmove(m->ports + i, m->ports + i + 1, (m->n_ports - i - 1) * sizeof(Port *));
                        m->n_ports--;
                        break;
                }
        log_info(port_name(p), "Port removed");
        port_unref(p);
        manager_update_status(m);
}

static void maybe_exit(Manager *m) {
        if (!m->exiting)
                return;
        for (size_t i = 0; i < m->n_ports; i++)
                if (port_is_busy(m->ports[i]))
                        return;
        (void) sd_event_exit(m->event, 0);
}

static void manager_update_status(Manager *m) {
        _cleanup_free_ char *s = NULL;
        size_t busy = 0;

        for (size_t i = 0; i < m->n_ports; i++)
                busy += port_is_busy(m->ports[i]);
        if (asprintf(&s, "STATUS=%zu port%s, %zu busy", m->n_ports, m->n_ports == 1 ? "" : "s", busy) < 0)
                return;
        if (m->last_status && streq(m->last_status, s))
                return;
        (void) sd_notify(0, s);
        free(m->last_status);
        m->last_status = TAKE_PTR(s);
}

/* ---- configuration ---- */

static void manager_log_armed(Manager *m, const char *from) {
        _cleanup_free_ char *match = NULL;

        if (autoflash_describe_match(m->autoflash, &match) < 0)
                return;
        log_info(NULL, "Auto-flash armed%s%s: %s (sha256 %s) on %s%s", from ? " from " : "", from ?: "",
                 m->autoflash->image_name, m->autoflash->sha256, match,
                 m->autoflash->detect_poll ? ", polling the idle ones for boards" : "");
}

int manager_load_config(Manager *m, const char *path) {
        int r;

        r = config_load(&m->config, path);
        if (r < 0)
                return r;
        if (m->config.autoflash && m->config.autoflash->serial.enabled && !m->serials) {
                log_error(NULL, "%s: serial numbers need the state directory (--state-dir): auto-flash not armed", path);
                m->config.autoflash = autoflash_free(m->config.autoflash);
                free(m->config.autoflash_error);
                m->config.autoflash_error = strdup("SnAddress= needs the daemon's state directory (--state-dir)");
        }
        if (m->config.autoflash_error) {
                free(m->autoflash_error);
                m->autoflash_error = TAKE_PTR(m->config.autoflash_error);
                m->autoflash = autoflash_free(m->autoflash);
                return 0;
        }
        if (m->config.autoflash) {
                autoflash_free(m->autoflash);
                m->autoflash = TAKE_PTR(m->config.autoflash);
                manager_log_armed(m, path);
        }
        return 0;
}

/* ---- hotplug ---- */

static void hotplug_added(void *userdata, const PortInfo *info) {
        Manager *m = userdata;
        int r;

        if (m->exiting || find_port_by_name(m, info->name))
                return;
        if (!config_adapter_allowed(&m->config, info->vendor_id, info->product_id)) {
                log_info(info->name, "Adapter %04x:%04x is not allowed by the configuration, ignoring",
                         info->vendor_id, info->product_id);
                return;
        }
        r = registry_add(m, info, true, NULL);
        if (r < 0)
                log_error(info->name, "Cannot add port: %s", strerror(-r));
        else if (!info->mm_ignored && diagnose_modemmanager_running()) {
                char msg[512];

                diagnose_modemmanager_message(info->device, msg, sizeof msg);
                log_warning(info->name, "%s", msg);
        }
}

/* Why a port that is not (or no longer) there went away, if known: "" otherwise. */
static const char *vanished_reason(Manager *m, const char *name) {
        for (unsigned i = 0; i < ELEMENTSOF(m->vanished); i++)
                if (m->vanished[i].name[0] && streq(m->vanished[i].name, name))
                        return m->vanished[i].message;
        return "";
}

static void hotplug_removed(void *userdata, const char *name) {
        Manager *m = userdata;
        Port *p = find_port_by_name(m, name);
        char msg[512];

        if (!p)
                return;
        if (diagnose_vanished_port(port_device(p), now_usec() - port_added_usec(p), "/", msg, sizeof msg)) {
                unsigned k = m->n_vanished++ % ELEMENTSOF(m->vanished);

                log_warning(name, "%s", msg);
                snprintf(m->vanished[k].name, sizeof m->vanished[k].name, "%s", name);
                snprintf(m->vanished[k].message, sizeof m->vanished[k].message, "%s", msg);
        }
        /* A running job ends with Disconnected; the port is dropped when it does. */
        if (!port_unplug(p))
                registry_drop(m, p);
}

/* ---- Manager methods ---- */

/* AddPort takes no options yet: any key is unknown. */
static int reject_option(const OptionValue *v, void *userdata, sd_bus_error *error) {
        return -EINVAL;         /* not reached: the table is empty */
}

static int method_add_port(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *key = NULL;
        LinkTransport transport;
        const char *device;
        Port *p;
        int r;

        r = sd_bus_message_read(msg, "s", &device);
        if (r < 0)
                return r;
        r = options_parse(msg, &add_port_option_table, OPTIONS_ALL, reject_option, NULL, error);
        if (r < 0)
                return r;
        if (m->exiting)
                return sd_bus_error_setf(error, STM32ISP_ERROR_CANCELLED, "The daemon is shutting down");

        transport = link_transport_from_url(device);
        r = link_url_check(device);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && link_transport_scheme(transport))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "'%s' is not a %sHOST:PORT URL", device,
                                         link_transport_scheme(transport));
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' is neither a device node nor a tcp:// or rfc2217:// URL", device);

        r = port_key(device, &key);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_NOT_FOUND, "No device %s: %s", device, strerror(-r));

        p = find_port_by_name(m, key);
        if (!p) {
                _cleanup_free_ char *node = NULL;
                PortInfo info = {
                        .name = key,
                        .transport = transport,
                };

                /* A known port is only looked up; a new one changes the daemon. */
                r = polkit_authorize(m->polkit, msg, POLKIT_ACTIONS(STM32ISP_ACTION_CONFIGURE), device, error);
                if (r != 0)
                        return r;

                if (!(link_transport_caps(transport) & LINK_CAP_DEVICE_NODE)) {
                        const char *reason;

                        /* A host that does not resolve is a typo, not a port: say so now,
                         * rather than keep a port whose every job fails. (This blocks the
                         * loop for the resolver's time; AddPort of a new URL is rare.) */
                        r = link_tcp_resolve(device, &reason);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return sd_bus_error_setf(error, STM32ISP_ERROR_NOT_FOUND,
                                                         "The host of %s does not resolve (%s): no port added",
                                                         device, reason ?: strerror(-r));
                        info.device = device;
                } else {
                        struct stat st;

                        if (asprintf(&node, "/dev/%s", key) < 0)
                                return -ENOMEM;
                        /* Only character devices: a caller must not make us open files. */
                        if (stat(node, &st) < 0 || !S_ISCHR(st.st_mode))
                                return sd_bus_error_setf(error, STM32ISP_ERROR_NOT_FOUND,
                                                         "%s is not a character device", device);
                        info.device = node;
                }
                r = registry_add(m, &info, false, &p);
                if (r < 0)
                        return r;
        }
        return sd_bus_reply_method_return(msg, "o", port_path(p));
}

static int method_remove_port(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *path;
        Port *p;
        int r;

        r = sd_bus_message_read(msg, "o", &path);
        if (r < 0)
                return r;
        p = find_port_by_path(m, path);
        if (!p)
                return sd_bus_error_setf(error, STM32ISP_ERROR_NOT_FOUND, "No port %s", path);
        r = polkit_authorize(m->polkit, msg, POLKIT_ACTIONS(STM32ISP_ACTION_CONFIGURE), port_device(p), error);
        if (r != 0)
                return r;
        if (port_is_busy(p))
                return sd_bus_error_setf(error, STM32ISP_ERROR_BUSY, "%s is busy", port_device(p));
        registry_drop(m, p);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_get_port(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *key = NULL;
        const char *device;
        Port *p = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &device);
        if (r < 0)
                return r;
        r = port_key(device, &key);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                p = find_port_by_name(m, key);
        if (!p)
                p = find_port_by_path(m, device);
        if (!p) {
                const char *why = vanished_reason(m, key ?: device);

                return sd_bus_error_setf(error, STM32ISP_ERROR_NOT_FOUND, "No port %s%s%s", device,
                                         why[0] ? ": " : "", why);
        }
        return sd_bus_reply_method_return(msg, "o", port_path(p));
}

/* ---- results ---- */

int manager_set_state_dir(Manager *m, const char *dir, uint64_t max_size) {
        ResultsLog *l;
        char *d;
        int r;

        r = results_log_new(dir, max_size, &l);
        if (r < 0)
                return r;
        d = strdup(dir);
        if (!d) {
                results_log_free(l);
                return -ENOMEM;
        }
        results_log_free(m->results);
        m->results = l;
        free(m->state_dir);
        m->state_dir = d;
        /* A counter file that cannot be trusted leaves serial numbers off (the daemon
         * still runs): guessing could give one number to two chips. */
        m->serials = serial_store_free(m->serials);
        r = serial_store_new(dir, &m->serials);
        if (r < 0)
                log_error(NULL, "Cannot use %s/" SERIAL_STORE_NAME " (%s): serial numbers are off until it is repaired",
                          dir, strerror(-r));
        for (size_t i = 0; i < m->n_ports; i++)
                port_set_serial_store(m->ports[i], m->serials);
        return 0;
}

static int results_filter(const OptionValue *v, void *userdata, sd_bus_error *error) {
        ResultsFilter *f = userdata;

        switch ((ResultsFilterId) v->spec->id) {
        case RESULTS_FILTER_RESULT:
                if (!streq(v->s, "pass") && !streq(v->s, "fail"))
                        return options_error(error, v, "must be 'pass' or 'fail'");
                f->result = v->s;
                return 0;
        case RESULTS_FILTER_UID:
                f->uid = v->s;
                return 0;
        case RESULTS_FILTER_SERIAL_NUMBER:
                f->serial_number = v->t;
                f->have_serial_number = true;
                return 0;
        case RESULTS_FILTER_PORT:
                f->port = v->s;
                return 0;
        case RESULTS_FILTER_SINCE:
                f->since_usec = v->t;
                return 0;
        case RESULTS_FILTER_UNTIL:
                f->until_usec = v->t;
                return 0;
        case RESULTS_FILTER_LIMIT:
                f->limit = v->u;
                return 0;
        default:
                return -EINVAL;
        }
}

static int method_get_results(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ResultsFilter f = {};
        json_object *array = NULL;
        int r;

        r = options_parse(msg, &results_filter_table, OPTIONS_ALL, results_filter, &f, error);
        if (r < 0)
                return r;
        r = polkit_authorize(m->polkit, msg, POLKIT_ACTIONS(STM32ISP_ACTION_READ), NULL, error);
        if (r != 0)
                return r;

        if (m->results) {
                r = results_log_query(m->results, &f, &array);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, -r, "Cannot read the results log: %m");
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && array && i < json_object_array_length(array); i++)
                r = bus_append_json_dict(reply, json_object_array_get_idx(array, i));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        json_object_put(array);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- auto-flash ---- */

/* One SetAutoFlash key, its value as the walk typed it. */
static int autoflash_option(const OptionValue *v, void *userdata, sd_bus_error *error) {
        AutoFlashValue value = {};
        int r;

        switch (v->type) {
        case 's':
                value.s = v->s;
                break;
        case 'b':
                value.b = v->b;
                break;
        case 'q':
                value.u = v->q;
                break;
        case 'u':
                value.u = v->u;
                break;
        case 't':
                value.u = v->t;
                break;
        default:
                return -EINVAL;         /* not in the table */
        }
        r = autoflash_set_value(userdata, v->spec->id, &value);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return options_error_invalid(error, v);
        return 0;
}

static int method_set_auto_flash(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;
        int fd, r;

        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        r = autoflash_new("bus", &a);
        if (r < 0)
                return r;
        r = options_parse(msg, &autoflash_option_table, OPTIONS_ALL, autoflash_option, a, error);
        if (r < 0)
                return r;
        r = polkit_authorize(m->polkit, msg, POLKIT_ACTIONS(STM32ISP_ACTION_CONFIGURE), NULL, error);
        if (r != 0)
                return r;

        r = autoflash_load_fd(a, fd, "fd");
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                return sd_bus_error_setf(error, STM32ISP_ERROR_IMAGE_TOO_LARGE, "The image is too large");
        if (r == -EINVAL)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image must be a regular file");
        if (r == -EDOM)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option 'address' is for raw binaries: this image carries its own addresses");
        if (r < 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image cannot be parsed");

        if (a->serial.enabled && !m->serials)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Serial numbers need the daemon's state directory (--state-dir), where the "
                                         "counters are kept");
        autoflash_free(m->autoflash);
        m->autoflash = TAKE_PTR(a);
        m->autoflash_error = mfree(m->autoflash_error);
        manager_log_armed(m, NULL);
        manager_emit_autoflash(m);
        manager_update_poll(m);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_clear_auto_flash(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = polkit_authorize(m->polkit, msg, POLKIT_ACTIONS(STM32ISP_ACTION_CONFIGURE), NULL, error);
        if (r != 0)
                return r;
        if (m->autoflash || m->autoflash_error) {
                m->autoflash = autoflash_free(m->autoflash);
                m->autoflash_error = mfree(m->autoflash_error);
                log_info(NULL, "Auto-flash disarmed");
                manager_emit_autoflash(m);
                manager_update_poll(m);
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int prop_auto_flash(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const AutoFlash *a = m->autoflash;
        const char *erase;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}", "armed", "b", (int) !!a);
        if (r >= 0 && !a && m->autoflash_error)
                r = sd_bus_message_append(reply, "{sv}", "error", "s", m->autoflash_error);
        if (r < 0)
                return r;
        if (!a)
                return sd_bus_message_close_container(reply);
        erase = erase_mode_to_string(a->flash.erase);
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                  "source", "s", a->source,
                                  "image_name", "s", a->image_name ?: "",
                                  "sha256", "s", a->sha256,
                                  "image_size", "t", a->payload_size,
                                  "started", "t", a->n_started,
                                  "passed", "t", a->n_passed,
                                  "failed", "t", a->n_failed);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                  "erase", "s", erase,
                                  "verify", "b", (int) a->flash.verify,
                                  "unprotect", "b", (int) a->flash.unprotect,
                                  "protect", "b", (int) a->flash.protect,
                                  "boot0", "b", (int) a->flash.boot0,
                                  "go", "b", (int) a->flash.go,
                                  "force", "b", (int) a->flash.force,
                                  "baudrate", "u", (uint32_t) a->baudrate,
                                  "entry", "s", a->entry ?: "");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}",
                                  "detect", "s", a->detect_poll ? "poll" : "plug",
                                  "poll_ms", "u", (uint32_t) a->poll_ms);
        if (r >= 0 && a->serial.enabled)
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}",
                                          "sn_address", "t", (uint64_t) a->serial.address,
                                          "sn_first", "t", a->serial.first,
                                          "sn_step", "t", a->serial.step,
                                          "sn_format", "s", a->serial.format,
                                          "sn_counter", "s", a->serial.counter);
        if (r < 0)
                return r;
        /* The match, as SetAutoFlash takes it; absent keys match anything. */
        r = bus_open_entry(reply, "match", "a{sv}");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0 && a->match_usb)
                r = sd_bus_message_append(reply, "{sv}", "vid", "q", a->match_vid);
        if (r >= 0 && a->match_usb && !a->match_any_pid)
                r = sd_bus_message_append(reply, "{sv}", "pid", "q", a->match_pid);
        if (r >= 0 && a->match_serial)
                r = sd_bus_message_append(reply, "{sv}", "serial", "s", a->match_serial);
        if (r >= 0 && a->match_id_path)
                r = sd_bus_message_append(reply, "{sv}", "id_path", "s", a->match_id_path);
        if (r >= 0 && a->match_port)
                r = sd_bus_message_append(reply, "{sv}", "port", "s", a->match_port);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = bus_close_entry(reply);
        /* Not a match: a board with another chip fails before anything is erased. */
        if (r >= 0 && a->expect_chip)
                r = sd_bus_message_append(reply, "{sv}", "expect_chip", "q", a->expect_chip);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int prop_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AutoFlash", "a{sv}", prop_auto_flash, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("AddPort", "sa{sv}", SD_BUS_PARAM(device) SD_BUS_PARAM(options),
                                 "o", SD_BUS_PARAM(port), method_add_port, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemovePort", "o", SD_BUS_PARAM(port), "", ,
                                 method_remove_port, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetPort", "s", SD_BUS_PARAM(device), "o", SD_BUS_PARAM(port),
                                 method_get_port, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetResults", "a{sv}", SD_BUS_PARAM(filter), "aa{sv}", SD_BUS_PARAM(results),
                                 method_get_results, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetAutoFlash", "ha{sv}", SD_BUS_PARAM(image) SD_BUS_PARAM(options), "", ,
                                 method_set_auto_flash, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ClearAutoFlash", "", "", method_clear_auto_flash, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- lifecycle ---- */

int manager_new(sd_event *event, sd_bus *bus, bool verbose, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));

        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(event);
        m->bus = sd_bus_ref(bus);
        m->verbose = verbose;
        if (polkit_new(bus, &m->polkit) < 0) {
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int manager_start(Manager *m) {
        int r;

        r = sd_bus_add_object_manager(m->bus, &m->object_manager_slot, STM32ISP_MANAGER_PATH);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(m->bus, &m->vtable_slot, STM32ISP_MANAGER_PATH,
                                     STM32ISP_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return r;
        r = hotplug_new(m->event, hotplug_added, hotplug_removed, m, &m->hotplug);
        if (r < 0)
                return r;
        m->started = true;
        manager_update_status(m);
        manager_update_poll(m);
        return 0;
}

static int on_shutdown_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning(NULL, "Jobs did not stop in time, leaving them");
        m->abandoned = true;
        for (size_t i = 0; i < m->n_ports; i++)
                port_abandon(m->ports[i]);
        return sd_event_exit(m->event, 0);
}

void manager_shutdown(Manager *m) {
        bool busy = false;

        if (m->exiting)
                return;
        m->exiting = true;
        manager_update_poll(m);
        for (size_t i = 0; i < m->n_ports; i++)
                busy |= port_shutdown(m->ports[i]);
        if (!busy) {
                (void) sd_event_exit(m->event, 0);
                return;
        }
        log_info(NULL, "Cancelling running jobs");
        if (sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC, SHUTDOWN_DEADLINE_USEC, 0,
                                       on_shutdown_deadline, m) < 0)
                (void) sd_event_exit(m->event, 0);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->hotplug = hotplug_free(m->hotplug);
        /* Last in, first out: free in reverse so InterfacesRemoved reads naturally. */
        while (m->n_ports > 0)
                port_unref(m->ports[--m->n_ports]);
        free(m->ports);
        sd_event_source_disable_unref(m->shutdown_timer);
        sd_event_source_disable_unref(m->poll_timer);
        sd_bus_slot_unref(m->vtable_slot);
        sd_bus_slot_unref(m->object_manager_slot);
        sd_bus_unref(m->bus);
        sd_event_unref(m->event);
        free(m->last_status);
        results_log_free(m->results);
        free(m->state_dir);
        serial_store_free(m->serials);
        polkit_free(m->polkit);
        autoflash_free(m->autoflash);
        free(m->autoflash_error);
        config_done(&m->config);
        free(m);
        return NULL;
}
