/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link_open_serial() through libserialport against simulated USB-serial adapters: the
 * test re-runs itself under tests/umockdev-sim with four boards, then checks what
 * libserialport sees (USB IDs, 8E1), talks AN3155 to the simulator, drives DTR/RTS into
 * the simulated board's nRST/BOOT0, sends breaks (counted; a reset on a brk-nrst
 * board), unplugs ports under an open link, and lowers an FTDI adapter's
 * latency_timer while the link is open. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <libudev.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "an3155.h"
#include "entry.h"
#include "flasher.h"
#include "harness.h"
#include "link.h"
#include "test-util.h"

/* "state=" of the board, from the harness. */
static const char *board_state(const char *name) {
        static char state[32];
        const char *a = harness_control("info %s", name), *p = strstr(a, "state=");

        ASSERT_TRUE(p);
        sscanf(p, "state=%31s", state);
        return state;
}

/* A counter of the board's "info" line ("breaks", "resets", ...). */
static unsigned board_counter(const char *name, const char *key) {
        const char *a = harness_control("info %s", name), *p;
        char pat[64];
        unsigned v = 0;

        snprintf(pat, sizeof(pat), " %s=", key);
        p = strstr(a, pat);
        ASSERT_TRUE(p);
        ASSERT_EQ(sscanf(p + strlen(pat), "%u", &v), 1);
        return v;
}

static int sync_and_id(Link *l, uint16_t *ret_pid) {
        _cleanup_(an3155_freep) An3155 *p = NULL;
        An3155Timeouts t;
        int r;

        ASSERT_OK(an3155_new(l, &p));
        an3155_get_timeouts(p, &t);
        t.reply_usec = 200 * USEC_PER_MSEC;
        an3155_set_timeouts(p, &t);
        r = an3155_sync(p, 2);
        if (r < 0)
                return r;
        return an3155_get_id(p, ret_pid);
}

static void test_enumeration(void) {
        struct sp_port *port = NULL;
        int vid = 0, pid = 0, bus = 0, addr = 0;
        char buf[PATH_MAX], *p;

        /* A device node resolves to itself (umockdev's own realpath() corrupts the heap). */
        p = realpath("/dev/ttyUSB0", NULL);
        ASSERT_STREQ(p, "/dev/ttyUSB0");
        free(p);
        ASSERT_STREQ(realpath("/dev/ttyUSB0", buf), "/dev/ttyUSB0");
        ASSERT_TRUE(!realpath("/dev/ttyUSB9", buf));

        ASSERT_EQ(sp_get_port_by_name("/dev/ttyUSB0", &port), SP_OK);
        ASSERT_EQ(sp_get_port_transport(port), SP_TRANSPORT_USB);
        ASSERT_EQ(sp_get_port_usb_vid_pid(port, &vid, &pid), SP_OK);
        ASSERT_EQ(vid, 0x0403);
        ASSERT_EQ(pid, 0x6001);
        ASSERT_EQ(sp_get_port_usb_bus_address(port, &bus, &addr), SP_OK);
        ASSERT_EQ(bus, 1);
        ASSERT_EQ(addr, 2);
        ASSERT_STREQ(sp_get_port_usb_manufacturer(port), "FTDI");
        ASSERT_STREQ(sp_get_port_usb_product(port), "FT232R USB UART");
        ASSERT_STREQ(sp_get_port_usb_serial(port), "STSIM000");
        sp_free_port(port);

        /* What udev would have said about it, for the daemon's hot-plug code. */
        {
                struct udev *udev = udev_new();
                struct udev_device *d = udev_device_new_from_subsystem_sysname(udev, "tty", "ttyUSB0");
                struct udev_device *usb;

                ASSERT_TRUE(d);
                ASSERT_STREQ(udev_device_get_devnode(d), "/dev/ttyUSB0");
                ASSERT_STREQ(udev_device_get_property_value(d, "ID_VENDOR_ID"), "0403");
                ASSERT_STREQ(udev_device_get_property_value(d, "ID_MODEL_ID"), "6001");
                ASSERT_STREQ(udev_device_get_property_value(d, "ID_SERIAL_SHORT"), "STSIM000");
                ASSERT_STREQ(udev_device_get_property_value(d, "ID_USB_DRIVER"), "ftdi_sio");
                ASSERT_STREQ(udev_device_get_property_value(d, "ID_PATH"), "pci-0000:00:14.0-usb-0:1:1.0");
                usb = udev_device_get_parent_with_subsystem_devtype(d, "usb", "usb_device");
                ASSERT_TRUE(usb);
                ASSERT_STREQ(udev_device_get_sysattr_value(usb, "idVendor"), "0403");
                ASSERT_STREQ(udev_device_get_sysattr_value(usb, "serial"), "STSIM000");
                ASSERT_STREQ(udev_device_get_driver(udev_device_get_parent(d)), "ftdi_sio");
                udev_device_unref(d);
                udev_unref(udev);
        }

        /* The second board is a CH340: other IDs, no serial number. */
        ASSERT_EQ(sp_get_port_by_name("/dev/ttyUSB1", &port), SP_OK);
        ASSERT_EQ(sp_get_port_usb_vid_pid(port, &vid, &pid), SP_OK);
        ASSERT_EQ(vid, 0x1a86);
        ASSERT_EQ(pid, 0x7523);
        sp_free_port(port);
}

static void test_open_errors(void) {
        Link *l = NULL;

        ASSERT_ERR(link_open_serial("/dev/ttyUSB9", 115200, &l), ENOENT);
        ASSERT_TRUE(!l);
        ASSERT_ERR(link_open_serial("/dev/ttyUSB0", 0, &l), EINVAL);
}

/* Every fd this process holds on the pty behind dev must be close-on-exec. */
static unsigned count_cloexec_fds(const char *pts, unsigned *ret_total) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        unsigned cloexec = 0, total = 0;

        ASSERT_TRUE(d);
        while ((e = readdir(d))) {
                char path[PATH_MAX], target[PATH_MAX];
                ssize_t k;
                int fd;

                if (e->d_name[0] == '.')
                        continue;
                fd = atoi(e->d_name);
                if (fd == dirfd(d))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
                k = readlink(path, target, sizeof(target) - 1);
                if (k <= 0)
                        continue;
                target[k] = 0;
                if (strcmp(target, pts) != 0)
                        continue;
                total++;
                if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
                        cloexec++;
        }
        closedir(d);
        *ret_total = total;
        return cloexec;
}

static void test_config_and_sync(void) {
        _cleanup_(link_freep) Link *l = NULL;
        struct sp_port *port = NULL;
        struct sp_port_config *config = NULL;
        enum sp_parity parity;
        enum sp_xonxoff xonxoff;
        int baud, bits, stop, fd;
        unsigned total, cloexec;
        char pts[PATH_MAX];
        uint16_t pid = 0;
        Link *second = NULL;
        uint64_t t0;
        uint8_t b;

        ASSERT_OK(link_open_serial("/dev/ttyUSB0", 115200, &l));
        ASSERT_STREQ(l->name, "/dev/ttyUSB0");
        ASSERT_EQ(l->baud, 115200);

        /* The link's fd does not leak into helpers. */
        fd = open("/dev/ttyUSB0", O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        {
                char link_path[64];
                ssize_t k;
                snprintf(link_path, sizeof(link_path), "/proc/self/fd/%d", fd);
                k = readlink(link_path, pts, sizeof(pts) - 1);
                ASSERT_TRUE(k > 0);
                pts[k] = 0;
        }
        cloexec = count_cloexec_fds(pts, &total);
        ASSERT_EQ(total, 2);
        ASSERT_EQ(cloexec, 2);
        close(fd);

        /* One user per port. */
        ASSERT_ERR(link_open_serial("/dev/ttyUSB0", 115200, &second), EBUSY);

        /* What the driver holds now: 115200 8E1, no flow control (read through a
         * second, unlocked handle). */
        ASSERT_EQ(sp_get_port_by_name("/dev/ttyUSB0", &port), SP_OK);
        ASSERT_EQ(sp_open(port, SP_MODE_READ), SP_OK);
        ASSERT_EQ(sp_new_config(&config), SP_OK);
        ASSERT_EQ(sp_get_config(port, config), SP_OK);
        ASSERT_EQ(sp_get_config_baudrate(config, &baud), SP_OK);
        ASSERT_EQ(baud, 115200);
        ASSERT_EQ(sp_get_config_bits(config, &bits), SP_OK);
        ASSERT_EQ(bits, 8);
        ASSERT_EQ(sp_get_config_parity(config, &parity), SP_OK);
        ASSERT_EQ(parity, SP_PARITY_EVEN);
        ASSERT_EQ(sp_get_config_stopbits(config, &stop), SP_OK);
        ASSERT_EQ(stop, 1);
        ASSERT_EQ(sp_get_config_xon_xoff(config, &xonxoff), SP_OK);
        ASSERT_EQ(xonxoff, SP_XONXOFF_DISABLED);
        sp_free_config(config);
        sp_close(port);
        sp_free_port(port);

        /* Nothing is sent by a bootloader that was not asked: a read times out on time. */
        t0 = now_usec();
        ASSERT_ERR(link_read(l, &b, 1, now_usec() + 100 * USEC_PER_MSEC), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 >= 95 * USEC_PER_MSEC);
        ASSERT_TRUE(now_usec() - t0 < 1000 * USEC_PER_MSEC);

        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x466);

        /* A baud change keeps 8E1 and the simulator still answers. */
        ASSERT_OK(link_set_baud(l, 57600));
        ASSERT_EQ(l->baud, 57600);
        ASSERT_OK(link_drain(l));
        ASSERT_OK(link_flush_input(l));
}

static int read_latency_timer(const char *tty) {
        char path[128], buf[16] = "";
        ssize_t k;
        int fd;

        snprintf(path, sizeof(path), "/sys/class/tty/%s/device/latency_timer", tty);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ASSERT_TRUE(k > 0);
        return atoi(buf);
}

static void write_latency_timer(const char *tty, const char *value) {
        char path[128];
        int fd;

        snprintf(path, sizeof(path), "/sys/class/tty/%s/device/latency_timer", tty);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, value, strlen(value)), (ssize_t) strlen(value));
        close(fd);
}

/* Boards plugged for this test (after the hotplug test, which counts serial numbers):
 * an FTDI (ttyUSB6) has latency_timer 16, 1 ms while the link is open, 16 again after
 * close; the pty answers the ASYNC_LOW_LATENCY ioctls with an error the open ignores.
 * A CP2102 (ttyUSB5) has no such attribute and the open just works. */
static void test_low_latency(void) {
        Link *l = NULL;
        uint16_t pid = 0;

        harness_control_ok("add ttyUSB6=0x466,adapter=ftdi");
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 16);
        ASSERT_OK(link_open_serial("/dev/ttyUSB6", 115200, &l));
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 1);
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x466);
        l = link_free(l);
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 16);

        /* another value is restored as it was; one already at 1 ms is left alone */
        write_latency_timer("ttyUSB6", "8\n");
        ASSERT_OK(link_open_serial("/dev/ttyUSB6", 115200, &l));
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 1);
        l = link_free(l);
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 8);
        write_latency_timer("ttyUSB6", "1\n");
        ASSERT_OK(link_open_serial("/dev/ttyUSB6", 115200, &l));
        l = link_free(l);
        ASSERT_EQ(read_latency_timer("ttyUSB6"), 1);
        harness_control_ok("remove ttyUSB6");

        harness_control_ok("add ttyUSB5=0x466,adapter=cp2102");
        ASSERT_ERR(read_latency_timer("ttyUSB5"), ENOENT);
        ASSERT_OK(link_open_serial("/dev/ttyUSB5", 115200, &l));
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_ERR(read_latency_timer("ttyUSB5"), ENOENT);
        l = link_free(l);
        harness_control_ok("remove ttyUSB5");
}

/* ttyUSB1 is wired like a programming adapter: DTR drives nRST, RTS drives BOOT0. */
static void test_modem_lines(void) {
        _cleanup_(link_freep) Link *l = NULL;
        uint16_t pid = 0;

        /* Opening the port raises DTR (as Linux does): the chip is held in reset. */
        ASSERT_STREQ(board_state("ttyUSB1"), "wait-sync");
        ASSERT_OK(link_open_serial("/dev/ttyUSB1", 115200, &l));
        ASSERT_STREQ(board_state("ttyUSB1"), "off");

        /* Release reset with BOOT0 high: the bootloader. */
        ASSERT_OK(link_set_lines(l, 0, -1));
        ASSERT_STREQ(board_state("ttyUSB1"), "wait-sync");
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x444);

        /* BOOT0 low, reset pulse: user code, which does not answer. */
        ASSERT_OK(link_set_lines(l, -1, 0));
        ASSERT_OK(link_set_lines(l, 1, -1));
        ASSERT_STREQ(board_state("ttyUSB1"), "off");
        ASSERT_OK(link_set_lines(l, 0, -1));
        ASSERT_STREQ(board_state("ttyUSB1"), "user-code");
        ASSERT_ERR(sync_and_id(l, &pid), EHOSTDOWN);

        /* The entry sequence RTS=1, DTR=1, DTR=0 brings the bootloader back. */
        ASSERT_OK(link_set_lines(l, 1, 1));
        ASSERT_OK(link_set_lines(l, 0, -1));
        ASSERT_STREQ(board_state("ttyUSB1"), "wait-sync");
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x444);
}

static int pause_none(void *userdata, uint64_t usec) {
        return 0;
}

/* The shim's log of line-setting calls (STM32SIM_SHIM_IOCTL_LOG), "DEVICE CALL ...". */
static char *read_calls(const char *log) {
        static char buf[16384];
        FILE *f = fopen(log, "re");
        size_t n;

        ASSERT_TRUE(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* Exact line control on ttyUSB1 (DTR: nRST, RTS: BOOT0): a step that changes both lines
 * is one TIOCMSET, a step with one line one TIOCMBIS/TIOCMBIC; the open clears HUPCL, and
 * the close leaves the lines where the last step put them. */
static void test_lines_one_ioctl(void) {
        _cleanup_(link_freep) Link *l = NULL;
        char dir[] = "/tmp/test-link-serial.XXXXXX", log[PATH_MAX];
        const char *calls, *p;
        uint16_t pid = 0;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(log, sizeof log, "%s/calls", dir);
        ASSERT_OK(setenv("STM32SIM_SHIM_IOCTL_LOG", log, 1));

        ASSERT_OK(link_open_serial("/dev/ttyUSB1", 115200, &l));
        calls = read_calls(log);
        /* the last termios the open set has HUPCL off */
        p = strstr(calls, "TCSETS");
        ASSERT_TRUE(p);
        while (strstr(p + 1, "TCSETS"))
                p = strstr(p + 1, "TCSETS");
        ASSERT_TRUE(strncmp(p, "TCSETS HUPCL=0", 14) == 0);
        /* The kernel raises DTR and RTS on open; libserialport 0.1.1's sp_open() raises
         * them again (TIOCMBIS, a no-op then). Nothing lowers one: no pulse. */
        ASSERT_TRUE(!strstr(calls, "TIOCMBIC") && !strstr(calls, "TIOCMSET"));
        ASSERT_OK(truncate(log, 0));

        ASSERT_OK(entry_run(l, "dtr-nrst,rts-boot0", false, pause_none, NULL));
        ASSERT_STREQ(read_calls(log), "/dev/ttyUSB1 TIOCMSET DTR=1 RTS=1\n"
                                      "/dev/ttyUSB1 TIOCMBIC DTR\n");
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x444);
        ASSERT_OK(truncate(log, 0));

        ASSERT_OK(link_set_lines(l, 0, 0));
        ASSERT_OK(link_set_lines(l, 1, -1));
        ASSERT_OK(link_set_lines(l, -1, 1));
        ASSERT_OK(link_set_lines(l, 1, 0));
        ASSERT_STREQ(read_calls(log), "/dev/ttyUSB1 TIOCMSET DTR=0 RTS=0\n"
                                      "/dev/ttyUSB1 TIOCMBIS DTR\n"
                                      "/dev/ttyUSB1 TIOCMBIS RTS\n"
                                      "/dev/ttyUSB1 TIOCMSET DTR=1 RTS=0\n");
        ASSERT_OK(link_set_lines(l, 0, 1));
        ASSERT_OK(truncate(log, 0));

        /* no drop on close: RTS (BOOT0) stays up, DTR stays down */
        l = link_free(l);
        ASSERT_STREQ(read_calls(log), "/dev/ttyUSB1 close DTR=0 RTS=1\n");

        ASSERT_OK(unsetenv("STM32SIM_SHIM_IOCTL_LOG"));
        ASSERT_OK(unlink(log));
        ASSERT_OK(rmdir(dir));
}

/* A break through libserialport reaches the simulator (the shim reports TIOCSBRK and
 * TIOCCBRK); to a bootloader without a wiring for it, it is a framing error to drop:
 * the session goes on without a new sync. tcsendbreak() and the raw ioctls count too. */
static void test_break(void) {
        _cleanup_(link_freep) Link *l = NULL;
        _cleanup_(an3155_freep) An3155 *p = NULL;
        unsigned breaks0, resets0, syncs0;
        uint16_t pid = 0;
        int fd;

        ASSERT_OK(link_open_serial("/dev/ttyUSB0", 115200, &l));
        ASSERT_OK(an3155_new(l, &p));
        ASSERT_OK(an3155_sync(p, 2));
        ASSERT_STREQ(board_state("ttyUSB0"), "bootloader");
        breaks0 = board_counter("ttyUSB0", "breaks");
        resets0 = board_counter("ttyUSB0", "resets");
        syncs0 = board_counter("ttyUSB0", "syncs");

        ASSERT_OK(link_set_break(l, true));
        ASSERT_EQ(board_counter("ttyUSB0", "breaks"), breaks0 + 1);
        /* held: still one break */
        ASSERT_OK(link_set_break(l, true));
        ASSERT_EQ(board_counter("ttyUSB0", "breaks"), breaks0 + 1);
        ASSERT_OK(link_set_break(l, false));
        ASSERT_OK(link_set_break(l, false));
        ASSERT_EQ(board_counter("ttyUSB0", "breaks"), breaks0 + 1);

        ASSERT_STREQ(board_state("ttyUSB0"), "bootloader");
        ASSERT_EQ(board_counter("ttyUSB0", "resets"), resets0);
        ASSERT_OK(an3155_get_id(p, &pid));
        ASSERT_EQ(pid, 0x466);
        ASSERT_EQ(board_counter("ttyUSB0", "syncs"), syncs0);

        ASSERT_OK(link_set_break(l, true));
        ASSERT_OK(link_set_break(l, false));
        ASSERT_EQ(board_counter("ttyUSB0", "breaks"), breaks0 + 2);
        p = an3155_free(p);
        l = link_free(l);

        /* A plain program: tcsendbreak() (glibc's own ioctl inside) and TIOCSBRK. */
        breaks0 = board_counter("ttyUSB2", "breaks");
        fd = open("/dev/ttyUSB2", O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(tcsendbreak(fd, 0), 0);
        ASSERT_EQ(board_counter("ttyUSB2", "breaks"), breaks0 + 1);
        ASSERT_EQ(ioctl(fd, TIOCSBRK, 0), 0);
        ASSERT_EQ(ioctl(fd, TIOCCBRK, 0), 0);
        ASSERT_EQ(board_counter("ttyUSB2", "breaks"), breaks0 + 2);
        /* TCSBRK with an argument only drains: no break */
        ASSERT_EQ(ioctl(fd, TCSBRK, 1), 0);
        ASSERT_EQ(board_counter("ttyUSB2", "breaks"), breaks0 + 2);
        /* a break left on ends with the last close: the next one counts again */
        ASSERT_EQ(ioctl(fd, TIOCSBRK, 0), 0);
        close(fd);
        fd = open("/dev/ttyUSB2", O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(ioctl(fd, TIOCSBRK, 0), 0);
        ASSERT_EQ(ioctl(fd, TIOCCBRK, 0), 0);
        ASSERT_EQ(board_counter("ttyUSB2", "breaks"), breaks0 + 4);
        close(fd);
        /* that chip was waiting for its sync: a break is the first pulse its baud
         * detection measures, so it is deaf until reset (the simulator's strict model) */
        ASSERT_STREQ(board_state("ttyUSB2"), "deaf");
        harness_control_ok("reset ttyUSB2");
        ASSERT_STREQ(board_state("ttyUSB2"), "wait-sync");
}

/* wiring=brk-nrst: a break holds the chip in reset, its end restarts it in the
 * bootloader (BOOT0 high), which then waits for a new sync. */
static void test_break_reset(void) {
        _cleanup_(link_freep) Link *l = NULL;
        unsigned resets0;
        uint16_t pid = 0;

        harness_control_ok("add ttyUSB4=0x453,wiring=brk-nrst");
        ASSERT_OK(link_open_serial("/dev/ttyUSB4", 115200, &l));
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x453);
        ASSERT_STREQ(board_state("ttyUSB4"), "bootloader");
        resets0 = board_counter("ttyUSB4", "resets");

        ASSERT_OK(link_set_break(l, true));
        ASSERT_STREQ(board_state("ttyUSB4"), "off");
        ASSERT_OK(link_set_break(l, false));
        ASSERT_STREQ(board_state("ttyUSB4"), "wait-sync");
        ASSERT_EQ(board_counter("ttyUSB4", "resets"), resets0 + 1);
        ASSERT_EQ(board_counter("ttyUSB4", "breaks"), 1);
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x453);

        /* DTR/RTS go nowhere on this board */
        ASSERT_OK(link_set_lines(l, 1, 1));
        ASSERT_OK(link_set_lines(l, 0, 0));
        ASSERT_STREQ(board_state("ttyUSB4"), "bootloader");
}

static int wait_byte(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint8_t b;

        if (poll(&p, 1, timeout_ms) <= 0)
                return -ETIMEDOUT;
        if (read(fd, &b, 1) != 1)
                return -EIO;
        return b;
}

/* Input parity checks: the link has the tty check parity and mark a byte that fails
 * it (INPCK, PARMRK; not IGNPAR, not ISTRIP), takes a doubled 0xFF as one data byte,
 * and never passes a byte with a parity error on as data: that reply is garbage
 * (-EPROTO), and the flasher reads the block again and gets it right. */
static void test_parity_checks(void) {
        _cleanup_(link_freep) Link *l = NULL;
        _cleanup_(an3155_freep) An3155 *p = NULL;
        static const uint8_t data[16] = { 0xFF, 0xFF, 0x00, 0xFF, 0x7F, 0x79, 0x1F, 0xFF,
                                          0x00, 0x00, 0xFF, 0x01, 0xFE, 0xFF, 0xFF, 0x55 };
        uint8_t buf[16];
        struct termios t;
        An3155Timeouts to;
        int fd;

        ASSERT_OK(link_open_serial("/dev/ttyUSB0", 115200, &l));
        /* what the tty holds, through a second handle */
        fd = open("/dev/ttyUSB0", O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(tcgetattr(fd, &t));
        close(fd);
        ASSERT_EQ(t.c_iflag & (INPCK | PARMRK | IGNPAR | ISTRIP), (tcflag_t) (INPCK | PARMRK));

        ASSERT_OK(an3155_new(l, &p));
        an3155_get_timeouts(p, &to);
        to.reply_usec = 200 * USEC_PER_MSEC;
        an3155_set_timeouts(p, &to);
        ASSERT_OK(an3155_sync(p, 2));
        /* 0xFF bytes (doubled by the tty) in RAM, and back */
        ASSERT_OK(an3155_write_memory(p, 0x20001000, data, sizeof data));
        ASSERT_OK(an3155_read_memory(p, 0x20001000, buf, sizeof buf));
        ASSERT_MEMEQ(buf, data, sizeof data);

        /* the last data byte of the Read Memory reply (its 3rd burst: ACK, ACK, ACK and
         * data) fails the parity check */
        harness_control_ok("glitch ttyUSB0 3");
        memset(buf, 0, sizeof buf);
        ASSERT_ERR(an3155_read_memory(p, 0x20001000, buf, sizeof buf), EPROTO);
        p = an3155_free(p);

        /* the flasher retries the read that met it */
        _cleanup_(flasher_freep) Flasher *f = NULL;
        ASSERT_OK(flasher_new(l, &f));
        an3155_set_timeouts(flasher_protocol(f), &to);
        ASSERT_OK(flasher_probe(f, NULL));
        unsigned reads = board_counter("ttyUSB0", "reads");
        harness_control_ok("glitch ttyUSB0 3");
        memset(buf, 0, sizeof buf);
        ASSERT_OK(flasher_read(f, 0x20001000, buf, sizeof buf));
        ASSERT_MEMEQ(buf, data, sizeof data);
        ASSERT_EQ(board_counter("ttyUSB0", "reads"), reads + 2);
}

/* A host that forgot even parity gets no answer; the same host at 8E1 does. */
static void test_no_parity(void) {
        struct termios t;
        uint8_t sync = AN3155_SYNC;
        int fd;

        fd = open("/dev/ttyUSB2", O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(tcgetattr(fd, &t), 0);
        cfmakeraw(&t);          /* CS8, no parity */
        cfsetspeed(&t, B115200);
        ASSERT_EQ(tcsetattr(fd, TCSANOW, &t), 0);
        ASSERT_EQ(tcgetattr(fd, &t), 0);
        ASSERT_EQ(t.c_cflag & (PARENB | CSIZE), CS8);

        ASSERT_EQ(write(fd, &sync, 1), 1);
        ASSERT_ERR(wait_byte(fd, 300), ETIMEDOUT);

        t.c_cflag |= PARENB;
        t.c_cflag &= ~(tcflag_t) PARODD;
        ASSERT_EQ(tcsetattr(fd, TCSANOW, &t), 0);
        ASSERT_EQ(tcgetattr(fd, &t), 0);
        ASSERT_EQ(t.c_cflag & (PARENB | PARODD | CSIZE), PARENB | CS8);
        ASSERT_EQ(tcflush(fd, TCIOFLUSH), 0);
        ASSERT_EQ(write(fd, &sync, 1), 1);

        /* FIONREAD reaches the pty (umockdev alone answers ENOTTY), isatty() says yes. */
        {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int waiting = -1;

                ASSERT_EQ(poll(&p, 1, 1000), 1);
                ASSERT_EQ(ioctl(fd, FIONREAD, &waiting), 0);
                ASSERT_EQ(waiting, 1);
                ASSERT_EQ(isatty(fd), 1);
        }
        ASSERT_EQ(wait_byte(fd, 1000), AN3155_ACK);
        close(fd);
}

static void test_hangup(void) {
        _cleanup_(link_freep) Link *l = NULL;
        uint16_t pid = 0;
        uint64_t t0;
        uint8_t b;

        ASSERT_OK(link_open_serial("/dev/ttyUSB0", 115200, &l));
        ASSERT_OK(sync_and_id(l, &pid));

        harness_control_ok("hangup ttyUSB0");

        /* Gone is gone at once, not after the timeout. */
        t0 = now_usec();
        ASSERT_ERR(link_read(l, &b, 1, now_usec() + 2 * USEC_PER_SEC), ENODEV);
        ASSERT_TRUE(now_usec() - t0 < 500 * USEC_PER_MSEC);
        ASSERT_ERR(link_write(l, "\x7f", 1), ENODEV);
        ASSERT_ERR(link_set_lines(l, 1, 1), ENODEV);
        ASSERT_ERR(link_set_break(l, true), ENODEV);
        ASSERT_ERR(link_flush_input(l), ENODEV);
        ASSERT_ERR(link_set_baud(l, 115200), ENODEV);
}

static struct udev_device *receive_device(struct udev_monitor *mon) {
        struct pollfd p = { .fd = udev_monitor_get_fd(mon), .events = POLLIN };
        struct udev_device *d;

        ASSERT_EQ(poll(&p, 1, 2000), 1);
        d = udev_monitor_receive_device(mon);
        ASSERT_TRUE(d);
        return d;
}

/* Hot-plug through the control socket: a C0 appears, works, and is unplugged. */
static void test_hotplug(void) {
        _cleanup_(link_freep) Link *l = NULL;
        uint16_t pid = 0;
        uint8_t b;

        struct udev *udev = udev_new();
        struct udev_monitor *mon;
        struct udev_device *d;

        /* A udev monitor sees the adapter arrive, as the daemon's hot-plug code will. */
        ASSERT_TRUE(udev);
        mon = udev_monitor_new_from_netlink(udev, "udev");
        ASSERT_TRUE(mon);
        ASSERT_OK(udev_monitor_filter_add_match_subsystem_devtype(mon, "tty", NULL));
        ASSERT_OK(udev_monitor_enable_receiving(mon));

        harness_control_ok("add ttyUSB3=0x453,adapter=cp2102");

        d = receive_device(mon);
        ASSERT_STREQ(udev_device_get_action(d), "add");
        ASSERT_STREQ(udev_device_get_devnode(d), "/dev/ttyUSB3");
        ASSERT_STREQ(udev_device_get_subsystem(d), "tty");
        ASSERT_STREQ(udev_device_get_property_value(d, "ID_VENDOR_ID"), "10c4");
        ASSERT_STREQ(udev_device_get_property_value(d, "ID_MODEL_ID"), "ea60");
        ASSERT_STREQ(udev_device_get_property_value(d, "ID_SERIAL_SHORT"), "STSIM003");
        ASSERT_STREQ(udev_device_get_property_value(d, "ID_USB_DRIVER"), "cp210x");
        udev_device_unref(d);

        ASSERT_OK(link_open_serial("/dev/ttyUSB3", 115200, &l));
        ASSERT_OK(sync_and_id(l, &pid));
        ASSERT_EQ(pid, 0x453);

        harness_control_ok("remove ttyUSB3");
        d = receive_device(mon);
        ASSERT_STREQ(udev_device_get_action(d), "remove");
        ASSERT_STREQ(udev_device_get_devnode(d), "/dev/ttyUSB3");
        udev_device_unref(d);
        udev_monitor_unref(mon);
        udev_unref(udev);

        ASSERT_ERR(link_read(l, &b, 1, now_usec() + USEC_PER_SEC), ENODEV);
        l = link_free(l);
        ASSERT_ERR(link_open_serial("/dev/ttyUSB3", 115200, &l), ENOENT);

        /* umockdev cannot re-add a /dev node: the harness says so instead of aborting. */
        ASSERT_TRUE(strncmp(harness_control("add ttyUSB3=0x453"), "error", 5) == 0);
        ASSERT_TRUE(strncmp(harness_control("hangup ttyUSB7"), "error", 5) == 0);
}

int main(int argc, char *argv[]) {
        if (!getenv("STM32SIM_SHIM_SOCKET"))
                return harness_reexec("test-link-serial", (const char *const[]) {
                        "--board", "ttyUSB0=0x466",
                        "--board", "ttyUSB1=0x444,adapter=ch340,wiring=dtr-nrst,rts-boot0",
                        "--board", "ttyUSB2=0x457", NULL });

        TEST(test_enumeration);
        TEST(test_open_errors);
        TEST(test_config_and_sync);
        TEST(test_modem_lines);
        TEST(test_lines_one_ioctl);
        TEST(test_break);
        TEST(test_no_parity);
        TEST(test_parity_checks);
        TEST(test_hangup);
        TEST(test_hotplug);
        TEST(test_low_latency);
        TEST(test_break_reset);
        return 0;
}
