/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispd on a private bus, with simulated boards behind TCP serial servers:
 * the Manager (AddPort/GetPort/RemovePort), Probe and Flash for every family, the
 * signal/property sequence of a flash, Busy, Cancel, a disconnect in the middle of a
 * flash, argument and image validation, 8 ports at once, and shutdown on SIGTERM.
 *
 * With --python SCRIPT it instead sets up one board and runs SCRIPT (a GDBus client)
 * with STM32ISP_TEST_ADDRESS, STM32ISP_TEST_URL and STM32ISP_TEST_IMAGE set, then checks
 * the board's flash holds the image. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon-env.h"
#include "macro.h"
#include "stm32isp.h"
#include "test-util.h"

#define TIMEOUT (60 * USEC_PER_SEC)
#define FLASH_BASE 0x08000000u

static DaemonEnv env;

typedef DaemonCall Call;

static void call_async(sd_bus_message *m, Call *c) {
        *c = (Call) { .error = SD_BUS_ERROR_NULL };
        ASSERT_OK(sd_bus_call_async(env.bus, NULL, m, daemon_call_on_reply, c, TIMEOUT));
}

static void wait_call(Call *c) {
        daemon_env_run_until(&env, &c->done, TIMEOUT);
}

static sd_bus_message *port_call(const char *path, const char *member) {
        sd_bus_message *m = NULL;

        ASSERT_OK(sd_bus_message_new_method_call(env.bus, &m, STM32ISP_BUS_NAME, path,
                                                 STM32ISP_PORT_INTERFACE, member));
        return m;
}

/* Flash(h, a{sv}) with optional "format" and nothing else. */
static void flash_async(const char *path, int fd, const char *format, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, "Flash");

        if (format)
                ASSERT_OK(sd_bus_message_append(m, "ha{sv}", fd, 1, "format", "s", format));
        else
                ASSERT_OK(sd_bus_message_append(m, "ha{sv}", fd, 0));
        call_async(m, c);
}

static void flash_sync(const char *path, const void *data, size_t size, const char *format, Call *c) {
        int fd = daemon_env_memfd(data, size);

        ASSERT_OK(fd);
        flash_async(path, fd, format, c);
        close(fd);      /* the daemon has its own copy once the call is sent */
        wait_call(c);
}

static void probe_sync(const char *path, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, "Probe");

        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        call_async(m, c);
        wait_call(c);
}

static void expect_error(Call *c, const char *name) {
        if (!sd_bus_error_has_name(&c->error, name)) {
                fprintf(stderr, "expected %s, got %s: %s\n", name,
                        c->error.name ?: "(success)", c->error.message ?: "");
                abort();
        }
}

static void expect_ok(Call *c) {
        if (sd_bus_error_is_set(&c->error)) {
                fprintf(stderr, "call failed: %s: %s\n", c->error.name, c->error.message);
                abort();
        }
        ASSERT_TRUE(c->reply);
}

/* Finds key in the a{sv} that is argument argn (0, or 1 after a string); reads a basic
 * value of type into ret. Returns 1 if found. */
static int dict_get(sd_bus_message *m, unsigned argn, const char *key, char type, void *ret) {
        int r;

        ASSERT_OK(sd_bus_message_rewind(m, true));
        for (unsigned i = 0; i < argn; i++)
                ASSERT_OK(sd_bus_message_skip(m, "s"));   /* PropertiesChanged's interface */
        {
                char t;
                const char *contents;

                /* A property Get reply: the value is in a variant. */
                ASSERT_OK(sd_bus_message_peek_type(m, &t, &contents));
                if (t == 'v')
                        ASSERT_OK(sd_bus_message_enter_container(m, 'v', contents));
        }
        ASSERT_OK(sd_bus_message_enter_container(m, 'a', "{sv}"));
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *k, *contents;
                char t;

                ASSERT_OK(sd_bus_message_read(m, "s", &k));
                ASSERT_OK(sd_bus_message_peek_type(m, &t, &contents));
                if (strcmp(k, key) == 0 && contents[0] == type && contents[1] == '\0') {
                        char sig[2] = { type, 0 };

                        ASSERT_OK(sd_bus_message_enter_container(m, 'v', contents));
                        ASSERT_OK(sd_bus_message_read_basic(m, sig[0], ret));
                        return 1;
                }
                ASSERT_OK(sd_bus_message_skip(m, "v"));
                ASSERT_OK(sd_bus_message_exit_container(m));
        }
        ASSERT_OK(r);
        return 0;
}

static char *add_port(const char *device) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path;
        char *copy;
        int r;

        r = sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                               "AddPort", &error, &reply, "sa{sv}", device, 0);
        if (r < 0) {
                fprintf(stderr, "AddPort(%s): %s: %s\n", device, error.name, error.message);
                abort();
        }
        ASSERT_OK(sd_bus_message_read(reply, "o", &path));
        copy = strdup(path);
        ASSERT_TRUE(copy);
        sd_bus_error_free(&error);
        return copy;
}

static void check_flash(SimTcp *t, uint32_t offset, const uint8_t *data, size_t size) {
        _cleanup_free_ uint8_t *flash = NULL;
        size_t flash_size;

        sim_tcp_flash(t, &flash, &flash_size);
        ASSERT_TRUE(offset + size <= flash_size);
        ASSERT_MEMEQ(flash + offset, data, size);
}

/* ---- Manager ---- */

typedef struct ObjectEvents {
        unsigned added, removed;
        char last[256];
} ObjectEvents;

static int on_object_signal(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        ObjectEvents *o = userdata;
        const char *path;

        ASSERT_OK(sd_bus_message_read(m, "o", &path));
        snprintf(o->last, sizeof o->last, "%s", path);
        if (strcmp(sd_bus_message_get_member(m), "InterfacesAdded") == 0)
                o->added++;
        else
                o->removed++;
        return 0;
}

static void test_manager(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *s1 = NULL, *s2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL, *path2 = NULL, *version = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        ObjectEvents ev = {};
        const char *got;
        bool added, removed;

        ASSERT_OK(sim_tcp_new(0x466, 1, &t));
        ASSERT_OK(sd_bus_match_signal(env.bus, &s1, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                      "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_object_signal, &ev));
        ASSERT_OK(sd_bus_match_signal(env.bus, &s2, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                      "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", on_object_signal, &ev));

        ASSERT_OK(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                             STM32ISP_MANAGER_INTERFACE, "Version", &error, &version));
        ASSERT_TRUE(strlen(version) > 0);

        path = add_port(t->url);
        ASSERT_TRUE(strncmp(path, STM32ISP_PORT_PATH_PREFIX "/", strlen(STM32ISP_PORT_PATH_PREFIX) + 1) == 0);
        added = false;
        while (ev.added == 0) {
                ASSERT_OK(sd_bus_process(env.bus, NULL) >= 0 ? 0 : -1);
                if (ev.added == 0)
                        ASSERT_OK(sd_bus_wait(env.bus, TIMEOUT));
        }
        added = ev.added == 1;
        ASSERT_TRUE(added);
        ASSERT_STREQ(ev.last, path);

        /* Known port: the same object, no second InterfacesAdded. */
        path2 = add_port(t->url);
        ASSERT_STREQ(path2, path);

        ASSERT_OK(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                     "GetPort", &error, &reply, "s", t->url));
        ASSERT_OK(sd_bus_message_read(reply, "o", &got));
        ASSERT_STREQ(got, path);
        reply = sd_bus_message_unref(reply);

        {
                _cleanup_free_ char *dev = NULL, *transport = NULL;
                ASSERT_OK(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                                     "Device", &error, &dev));
                ASSERT_STREQ(dev, t->url);
                ASSERT_OK(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                                     "Transport", &error, &transport));
                ASSERT_STREQ(transport, "tcp");
        }

        ASSERT_TRUE(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       "GetPort", &error, NULL, "s", "ttyNOPE99") < 0);
        ASSERT_TRUE(sd_bus_error_has_name(&error, STM32ISP_ERROR_NOT_FOUND));
        sd_bus_error_free(&error);

        ASSERT_TRUE(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       "AddPort", &error, NULL, "sa{sv}", "tcp://nohostport", 0) < 0);
        ASSERT_TRUE(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        sd_bus_error_free(&error);

        ASSERT_TRUE(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       "AddPort", &error, NULL, "sa{sv}", t->url, 1, "bogus", "b", 1) < 0);
        ASSERT_TRUE(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        ASSERT_TRUE(strstr(error.message, "bogus"));
        sd_bus_error_free(&error);

        ASSERT_OK(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                     "RemovePort", &error, NULL, "o", path));
        removed = false;
        while (ev.removed == 0) {
                ASSERT_TRUE(sd_bus_process(env.bus, NULL) >= 0);
                if (ev.removed == 0)
                        ASSERT_OK(sd_bus_wait(env.bus, TIMEOUT));
        }
        removed = ev.removed == 1;
        ASSERT_TRUE(removed);
        ASSERT_STREQ(ev.last, path);
        ASSERT_EQ(ev.added, 1);

        ASSERT_TRUE(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       "GetPort", &error, NULL, "s", t->url) < 0);
        ASSERT_TRUE(sd_bus_error_has_name(&error, STM32ISP_ERROR_NOT_FOUND));
        sd_bus_error_free(&error);
}

/* ---- Probe and Flash, every family ---- */

static void test_families(void) {
        static const uint16_t pids[] = { 0x443, 0x453, 0x444, 0x466, 0x457 };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
                _cleanup_free_ char *path = NULL;
                uint8_t image[4096];
                Call c;
                uint16_t pid = 0;
                uint64_t written = 0;
                const char *err = NULL, *name = NULL;

                fprintf(stderr, "   family 0x%03x\n", pids[i]);
                ASSERT_OK(sim_tcp_new(pids[i], 100 + (uint32_t) i, &t));
                path = add_port(t->url);

                probe_sync(path, &c);
                expect_ok(&c);
                ASSERT_EQ(dict_get(c.reply, 0, "pid", 'q', &pid), 1);
                ASSERT_EQ(pid, pids[i]);
                ASSERT_EQ(dict_get(c.reply, 0, "name", 's', &name), 1);
                ASSERT_TRUE(strlen(name) > 0);
                daemon_call_clear(&c);

                daemon_env_random(image, sizeof image, pids[i]);
                flash_sync(path, image, sizeof image, "bin", &c);
                expect_ok(&c);
                ASSERT_EQ(dict_get(c.reply, 0, "bytes_written", 't', &written), 1);
                ASSERT_TRUE(written >= sizeof image);
                ASSERT_EQ(dict_get(c.reply, 0, "error", 's', &err), 1);
                ASSERT_STREQ(err, "");
                daemon_call_clear(&c);
                check_flash(t, 0, image, sizeof image);

                {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        ASSERT_OK(sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                                     STM32ISP_MANAGER_INTERFACE, "RemovePort", &error, NULL, "o", path));
                }
        }
}

/* ---- the sequence of a flash ---- */

typedef struct Recorder {
        char events[512][64];
        size_t n;
        unsigned progress_signals;
        bool finished;
} Recorder;

static void record(Recorder *r, const char *fmt, ...) _printf_(2, 3);
static void record(Recorder *r, const char *fmt, ...) {
        va_list ap;

        if (r->n >= ELEMENTSOF(r->events))
                return;
        va_start(ap, fmt);
        vsnprintf(r->events[r->n++], sizeof r->events[0], fmt, ap);
        va_end(ap);
}

static int on_port_signal(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        Recorder *r = userdata;
        const char *member = sd_bus_message_get_member(m);

        if (strcmp(member, "Progress") == 0) {
                const char *stage;
                uint64_t done, total;

                ASSERT_OK(sd_bus_message_read(m, "stt", &stage, &done, &total));
                ASSERT_TRUE(done <= total);
                r->progress_signals++;
                record(r, "P %s %" PRIu64 "/%" PRIu64, stage, done, total);
        } else if (strcmp(member, "Finished") == 0) {
                const char *op, *name, *msg;

                ASSERT_OK(sd_bus_message_read(m, "sss", &op, &name, &msg));
                record(r, "F %s %s", op, name);
                r->finished = true;
        } else if (strcmp(member, "PropertiesChanged") == 0) {
                const char *iface, *state = NULL;

                ASSERT_OK(sd_bus_message_read(m, "s", &iface));
                if (strcmp(iface, STM32ISP_PORT_INTERFACE) != 0)
                        return 0;
                if (dict_get(m, 1, "State", 's', &state) > 0)
                        record(r, "S %s", state);
        }
        return 0;
}

static size_t find_event(const Recorder *r, size_t from, const char *prefix) {
        for (size_t i = from; i < r->n; i++)
                if (strncmp(r->events[i], prefix, strlen(prefix)) == 0)
                        return i;
        return SIZE_MAX;
}

static void test_sequence(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *path = NULL, *state = NULL;
        static Recorder rec;
        static uint8_t image[32 * 1024];
        sd_bus_error error = SD_BUS_ERROR_NULL;
        size_t i_write, i_verify, i_fin, i_idle;
        uint64_t t0, elapsed;
        Call c;

        ASSERT_OK(sim_tcp_new(0x466, 7, &t));
        path = add_port(t->url);
        ASSERT_OK(sd_bus_match_signal(env.bus, &slot, STM32ISP_BUS_NAME, path, NULL, NULL, on_port_signal, &rec));

        daemon_env_random(image, sizeof image, 7);
        t0 = now_usec();
        flash_sync(path, image, sizeof image, NULL, &c);
        elapsed = now_usec() - t0;
        expect_ok(&c);
        daemon_call_clear(&c);
        check_flash(t, 0, image, sizeof image);

        for (size_t i = 0; i < rec.n; i++)
                fprintf(stderr, "   %s\n", rec.events[i]);

        /* Busy first, idle last; stages in order; the last write progress is complete;
         * Finished came before the reply (it was recorded while waiting for it). */
        ASSERT_TRUE(rec.finished);
        ASSERT_TRUE(rec.n > 3);
        ASSERT_TRUE(strncmp(rec.events[0], "S ", 2) == 0 && strcmp(rec.events[0], "S idle") != 0);
        i_write = find_event(&rec, 0, "P writing");
        i_verify = find_event(&rec, 0, "P verifying");
        i_fin = find_event(&rec, 0, "F flash ");
        i_idle = find_event(&rec, 0, "S idle");
        ASSERT_TRUE(i_write != SIZE_MAX && i_verify != SIZE_MAX && i_fin != SIZE_MAX && i_idle != SIZE_MAX);
        ASSERT_TRUE(i_write < i_verify && i_verify < i_idle && i_idle < i_fin);
        ASSERT_EQ(i_fin, rec.n - 1);
        {
                size_t last_write = i_write;
                char want[64];

                for (size_t i = i_write; i < rec.n; i++)
                        if (strncmp(rec.events[i], "P writing", 9) == 0)
                                last_write = i;
                snprintf(want, sizeof want, "P writing %zu/%zu", sizeof image, sizeof image);
                ASSERT_STREQ(rec.events[last_write], want);
                snprintf(want, sizeof want, "P verifying %zu/%zu", sizeof image, sizeof image);
                ASSERT_TRUE(find_event(&rec, i_verify, want) != SIZE_MAX);
        }
        /* Throttled: ~20 per second, plus the first and last of each stage. */
        ASSERT_TRUE(rec.progress_signals <= 20 * (elapsed / USEC_PER_SEC + 1) + 2 * 9);
        ASSERT_STREQ(rec.events[i_fin], "F flash ");

        ASSERT_OK(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                             "State", &error, &state));
        ASSERT_STREQ(state, "idle");
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *op = NULL;
                uint16_t pid = 0;

                ASSERT_OK(sd_bus_get_property(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                              "LastResult", &error, &reply, "a{sv}"));
                ASSERT_EQ(dict_get(reply, 0, "operation", 's', &op), 1);
                ASSERT_STREQ(op, "flash");
                reply = sd_bus_message_unref(reply);
                ASSERT_OK(sd_bus_get_property(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                              "Chip", &error, &reply, "a{sv}"));
                ASSERT_EQ(dict_get(reply, 0, "pid", 'q', &pid), 1);
                ASSERT_EQ(pid, 0x466);
        }
}

/* ---- Busy and Cancel ---- */

static void test_busy_cancel(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_free_ char *path = NULL;
        static uint8_t image[64 * 1024];
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *cancel = NULL;
        Call flash, probe, c;
        int fd;

        ASSERT_OK(sim_tcp_new(0x466, 8, &t));
        path = add_port(t->url);
        daemon_env_random(image, sizeof image, 8);
        fd = daemon_env_memfd(image, sizeof image);
        ASSERT_OK(fd);

        /* The daemon handles calls in order: the Flash is running when the Probe arrives. */
        flash_async(path, fd, "bin", &flash);
        close(fd);
        probe_sync(path, &probe);
        expect_error(&probe, STM32ISP_ERROR_BUSY);
        daemon_call_clear(&probe);
        ASSERT_TRUE(!flash.done);

        cancel = port_call(path, "Cancel");
        call_async(cancel, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);

        wait_call(&flash);
        expect_error(&flash, STM32ISP_ERROR_CANCELLED);
        daemon_call_clear(&flash);

        /* The port is usable again. */
        probe_sync(path, &c);
        expect_ok(&c);
        daemon_call_clear(&c);
}

/* ---- the server goes away in the middle of a flash ---- */

static void test_disconnect(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_free_ char *path = NULL;
        static uint8_t image[16 * 1024];
        Call c;

        ASSERT_OK(sim_tcp_new(0x444, 9, &t));
        path = add_port(t->url);
        daemon_env_random(image, sizeof image, 9);
        atomic_store(&t->cut_after, 4000);     /* in the middle of the write stage */
        flash_sync(path, image, sizeof image, "bin", &c);
        expect_error(&c, STM32ISP_ERROR_DISCONNECTED);
        daemon_call_clear(&c);
}

/* ---- validation ---- */

static void test_invalid(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_free_ char *path = NULL;
        static const char garbage_hex[] = ":10000000ZZ\n";
        int p[2], fd;
        Call c;

        ASSERT_OK(sim_tcp_new(0x453, 10, &t));
        path = add_port(t->url);

        /* Not a regular file. */
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        ASSERT_TRUE(write(p[1], "abcd", 4) == 4);
        flash_async(path, p[0], NULL, &c);
        wait_call(&c);
        expect_error(&c, STM32ISP_ERROR_INVALID_IMAGE);
        daemon_call_clear(&c);
        close(p[0]);
        close(p[1]);

        /* Empty. */
        flash_sync(path, "", 0, NULL, &c);
        expect_error(&c, STM32ISP_ERROR_INVALID_IMAGE);
        daemon_call_clear(&c);

        /* Too large (sparse, so it costs nothing). */
        fd = daemon_env_memfd(NULL, 0);
        ASSERT_OK(fd);
        ASSERT_OK(ftruncate(fd, 64 * 1024 * 1024));
        flash_async(path, fd, NULL, &c);
        close(fd);
        wait_call(&c);
        expect_error(&c, STM32ISP_ERROR_IMAGE_TOO_LARGE);
        daemon_call_clear(&c);

        /* Malformed HEX. */
        flash_sync(path, garbage_hex, strlen(garbage_hex), "hex", &c);
        expect_error(&c, STM32ISP_ERROR_INVALID_IMAGE);
        ASSERT_TRUE(c.error.message && strlen(c.error.message) > 0);
        daemon_call_clear(&c);

        /* Larger than the chip's flash (C031: 32 KiB). */
        {
                static uint8_t big[48 * 1024];
                flash_sync(path, big, sizeof big, "bin", &c);
                expect_error(&c, STM32ISP_ERROR_IMAGE_TOO_LARGE);
                daemon_call_clear(&c);
        }

        /* Options: unknown key, wrong type, bad value, wrong method. */
        {
                static const struct {
                        const char *member, *key, *type;
                        const char *s;
                        int b;
                } cases[] = {
                        { "Flash", "bogus", "b", NULL, 1 },
                        { "Flash", "verify", "s", "yes", 0 },
                        { "Flash", "format", "s", "zip", 0 },
                        { "Flash", "erase", "s", "some", 0 },
                        { "Probe", "verify", "b", NULL, 1 },
                        { "Probe", "entry", "s", "dtr,bogus", 0 },
                        { "Erase", "mode", "s", "auto", 0 },        /* auto needs address+length */
                };

                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, cases[i].member);
                        int ifd = -1;

                        if (strcmp(cases[i].member, "Flash") == 0) {
                                ifd = daemon_env_memfd("\x01\x02\x03\x04", 4);
                                ASSERT_OK(ifd);
                                ASSERT_OK(sd_bus_message_append(m, "h", ifd));
                        }
                        if (cases[i].type[0] == 's')
                                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, cases[i].key, "s", cases[i].s));
                        else
                                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 1, cases[i].key, "b", cases[i].b));
                        call_async(m, &c);
                        if (ifd >= 0)
                                close(ifd);
                        wait_call(&c);
                        expect_error(&c, SD_BUS_ERROR_INVALID_ARGS);
                        if (strcmp(cases[i].member, "Erase") != 0)
                                ASSERT_TRUE(strstr(c.error.message, cases[i].key));
                        daemon_call_clear(&c);
                }
        }

        /* Nothing was written. */
        {
                _cleanup_free_ uint8_t *flash = NULL;
                size_t size;

                sim_tcp_flash(t, &flash, &size);
                for (size_t i = 0; i < size; i++)
                        ASSERT_EQ(flash[i], 0xFF);
        }
}

/* ---- Read, Erase, Lock, Unlock, Go ---- */

static void simple_call(const char *path, const char *member, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, member);

        if (strcmp(member, "Go") == 0)
                ASSERT_OK(sd_bus_message_append(m, "t", (uint64_t) 0));
        else
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        call_async(m, c);
        wait_call(c);
}

static void read_back(const char *path, uint32_t address, uint8_t *buf, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, "Read");
        int fd = daemon_env_memfd(NULL, 0);
        Call c;

        ASSERT_OK(fd);
        ASSERT_OK(sd_bus_message_append(m, "htta{sv}", fd, (uint64_t) address, (uint64_t) size, 0));
        call_async(m, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
        ASSERT_EQ(pread(fd, buf, size, 0), (ssize_t) size);
        close(fd);
}

static int32_t chip_rdp(const char *path) {
        Call c;
        int32_t rdp = -1;

        probe_sync(path, &c);
        expect_ok(&c);
        ASSERT_EQ(dict_get(c.reply, 0, "rdp_level", 'i', &rdp), 1);
        daemon_call_clear(&c);
        return rdp;
}

static void test_other_methods(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_free_ char *path = NULL;
        static uint8_t image[2048], back[2048];
        Call c;

        ASSERT_OK(sim_tcp_new(0x444, 12, &t));
        path = add_port(t->url);
        daemon_env_random(image, sizeof image, 12);
        ASSERT_OK(sim_load(t->sim, FLASH_BASE, image, sizeof image));

        /* Read into the caller's fd. */
        read_back(path, FLASH_BASE, back, sizeof back);
        ASSERT_MEMEQ(back, image, sizeof image);

        /* A read-only fd cannot take the data. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = port_call(path, "Read");
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

                ASSERT_OK(fd);
                ASSERT_OK(sd_bus_message_append(m, "htta{sv}", fd, (uint64_t) FLASH_BASE, (uint64_t) 16, 0));
                call_async(m, &c);
                close(fd);
                wait_call(&c);
                expect_error(&c, SD_BUS_ERROR_INVALID_ARGS);
                daemon_call_clear(&c);
        }

        /* Mass erase. */
        simple_call(path, "Erase", &c);
        expect_ok(&c);
        daemon_call_clear(&c);
        read_back(path, FLASH_BASE, back, sizeof back);
        for (size_t i = 0; i < sizeof back; i++)
                ASSERT_EQ(back[i], 0xFF);

        /* Lock (RDP 1), then Unlock (back to 0, flash erased). */
        ASSERT_OK(sim_load(t->sim, FLASH_BASE, image, sizeof image));
        ASSERT_EQ(chip_rdp(path), 0);
        simple_call(path, "Lock", &c);
        expect_ok(&c);
        daemon_call_clear(&c);
        ASSERT_EQ(sim_rdp_level(t->sim), 1);
        simple_call(path, "Unlock", &c);
        expect_ok(&c);
        daemon_call_clear(&c);
        ASSERT_EQ(sim_rdp_level(t->sim), 0);
        {
                _cleanup_free_ uint8_t *flash = NULL;
                size_t size;

                sim_tcp_flash(t, &flash, &size);
                for (size_t i = 0; i < sizeof image; i++)
                        ASSERT_EQ(flash[i], 0xFF);
        }

        /* Go to the flash base: the board runs user code. */
        simple_call(path, "Go", &c);
        expect_ok(&c);
        daemon_call_clear(&c);
        ASSERT_EQ(sim_go_address(t->sim), FLASH_BASE);
}

/* ---- 8 ports at once ---- */

static void test_parallel(void) {
        static const uint16_t pids[8] = { 0x443, 0x453, 0x444, 0x466, 0x457, 0x466, 0x444, 0x453 };
        SimTcp *t[8];
        char *path[8];
        static uint8_t image[8][8192];
        Call c[8];

        for (size_t i = 0; i < 8; i++) {
                ASSERT_OK(sim_tcp_new(pids[i], 200 + (uint32_t) i, &t[i]));
                path[i] = add_port(t[i]->url);
                daemon_env_random(image[i], sizeof image[i], 1000 + (uint32_t) i);
        }
        for (size_t i = 0; i < 8; i++) {
                int fd = daemon_env_memfd(image[i], sizeof image[i]);

                ASSERT_OK(fd);
                flash_async(path[i], fd, "bin", &c[i]);
                close(fd);
        }
        for (size_t i = 0; i < 8; i++) {
                wait_call(&c[i]);
                expect_ok(&c[i]);
                daemon_call_clear(&c[i]);
        }
        for (size_t i = 0; i < 8; i++) {
                check_flash(t[i], 0, image[i], sizeof image[i]);
                sim_tcp_free(t[i]);
                free(path[i]);
        }
}

/* ---- SIGTERM during a job ---- */

static void test_shutdown(void) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        _cleanup_free_ char *path = NULL;
        static uint8_t image[64 * 1024];
        uint64_t usec = 0;
        Call c;
        int fd, status;

        ASSERT_OK(sim_tcp_new(0x466, 11, &t));
        path = add_port(t->url);
        daemon_env_random(image, sizeof image, 11);
        fd = daemon_env_memfd(image, sizeof image);
        ASSERT_OK(fd);
        flash_async(path, fd, "bin", &c);
        close(fd);
        /* The call has reached the daemon once the port reports itself busy. */
        for (;;) {
                _cleanup_free_ char *state = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;

                ASSERT_OK(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                                     "State", &error, &state));
                if (strcmp(state, "idle") != 0)
                        break;
        }
        status = daemon_env_stop_daemon(&env, &usec);
        ASSERT_EQ(status, 0);
        ASSERT_TRUE(usec < 2 * USEC_PER_SEC);
        wait_call(&c);
        expect_error(&c, STM32ISP_ERROR_CANCELLED);
        /* Said as the daemon stopping, not as another client's Cancel. */
        ASSERT_TRUE(c.error.message && strstr(c.error.message, "stm32ispd is stopping"));
        daemon_call_clear(&c);
}

static int run_python(const char *script) {
        _cleanup_(sim_tcp_freep) SimTcp *t = NULL;
        static uint8_t image[6144];
        char image_path[512];
        const char *tmp = getenv("TMPDIR") ?: "/tmp";
        FILE *f;
        pid_t pid;
        int status;

        ASSERT_OK(sim_tcp_new(0x466, 42, &t));
        daemon_env_random(image, sizeof image, 42);
        snprintf(image_path, sizeof image_path, "%s/python-image.bin", tmp);
        f = fopen(image_path, "we");
        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite(image, 1, sizeof image, f), sizeof image);
        fclose(f);

        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                setenv("STM32ISP_TEST_ADDRESS", env.address, 1);
                setenv("STM32ISP_TEST_URL", t->url, 1);
                setenv("STM32ISP_TEST_IMAGE", image_path, 1);
                const char *python = getenv("STM32ISP_TEST_PYTHON") ?: "python3";

                execlp(python, python, script, (char *) NULL);
                _exit(127);
        }
        /* The daemon's bus traffic does not concern us here: just wait. */
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                return EXIT_TEST_SKIP;
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        check_flash(t, 0, image, sizeof image);
        return 0;
}

int main(int argc, char *argv[]) {
        int r;

        signal(SIGPIPE, SIG_IGN);
        r = daemon_env_start(&env, NULL);
        if (r == -EOPNOTSUPP) {
                fprintf(stderr, "dbus-daemon missing, skipping\n");
                return EXIT_TEST_SKIP;
        }
        ASSERT_OK(r);

        if (argc == 3 && strcmp(argv[1], "--python") == 0) {
                r = run_python(argv[2]);
                daemon_env_stop(&env);
                return r;
        }

        TEST(test_manager);
        TEST(test_families);
        TEST(test_sequence);
        TEST(test_busy_cancel);
        TEST(test_disconnect);
        TEST(test_invalid);
        TEST(test_other_methods);
        TEST(test_parallel);
        TEST(test_shutdown);

        daemon_env_stop(&env);
        return 0;
}
