/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one table of the contract's failures: for each, the D-Bus error the daemon replies
 * with, the errno(s) its code carries for it (flasher.h says which condition each is),
 * stm32ispctl's exit code, and for the codes no D-Bus error carries (the failures the
 * client finds itself) the name --json gives them. stm32ispctl(1) documents the exit codes;
 * tests/client/test-client-usage.sh checks that this table, --help and the man page
 * agree. A failure outside the table is the standard org.freedesktop.DBus.Error.NoMemory
 * (out of memory) or Failed, and the client's exit code 1. */

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <systemd/sd-bus-protocol.h>

#include "stm32isp.h"

enum {
        EXIT_OK                 = 0,
        EXIT_FAILURE_GENERIC    = 1,    /* anything not listed below */
        EXIT_USAGE              = 2,    /* bad command line, or arguments the daemon rejected */
        EXIT_DAEMON_UNAVAILABLE = 3,    /* stm32ispd neither running nor activatable */
        EXIT_ACCESS_DENIED      = 4,    /* not authorized: polkit, the daemon or the bus policy */
        EXIT_NOT_FOUND          = 5,    /* no such port */
        EXIT_FILE_ERROR         = 6,    /* the image cannot be read, the output cannot be written */
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
        EXIT_CANCELLED          = 20,   /* the job was cancelled (another client, the daemon stopping) */
        EXIT_WRITE_PROTECTED    = 21,   /* the job touches write-protected pages (use --unprotect) */
        EXIT_OPTION_BYTES_MISMATCH = 22, /* the option bytes read back other than written */
        EXIT_NEEDS_FORCE        = 23,   /* no way back into the bootloader after it (use --force) */
        EXIT_PORT_IN_USE        = 24,   /* another process holds the port (the message names it) */
        EXIT_ADAPTER_PARITY     = 25,   /* the link does not carry even parity (adapter, driver, server) */
        EXIT_INTERRUPTED        = 130,  /* Ctrl-C: the job was cancelled, 128 + SIGINT */
};

typedef struct Stm32IspError {
        int code;               /* stm32ispctl's exit code */
        const char *error;      /* the D-Bus error name, NULL if the code is not from one */
        int errnos[2];          /* the daemon's errnos (positive) for it, 0: none */
        const char *name;       /* --json's "error" when no D-Bus error carried it */
        const char *what;       /* for --help */
} Stm32IspError;

/* In exit-code order. */
static const Stm32IspError stm32isp_errors[] = {
        { EXIT_OK,                 NULL,                              { 0 },         "Success", "success" },
        { EXIT_FAILURE_GENERIC,    NULL,                              { 0 },         "Failed", "other failure" },
        { EXIT_USAGE,              SD_BUS_ERROR_INVALID_ARGS,         { EINVAL },    NULL, "usage error, or arguments the daemon rejected" },
        { EXIT_DAEMON_UNAVAILABLE, SD_BUS_ERROR_SERVICE_UNKNOWN,      { 0 },         NULL, "the daemon is not running and cannot be activated" },
        { EXIT_ACCESS_DENIED,      SD_BUS_ERROR_ACCESS_DENIED,        { EPERM },     NULL, "not authorized (polkit, the daemon or the bus policy)" },
        { EXIT_NOT_FOUND,          STM32ISP_ERROR_NOT_FOUND,          { 0 },         NULL, "no such port" },
        { EXIT_FILE_ERROR,         NULL,                              { 0 },         "FileError",
          "a file cannot be used: the image missing or unreadable, the output not writable" },
        { EXIT_NO_BOOTLOADER,      STM32ISP_ERROR_NO_BOOTLOADER,      { EHOSTDOWN }, NULL, "no bootloader answered" },
        { EXIT_TIMEOUT,            STM32ISP_ERROR_TIMEOUT,            { ETIMEDOUT }, NULL, "the bootloader stopped answering" },
        { EXIT_NACK,               STM32ISP_ERROR_NACK,               { EREMOTEIO, EPROTO }, NULL, "the bootloader refused a command (NACK)" },
        { EXIT_VERIFY_FAILED,      STM32ISP_ERROR_VERIFY_FAILED,      { EILSEQ },    NULL, "verification failed" },
        { EXIT_READ_PROTECTED,     STM32ISP_ERROR_READ_PROTECTED,     { EACCES },    NULL, "the chip is read-protected" },
        { EXIT_UNSUPPORTED_CHIP,   STM32ISP_ERROR_UNSUPPORTED_CHIP,   { EOPNOTSUPP }, NULL, "unsupported chip or operation" },
        { EXIT_INVALID_IMAGE,      STM32ISP_ERROR_INVALID_IMAGE,      { ERANGE },    NULL, "invalid image" },
        { EXIT_IMAGE_TOO_LARGE,    STM32ISP_ERROR_IMAGE_TOO_LARGE,    { EFBIG },     NULL, "the image does not fit the flash" },
        { EXIT_BUSY,               STM32ISP_ERROR_BUSY,               { EBUSY },     NULL, "the port is busy with another job" },
        { EXIT_DISCONNECTED,       STM32ISP_ERROR_DISCONNECTED,       { ENODEV },    NULL, "the adapter was disconnected" },
        { EXIT_CANCELLED,          STM32ISP_ERROR_CANCELLED,          { ECANCELED }, NULL, "the job was cancelled: by another client, or stm32ispd stopped" },
        { EXIT_WRITE_PROTECTED,    STM32ISP_ERROR_WRITE_PROTECTED,    { EROFS },     NULL, "the job touches write-protected pages" },
        { EXIT_OPTION_BYTES_MISMATCH, STM32ISP_ERROR_OPTION_BYTES_MISMATCH, { ENOTRECOVERABLE }, NULL,
          "the option bytes read back other than written: check the chip with a debugger" },
        { EXIT_NEEDS_FORCE,        STM32ISP_ERROR_NEEDS_FORCE,        { ENOLINK },   NULL, "no way back into the bootloader afterwards (--force)" },
        /* EBUSY is Busy (our own port's job): another process's hold is EUSERS */
        { EXIT_PORT_IN_USE,        STM32ISP_ERROR_PORT_IN_USE,        { EUSERS },    NULL, "another process holds the port" },
        /* LINK_ENOPARITY: an RFC 2217 server that refused parity, an adapter that drops it */
        { EXIT_ADAPTER_PARITY,     STM32ISP_ERROR_ADAPTER_PARITY,     { EMEDIUMTYPE }, NULL,
          "the adapter or server does not send even parity" },
        { EXIT_INTERRUPTED,        NULL,                              { 0 },         "Interrupted", "interrupted (Ctrl-C): the job was cancelled" },
};

#define STM32ISP_N_ERRORS (sizeof stm32isp_errors / sizeof stm32isp_errors[0])

/* The entry for the D-Bus error name, NULL if the table has none. */
static inline const Stm32IspError *stm32isp_error_from_name(const char *name) {
        for (size_t i = 0; name && i < STM32ISP_N_ERRORS; i++)
                if (stm32isp_errors[i].error && strcmp(stm32isp_errors[i].error, name) == 0)
                        return &stm32isp_errors[i];
        return NULL;
}

/* The D-Bus error for a negative errno (never NULL). */
static inline const char *stm32isp_error_name_from_errno(int e) {
        for (size_t i = 0; i < STM32ISP_N_ERRORS; i++)
                for (size_t k = 0; k < 2 && stm32isp_errors[i].errnos[k]; k++)
                        if (stm32isp_errors[i].errnos[k] == -e)
                                return stm32isp_errors[i].error;
        return e == -ENOMEM ? SD_BUS_ERROR_NO_MEMORY : SD_BUS_ERROR_FAILED;
}
