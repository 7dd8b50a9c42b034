/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Named diagnoses: the parity-dropping adapter, the held port. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "diagnose.h"
#include "string-util.h"

bool diagnose_parity_suspect(const TraceStats *s) {
        return s->syncs_acked + s->syncs_nacked > 0 && s->even_failed > 0 && s->even_acked == 0;
}

bool diagnose_parity_dropped(const TraceStats *s) {
        return diagnose_parity_suspect(s) && s->odd_acked > 0;
}

void diagnose_parity_message(const char *device, char *buf, size_t size) {
        snprintf(buf, size,
                 "The adapter on %s does not seem to send even parity: the chip answered the sync (0x7F) and "
                 "commands whose bytes have an odd number of ones, but not those with an even number (Get "
                 "0x00 0xFF), as when 8N1 goes out although 8E1 was asked. Use another adapter or driver (an "
                 "FTDI or CP210x adapter; for a CH340/CH341 the kernel's ch341 driver, not a vendor one), and "
                 "nothing between here and the chip that drops parity",
                 device);
}

static void read_comm(pid_t pid, char *buf, size_t size);

#define PROBE_REPLY_USEC (200 * USEC_PER_MSEC)

int diagnose_parity_probe(Link *l) {
        static const uint8_t sync = 0x7F, get_version[2] = { 0x01, 0xFE };
        uint8_t b, rest[4];
        int r = 0;

        (void) link_flush_input(l);
        for (unsigned i = 0; i < 3; i++) {
                r = link_write(l, &sync, 1);
                if (r >= 0)
                        r = link_read(l, &b, 1, now_usec() + link_wire_usec(l, 2) + PROBE_REPLY_USEC);
                if (r > 0 && (b == 0x79 || b == 0x1F))
                        break;
                if (r == -ENODEV)
                        return r;
        }
        r = link_write(l, get_version, sizeof get_version);
        if (r >= 0)
                r = link_read(l, &b, 1, now_usec() + link_wire_usec(l, 3) + PROBE_REPLY_USEC);
        /* version, two option bytes, ACK: the chip then waits for a command */
        if (r > 0 && b == 0x79)
                r = link_read_exact(l, rest, sizeof rest, now_usec() + link_wire_usec(l, 4) + PROBE_REPLY_USEC);
        return r == -ENODEV ? r : 0;
}

/* ---- brltty, ModemManager ---- */

/* Where Debian, Fedora and Arch put brltty and its udev rules. */
static const char *const brltty_paths[] = {
        "/usr/bin/brltty",
        "/bin/brltty",
        "/usr/lib/udev/rules.d/85-brltty.rules",
        "/lib/udev/rules.d/85-brltty.rules",
        "/usr/lib/udev/rules.d/90-brltty-device.rules",
        "/lib/udev/rules.d/90-brltty-device.rules",
};

bool diagnose_brltty_installed(const char *root) {
        for (size_t i = 0; i < ELEMENTSOF(brltty_paths); i++) {
                char path[512];

                snprintf(path, sizeof path, "%s%s", root && !streq(root, "/") ? root : "", brltty_paths[i]);
                if (access(path, F_OK) == 0)
                        return true;
        }
        return false;
}

bool diagnose_vanished_port(const char *name, uint64_t lifetime_usec, const char *root, char *buf, size_t size) {
        if (lifetime_usec >= DIAGNOSE_VANISH_USEC || !diagnose_brltty_installed(root))
                return false;
        snprintf(buf, size,
                 "%s went away %.1f s after it appeared, and brltty is installed: its udev rules take some "
                 "USB-serial adapters (CH340/CH341, CP210x) for braille displays and claim them. Remove it "
                 "('apt remove brltty') or disable its udev rules (85-brltty.rules, 90-brltty-device.rules), "
                 "then plug the adapter in again",
                 name, (double) lifetime_usec / USEC_PER_SEC);
        return true;
}

bool diagnose_modemmanager_running(void) {
        DIR *proc = opendir("/proc");
        struct dirent *de;
        bool found = false;

        if (!proc)
                return false;
        while (!found && (de = readdir(proc))) {
                char comm[32];

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                read_comm(atoi(de->d_name), comm, sizeof comm);
                found = streq(comm, "ModemManager");
        }
        closedir(proc);
        return found;
}

void diagnose_modemmanager_message(const char *name, char *buf, size_t size) {
        snprintf(buf, size,
                 "ModemManager is running and %s is not tagged ID_MM_DEVICE_IGNORE: it may open the port to "
                 "probe for a modem (AT commands) while a job runs. Install stm32ispd's udev rule "
                 "(70-stm32ispd.rules sets ID_MM_DEVICE_IGNORE=1) and replug, or stop ModemManager",
                 name);
}

/* ---- holders ---- */

static void read_comm(pid_t pid, char *buf, size_t size) {
        char path[64];
        ssize_t n;
        int fd;

        snprintf(buf, size, "?");
        snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n <= 0) {
                snprintf(buf, size, "?");
                return;
        }
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
}

static bool have_pid(const PortHolder *h, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == pid)
                        return true;
        return false;
}

/* The owners of a lock on the node (st_dev, st_ino): "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INO 0 EOF". */
static size_t lock_holders(const struct stat *st, pid_t self, PortHolder *ret, size_t max) {
        FILE *f = fopen("/proc/locks", "re");
        char line[256];
        size_t n = 0;

        if (!f)
                return 0;
        while (n < max && fgets(line, sizeof line, f)) {
                unsigned maj, min;
                unsigned long long ino;
                int pid;

                if (strstr(line, "->"))
                        continue;       /* a waiter, not the owner */
                if (sscanf(line, "%*d: %*s %*s %*s %d %x:%x:%llu", &pid, &maj, &min, &ino) != 4)
                        continue;
                if (maj != major(st->st_dev) || min != minor(st->st_dev) || ino != (unsigned long long) st->st_ino ||
                    pid <= 0 || pid == self || have_pid(ret, n, pid))
                        continue;
                ret[n].pid = pid;
                read_comm(pid, ret[n].comm, sizeof ret[n].comm);
                n++;
        }
        fclose(f);
        return n;
}

/* The processes with a descriptor on the device (rdev). */
static size_t fd_holders(dev_t rdev, pid_t self, PortHolder *ret, size_t max) {
        DIR *proc = opendir("/proc");
        struct dirent *de;
        size_t n = 0;

        if (!proc)
                return 0;
        while (n < max && (de = readdir(proc))) {
                char path[64];
                struct dirent *fe;
                DIR *fds;
                int pid;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                pid = atoi(de->d_name);
                if (pid == self)
                        continue;
                snprintf(path, sizeof path, "/proc/%d/fd", pid);
                fds = opendir(path);
                if (!fds)
                        continue;       /* gone, or not ours to see */
                while ((fe = readdir(fds))) {
                        struct stat st;

                        if (fe->d_name[0] == '.' || fstatat(dirfd(fds), fe->d_name, &st, 0) < 0)
                                continue;
                        if (S_ISCHR(st.st_mode) && st.st_rdev == rdev) {
                                ret[n].pid = pid;
                                read_comm(pid, ret[n].comm, sizeof ret[n].comm);
                                n++;
                                break;
                        }
                }
                closedir(fds);
        }
        closedir(proc);
        return n;
}

int diagnose_port_holders(const char *device, pid_t self, PortHolder *ret, size_t max) {
        struct stat st;
        size_t n;

        if (!device || (!ret && max > 0))
                return -EINVAL;
        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISCHR(st.st_mode))
                return -ENOTTY;
        n = lock_holders(&st, self, ret, max);
        if (n == 0)
                n = fd_holders(st.st_rdev, self, ret, max);
        return (int) n;
}

void diagnose_port_holders_message(const char *device, const PortHolder *h, size_t n, char *buf, size_t size) {
        size_t k;

        if (n == 0) {
                snprintf(buf, size, "%s is held by another process (one we may not look at): find it with "
                                    "'fuser -v %s' and close it", device, device);
                return;
        }
        k = (size_t) snprintf(buf, size, "%s is held by", device);
        for (size_t i = 0; i < n && k < size; i++)
                k += (size_t) snprintf(buf + k, size - k, "%s pid %d (%s)", i == 0 ? "" : ",", (int) h[i].pid,
                                       h[i].comm);
        for (size_t i = 0; i < n && k < size; i++) {
                if (streq(h[i].comm, "ModemManager")) {
                        /* udev/70-stm32ispd.rules tags the adapters it manages */
                        snprintf(buf + k, size - k, ": ModemManager is probing it as a modem; install stm32ispd's "
                                                    "udev rule (it sets ID_MM_DEVICE_IGNORE=1) or stop "
                                                    "ModemManager");
                        return;
                }
                if (streq(h[i].comm, "brltty")) {
                        snprintf(buf + k, size - k, ": brltty took it for a braille display; remove brltty "
                                                    "('apt remove brltty') or disable its udev rules");
                        return;
                }
        }
        if (k < size)
                snprintf(buf + k, size - k, ": close it");
}
