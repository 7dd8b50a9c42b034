/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Named diagnoses: who holds a port (a lock on it, or only a descriptor), the message
 * for each holder (ModemManager and brltty with their fix), and the parity pattern
 * against the simulator with an adapter that drops parity and one that does not. */

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "an3155.h"
#include "diagnose.h"
#include "sim.h"
#include "string-util.h"
#include "test-util.h"

/* A child named name holding path open (locked when lock), until killed. */
static pid_t hold(const char *path, const char *name, bool lock) {
        int ready[2];
        pid_t pid;
        char c;

        ASSERT_OK(pipe(ready));
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                int fd;

                prctl(PR_SET_NAME, name, 0, 0, 0);
                fd = open(path, O_RDWR | O_NOCTTY);
                if (fd < 0 || (lock && flock(fd, LOCK_EX) < 0))
                        _exit(1);
                (void) !write(ready[1], "x", 1);
                pause();
                _exit(0);
        }
        close(ready[1]);
        ASSERT_EQ(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static void reap(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static void test_holders(void) {
        PortHolder h[DIAGNOSE_HOLDERS_MAX];
        char name[64], msg[512], want[256];
        int master, slave, n;
        pid_t a, b;

        ASSERT_OK(openpty(&master, &slave, name, NULL, NULL));

        /* a lock names its owner, even with others holding the port too */
        a = hold(name, "minicom", true);
        n = diagnose_port_holders(name, getpid(), h, ELEMENTSOF(h));
        ASSERT_EQ(n, 1);
        ASSERT_EQ(h[0].pid, a);
        ASSERT_STREQ(h[0].comm, "minicom");
        diagnose_port_holders_message("/dev/ttyUSB0", h, (size_t) n, msg, sizeof msg);
        snprintf(want, sizeof want, "/dev/ttyUSB0 is held by pid %d (minicom): close it", (int) a);
        ASSERT_STREQ(msg, want);
        reap(a);

        /* no lock: whoever has it open (we do too, and do not count) */
        b = hold(name, "ModemManager", false);
        n = diagnose_port_holders(name, getpid(), h, ELEMENTSOF(h));
        ASSERT_EQ(n, 1);
        ASSERT_EQ(h[0].pid, b);
        diagnose_port_holders_message("/dev/ttyUSB0", h, (size_t) n, msg, sizeof msg);
        ASSERT_TRUE(strstr(msg, "ModemManager is probing it as a modem") && strstr(msg, "ID_MM_DEVICE_IGNORE=1"));
        reap(b);

        snprintf(h[0].comm, sizeof h[0].comm, "brltty");
        diagnose_port_holders_message("/dev/ttyUSB0", h, 1, msg, sizeof msg);
        ASSERT_TRUE(strstr(msg, "brltty took it for a braille display; remove brltty ('apt remove brltty')"));

        /* nobody else */
        ASSERT_EQ(diagnose_port_holders(name, getpid(), h, ELEMENTSOF(h)), 0);
        diagnose_port_holders_message("/dev/ttyUSB0", h, 0, msg, sizeof msg);
        ASSERT_TRUE(strstr(msg, "fuser -v /dev/ttyUSB0"));
        ASSERT_ERR(diagnose_port_holders("/nonexistent/tty", getpid(), h, ELEMENTSOF(h)), ENOENT);
        close(slave);
        close(master);
}

/* A probe over an adapter that drops parity (or not), traced: the pattern and the
 * probe that confirms it. */
static void parity_case(bool dropped) {
        _cleanup_(trace_freep) Trace *t = NULL;
        An3155 *p = NULL;
        Link *l = NULL;
        Sim *s = NULL;
        int fds[2], r;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        ASSERT_OK(sim_new(0x466, 0, &s));
        sim_set_adapter_drops_parity(s, dropped);
        ASSERT_OK(sim_start(s, fds[1]));
        ASSERT_OK(link_open_fd(fds[0], "sim", &l));
        ASSERT_OK(trace_new("sim", "Probe", 0, &t));
        link_set_trace(l, trace_link_event, t);
        ASSERT_OK(an3155_new(l, &p));

        r = an3155_sync(p, 2);
        if (!dropped) {
                ASSERT_OK(r);
                ASSERT_TRUE(!diagnose_parity_suspect(trace_stats(t)));
        } else {
                ASSERT_TRUE(r < 0);
                ASSERT_TRUE(diagnose_parity_suspect(trace_stats(t)));
                ASSERT_TRUE(!diagnose_parity_dropped(trace_stats(t)));
                ASSERT_OK(diagnose_parity_probe(l));
                ASSERT_TRUE(diagnose_parity_dropped(trace_stats(t)));
        }
        an3155_free(p);
        sim_stop(s);
        link_free(l);
        close(fds[1]);
        sim_free(s);
}

static void test_parity(void) {
        TraceStats st = { .syncs_acked = 1, .even_failed = 1, .odd_acked = 1 };
        char msg[512];

        ASSERT_TRUE(diagnose_parity_dropped(&st));
        st.even_acked = 1;      /* one even pair got through: not the adapter */
        ASSERT_TRUE(!diagnose_parity_suspect(&st) && !diagnose_parity_dropped(&st));
        st = (TraceStats) { .even_failed = 1, .odd_acked = 1 };  /* no sync answered */
        ASSERT_TRUE(!diagnose_parity_dropped(&st));
        diagnose_parity_message("/dev/ttyUSB0", msg, sizeof msg);
        ASSERT_TRUE(startswith(msg, "The adapter on /dev/ttyUSB0 does not seem to send even parity"));

        parity_case(true);
        parity_case(false);
}

/* brltty under a root of our own: the port that vanished at once names it and the fix;
 * one that lived longer, or without brltty, is not its doing. */
static void test_vanished(void) {
        char root[] = "/tmp/test-diagnose-XXXXXX", path[256], msg[512];
        int fd;

        ASSERT_TRUE(mkdtemp(root));
        ASSERT_TRUE(!diagnose_brltty_installed(root));
        ASSERT_TRUE(!diagnose_vanished_port("/dev/ttyUSB0", 900 * USEC_PER_MSEC, root, msg, sizeof msg));

        snprintf(path, sizeof path, "%s/usr", root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof path, "%s/usr/bin", root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof path, "%s/usr/bin/brltty", root);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        ASSERT_TRUE(diagnose_brltty_installed(root));
        ASSERT_TRUE(diagnose_vanished_port("/dev/ttyUSB0", 900 * USEC_PER_MSEC, root, msg, sizeof msg));
        ASSERT_STREQ(msg, "/dev/ttyUSB0 went away 0.9 s after it appeared, and brltty is installed: its udev rules "
                          "take some USB-serial adapters (CH340/CH341, CP210x) for braille displays and claim them. "
                          "Remove it ('apt remove brltty') or disable its udev rules (85-brltty.rules, "
                          "90-brltty-device.rules), then plug the adapter in again");
        ASSERT_TRUE(!diagnose_vanished_port("/dev/ttyUSB0", DIAGNOSE_VANISH_USEC, root, msg, sizeof msg));
        unlink(path);
        snprintf(path, sizeof path, "%s/usr/bin", root);
        rmdir(path);
        snprintf(path, sizeof path, "%s/usr", root);
        rmdir(path);
        ASSERT_OK(rmdir(root));

        diagnose_modemmanager_message("/dev/ttyUSB0", msg, sizeof msg);
        ASSERT_TRUE(startswith(msg, "ModemManager is running and /dev/ttyUSB0 is not tagged ID_MM_DEVICE_IGNORE"));
        ASSERT_TRUE(strstr(msg, "70-stm32ispd.rules sets ID_MM_DEVICE_IGNORE=1"));
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_vanished();
        test_holders();
        test_parity();
        fprintf(stderr, "OK\n");
        return 0;
}
