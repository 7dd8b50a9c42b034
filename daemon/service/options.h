/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Method options as D-Bus passes them (a{sv}), walked in one place for every method:
 * a table names the keys and the one type each takes; options_parse() refuses unknown
 * keys, keys given twice and values of another type (nested variants included) with
 * InvalidArgs naming the key, and hands each value to the caller's handler, which
 * checks ranges and reports through options_error*() so every message reads alike.
 * The daemon's tables live here too: the option vocabulary of the D-Bus API. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "macro.h"

typedef struct OptionSpec {
        const char *key;
        const char *signature;  /* one basic type: "y" "b" "n" "q" "i" "u" "x" "t" "d" "s" "o" "g" "h" */
        unsigned id;            /* the caller's, 0..63: selects the key in `allowed` */
        const char *alias;      /* the key's former name, still accepted for one release; NULL */
} OptionSpec;

typedef struct OptionTable {
        const char *noun;       /* what the messages call a key: "option", "filter" */
        const OptionSpec *specs;
        size_t n_specs;         /* at most 64 */
} OptionTable;

#define OPTION_BIT(id) (UINT64_C(1) << (id))
#define OPTIONS_ALL UINT64_MAX

/* One key's value. Strings point into the message: valid while it is. */
typedef struct OptionValue {
        const OptionTable *table;
        const OptionSpec *spec;
        char type;              /* spec->signature[0] */
        union {
                uint8_t y;
                bool b;
                int16_t n;
                uint16_t q;
                int32_t i;      /* also 'h': the message's fd, borrowed */
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
                const char *s;  /* also 'o', 'g' */
        };
} OptionValue;

/* Returns >= 0 to go on, or a negative errno (after setting error, or not: then the
 * errno becomes the reply) to stop the walk. */
typedef int (*OptionHandler)(const OptionValue *v, void *userdata, sd_bus_error *error);

/* Reads an a{sv} from m (positioned at it) and calls handler once per key, in the
 * caller's order. Keys of the table whose id is not in allowed are unknown. Returns
 * the number of keys, or a negative errno; sd_bus_error_set*() results are negative
 * errnos too, so `return r` from a method handler sends the named error. */
int options_parse(sd_bus_message *m, const OptionTable *table, uint64_t allowed,
                  OptionHandler handler, void *userdata, sd_bus_error *error);

/* InvalidArgs "Option 'KEY' <what>" (the table's noun, capitalised). Returns the
 * negative errno. */
int options_error(sd_bus_error *error, const OptionValue *v, const char *what, ...) _printf_(3, 4);
/* InvalidArgs "Invalid value 'VALUE' for option 'KEY'" (the value as text). */
int options_error_invalid(sd_bus_error *error, const OptionValue *v);
/* The value as text ("yes"/"no" for booleans, decimal numbers, strings as they are;
 * strings cut to fit, on a character boundary). Returns buf. */
const char *option_value_to_string(const OptionValue *v, char *buf, size_t size);

/* ---- the daemon's tables ---- */

/* Port methods (Probe, Flash, Erase, Read, Lock, Unlock). */
typedef enum PortOptionId {
        PORT_OPTION_ADDRESS,
        PORT_OPTION_FORMAT,
        PORT_OPTION_ERASE,
        PORT_OPTION_VERIFY,
        PORT_OPTION_UNPROTECT,
        PORT_OPTION_PROTECT,
        PORT_OPTION_BOOT0,
        PORT_OPTION_GO,
        PORT_OPTION_BAUDRATE,
        PORT_OPTION_ENTRY,
        PORT_OPTION_MODE,
        PORT_OPTION_LENGTH,
        PORT_OPTION_IMAGE_NAME,
        PORT_OPTION_FORCE,
        PORT_OPTION_DETACH,
        PORT_OPTION_TRACE_FD,
        PORT_OPTION_TRACE_FORMAT,
        PORT_OPTION_SN_ADDRESS,         /* the five in SerialKey's order (serialjob.h) */
        PORT_OPTION_SN_FIRST,
        PORT_OPTION_SN_STEP,
        PORT_OPTION_SN_FORMAT,
        PORT_OPTION_SN_COUNTER,
        _PORT_OPTION_MAX,
} PortOptionId;

/* What each method takes: every job the line's options, detach (keep running when the
 * caller leaves the bus) and the wire trace's fd and format. */
#define PORT_OPTIONS_LINK (OPTION_BIT(PORT_OPTION_BAUDRATE) | OPTION_BIT(PORT_OPTION_ENTRY) | \
                           OPTION_BIT(PORT_OPTION_DETACH) | OPTION_BIT(PORT_OPTION_TRACE_FD) |  \
                           OPTION_BIT(PORT_OPTION_TRACE_FORMAT))
#define PORT_OPTIONS_FLASH                                                                      \
        (PORT_OPTIONS_LINK | OPTION_BIT(PORT_OPTION_ADDRESS) | OPTION_BIT(PORT_OPTION_FORMAT) |  \
         OPTION_BIT(PORT_OPTION_ERASE) | OPTION_BIT(PORT_OPTION_VERIFY) |                        \
         OPTION_BIT(PORT_OPTION_UNPROTECT) | OPTION_BIT(PORT_OPTION_PROTECT) |                   \
         OPTION_BIT(PORT_OPTION_BOOT0) | OPTION_BIT(PORT_OPTION_GO) |                            \
         OPTION_BIT(PORT_OPTION_IMAGE_NAME) | OPTION_BIT(PORT_OPTION_FORCE) | PORT_OPTIONS_SERIAL)
#define PORT_OPTIONS_SERIAL                                                                     \
        (OPTION_BIT(PORT_OPTION_SN_ADDRESS) | OPTION_BIT(PORT_OPTION_SN_FIRST) |                 \
         OPTION_BIT(PORT_OPTION_SN_STEP) | OPTION_BIT(PORT_OPTION_SN_FORMAT) |                   \
         OPTION_BIT(PORT_OPTION_SN_COUNTER))
/* force: Lock, an end state with no way back; Unlock, even a chip that is not
 * read-protected (the mass erase included). */
#define PORT_OPTIONS_LOCK (PORT_OPTIONS_LINK | OPTION_BIT(PORT_OPTION_FORCE))
#define PORT_OPTIONS_ERASE                                                                      \
        (PORT_OPTIONS_LINK | OPTION_BIT(PORT_OPTION_MODE) | OPTION_BIT(PORT_OPTION_ADDRESS) |    \
         OPTION_BIT(PORT_OPTION_LENGTH))

extern const OptionTable port_option_table;

/* Manager.GetResults(a{sv} filter). */
typedef enum ResultsFilterId {
        RESULTS_FILTER_RESULT,
        RESULTS_FILTER_UID,
        RESULTS_FILTER_PORT,
        RESULTS_FILTER_SINCE,
        RESULTS_FILTER_UNTIL,
        RESULTS_FILTER_LIMIT,
        RESULTS_FILTER_SERIAL_NUMBER,
        _RESULTS_FILTER_MAX,
} ResultsFilterId;

extern const OptionTable results_filter_table;

/* Manager.SetAutoFlash(h, a{sv}): the bus names of autoflash_set()'s settings. */
typedef enum AutoFlashOptionId {
        AUTOFLASH_OPTION_IMAGE_NAME,
        AUTOFLASH_OPTION_FORMAT,
        AUTOFLASH_OPTION_ADDRESS,
        AUTOFLASH_OPTION_ERASE,
        AUTOFLASH_OPTION_VERIFY,
        AUTOFLASH_OPTION_UNPROTECT,
        AUTOFLASH_OPTION_PROTECT,
        AUTOFLASH_OPTION_BOOT0,
        AUTOFLASH_OPTION_GO,
        AUTOFLASH_OPTION_BAUDRATE,
        AUTOFLASH_OPTION_ENTRY,
        AUTOFLASH_OPTION_VID,
        AUTOFLASH_OPTION_PID,
        AUTOFLASH_OPTION_SERIAL,
        AUTOFLASH_OPTION_ID_PATH,
        AUTOFLASH_OPTION_CHIP,
        AUTOFLASH_OPTION_FORCE,
        AUTOFLASH_OPTION_PORT,
        AUTOFLASH_OPTION_DETECT,
        AUTOFLASH_OPTION_POLL_MS,
        AUTOFLASH_OPTION_SN_ADDRESS,    /* the five in SerialKey's order (serialjob.h) */
        AUTOFLASH_OPTION_SN_FIRST,
        AUTOFLASH_OPTION_SN_STEP,
        AUTOFLASH_OPTION_SN_FORMAT,
        AUTOFLASH_OPTION_SN_COUNTER,
        _AUTOFLASH_OPTION_MAX,
} AutoFlashOptionId;

extern const OptionTable autoflash_option_table;

/* Manager.AddPort(s, a{sv}): no options yet; every key is unknown. */
extern const OptionTable add_port_option_table;
