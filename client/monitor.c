/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "exit-codes.h"
#include "output.h"
#include "stm32isp.h"
#include "util.h"

/* A live view of all ports: plug and unplug, state, progress, results. Text for people
 * (a progress line per active port, redrawn in place on a terminal), or one JSON object
 * per event and line with --json. Runs until SIGINT/SIGTERM. "monitor station" shows a
 * production line instead: one row per slot (see below). */

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

/* "timestamp" in the one form (stm32isp.h), and "timestamp_usec". */
static void add_timestamp(json_object *o, uint64_t usec) {
        char ts[STM32ISP_TIMESTAMP_MAX];

        stm32isp_format_timestamp(usec, ts);
        json_object_object_add(o, "timestamp", json_object_new_string(ts));
        json_object_object_add(o, "timestamp_usec", json_object_new_uint64(usec));
}

static json_object *event_new(Monitor *m, const char *event, const char *path) {
        json_object *o = json_object_new_object();
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        json_object_object_add(o, "event", json_object_new_string(event));
        add_timestamp(o, (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000);
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
                text_line(m, "%s: %s passed", port_label(m, path), op);
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

static void monitor_done(Monitor *m) {
        json_object_put(m->devices);
}

/* ---- the station view ----
 *
 * One row per slot: a physical position, the adapter's USB path (udev's ID_PATH, the
 * port's PhysicalPath), or its device when it has none (a TCP port, a UART). The row
 * outlives an unplug ("empty"), so the next adapter in the same hub port carries on with
 * the same counts. The counts are flash operations, automatic and by hand alike: seeded
 * from the daemon's results log (since the start of the local day, or --since), then
 * kept live from each port's LastResult. */

#define REDRAW_USEC (USEC_PER_SEC / 10)

typedef struct Slot {
        char *key;
        char *path;             /* the port object in the slot now; NULL: empty */
        char *device;
        char state[32];
        uint64_t done, total;   /* the running stage's progress */
        char chip[48];
        char uid[48];           /* of the last board flashed here ("" when it gave none) */
        unsigned pass, fail;
        char result[8];         /* the last flash: "pass", "fail", "" */
        char error[64];         /* its short error name */
        char message[256];
        uint64_t result_usec;   /* the last result counted: results not newer are counted already */
        char words[320];        /* the daemon's Station text: "waiting for a board", "PASS — ..." */
        char profile[16];       /* what the armed profile does here: "", plug, poll, unmatched */
        char *shown;            /* the row as last printed (lines and JSON) */
} Slot;

/* Columns as wide as their longest entry, so long names keep the table aligned. */
typedef struct Widths {
        int slot, device;
} Widths;

typedef enum StationOutput {
        STATION_TABLE,          /* a terminal: the table redrawn in place */
        STATION_LINES,          /* one line per slot change */
        STATION_JSON,           /* one JSON object per slot change */
} StationOutput;

typedef struct Station {
        ClientBus *c;
        const Args *a;
        StationOutput output;
        Slot **slots;           /* sorted by key */
        size_t n_slots;
        uint64_t since_usec;
        bool listed, seeded, ready;
        int ret;
        sd_bus_slot *list_call, *seed_call;
        sd_event_source *redraw;
        uint64_t last_draw;
        unsigned lines_drawn;
        char armed[192];        /* the armed profile in a line, "" before it is read */
} Station;

static Slot *slot_free(Slot *s) {
        if (!s)
                return NULL;
        free(s->key);
        free(s->path);
        free(s->device);
        free(s->shown);
        free(s);
        return NULL;
}

static int set_string(char **p, const char *v) {
        char *n = v ? strdup(v) : NULL;

        if (v && !n)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

static Slot *slot_get(Station *st, const char *key) {
        size_t i;
        Slot **a, *s;

        for (i = 0; i < st->n_slots; i++) {
                int c = strverscmp(st->slots[i]->key, key);
                if (c == 0)
                        return st->slots[i];
                if (c > 0)
                        break;
        }
        a = realloc(st->slots, (st->n_slots + 1) * sizeof *a);
        if (!a)
                return NULL;
        st->slots = a;
        s = calloc(1, sizeof *s);
        if (!s || !(s->key = strdup(key)))
                return slot_free(s);
        snprintf(s->state, sizeof s->state, "empty");
        memmove(a + i + 1, a + i, (st->n_slots - i) * sizeof *a);
        a[i] = s;
        st->n_slots++;
        return s;
}

static Slot *slot_by_path(Station *st, const char *path) {
        for (size_t i = 0; path && i < st->n_slots; i++)
                if (st->slots[i]->path && streq(st->slots[i]->path, path))
                        return st->slots[i];
        return NULL;
}

/* "pci-0000:00:14.0-usb-0:1.4:1.0" -> "usb-0:1.4:1.0", "/dev/ttyAMA0" -> "ttyAMA0" */
static const char *slot_name(const char *key) {
        const char *u = NULL;

        for (const char *p = strstr(key, "usb-"); p; p = strstr(p + 1, "usb-"))
                u = p;
        if (u)
                return u;
        if (startswith(key, "/dev/"))
                return key + strlen("/dev/");
        return key;
}

/* io.github.Stm32Isp1.Error.VerifyFailed -> VerifyFailed */
static const char *error_short(const char *e) {
        const char *dot = e ? strrchr(e, '.') : NULL;

        return dot ? dot + 1 : (e ?: "");
}

static void slot_set_result(Slot *s, bool pass, const char *error, const char *message, const char *uid,
                            const char *chip, uint64_t usec) {
        if (pass)
                s->pass++;
        else
                s->fail++;
        snprintf(s->result, sizeof s->result, "%s", pass ? "pass" : "fail");
        snprintf(s->error, sizeof s->error, "%s", pass ? "" : error_short(error));
        snprintf(s->message, sizeof s->message, "%s", message ?: "");
        snprintf(s->uid, sizeof s->uid, "%s", uid ?: "");
        if (chip && *chip)
                snprintf(s->chip, sizeof s->chip, "%s", chip);
        s->result_usec = MAX(s->result_usec, usec);
}

static unsigned slot_percent(const Slot *s) {
        return s->path && s->total > 1 && !streq(s->state, "idle") ? (unsigned) (MIN(s->done, s->total) * 100 / s->total)
                                                                   : UINT32_MAX;
}

static const char *slot_device(const Slot *s) {
        const char *dev = s->path && s->device && *s->device ? s->device : "-";

        return startswith(dev, "/dev/") ? dev + strlen("/dev/") : dev;
}

static Widths station_widths(const Station *st) {
        Widths w = { .slot = 11, .device = 8 };

        for (size_t i = 0; i < st->n_slots; i++) {
                w.slot = MAX(w.slot, (int) strlen(slot_name(st->slots[i]->key)));
                w.device = MAX(w.device, (int) strlen(slot_device(st->slots[i])));
        }
        return w;
}

/* The operator's words: the daemon's (a station slot), else the last result. */
static const char *slot_words(const Slot *s, bool progress, char *buf, size_t size) {
        if (streq(s->profile, "unmatched"))
                snprintf(buf, size, "no profile matches this port%s%s", *s->result ? "; last: " : "",
                         *s->result ? (streq(s->result, "pass") ? "passed" : "failed") : "");
        /* a poll station's slot says all; elsewhere "waiting" only until a result */
        else if (*s->words && (streq(s->profile, "poll") || !streq(s->words, "waiting for a board") || !*s->result))
                /* without the percentage where a line is printed per change */
                snprintf(buf, size, "%s", !progress && startswith(s->words, "flashing ") ? "flashing" : s->words);
        else if (*s->result)
                snprintf(buf, size, "%s%s%s", streq(s->result, "pass") ? "passed" : "failed", *s->error ? ": " : "",
                         s->error);
        else
                snprintf(buf, size, "-");
        return buf;
}

static void row_format(const Slot *s, bool progress, const Widths *w, char *buf, size_t size) {
        const char *chip = *s->chip ? s->chip : "-";
        unsigned pct = progress ? slot_percent(s) : UINT32_MAX;
        char prog[16] = "-", words[400];

        if (pct != UINT32_MAX)
                snprintf(prog, sizeof prog, "%u%%", pct);
        /* Narrow: the UID takes 24 columns. */
        if (startswith(chip, "STM32"))
                chip += strlen("STM32");
        snprintf(buf, size, "%-*s %-*s %-10s %4s %-8s %-24s %4u %4u  %s", w->slot, slot_name(s->key), w->device,
                 slot_device(s), s->state, prog, chip, *s->uid ? s->uid : "-", s->pass, s->fail,
                 slot_words(s, progress, words, sizeof words));
}

static void header_format(const Widths *w, char *buf, size_t size) {
        snprintf(buf, size, "%-*s %-*s %-10s %4s %-8s %-24s %4s %4s  %s", w->slot, "SLOT", w->device, "DEVICE", "STATE",
                 "PROG", "CHIP", "LAST UID", "PASS", "FAIL", "STATION");
}

static void summary_format(const Station *st, char *buf, size_t size) {
        unsigned pass = 0, fail = 0;
        time_t t = (time_t) (st->since_usec / USEC_PER_SEC);
        char when[32] = "?";
        struct tm tm;

        for (size_t i = 0; i < st->n_slots; i++) {
                pass += st->slots[i]->pass;
                fail += st->slots[i]->fail;
        }
        if (localtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        snprintf(buf, size, "%zu %s: %u passed, %u failed since %s. %s", st->n_slots,
                 st->n_slots == 1 ? "slot" : "slots", pass, fail, when, st->armed);
}

/* event: NULL for --once's array. */
static json_object *slot_json(const Slot *s, const char *event) {
        json_object *o = json_object_new_object();
        unsigned pct = slot_percent(s);

        if (!o)
                return NULL;
        if (event) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                json_object_object_add(o, "event", json_object_new_string(event));
                add_timestamp(o, (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000);
        }
        json_object_object_add(o, "slot", json_object_new_string(s->key));
        json_object_object_add(o, "name", json_object_new_string(slot_name(s->key)));
        json_object_object_add(o, "device", json_object_new_string(s->path && s->device ? s->device : ""));
        json_object_object_add(o, "object", json_object_new_string(s->path ?: ""));
        json_object_object_add(o, "state", json_object_new_string(s->state));
        json_object_object_add(o, "progress", pct == UINT32_MAX ? NULL : json_object_new_int(pct));
        json_object_object_add(o, "chip", json_object_new_string(s->chip));
        json_object_object_add(o, "uid", json_object_new_string(s->uid));
        json_object_object_add(o, "pass", json_object_new_int64(s->pass));
        json_object_object_add(o, "fail", json_object_new_int64(s->fail));
        json_object_object_add(o, "last_result", json_object_new_string(s->result));
        json_object_object_add(o, "last_error", json_object_new_string(s->error));
        json_object_object_add(o, "last_message", json_object_new_string(s->message));
        char ts[STM32ISP_TIMESTAMP_MAX] = "";
        if (s->result_usec > 0)
                stm32isp_format_timestamp(s->result_usec, ts);
        json_object_object_add(o, "last_timestamp", json_object_new_string(ts));       /* the one form */
        json_object_object_add(o, "last_timestamp_usec", json_object_new_uint64(s->result_usec));
        {
                char words[400];

                json_object_object_add(o, "station",
                                       json_object_new_string(slot_words(s, !event, words, sizeof words)));
        }
        json_object_object_add(o, "profile", json_object_new_string(s->profile));
        return o;
}

static unsigned terminal_columns(void) {
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                return ws.ws_col;
        return 80;
}

/* A line that fits: one that wraps would throw off the cursor movement of the redraw. */
static void table_line(const char *line, unsigned cols) {
        printf("%.*s\033[K\n", (int) (cols - 1), line);
}

static void station_draw(Station *st) {
        unsigned cols = terminal_columns();
        char line[512];

        if (st->lines_drawn > 0)
                printf("\033[%uA", st->lines_drawn);
        Widths w = station_widths(st);

        header_format(&w, line, sizeof line);
        table_line(line, cols);
        for (size_t i = 0; i < st->n_slots; i++) {
                row_format(st->slots[i], true, &w, line, sizeof line);
                table_line(line, cols);
        }
        summary_format(st, line, sizeof line);
        table_line(line, cols);
        printf("\033[J");
        fflush(stdout);
        st->lines_drawn = (unsigned) st->n_slots + 2;
        st->last_draw = now_usec();
}

static int on_redraw(sd_event_source *s, uint64_t usec, void *userdata) {
        station_draw(userdata);
        return 0;
}

/* The table redraws at most ten times a second, however many ports report progress. */
static void station_schedule_redraw(Station *st) {
        uint64_t when = MAX(now_usec(), st->last_draw + REDRAW_USEC);
        int enabled = SD_EVENT_OFF;

        if (st->redraw) {
                if (sd_event_source_get_enabled(st->redraw, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                        return;
                if (sd_event_source_set_time(st->redraw, when) >= 0 &&
                    sd_event_source_set_enabled(st->redraw, SD_EVENT_ONESHOT) >= 0)
                        return;
        } else if (sd_event_add_time(st->c->event, &st->redraw, CLOCK_MONOTONIC, when, 0, on_redraw, st) >= 0 &&
                   sd_event_source_set_enabled(st->redraw, SD_EVENT_ONESHOT) >= 0)
                return;
        station_draw(st);
}

static void station_print_slot(Station *st, Slot *s) {
        char row[512];

        Widths w = station_widths(st);

        /* What counts as a change: everything but the progress, which would be too chatty. */
        row_format(s, false, &w, row, sizeof row);
        if (s->shown && streq(s->shown, row))
                return;
        (void) set_string(&s->shown, row);
        if (st->output == STATION_JSON) {
                _cleanup_json_ json_object *o = slot_json(s, "slot");

                if (o)
                        json_print(stdout, o, false);
        } else {
                char t[16];
                time_t now = time(NULL);
                struct tm tm;

                strftime(t, sizeof t, "%H:%M:%S", localtime_r(&now, &tm));
                printf("%s %s\n", t, row);
        }
        fflush(stdout);
}

static void station_changed(Station *st, Slot *s) {
        if (!st->ready)
                return;
        if (st->output == STATION_TABLE)
                station_schedule_redraw(st);
        else
                station_print_slot(st, s);
}

/* The table, once: for scripts (--once). */
static void station_print_once(Station *st) {
        char line[512];

        if (st->a->json) {
                _cleanup_json_ json_object *array = json_object_new_array();

                for (size_t i = 0; array && i < st->n_slots; i++)
                        json_object_array_add(array, slot_json(st->slots[i], NULL));
                if (array)
                        json_print(stdout, array, false);
                return;
        }
        Widths w = station_widths(st);

        header_format(&w, line, sizeof line);
        printf("%s\n", line);
        for (size_t i = 0; i < st->n_slots; i++) {
                row_format(st->slots[i], true, &w, line, sizeof line);
                printf("%s\n", line);
        }
        summary_format(st, line, sizeof line);
        printf("%s\n", line);
}

static void station_maybe_ready(Station *st) {
        if (st->ready || !st->listed || !st->seeded)
                return;
        st->ready = true;
        if (st->a->once) {
                station_print_once(st);
                st->ret = EXIT_OK;
                (void) sd_event_exit(st->c->event, 0);
                return;
        }
        if (st->output == STATION_TABLE) {
                station_draw(st);
                return;
        }
        if (st->output == STATION_LINES) {
                Widths w = station_widths(st);
                char line[512];

                header_format(&w, line, sizeof line);
                printf("%-8s %s\n", "TIME", line);
        }
        for (size_t i = 0; i < st->n_slots; i++)
                station_print_slot(st, st->slots[i]);
        if (st->output == STATION_JSON) {
                /* A marker for scripts: every slot has been shown. */
                _cleanup_json_ json_object *o = json_object_new_object();

                json_object_object_add(o, "event", json_object_new_string("ready"));
                json_print(stdout, o, false);
        }
        fflush(stdout);
}

/* The armed profile in one line (Manager.AutoFlash as JSON). */
static void station_set_armed(Station *st, json_object *af) {
        json_object *armed = json_get(af, "armed");
        const char *sha = json_get_string(af, "sha256") ?: "";

        if (!af)
                return;
        if (!json_object_get_boolean(armed)) {
                snprintf(st->armed, sizeof st->armed, "No auto-flash profile armed.");
                return;
        }
        snprintf(st->armed, sizeof st->armed, "Armed: %s (SHA-256 %.12s), detect %s%s%s.",
                 json_get_string(af, "image_name") ?: "?", sha, json_get_string(af, "detect") ?: "plug",
                 json_get_string(af, "sn_counter") ? ", serial numbers from counter " : "",
                 json_get_string(af, "sn_counter") ?: "");
}

static int station_read_armed(Station *st) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *af = NULL;
        int r;

        r = sd_bus_get_property(st->c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                "AutoFlash", NULL, &reply, "a{sv}");
        if (r < 0 || json_from_bus_message(reply, &af) < 0)
                return 0;       /* an older daemon: no line */
        station_set_armed(st, af);
        return 0;
}

/* The daemon's Station property (a{sv}: text, profile). */
static void slot_set_station(Slot *s, json_object *station) {
        if (!station)
                return;
        snprintf(s->words, sizeof s->words, "%s", json_get_string(station, "text") ?: "");
        snprintf(s->profile, sizeof s->profile, "%s", json_get_string(station, "profile") ?: "");
}

static void slot_empty(Station *st, Slot *s) {
        s->words[0] = s->profile[0] = 0;
        s->path = mfree(s->path);
        s->device = mfree(s->device);
        snprintf(s->state, sizeof s->state, "empty");
        s->done = s->total = 0;
        station_changed(st, s);
}

static void station_port_present(Station *st, const char *path, json_object *props) {
        const char *dev = json_get_string(props, "Device"), *phys = json_get_string(props, "PhysicalPath");
        const char *state = json_get_string(props, "State"), *key = phys && *phys ? phys : dev;
        json_object *chip = json_get(props, "Chip"), *progress = json_get(props, "Progress");
        Slot *s, *old;

        if (!key || !*key)
                key = path;
        s = slot_get(st, key);
        if (!s)
                return;
        /* A port is in one slot only. */
        old = slot_by_path(st, path);
        if (old && old != s)
                slot_empty(st, old);
        if (set_string(&s->path, path) < 0 || set_string(&s->device, dev ?: "") < 0)
                return;
        snprintf(s->state, sizeof s->state, "%s", state && *state ? state : "idle");
        s->done = s->total = 0;
        if (json_object_is_type(progress, json_type_array) && json_object_array_length(progress) == 2) {
                s->done = (uint64_t) json_object_get_int64(json_object_array_get_idx(progress, 0));
                s->total = (uint64_t) json_object_get_int64(json_object_array_get_idx(progress, 1));
        }
        if (json_get_string(chip, "name") && *json_get_string(chip, "name"))
                snprintf(s->chip, sizeof s->chip, "%s", json_get_string(chip, "name"));
        slot_set_station(s, json_get(props, "Station"));
        station_changed(st, s);
}

static void station_list(Station *st, sd_bus_message *reply) {
        _cleanup_json_ json_object *objects = NULL;

        if (json_from_bus_message(reply, &objects) < 0)
                return;
        json_object_object_foreach(objects, path, ifaces) {
                json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
                if (props)
                        station_port_present(st, path, props);
        }
}

static int on_station_list(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        st->list_call = sd_bus_slot_unref(st->list_call);
        if (e) {
                if (st->listed)
                        return 0;       /* a restarted daemon that left again */
                st->ret = client_report_error(st->c, "monitor", e, -sd_bus_error_get_errno(e));
                return sd_event_exit(st->c->event, 0);
        }
        station_list(st, reply);
        st->listed = true;
        station_maybe_ready(st);
        return 0;
}

static void station_seed(Station *st, sd_bus_message *reply) {
        _cleanup_json_ json_object *entries = NULL;

        if (json_from_bus_message(reply, &entries) < 0 || !json_object_is_type(entries, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                json_object *e = json_object_array_get_idx(entries, i);
                const char *op = json_get_string(e, "operation"), *phys = json_get_string(e, "physical_path");
                const char *port = json_get_string(e, "port"), *result = json_get_string(e, "result");
                int64_t usec = json_get_int(e, "timestamp_usec");
                Slot *s;

                if (!op || strcasecmp(op, "flash") != 0 || !result)
                        continue;
                s = slot_get(st, phys && *phys ? phys : port ?: "?");
                if (s)
                        slot_set_result(s, streq(result, "pass"), json_get_string(e, "error"),
                                        json_get_string(e, "message"), json_get_string(e, "uid"),
                                        json_get_string(e, "chip_name"), usec > 0 ? (uint64_t) usec : 0);
        }
}

static int on_station_seed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        st->seed_call = sd_bus_slot_unref(st->seed_call);
        /* A daemon without a results log: the counts start now. */
        if (e)
                fprintf(stderr, "stm32ispctl: monitor: no counts from the results log: %s\n", e->message ?: e->name);
        else
                station_seed(st, reply);
        st->seeded = true;
        station_maybe_ready(st);
        return 0;
}

static int on_station_added(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        _cleanup_json_ json_object *ifaces = NULL;
        const char *path;

        if (!st->listed || sd_bus_message_read(msg, "o", &path) < 0 || json_from_bus_message(msg, &ifaces) < 0)
                return 0;
        json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
        if (props)
                station_port_present(st, path, props);
        return 0;
}

static int on_station_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        const char *path;
        Slot *s;

        if (sd_bus_message_read(msg, "o", &path) >= 0 && (s = slot_by_path(st, path)))
                slot_empty(st, s);
        return 0;
}

static int on_station_properties(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        _cleanup_json_ json_object *changed = NULL;
        const char *iface;
        Slot *s = slot_by_path(st, sd_bus_message_get_path(msg));
        json_object *state, *chip, *last, *station;

        if (streq_ptr(sd_bus_message_get_path(msg), STM32ISP_MANAGER_PATH)) {
                if (sd_bus_message_read(msg, "s", &iface) >= 0 && streq(iface, STM32ISP_MANAGER_INTERFACE) &&
                    json_from_bus_message(msg, &changed) >= 0 && json_object_object_get(changed, "AutoFlash")) {
                        station_set_armed(st, json_object_object_get(changed, "AutoFlash"));
                        if (st->ready && st->output == STATION_TABLE)
                                station_schedule_redraw(st);
                }
                return 0;
        }
        if (!s || sd_bus_message_read(msg, "s", &iface) < 0 || !streq(iface, STM32ISP_PORT_INTERFACE) ||
            json_from_bus_message(msg, &changed) < 0)
                return 0;
        state = json_object_object_get(changed, "State");
        chip = json_object_object_get(changed, "Chip");
        last = json_object_object_get(changed, "LastResult");
        station = json_object_object_get(changed, "Station");
        if (!state && !chip && !last && !station)
                return 0;
        slot_set_station(s, station);
        if (state) {
                /* A new stage: its progress comes with the next Progress signal. */
                snprintf(s->state, sizeof s->state, "%s", json_object_get_string(state));
                s->done = s->total = 0;
        }
        if (json_get_string(chip, "name") && *json_get_string(chip, "name"))
                snprintf(s->chip, sizeof s->chip, "%s", json_get_string(chip, "name"));
        if (last) {
                const char *op = json_get_string(last, "operation"), *error = json_get_string(last, "error");
                int64_t usec = json_get_int(last, "timestamp_usec");

                /* Before the log has answered, the log counts it (it was written by then).
                 * The chip comes with the result only when this job saw one. */
                if (st->seeded && op && strcasecmp(op, "flash") == 0 && usec > 0 && (uint64_t) usec > s->result_usec)
                        slot_set_result(s, !error || !*error, error, json_get_string(last, "message"),
                                        json_get_string(chip, "uid"), json_get_string(chip, "name"), (uint64_t) usec);
        }
        station_changed(st, s);
        return 0;
}

static int on_station_progress(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        Slot *s = slot_by_path(st, sd_bus_message_get_path(msg));
        const char *stage;
        uint64_t done, total;

        if (!s || sd_bus_message_read(msg, "stt", &stage, &done, &total) < 0)
                return 0;
        s->done = done;
        s->total = total;
        if (st->ready && st->output == STATION_TABLE)
                station_schedule_redraw(st);
        return 0;
}

static int station_list_async(Station *st) {
        st->list_call = sd_bus_slot_unref(st->list_call);
        return sd_bus_call_method_async(st->c->bus, &st->list_call, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", on_station_list,
                                        st, "");
}

static int on_station_owner(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Station *st = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, STM32ISP_BUS_NAME))
                return 0;
        if (!*new_owner) {
                /* Its ports went with it; the slots and their counts stay. */
                for (size_t i = 0; i < st->n_slots; i++)
                        if (st->slots[i]->path)
                                slot_empty(st, st->slots[i]);
                return 0;
        }
        /* A (re)started daemon announced its ports before it took the name: ask. */
        (void) station_list_async(st);
        return 0;
}

static void station_done(Station *st) {
        for (size_t i = 0; i < st->n_slots; i++)
                slot_free(st->slots[i]);
        free(st->slots);
        sd_bus_slot_unref(st->list_call);
        sd_bus_slot_unref(st->seed_call);
        sd_event_source_unref(st->redraw);
}

static uint64_t start_of_today_usec(void) {
        time_t now = time(NULL), t;
        struct tm tm;

        if (!localtime_r(&now, &tm))
                return 0;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        return t > 0 ? (uint64_t) t * USEC_PER_SEC : 0;
}

/* The signals a live view follows; a NULL handler is not subscribed. */
typedef struct ViewHandlers {
        sd_bus_message_handler_t added, removed, properties, progress, finished, owner;
        sd_bus_message_handler_t manager_properties;    /* the Manager's (AutoFlash) */
} ViewHandlers;

#define VIEW_N_MATCHES 7
#define PORT_SIGNAL_RULE(interface, member)                                             \
        "type='signal',sender='" STM32ISP_BUS_NAME "',interface='" interface "',member='" \
        member "',path_namespace='" STM32ISP_PORT_PATH_PREFIX "'"
#define MANAGER_SIGNAL_RULE(member)                                                             \
        "type='signal',sender='" STM32ISP_BUS_NAME "',path='" STM32ISP_MANAGER_PATH "',"         \
        "interface='org.freedesktop.DBus.ObjectManager',member='" member "'"

static int view_subscribe(sd_bus *bus, sd_bus_slot *slots[static VIEW_N_MATCHES], const ViewHandlers *h,
                          void *userdata) {
        const struct {
                const char *rule;
                sd_bus_message_handler_t cb;
        } m[VIEW_N_MATCHES] = {
                { MANAGER_SIGNAL_RULE("InterfacesAdded"), h->added },
                { MANAGER_SIGNAL_RULE("InterfacesRemoved"), h->removed },
                { PORT_SIGNAL_RULE("org.freedesktop.DBus.Properties", "PropertiesChanged"), h->properties },
                { PORT_SIGNAL_RULE(STM32ISP_PORT_INTERFACE, "Progress"), h->progress },
                { PORT_SIGNAL_RULE(STM32ISP_PORT_INTERFACE, "Finished"), h->finished },
                { "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                  "interface='org.freedesktop.DBus',member='NameOwnerChanged'", h->owner },
                { "type='signal',sender='" STM32ISP_BUS_NAME "',path='" STM32ISP_MANAGER_PATH "',"
                  "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'", h->manager_properties },
        };

        for (size_t i = 0; i < VIEW_N_MATCHES; i++) {
                int r;

                if (!m[i].cb)
                        continue;
                r = sd_bus_add_match(bus, &slots[i], m[i].rule, m[i].cb, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* For _cleanup_: the slots go before what their handlers point to (declare them after it). */
static void view_unsubscribe(sd_bus_slot *(*slots)[VIEW_N_MATCHES]) {
        for (size_t i = 0; i < VIEW_N_MATCHES; i++)
                (*slots)[i] = sd_bus_slot_unref((*slots)[i]);
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Runs the event loop until SIGINT or SIGTERM, or until the bus goes away. */
static int view_run(ClientBus *c) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigint = NULL, *sigterm = NULL;
        sigset_t mask;
        int r;

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
        return r;
}



static int run_station(ClientBus *c, const Args *a) {
        static const ViewHandlers handlers = {
                .added = on_station_added,
                .removed = on_station_removed,
                .properties = on_station_properties,
                .manager_properties = on_station_properties,
                .progress = on_station_progress,
                .owner = on_station_owner,
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(station_done) Station st = {
                .c = c,
                .a = a,
                .output = a->json ? STATION_JSON : isatty(STDOUT_FILENO) ? STATION_TABLE : STATION_LINES,
                .since_usec = a->since_usec ?: start_of_today_usec(),
                .ret = EXIT_FAILURE_GENERIC,
        };
        _cleanup_(view_unsubscribe) sd_bus_slot *matches[VIEW_N_MATCHES] = {};
        int r = 0;

        /* Subscribe first, then list the ports, then read the log: the replies come in
         * order with the signals, so nothing falls in between and nothing counts twice. */
        if (!a->once)
                r = view_subscribe(c->bus, matches, &handlers, &st);
        if (r >= 0)
                r = station_read_armed(&st);
        if (r >= 0)
                r = station_list_async(&st);
        if (r >= 0)
                r = sd_bus_message_new_method_call(c->bus, &call, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                                   STM32ISP_MANAGER_INTERFACE, "GetResults");
        if (r >= 0)
                r = sd_bus_message_append(call, "a{sv}", 1, "since", "t", st.since_usec);
        if (r >= 0)
                r = sd_bus_call_async(c->bus, &st.seed_call, call, on_station_seed, &st, 0);
        if (r >= 0) {
                r = view_run(c);
                /* Interrupted: a normal end of a live view. */
                if (r >= 0 && st.ready)
                        st.ret = EXIT_OK;
        }
        view_unsubscribe(&matches);
        if (st.output == STATION_TABLE && st.ready && !a->once) {
                /* The last state of the table stays on the screen. */
                (void) sd_event_source_set_enabled(st.redraw, SD_EVENT_OFF);
                station_draw(&st);
        }
        if (r < 0) {
                fprintf(stderr, "stm32ispctl: monitor: %s\n", strerror(-r));
                return EXIT_FAILURE_GENERIC;
        }
        return st.ret;
}

static int run_events(ClientBus *c, const Args *a) {
        static const ViewHandlers handlers = {
                .added = on_interfaces_added,
                .removed = on_interfaces_removed,
                .properties = on_properties_changed,
                .progress = on_progress,
                .finished = on_finished,
                .owner = on_name_owner_changed,
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(progress_freep) Progress *progress = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(monitor_done) Monitor m = { .c = c, .a = a, .devices = json_object_new_object() };
        _cleanup_(view_unsubscribe) sd_bus_slot *slots[VIEW_N_MATCHES] = {};
        int r;

        r = progress_new(stdout, progress_mode_for(stdout, a->quiet), &progress);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;
        m.progress = progress;

        /* Subscribe first, then list what is there: nothing falls in between. */
        r = view_subscribe(c->bus, slots, &handlers, &m);
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

        r = view_run(c);
        progress_end(progress);
        if (r < 0) {
                fprintf(stderr, "stm32ispctl: monitor: %s\n", strerror(-r));
                return EXIT_FAILURE_GENERIC;
        }
        return EXIT_OK;
}

int cmd_monitor(ClientBus *c, const Args *a) {
        bool station = a->n_pos == 1 && streq(a->pos[0], "station");

        if (a->n_pos > 0 && !station) {
                fprintf(stderr, "stm32ispctl: monitor: unknown view '%s' (station)\nTry 'stm32ispctl --help'.\n",
                        a->pos[0]);
                return EXIT_USAGE;
        }
        if (!station && (a->once || a->since_usec)) {
                fprintf(stderr, "stm32ispctl: monitor: %s is for 'monitor station'\nTry 'stm32ispctl --help'.\n",
                        a->once ? "--once" : "--since");
                return EXIT_USAGE;
        }
        return station ? run_station(c, a) : run_events(c, a);
}
