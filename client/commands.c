/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "exit-codes.h"
#include "fileio.h"
#include "output.h"
#include "stm32isp-keys.h"
#include "stm32isp.h"
#include "util.h"

static int add_bool_opt(sd_bus_message *m, const char *key, int v) {
        return v < 0 ? 0 : client_append_option(m, key, "b", v);
}

/* Options every port job understands: the line and how to enter the bootloader. */
static int add_line_opts(sd_bus_message *m, const Args *a) {
        int r = 0;

        if (a->have_baud)
                r = client_append_option(m, STM32ISP_KEY_BAUDRATE, "u", a->baud);
        if (r >= 0 && a->entry)
                r = client_append_option(m, STM32ISP_KEY_ENTRY, "s", a->entry);
        if (r >= 0 && a->detach)
                r = client_append_option(m, STM32ISP_KEY_DETACH, "b", 1);
        if (r >= 0 && a->trace_fd >= 0)
                r = client_append_option(m, STM32ISP_KEY_TRACE_FD, "h", a->trace_fd);
        if (r >= 0 && a->trace_fd >= 0 && a->json)
                r = client_append_option(m, STM32ISP_KEY_TRACE_FORMAT, "s", STM32ISP_TRACE_FORMAT_JSON);
        return r;
}

/* The options of a method that takes only those, and Lock's and Unlock's force (--force
 * is taken by flash, lock and unlock alone). */
static int add_line_dict(sd_bus_message *m, const Args *a) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0)
                r = add_line_opts(m, a);
        if (r >= 0 && a->force)
                r = client_append_option(m, STM32ISP_KEY_FORCE, "b", 1);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

static int new_port_call(ClientBus *c, const char *path, const char *method, sd_bus_message **ret) {
        return sd_bus_message_new_method_call(c->bus, ret, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, method);
}

static json_object *json_header(const char *operation, const char *port) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "operation", json_object_new_string(operation));
        if (port)
                json_object_object_add(o, "port", json_object_new_string(port));
        return o;
}

static int resolve(ClientBus *c, const Args *a, const char *name, char **ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = client_resolve_port(c, name, ret, &error);
        if (r < 0) {
                _cleanup_free_ char *what = NULL;

                r = client_report_error(c, asprintf(&what, "port %s", name) < 0 ? name : what, &error, r);
        }
        sd_bus_error_free(&error);
        return r;
}

_printf_(6, 7) static void print_resultf(const Args *a, const char *operation, const char *port, const char *key,
                                        json_object *result, const char *fmt, ...);

/* Runs one Port method; on success *ret_result holds the reply's first value as JSON
 * (NULL for an empty reply), or, with --detach once the job started, {"detached": true}
 * (printed already). Returns an exit code. */
static int run_job(ClientBus *c, const Args *a, const char *operation, const char *port, const char *path,
                   sd_bus_message *call, json_object **ret_result) {
        _cleanup_(progress_freep) Progress *progress = NULL;
        JobResult j;
        int r, code;

        *ret_result = NULL;
        r = progress_new(stderr, progress_mode_for(stderr, a->quiet), &progress);
        if (r < 0)
                return EXIT_FAILURE_GENERIC;

        r = client_run_job(c, path, call, progress, a->detach, &j);
        progress = progress_free(progress);
        if (r >= 0 && j.started) {
                /* --detach: the job runs on in the daemon without us. The caller
                 * prints nothing more (is_detached()). */
                json_object *o = json_object_new_object();

                if (!o)
                        return EXIT_FAILURE_GENERIC;
                json_object_object_add(o, "detached", json_object_new_boolean(true));
                print_resultf(a, operation, port, "result", o,
                              "Started %s on %s; it runs on without this client. Follow it with "
                              "'stm32ispctl monitor', its result with 'stm32ispctl log %s --limit 1'.",
                              operation, port, port);
                job_result_done(&j);
                *ret_result = o;
                return EXIT_OK;
        }
        if (r < 0 && !j.interrupted) {
                code = client_report_error(c, operation, &j.error, r);
                job_result_done(&j);
                return code;
        }

        if (!j.reply) {
                _cleanup_free_ char *what = NULL;

                if (j.interrupted) {
                        code = EXIT_INTERRUPTED;
                        if (!a->quiet)
                                fprintf(stderr, "stm32ispctl: %s %s: cancelled.\n", operation, port);
                        failure_record(code, NULL, "cancelled");
                } else
                        code = client_report_error(c, asprintf(&what, "%s %s", operation, port) < 0 ? operation : what,
                                                   &j.error, j.r);
                job_result_done(&j);
                return code;
        }

        if (j.interrupted && !a->quiet)
                fprintf(stderr, "stm32ispctl: %s %s: finished before the cancel took effect.\n", operation, port);
        if (sd_bus_message_at_end(j.reply, true) == 0) {
                r = json_from_bus_message(j.reply, ret_result);
                if (r < 0) {
                        job_result_done(&j);
                        return failure_printf(EXIT_FAILURE_GENERIC, "%s: cannot parse the reply: %s", operation,
                                              strerror(-r));
                }
        }
        job_result_done(&j);
        return EXIT_OK;
}

static bool is_detached(json_object *result) {
        json_object *v;

        return json_object_is_type(result, json_type_object) && json_object_object_get_ex(result, "detached", &v) &&
               json_object_get_boolean(v);
}

/* The chip's flash layout, from a Probe: what read and erase --pages need for their
 * defaults. */
static int probe_layout(ClientBus *c, const Args *a, const char *operation, const char *port, const char *path,
                        uint64_t *ret_base, uint64_t *ret_size, uint64_t *ret_page) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *chip = NULL;
        int64_t base, size, page;
        int r;

        if (new_port_call(c, path, "Probe", &call) < 0 || add_line_dict(call, a) < 0)
                return EXIT_FAILURE_GENERIC;
        r = run_job(c, a, operation, port, path, call, &chip);
        if (r != 0)
                return r;
        base = json_get_int(chip, "flash_base");
        size = json_get_int(chip, "flash_size");
        page = json_get_int(chip, "page_size");
        if (base < 0 || size <= 0 || page <= 0) {
                return failure_printf(EXIT_UNSUPPORTED_CHIP,
                                      "%s %s: the chip's flash layout is unknown; give --address and --length",
                                      operation, port);
        }
        *ret_base = (uint64_t) base;
        *ret_size = (uint64_t) size;
        *ret_page = (uint64_t) page;
        return 0;
}

/* The flash layout in the port's Chip property (the last probe's), without a job.
 * Returns 0 when known. */
static int known_layout(ClientBus *c, const char *path, uint64_t *ret_base, uint64_t *ret_size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *chip = NULL;
        int64_t base, size;

        if (sd_bus_get_property(c->bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "Chip", NULL, &reply,
                                "a{sv}") < 0 ||
            json_from_bus_message(reply, &chip) < 0)
                return -ENODATA;
        base = json_get_int(chip, "flash_base");
        size = json_get_int(chip, "flash_size");
        if (base < 0 || size <= 0)
                return -ENODATA;
        *ret_base = (uint64_t) base;
        *ret_size = (uint64_t) size;
        return 0;
}

/* Prints {operation, port, KEY: result} as JSON, or the text. */
static void print_result(const Args *a, const char *operation, const char *port, const char *key, json_object *result,
                         const char *summary) {
        if (a->json) {
                _cleanup_json_ json_object *o = json_header(operation, port);

                json_object_object_add(o, key, result ? json_object_get(result) : NULL);
                json_print(stdout, o, false);
                return;
        }
        if (a->quiet)
                return;
        if (summary)
                printf("%s\n", summary);
        if (result && json_object_is_type(result, json_type_object))
                text_print_object(stdout, result, 2, 0);
        fflush(stdout);
}

/* print_result() with the summary line formatted (out of memory: no summary). */
_printf_(6, 7) static void print_resultf(const Args *a, const char *operation, const char *port, const char *key,
                                        json_object *result, const char *fmt, ...) {
        _cleanup_free_ char *summary = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&summary, fmt, ap) < 0)
                summary = NULL;
        va_end(ap);
        print_result(a, operation, port, key, result, summary);
}

/* ---- list ---- */

static const char *chip_name(json_object *chip) {
        const char *n = json_get_string(chip, "name");

        return n && *n ? n : NULL;
}

static const char *port_sort_key(json_object *p) {
        return json_get_string(p, "device") ?: json_get_string(p, "object") ?: "";
}

static int compare_ports(const void *x, const void *y) {
        return strverscmp(port_sort_key(*(json_object *const *) x), port_sort_key(*(json_object *const *) y));
}

/* A configured auto-flash profile the daemon refused (a misspelt key) arms nothing: the
 * station would wait for flashes that never come, so `list` says so, on stderr. */
static void warn_autoflash_refused(ClientBus *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *af = NULL;
        const char *why;

        if (sd_bus_get_property(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE, "AutoFlash",
                                NULL, &reply, "a{sv}") < 0 ||
            json_from_bus_message(reply, &af) < 0)
                return;
        why = json_get_string(af, "error");
        if (why)
                fprintf(stderr, "stm32ispctl: the auto-flash profile is not armed: %s (see the daemon's log)\n", why);
}

int cmd_list(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *objects = NULL, *ports = json_object_new_array();
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, &reply, "");
        if (r < 0) {
                r = client_report_error(c, "list", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        r = json_from_bus_message(reply, &objects);
        if (r < 0) {
                return failure_printf(EXIT_FAILURE_GENERIC, "list: cannot parse the reply: %s", strerror(-r));
        }

        json_object_object_foreach(objects, path, ifaces) {
                json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
                json_object *o;

                if (!props)
                        continue;
                o = json_object_new_object();
                json_object_object_add(o, "object", json_object_new_string(path));
                /* Given out as snake_case, like every key the client prints (VendorId ->
                 * vendor_id). */
                json_object_object_foreach(props, k, v) {
                        char key[64];

                        json_object_object_add(o, snake_case(k, key, sizeof key), json_object_get(v));
                }
                json_object_array_add(ports, o);
        }

        /* By port name (ttyUSB2 before ttyUSB10), not in the daemon's order. */
        json_object_array_sort(ports, compare_ports);
        if (a->json) {
                json_print(stdout, ports, false);
                return EXIT_OK;
        }
        if (!a->quiet)
                warn_autoflash_refused(c);

        size_t n = json_object_array_length(ports);
        if (n == 0) {
                if (!a->quiet)
                        printf("No ports.\n");
                return EXIT_OK;
        }
        /* Columns as wide as their widest cell. */
        enum { COL_DEVICE, COL_ADAPTER, COL_SERIAL, COL_PATH, COL_STATE, COL_CHIP, _COL_MAX };
        static const char *const headers[_COL_MAX] = { "DEVICE", "ADAPTER", "SERIAL", "PHYSICAL PATH", "STATE", "CHIP" };
        char (*cells)[_COL_MAX][128] = calloc(n, sizeof *cells);
        int width[_COL_MAX];

        if (!cells)
                return EXIT_FAILURE_GENERIC;
        for (unsigned k = 0; k < _COL_MAX; k++)
                width[k] = (int) strlen(headers[k]);
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(ports, i);
                int64_t vid = json_get_int(p, "vendor_id"), pid = json_get_int(p, "product_id");
                const char *product = json_get_string(p, "product"), *dev = json_get_string(p, "device");
                const char *serial = json_get_string(p, "serial"), *phys = json_get_string(p, "physical_path");
                const char *state = json_get_string(p, "state"), *chip = chip_name(json_get(p, "chip"));

                snprintf(cells[i][COL_DEVICE], 128, "%s", dev ?: json_get_string(p, "object"));
                if (vid > 0 || pid > 0)
                        snprintf(cells[i][COL_ADAPTER], 128, "%04" PRIx64 ":%04" PRIx64 "%s%s", vid, pid,
                                 product && *product ? " " : "", product ? product : "");
                else
                        snprintf(cells[i][COL_ADAPTER], 128, "%s", json_get_string(p, "transport") ?: "-");
                snprintf(cells[i][COL_SERIAL], 128, "%s", serial && *serial ? serial : "-");
                snprintf(cells[i][COL_PATH], 128, "%s", phys && *phys ? phys : "-");
                snprintf(cells[i][COL_STATE], 128, "%s", state ?: "-");
                snprintf(cells[i][COL_CHIP], 128, "%s", chip ?: "-");
                for (unsigned k = 0; k < _COL_MAX; k++)
                        width[k] = MAX(width[k], (int) strlen(cells[i][k]));
        }
        for (unsigned k = 0; k < _COL_MAX; k++)
                printf("%-*s%s", k + 1 < _COL_MAX ? width[k] : 0, headers[k], k + 1 < _COL_MAX ? "  " : "\n");
        for (size_t i = 0; i < n; i++)
                for (unsigned k = 0; k < _COL_MAX; k++)
                        printf("%-*s%s", k + 1 < _COL_MAX ? width[k] : 0, cells[i][k], k + 1 < _COL_MAX ? "  " : "\n");
        free(cells);
        return EXIT_OK;
}

/* ---- info ---- */

/* C0/G0: the boot selection bits of FLASH_OPTR, when the daemon sent OPTR but did not
 * decode it. */
static void decode_boot_bits(json_object *chip) {
        const char *name = chip_name(chip), *family = json_get_string(chip, "family");
        int64_t optr = json_get_int(chip, "optr");

        if (optr < 0 || json_get(chip, "nboot_sel"))
                return;
        if (!(family && (strcasecmp(family, "g0") == 0 || strcasecmp(family, "c0") == 0)) &&
            !(name && (strcasestr(name, "STM32G0") || strcasestr(name, "STM32C0"))))
                return;
        json_object_object_add(chip, "nboot_sel", json_object_new_int((optr >> 24) & 1));
        json_object_object_add(chip, "nboot1", json_object_new_int((optr >> 25) & 1));
        json_object_object_add(chip, "nboot0", json_object_new_int((optr >> 26) & 1));
}

int cmd_info(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *chip = NULL;
        _cleanup_free_ char *path = NULL;
        const char *port = a->pos[0];
        int r;

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;
        if (new_port_call(c, path, "Probe", &call) < 0 || add_line_dict(call, a) < 0)
                return EXIT_FAILURE_GENERIC;
        r = run_job(c, a, "info", port, path, call, &chip);
        if (r != 0)
                return r;
        decode_boot_bits(chip);
        /* The bootloader's commands by name for people (JSON keeps both keys). */
        json_object *names = json_get(chip, "command_names");
        if (!a->json && names && json_object_is_type(names, json_type_array)) {
                _cleanup_free_ char *list = NULL;

                for (size_t i = 0; i < json_object_array_length(names); i++) {
                        const char *n = json_object_get_string(json_object_array_get_idx(names, i));
                        char *l;

                        if (asprintf(&l, "%s%s%s", list ?: "", list ? ", " : "", n ?: "?") < 0)
                                return EXIT_FAILURE_GENERIC;
                        free(list);
                        list = l;
                }
                json_object_object_add(chip, "commands", json_object_new_string(list ?: "none"));
                json_object_object_del(chip, "command_names");
        }

        const char *name = chip_name(chip);
        print_resultf(a, "info", port, "chip", chip, "%s on %s:", name ? name : "Chip", port);
        return EXIT_OK;
}

/* ---- diagnose ---- */

static void print_kv_line(const char *label, const char *fmt, ...) _printf_(2, 3);
static void print_kv_line(const char *label, const char *fmt, ...) {
        va_list ap;

        printf("  %-12s ", label);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
}

static const char *str_or(json_object *o, const char *key, const char *fallback) {
        const char *v = json_get_string(o, key);

        return v && *v ? v : fallback;
}

/* The diagnosis for people: adapter, chip, option fields, boot, checks, warnings. */
static void print_diagnosis(const char *port, json_object *d) {
        json_object *adapter = json_get(d, "adapter"), *chip = json_get(d, "chip"), *boot = json_get(d, "boot");
        json_object *options = json_get(d, "options"), *checks = json_get(d, "checks"), *warnings = json_get(d, "warnings");
        json_object *names = json_get(chip, "command_names");
        int64_t latency = json_get_int(adapter, "latency_usec"), trips = json_get_int(adapter, "flash_verify_32k_round_trips");
        size_t n_hold = 0, n_differ = 0, n_unchecked = 0;
        char size[32];

        printf("Diagnosis of %s: %s (product ID 0x%03" PRIx64 ")\n\nAdapter\n", port, str_or(chip, "name", "unknown chip"),
               json_get_int(chip, "pid"));
        print_kv_line("device", "%s (%s), driver %s", str_or(adapter, "device", "?"), str_or(adapter, "transport", "?"),
                      str_or(adapter, "driver", "unknown"));
        if (json_get_int(adapter, "vendor_id") > 0)
                print_kv_line("usb", "%04" PRIx64 ":%04" PRIx64 " %s %s, serial %s", json_get_int(adapter, "vendor_id"),
                              json_get_int(adapter, "product_id"), str_or(adapter, "manufacturer", ""),
                              str_or(adapter, "product", ""), str_or(adapter, "serial", "none"));
        print_kv_line("baud", "%" PRId64 "; driver low-latency mode %s", json_get_int(adapter, "baudrate"),
                      json_object_get_boolean(json_get(adapter, "low_latency")) ? "on" : "not available");
        if (json_get_int(adapter, "latency_timer_ms") > 0)
                print_kv_line("", "FTDI latency_timer %" PRId64 " ms", json_get_int(adapter, "latency_timer_ms"));
        if (latency >= 0)
                print_kv_line("latency", "%.2f ms per reply (median of %" PRId64 " Get ID round trips); a 32 KiB flash "
                              "+ verify takes %" PRId64 " round trips: %.2f s of waiting", latency / 1000.0,
                              json_get_int(adapter, "latency_round_trips"), trips,
                              (double) json_get_int(adapter, "flash_verify_32k_latency_usec") / 1e6);

        printf("\nChip\n");
        print_kv_line("family", "%s", str_or(chip, "family", "?"));
        print_kv_line("bootloader", "protocol %s (Get Version 0x%02" PRIx64 "), ID byte 0x%02" PRIx64 " (table 0x%02" PRIx64 ")",
                      str_or(chip, "bootloader_version", "?"), json_get_int(chip, "get_version"),
                      json_get_int(chip, "bootloader_id"), json_get_int(chip, "bootloader_id_table"));
        if (json_object_is_type(names, json_type_array)) {
                printf("  %-12s ", "commands");
                for (size_t i = 0; i < json_object_array_length(names); i++)
                        printf("%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(names, i)));
                printf("\n");
        }
        print_kv_line("flash", "%s (register %" PRId64 " KiB, table at most %" PRId64 " KiB)",
                      format_bytes(size, sizeof size, (uint64_t) MAX(json_get_int(chip, "flash_size"), 0)),
                      json_get_int(chip, "flash_size_register_kib"), MAX(json_get_int(chip, "flash_size_table"), 0) / 1024);
        print_kv_line("uid", "%s", str_or(chip, "uid", "not readable"));
        print_kv_line("protection", "read protection level %" PRId64, json_get_int(chip, "rdp_level"));
        if (json_get_int(chip, "first_word") >= 0)
                print_kv_line("first word", "0x%08" PRIx64, json_get_int(chip, "first_word"));

        if (json_object_is_type(options, json_type_array) && json_object_array_length(options) > 0) {
                printf("\nOption bytes (OPTR 0x%08" PRIx64 ")\n", json_get_int(chip, "optr"));
                for (size_t i = 0; i < json_object_array_length(options); i++) {
                        json_object *o = json_object_array_get_idx(options, i);

                        printf("  %-12s 0x%-8" PRIx64 " %s\n", str_or(o, "name", "?"), json_get_int(o, "value"),
                               str_or(o, "meaning", ""));
                }
        }
        printf("\nBoot\n  %s\n", str_or(boot, "summary", "unknown"));

        if (json_object_is_type(checks, json_type_array)) {
                printf("\nWhat the project infers, checked on this chip\n");
                for (size_t i = 0; i < json_object_array_length(checks); i++) {
                        json_object *k = json_object_array_get_idx(checks, i);
                        const char *verdict = str_or(k, "verdict", "?");

                        n_hold += streq(verdict, "holds");
                        n_differ += streq(verdict, "differs");
                        n_unchecked += streq(verdict, "not_checked");
                        printf("  %-11s %s\n  %-11s   %s: %s\n", verdict, str_or(k, "inference", "?"), "",
                               streq(verdict, "differs") ? "the chip said" : "found", str_or(k, "found", ""));
                }
        }
        if (json_object_is_type(warnings, json_type_array) && json_object_array_length(warnings) > 0) {
                printf("\nWarnings\n");
                for (size_t i = 0; i < json_object_array_length(warnings); i++)
                        printf("  ! %s\n", json_object_get_string(json_object_array_get_idx(warnings, i)));
        }
        printf("\n%zu hold, %zu differ, %zu not checked read-only.%s\n", n_hold, n_differ, n_unchecked,
               n_differ ? " Please send the report (stm32ispctl diagnose PORT --report FILE) to the project." : "");
}

/* --report FILE: the diagnosis with what the project needs to read it (and the job's wire
 * trace: trace_fd is the memfd the daemon wrote it to, JSON; -1 when --trace sent it to
 * the user's file), written whole (a temporary renamed over FILE). */
static int write_report(const Args *a, const char *port, json_object *diagnosis, int trace_fd) {
        _cleanup_json_ json_object *o = json_object_new_object();
        ReplaceFile f = { .fd = -1 };
        const char *text;
        char ts[64];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!o)
                return -ENOMEM;
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        json_object_object_add(o, "report", json_object_new_string("stm32ispctl diagnose"));
        json_object_object_add(o, "client_version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(o, "created", json_object_new_string(ts));
        json_object_object_add(o, "port", json_object_new_string(port));
        json_object_object_add(o, "diagnosis", json_object_get(diagnosis));
        if (trace_fd >= 0) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t n = 0;
                json_object *trace = NULL;

                /* the trace is an extra: without it the report still goes out */
                if (read_regular_fd(trace_fd, 16 * 1024 * 1024, &buf, &n) >= 0 && n > 0) {
                        _cleanup_free_ char *str = strndup((const char *) buf, n);

                        trace = str ? json_tokener_parse(str) : NULL;
                        if (!trace && str)
                                trace = json_object_new_string(str);
                }
                json_object_object_add(o, "trace", trace);
        } else
                json_object_object_add(o, "trace_note", json_object_new_string(a->trace ? a->trace : "no trace"));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);

        r = replace_file_open(a->report, &f);
        if (r >= 0)
                r = write_all(f.fd, text, strlen(text));
        if (r >= 0)
                r = write_all(f.fd, "\n", 1);
        if (r >= 0)
                r = replace_file_commit(&f);
        replace_file_done(&f);
        return r;
}

int cmd_diagnose(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *diagnosis = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int trace_fd = -1;
        const char *port = a->pos[0];
        Args line = *a;
        int r;

        /* --report bundles the job's wire trace (as JSON), unless --trace asked for it in a
         * file of its own */
        if (a->report && a->trace_fd < 0) {
                trace_fd = memfd_create("stm32ispctl-trace", MFD_CLOEXEC);
                if (trace_fd < 0) {
                        fprintf(stderr, "stm32ispctl: memfd_create: %m\n");
                        return EXIT_FAILURE_GENERIC;
                }
                line.trace_fd = trace_fd;
                line.json = true;       /* the trace's format */
        }
        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;
        if (new_port_call(c, path, "Diagnose", &call) < 0 || add_line_dict(call, &line) < 0)
                return EXIT_FAILURE_GENERIC;
        r = run_job(c, a, "diagnose", port, path, call, &diagnosis);
        if (r != 0)
                return r;
        if (a->report) {
                r = write_report(a, port, diagnosis, trace_fd);
                if (r < 0) {
                        fprintf(stderr, "stm32ispctl: diagnose: cannot write %s: %s\n", a->report, strerror(-r));
                        return EXIT_FAILURE_GENERIC;
                }
        }
        if (a->json)
                print_result(a, "diagnose", port, "diagnosis", diagnosis, NULL);
        else if (!a->quiet) {
                print_diagnosis(port, diagnosis);
                if (a->report)
                        printf("The report is in %s: attach it to an issue.\n", a->report);
        }
        return EXIT_OK;
}

/* ---- flash ---- */

static int copy_to_memfd(int in, const char *name) {
        _cleanup_close_ int mfd = memfd_create("stm32ispctl-image", MFD_CLOEXEC);
        char buf[64 * 1024];
        int r;

        if (mfd < 0) {
                return -failure_printf(EXIT_FAILURE_GENERIC, "memfd_create: %m");
        }
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        return -failure_printf(EXIT_FILE_ERROR, "cannot read %s: %m", name);
                }
                if (n == 0)
                        break;
                r = write_all(mfd, buf, (size_t) n);
                if (r < 0) {
                        return -failure_printf(EXIT_FAILURE_GENERIC, "memfd: %s", strerror(-r));
                }
        }
        return TAKE_FD(mfd);
}

/* The one port the daemon knows (flash IMAGE without a port, as a seed tool finds its
 * port by itself); with none or several: a usage error that lists them. */
static int only_port(ClientBus *c, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *objects = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *list = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, &reply, "");
        if (r < 0) {
                r = client_report_error(c, "flash", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        if (json_from_bus_message(reply, &objects) < 0)
                return EXIT_FAILURE_GENERIC;
        json_object_object_foreach(objects, path, ifaces) {
                json_object *props = json_object_object_get(ifaces, STM32ISP_PORT_INTERFACE);
                const char *dev = props ? json_get_string(props, "Device") : NULL;
                char *l;

                (void) path;
                if (!dev)
                        continue;
                if (asprintf(&l, "%s  %s\n", list ?: "", dev) < 0)
                        return EXIT_FAILURE_GENERIC;
                free(list);
                list = l;
                if (n++ == 0 && !(*ret = strdup(dev)))
                        return EXIT_FAILURE_GENERIC;
        }
        if (n == 1)
                return 0;
        if (n > 0)
                *ret = mfree(*ret);
        return failure_printf(EXIT_USAGE, "flash: %s; name the port: stm32ispctl flash PORT FILE\n%s",
                              n == 0 ? "the daemon knows no port" : "several ports are known", list ?: "");
}

int client_open_image(Args *a, const char *file) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        /* The client opens the image: the daemon never opens a path a caller names. */
        fd = streq(file, "-") ? dup(STDIN_FILENO) : open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return failure_printf(EXIT_FILE_ERROR, "cannot open %s: %m", file);
        if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode))
                return failure_printf(EXIT_FILE_ERROR, "%s is a directory", file);
        /* The daemon reads a regular file from its start: a pipe (stdin, <(...)) goes
         * through a memfd. */
        if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) {
                r = copy_to_memfd(fd, file);
                if (r < 0)
                        return -r;
                safe_close(fd);
                fd = r;
        }
        a->image_fd = TAKE_FD(fd);
        return 0;
}

int flash_append_options(sd_bus_message *call, const Args *a, const char *file) {
        int r = 0;

        if (a->have_address)
                r = client_append_option(call, STM32ISP_KEY_ADDRESS, "t", a->address);
        if (r >= 0 && a->format)
                r = client_append_option(call, STM32ISP_KEY_FORMAT, "s", a->format);
        if (r >= 0 && a->erase)
                r = client_append_option(call, STM32ISP_KEY_ERASE, "s", a->erase);
        if (r >= 0)
                r = add_bool_opt(call, STM32ISP_KEY_VERIFY, a->verify);
        if (r >= 0)
                r = add_bool_opt(call, STM32ISP_KEY_UNPROTECT, a->unprotect);
        if (r >= 0)
                r = add_bool_opt(call, STM32ISP_KEY_PROTECT, a->protect);
        if (r >= 0)
                r = add_bool_opt(call, STM32ISP_KEY_BOOT0, a->boot0);
        if (r >= 0)
                r = add_bool_opt(call, STM32ISP_KEY_GO, a->go);
        if (r >= 0 && a->force)
                r = client_append_option(call, STM32ISP_KEY_FORCE, "b", 1);
        if (r >= 0 && a->have_sn_address)
                r = client_append_option(call, STM32ISP_KEY_SN_ADDRESS, "t", a->sn_address);
        if (r >= 0 && a->have_sn_first)
                r = client_append_option(call, STM32ISP_KEY_SN_FIRST, "t", a->sn_first);
        if (r >= 0 && a->have_sn_step)
                r = client_append_option(call, STM32ISP_KEY_SN_STEP, "t", a->sn_step);
        if (r >= 0 && a->sn_format)
                r = client_append_option(call, STM32ISP_KEY_SN_FORMAT, "s", a->sn_format);
        if (r >= 0 && a->sn_counter)
                r = client_append_option(call, STM32ISP_KEY_SN_COUNTER, "s", a->sn_counter);
        if (r >= 0)
                r = add_line_opts(call, a);
        /* The name the results log records next to the image's SHA-256. */
        if (r >= 0) {
                const char *base = strrchr(file, '/');

                base = streq(file, "-") ? "stdin" : base ? base + 1 : file;
                if (*base && strlen(base) <= 255 && !strpbrk(base, "\n\r"))
                        r = client_append_option(call, STM32ISP_KEY_IMAGE_NAME, "s", base);
        }
        return r;
}

int cmd_flash(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *result = NULL;
        _cleanup_free_ char *path = NULL, *found = NULL;
        _cleanup_close_ int fd = a->image_fd;
        const char *port = a->pos[0], *file = a->n_pos == 2 ? a->pos[1] : a->pos[0];
        int r;

        if (a->n_pos == 1) {
                r = only_port(c, &found);
                if (r != 0)
                        return r;
                port = found;
        }

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;

        if (new_port_call(c, path, "Flash", &call) < 0 || sd_bus_message_append(call, "h", fd) < 0 ||
            sd_bus_message_open_container(call, 'a', "{sv}") < 0)
                return EXIT_FAILURE_GENERIC;
        r = flash_append_options(call, a, file);
        if (r < 0 || sd_bus_message_close_container(call) < 0)
                return EXIT_FAILURE_GENERIC;
        fd = safe_close(fd);    /* the message holds its own copy */

        r = run_job(c, a, "flash", port, path, call, &result);
        if (r != 0 || is_detached(result))
                return r;

        /* How the code was started says what state it starts in (JSON keeps the keys). */
        const char *how = json_get_string(result, "start_method");
        if (how && !a->json) {
                json_object_object_add(result, "started",
                                       json_object_new_string(streq(how, "go") ?
                                                              "yes, by Go (the bootloader's context stays: the code "
                                                              "must set its own VTOR)" :
                                                              "yes, by a reset with BOOT0 low (the exit sequence)"));
                json_object_object_del(result, "start_method");
        }
        int64_t written = json_get_int(result, "bytes_written"), verified = json_get_int(result, "bytes_verified");
        int64_t usec = json_get_int(result, "duration_usec"), kept = json_get_int(result, "preserved_bytes");
        char b[32], k[160] = "";
        if (kept > 0) {
                char kb[32];

                /* an image that starts or ends inside a page: the rest of it was kept */
                snprintf(k, sizeof k, ", %s of its pages kept as they were",
                         format_bytes(kb, sizeof kb, (uint64_t) kept));
        }
        json_object *remembered = json_get(result, "baudrate_remembered");
        if (remembered && json_object_get_boolean(remembered))
                snprintf(k + strlen(k), sizeof k - strlen(k), ", at %" PRId64 " baud (the rate an earlier job left the chip at)",
                         json_get_int(result, "baudrate"));
        /* Which board got it: the chip and its UID (the results log's keys). */
        const char *chip = json_get_string(result, "chip_name"), *uid = json_get_string(result, "uid");
        _cleanup_free_ char *board = NULL;
        if (chip && *chip && asprintf(&board, " (%s%s%s)", chip, uid && *uid ? ", UID " : "", uid ?: "") < 0)
                board = NULL;
        if (written >= 0)
                print_resultf(a, "flash", port, "result", result, "Flashed %s to %s%s: %s written%s%s%s, in %.2f s.",
                              file, port, board ?: "", format_bytes(b, sizeof b, (uint64_t) written),
                              verified > 0 ? ", verified" : "", verified == 0 ? ", not verified" : "", k,
                              usec >= 0 ? usec / 1e6 : 0.0);
        else
                print_resultf(a, "flash", port, "result", result, "Flashed %s to %s%s.", file, port, board ?: "");
        return EXIT_OK;
}

/* ---- erase ---- */

int cmd_erase(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *result = NULL;
        _cleanup_free_ char *path = NULL;
        const char *port = a->pos[0];
        int r = 0;

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;
        uint64_t first = 0, last = 0, base = 0, size = 0, page = 0;
        if (a->pages) {
                char *dash = strchr(a->pages, '-');
                _cleanup_free_ char *f = strndup(a->pages, dash ? (size_t) (dash - a->pages) : strlen(a->pages));

                if (!f || parse_address(f, &first) < 0 || parse_address(dash ? dash + 1 : f, &last) < 0 ||
                    last < first || last > UINT32_MAX) {
                        return failure_printf(EXIT_USAGE, "--pages wants FIRST or FIRST-LAST, not '%s'", a->pages);
                }
                /* Pages -> a range: the page size comes from the chip. */
                r = probe_layout(c, a, "erase", port, path, &base, &size, &page);
                if (r != 0)
                        return r;
                if ((last + 1) * page > size) {
                        return failure_printf(EXIT_USAGE, "erase %s: the flash has %" PRIu64 " pages", port,
                                              size / page);
                }
        }
        if (new_port_call(c, path, "Erase", &call) < 0 || sd_bus_message_open_container(call, 'a', "{sv}") < 0)
                return EXIT_FAILURE_GENERIC;
        if (a->pages) {
                r = client_append_option(call, STM32ISP_KEY_MODE, "s", stm32isp_erase_modes[STM32ISP_ERASE_AUTO]);
                if (r >= 0)
                        r = client_append_option(call, STM32ISP_KEY_ADDRESS, "t", base + first * page);
                if (r >= 0)
                        r = client_append_option(call, STM32ISP_KEY_LENGTH, "t", (last - first + 1) * page);
        } else if (a->have_address || a->have_length) {
                if (!a->have_address || !a->have_length) {
                        return failure_printf(EXIT_USAGE, "erase: --address and --length go together");
                }
                r = client_append_option(call, STM32ISP_KEY_MODE, "s", stm32isp_erase_modes[STM32ISP_ERASE_AUTO]);
                if (r >= 0)
                        r = client_append_option(call, STM32ISP_KEY_ADDRESS, "t", a->address);
                if (r >= 0)
                        r = client_append_option(call, STM32ISP_KEY_LENGTH, "t", a->length);
        } else
                r = client_append_option(call, STM32ISP_KEY_MODE, "s", stm32isp_erase_modes[STM32ISP_ERASE_MASS]);
        if (r >= 0)
                r = add_line_opts(call, a);
        if (r < 0 || sd_bus_message_close_container(call) < 0)
                return EXIT_FAILURE_GENERIC;

        r = run_job(c, a, "erase", port, path, call, &result);
        if (r != 0 || is_detached(result))
                return r;
        print_resultf(a, "erase", port, "result", result, "Erased %s on %s.",
                      a->pages ? "the pages" : a->have_address || a->have_length ? "the range" : "the flash", port);
        return EXIT_OK;
}

/* ---- read ---- */

int cmd_read(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *result = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_(replace_file_done) ReplaceFile out = { .fd = -1 };
        _cleanup_close_ int stdout_fd = -1;
        const char *port = a->pos[0], *file = a->pos[1];
        int fd;
        struct stat st;
        int r;

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;

        /* The old file stays as it was until the read is complete: a failed or
         * cancelled read leaves it (and no temporary) behind. */
        if (streq(file, "-"))
                fd = stdout_fd = dup(STDOUT_FILENO);
        else {
                r = replace_file_open(file, &out);
                fd = r < 0 ? (errno = -r, -1) : out.fd;
        }
        if (fd < 0)
                return failure_printf(EXIT_FILE_ERROR, "cannot create %s: %m", file);
        uint64_t address = a->address, length = a->length, base = 0, size = 0;
        if (a->have_address && a->have_length)
                /* The layout the last probe saw, if any: no traffic for it. */
                (void) known_layout(c, path, &base, &size);
        else {
                uint64_t page;

                /* The defaults: the whole flash, or from --address to its end. */
                r = probe_layout(c, a, "read", port, path, &base, &size, &page);
                if (r != 0)
                        return r;
                if (!a->have_address)
                        address = base;
                if (!a->have_length) {
                        if (address < base || address >= base + size) {
                                return failure_printf(EXIT_USAGE,
                                                      "read: give --length for an address outside the flash");
                        }
                        length = base + size - address;
                }
        }
        /* Past the end of the flash: a wrong length, refused before anything is sent (the
         * daemon refuses it too, once it knows the chip). */
        if (size > 0 && address >= base && address < base + size && address + length > base + size)
                return failure_printf(EXIT_USAGE, "read %s: 0x%08" PRIx64 " + %" PRIu64 " runs past the end of the "
                                      "flash (0x%08" PRIx64 "); the flash ends at 0x%08" PRIx64, port, address, length,
                                      address + length - 1, base + size - 1);
        if (new_port_call(c, path, "Read", &call) < 0 || sd_bus_message_append(call, "htt", fd, address, length) < 0 ||
            add_line_dict(call, a) < 0)
                return EXIT_FAILURE_GENERIC;

        r = run_job(c, a, "read", port, path, call, &result);
        if (r != 0)
                return r;
        if (!streq(file, "-") && fstat(fd, &st) == 0) {
                r = replace_file_commit(&out);
                if (r < 0)
                        return failure_printf(EXIT_FILE_ERROR, "cannot write %s: %s", file, strerror(-r));
                if (!result)
                        result = json_object_new_object();
                if (json_object_is_type(result, json_type_object)) {
                        json_object_object_add(result, "address", json_object_new_int64((int64_t) address));
                        json_object_object_add(result, "bytes_read", json_object_new_int64(st.st_size));
                }
                print_resultf(a, "read", port, "result", result, "Read %jd bytes at 0x%08" PRIx64 " from %s into %s.",
                              (intmax_t) st.st_size, address, port, file);
        } else if (!streq(file, "-") || a->json)
                /* reading to stdout: stdout is the data's, unless --json */
                print_result(a, "read", port, "result", result, NULL);
        return EXIT_OK;
}

/* ---- lock, unlock, go, cancel ---- */

/* Lock and Unlock reply with nothing (the contract's signatures stay): whether they did
 * anything is in the LastResult the daemon set before it replied. True when it says the
 * chip was as asked already. */
/* operation: the job's name as LastResult gives it ("lock", "unlock"). */
static bool nothing_done(ClientBus *c, const char *path, const char *operation, json_object **result) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_object *last = NULL, *v;

        if (sd_bus_get_property(c->bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "LastResult", NULL, &reply,
                                "a{sv}") < 0 ||
            json_from_bus_message(reply, &last) < 0)
                return false;
        if (!json_object_object_get_ex(last, "operation", &v) || !streq(json_object_get_string(v), operation) ||
            !json_object_object_get_ex(last, "nothing_done", &v) || !json_object_get_boolean(v)) {
                json_object_put(last);
                return false;
        }
        json_object_put(*result);
        *result = last;
        return true;
}

static int simple_job(ClientBus *c, const Args *a, const char *operation, const char *method, const char *verb,
                      const char *tail) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_json_ json_object *result = NULL;
        _cleanup_free_ char *path = NULL;
        const char *port = a->pos[0];
        int r;

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;
        if (new_port_call(c, path, method, &call) < 0)
                return EXIT_FAILURE_GENERIC;
        if (streq(method, "Go")) {
                if (sd_bus_message_append(call, "t", a->have_address ? a->address : 0) < 0)
                        return EXIT_FAILURE_GENERIC;
        } else if (add_line_dict(call, a) < 0)
                return EXIT_FAILURE_GENERIC;

        r = run_job(c, a, operation, port, path, call, &result);
        if (r != 0 || is_detached(result))
                return r;
        if (!streq(method, "Go") && nothing_done(c, path, operation, &result)) {
                print_resultf(a, operation, port, "result", result, "%s",
                              streq(method, "Lock") ? "The chip is read-protected already: nothing done."
                                                    : "The chip is not read-protected: nothing done (--force "
                                                      "unlocks it anyway, erasing the flash).");
                return EXIT_OK;
        }
        print_resultf(a, operation, port, "result", result, "%s %s%s", verb, port, tail);
        return EXIT_OK;
}

int cmd_lock(ClientBus *c, const Args *a) {
        return simple_job(c, a, "lock", "Lock", "Locked", " (read protection level 1).");
}

int cmd_unlock(ClientBus *c, const Args *a) {
        return simple_job(c, a, "unlock", "Unlock", "Unlocked", " (read protection removed, the flash erased).");
}

int cmd_go(ClientBus *c, const Args *a) {
        return simple_job(c, a, "go", "Go", "Started the code on",
                          " by Go (the bootloader's context stays: the code must set its own VTOR; a reset with "
                          "BOOT0 low starts it clean).");
}

int cmd_cancel(ClientBus *c, const Args *a) {
        _cleanup_json_ json_object *result = json_object_new_object();
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *state = NULL;
        const char *port = a->pos[0];
        int r;

        r = resolve(c, a, port, &path);
        if (r != 0)
                return r;
        /* What runs now: the answer says what was cancelled (Cancel itself says nothing). */
        r = sd_bus_get_property_string(c->bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "State", &error,
                                       &state);
        if (r >= 0)
                r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "Cancel", &error,
                                       NULL, "");
        if (r < 0) {
                r = client_report_error(c, "cancel", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        bool running = !streq(state, "idle");
        json_object_object_add(result, "cancelled", json_object_new_boolean(running));
        if (running)
                json_object_object_add(result, "state", json_object_new_string(state));
        if (a->json)
                print_result(a, "cancel", port, "result", result, NULL);
        else if (!a->quiet) {
                if (running)
                        printf("Cancelled the job on %s (it was %s).\n", port, state);
                else
                        printf("Nothing ran on %s: nothing to cancel.\n", port);
        }
        return EXIT_OK;
}

int cmd_remove(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        const char *port = a->pos[0];
        int r;

        /* Looked up only: a URL or device the daemon does not know is not added first. */
        r = client_find_port(c, port, &path, &error);
        if (r >= 0)
                r = sd_bus_call_method(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       "RemovePort", &error, &reply, "o", path);
        if (r < 0) {
                _cleanup_free_ char *what = NULL;

                r = client_report_error(c, asprintf(&what, "remove %s", port) < 0 ? "remove" : what, &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        print_resultf(a, "remove", port, "result", NULL, "Removed %s.", port);
        return EXIT_OK;
}
