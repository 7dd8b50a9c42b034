/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "macro.h"
#include "output.h"
#include "util.h"

static int json_from_basic(sd_bus_message *m, char type, json_object **ret) {
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                int b;
                double d;
                const char *s;
                int h;
        } v;
        json_object *o;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case SD_BUS_TYPE_BYTE:    o = json_object_new_int64(v.y); break;
        case SD_BUS_TYPE_INT16:   o = json_object_new_int64(v.n); break;
        case SD_BUS_TYPE_UINT16:  o = json_object_new_int64(v.q); break;
        case SD_BUS_TYPE_INT32:   o = json_object_new_int64(v.i); break;
        case SD_BUS_TYPE_UINT32:  o = json_object_new_int64(v.u); break;
        case SD_BUS_TYPE_INT64:   o = json_object_new_int64(v.x); break;
        case SD_BUS_TYPE_UINT64:  o = json_object_new_uint64(v.t); break;
        case SD_BUS_TYPE_BOOLEAN: o = json_object_new_boolean(v.b); break;
        case SD_BUS_TYPE_DOUBLE:  o = json_object_new_double(v.d); break;
        case SD_BUS_TYPE_UNIX_FD: o = json_object_new_int(v.h); break;
        default:                  o = json_object_new_string(v.s); break; /* s, o, g */
        }
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int json_from_dict(sd_bus_message *m, const char *contents, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *entry = NULL;
        int r;

        if (!o)
                return -ENOMEM;
        /* "{sv}" -> "sv" */
        entry = strndup(contents + 1, strlen(contents) - 2);
        if (!entry)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, contents);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, entry)) > 0) {
                _cleanup_json_ json_object *k = NULL, *v = NULL;
                char key[64];
                const char *ks;

                r = json_from_basic(m, entry[0], &k);
                if (r < 0)
                        return r;
                if (json_object_is_type(k, json_type_string))
                        ks = json_object_get_string(k);
                else {
                        snprintf(key, sizeof key, "%s", json_object_to_json_string(k));
                        ks = key;
                }
                r = json_from_bus_message(m, &v);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                if (json_object_object_add(o, ks, TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int json_from_sequence(sd_bus_message *m, char type, const char *contents, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_array();
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, type, contents);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_at_end(m, false)) == 0) {
                _cleanup_json_ json_object *v = NULL;

                r = json_from_bus_message(m, &v);
                if (r < 0)
                        return r;
                if (json_object_array_add(o, TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int json_from_bus_message(sd_bus_message *m, json_object **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENXIO;

        switch (type) {
        case SD_BUS_TYPE_VARIANT:
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents);
                if (r < 0)
                        return r;
                r = json_from_bus_message(m, ret);
                if (r < 0)
                        return r;
                return sd_bus_message_exit_container(m);

        case SD_BUS_TYPE_ARRAY:
                if (streq(contents, "y")) {
                        /* Byte arrays read best as hex: UIDs, option bytes. */
                        const uint8_t *data;
                        size_t n;

                        r = sd_bus_message_read_array(m, 'y', (const void **) &data, &n);
                        if (r < 0)
                                return r;
                        _cleanup_free_ char *hex = malloc(2 * n + 1);
                        if (!hex)
                                return -ENOMEM;
                        for (size_t i = 0; i < n; i++)
                                sprintf(hex + 2 * i, "%02x", data[i]);
                        hex[2 * n] = 0;
                        *ret = json_object_new_string(hex);
                        return *ret ? 0 : -ENOMEM;
                }
                if (contents[0] == SD_BUS_TYPE_DICT_ENTRY_BEGIN)
                        return json_from_dict(m, contents, ret);
                return json_from_sequence(m, SD_BUS_TYPE_ARRAY, contents, ret);

        case SD_BUS_TYPE_STRUCT:
                return json_from_sequence(m, SD_BUS_TYPE_STRUCT, contents, ret);

        default:
                return json_from_basic(m, type, ret);
        }
}

void json_print(FILE *f, json_object *obj, bool pretty) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

        fputs(json_object_to_json_string_ext(obj, flags), f);
        fputc('\n', f);
        fflush(f);
}

json_object *json_get(json_object *obj, const char *key) {
        if (!obj || !json_object_is_type(obj, json_type_object))
                return NULL;
        json_object_object_foreach(obj, k, v)
                if (strcasecmp(k, key) == 0)
                        return v;
        return NULL;
}

const char *json_get_string(json_object *obj, const char *key) {
        json_object *v = json_get(obj, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t json_get_int(json_object *obj, const char *key) {
        json_object *v = json_get(obj, key);
        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

const char *snake_case(const char *name, char *buf, size_t size) {
        size_t n = 0;

        for (const char *c = name; *c && n + 2 < size; c++) {
                if (*c >= 'A' && *c <= 'Z') {
                        if (c != name)
                                buf[n++] = '_';
                        buf[n++] = (char) (*c - 'A' + 'a');
                } else
                        buf[n++] = *c;
        }
        buf[n] = 0;
        return buf;
}

const char *format_bytes(char *buf, size_t size, uint64_t n) {
        if (n < 1024)
                snprintf(buf, size, "%" PRIu64 " B", n);
        else if (n < 1024 * 1024)
                snprintf(buf, size, "%.1f KiB", n / 1024.0);
        else
                snprintf(buf, size, "%.1f MiB", n / (1024.0 * 1024.0));
        return buf;
}

static bool key_has(const char *key, const char *word) {
        return key && strcasestr(key, word);
}

static char *text_format_pages(json_object *v) {
        size_t n = json_object_array_length(v);
        _cleanup_free_ char *acc = strdup("");

        for (size_t i = 0; acc && i < n; ) {
                int64_t first = json_object_get_int64(json_object_array_get_idx(v, i)), last = first;
                const char *sep = *acc ? ", " : "";
                char *t = NULL;
                int r;

                while (++i < n && json_object_get_int64(json_object_array_get_idx(v, i)) == last + 1)
                        last++;
                if (first == last)
                        r = asprintf(&t, "%s%s%" PRId64, acc, sep, first);
                else
                        r = asprintf(&t, "%s%s%" PRId64 "-%" PRId64, acc, sep, first, last);
                if (r < 0)
                        return NULL;
                free(acc);
                acc = t;
        }
        if (acc && !*acc)
                return strdup("none");
        return TAKE_PTR(acc);
}

char *text_format_value(const char *key, json_object *v) {
        char *s = NULL;
        int r = -1;

        switch (json_object_get_type(v)) {
        case json_type_null:
                return strdup("-");
        case json_type_boolean:
                return strdup(json_object_get_boolean(v) ? "yes" : "no");
        case json_type_double:
                r = asprintf(&s, "%g", json_object_get_double(v));
                break;
        case json_type_int: {
                uint64_t n = json_object_get_uint64(v);
                char b[32];

                if (key_has(key, "version") && n < 256)
                        r = asprintf(&s, "%u.%u", (unsigned) (n >> 4), (unsigned) (n & 15));
                else if (key_has(key, "timestamp")) {
                        time_t t = (time_t) (n / USEC_PER_SEC);
                        struct tm tm;
                        char b2[64];

                        strftime(b2, sizeof b2, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
                        r = asprintf(&s, "%s", b2);
                } else if (key_has(key, "pages") && n == UINT32_MAX)
                        r = asprintf(&s, "all");
                else if (key_has(key, "address") || key_has(key, "optr") || key_has(key, "base"))
                        r = asprintf(&s, "0x%08" PRIx64, n);
                else if (key_has(key, "vendorid") || key_has(key, "productid"))
                        r = asprintf(&s, "%04" PRIx64, n);
                else if (key_has(key, "pid"))
                        r = asprintf(&s, "0x%03" PRIx64, n);
                else if (key_has(key, "rdp"))
                        r = asprintf(&s, "level %" PRIu64 "%s", n, n == 0 ? " (none)" : n == 1 ? " (read-protected)" : "");
                else if (key_has(key, "usec"))
                        r = asprintf(&s, "%.3f s", n / 1e6);
                else if ((key_has(key, "size") || key_has(key, "bytes")) && n >= 1024)
                        r = asprintf(&s, "%" PRIu64 " (%s)", n, format_bytes(b, sizeof b, n));
                else
                        r = asprintf(&s, "%" PRId64, json_object_get_int64(v));
                break;
        }
        case json_type_string:
                /* Long hex dumps (option bytes): the start is what a person reads. */
                if (json_object_get_string_len(v) > 64 && key_has(key, "bytes")) {
                        r = asprintf(&s, "%.32s... (%d bytes)", json_object_get_string(v),
                                     json_object_get_string_len(v) / 2);
                        break;
                }
                return strdup(json_object_get_string(v));
        case json_type_array: {
                size_t n = json_object_array_length(v);
                _cleanup_free_ char *acc = strdup("");

                /* page lists as ranges: "1-2, 8" ("none" when empty) */
                if (key_has(key, "pages"))
                        return text_format_pages(v);

                for (size_t i = 0; acc && i < n; i++) {
                        _cleanup_free_ char *e = text_format_value(key, json_object_array_get_idx(v, i));
                        char *t = NULL;

                        if (!e || asprintf(&t, "%s%s%s", acc, i > 0 ? (key_has(key, "progress") ? "/" : ", ") : "", e) < 0)
                                return NULL;
                        free(acc);
                        acc = t;
                }
                return TAKE_PTR(acc);
        }
        case json_type_object: {
                _cleanup_free_ char *acc = strdup("");

                json_object_object_foreach(v, k, e) {
                        _cleanup_free_ char *ev = text_format_value(k, e);
                        char *t = NULL;

                        if (!acc || !ev || asprintf(&t, "%s%s%s=%s", acc, *acc ? " " : "", k, ev) < 0)
                                return NULL;
                        free(acc);
                        acc = t;
                }
                return TAKE_PTR(acc);
        }
        }
        return r < 0 ? NULL : s;
}

/* What people read for the daemon's keys (JSON keeps the keys). */
static const char *key_label(const char *key) {
        static const char *const labels[][2] = {
                { "name", "Chip" },
                { "pid", "Product ID" },
                { "family", "Family" },
                { "protocol_version", "Bootloader" },
                { "flash_size", "Flash size" },
                { "flash_base", "Flash base" },
                { "page_size", "Page size" },
                { "rdp_level", "Read protection" },
                { "uid", "Unique ID" },
                { "option_bytes", "Option bytes" },
                { "optr", "OPTR" },
                { "nboot_sel", "nBOOT_SEL" },
                { "nboot0", "nBOOT0" },
                { "nboot1", "nBOOT1" },
                { "commands", "Commands" },
                { "operation", "Operation" },
                { "duration_usec", "Duration" },
                { "timestamp_usec", "Finished at" },
                { "bytes_written", "Written" },
                { "bytes_verified", "Verified" },
                { "preserved_bytes", "Kept around the image" },
                { "bytes_read", "Read" },
                { "address", "Address" },
                { "pages_erased", "Pages erased" },
                { "mass_erased", "Mass erase" },
                { "unprotected", "Unprotected" },
                { "protected", "Protected" },
                { "boot0_changed", "nBOOT_SEL cleared" },
                { "write_unprotected", "Write protection removed" },
                { "write_protected_pages", "Write-protected pages" },
                { "start_method", "Started by" },
                { "started", "Started" },
                { "write_retries", "Write retries" },
                { "baudrate", "Baud rate" },
                { "baudrate_remembered", "Baud rate from an earlier job" },
        };
        for (size_t i = 0; i < ELEMENTSOF(labels); i++)
                if (streq(labels[i][0], key))
                        return labels[i][1];
        return key;
}

void text_print_object(FILE *f, json_object *obj, unsigned indent, unsigned width) {
        if (!obj || !json_object_is_type(obj, json_type_object))
                return;
        if (width == 0) {
                json_object_object_foreach(obj, k, v) {
                        (void) v;
                        width = MAX(width, (unsigned) strlen(key_label(k)) + 1);
                }
        }
        json_object_object_foreach(obj, k, v) {
                /* "error": "" on success says nothing to a person. */
                if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0)
                        continue;
                const char *label = key_label(k);

                if (json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) {
                        fprintf(f, "%*s%s:\n", (int) indent, "", label);
                        text_print_object(f, v, indent + 2, 0);
                        continue;
                }
                _cleanup_free_ char *s = text_format_value(k, v);
                fprintf(f, "%*s%s:%*s %s\n", (int) indent, "", label,
                        (int) (width - MIN(width, strlen(label) + 1)), "", s ? s : "?");
        }
}
