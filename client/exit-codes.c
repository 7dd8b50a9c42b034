/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "exit-codes.h"
#include "macro.h"
#include "output.h"
#include "string-util.h"

static struct {
        int code;
        char *error;
        char *message;
} failure;

const ExitCodeEntry *exit_code_table(size_t *ret_n) {
        *ret_n = ELEMENTSOF(stm32isp_errors);
        return stm32isp_errors;
}

int bus_error_is_unavailable(const sd_bus_error *e, int r) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN,
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_NO_REPLY,
                "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
                "org.freedesktop.DBus.Error.Spawn.ChildExited",
                "org.freedesktop.DBus.Error.Spawn.ExecFailed",
                "org.freedesktop.DBus.Error.Spawn.Failed",
                "org.freedesktop.systemd1.NoSuchUnit",
        };

        if (e && sd_bus_error_is_set(e)) {
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (sd_bus_error_has_name(e, names[i]))
                                return 1;
                /* A local failure sd-bus put into an error (System.Error.ENOTCONN: the ssh
                 * of --host gave up): judged by its errno below. */
                if (!startswith(e->name, "System.Error."))
                        return 0;
                r = -sd_bus_error_get_errno(e);
        }
        /* No bus error: the connection itself failed. */
        return r == -ECONNREFUSED || r == -ENOENT || r == -ECONNRESET || r == -EHOSTDOWN ||
               r == -ENOTCONN || r == -ESHUTDOWN || r == -EPIPE || r == -ENOMEDIUM;
}

int exit_code_from_bus_error(const sd_bus_error *e, int r) {
        if (bus_error_is_unavailable(e, r))
                return EXIT_DAEMON_UNAVAILABLE;
        if (e && sd_bus_error_is_set(e)) {
                const Stm32IspError *x = stm32isp_error_from_name(e->name);

                if (x)
                        return x->code;
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                           SD_BUS_ERROR_AUTH_FAILED))
                        return EXIT_ACCESS_DENIED;
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                           SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        return EXIT_NOT_FOUND;
                return EXIT_FAILURE_GENERIC;
        }
        if (r == -EACCES || r == -EPERM)
                return EXIT_ACCESS_DENIED;
        return EXIT_FAILURE_GENERIC;
}

void failure_record(int code, const char *error, const char *message) {
        free(failure.error);
        free(failure.message);
        failure.code = code;
        failure.error = error ? strdup(error) : NULL;
        failure.message = message ? strdup(message) : NULL;
}

int failure_printf(int code, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                m = NULL;
        fprintf(stderr, "stm32ispctl: %s\n", m ?: "out of memory");
        failure_record(code, NULL, m);
        return code;
}

void failure_print_json(FILE *f, const char *operation, const char *port, int code) {
        _cleanup_json_ json_object *o = json_object_new_object();
        const char *error = NULL, *message = NULL;

        if (failure.code == code) {
                error = failure.error;
                message = failure.message;
        }
        for (size_t i = 0; i < ELEMENTSOF(stm32isp_errors); i++)
                if (stm32isp_errors[i].code == code) {
                        error = error ?: stm32isp_errors[i].error ?: stm32isp_errors[i].name;
                        message = message ?: stm32isp_errors[i].what;
                }
        if (operation)
                json_object_object_add(o, "operation", json_object_new_string(operation));
        if (port)
                json_object_object_add(o, "port", json_object_new_string(port));
        json_object_object_add(o, "error", json_object_new_string(error ?: "Failed"));
        json_object_object_add(o, "message", json_object_new_string(message ?: ""));
        json_object_object_add(o, "exit_code", json_object_new_int(code));
        json_print(f, o, false);
}
