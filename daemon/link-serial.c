/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A local UART through libserialport: 8E1, no flow control, reads with a deadline
 * and hang-up detection (an unplugged adapter reads 0 bytes forever, so read()
 * alone cannot tell "no data" from "gone"). */

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "link.h"

typedef struct LinkSerial {
        Link link;
        struct sp_port *port;
        bool opened;
        int fd;
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

static int serial_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        LinkSerial *s = to_serial(l);

        if (n == 0)
                return 0;

        for (;;) {
                struct pollfd p = { .fd = s->fd, .events = POLLIN };
                uint64_t now = now_usec();
                int timeout_ms, r;

                /* Round up so a deadline 0.4 ms away still waits instead of spinning. */
                timeout_ms = now >= deadline_usec ? 0 :
                        (int) MIN((deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t) 60000);

                r = poll(&p, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0) {
                        if (now_usec() >= deadline_usec)
                                return -ETIMEDOUT;
                        continue;
                }
                if (p.revents & POLLNVAL)
                        return -EBADF;

                if (p.revents & POLLIN) {
                        r = sp_to_errno(sp_nonblocking_read(s->port, buf, n));
                        if (r > 0)
                                return r;
                        if (r < 0 && r != -EINTR && r != -EAGAIN) {
                                r = serial_error(s, r);
                                return r == -EIO ? -ENODEV : r;
                        }
                }
                /* A hung-up tty polls readable and reads 0 bytes forever. */
                if ((p.revents & (POLLHUP | POLLERR)) || serial_hung_up(s))
                        return -ENODEV;
                if (now_usec() >= deadline_usec)
                        return -ETIMEDOUT;
        }
}

static int serial_write(Link *l, const void *buf, size_t n) {
        LinkSerial *s = to_serial(l);
        uint64_t timeout_usec;
        int r;

        if (n == 0)
                return 0;
        if (serial_hung_up(s))
                return -ENODEV;

        /* Twice the wire time plus a second of slack for the adapter and scheduler. */
        timeout_usec = 2 * link_wire_usec(l, n) + USEC_PER_SEC;
        r = sp_to_errno(sp_blocking_write(s->port, buf, n, (unsigned) (timeout_usec / USEC_PER_MSEC)));
        if (r < 0)
                return serial_error(s, r);
        if ((size_t) r < n)
                return serial_hung_up(s) ? -ENODEV : -ETIMEDOUT;
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
        return serial_error(s, sp_to_errno(sp_flush(s->port, SP_BUF_INPUT)));
}

static int serial_set_lines(Link *l, int dtr, int rts) {
        LinkSerial *s = to_serial(l);
        int r;

        if (dtr >= 0) {
                r = sp_to_errno(sp_set_dtr(s->port, dtr ? SP_DTR_ON : SP_DTR_OFF));
                if (r < 0)
                        return serial_error(s, r);
        }
        if (rts >= 0) {
                r = sp_to_errno(sp_set_rts(s->port, rts ? SP_RTS_ON : SP_RTS_OFF));
                if (r < 0)
                        return serial_error(s, r);
        }
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

        s->link.baud = baud;
        return 0;
}

static int serial_set_baud(Link *l, unsigned baud) {
        return serial_configure(to_serial(l), baud);
}

static void serial_free(Link *l) {
        LinkSerial *s = to_serial(l);

        if (!s)
                return;
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

        *ret = &s->link;
        return 0;

fail:
        serial_free(&s->link);
        return r;
}
