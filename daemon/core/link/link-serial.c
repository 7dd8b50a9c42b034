/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A local UART through libserialport: 8E1, no flow control, reads with a deadline
 * and hang-up detection (an unplugged adapter reads 0 bytes forever, so read()
 * alone cannot tell "no data" from "gone").
 *
 * Every AN3155 reply is a few bytes the host waits for, so the adapter's latency is
 * paid once per reply: the port asks the driver for its lowest latency
 * (ASYNC_LOW_LATENCY) and, on FTDI adapters, sets the latency_timer (16 ms by default)
 * to 1 ms, restoring both on close. Both are best effort: a driver without them, or a
 * daemon without the permission, flashes slower but still flashes. */

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <linux/serial.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "link.h"

/* ms; ftdi_sio accepts 1..255 */
#define FTDI_LATENCY_MS 1

typedef struct LinkSerial {
        Link link;
        struct sp_port *port;
        bool opened;
        int fd;

        /* PARMRK decoding across reads: 1 after \377, 2 after \377 \0 */
        unsigned mark;

        bool restore_low_latency;       /* we set ASYNC_LOW_LATENCY: clear it on close */
        char *latency_timer_path;       /* sysfs latency_timer we changed, to restore */
        int latency_timer_old;
} LinkSerial;

/* libserialport's result -> a count or a negative errno. */
static int sp_to_errno(enum sp_return r) {
        int e;

        if (r >= 0)
                return (int) r;
        switch (r) {
        case SP_ERR_ARG:
                return -EINVAL;
        case SP_ERR_MEM:
                return -ENOMEM;
        case SP_ERR_SUPP:
                return -EOPNOTSUPP;
        case SP_ERR_FAIL:
        default:
                e = sp_last_error_code();
                return e > 0 ? -e : -EIO;
        }
}

static LinkSerial *to_serial(Link *l) {
        return (LinkSerial *) l;
}

/* True once the port has hung up: the adapter was unplugged (or the pty master closed). */
static bool serial_hung_up(LinkSerial *s) {
        struct pollfd p = { .fd = s->fd, .events = POLLIN };

        if (poll(&p, 1, 0) < 0)
                return false;
        return p.revents & (POLLHUP | POLLERR | POLLNVAL);
}

/* A failed call on a port that is gone reports -ENODEV, whatever errno the driver chose. */
static int serial_error(LinkSerial *s, int r) {
        if (r < 0 && serial_hung_up(s))
                return -ENODEV;
        return r;
}

/* Bytes are arriving and n are wanted: the missing ones cannot come sooner than their
 * wire time, so sleep that long once instead of waking for every byte (a 256-byte
 * read would otherwise cost up to 256 wake-ups; the CPU time counts with many ports). */
static void serial_wait_for(LinkSerial *s, size_t n, uint64_t deadline_usec) {
        int avail = 0;
        uint64_t until;

        if (n <= 1 || ioctl(s->fd, FIONREAD, &avail) < 0 || avail < 0 || (size_t) avail >= n)
                return;
        until = MIN(now_usec() + link_wire_usec(&s->link, n - (size_t) avail), deadline_usec);
        for (;;) {
                uint64_t now = now_usec();
                struct timespec ts;

                if (now >= until)
                        return;
                ts.tv_sec = (time_t) ((until - now) / USEC_PER_SEC);
                ts.tv_nsec = (long) ((until - now) % USEC_PER_SEC) * 1000;
                if (nanosleep(&ts, NULL) == 0)
                        return;
                if (errno != EINTR)
                        return;
        }
}

/* Undoes PARMRK in place (see serial_set_input_checks()): \377 \377 is a data byte
 * 0xFF, \377 \0 X a byte X that arrived with a parity or framing error (X = 0: a
 * break). Returns the data bytes, or -LINK_EPARITY when an error byte came: nothing of
 * this read is data then (the reply it belongs to is broken anyway); the state stays
 * in step with the stream for the next read. */
static int serial_unmark(LinkSerial *s, uint8_t *buf, size_t n) {
        size_t out = 0;
        bool bad = false;

        for (size_t i = 0; i < n; i++) {
                uint8_t b = buf[i];

                switch (s->mark) {
                case 0:
                        if (b == 0xFF)
                                s->mark = 1;
                        else
                                buf[out++] = b;
                        break;
                case 1:
                        if (b == 0xFF) {
                                buf[out++] = 0xFF;
                                s->mark = 0;
                        } else if (b == 0x00)
                                s->mark = 2;
                        else {
                                bad = true;     /* no such sequence: do not trust it */
                                s->mark = 0;
                        }
                        break;
                default:
                        bad = true;             /* b arrived with an error: dropped */
                        s->mark = 0;
                        break;
                }
        }
        return bad ? -LINK_EPARITY : (int) out;
}

static int serial_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        LinkSerial *s = to_serial(l);

        if (n == 0)
                return 0;

        for (;;) {
                int revents, r;

                revents = link_fd_wait(s->fd, POLLIN, deadline_usec);
                if (revents < 0)
                        return revents;
                if (revents == 0)
                        return -ETIMEDOUT;
                if (revents & POLLNVAL)
                        return -EBADF;

                if (revents & POLLIN) {
                        serial_wait_for(s, n, deadline_usec);
                        r = sp_to_errno(sp_nonblocking_read(s->port, buf, n));
                        if (r > 0) {
                                r = serial_unmark(s, buf, (size_t) r);
                                if (r != 0)
                                        return r;
                                continue;       /* only the start of a mark so far */
                        }
                        if (r < 0 && r != -EINTR && r != -EAGAIN) {
                                r = serial_error(s, r);
                                return r == -EIO ? -ENODEV : r;
                        }
                }
                /* A hung-up tty polls readable and reads 0 bytes forever. */
                if ((revents & (POLLHUP | POLLERR)) || serial_hung_up(s))
                        return -ENODEV;
                if (now_usec() >= deadline_usec)
                        return -ETIMEDOUT;
        }
}

/* write() on the non-blocking fd, polling only when the driver's buffer is full
 * (libserialport's blocking write adds a select() to every call). */
static int serial_write(Link *l, const void *buf, size_t n) {
        LinkSerial *s = to_serial(l);
        const uint8_t *p = buf;
        uint64_t deadline;

        if (n == 0)
                return 0;
        /* No hang-up check first: a hung-up tty fails the write (EIO), and serial_error()
         * names that -ENODEV; a poll() per write would cost a syscall on every turn. */

        /* Twice the wire time plus a second of slack for the adapter and scheduler. */
        deadline = now_usec() + 2 * link_wire_usec(l, n) + USEC_PER_SEC;
        while (n > 0) {
                ssize_t k;
                int r;

                k = write(s->fd, p, n);
                if (k > 0) {
                        p += k;
                        n -= (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN) {
                        r = serial_error(s, -errno);
                        return r == -EIO ? -ENODEV : r;
                }

                if (now_usec() >= deadline)
                        return serial_hung_up(s) ? -ENODEV : -ETIMEDOUT;
                r = link_fd_wait(s->fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (r & (POLLHUP | POLLERR | POLLNVAL))
                        return -ENODEV;
        }
        return 0;
}

static int serial_drain(Link *l) {
        LinkSerial *s = to_serial(l);

        return serial_error(s, sp_to_errno(sp_drain(s->port)));
}

static int serial_flush_input(Link *l) {
        LinkSerial *s = to_serial(l);

        if (serial_hung_up(s))
                return -ENODEV;
        s->mark = 0;
        return serial_error(s, sp_to_errno(sp_flush(s->port, SP_BUF_INPUT)));
}

/* One ioctl per step, so both lines change at the same instant: a step that changes DTR
 * and RTS together is one TIOCMSET (libserialport would make it two calls, and some
 * adapters, CP210x among them, show the state between them as a glitch on the board's
 * NRST/BOOT0). A single line is one TIOCMBIS/TIOCMBIC, which leaves the other alone. */
static int serial_set_lines(Link *l, int dtr, int rts) {
        LinkSerial *s = to_serial(l);
        int bits = (dtr >= 0 ? TIOCM_DTR : 0) | (rts >= 0 ? TIOCM_RTS : 0);
        int r;

        if (dtr >= 0 && rts >= 0) {
                int state;

                if (ioctl(s->fd, TIOCMGET, &state) < 0)
                        return serial_error(s, -errno);
                state &= ~(TIOCM_DTR | TIOCM_RTS);
                state |= (dtr ? TIOCM_DTR : 0) | (rts ? TIOCM_RTS : 0);
                r = ioctl(s->fd, TIOCMSET, &state);
        } else if (dtr > 0 || rts > 0)
                r = ioctl(s->fd, TIOCMBIS, &bits);
        else if (bits)
                r = ioctl(s->fd, TIOCMBIC, &bits);
        else
                return 0;
        return r < 0 ? serial_error(s, -errno) : 0;
}

/* sp_start_break/sp_end_break: TIOCSBRK/TIOCCBRK on Linux. */
static int serial_set_break(Link *l, bool on) {
        LinkSerial *s = to_serial(l);
        int r;

        r = sp_to_errno(on ? sp_start_break(s->port) : sp_end_break(s->port));
        return r < 0 ? serial_error(s, r) : 0;
}

/* HUPCL off: closing the port leaves DTR and RTS as the last step left them. A drop on
 * close resets boards whose NRST hangs on a line (through an inverter or a capacitor);
 * the exit sequence is the one that resets into the application, when asked for. */
static int serial_clear_hupcl(LinkSerial *s) {
        struct termios t;

        if (tcgetattr(s->fd, &t) < 0)
                return serial_error(s, -errno);
        if (!(t.c_cflag & HUPCL))
                return 0;
        t.c_cflag &= ~HUPCL;
        if (tcsetattr(s->fd, TCSANOW, &t) < 0)
                return serial_error(s, -errno);
        return 0;
}

/* Parity checked on input, and a byte that fails it never read as data: INPCK with
 * PARMRK, so the tty marks such a byte (and a framing error, and a break) as \377 \0 X
 * and doubles a real 0xFF, which serial_unmark() undoes. Not IGNPAR: with it a driver
 * that flags errors per byte but declares itself raw (usb-serial's TTY_DRIVER_REAL_RAW)
 * has the line discipline copy the flagged bytes as data, and one that drops them
 * leaves a short reply that only a timeout ends. Not ISTRIP, which would clear bit 7 of
 * every byte. An adapter whose driver ignores parity delivers no marks at all: nothing
 * changes for it. Set only when not set already (no termios call on a rate change). */
static int serial_set_input_checks(LinkSerial *s) {
        struct termios t;

        if (tcgetattr(s->fd, &t) < 0)
                return serial_error(s, -errno);
        if ((t.c_iflag & (INPCK | PARMRK | IGNPAR | ISTRIP)) == (INPCK | PARMRK))
                return 0;
        t.c_iflag |= INPCK | PARMRK;
        t.c_iflag &= ~(IGNPAR | ISTRIP);
        if (tcsetattr(s->fd, TCSANOW, &t) < 0)
                return serial_error(s, -errno);
        return 0;
}

/* One sp_set_config() call, so the driver sees a single line change. DTR/RTS stay
 * as they are: the config leaves them unset (-1). */
static int serial_configure(LinkSerial *s, unsigned baud) {
        struct sp_port_config *config = NULL;
        int r;

        if (baud == 0 || baud > INT32_MAX)
                return -EINVAL;

        r = sp_to_errno(sp_new_config(&config));
        if (r < 0)
                return r;

        r = sp_to_errno(sp_set_config_baudrate(config, (int) baud));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_bits(config, 8));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_parity(config, SP_PARITY_EVEN));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_stopbits(config, 1));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_xon_xoff(config, SP_XONXOFF_DISABLED));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_cts(config, SP_CTS_IGNORE));
        if (r >= 0)
                r = sp_to_errno(sp_set_config_dsr(config, SP_DSR_IGNORE));
        if (r >= 0)
                r = sp_to_errno(sp_set_config(s->port, config));
        sp_free_config(config);
        if (r < 0)
                return serial_error(s, r);
        r = serial_set_input_checks(s);
        if (r < 0)
                return r;

        s->link.baud = baud;
        return 0;
}

static int serial_set_baud(Link *l, unsigned baud) {
        return serial_configure(to_serial(l), baud);
}

/* ---- latency ---- */

static int read_int_file(const char *path, int *ret) {
        char buf[32];
        ssize_t k;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, sizeof(buf) - 1);
        if (k < 0) {
                k = -errno;
                close(fd);
                return (int) k;
        }
        close(fd);
        buf[k] = 0;
        if (sscanf(buf, "%d", ret) != 1)
                return -EINVAL;
        return 0;
}

static int write_int_file(const char *path, int v) {
        char buf[16];
        int fd, n, r = 0;

        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = snprintf(buf, sizeof(buf), "%d\n", v);
        if (write(fd, buf, (size_t) n) != n)
                r = -errno ?: -EIO;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

/* ASYNC_LOW_LATENCY: drivers that batch received bytes (the tty flip buffer, some USB
 * serial drivers) push them at once. Ptys and many drivers answer ENOTTY or EINVAL. */
static void serial_set_low_latency(LinkSerial *s) {
        struct serial_struct ss;

        if (ioctl(s->fd, TIOCGSERIAL, &ss) < 0)
                return;
        if (ss.flags & ASYNC_LOW_LATENCY)
                return;
        ss.flags |= ASYNC_LOW_LATENCY;
        if (ioctl(s->fd, TIOCSSERIAL, &ss) >= 0)
                s->restore_low_latency = true;
}

static void serial_restore_low_latency(LinkSerial *s) {
        struct serial_struct ss;

        if (!s->restore_low_latency || s->fd < 0)
                return;
        s->restore_low_latency = false;
        if (ioctl(s->fd, TIOCGSERIAL, &ss) < 0)
                return;
        ss.flags &= ~ASYNC_LOW_LATENCY;
        (void) ioctl(s->fd, TIOCSSERIAL, &ss);
}

/* The sysfs attribute of the USB-serial port behind the tty, found by the device
 * number (stat follows /dev/serial/by-id links). */
static int latency_timer_path(const char *device, char **ret) {
        struct stat st;
        char *path;

        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISCHR(st.st_mode))
                return -ENOTTY;
        if (asprintf(&path, "/sys/dev/char/%u:%u/device/latency_timer",
                     major(st.st_rdev), minor(st.st_rdev)) < 0)
                return -ENOMEM;
        *ret = path;
        return 0;
}

/* FTDI chips hold received bytes up to latency_timer ms before sending a short USB
 * packet: 16 ms on every reply unless lowered. Only ftdi_sio has the attribute. */
static void serial_set_latency_timer(LinkSerial *s, const char *device) {
        _cleanup_free_ char *path = NULL;
        int old;

        if (latency_timer_path(device, &path) < 0)
                return;
        if (read_int_file(path, &old) < 0 || old <= FTDI_LATENCY_MS)
                return;
        if (write_int_file(path, FTDI_LATENCY_MS) < 0)
                return;
        s->latency_timer_path = TAKE_PTR(path);
        s->latency_timer_old = old;
}

static void serial_restore_latency_timer(LinkSerial *s) {
        if (!s->latency_timer_path)
                return;
        /* the adapter may be gone: nothing to restore then */
        (void) write_int_file(s->latency_timer_path, s->latency_timer_old);
        free(s->latency_timer_path);
        s->latency_timer_path = NULL;
}

static void serial_free(Link *l) {
        LinkSerial *s = to_serial(l);

        if (!s)
                return;
        serial_restore_low_latency(s);
        serial_restore_latency_timer(s);
        if (s->port) {
                if (s->opened)
                        (void) sp_close(s->port);
                sp_free_port(s->port);
        }
        free(s->link.name);
        free(s);
}

static const LinkOps serial_ops = {
        .read = serial_read,
        .write = serial_write,
        .drain = serial_drain,
        .flush_input = serial_flush_input,
        .set_lines = serial_set_lines,
        .set_baud = serial_set_baud,
        .free = serial_free,
        .set_break = serial_set_break,
};

int link_open_serial(const char *device, unsigned baud, Link **ret) {
        LinkSerial *s;
        int r, flags;

        if (!device || !ret || baud == 0 || baud > INT32_MAX)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->link.ops = &serial_ops;
        s->link.caps = link_transport_caps(LINK_TRANSPORT_SERIAL);
        s->link.name = strdup(device);
        if (!s->link.name) {
                r = -ENOMEM;
                goto fail;
        }

        r = sp_to_errno(sp_get_port_by_name(device, &s->port));
        if (r < 0) {
                /* The Linux backend reports a missing device or sysfs entry as SP_ERR_ARG. */
                r = r == -EINVAL ? -ENOENT : r;
                s->port = NULL;
                goto fail;
        }

        r = sp_to_errno(sp_open(s->port, SP_MODE_READ_WRITE));
        if (r < 0)
                goto fail;
        s->opened = true;

        r = sp_to_errno(sp_get_port_handle(s->port, &s->fd));
        if (r < 0) {
                s->fd = -1;
                goto fail;
        }

        /* A helper the daemon spawns must not keep the port open (nor hold off a hang-up). */
        flags = fcntl(s->fd, F_GETFD);
        if (flags < 0 || fcntl(s->fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }

        /* Non-blocking: a write never sleeps in the kernel past its timeout (a port
         * whose peer stopped reading); libserialport's calls handle EAGAIN. */
        flags = fcntl(s->fd, F_GETFL);
        if (flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                r = -errno;
                goto fail;
        }

        /* One user per port: a second opener (us or a cooperating tool) gets -EBUSY. */
        if (flock(s->fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }

        r = serial_configure(s, baud);
        if (r < 0)
                goto fail;
        r = serial_clear_hupcl(s);
        if (r < 0)
                goto fail;

        serial_set_low_latency(s);
        serial_set_latency_timer(s, device);

        *ret = &s->link;
        return 0;

fail:
        serial_free(&s->link);
        return r;
}
