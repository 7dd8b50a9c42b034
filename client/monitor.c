/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "exit-codes.h"
#include "output.h"
#include "stm32isp.h"
#include "util.h"

/* A live view of all ports: plug and unplug, state, progress, results. Text for people
 * (a progress line per active port, redrawn in place on a terminal), or one JSON object
 * per event and line with --json. Runs until SIGINT/SIGTERM. */

typedef struct Monitor {
        ClientBus *c;
        const Args *a;
        Progress *progress;
        json_object *devices;   /* object path -> device name */
} Monitor;

static const char *port_label(Monitor *m, const char *path) {
        json_object *d = json_object_object_get(m->devices, path);
        const char *s = d ? json_object_get_string(d) : NULL;

        if (s && *s)
                return s;
        s = strrchr(path, '/');
        return s ? s + 1 : path;
}

static json_object *event_new(Monitor *m, const char *event, const char *path) {
        json_object *o = json_object_new_object();
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        json_object_object_add(o, "event", json_object_new_string(event));
        json_object_object_add(o, "timestamp", json_object_new_int64((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000));
        if (path) {
                json_object_object_add(o, "object", json_object_new_string(path));
                json_object_object_add(o, "port", json_object_new_string(port_label(m, path)));
        }
        return o;
}

_printf_(2, 3) static void text_line(Monitor *m, const char *fmt, ...) {
        char t[16];
        time_t now = time(NULL);
        struct tm tm;
        va_list ap;

        if (m->a->quiet)
                return;
        progress_clear(m->progress);
        strftime(t, sizeof t, "%H:%M:%S", localtime_r(&now, &tm));
        printf("%s ", t);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static void port_added(Monitor *m, const char *path, json_object *props, const char *event) {
        const char *dev = json_get_string(props, "Device");
        int64_t vid = json_get_int(props, "VendorId"), pid = json_get_int(props, "ProductId");
        const char *product = json_get_string(props, "Product"), *serial = json_get_string(props, "Serial");

        if (dev)
                json_object_object_add(m->devices, path, json_object_new_string(dev));
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, event, path);

                json_object_object_add(o, "properties", json_object_get(props));
                json_print(stdout, o, false);
                return;
        }
        text_line(m, "%s: %s (%04" PRIx64 ":%04" PRIx64 "%s%s%s%s, %s)", port_label(m, path),
                  streq(event, "added") ? "added" : "present", MAX(vid, 0), MAX(pid, 0), product && *product ? " " : "",
                  product ?: "", serial && *serial ? ", serial " : "", serial && *serial ? serial : "",
                  json_get_string(props, "State") ?: "?");
}

static int on_interfaces_added(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *ifaces = NULL;
        const char *path;

        if (sd_bus_message_read(msg, "o", &path) < 0 || json_from_bus_message(msg, &ifaces) < 0)
                return 0;
        json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
        if (props)
                port_added(m, path, props, "added");
        return 0;
}

static int on_interfaces_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *ifaces = NULL;
        const char *path;
        bool port = false;

        if (sd_bus_message_read(msg, "o", &path) < 0 || json_from_bus_message(msg, &ifaces) < 0)
                return 0;
        for (size_t i = 0; i < json_object_array_length(ifaces); i++)
                if (streq(json_object_get_string(json_object_array_get_idx(ifaces, i)), STM32ISP_PORT_INTERFACE))
                        port = true;
        if (!port)
                return 0;
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, "removed", path);
                json_print(stdout, o, false);
        } else
                text_line(m, "%s: removed", port_label(m, path));
        json_object_object_del(m->devices, path);
        return 0;
}

static int on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *changed = NULL;
        const char *iface, *path = sd_bus_message_get_path(msg);

        if (sd_bus_message_read(msg, "s", &iface) < 0 || !streq(iface, STM32ISP_PORT_INTERFACE) ||
            json_from_bus_message(msg, &changed) < 0)
                return 0;
        /* The Progress signal shows progress; its property would only repeat it. */
        json_object_object_del(changed, "Progress");
        if (json_object_object_length(changed) == 0)
                return 0;
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, "changed", path);

                json_object_object_add(o, "properties", json_object_get(changed));
                json_print(stdout, o, false);
                return 0;
        }
        json_object_object_foreach(changed, k, v) {
                if (streq(k, "LastResult"))
                        continue;       /* Finished says it */
                _cleanup_free_ char *s = text_format_value(k, v);
                if (streq(k, "Chip")) {
                        const char *n = json_get_string(v, "Name");
                        text_line(m, "%s: chip %s", port_label(m, path), n ?: (s ?: "?"));
                } else
                        text_line(m, "%s: %s %s", port_label(m, path), k, s ?: "?");
        }
        return 0;
}

static int on_progress(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        const char *stage, *path = sd_bus_message_get_path(msg);
        uint64_t done, total;

        if (sd_bus_message_read(msg, "stt", &stage, &done, &total) < 0)
                return 0;
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, "progress", path);

                json_object_object_add(o, "stage", json_object_new_string(stage));
                json_object_object_add(o, "done", json_object_new_uint64(done));
                json_object_object_add(o, "total", json_object_new_uint64(total));
                json_print(stdout, o, false);
        } else
                progress_update(m->progress, port_label(m, path), stage, done, total);
        return 0;
}

static int on_finished(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        const char *op, *error, *message, *path = sd_bus_message_get_path(msg);

        if (sd_bus_message_read(msg, "sss", &op, &error, &message) < 0)
                return 0;
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, "finished", path);

                json_object_object_add(o, "operation", json_object_new_string(op));
                json_object_object_add(o, "error", json_object_new_string(error));
                json_object_object_add(o, "message", json_object_new_string(message));
                json_print(stdout, o, false);
                return 0;
        }
        progress_end(m->progress);
        if (!*error)
                text_line(m, "%s: %s finished", port_label(m, path), op);
        else
                text_line(m, "%s: %s failed: %s%s%s", port_label(m, path), op,
                          startswith(error, STM32ISP_ERROR_PREFIX) ? error + strlen(STM32ISP_ERROR_PREFIX) : error,
                          *message ? ": " : "", message);
        return 0;
}

static void list_present(Monitor *m, sd_bus_message *reply) {
        _cleanup_json_ json_object *objects = NULL;

        if (json_from_bus_message(reply, &objects) < 0)
                return;
        json_object_object_foreach(objects, path, ifaces) {
                json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
                if (props)
                        port_added(m, path, props, "present");
        }
}

static int on_managed_objects(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        if (!sd_bus_message_is_method_error(reply, NULL))
                list_present(userdata, reply);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, STM32ISP_BUS_NAME))
                return 0;
        if (m->a->json) {
                _cleanup_json_ json_object *o = event_new(m, "daemon", NULL);

                json_object_object_add(o, "running", json_object_new_boolean(*new_owner != 0));
                json_print(stdout, o, false);
        } else
                text_line(m, "stm32ispd %s", *new_owner ? "started" : "stopped");
        if (!*new_owner) {
                /* Its ports went with it. */
                json_object_put(m->devices);
                m->devices = json_object_new_object();
                return 0;
        }
        /* A (re)started daemon announced its ports before it took the name: ask. */
        (void) sd_bus_call_method_async(m->c->bus, NULL, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                        on_managed_objects, m, "");
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void monitor_done(Monitor *m) {
        json_object_put(m->devices);
}

int cmd_monitor(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL, *s6 = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigint = NULL, *sigterm = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(progress_freep) Progress *progress = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(monitor_done) Monitor m = { .c = c, .a = a, .devices = json_object_new_object() };
        sigset_t mask;
        int r;

        r = progress_new(stdout, progress_mode_for(stdout, a->quiet), &progress);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;
        m.progress = progress;

        /* Subscribe first, then list what is there: nothing falls in between. */
        r = sd_bus_match_signal(c->bus, &s1, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_interfaces_added, &m);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, &s2, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_interfaces_removed, &m);
        if (r >= 0)
                r = sd_bus_add_match(c->bus, &s3,
                                     "type='signal',sender='" STM32ISP_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" STM32ISP_PORT_PATH_PREFIX "'",
                                     on_properties_changed, &m);
        if (r >= 0)
                r = sd_bus_add_match(c->bus, &s4,
                                     "type='signal',sender='" STM32ISP_BUS_NAME "',interface='" STM32ISP_PORT_INTERFACE
                                     "',member='Progress',path_namespace='" STM32ISP_PORT_PATH_PREFIX "'",
                                     on_progress, &m);
        if (r >= 0)
                r = sd_bus_add_match(c->bus, &s5,
                                     "type='signal',sender='" STM32ISP_BUS_NAME "',interface='" STM32ISP_PORT_INTERFACE
                                     "',member='Finished',path_namespace='" STM32ISP_PORT_PATH_PREFIX "'",
                                     on_finished, &m);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, &s6, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, &m);
        if (r < 0) {
                fprintf(stderr, "stm32ispctl: monitor: cannot subscribe: %s\n", strerror(-r));
                return EXIT_FAILURE_GENERIC;
        }

        r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, &reply, "");
        if (r < 0) {
                r = client_report_error(c, "monitor", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        list_present(&m, reply);
        if (a->json) {
                /* A marker for scripts: everything present has been listed. */
                _cleanup_json_ json_object *o = event_new(&m, "ready", NULL);
                json_print(stdout, o, false);
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(c->event, &sigint, SIGINT, on_exit_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, &sigterm, SIGTERM, on_exit_signal, NULL);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(c->bus, 1);
        if (r >= 0)
                r = sd_event_loop(c->event);
        progress_end(progress);
        if (r < 0) {
                fprintf(stderr, "stm32ispctl: monitor: %s\n", strerror(-r));
                return EXIT_FAILURE_GENERIC;
        }
        return EXIT_OK;
}
