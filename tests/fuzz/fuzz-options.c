/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the a{sv} option walk (daemon/service/options.c) with the daemon's
 * own tables, on sd-bus messages the input describes. Built and run by tests/ci.sh:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude/shared -Idaemon/service \
 *         tests/fuzz/fuzz-options.c daemon/service/options.c -lsystemd
 * Input: one byte picks the table and the method's key set; then entries, each a key
 * byte (a key of the table, a near miss, or bytes of the input), a type byte (every
 * basic type, nested variants, arrays, dicts, structs) and the value's bytes.
 * Beyond "no crash, no leak": a walk that succeeds saw every entry with its declared
 * type; one that fails says InvalidArgs in valid UTF-8, or returns the handler's errno. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t take(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static uint64_t take_u64(Input *in) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | take(in);
        return v;
}

/* Up to max bytes of the input as a string (NUL cut short; UTF-8 not checked: sd-bus
 * refuses invalid strings, and then the input is skipped). */
static void take_string(Input *in, size_t max, char *buf) {
        size_t n = take(in) % (max + 1), k = 0;

        for (size_t i = 0; i < n && in->left > 0; i++) {
                char c = (char) take(in);

                if (c == 0)
                        break;
                buf[k++] = c;
        }
        buf[k] = '\0';
}

static sd_bus *fuzz_bus(void) {
        static sd_bus *bus;
        int sv[2];

        if (bus)
                return bus;
        /* Messages need a started bus, not a peer that answers. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, sv[0], sv[0]) < 0 || sd_bus_start(bus) < 0)
                abort();
        return bus;
}

static const struct {
        const OptionTable *table;
        uint64_t allowed;
} cases[] = {
        { &port_option_table, PORT_OPTIONS_FLASH },     /* Flash */
        { &port_option_table, PORT_OPTIONS_LINK },      /* Probe, Read, Lock, Unlock */
        { &port_option_table, PORT_OPTIONS_ERASE },     /* Erase */
        { &results_filter_table, OPTIONS_ALL },         /* GetResults */
        { &autoflash_option_table, OPTIONS_ALL },       /* SetAutoFlash */
        { &add_port_option_table, OPTIONS_ALL },        /* AddPort */
};

static const char *const types[] = {
        "y", "b", "n", "q", "i", "u", "x", "t", "d", "s", "o", "g", "h",
        "v", "as", "ay", "a{sv}", "(su)", "a{ss}",
};

static const char *const near_keys[] = { "", "Address", "baudrate ", "image_name", "match", "speed" };

static int append_value(sd_bus_message *m, const char *type, Input *in, int depth) {
        char s[80];
        uint64_t u;
        int r;

        switch (type[0]) {
        case 'y': case 'b': case 'n': case 'q': case 'i': case 'u': case 'x': case 't': {
                u = take_u64(in);
                if (type[0] == 'b')
                        return sd_bus_message_append_basic(m, 'b', &(int) { (int) (u & 1) });
                if (type[0] == 'y')
                        return sd_bus_message_append_basic(m, 'y', &(uint8_t) { (uint8_t) u });
                if (type[0] == 'n' || type[0] == 'q')
                        return sd_bus_message_append_basic(m, type[0], &(uint16_t) { (uint16_t) u });
                if (type[0] == 'i' || type[0] == 'u')
                        return sd_bus_message_append_basic(m, type[0], &(uint32_t) { (uint32_t) u });
                return sd_bus_message_append_basic(m, type[0], &u);
        }
        case 'd': {
                double d;

                u = take_u64(in);
                memcpy(&d, &u, sizeof d);
                return sd_bus_message_append_basic(m, 'd', &d);
        }
        case 's':
                take_string(in, 72, s);
                return sd_bus_message_append_basic(m, 's', s);
        case 'h': {
                /* an fd option (trace-fd): any open descriptor; the message holds a copy */
                static int null_fd = -1;

                if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                        abort();
                return sd_bus_message_append_basic(m, 'h', &null_fd);
        }
        case 'o': {
                static const char *const paths[] = { "/", "/a", "/io/github/Stm32Isp1/port/ttyUSB0" };

                return sd_bus_message_append_basic(m, 'o', paths[take(in) % 3]);
        }
        case 'g':
                return sd_bus_message_append_basic(m, 'g', types[take(in) % ELEMENTSOF(types)]);
        case 'v': {
                /* variants in variants, a few levels down */
                const char *inner = depth < 3 ? types[take(in) % ELEMENTSOF(types)] : "u";

                r = sd_bus_message_open_container(m, 'v', inner);
                if (r >= 0)
                        r = append_value(m, inner, in, depth + 1);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        }
        case 'a': {
                const char *elem = type + 1;
                size_t n = take(in) % 4;

                if (type[1] == '{') {
                        r = sd_bus_message_open_container(m, 'a', type[2] == 's' && type[3] == 'v' ? "{sv}" : "{ss}");
                        for (size_t i = 0; r >= 0 && i < n; i++) {
                                r = sd_bus_message_open_container(m, 'e', type[3] == 'v' ? "sv" : "ss");
                                if (r >= 0)
                                        r = append_value(m, "s", in, depth + 1);
                                if (r >= 0)
                                        r = append_value(m, type[3] == 'v' ? "v" : "s", in, depth + 1);
                                if (r >= 0)
                                        r = sd_bus_message_close_container(m);
                        }
                } else {
                        r = sd_bus_message_open_container(m, 'a', elem);
                        for (size_t i = 0; r >= 0 && i < n; i++)
                                r = append_value(m, elem, in, depth + 1);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        }
        case '(':
                r = sd_bus_message_open_container(m, 'r', "su");
                if (r >= 0)
                        r = append_value(m, "s", in, depth + 1);
                if (r >= 0)
                        r = append_value(m, "u", in, depth + 1);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r;
        default:
                abort();
        }
}

typedef struct Walk {
        const OptionTable *table;
        uint64_t allowed;
        unsigned calls;
        uint8_t verdict;        /* what the handler answers, from the input */
} Walk;

/* Stands in for the daemon's handlers: checks what the walk hands over, reads the
 * value, and sometimes refuses it the way they do. */
static int handler(const OptionValue *v, void *userdata, sd_bus_error *error) {
        Walk *w = userdata;
        char text[96];

        if (v->table != w->table || v->spec < w->table->specs || v->spec >= w->table->specs + w->table->n_specs ||
            !(w->allowed & OPTION_BIT(v->spec->id)) || v->type != v->spec->signature[0] || v->spec->signature[1])
                abort();
        if (strchr("sog", v->type) && strlen(v->s) > 72)
                abort();
        option_value_to_string(v, text, sizeof text);
        if (!memchr(text, 0, sizeof text))
                abort();
        w->calls++;
        switch ((w->verdict >> (w->calls % 4 * 2)) & 3) {
        case 1:
                return options_error_invalid(error, v);
        case 2:
                return options_error(error, v, "must be %u..%u", 1200u, 3000000u);
        case 3:
                return w->calls % 2 ? -ENOMEM : 0;
        default:
                return 0;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *check = NULL;
        Input in = { data, size };
        uint8_t sel = take(&in);
        const OptionTable *t = cases[sel % ELEMENTSOF(cases)].table;
        Walk w = { .table = t, .allowed = cases[sel % ELEMENTSOF(cases)].allowed, .verdict = take(&in) };
        unsigned n = 0;
        int r;

        if (sd_bus_message_new_method_call(fuzz_bus(), &m, "io.github.Stm32Isp1", "/io/github/Stm32Isp1",
                                           "io.github.Stm32Isp1.Manager", "Fuzz") < 0)
                abort();
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        while (r >= 0 && in.left > 0 && n < 32) {
                uint8_t k = take(&in);
                const char *type = types[take(&in) % ELEMENTSOF(types)];
                char key[80];

                if (k < 0xA0 && t->n_specs > 0)
                        snprintf(key, sizeof key, "%s", t->specs[k % t->n_specs].key);
                else if (k < 0xC0)
                        snprintf(key, sizeof key, "%s", near_keys[k % ELEMENTSOF(near_keys)]);
                else
                        take_string(&in, k - 0xC0, key);
                /* a table's key with its own type, most of the time */
                if (k < 0xA0 && t->n_specs > 0 && (k & 0x40) == 0)
                        type = t->specs[k % t->n_specs].signature;

                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(m, 's', key);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', type);
                if (r >= 0)
                        r = append_value(m, type, &in, 0);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                n++;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0 && (sel & 0x80))
                r = sd_bus_message_append(m, "s", "after");
        if (r < 0)
                goto finish;    /* not a message sd-bus would deliver (invalid UTF-8) */
        if (sd_bus_message_seal(m, 1, 0) < 0 || sd_bus_message_rewind(m, 1) < 0)
                abort();

        r = options_parse(m, t, w.allowed, handler, &w, &error);
        if (r >= 0) {
                const char *tail;

                if ((unsigned) r != n || w.calls != n || sd_bus_error_is_set(&error))
                        abort();
                if ((sel & 0x80) && (sd_bus_message_read(m, "s", &tail) != 1 || strcmp(tail, "after") != 0))
                        abort();
        } else if (sd_bus_error_is_set(&error)) {
                if (r != -EINVAL || !sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS) ||
                    strlen(error.message) > 400)
                        abort();
                /* the reply must be sendable: sd-bus checks UTF-8 as it appends */
                if (sd_bus_message_new_method_call(fuzz_bus(), &check, "a.b", "/", "a.b", "C") < 0 ||
                    sd_bus_message_append(check, "s", error.message) < 0)
                        abort();
        } else if (r != -ENOMEM)
                abort();        /* only the handler's errno comes back without an error */

finish:
        sd_bus_error_free(&error);
        sd_bus_message_unref(check);
        sd_bus_message_unref(m);
        return 0;
}
