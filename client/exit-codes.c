/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "exit-codes.h"
#include "macro.h"
#include "string-util.h"

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
