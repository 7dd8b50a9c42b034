/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The a{sv} option walk (daemon/service/options.c) against real sd-bus messages. A bus on one
 * end of a socketpair is enough to build and seal messages: no dbus-daemon. */

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "autoflash.h"
#include "options.h"
#include "test-util.h"

static sd_bus *bus;
static int peer_fd = -1;

static void bus_setup(void) {
        int sv[2];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(sd_bus_new(&bus));
        ASSERT_OK(sd_bus_set_fd(bus, sv[0], sv[0]));
        ASSERT_OK(sd_bus_start(bus));
        peer_fd = sv[1];
}

static void bus_teardown(void) {
        /* no flush: nobody reads the other end, and the unanswered auth would make a
         * flush wait for the bus timeout (90 s) */
        bus = sd_bus_close_unref(bus);
        close(peer_fd);
}

static sd_bus_message *new_call(void) {
        sd_bus_message *m = NULL;

        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "io.github.Test", "/t", "io.github.Test", "M"));
        return m;
}

/* Seals m as if it had been sent and rewinds it for reading, as a method handler gets it. */
static void seal(sd_bus_message *m) {
        static uint64_t cookie;

        ASSERT_OK(sd_bus_message_seal(m, ++cookie, 0));
        ASSERT_OK(sd_bus_message_rewind(m, 1));
}

/* ---- a table of every type ---- */

enum { K_Y, K_B, K_N, K_Q, K_I, K_U, K_X, K_T, K_D, K_S, K_O, K_G, K_HIDDEN };

static const OptionSpec all_specs[] = {
        { "y", "y", K_Y }, { "b", "b", K_B }, { "n", "n", K_N }, { "q", "q", K_Q },
        { "i", "i", K_I }, { "u", "u", K_U }, { "x", "x", K_X }, { "t", "t", K_T },
        { "d", "d", K_D }, { "s", "s", K_S }, { "o", "o", K_O }, { "g", "g", K_G },
        { "hidden", "b", K_HIDDEN },
};
static const OptionTable all_table = { "option", all_specs, ELEMENTSOF(all_specs) };
#define ALL_BUT_HIDDEN (OPTIONS_ALL & ~OPTION_BIT(K_HIDDEN))

typedef struct Seen {
        unsigned calls;
        uint64_t ids;
        OptionValue v[16];
        int fail_at;            /* call number (1-based) that fails, 0: none */
        int fail_with;          /* that call: < 0 an errno, else a range error */
} Seen;

static int record(const OptionValue *v, void *userdata, sd_bus_error *error) {
        Seen *s = userdata;

        ASSERT_TRUE(v->table == &all_table);
        ASSERT_EQ(v->type, v->spec->signature[0]);
        ASSERT_TRUE(s->calls < ELEMENTSOF(s->v));
        s->v[s->calls++] = *v;
        s->ids |= OPTION_BIT(v->spec->id);
        if ((int) s->calls == s->fail_at)
                return s->fail_with < 0 ? s->fail_with : options_error(error, v, "must be %d..%d", 1, 2);
        return 0;
}

static void test_every_type(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Seen s = {};
        const char *tail;

        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 12,
                                        "y", "y", 0xA5,
                                        "b", "b", 1,
                                        "n", "n", -12345,
                                        "q", "q", 0xBEEF,
                                        "i", "i", -2000000000,
                                        "u", "u", 4000000000u,
                                        "x", "x", INT64_MIN,
                                        "t", "t", UINT64_MAX,
                                        "d", "d", 2.5,
                                        "s", "s", "h\xc3\xa9llo",
                                        "o", "o", "/a/b",
                                        "g", "g", "a{sv}"));
        ASSERT_OK(sd_bus_message_append(m, "s", "after"));
        seal(m);
        ASSERT_EQ(options_parse(m, &all_table, ALL_BUT_HIDDEN, record, &s, &error), 12);
        ASSERT_TRUE(!sd_bus_error_is_set(&error));
        ASSERT_EQ(s.calls, 12);
        /* in the caller's order, each with its spec */
        for (unsigned i = 0; i < 12; i++)
                ASSERT_TRUE(s.v[i].spec == &all_specs[i]);
        ASSERT_EQ(s.v[K_Y].y, 0xA5);
        ASSERT_EQ(s.v[K_B].b, true);
        ASSERT_EQ(s.v[K_N].n, -12345);
        ASSERT_EQ(s.v[K_Q].q, 0xBEEF);
        ASSERT_EQ(s.v[K_I].i, -2000000000);
        ASSERT_EQ(s.v[K_U].u, 4000000000u);
        ASSERT_TRUE(s.v[K_X].x == INT64_MIN);
        ASSERT_TRUE(s.v[K_T].t == UINT64_MAX);
        ASSERT_TRUE(s.v[K_D].d == 2.5);
        ASSERT_STREQ(s.v[K_S].s, "h\xc3\xa9llo");
        ASSERT_STREQ(s.v[K_O].s, "/a/b");
        ASSERT_STREQ(s.v[K_G].s, "a{sv}");
        /* the message is left at the next argument */
        ASSERT_EQ(sd_bus_message_read(m, "s", &tail), 1);
        ASSERT_STREQ(tail, "after");

        /* values as text, for messages and autoflash_set() */
        {
                static const char *const want[] = { "165", "yes", "-12345", "48879", "-2000000000",
                                                     "4000000000", "-9223372036854775808",
                                                     "18446744073709551615", "2.5", "h\xc3\xa9llo", "/a/b", "a{sv}" };
                char buf[64];

                for (unsigned i = 0; i < 12; i++)
                        ASSERT_STREQ(option_value_to_string(&s.v[i], buf, sizeof buf), want[i]);
                s.v[K_B].b = false;
                ASSERT_STREQ(option_value_to_string(&s.v[K_B], buf, sizeof buf), "no");
                /* a short buffer is cut, still terminated */
                ASSERT_STREQ(option_value_to_string(&s.v[K_T], buf, 5), "1844");
        }
}

static void test_empty(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Seen s = {};

        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        seal(m);
        ASSERT_EQ(options_parse(m, &all_table, OPTIONS_ALL, record, &s, &error), 0);
        ASSERT_EQ(s.calls, 0);
        ASSERT_TRUE(!sd_bus_error_is_set(&error));

        /* the empty table takes an empty dict */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *e = new_call();

                ASSERT_OK(sd_bus_message_append(e, "a{sv}", 0));
                seal(e);
                ASSERT_EQ(options_parse(e, &add_port_option_table, OPTIONS_ALL, record, &s, &error), 0);
        }
}

/* Parses a one-message case and expects InvalidArgs with exactly this text. */
static void expect_invalid(sd_bus_message *m, const OptionTable *t, uint64_t allowed, Seen *s, const char *text) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        seal(m);
        ASSERT_ERR(options_parse(m, t, allowed, record, s, &error), EINVAL);
        ASSERT_STREQ(error.name, SD_BUS_ERROR_INVALID_ARGS);
        ASSERT_STREQ(error.message, text);
}

static void test_unknown(void) {
        Seen s = {};

        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 2, "u", "u", 7, "bogus", "b", 1));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Unknown option 'bogus'");
                ASSERT_EQ(s.calls, 1);  /* keys before it were handled */
        }
        /* a key of the table this caller does not take */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                s = (Seen) {};
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "hidden", "b", 1));
                expect_invalid(m, &all_table, ALL_BUT_HIDDEN, &s, "Unknown option 'hidden'");
                ASSERT_EQ(s.calls, 0);
        }
        /* the empty key; keys differing in case */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "", "b", 1));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Unknown option ''");
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "U", "u", 1));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Unknown option 'U'");
        }
        /* AddPort takes nothing */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "speed", "u", 9600));
                expect_invalid(m, &add_port_option_table, OPTIONS_ALL, &s, "Unknown option 'speed'");
        }
}

static void test_wrong_type(void) {
        Seen s = {};

        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "u", "s", "115200"));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 'u' must be of type 'u', not 's'");
        }
        /* close relatives are not converted */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "t", "u", 5));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 't' must be of type 't', not 'u'");
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "s", "o", "/x"));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 's' must be of type 's', not 'o'");
        }
        /* a variant in the variant */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_open_container(m, 'a', "{sv}"));
                ASSERT_OK(sd_bus_message_open_container(m, 'e', "sv"));
                ASSERT_OK(sd_bus_message_append(m, "s", "u"));
                ASSERT_OK(sd_bus_message_open_container(m, 'v', "v"));
                ASSERT_OK(sd_bus_message_append(m, "v", "u", 5));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 'u' must be of type 'u', not 'v'");
        }
        /* containers */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_open_container(m, 'a', "{sv}"));
                ASSERT_OK(sd_bus_message_open_container(m, 'e', "sv"));
                ASSERT_OK(sd_bus_message_append(m, "s", "s"));
                ASSERT_OK(sd_bus_message_open_container(m, 'v', "as"));
                ASSERT_OK(sd_bus_message_append(m, "as", 2, "a", "b"));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
                ASSERT_OK(sd_bus_message_close_container(m));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 's' must be of type 's', not 'as'");
        }
        ASSERT_EQ(s.calls, 0);
}

static void test_duplicate(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
        Seen s = {};

        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 3, "u", "u", 1, "b", "b", 0, "u", "u", 2));
        expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 'u' is given more than once");
        ASSERT_EQ(s.calls, 2);
        ASSERT_EQ(s.v[0].u, 1);
}

static void test_handler_errors(void) {
        /* a range error from the handler stops the walk, in the same words */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
                Seen s = { .fail_at = 2 };

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 3, "b", "b", 1, "q", "q", 9, "u", "u", 3));
                expect_invalid(m, &all_table, OPTIONS_ALL, &s, "Option 'q' must be 1..2");
                ASSERT_EQ(s.calls, 2);
        }
        /* a plain errno passes through, no error set */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                Seen s = { .fail_at = 1, .fail_with = -ENOMEM };

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "b", "b", 1));
                seal(m);
                ASSERT_ERR(options_parse(m, &all_table, OPTIONS_ALL, record, &s, &error), ENOMEM);
                ASSERT_TRUE(!sd_bus_error_is_set(&error));
        }
        /* options_error_invalid() quotes the value as text */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                OptionValue v = { .table = &port_option_table, .spec = &port_option_table.specs[1], .type = 's',
                                  .s = "zip" };

                ASSERT_STREQ(v.spec->key, "format");
                ASSERT_ERR(options_error_invalid(&error, &v), EINVAL);
                ASSERT_STREQ(error.name, SD_BUS_ERROR_INVALID_ARGS);
                ASSERT_STREQ(error.message, "Invalid value 'zip' for option 'format'");
        }
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                OptionValue v = { .table = &results_filter_table, .spec = &results_filter_table.specs[5],
                                  .type = 'u', .u = 0 };

                ASSERT_STREQ(v.spec->key, "limit");
                ASSERT_ERR(options_error(&error, &v, "must be at least %u", 1u), EINVAL);
                ASSERT_STREQ(error.message, "Filter 'limit' must be at least 1");
        }
}

static void test_not_a_dict(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Seen s = {};

        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                ASSERT_OK(sd_bus_message_append(m, "s", "/etc/passwd"));
                seal(m);
                ASSERT_TRUE(options_parse(m, &all_table, OPTIONS_ALL, record, &s, &error) < 0);
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();

                seal(m);        /* no arguments at all */
                ASSERT_TRUE(options_parse(m, &all_table, OPTIONS_ALL, record, &s, &error) < 0);
        }
        ASSERT_EQ(s.calls, 0);
        ASSERT_ERR(options_parse(NULL, &all_table, OPTIONS_ALL, record, &s, &error), EINVAL);
}

/* A caller's megabyte key is quoted short, on a character boundary: the error must
 * stay valid UTF-8 or sd-bus could not send it. */
static void test_long_key(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(), *check = new_call();
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *key = malloc(1 + 2 * 1500 + 1);
        Seen s = {};

        ASSERT_TRUE(key);
        key[0] = 'k';
        for (size_t i = 0; i < 1500; i++)
                key[1 + 2 * i] = '\xc3', key[2 + 2 * i] = '\xa9';   /* é */
        key[1 + 2 * 1500] = '\0';
        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, key, "b", 1));
        seal(m);
        ASSERT_ERR(options_parse(m, &all_table, OPTIONS_ALL, record, &s, &error), EINVAL);
        ASSERT_TRUE(strlen(error.message) < 100);
        ASSERT_TRUE(strncmp(error.message, "Unknown option 'k\xc3\xa9", 19) == 0);
        ASSERT_TRUE(strstr(error.message, "...'"));
        /* sd-bus checks UTF-8 when a string goes into a message */
        ASSERT_OK(sd_bus_message_append(check, "s", error.message));
}

/* ---- the daemon's tables ---- */

static void check_table(const OptionTable *t, unsigned n_ids) {
        uint64_t ids = 0;

        ASSERT_TRUE(t->n_specs <= 64);
        for (size_t i = 0; i < t->n_specs; i++) {
                const OptionSpec *o = &t->specs[i];

                ASSERT_TRUE(o->key && o->key[0]);
                ASSERT_TRUE(strlen(o->signature) == 1 && strchr("ybnqiuxtdsogh", o->signature[0]));
                ASSERT_TRUE(o->id < n_ids);
                ASSERT_TRUE(!(ids & OPTION_BIT(o->id)));
                ids |= OPTION_BIT(o->id);
                for (size_t k = 0; k < i; k++)
                        ASSERT_TRUE(strcmp(t->specs[k].key, o->key) != 0);
        }
        ASSERT_EQ(t->n_specs, n_ids);
}

static int noop(const OptionValue *v, void *userdata, sd_bus_error *error) {
        (*(unsigned *) userdata)++;
        return 0;
}

static void test_daemon_tables(void) {
        check_table(&port_option_table, _PORT_OPTION_MAX);
        check_table(&results_filter_table, _RESULTS_FILTER_MAX);
        check_table(&autoflash_option_table, _AUTOFLASH_OPTION_MAX);
        ASSERT_EQ(add_port_option_table.n_specs, 0);
        ASSERT_STREQ(results_filter_table.noun, "filter");

        /* The method masks name only keys of the table. */
        ASSERT_EQ(PORT_OPTIONS_FLASH & ~(OPTION_BIT(_PORT_OPTION_MAX) - 1), 0);
        ASSERT_EQ(PORT_OPTIONS_ERASE & ~(OPTION_BIT(_PORT_OPTION_MAX) - 1), 0);
        ASSERT_TRUE((PORT_OPTIONS_FLASH & PORT_OPTIONS_LINK) == PORT_OPTIONS_LINK);
        ASSERT_TRUE((PORT_OPTIONS_ERASE & PORT_OPTIONS_LINK) == PORT_OPTIONS_LINK);

        /* SetAutoFlash: the walk's types are autoflash_set()'s, and every key is one it takes. */
        for (size_t i = 0; i < autoflash_option_table.n_specs; i++) {
                const OptionSpec *o = &autoflash_option_table.specs[i];

                ASSERT_EQ(autoflash_bus_type(o->key), o->signature[0]);
        }

        /* Probe takes the link options only; Flash takes verify; both take baudrate. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                unsigned n = 0;

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 2, "baudrate", "u", 460800, "verify", "b", 0));
                seal(m);
                ASSERT_EQ(options_parse(m, &port_option_table, PORT_OPTIONS_FLASH, noop, &n, &error), 2);
                ASSERT_EQ(n, 2);
                ASSERT_OK(sd_bus_message_rewind(m, 1));
                ASSERT_ERR(options_parse(m, &port_option_table, PORT_OPTIONS_LINK, noop, &n, &error), EINVAL);
                ASSERT_STREQ(error.message, "Unknown option 'verify'");
                ASSERT_EQ(n, 3);
        }
        /* GetResults' words */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                unsigned n = 0;

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 2, "limit", "u", 3, "colour", "s", "red"));
                seal(m);
                ASSERT_ERR(options_parse(m, &results_filter_table, OPTIONS_ALL, noop, &n, &error), EINVAL);
                ASSERT_STREQ(error.message, "Unknown filter 'colour'");
                ASSERT_EQ(n, 1);
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call();
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                unsigned n = 0;

                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, "since", "u", 3));
                seal(m);
                ASSERT_ERR(options_parse(m, &results_filter_table, OPTIONS_ALL, noop, &n, &error), EINVAL);
                ASSERT_STREQ(error.message, "Filter 'since' must be of type 't', not 'u'");
        }
}

int main(void) {
        bus_setup();
        TEST(test_every_type);
        TEST(test_empty);
        TEST(test_unknown);
        TEST(test_wrong_type);
        TEST(test_duplicate);
        TEST(test_handler_errors);
        TEST(test_not_a_dict);
        TEST(test_long_key);
        TEST(test_daemon_tables);
        bus_teardown();
        return 0;
}
