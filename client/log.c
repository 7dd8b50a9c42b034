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
        printf("%-19s  %-14s %-9s %-6s %-16s %-24s %-16s %s\n",
               "TIME", "PORT", "OPERATION", "RESULT", "CHIP", "UID", "IMAGE", "ERROR");
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(entries, i);
                int64_t usec = json_get_int(e, "timestamp_usec");
                const char *port = str_or(e, "port", "-"), *result = str_or(e, "result", "-");
                const char *error = str_or(e, "error", "");
                const char *slash = strrchr(port, '/');
                char when[32] = "-";

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
                printf("%-19s  %-14s %-9s %-6s %-16s %-24s %-16s %s\n", when,
                       slash && startswith(port, "/dev/") ? slash + 1 : port,
                       str_or(e, "operation", "-"), result, str_or(e, "chip_name", "-"), str_or(e, "uid", "-"),
                       str_or(e, "image_name", "-"), error);
        }
        printf("\n%zu %s: %zu passed, %zu failed.\n", n, n == 1 ? "entry" : "entries", pass, n - pass);
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

        if (a->json) {
                for (size_t i = 0; i < json_object_array_length(entries); i++)
                        json_print(stdout, json_object_array_get_idx(entries, i), false);
        } else if (!a->quiet)
                print_text(entries);
        return EXIT_OK;
}
