/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A raw TCP serial server (ser2net "raw" mode, serial device servers): the bytes
 * of the TCP stream are the bytes of the UART. Line settings belong to the server. */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"

#define CONNECT_TIMEOUT_USEC (5 * USEC_PER_SEC)

typedef struct LinkTcp {
        Link link;
        int fd;
} LinkTcp;

static LinkTcp *to_tcp(Link *l) {
        return (LinkTcp *) l;
}

static int poll_deadline(int fd, short events, uint64_t deadline_usec, short *ret_revents) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                uint64_t now = now_usec();
                int timeout_ms, r;

                timeout_ms = now >= deadline_usec ? 0 :
                        (int) MIN((deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t) 60000);
                r = poll(&p, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0) {
                        *ret_revents = p.revents;
                        return 1;
                }
                if (now_usec() >= deadline_usec)
                        return 0;
        }
}

static int errno_to_link(int e) {
        switch (e) {
        case ECONNRESET:
        case EPIPE:
        case ENOTCONN:
        case ESHUTDOWN:
                return -ENODEV;
        default:
                return -e;
        }
}

static int tcp_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        LinkTcp *t = to_tcp(l);

        if (n == 0)
                return 0;
        for (;;) {
                short revents = 0;
                ssize_t k;
                int r;

                r = poll_deadline(t->fd, POLLIN, deadline_usec, &revents);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                k = recv(t->fd, buf, n, MSG_DONTWAIT);
                if (k > 0)
                        return (int) k;
                if (k == 0)
                        return -ENODEV;         /* the server closed the connection */
                if (errno == EAGAIN || errno == EINTR)
                        continue;
                return errno_to_link(errno);
        }
}

static int tcp_write(Link *l, const void *buf, size_t n) {
        LinkTcp *t = to_tcp(l);
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = send(t->fd, p, n, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                short revents;
                                int r = poll_deadline(t->fd, POLLOUT, now_usec() + 5 * USEC_PER_SEC, &revents);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        return errno_to_link(errno);
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int tcp_drain(Link *l) {
        /* TCP_NODELAY sends at once; what the server does with its UART is its business. */
        return 0;
}

static int tcp_flush_input(Link *l) {
        LinkTcp *t = to_tcp(l);
        uint8_t buf[256];

        for (;;) {
                ssize_t k = recv(t->fd, buf, sizeof buf, MSG_DONTWAIT);

                if (k > 0)
                        continue;
                if (k == 0)
                        return -ENODEV;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                return errno_to_link(errno);
        }
}

static int tcp_set_lines(Link *l, int dtr, int rts) {
        return 0;
}

static int tcp_set_baud(Link *l, unsigned baud) {
        if (baud == 0)
                return -EINVAL;
        l->baud = baud;
        return 0;
}

static void tcp_free(Link *l) {
        LinkTcp *t = to_tcp(l);

        if (t->fd >= 0)
                close(t->fd);
        free(t->link.name);
        free(t);
}

static const LinkOps tcp_ops = {
        .read = tcp_read,
        .write = tcp_write,
        .drain = tcp_drain,
        .flush_input = tcp_flush_input,
        .set_lines = tcp_set_lines,
        .set_baud = tcp_set_baud,
        .free = tcp_free,
};

int link_tcp_parse_url(const char *url, char **ret_host, char **ret_port) {
        const char *h, *colon, *end;
        char *host, *port;

        if (!url || strncmp(url, "tcp://", 6) != 0)
                return -EINVAL;
        h = url + 6;
        if (*h == '[') {
                end = strchr(h, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                colon = end + 1;
                h++;
        } else {
                colon = strrchr(h, ':');
                if (!colon)
                        return -EINVAL;
                end = colon;
        }
        if (end == h || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            strlen(colon + 1) > 5 || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
                return -EINVAL;
        if (memchr(h, '/', (size_t) (end - h)))
                return -EINVAL;

        host = strndup(h, (size_t) (end - h));
        port = strdup(colon + 1);
        if (!host || !port) {
                free(host);
                free(port);
                return -ENOMEM;
        }
        *ret_host = host;
        *ret_port = port;
        return 0;
}

/* Non-blocking connect with a deadline, so an unreachable server cannot hang a job. */
static int connect_deadline(const struct addrinfo *ai, uint64_t deadline_usec) {
        _cleanup_close_ int fd = -1;
        int one = 1, err = 0;
        socklen_t len = sizeof err;
        short revents;
        int r;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = poll_deadline(fd, POLLOUT, deadline_usec, &revents);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return TAKE_FD(fd);
}

int link_open_tcp(const char *url, unsigned baud, Link **ret) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
        struct addrinfo *res = NULL;
        uint64_t deadline = now_usec() + CONNECT_TIMEOUT_USEC;
        LinkTcp *t;
        int r, fd = -ECONNREFUSED;

        if (baud == 0)
                return -EINVAL;
        r = link_tcp_parse_url(url, &host, &port);
        if (r < 0)
                return r;
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0)
                return r == EAI_MEMORY ? -ENOMEM : r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                fd = connect_deadline(ai, deadline);
                if (fd >= 0)
                        break;
        }
        freeaddrinfo(res);
        if (fd < 0)
                return fd;

        t = calloc(1, sizeof(LinkTcp));
        if (!t) {
                close(fd);
                return -ENOMEM;
        }
        t->fd = fd;
        t->link.ops = &tcp_ops;
        t->link.baud = baud;
        t->link.name = strdup(url);
        if (!t->link.name) {
                tcp_free(&t->link);
                return -ENOMEM;
        }
        *ret = &t->link;
        return 0;
}
