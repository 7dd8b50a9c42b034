/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A link over a plain file descriptor: a socketpair end or a pty master (tests, the
 * simulator, later a TCP socket). The fd is switched to non-blocking mode; every wait
 * is a ppoll() against a CLOCK_MONOTONIC deadline, so signals only shorten a wait,
 * never the deadline. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

#include "link.h"

typedef struct LinkFd {
        Link link;
        int fd;
        bool is_socket;
        bool is_tty;
} LinkFd;

/* Discarding input never reads more than this much: a peer that keeps talking
 * cannot hold us forever. */
#define FLUSH_MAX (64u * 1024u)

static LinkFd *to_fd(Link *l) {
        return (LinkFd *) l;
}

/* What a vanished peer looks like: a closed socket, a hung-up tty or pty. */
static bool errno_is_hangup(int e) {
        return e == EIO || e == EPIPE || e == ECONNRESET || e == ENXIO || e == ENODEV || e == ENOTCONN;
}

/* After a read or write that moved nothing (err: its errno): 0 to try again (a signal, or
 * the fd is ready for events), or how it ended: -ENODEV for a hang-up, -ETIMEDOUT at
 * the deadline, the error. */
static int fd_again(LinkFd *f, int err, short events, uint64_t deadline_usec) {
        int ev;

        if (err == EINTR)
                return 0;
        if (errno_is_hangup(err))
                return -ENODEV;
        if (err != EAGAIN)
                return -err;

        ev = link_fd_wait(f->fd, events, deadline_usec);
        if (ev < 0)
                return ev;
        if (ev == 0)
                return -ETIMEDOUT;
        if (ev & POLLNVAL)
                return -EBADF;
        /* Reading, POLLHUP or POLLERR comes back to the read, which tells data from
         * hang-up; a writer cannot write into one. */
        if (!(events & POLLIN) && (ev & (POLLHUP | POLLERR)) && !(ev & events))
                return -ENODEV;
        return 0;
}

static int fd_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        LinkFd *f = to_fd(l);

        if (n == 0)
                return 0;
        n = MIN(n, (size_t) INT32_MAX);         /* the count must fit the int we return */

        for (;;) {
                ssize_t k;
                int r;

                /* Try first: data already waiting is returned even past the deadline. */
                k = read(f->fd, buf, n);
                if (k > 0)
                        return (int) k;
                if (k == 0)
                        return -ENODEV;         /* peer closed, or a hung-up tty */
                r = fd_again(f, errno, POLLIN, deadline_usec);
                if (r < 0)
                        return r;
        }
}

static ssize_t fd_write_once(LinkFd *f, const void *buf, size_t n) {
        /* No SIGPIPE when the peer of a socket is gone: we want EPIPE. */
        if (f->is_socket)
                return send(f->fd, buf, n, MSG_NOSIGNAL);
        return write(f->fd, buf, n);
}

static int fd_write(Link *l, const void *buf, size_t n) {
        LinkFd *f = to_fd(l);
        const uint8_t *p = buf;
        uint64_t deadline;

        /* Twice the wire time plus a second of slack, like the serial backend: a peer
         * that stops reading must not block us forever. Progress extends the deadline. */
        deadline = now_usec() + 2 * link_wire_usec(l, n) + USEC_PER_SEC;

        while (n > 0) {
                ssize_t k;
                int r;

                k = fd_write_once(f, p, n);
                if (k > 0) {
                        p += k;
                        n -= (size_t) k;
                        deadline = now_usec() + 2 * link_wire_usec(l, n) + USEC_PER_SEC;
                        continue;
                }
                if (k == 0)
                        return -EIO;
                r = fd_again(f, errno, POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fd_drain(Link *l) {
        LinkFd *f = to_fd(l);

        if (!f->is_tty)
                return 0;
        while (tcdrain(f->fd) < 0) {
                if (errno == EINTR)
                        continue;
                return errno_is_hangup(errno) ? -ENODEV : -errno;
        }
        return 0;
}

static int fd_flush_input(Link *l) {
        LinkFd *f = to_fd(l);
        uint8_t buf[512];
        size_t total = 0;

        /* The kernel's queue first, then whatever is left (a socket, or bytes that
         * reached a pty after the flush). */
        if (f->is_tty && tcflush(f->fd, TCIFLUSH) < 0 && errno_is_hangup(errno))
                return -ENODEV;

        while (total < FLUSH_MAX) {
                ssize_t k;

                k = read(f->fd, buf, sizeof(buf));
                if (k > 0) {
                        total += (size_t) k;
                        continue;
                }
                if (k == 0)
                        return -ENODEV;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                return errno_is_hangup(errno) ? -ENODEV : -errno;
        }
        return 0;
}

static int fd_set_lines(Link *l, int dtr, int rts) {
        return 0;
}

static int fd_set_baud(Link *l, unsigned baud) {
        l->baud = baud;
        return 0;
}

static void fd_free(Link *l) {
        LinkFd *f = to_fd(l);

        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        free(f->link.name);
        free(f);
}

static const LinkOps fd_ops = {
        .read = fd_read,
        .write = fd_write,
        .drain = fd_drain,
        .flush_input = fd_flush_input,
        .set_lines = fd_set_lines,
        .set_baud = fd_set_baud,
        .free = fd_free,
        /* no .set_break: a socket or pty master has no TX line to hold low */
};

int link_open_fd(int fd, const char *name, Link **ret) {
        _cleanup_close_ int owned = fd;
        struct stat st;
        LinkFd *f;
        int flags;

        if (fd < 0 || !ret)
                return -EINVAL;

        if (fstat(fd, &st) < 0)
                return -errno;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return -errno;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->link.ops = &fd_ops;
        f->is_socket = S_ISSOCK(st.st_mode);
        f->is_tty = isatty(fd);
        if (name)
                f->link.name = strdup(name);
        else if (asprintf(&f->link.name, "fd:%i", fd) < 0)
                f->link.name = NULL;
        if (!f->link.name) {
                free(f);
                return -ENOMEM;
        }
        f->fd = TAKE_FD(owned);

        *ret = &f->link;
        return 0;
}
