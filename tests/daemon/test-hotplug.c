/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispd with simulated USB-serial adapters (tests/umockdev-sim: a umockdev testbed,
 * the serial shim, a simulated bootloader behind each tty): enumeration at start with
 * the adapters' properties, Probe/Flash through libserialport, hotplug add and remove
 * (InterfacesAdded/InterfacesRemoved), an adapter unplugged in the middle of a flash,
 * the VID:PID configuration lists, STATUS=. Re-runs itself under the harness. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon-env.h"
#include "harness.h"
#include "macro.h"
#include "stm32isp.h"
#include "test-util.h"

#define TIMEOUT (60 * USEC_PER_SEC)

static DaemonEnv env;

static uint16_t get_u16(const char *path, const char *property) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint16_t v = 0;

        ASSERT_OK(sd_bus_get_property_trivial(env.bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                              property, &error, 'q', &v));
        return v;
}

typedef DaemonCall Call;

static void expect_ok(Call *c) {
        if (sd_bus_error_is_set(&c->error)) {
                fprintf(stderr, "call failed: %s: %s\n", c->error.name, c->error.message);
                abort();
        }
}

static void probe(const char *path, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        *c = (Call) { .error = SD_BUS_ERROR_NULL };
        ASSERT_OK(sd_bus_message_new_method_call(env.bus, &m, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "Probe"));
        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        ASSERT_OK(sd_bus_call_async(env.bus, NULL, m, daemon_call_on_reply, c, TIMEOUT));
        daemon_env_run_until(&env, &c->done, TIMEOUT);
}

static void flash_async(const char *path, const void *data, size_t size, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int fd = daemon_env_memfd(data, size);

        ASSERT_OK(fd);
        *c = (Call) { .error = SD_BUS_ERROR_NULL };
        ASSERT_OK(sd_bus_message_new_method_call(env.bus, &m, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE, "Flash"));
        ASSERT_OK(sd_bus_message_append(m, "ha{sv}", fd, 1, "format", "s", "bin"));
        ASSERT_OK(sd_bus_call_async(env.bus, NULL, m, daemon_call_on_reply, c, TIMEOUT));
        close(fd);
}

static void check_dump(const char *name, const uint8_t *data, size_t size) {
        char path[PATH_MAX];
        uint8_t *buf;
        FILE *f;

        snprintf(path, sizeof path, "%s/dump-%s.bin", getenv("TMPDIR") ?: "/tmp", name);
        ASSERT_STREQ(harness_control("dump %s %s", name, path), "ok");
        buf = malloc(size);
        ASSERT_TRUE(buf);
        f = fopen(path, "re");
        ASSERT_TRUE(f);
        ASSERT_EQ(fread(buf, 1, size, f), size);
        fclose(f);
        ASSERT_MEMEQ(buf, data, size);
        free(buf);
}

/* ---- object signals ---- */

static DaemonObjects objects;

static void wait_count(const unsigned *count, unsigned want) {
        uint64_t deadline = now_usec() + TIMEOUT;

        while (*count < want) {
                int r = sd_bus_process(env.bus, NULL);

                ASSERT_OK(r);
                if (r > 0)
                        continue;
                ASSERT_TRUE(now_usec() < deadline);
                ASSERT_OK(sd_bus_wait(env.bus, deadline - now_usec()));
        }
}

/* ---- tests ---- */

static void test_enumeration(void) {
        _cleanup_free_ char *p0 = daemon_env_port_path("ttyUSB0"), *p1 = daemon_env_port_path("ttyUSB1");
        _cleanup_free_ char *g = NULL, *dev = NULL, *serial = NULL, *phys = NULL, *product = NULL, *state = NULL;
        char err[256] = "";

        g = daemon_env_get_port(&env, "/dev/ttyUSB0", err, sizeof err);
        ASSERT_TRUE(g);
        ASSERT_STREQ(g, p0);
        free(g);
        g = daemon_env_get_port(&env, "ttyUSB1", err, sizeof err);
        ASSERT_TRUE(g);
        ASSERT_STREQ(g, p1);

        ASSERT_EQ(get_u16(p0, "VendorId"), 0x0403);
        ASSERT_EQ(get_u16(p0, "ProductId"), 0x6001);
        ASSERT_EQ(get_u16(p1, "VendorId"), 0x1a86);
        ASSERT_EQ(get_u16(p1, "ProductId"), 0x7523);
        dev = daemon_env_get_string(&env, p0, "Device");
        ASSERT_STREQ(dev, "/dev/ttyUSB0");
        serial = daemon_env_get_string(&env, p0, "Serial");
        ASSERT_TRUE(strlen(serial) > 0);
        phys = daemon_env_get_string(&env, p0, "PhysicalPath");
        ASSERT_TRUE(strncmp(phys, "pci-", 4) == 0);
        product = daemon_env_get_string(&env, p0, "Product");
        ASSERT_STREQ(product, "FT232R USB UART");
        state = daemon_env_get_string(&env, p0, "State");
        ASSERT_STREQ(state, "idle");

        /* Only the two adapters (no other tty of the testbed). */
        ASSERT_TRUE(!daemon_env_get_port(&env, "ttyS0", err, sizeof err));
        ASSERT_STREQ(err, STM32ISP_ERROR_NOT_FOUND);

        ASSERT_TRUE(daemon_env_wait_status(&env, "2 ports, 0 busy", TIMEOUT));
}

static void test_probe_flash(void) {
        _cleanup_free_ char *p0 = daemon_env_port_path("ttyUSB0"), *p1 = daemon_env_port_path("ttyUSB1");
        static uint8_t image[8192];
        Call c;

        probe(p0, &c);
        expect_ok(&c);
        ASSERT_EQ(daemon_env_chip_pid(c.reply), 0x466);
        daemon_call_clear(&c);
        probe(p1, &c);
        expect_ok(&c);
        ASSERT_EQ(daemon_env_chip_pid(c.reply), 0x444);
        daemon_call_clear(&c);

        daemon_env_random(image, sizeof image, 5);
        flash_async(p1, image, sizeof image, &c);
        daemon_env_run_until(&env, &c.done, TIMEOUT);
        expect_ok(&c);
        daemon_call_clear(&c);
        check_dump("ttyUSB1", image, sizeof image);
}

static void test_hotplug(void) {
        _cleanup_free_ char *p2 = daemon_env_port_path("ttyUSB2"), *g = NULL;
        char err[256] = "";
        Call c;

        harness_control_ok("add ttyUSB2=0x457,adapter=cp2102");
        wait_count(&objects.n_added, 1);
        ASSERT_STREQ(objects.added[0], p2);
        ASSERT_EQ(get_u16(p2, "VendorId"), 0x10c4);
        probe(p2, &c);
        expect_ok(&c);
        ASSERT_EQ(daemon_env_chip_pid(c.reply), 0x457);
        daemon_call_clear(&c);

        harness_control_ok("remove ttyUSB2");
        wait_count(&objects.n_removed, 1);
        ASSERT_STREQ(objects.removed[0], p2);
        g = daemon_env_get_port(&env, "ttyUSB2", err, sizeof err);
        ASSERT_TRUE(!g);
        ASSERT_STREQ(err, STM32ISP_ERROR_NOT_FOUND);
}

typedef struct Unplug {
        bool sent;
} Unplug;

/* Pulls the adapter at the first write progress: the flash is then surely running. */
static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        Unplug *u = userdata;
        const char *stage;
        uint64_t done, total;

        ASSERT_OK(sd_bus_message_read(m, "stt", &stage, &done, &total));
        if (!u->sent && strcmp(stage, "writing") == 0 && done < total) {
                harness_control_ok("hangup ttyUSB0");
                harness_control_ok("remove ttyUSB0");
                u->sent = true;
        }
        return 0;
}

static void test_unplug(void) {
        _cleanup_free_ char *p0 = daemon_env_port_path("ttyUSB0"), *g = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        static uint8_t image[64 * 1024];
        char err[256] = "";
        Unplug u = {};
        unsigned removed_before = objects.n_removed;
        Call c;

        ASSERT_OK(sd_bus_match_signal(env.bus, &slot, STM32ISP_BUS_NAME, p0, STM32ISP_PORT_INTERFACE, "Progress",
                                      on_progress, &u));
        daemon_env_random(image, sizeof image, 6);
        flash_async(p0, image, sizeof image, &c);
        daemon_env_run_until(&env, &c.done, TIMEOUT);
        ASSERT_TRUE(u.sent);
        if (!sd_bus_error_has_name(&c.error, STM32ISP_ERROR_DISCONNECTED)) {
                fprintf(stderr, "expected Disconnected, got %s\n", c.error.name ?: "success");
                abort();
        }
        daemon_call_clear(&c);

        wait_count(&objects.n_removed, removed_before + 1);
        ASSERT_STREQ(objects.removed[removed_before], p0);
        g = daemon_env_get_port(&env, "/dev/ttyUSB0", err, sizeof err);
        ASSERT_TRUE(!g);

        /* The remaining port still works. */
        {
                _cleanup_free_ char *p1 = daemon_env_port_path("ttyUSB1");
                probe(p1, &c);
                expect_ok(&c);
                daemon_call_clear(&c);
        }
        ASSERT_TRUE(daemon_env_wait_status(&env, "1 port, 0 busy", TIMEOUT));
}

static void test_config(void) {
        char conf[PATH_MAX], arg[PATH_MAX + 16], err[256] = "";
        char *args[] = { arg, NULL };
        _cleanup_free_ char *g = NULL;
        FILE *f;

        /* A fresh daemon that manages only CH340 adapters (ttyUSB1), not FTDI or others. */
        daemon_env_stop(&env);
        snprintf(conf, sizeof conf, "%s/stm32ispd.conf", getenv("TMPDIR") ?: "/tmp");
        f = fopen(conf, "we");
        ASSERT_TRUE(f);
        fprintf(f, "[Adapters]\nAllow=1a86:* 0403:6001\nDeny=0403:*\n");
        fclose(f);
        snprintf(arg, sizeof arg, "--config=%s", conf);
        ASSERT_OK(daemon_env_start(&env, args));

        g = daemon_env_get_port(&env, "ttyUSB1", err, sizeof err);
        ASSERT_TRUE(g);
        free(g);
        g = daemon_env_get_port(&env, "ttyUSB3", err, sizeof err);
        ASSERT_TRUE(!g);
        {
                _cleanup_free_ char *p4 = daemon_env_port_path("ttyUSB4");
                unsigned before = objects.n_added;

                daemon_env_watch_objects(&env, &objects);
                harness_control_ok("add ttyUSB3=0x453,adapter=cp2102");   /* not allowed */
                harness_control_ok("add ttyUSB4=0x453,adapter=ch340");    /* allowed */
                wait_count(&objects.n_added, before + 1);
                /* Events arrive in order: ttyUSB3 would have come first. */
                ASSERT_STREQ(objects.added[before], p4);
                daemon_objects_unwatch(&objects);
        }
        ASSERT_TRUE(!daemon_env_get_port(&env, "ttyUSB3", err, sizeof err));
}

int main(int argc, char *argv[]) {
        int r;

        if (!harness_active())
                return harness_reexec("test-hotplug", (const char *const[]) {
                        "--board", "ttyUSB0=0x466", "--board", "ttyUSB1=0x444,adapter=ch340", NULL });

        r = daemon_env_start(&env, NULL);
        if (r == -EOPNOTSUPP)
                return EXIT_TEST_SKIP;
        ASSERT_OK(r);
        daemon_env_watch_objects(&env, &objects);

        TEST(test_enumeration);
        TEST(test_probe_flash);
        TEST(test_hotplug);
        TEST(test_unplug);
        daemon_objects_unwatch(&objects);
        TEST(test_config);

        daemon_env_stop(&env);
        return 0;
}
