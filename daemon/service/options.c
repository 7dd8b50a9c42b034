/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The a{sv} walk every method shares, its error messages, and the daemon's tables. */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "options.h"
#include "stm32isp-keys.h"

/* Keys and values quoted in messages are cut to this many bytes: a caller can send
 * megabytes of key, and the reply must stay small. */
#define QUOTE_MAX 64

static const OptionSpec port_specs[] = {
        { STM32ISP_KEY_ADDRESS,    "t", PORT_OPTION_ADDRESS },
        { STM32ISP_KEY_FORMAT,     "s", PORT_OPTION_FORMAT },
        { STM32ISP_KEY_ERASE,      "s", PORT_OPTION_ERASE },
        { STM32ISP_KEY_VERIFY,     "b", PORT_OPTION_VERIFY },
        { STM32ISP_KEY_UNPROTECT,  "b", PORT_OPTION_UNPROTECT },
        { STM32ISP_KEY_PROTECT,    "b", PORT_OPTION_PROTECT },
        { STM32ISP_KEY_BOOT0,      "b", PORT_OPTION_BOOT0 },
        { STM32ISP_KEY_GO,         "b", PORT_OPTION_GO },
        { STM32ISP_KEY_BAUDRATE,   "u", PORT_OPTION_BAUDRATE },
        { STM32ISP_KEY_ENTRY,      "s", PORT_OPTION_ENTRY },
        { STM32ISP_KEY_MODE,       "s", PORT_OPTION_MODE },
        { STM32ISP_KEY_LENGTH,     "t", PORT_OPTION_LENGTH },
        { STM32ISP_KEY_IMAGE_NAME, "s", PORT_OPTION_IMAGE_NAME },
        { STM32ISP_KEY_FORCE,      "b", PORT_OPTION_FORCE },
        { STM32ISP_KEY_DETACH,     "b", PORT_OPTION_DETACH },
        { STM32ISP_KEY_TRACE_FD,   "h", PORT_OPTION_TRACE_FD },
        { STM32ISP_KEY_TRACE_FORMAT, "s", PORT_OPTION_TRACE_FORMAT },
        { STM32ISP_KEY_SN_ADDRESS, "t", PORT_OPTION_SN_ADDRESS },
        { STM32ISP_KEY_SN_FIRST,   "t", PORT_OPTION_SN_FIRST },
        { STM32ISP_KEY_SN_STEP,    "t", PORT_OPTION_SN_STEP },
        { STM32ISP_KEY_SN_FORMAT,  "s", PORT_OPTION_SN_FORMAT },
        { STM32ISP_KEY_SN_COUNTER, "s", PORT_OPTION_SN_COUNTER },
};

const OptionTable port_option_table = { "option", port_specs, ELEMENTSOF(port_specs) };

static const OptionSpec results_filter_specs[] = {
        { STM32ISP_KEY_RESULT, "s", RESULTS_FILTER_RESULT },
        { STM32ISP_KEY_UID,    "s", RESULTS_FILTER_UID },
        { STM32ISP_KEY_PORT,   "s", RESULTS_FILTER_PORT },
        { STM32ISP_KEY_SINCE,  "t", RESULTS_FILTER_SINCE },
        { STM32ISP_KEY_UNTIL,  "t", RESULTS_FILTER_UNTIL },
        { STM32ISP_KEY_LIMIT,  "u", RESULTS_FILTER_LIMIT },
        { STM32ISP_KEY_SERIAL_NUMBER, "t", RESULTS_FILTER_SERIAL_NUMBER },
};

const OptionTable results_filter_table = { "filter", results_filter_specs, ELEMENTSOF(results_filter_specs) };

/* Types as autoflash_bus_type() knows them (tests/test-options.c checks they agree). */
static const OptionSpec autoflash_specs[] = {
        { STM32ISP_KEY_IMAGE_NAME, "s", AUTOFLASH_OPTION_IMAGE_NAME },
        { STM32ISP_KEY_FORMAT,     "s", AUTOFLASH_OPTION_FORMAT },
        { STM32ISP_KEY_ADDRESS,    "t", AUTOFLASH_OPTION_ADDRESS },
        { STM32ISP_KEY_ERASE,      "s", AUTOFLASH_OPTION_ERASE },
        { STM32ISP_KEY_VERIFY,     "b", AUTOFLASH_OPTION_VERIFY },
        { STM32ISP_KEY_UNPROTECT,  "b", AUTOFLASH_OPTION_UNPROTECT },
        { STM32ISP_KEY_PROTECT,    "b", AUTOFLASH_OPTION_PROTECT },
        { STM32ISP_KEY_BOOT0,      "b", AUTOFLASH_OPTION_BOOT0 },
        { STM32ISP_KEY_GO,         "b", AUTOFLASH_OPTION_GO },
        { STM32ISP_KEY_BAUDRATE,   "u", AUTOFLASH_OPTION_BAUDRATE },
        { STM32ISP_KEY_ENTRY,      "s", AUTOFLASH_OPTION_ENTRY },
        { STM32ISP_KEY_VID,        "q", AUTOFLASH_OPTION_VID },
        { STM32ISP_KEY_PID,        "q", AUTOFLASH_OPTION_PID },
        { STM32ISP_KEY_SERIAL,     "s", AUTOFLASH_OPTION_SERIAL },
        { STM32ISP_KEY_ID_PATH,    "s", AUTOFLASH_OPTION_ID_PATH },
        { STM32ISP_KEY_EXPECT_CHIP, "q", AUTOFLASH_OPTION_CHIP, STM32ISP_KEY_EXPECT_CHIP_ALIAS },
        { STM32ISP_KEY_FORCE,      "b", AUTOFLASH_OPTION_FORCE },
        { STM32ISP_KEY_PORT,       "s", AUTOFLASH_OPTION_PORT },
        { STM32ISP_KEY_DETECT,     "s", AUTOFLASH_OPTION_DETECT },
        { STM32ISP_KEY_POLL_MS,    "u", AUTOFLASH_OPTION_POLL_MS },
        { STM32ISP_KEY_SN_ADDRESS, "t", AUTOFLASH_OPTION_SN_ADDRESS },
        { STM32ISP_KEY_SN_FIRST,   "t", AUTOFLASH_OPTION_SN_FIRST },
        { STM32ISP_KEY_SN_STEP,    "t", AUTOFLASH_OPTION_SN_STEP },
        { STM32ISP_KEY_SN_FORMAT,  "s", AUTOFLASH_OPTION_SN_FORMAT },
        { STM32ISP_KEY_SN_COUNTER, "s", AUTOFLASH_OPTION_SN_COUNTER },
};

const OptionTable autoflash_option_table = { "option", autoflash_specs, ELEMENTSOF(autoflash_specs) };

const OptionTable add_port_option_table = { "option", NULL, 0 };

/* ---- messages ---- */

/* Copies s, cut to QUOTE_MAX bytes on a UTF-8 character boundary ("..." marks the
 * cut): an error message must stay valid UTF-8 or sd-bus cannot send it. */
static const char *quote(const char *s, char buf[static QUOTE_MAX + 4]) {
        size_t n = strlen(s);

        if (n <= QUOTE_MAX)
                return s;
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        memcpy(buf, s, n);
        memcpy(buf + n, "...", 4);
        return buf;
}

const char *option_value_to_string(const OptionValue *v, char *buf, size_t size) {
        char q[QUOTE_MAX + 4];

        if (size == 0)
                return buf;
        switch (v->type) {
        case 'y':
                snprintf(buf, size, "%u", v->y);
                break;
        case 'b':
                snprintf(buf, size, "%s", v->b ? "yes" : "no");
                break;
        case 'n':
                snprintf(buf, size, "%" PRIi16, v->n);
                break;
        case 'q':
                snprintf(buf, size, "%" PRIu16, v->q);
                break;
        case 'i':
                snprintf(buf, size, "%" PRIi32, v->i);
                break;
        case 'h':
                snprintf(buf, size, "fd");
                break;
        case 'u':
                snprintf(buf, size, "%" PRIu32, v->u);
                break;
        case 'x':
                snprintf(buf, size, "%" PRIi64, v->x);
                break;
        case 't':
                snprintf(buf, size, "%" PRIu64, v->t);
                break;
        case 'd':
                snprintf(buf, size, "%g", v->d);
                break;
        case 's':
        case 'o':
        case 'g':
                snprintf(buf, size, "%s", quote(v->s, q));
                break;
        default:
                buf[0] = '\0';
        }
        return buf;
}

static int invalid_args(sd_bus_error *error, const char *noun, const char *key, const char *fmt, ...) _printf_(4, 5);

/* "Noun 'key' " + the rest. */
static int invalid_args(sd_bus_error *error, const char *noun, const char *key, const char *fmt, ...) {
        char q[QUOTE_MAX + 4], what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%c%s '%s' %s",
                                 noun[0] >= 'a' && noun[0] <= 'z' ? noun[0] - 'a' + 'A' : noun[0], noun + 1,
                                 quote(key, q), what);
}

int options_error(sd_bus_error *error, const OptionValue *v, const char *what, ...) {
        char buf[256];
        va_list ap;

        va_start(ap, what);
        vsnprintf(buf, sizeof buf, what, ap);
        va_end(ap);
        return invalid_args(error, v->table->noun, v->spec->key, "%s", buf);
}

int options_error_invalid(sd_bus_error *error, const OptionValue *v) {
        char value[QUOTE_MAX + 4], q[QUOTE_MAX + 4];

        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid value '%s' for %s '%s'",
                                 option_value_to_string(v, value, sizeof value), v->table->noun,
                                 quote(v->spec->key, q));
}

/* ---- the walk ---- */

static const OptionSpec *table_find(const OptionTable *t, const char *key, size_t *ret_index) {
        for (size_t i = 0; i < t->n_specs; i++)
                if (strcmp(t->specs[i].key, key) == 0 || (t->specs[i].alias && strcmp(t->specs[i].alias, key) == 0)) {
                        *ret_index = i;
                        return &t->specs[i];
                }
        return NULL;
}

/* Reads the variant's one basic value (the type was checked against the spec). */
static int read_value(sd_bus_message *m, OptionValue *v) {
        int b, r;

        switch (v->type) {
        case 'b':
                r = sd_bus_message_read_basic(m, 'b', &b);
                v->b = b;
                return r;
        case 'y':
                return sd_bus_message_read_basic(m, 'y', &v->y);
        case 'n':
                return sd_bus_message_read_basic(m, 'n', &v->n);
        case 'q':
                return sd_bus_message_read_basic(m, 'q', &v->q);
        case 'i':
                return sd_bus_message_read_basic(m, 'i', &v->i);
        case 'h':
                return sd_bus_message_read_basic(m, 'h', &v->i);
        case 'u':
                return sd_bus_message_read_basic(m, 'u', &v->u);
        case 'x':
                return sd_bus_message_read_basic(m, 'x', &v->x);
        case 't':
                return sd_bus_message_read_basic(m, 't', &v->t);
        case 'd':
                return sd_bus_message_read_basic(m, 'd', &v->d);
        case 's':
        case 'o':
        case 'g':
                return sd_bus_message_read_basic(m, v->type, &v->s);
        default:
                return -EINVAL;         /* a table names a type the walk does not read */
        }
}

int options_parse(sd_bus_message *m, const OptionTable *table, uint64_t allowed,
                  OptionHandler handler, void *userdata, sd_bus_error *error) {
        uint64_t seen = 0;
        int n = 0, r;

        if (!m || !table || !handler || table->n_specs > 64)
                return -EINVAL;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (r == 0)
                return -ENXIO;          /* the message ends before the options */
        for (;;) {
                OptionValue v = { .table = table };
                const char *key, *contents = NULL;
                size_t index = 0;
                char type;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                v.spec = table_find(table, key, &index);
                if (!v.spec || v.spec->id >= 64 || !(allowed & OPTION_BIT(v.spec->id))) {
                        char q[QUOTE_MAX + 4];

                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown %s '%s'",
                                                 table->noun, quote(key, q));
                }
                /* Which of two values would win is a guess a production line should
                 * not depend on. */
                if (seen & OPTION_BIT(index))
                        return invalid_args(error, table->noun, key, "is given more than once");
                seen |= OPTION_BIT(index);

                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (type != 'v' || !contents || strcmp(contents, v.spec->signature) != 0)
                        return invalid_args(error, table->noun, key, "must be of type '%s', not '%s'",
                                            v.spec->signature, contents ?: "");
                v.type = v.spec->signature[0];
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                r = read_value(m, &v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);   /* v */
                if (r < 0)
                        return r;

                r = handler(&v, userdata, error);
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);   /* e */
                if (r < 0)
                        return r;
                n++;
        }
        r = sd_bus_message_exit_container(m);           /* a */
        if (r < 0)
                return r;
        return n;
}
