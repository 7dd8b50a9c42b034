/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "exit-codes.h"
#include "macro.h"
#include "stm32isp.h"

static const ExitCodeEntry table[] = {
        { EXIT_OK,                 NULL, "success" },
        { EXIT_FAILURE_GENERIC,    NULL, "other failure" },
        { EXIT_USAGE,              "org.freedesktop.DBus.Error.InvalidArgs", "usage error, or arguments the daemon rejected" },
        { EXIT_DAEMON_UNAVAILABLE, "org.freedesktop.DBus.Error.ServiceUnknown", "the daemon is not running and cannot be activated" },
        { EXIT_ACCESS_DENIED,      "org.freedesktop.DBus.Error.AccessDenied", "access denied by the bus policy" },
        { EXIT_NOT_FOUND,          STM32ISP_ERROR_NOT_FOUND, "no such port" },
        { EXIT_NO_BOOTLOADER,      STM32ISP_ERROR_NO_BOOTLOADER, "no bootloader answered" },
        { EXIT_TIMEOUT,            STM32ISP_ERROR_TIMEOUT, "the bootloader stopped answering" },
        { EXIT_NACK,               STM32ISP_ERROR_NACK, "the bootloader refused a command (NACK)" },
        { EXIT_VERIFY_FAILED,      STM32ISP_ERROR_VERIFY_FAILED, "verification failed" },
        { EXIT_READ_PROTECTED,     STM32ISP_ERROR_READ_PROTECTED, "the chip is read-protected" },
        { EXIT_UNSUPPORTED_CHIP,   STM32ISP_ERROR_UNSUPPORTED_CHIP, "unsupported chip or operation" },
        { EXIT_INVALID_IMAGE,      STM32ISP_ERROR_INVALID_IMAGE, "invalid image" },
        { EXIT_IMAGE_TOO_LARGE,    STM32ISP_ERROR_IMAGE_TOO_LARGE, "the image does not fit the flash" },
        { EXIT_BUSY,               STM32ISP_ERROR_BUSY, "the port is busy with another job" },
        { EXIT_DISCONNECTED,       STM32ISP_ERROR_DISCONNECTED, "the adapter was disconnected" },
        { EXIT_CANCELLED,          STM32ISP_ERROR_CANCELLED, "the job was cancelled by another client" },
        { EXIT_INTERRUPTED,        NULL, "interrupted (Ctrl-C): the job was cancelled" },
};

const ExitCodeEntry *exit_code_table(size_t *ret_n) {
        *ret_n = ELEMENTSOF(table);
        return table;
}

int bus_error_is_unavailable(const sd_bus_error *e, int r) {
        static const char *const names[] = {
                "org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply",
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
                return 0;
        }
        /* No bus error: the connection itself failed. */
        return r == -ECONNREFUSED || r == -ENOENT || r == -ECONNRESET || r == -EHOSTDOWN ||
               r == -ENOTCONN || r == -ESHUTDOWN || r == -EPIPE || r == -ENOMEDIUM;
}

int exit_code_from_bus_error(const sd_bus_error *e, int r) {
        if (bus_error_is_unavailable(e, r))
                return EXIT_DAEMON_UNAVAILABLE;
        if (e && sd_bus_error_is_set(e)) {
                for (size_t i = 0; i < ELEMENTSOF(table); i++)
                        if (table[i].error && sd_bus_error_has_name(e, table[i].error))
                                return table[i].code;
                if (sd_bus_error_has_names(e, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                                           "org.freedesktop.DBus.Error.AuthFailed"))
                        return EXIT_ACCESS_DENIED;
                if (sd_bus_error_has_names(e, "org.freedesktop.DBus.Error.UnknownObject",
                                           "org.freedesktop.DBus.Error.UnknownInterface"))
                        return EXIT_NOT_FOUND;
                return EXIT_FAILURE_GENERIC;
        }
        if (r == -EACCES || r == -EPERM)
                return EXIT_ACCESS_DENIED;
        return EXIT_FAILURE_GENERIC;
}
