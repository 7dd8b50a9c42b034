/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* stm32ispctl's exit codes: the one table. stm32ispctl(1) documents the same values
 * (tests/test-client-exitcodes.sh checks that the two agree). */

#include <systemd/sd-bus.h>

enum {
        EXIT_OK                 = 0,
        EXIT_FAILURE_GENERIC    = 1,    /* anything not listed below */
        EXIT_USAGE              = 2,    /* bad command line, or arguments the daemon rejected */
        EXIT_DAEMON_UNAVAILABLE = 3,    /* stm32ispd neither running nor activatable */
        EXIT_ACCESS_DENIED      = 4,    /* the bus policy refused the call */
        EXIT_NOT_FOUND          = 5,    /* no such port */
        EXIT_NO_BOOTLOADER      = 10,   /* no bootloader answered the sync */
        EXIT_TIMEOUT            = 11,   /* the bootloader stopped answering */
        EXIT_NACK               = 12,   /* the bootloader refused a command */
        EXIT_VERIFY_FAILED      = 13,   /* read-back differs from the image */
        EXIT_READ_PROTECTED     = 14,   /* the chip is read-protected (use --unprotect/unlock) */
        EXIT_UNSUPPORTED_CHIP   = 15,   /* unknown chip, or an operation it lacks */
        EXIT_INVALID_IMAGE      = 16,   /* the image cannot be parsed or lies outside flash */
        EXIT_IMAGE_TOO_LARGE    = 17,   /* the image does not fit the flash */
        EXIT_BUSY               = 18,   /* another job runs on the port */
        EXIT_DISCONNECTED       = 19,   /* the adapter went away */
        EXIT_CANCELLED          = 20,   /* the job was cancelled (by another client) */
        EXIT_INTERRUPTED        = 130,  /* Ctrl-C: the job was cancelled, 128 + SIGINT */
};

typedef struct ExitCodeEntry {
        int code;
        const char *error;      /* D-Bus error name, NULL if not from one */
        const char *what;
} ExitCodeEntry;

/* The table, in code order (for --help and the tests). */
const ExitCodeEntry *exit_code_table(size_t *ret_n);

/* The exit code for a D-Bus error (never 0). */
int exit_code_from_bus_error(const sd_bus_error *e, int r);

/* True if the error says the daemon is not there (not running and not activatable). */
int bus_error_is_unavailable(const sd_bus_error *e, int r);
