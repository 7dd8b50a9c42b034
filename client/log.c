/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispctl log: the daemon's results log (Manager.GetResults), filtered. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "exit-codes.h"
#include "output.h"
#include "stm32isp-keys.h"
#include "stm32isp.h"
#include "util.h"

static const char *str_or(json_object *e, const char *key, const char *dflt) {
        const char *s = json_get_string(e, key);

        return s && *s ? s : dflt;
}

static void print_text(json_object *entries) {
        size_t n = json_object_array_length(entries), pass = 0;

        if (n == 0) {
                printf("No results.\n");
                return;
        }
        printf("%-19s  %-14s %-9s %-6s %-16s %-24s %-10s %-16s %s\n",
               "TIME", "PORT", "OPERATION", "RESULT", "CHIP", "UID", "SERIAL", "IMAGE", "ERROR");
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(entries, i);
                int64_t usec = json_get_int(e, "timestamp_usec");
                const char *port = str_or(e, "port", "-"), *result = str_or(e, "result", "-");
                const char *error = str_or(e, "error", "");
                const char *slash = strrchr(port, '/');
                char when[32] = "-", serial[24] = "-";
                json_object *sn;

                if (usec >= 0) {
                        time_t t = (time_t) (usec / 1000000);
                        struct tm tm;

                        if (localtime_r(&t, &tm))
                                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
                }
                /* io.github.Stm32Isp1.Error.VerifyFailed -> VerifyFailed */
                if (strrchr(error, '.'))
                        error = strrchr(error, '.') + 1;
                if (streq(result, "pass"))
                        pass++;
                if (json_object_object_get_ex(e, "serial_number", &sn))
                        snprintf(serial, sizeof serial, "%" PRIu64, json_object_get_uint64(sn));
                printf("%-19s  %-14s %-9s %-6s %-16s %-24s %-10s %-16s %s\n", when,
                       slash && startswith(port, "/dev/") ? slash + 1 : port,
                       str_or(e, "operation", "-"), result, str_or(e, "chip_name", "-"), str_or(e, "uid", "-"),
                       serial, str_or(e, "image_name", "-"), error);
        }
        printf("\n%zu %s: %zu passed, %zu failed.\n", n, n == 1 ? "entry" : "entries", pass, n - pass);
}

static void tally_add(json_object *counts, const char *key) {
        json_object *v;

        if (json_object_object_get_ex(counts, key, &v))
                json_object_set_int64(v, json_object_get_int64(v) + 1);
        else
                json_object_object_add(counts, key, json_object_new_int64(1));
}

static int by_count(const void *a, const void *b) {
        json_object *const *x = a, *const *y = b;
        int64_t cx = json_object_get_int64(json_object_object_get(*x, "count"));
        int64_t cy = json_object_get_int64(json_object_object_get(*y, "count"));

        if (cx != cy)
                return cx > cy ? -1 : 1;
        return strcmp(json_object_get_string(json_object_object_get(*x, "reason")),
                      json_object_get_string(json_object_object_get(*y, "reason")));
}

/* {"passed", "failed", "yield", "failures": [{"reason", "count"}...]} */
static json_object *stats_of(json_object *passed, json_object *failed, json_object *reasons) {
        json_object *o = json_object_new_object(), *list = json_object_new_array();
        int64_t p = json_object_get_int64(passed), f = json_object_get_int64(failed);

        json_object_object_add(o, "passed", json_object_new_int64(p));
        json_object_object_add(o, "failed", json_object_new_int64(f));
        json_object_object_add(o, "yield", json_object_new_double(p + f > 0 ? (double) p / (double) (p + f) : 0.0));
        json_object_object_foreach(reasons, reason, count) {
                json_object *r = json_object_new_object();

                json_object_object_add(r, "reason", json_object_new_string(reason));
                json_object_object_add(r, "count", json_object_get(count));
                json_object_array_add(list, r);
        }
        json_object_array_sort(list, by_count);
        json_object_object_add(o, "failures", list);
        return o;
}

/* log --stats: Flash results per slot (the adapter's USB path, else the port) and in
 * total; a failure's reason is its error name without the prefix. */
static int print_stats(const Args *a, json_object *entries) {
        _cleanup_json_ json_object *slots = json_object_new_object(), *out = json_object_new_object();
        json_object *total = json_object_new_object(), *list = json_object_new_array();

        json_object_object_add(total, "passed", json_object_new_int64(0));
        json_object_object_add(total, "failed", json_object_new_int64(0));
        json_object_object_add(total, "reasons", json_object_new_object());
        for (size_t i = 0; i < json_object_array_length(entries); i++) {
                json_object *e = json_object_array_get_idx(entries, i), *slot;
                const char *op = str_or(e, "operation", ""), *result = str_or(e, "result", "");
                const char *where = str_or(e, "physical_path", str_or(e, "port", "-"));
                const char *error = str_or(e, "error", "unknown");

                if (strcasecmp(op, "flash") != 0)
                        continue;
                if (!json_object_object_get_ex(slots, where, &slot)) {
                        slot = json_object_new_object();
                        json_object_object_add(slot, "port", json_object_new_string(str_or(e, "port", "-")));
                        json_object_object_add(slot, "passed", json_object_new_int64(0));
                        json_object_object_add(slot, "failed", json_object_new_int64(0));
                        json_object_object_add(slot, "reasons", json_object_new_object());
                        json_object_object_add(slots, where, slot);
                }
                if (strrchr(error, '.'))
                        error = strrchr(error, '.') + 1;
                for (json_object *t = slot;; t = total) {
                        json_object *n = json_object_object_get(t, streq(result, "pass") ? "passed" : "failed");

                        json_object_set_int64(n, json_object_get_int64(n) + 1);
                        if (!streq(result, "pass"))
                                tally_add(json_object_object_get(t, "reasons"), error);
                        if (t == total)
                                break;
                }
        }
        json_object_object_foreach(slots, where, slot) {
                json_object *s = stats_of(json_object_object_get(slot, "passed"), json_object_object_get(slot, "failed"),
                                          json_object_object_get(slot, "reasons"));

                json_object_object_add(s, "slot", json_object_new_string(where));
                json_object_object_add(s, "port", json_object_get(json_object_object_get(slot, "port")));
                json_object_array_add(list, s);
        }
        json_object_object_add(out, "slots", list);
        json_object_object_add(out, "total", stats_of(json_object_object_get(total, "passed"),
                                                      json_object_object_get(total, "failed"),
                                                      json_object_object_get(total, "reasons")));
        json_object_put(total);
        if (a->json) {
                json_print(stdout, out, false);
                return EXIT_OK;
        }
        if (a->quiet)
                return EXIT_OK;
        for (size_t i = 0; i <= json_object_array_length(list); i++) {
                bool is_total = i == json_object_array_length(list);
                json_object *s = is_total ? json_object_object_get(out, "total") : json_object_array_get_idx(list, i);
                json_object *failures = json_object_object_get(s, "failures");
                int64_t p = json_get_int(s, "passed"), f = json_get_int(s, "failed");

                printf("%s: %" PRId64 " passed, %" PRId64 " failed, yield %.1f%%\n",
                       is_total ? "Total" : str_or(s, "port", "-"),
                       p, f, p + f > 0 ? 100.0 * (double) p / (double) (p + f) : 0.0);
                if (!is_total && !streq(str_or(s, "slot", ""), str_or(s, "port", "")))
                        printf("  slot %s\n", str_or(s, "slot", "-"));
                for (size_t k = 0; k < json_object_array_length(failures); k++) {
                        json_object *r = json_object_array_get_idx(failures, k);

                        printf("  %6" PRId64 "  %s\n", json_get_int(r, "count"), str_or(r, "reason", "-"));
                }
        }
        return EXIT_OK;
}

int cmd_log(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_json_ json_object *entries = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &call, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                           STM32ISP_MANAGER_INTERFACE, "GetResults");
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && a->result)
                r = client_append_option(call, STM32ISP_KEY_RESULT, "s", a->result);
        if (r >= 0 && a->uid)
                r = client_append_option(call, STM32ISP_KEY_UID, "s", a->uid);
        if (r >= 0 && a->have_serial)
                r = client_append_option(call, STM32ISP_KEY_SERIAL_NUMBER, "t", a->serial);
        if (r >= 0 && a->n_pos > 0)
                r = client_append_option(call, STM32ISP_KEY_PORT, "s", a->pos[0]);
        if (r >= 0 && a->since_usec)
                r = client_append_option(call, STM32ISP_KEY_SINCE, "t", a->since_usec);
        if (r >= 0 && a->until_usec)
                r = client_append_option(call, STM32ISP_KEY_UNTIL, "t", a->until_usec);
        if (r >= 0 && a->limit)
                r = client_append_option(call, STM32ISP_KEY_LIMIT, "u", a->limit);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;

        r = sd_bus_call(c->bus, call, 0, &error, &reply);
        if (r < 0) {
                r = client_report_error(c, "log", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        r = json_from_bus_message(reply, &entries);
        if (r < 0 || !json_object_is_type(entries, json_type_array)) {
                return failure_printf(EXIT_FAILURE_GENERIC, "log: cannot read the reply");
        }

        if (a->stats)
                return print_stats(a, entries);
        if (a->json) {
                for (size_t i = 0; i < json_object_array_length(entries); i++)
                        json_print(stdout, json_object_array_get_idx(entries, i), false);
        } else if (!a->quiet)
                print_text(entries);
        return EXIT_OK;
}
