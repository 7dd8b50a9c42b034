/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Adapter and Input rows of the fault matrix through real udev events: stm32ispd
 * under tests/umockdev-sim (a umockdev testbed, the serial shim, a simulated bootloader
 * behind each tty). What tests/test-daemon-hotplug.c does not already cover:
 *   - an adapter unplugged (udev "remove" + tty hang-up) in the middle of erase, write,
 *     verify and read: the call ends Disconnected, the object leaves the bus, the worker
 *     thread goes and the tty fd is closed (/proc/PID/task and /proc/PID/fd against a
 *     baseline), and the results log records a failure;
 *   - the same adapter (same serial) plugged back under a new name; GetPort through a
 *     /dev/serial/by-id link;
 *   - a chip that does not match the auto-flash profile, and a chip the daemon does not
 *     know (umockdev-sim's id= option): UnsupportedChip before anything is erased;
 *     stm32ispctl exits 15;
 *   - every method on a port whose adapter is going or gone answers a named error.
 * Re-runs itself under the harness. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon-env.h"
#include "harness.h"
#include "macro.h"
#include "stm32isp.h"
#include "string-util.h"
#include "test-util.h"

#define TIMEOUT (60 * USEC_PER_SEC)
#define FLASH_BASE 0x08000000u
#define ERROR_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"

static DaemonEnv env;

/* ---- the harness ---- */

/* One simulator counter from "info NAME" ("... writes=0 page-erases=0 ..."). */
static unsigned long sim_counter(const char *name, const char *key) {
        char k[64];
        const char *a = harness_control("info %s", name), *p;

        ASSERT_TRUE(strncmp(a, "ok ", 3) == 0);
        snprintf(k, sizeof k, " %s=", key);
        p = strstr(a, k);
        if (!p) {
                fprintf(stderr, "no %s in '%s'\n", key, a);
                abort();
        }
        return strtoul(p + strlen(k), NULL, 0);
}

static void check_untouched(const char *name) {
        ASSERT_EQ(sim_counter(name, "writes"), 0);
        ASSERT_EQ(sim_counter(name, "page-erases"), 0);
        ASSERT_EQ(sim_counter(name, "mass-erases"), 0);
        ASSERT_EQ(sim_counter(name, "ob-writes"), 0);
}

static uint8_t *dump_flash(const char *name, size_t *ret_size) {
        char path[PATH_MAX];
        uint8_t *buf;
        struct stat st;
        FILE *f;

        snprintf(path, sizeof path, "%s/dump-%s.bin", getenv("TMPDIR") ?: "/tmp", name);
        harness_control_ok("dump %s %s", name, path);
        f = fopen(path, "re");
        ASSERT_TRUE(f);
        ASSERT_EQ(fstat(fileno(f), &st), 0);
        buf = malloc((size_t) st.st_size);
        ASSERT_TRUE(buf);
        ASSERT_EQ(fread(buf, 1, (size_t) st.st_size, f), (size_t) st.st_size);
        fclose(f);
        *ret_size = (size_t) st.st_size;
        return buf;
}

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        ASSERT_EQ(fwrite(data, 1, size, f), size);
        ASSERT_EQ(fclose(f), 0);
}

/* ---- the daemon's resources ---- */

typedef struct Usage {
        unsigned threads, fds, ttys;
        char fd_list[4096];             /* "N:target " for each fd: for the failure message */
} Usage;

static Usage usage(void) {
        Usage u = {};
        char path[64];
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof path, "/proc/%d/task", (int) env.daemon_pid);
        d = opendir(path);
        ASSERT_TRUE(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        u.threads++;
        closedir(d);

        snprintf(path, sizeof path, "/proc/%d/fd", (int) env.daemon_pid);
        d = opendir(path);
        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                char target[PATH_MAX];
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                u.fds++;
                k = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
                if (k <= 0)
                        continue;
                target[k] = 0;
                snprintf(u.fd_list + strlen(u.fd_list), sizeof u.fd_list - strlen(u.fd_list), "%s:%.120s ",
                         de->d_name, target);
                /* umockdev backs /dev/ttyUSBn with a pty: an open port is a /dev/pts fd */
                if (strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0)
                        u.ttys++;
        }
        closedir(d);
        return u;
}

/* The worker thread is joined and the tty closed after the object left the bus; no
 * event outside the daemon tells when, so poll /proc, bounded (10 s). */
static void expect_back_to(const Usage *base) {
        Usage u = {};

        for (unsigned i = 0; i < 1000; i++) {
                u = usage();
                if (u.threads <= base->threads && u.fds <= base->fds && u.ttys <= base->ttys)
                        return;
                usleep(10000);
        }
        fprintf(stderr, "daemon at %u threads, %u fds, %u ttys; baseline %u, %u, %u\n",
                u.threads, u.fds, u.ttys, base->threads, base->fds, base->ttys);
        fprintf(stderr, "fds now:      %s\nfds baseline: %s\n", u.fd_list, base->fd_list);
        abort();
}

/* ---- objects ---- */

static DaemonObjects objects;

static bool listed(char list[][256], unsigned n, const char *path) {
        for (unsigned i = 0; i < n; i++)
                if (strcmp(list[i], path) == 0)
                        return true;
        return false;
}

/* Runs the bus until the object was announced (removed = false) or withdrawn. */
static void wait_object(const char *path, bool removed) {
        uint64_t deadline = now_usec() + TIMEOUT;

        while (!(removed ? listed(objects.removed, objects.n_removed, path)
                         : listed(objects.added, objects.n_added, path))) {
                int r = sd_bus_process(env.bus, NULL);

                ASSERT_OK(r);
                if (r > 0)
                        continue;
                if (now_usec() >= deadline) {
                        fprintf(stderr, "%s was not %s\n", path, removed ? "removed" : "added");
                        abort();
                }
                ASSERT_OK(sd_bus_wait(env.bus, deadline - now_usec()));
        }
}

/* ---- calls ---- */

typedef DaemonCall Call;

static void start_call(sd_bus_message *m, Call *c) {
        *c = (Call) { .error = SD_BUS_ERROR_NULL };
        ASSERT_OK(sd_bus_call_async(env.bus, NULL, m, daemon_call_on_reply, c, TIMEOUT));
}

static void wait_call(Call *c) {
        daemon_env_run_until(&env, &c->done, TIMEOUT);
}

static void expect_ok(const Call *c) {
        if (sd_bus_error_is_set(&c->error)) {
                fprintf(stderr, "call failed: %s: %s\n", c->error.name, c->error.message);
                abort();
        }
}

static void expect_error(const Call *c, const char *name) {
        if (!sd_bus_error_has_name(&c->error, name)) {
                fprintf(stderr, "expected %s, got %s: %s\n", name, daemon_call_outcome(c), c->error.message ?: "");
                abort();
        }
        /* every error names the problem */
        ASSERT_TRUE(c->error.message && strlen(c->error.message) > 0);
}

static sd_bus_message *new_call(const char *path, const char *interface, const char *member) {
        sd_bus_message *m = NULL;

        ASSERT_OK(sd_bus_message_new_method_call(env.bus, &m, STM32ISP_BUS_NAME, path, interface, member));
        return m;
}

static void probe_async(const char *path, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(path, STM32ISP_PORT_INTERFACE, "Probe");

        ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
        start_call(m, c);
}

static void flash_async(const char *path, const void *data, size_t size, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(path, STM32ISP_PORT_INTERFACE, "Flash");
        int fd = daemon_env_memfd(data, size);

        ASSERT_OK(fd);
        ASSERT_OK(sd_bus_message_append(m, "ha{sv}", fd, 1, "format", "s", "bin"));
        start_call(m, c);
        close(fd);      /* the message holds its own copy */
}

static void read_async(const char *path, uint64_t length, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(path, STM32ISP_PORT_INTERFACE, "Read");
        int fd = daemon_env_memfd(NULL, 0);

        ASSERT_OK(fd);
        ASSERT_OK(sd_bus_message_append(m, "htta{sv}", fd, (uint64_t) FLASH_BASE, length, 0));
        start_call(m, c);
        close(fd);
}

static void expect_no_port(const char *device) {
        _cleanup_free_ char *p = NULL;
        char err[256] = "";

        p = daemon_env_get_port(&env, device, err, sizeof err);
        if (p) {
                fprintf(stderr, "GetPort(%s) still answers %s\n", device, p);
                abort();
        }
        ASSERT_STREQ(err, STM32ISP_ERROR_NOT_FOUND);
}

/* ---- the results log (GetResults) ---- */

typedef struct Result {
        char operation[32], result[16], error[128], message[256];
        uint64_t chip_pid;
        bool have_chip_pid, automatic;
} Result;

/* The results logged for one port, oldest first; returns how many. */
static size_t get_results(const char *device, Result *ret, size_t max) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        size_t n = 0;
        int r;

        if (sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                               "GetResults", &error, &reply, "a{sv}", 1, "port", "s", device) < 0) {
                fprintf(stderr, "GetResults: %s: %s\n", error.name, error.message);
                abort();
        }
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "a{sv}"));
        while ((r = sd_bus_message_enter_container(reply, 'a', "{sv}")) > 0) {
                Result x = {};

                while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                        const char *key, *contents, *s;
                        char type;

                        ASSERT_OK(sd_bus_message_read(reply, "s", &key));
                        ASSERT_OK(sd_bus_message_peek_type(reply, &type, &contents));
                        if (streq(contents, "s")) {
                                ASSERT_OK(sd_bus_message_read(reply, "v", "s", &s));
                                if (streq(key, "operation"))
                                        snprintf(x.operation, sizeof x.operation, "%s", s);
                                else if (streq(key, "result"))
                                        snprintf(x.result, sizeof x.result, "%s", s);
                                else if (streq(key, "error"))
                                        snprintf(x.error, sizeof x.error, "%s", s);
                                else if (streq(key, "message"))
                                        snprintf(x.message, sizeof x.message, "%s", s);
                        } else if (streq(contents, "t") && streq(key, "chip_pid")) {
                                ASSERT_OK(sd_bus_message_read(reply, "v", "t", &x.chip_pid));
                                x.have_chip_pid = true;
                        } else if (streq(contents, "b") && streq(key, "auto")) {
                                int b;

                                ASSERT_OK(sd_bus_message_read(reply, "v", "b", &b));
                                x.automatic = b;
                        } else
                                ASSERT_OK(sd_bus_message_skip(reply, "v"));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                }
                ASSERT_OK(r);
                ASSERT_OK(sd_bus_message_exit_container(reply));
                if (n < max)
                        ret[n] = x;
                n++;
        }
        ASSERT_OK(r);
        return n;
}

/* ---- stm32ispctl ---- */

/* Runs the client against our bus; returns its exit status. */
static int run_client(char *const *args) {
        char ctl[PATH_MAX], addr[600];
        char *argv[16];
        size_t n = 0;
        int pidfd, status = 0;
        pid_t pid;

        snprintf(ctl, sizeof ctl, "%s/client/stm32ispctl", getenv("TOP_BUILDDIR") ?: ".");
        snprintf(addr, sizeof addr, "--bus-address=%s", env.address);
        argv[n++] = ctl;
        argv[n++] = addr;
        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                /* the client needs neither the testbed nor the shim */
                unsetenv("LD_PRELOAD");
                execv(ctl, argv);
                _exit(127);
        }
        pidfd = pidfd_open(pid, 0);
        ASSERT_TRUE(pidfd >= 0);
        {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                int r;

                do
                        r = poll(&p, 1, (int) (TIMEOUT / USEC_PER_MSEC));
                while (r < 0 && errno == EINTR);
                if (r == 0) {
                        fprintf(stderr, "stm32ispctl %s did not end\n", args[0]);
                        kill(pid, SIGKILL);
                }
        }
        close(pidfd);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* ---- 0. warm-up ---- */

/* One board through Probe and Flash: what the daemon allocates on first use (the
 * journal socket for the job records, sd-event's timer fds) is then in every baseline. */
static void test_warm_up(void) {
        _cleanup_free_ char *path = daemon_env_port_path("ttyUSB9");
        static uint8_t image[4096];
        Call c;

        harness_control_ok("add ttyUSB9=0x466");
        wait_object(path, false);
        probe_async(path, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
        daemon_env_random(image, sizeof image, 9);
        flash_async(path, image, sizeof image, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
        harness_control_ok("remove ttyUSB9");
        wait_object(path, true);
}

/* ---- 1. unplug in every stage ---- */

typedef struct Watch {
        const char *board;              /* unplugged at the first Progress of stage */
        const char *stage;
        bool unplugged;
        Usage during;                   /* the daemon while the job ran */
        char last_stage[32];
        bool finished;
        char finished_error[128];
        Call *calls;                    /* fired at the unplug (test 5) */
        bool calls_before_answer;       /* ...while the harness still handles "remove" */
} Watch;

static void fire_methods(const char *path, Call *c);

static int on_port_signal(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        Watch *w = userdata;
        const char *member = sd_bus_message_get_member(m);

        if (strcmp(member, "Finished") == 0) {
                const char *op, *name, *message;

                ASSERT_OK(sd_bus_message_read(m, "sss", &op, &name, &message));
                snprintf(w->finished_error, sizeof w->finished_error, "%s", name);
                w->finished = true;
        } else if (strcmp(member, "Progress") == 0) {
                const char *stage;
                uint64_t done, total;

                ASSERT_OK(sd_bus_message_read(m, "stt", &stage, &done, &total));
                if (w->unplugged)
                        return 0;
                snprintf(w->last_stage, sizeof w->last_stage, "%s", stage);
                if (w->stage && strcmp(stage, w->stage) == 0) {
                        w->during = usage();
                        /* the udev "remove" event, then the tty hangs up */
                        harness_send("remove %s", w->board);
                        if (w->calls && w->calls_before_answer)
                                fire_methods(sd_bus_message_get_path(m), w->calls);
                        ASSERT_STREQ(harness_answer(), "ok");
                        if (w->calls && !w->calls_before_answer)
                                fire_methods(sd_bus_message_get_path(m), w->calls);
                        w->unplugged = true;
                }
        }
        return 0;
}

static void test_unplug_stages(void) {
        static const struct {
                const char *stage, *board;
                size_t image_size;      /* 0: Read */
        } cases[] = {
                /* 31 of 32 pages: a page erase of about 0.7 s, not a mass erase */
                { "erasing",   "ttyUSB10", 62 * 1024 },
                { "writing",   "ttyUSB11", 32 * 1024 },
                { "verifying", "ttyUSB12", 16 * 1024 },
                { "reading",   "ttyUSB13", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
                _cleanup_free_ char *path = daemon_env_port_path(cases[i].board), *dev = NULL;
                _cleanup_free_ uint8_t *image = NULL;
                Watch w = { .board = cases[i].board, .stage = cases[i].stage };
                Result res[4];
                Usage base;
                Call c;

                base = usage();
                ASSERT_OK(sd_bus_match_signal(env.bus, &slot, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                              NULL, on_port_signal, &w));
                /* the simulator's timing model: the stages last (115200 baud, flash times) */
                harness_control_ok("add %s=0x466,timing=1", cases[i].board);
                wait_object(path, false);

                if (cases[i].image_size > 0) {
                        image = malloc(cases[i].image_size);
                        ASSERT_TRUE(image);
                        daemon_env_random(image, cases[i].image_size, 800 + (uint32_t) i);
                        flash_async(path, image, cases[i].image_size, &c);
                } else
                        read_async(path, 16 * 1024, &c);
                wait_call(&c);
                fprintf(stderr, "   unplug while %-9s (last stage %s) -> %s: %s\n", cases[i].stage, w.last_stage,
                        daemon_call_outcome(&c), c.error.message ?: "");
                ASSERT_TRUE(w.unplugged);
                /* still in that stage when the job ended: the unplug hit it */
                ASSERT_STREQ(w.last_stage, cases[i].stage);
                expect_error(&c, STM32ISP_ERROR_DISCONNECTED);
                daemon_call_clear(&c);

                /* the job had a thread and the tty open: the checks below can fail */
                ASSERT_TRUE(w.during.threads > base.threads);
                ASSERT_TRUE(w.during.ttys > base.ttys);

                wait_object(path, true);
                ASSERT_TRUE(w.finished);
                ASSERT_STREQ(w.finished_error, STM32ISP_ERROR_DISCONNECTED);
                expect_no_port(cases[i].board);
                expect_back_to(&base);

                /* never reported as flashed (or read) */
                ASSERT_OK(asprintf(&dev, "/dev/%s", cases[i].board));
                ASSERT_EQ(get_results(dev, res, ELEMENTSOF(res)), 1);
                ASSERT_STREQ(res[0].operation, cases[i].image_size > 0 ? "flash" : "read");
                ASSERT_STREQ(res[0].result, "fail");
                ASSERT_STREQ(res[0].error, STM32ISP_ERROR_DISCONNECTED);
        }
        ASSERT_TRUE(daemon_env_wait_status(&env, "0 ports, 0 busy", TIMEOUT));
}

/* ---- 2. the same adapter under a new name ---- */

/* The adapter keeps its serial number. Its physical path does not stay the same here:
 * umockdev-sim numbers the USB port by plug order and has no option to choose it. */

static void test_replug(void) {
        _cleanup_free_ char *p0 = daemon_env_port_path("ttyUSB0"), *p1 = daemon_env_port_path("ttyUSB1"), *g = NULL;
        _cleanup_free_ char *serial = NULL, *product = NULL, *dev = NULL;
        _cleanup_free_ uint8_t *flash = NULL;
        static uint8_t image[8192];
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char err[256] = "", link[PATH_MAX], dir[PATH_MAX];
        const char *root = getenv("UMOCKDEV_DIR");
        const char *by_id = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_REPLUG01-if00-port0";
        char *state = NULL;
        size_t size;
        Usage base;
        Call c;

        base = usage();
        harness_control_ok("add ttyUSB0=0x466,serial=REPLUG01");
        wait_object(p0, false);
        serial = daemon_env_get_string(&env, p0, "Serial");
        ASSERT_STREQ(serial, "REPLUG01");
        probe_async(p0, &c);
        wait_call(&c);
        expect_ok(&c);
        ASSERT_EQ(daemon_env_chip_pid(c.reply), 0x466);
        daemon_call_clear(&c);

        harness_control_ok("remove ttyUSB0");
        wait_object(p0, true);
        expect_back_to(&base);

        /* Back in, under the next free name, as the kernel would name it. */
        harness_control_ok("add ttyUSB1=0x466,serial=REPLUG01");
        wait_object(p1, false);
        expect_no_port("ttyUSB0");
        expect_no_port("/dev/ttyUSB0");
        g = daemon_env_get_port(&env, "/dev/ttyUSB1", err, sizeof err);
        ASSERT_TRUE(g);
        ASSERT_STREQ(g, p1);
        free(serial);
        serial = daemon_env_get_string(&env, p1, "Serial");
        ASSERT_STREQ(serial, "REPLUG01");
        product = daemon_env_get_string(&env, p1, "Product");
        ASSERT_STREQ(product, "FT232R USB UART");
        dev = daemon_env_get_string(&env, p1, "Device");
        ASSERT_STREQ(dev, "/dev/ttyUSB1");
        /* the old object is gone for good */
        ASSERT_TRUE(sd_bus_get_property_string(env.bus, STM32ISP_BUS_NAME, p0, STM32ISP_PORT_INTERFACE,
                                               "State", &error, &state) < 0);
        ASSERT_STREQ(error.name, ERROR_UNKNOWN_OBJECT);
        sd_bus_error_free(&error);

        daemon_env_random(image, sizeof image, 900);
        flash_async(p1, image, sizeof image, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
        flash = dump_flash("ttyUSB1", &size);
        ASSERT_TRUE(size >= sizeof image);
        ASSERT_MEMEQ(flash, image, sizeof image);

        /* A by-id link, as udev makes it (umockdev-sim lists it in DEVLINKS but makes no
         * node): put one into the testbed's /dev. */
        ASSERT_TRUE(root);
        snprintf(dir, sizeof dir, "%s/dev/serial", root);
        ASSERT_TRUE(mkdir(dir, 0755) == 0 || errno == EEXIST);
        snprintf(dir, sizeof dir, "%s/dev/serial/by-id", root);
        ASSERT_TRUE(mkdir(dir, 0755) == 0 || errno == EEXIST);
        snprintf(link, sizeof link, "%s%s", root, by_id);
        ASSERT_EQ(symlink("../../ttyUSB1", link), 0);
        free(g);
        /* The daemon follows the link with readlink(), never opening it. */
        g = daemon_env_get_port(&env, by_id, err, sizeof err);
        if (!g)
                fprintf(stderr, "GetPort(%s): %s\n", by_id, err);
        ASSERT_TRUE(g);
        ASSERT_STREQ(g, p1);

        harness_control_ok("remove ttyUSB1");
        wait_object(p1, true);
        expect_back_to(&base);
}

/* ---- 3. and 4. the wrong chip, an unknown chip ---- */

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        Watch *w = userdata;
        const char *op, *name, *message;

        ASSERT_OK(sd_bus_message_read(m, "sss", &op, &name, &message));
        snprintf(w->finished_error, sizeof w->finished_error, "%s", name);
        w->finished = true;
        return 0;
}

static void set_auto_flash(const void *data, size_t size, uint16_t chip, const char *serial) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m =
                new_call(STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE, "SetAutoFlash");
        int fd = daemon_env_memfd(data, size);
        Call c;

        ASSERT_OK(fd);
        ASSERT_OK(sd_bus_message_append(m, "ha{sv}", fd, 3, "format", "s", "bin", "chip", "q", chip,
                                        "serial", "s", serial));
        start_call(m, &c);
        close(fd);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
}

static void clear_auto_flash(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m =
                new_call(STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE, "ClearAutoFlash");
        Call c;

        start_call(m, &c);
        wait_call(&c);
        expect_ok(&c);
        daemon_call_clear(&c);
}

/* Plugs a board under an armed profile that expects 0x466: refused before any erase. */
static void plug_wrong_chip(const char *name, const char *spec, const char *old_file,
                            const uint8_t *old, size_t old_size, uint16_t want_pid) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *path = daemon_env_port_path(name), *dev = NULL;
        _cleanup_free_ uint8_t *flash = NULL;
        char pid_text[16];
        Watch w = {};
        Result res[4];
        size_t size;

        ASSERT_OK(sd_bus_match_signal(env.bus, &slot, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                      "Finished", on_finished, &w));
        harness_control_ok("add %s=%s,image=%s", name, spec, old_file);
        daemon_env_run_until(&env, &w.finished, TIMEOUT);
        ASSERT_STREQ(w.finished_error, STM32ISP_ERROR_UNSUPPORTED_CHIP);

        /* nothing erased, nothing written: the old firmware is still there */
        check_untouched(name);
        flash = dump_flash(name, &size);
        ASSERT_TRUE(size >= old_size);
        ASSERT_MEMEQ(flash, old, old_size);

        ASSERT_OK(asprintf(&dev, "/dev/%s", name));
        ASSERT_EQ(get_results(dev, res, ELEMENTSOF(res)), 1);
        ASSERT_TRUE(res[0].automatic);
        ASSERT_STREQ(res[0].operation, "flash");
        ASSERT_STREQ(res[0].result, "fail");
        ASSERT_STREQ(res[0].error, STM32ISP_ERROR_UNSUPPORTED_CHIP);
        ASSERT_TRUE(res[0].have_chip_pid);
        /* A chip outside the table is logged with the PID it answered, too. */
        if (res[0].chip_pid != want_pid) {
                fprintf(stderr, "logged chip_pid 0x%03" PRIx64 ", expected 0x%03x\n", res[0].chip_pid, want_pid);
                abort();
        }
        /* the log says which chip it found */
        snprintf(pid_text, sizeof pid_text, "0x%03x", want_pid);
        if (!strstr(res[0].message, pid_text)) {
                fprintf(stderr, "the results log does not name %s: %s\n", pid_text, res[0].message);
                abort();
        }

        harness_control_ok("remove %s", name);
        wait_object(path, true);
}

static void test_wrong_chip_profile(void) {
        static uint8_t image[3000], old[4096];
        char old_file[PATH_MAX];
        Usage base = usage();

        daemon_env_random(image, sizeof image, 1000);
        daemon_env_random(old, sizeof old, 1001);
        snprintf(old_file, sizeof old_file, "%s/old-firmware.bin", getenv("TMPDIR") ?: "/tmp");
        write_file(old_file, old, sizeof old);

        set_auto_flash(image, sizeof image, 0x466, "WRONGCHIP*");
        /* an F0 on a G0 station */
        plug_wrong_chip("ttyUSB30", "0x444,serial=WRONGCHIP30", old_file, old, sizeof old, 0x444);
        /* an F05x (0x440) the daemon does not know at all */
        plug_wrong_chip("ttyUSB31", "0x444,id=0x440,serial=WRONGCHIP31", old_file, old, sizeof old, 0x440);
        clear_auto_flash();
        expect_back_to(&base);
}

static void test_unknown_chip(void) {
        _cleanup_free_ char *path = daemon_env_port_path("ttyUSB40"), *file = NULL;
        _cleanup_free_ uint8_t *flash = NULL;
        static uint8_t image[2048];
        size_t size;
        Call c;

        /* an F0 board whose Get ID answers 0x440 (an F05x) */
        harness_control_ok("add ttyUSB40=0x444,id=0x440");
        wait_object(path, false);

        probe_async(path, &c);
        wait_call(&c);
        fprintf(stderr, "   Probe: %s: %s\n", daemon_call_outcome(&c), c.error.message ?: "");
        expect_error(&c, STM32ISP_ERROR_UNSUPPORTED_CHIP);
        ASSERT_TRUE(strstr(c.error.message, "0x440"));
        daemon_call_clear(&c);

        daemon_env_random(image, sizeof image, 1100);
        flash_async(path, image, sizeof image, &c);
        wait_call(&c);
        fprintf(stderr, "   Flash: %s: %s\n", daemon_call_outcome(&c), c.error.message ?: "");
        expect_error(&c, STM32ISP_ERROR_UNSUPPORTED_CHIP);
        daemon_call_clear(&c);

        /* the documented exit code (include/stm32isp-errors.h, stm32ispctl(1)) */
        ASSERT_OK(asprintf(&file, "%s/unknown-chip.bin", getenv("TMPDIR") ?: "/tmp"));
        write_file(file, image, sizeof image);
        ASSERT_EQ(run_client((char *[]) { (char *) "info", (char *) "ttyUSB40", (char *) "-q", NULL }), 15);
        ASSERT_EQ(run_client((char *[]) { (char *) "flash", (char *) "ttyUSB40", file, (char *) "-q", NULL }), 15);

        check_untouched("ttyUSB40");
        flash = dump_flash("ttyUSB40", &size);
        for (size_t i = 0; i < size; i++)
                ASSERT_EQ(flash[i], 0xFF);

        harness_control_ok("remove ttyUSB40");
        wait_object(path, true);
}

/* ---- 5. every method on a port that is going or gone ---- */

enum {
        M_PROBE, M_FLASH, M_ERASE, M_READ, M_LOCK, M_UNLOCK, M_GO, M_CANCEL, M_GET, M_GET_ALL, _M_MAX
};

static const char *const method_names[_M_MAX] = {
        "Probe", "Flash", "Erase", "Read", "Lock", "Unlock", "Go", "Cancel", "Get(State)", "GetAll",
};

static void method_async(const char *path, int which, Call *c) {
        static const uint8_t image[256];
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        switch (which) {
        case M_FLASH:
                flash_async(path, image, sizeof image, c);
                return;
        case M_READ:
                read_async(path, 256, c);
                return;
        case M_GET:
                m = new_call(path, "org.freedesktop.DBus.Properties", "Get");
                ASSERT_OK(sd_bus_message_append(m, "ss", STM32ISP_PORT_INTERFACE, "State"));
                break;
        case M_GET_ALL:
                m = new_call(path, "org.freedesktop.DBus.Properties", "GetAll");
                ASSERT_OK(sd_bus_message_append(m, "s", STM32ISP_PORT_INTERFACE));
                break;
        case M_GO:
                m = new_call(path, STM32ISP_PORT_INTERFACE, "Go");
                ASSERT_OK(sd_bus_message_append(m, "t", (uint64_t) FLASH_BASE));
                break;
        case M_CANCEL:
                m = new_call(path, STM32ISP_PORT_INTERFACE, "Cancel");
                break;
        default:
                m = new_call(path, STM32ISP_PORT_INTERFACE, method_names[which]);
                ASSERT_OK(sd_bus_message_append(m, "a{sv}", 0));
                break;
        }
        start_call(m, c);
}

static void manager_expect_not_found(const char *member, const char *types, const char *arg) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (streq(types, "sa{sv}"))
                r = sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       member, &error, NULL, types, arg, 0);
        else
                r = sd_bus_call_method(env.bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                       member, &error, NULL, types, arg);
        if (r >= 0 || !sd_bus_error_has_name(&error, STM32ISP_ERROR_NOT_FOUND)) {
                fprintf(stderr, "%s(%s): %s, expected NotFound\n", member, arg, r >= 0 ? "ok" : error.name);
                abort();
        }
        sd_bus_error_free(&error);
}

static void fire_methods(const char *path, Call *c) {
        for (int i = 0; i < _M_MAX; i++)
                method_async(path, i, &c[i]);
}

static void test_methods_after_unplug(void) {
        static const char *const boards[] = { "ttyUSB50", "ttyUSB51" };
        static uint8_t image[32 * 1024];
        Usage base = usage();

        daemon_env_random(image, sizeof image, 1200);
        for (size_t round = 0; round < ELEMENTSOF(boards); round++) {
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
                _cleanup_free_ char *path = daemon_env_port_path(boards[round]), *dev = NULL;
                Call flash, c[_M_MAX];
                Watch w = { .board = boards[round], .stage = "writing", .calls = c,
                            .calls_before_answer = round == 0 };
                bool cancelled = false;

                ASSERT_OK(sd_bus_match_signal(env.bus, &slot, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                              NULL, on_port_signal, &w));
                harness_control_ok("add %s=0x466,timing=1", boards[round]);
                wait_object(path, false);
                flash_async(path, image, sizeof image, &flash);
                daemon_env_run_until(&env, &w.unplugged, TIMEOUT);

                /* Going: every method at once, at the unplug (round 0: while the harness
                 * still sends the udev event and hangs up; round 1: right after). Each
                 * answers a named error: Disconnected (the port knows its adapter left, its
                 * job is still ending), UnknownObject (the object is already gone), or Busy
                 * when the call overtook the udev event (the flash still ran then). Cancel
                 * and the properties may also succeed then: nothing wrong in asking. */
                for (int i = 0; i < _M_MAX; i++) {
                        const char *o;

                        wait_call(&c[i]);
                        o = daemon_call_outcome(&c[i]);
                        fprintf(stderr, "   going (%zu): %-10s -> %s\n", round, method_names[i], o);
                        if (!(streq(o, STM32ISP_ERROR_DISCONNECTED) || streq(o, ERROR_UNKNOWN_OBJECT) ||
                              streq(o, STM32ISP_ERROR_NOT_FOUND) || streq(o, STM32ISP_ERROR_BUSY) ||
                              (IN_SET(i, M_CANCEL, M_GET, M_GET_ALL) && streq(o, "ok")))) {
                                fprintf(stderr, "%s on an unplugged port: %s: %s\n", method_names[i], o,
                                        c[i].error.message ?: "");
                                abort();
                        }
                        if (i == M_CANCEL && streq(o, "ok"))
                                cancelled = true;
                        daemon_call_clear(&c[i]);
                }
                wait_call(&flash);
                fprintf(stderr, "   going (%zu): the flash -> %s\n", round, daemon_call_outcome(&flash));
                /* Cancelled only if our Cancel reached the job before the udev event */
                if (!(cancelled && sd_bus_error_has_name(&flash.error, STM32ISP_ERROR_CANCELLED)))
                        expect_error(&flash, STM32ISP_ERROR_DISCONNECTED);
                daemon_call_clear(&flash);
                wait_object(path, true);

                /* Gone: the object does not exist any more. */
                fire_methods(path, c);
                for (int i = 0; i < _M_MAX; i++) {
                        wait_call(&c[i]);
                        if (!sd_bus_error_has_name(&c[i].error, ERROR_UNKNOWN_OBJECT)) {
                                fprintf(stderr, "%s on a removed port: %s\n", method_names[i], daemon_call_outcome(&c[i]));
                                abort();
                        }
                        daemon_call_clear(&c[i]);
                }
                ASSERT_OK(asprintf(&dev, "/dev/%s", boards[round]));
                manager_expect_not_found("GetPort", "s", boards[round]);
                manager_expect_not_found("GetPort", "s", dev);
                manager_expect_not_found("GetPort", "s", path);
                manager_expect_not_found("RemovePort", "o", path);
                /* the node went with the adapter: nothing to add */
                manager_expect_not_found("AddPort", "sa{sv}", dev);
        }
        expect_back_to(&base);
}

int main(int argc, char *argv[]) {
        char state[PATH_MAX], arg[PATH_MAX + 16];
        char *args[] = { arg, NULL };
        int r;

        if (!harness_active())
                /* No boards at start: each case plugs its own (ports present at startup
                 * are never auto-flashed, plugged ones are). */
                return harness_reexec("test-fault-hotplug", NULL);

        signal(SIGPIPE, SIG_IGN);
        daemon_env_kill_on_abort(&env);
        /* the results log: what the daemon recorded about each job */
        snprintf(state, sizeof state, "%s/state", getenv("TMPDIR") ?: "/tmp");
        ASSERT_TRUE(mkdir(state, 0755) == 0 || errno == EEXIST);
        snprintf(arg, sizeof arg, "--state-dir=%s", state);
        r = daemon_env_start(&env, args);
        if (r == -EOPNOTSUPP)
                return EXIT_TEST_SKIP;
        ASSERT_OK(r);
        daemon_env_watch_objects(&env, &objects);

        TEST(test_warm_up);
        TEST(test_unplug_stages);
        TEST(test_replug);
        TEST(test_wrong_chip_profile);
        TEST(test_unknown_chip);
        TEST(test_methods_after_unplug);

        daemon_objects_unwatch(&objects);
        daemon_env_stop(&env);
        return 0;
}
