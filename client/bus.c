/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "exit-codes.h"
#include "stm32isp.h"
#include "util.h"

int client_bus_open(ClientBus *c, BusKind kind, const char *address) {
        int r;

        *c = (ClientBus) { .kind = kind, .address = address };

        switch (kind) {
        case BUS_KIND_SYSTEM:
                r = sd_bus_open_system(&c->bus);
                break;
        case BUS_KIND_USER:
                r = sd_bus_open_user(&c->bus);
                break;
        case BUS_KIND_REMOTE:
                /* ssh HOST systemd-stdio-bridge, as systemctl -H */
                r = sd_bus_open_system_remote(&c->bus, address);
                break;
        default:
                r = sd_bus_new(&c->bus);
                if (r < 0)
                        break;
                r = sd_bus_set_address(c->bus, address);
                if (r < 0)
                        break;
                r = sd_bus_set_bus_client(c->bus, 1);
                if (r < 0)
                        break;
                r = sd_bus_negotiate_fds(c->bus, 1);
                if (r < 0)
                        break;
                r = sd_bus_start(c->bus);
                break;
        }
        if (r < 0)
                goto fail;

        r = sd_event_default(&c->event);
        if (r < 0)
                goto fail;
        r = sd_bus_attach_event(c->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;
        return 0;
fail:
        client_bus_close(c);
        return r;
}

void client_bus_close(ClientBus *c) {
        if (c->bus) {
                sd_bus_flush(c->bus);
                sd_bus_detach_event(c->bus);
                c->bus = sd_bus_close_unref(c->bus);
        }
        c->event = sd_event_unref(c->event);
}

/* The daemon's hints name the D-Bus options (its callers are programs too); on the
 * command line they are flags and verbs. Phrase -> its command-line form. */
static const struct {
        const char *dbus, *cli;
} hint_phrases[] = {
        { "flash with unprotect to erase it and continue",
          "flash with --unprotect to erase it and continue, or erase it with 'stm32ispctl unlock'" },
        { "Flash with unprotect",       "Flash with --unprotect" },
        { "a flash with unprotect does", "flash --unprotect does" },
        { "pass force",                 "give --force" },
        { "unlock it first (that erases the flash)", "'stm32ispctl unlock' first (that erases the flash)" },
};

/* msg with the hints in their command-line form (malloc'd), NULL when there is none. */
static char *cli_hints(const char *msg) {
        _cleanup_free_ char *out = NULL;

        for (size_t i = 0; i < ELEMENTSOF(hint_phrases); i++) {
                const char *cur = out ?: msg, *at = strstr(cur, hint_phrases[i].dbus);
                char *n;

                if (!at)
                        continue;
                if (asprintf(&n, "%.*s%s%s", (int) (at - cur), cur, hint_phrases[i].cli,
                             at + strlen(hint_phrases[i].dbus)) < 0)
                        return NULL;
                free(out);
                out = n;
        }
        return TAKE_PTR(out);
}

int client_report_error(const ClientBus *c, const char *what, const sd_bus_error *e, int r) {
        int code = exit_code_from_bus_error(e, r);
        const char *name = e && sd_bus_error_is_set(e) ? e->name : NULL;

        if (code == EXIT_DAEMON_UNAVAILABLE) {
                /* One line: what is wrong and how to fix it. */
                if (c->kind == BUS_KIND_SYSTEM)
                        return failure_printf(code, "the stm32ispd daemon is not running on the system bus and "
                                                    "cannot be activated; start it with 'systemctl start stm32ispd'.");
                if (c->kind == BUS_KIND_REMOTE)
                        return failure_printf(code, "cannot reach stm32ispd on %s over ssh; check that 'ssh %s' logs in "
                                                    "and that the station runs it: 'systemctl -H %s status stm32ispd'.",
                                              c->address, c->address, c->address);
                if (c->kind == BUS_KIND_USER)
                        return failure_printf(code, "the stm32ispd daemon is not running on the session bus and "
                                                    "cannot be activated; start it with 'stm32ispd --session &'.");
                return failure_printf(code, "the stm32ispd daemon is not reachable at %s; start it with "
                                            "'stm32ispd --bus-address=%s &'.", c->address, c->address);
        }

        const char *msg = name && e->message && *e->message ? e->message : NULL;
        _cleanup_free_ char *cli = msg && startswith(name, STM32ISP_ERROR_PREFIX) ? cli_hints(msg) : NULL;
        const char *shortname = name;

        msg = cli ?: msg;
        const char *hint = "";

        if (name && startswith(name, STM32ISP_ERROR_PREFIX))
                shortname += strlen(STM32ISP_ERROR_PREFIX);
        else if (name && startswith(name, "org.freedesktop.DBus.Error."))
                shortname += strlen("org.freedesktop.DBus.Error.");
        /* The daemon's refusals say what to do; the bus's do not. */
        if (code == EXIT_ACCESS_DENIED && !(msg && strstr(msg, STM32ISP_GROUP)))
                hint = " (root and members of the " STM32ISP_GROUP " group may use the ports)";
        else if (code == EXIT_NOT_FOUND)
                hint = " (see 'stm32ispctl list')";

        if (msg)
                fprintf(stderr, "stm32ispctl: %s: %s [%s]%s\n", what, msg, shortname, hint);
        else
                fprintf(stderr, "stm32ispctl: %s: %s%s\n", what, shortname ?: strerror(-r), hint);
        failure_record(code, name, msg ?: shortname ?: strerror(-r));
        return code;
}

static int manager_call_o(ClientBus *c, const char *method, const char *device, char **ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        if (streq(method, "AddPort"))
                r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       method, error, &reply, "sa{sv}", device, 0);
        else
                r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       method, error, &reply, "s", device);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        *ret = strdup(path);
        return *ret ? 0 : -ENOMEM;
}

static bool error_is_not_found(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, STM32ISP_ERROR_NOT_FOUND, SD_BUS_ERROR_INVALID_ARGS,
                                      SD_BUS_ERROR_UNKNOWN_OBJECT);
}

/* realpath(), or when the target is not there for us (the daemon may see another /dev,
 * as under umockdev), the symlink chain followed by hand. */
static bool resolve_link(const char *name, char real[static PATH_MAX]) {
        char cur[PATH_MAX], target[PATH_MAX];

        if (realpath(name, real))
                return true;
        if (strlen(name) >= sizeof cur)
                return false;
        strcpy(cur, name);
        for (unsigned i = 0; i < 16; i++) {
                ssize_t n = readlink(cur, target, sizeof target - 1);

                if (n < 0)
                        break;
                target[n] = 0;
                if (target[0] == '/')
                        strcpy(cur, target);
                else {
                        char *slash = strrchr(cur, '/');
                        size_t dir = slash ? (size_t) (slash - cur) + 1 : 0;

                        if (dir + (size_t) n >= sizeof cur)
                                return false;
                        memcpy(cur + dir, target, (size_t) n + 1);
                }
        }
        if (streq(cur, name))
                return false;
        strcpy(real, cur);
        return true;
}

int client_append_option(sd_bus_message *m, const char *key, const char *type, ...) {
        va_list ap;
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', type);
        if (r < 0)
                return r;
        va_start(ap, type);
        r = sd_bus_message_appendv(m, type, ap);
        va_end(ap);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int client_find_port(ClientBus *c, const char *name, char **ret_path, sd_bus_error *error) {
        int r;

        if (name[0] == '/' && !startswith(name, "/dev/") && sd_bus_object_path_is_valid(name)) {
                *ret_path = strdup(name);
                return *ret_path ? 0 : -ENOMEM;
        }
        if (startswith(name, "/dev/") && name[5] && !strchr(name + 5, '/')) {
                r = manager_call_o(c, "GetPort", name + 5, ret_path, error);
                if (r >= 0 || !error_is_not_found(error))
                        return r;
                sd_bus_error_free(error);
        }
        return manager_call_o(c, "GetPort", name, ret_path, error);
}

int client_resolve_port(ClientBus *c, const char *name, char **ret_path, sd_bus_error *error) {
        char real[PATH_MAX];
        struct stat st;
        int r;

        if (name[0] == '/' && !startswith(name, "/dev/") && sd_bus_object_path_is_valid(name)) {
                *ret_path = strdup(name);
                return *ret_path ? 0 : -ENOMEM;
        }
        if (strstr(name, "://"))
                return manager_call_o(c, "AddPort", name, ret_path, error);

        /* /dev/ttyUSB0 -> ttyUSB0 first: the kernel name is how the daemon keys udev ports,
         * and it need not look at a path then. */
        if (startswith(name, "/dev/") && name[5] && !strchr(name + 5, '/')) {
                r = manager_call_o(c, "GetPort", name + 5, ret_path, error);
                if (r >= 0 || !error_is_not_found(error))
                        return r;
                sd_bus_error_free(error);
        }

        r = manager_call_o(c, "GetPort", name, ret_path, error);
        if (r >= 0 || !error_is_not_found(error))
                return r;

        /* A /dev/serial/by-id link the daemon does not know by that name: its target. */
        bool resolved = resolve_link(name, real) && !streq(real, name);
        if (resolved) {
                sd_bus_error_free(error);
                r = manager_call_o(c, "GetPort", real, ret_path, error);
                if (r >= 0 || !error_is_not_found(error))
                        return r;
        }

        /* A link to /dev/ttyUSB0 -> the kernel name. */
        if (resolved && startswith(real, "/dev/") && !strchr(real + 5, '/') && real[5]) {
                sd_bus_error_free(error);
                r = manager_call_o(c, "GetPort", real + 5, ret_path, error);
                if (r >= 0 || !error_is_not_found(error))
                        return r;
        }

        /* A serial device udev does not report as an adapter (/dev/ttyAMA0): add it. */
        if (resolved && stat(real, &st) == 0 && S_ISCHR(st.st_mode)) {
                sd_bus_error_free(error);
                return manager_call_o(c, "AddPort", real, ret_path, error);
        }
        return r;
}

void job_result_done(JobResult *j) {
        j->reply = sd_bus_message_unref(j->reply);
        sd_bus_error_free(&j->error);
}

typedef struct JobContext {
        ClientBus *c;
        const char *port_path;
        Progress *progress;
        JobResult *result;
        bool replied;
        bool gave_up;
        bool detach;
} JobContext;

/* --detach: the port's State left idle, so the daemon took the job (errors such as Busy
 * come as the reply instead, before any change). */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobContext *j = userdata;
        const char *iface, *key, *state;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq(iface, STM32ISP_PORT_INTERFACE) ||
            sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &key) < 0)
                        return 0;
                if (streq(key, "State")) {
                        if (sd_bus_message_read(m, "v", "s", &state) >= 0 && !streq(state, "idle"))
                                j->result->started = true;
                        return 0;
                }
                if (sd_bus_message_skip(m, "v") < 0 || sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobContext *j = userdata;
        const char *stage;
        uint64_t done, total;

        if (sd_bus_message_read(m, "stt", &stage, &done, &total) < 0)
                return 0;
        progress_update(j->progress, NULL, stage, done, total);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobContext *j = userdata;

        j->replied = true;
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                sd_bus_error_copy(&j->result->error, e);
                j->result->r = -sd_bus_error_get_errno(e);
                if (j->result->r >= 0)
                        j->result->r = -EIO;
        } else
                j->result->reply = sd_bus_message_ref(m);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        JobContext *j = userdata;
        int r;

        if (j->result->interrupted) {
                /* Second Ctrl-C: do not wait for the daemon any more. */
                j->gave_up = true;
                return 0;
        }
        j->result->interrupted = true;
        progress_clear(j->progress);
        if (!progress_is_quiet(j->progress))
                fprintf(stderr, "Cancelling (press Ctrl-C again to stop waiting)...\n");
        r = sd_bus_call_method_async(j->c->bus, NULL, STM32ISP_BUS_NAME, j->port_path, STM32ISP_PORT_INTERFACE,
                                     "Cancel", NULL, NULL, "");
        if (r < 0)
                j->gave_up = true;
        return 0;
}

int client_run_job(ClientBus *c, const char *port_path, sd_bus_message *call, Progress *progress, bool detach,
                   JobResult *ret) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *state_match = NULL, *slot = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigint = NULL, *sigterm = NULL;
        JobContext j = { .c = c, .port_path = port_path, .progress = progress, .result = ret, .detach = detach };
        sigset_t mask;
        int r;

        *ret = (JobResult) { .error = SD_BUS_ERROR_NULL };

        /* Subscribe first, so that no progress is missed. */
        r = sd_bus_match_signal(c->bus, &match, STM32ISP_BUS_NAME, port_path, STM32ISP_PORT_INTERFACE, "Progress",
                                on_progress, &j);
        if (r < 0)
                return r;
        if (detach) {
                r = sd_bus_match_signal(c->bus, &state_match, STM32ISP_BUS_NAME, port_path,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        on_properties_changed, &j);
                if (r < 0)
                        return r;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_add_signal(c->event, &sigint, SIGINT, on_signal, &j);
        if (r >= 0)
                r = sd_event_add_signal(c->event, &sigterm, SIGTERM, on_signal, &j);
        if (r < 0)
                goto out;

        /* No method timeout: a mass erase and a slow baud rate take what they take. */
        r = sd_bus_call_async(c->bus, &slot, call, on_reply, &j, UINT64_MAX);
        if (r < 0)
                goto out;

        /* Run the loop by hand (not sd_event_loop()): the next job reuses it. */
        while (!j.replied && !j.gave_up && !ret->started) {
                r = sd_event_run(c->event, UINT64_MAX);
                if (r < 0)
                        goto out;
                if (sd_bus_is_open(c->bus) <= 0 && !j.replied) {
                        r = -ECONNRESET;
                        goto out;
                }
        }
        r = j.replied || ret->started ? 0 : -EINTR;
out:
        progress_end(progress);
        sigint = sd_event_source_unref(sigint);
        sigterm = sd_event_source_unref(sigterm);
        /* SIGINT/SIGTERM stay blocked: one that arrives now must not cut the result short. */
        return r;
}
