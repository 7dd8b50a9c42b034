/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A raw TCP serial server (ser2net "raw" mode, serial device servers): the bytes
 * of the TCP stream are the bytes of the UART. Line settings belong to the server.
 * This module only connects; the connected socket is served by link-fd.c. */

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

int link_tcp_parse_url(const char *url, char **ret_host, char **ret_port) {
        const char *h, *colon, *end, *scheme;
        char *host, *port;

        scheme = url ? link_transport_scheme(link_transport_from_url(url)) : NULL;
        if (!scheme)
                return -EINVAL;
        h = url + strlen(scheme);
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
        int r;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = link_fd_wait(fd, POLLOUT, deadline_usec);
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

int link_tcp_connect(const char *url, Link **ret) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
        struct addrinfo *res = NULL;
        uint64_t deadline = now_usec() + CONNECT_TIMEOUT_USEC;
        int r, fd = -ECONNREFUSED;

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
        return link_open_fd(fd, url, ret);
}

int link_tcp_resolve(const char *url, const char **ret_reason) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        int r;

        *ret_reason = NULL;
        r = link_tcp_parse_url(url, &host, &port);
        if (r < 0)
                return r;
        r = getaddrinfo(host, port, &hints, &res);
        if (r == EAI_MEMORY)
                return -ENOMEM;
        if (r != 0) {
                *ret_reason = gai_strerror(r);
                return -EHOSTUNREACH;
        }
        freeaddrinfo(res);
        return 0;
}

int link_open_tcp(const char *url, unsigned baud, Link **ret) {
        Link *l;
        int r;

        if (baud == 0 || link_transport_from_url(url) != LINK_TRANSPORT_TCP)
                return -EINVAL;

        /* Once connected, the stream is the UART: the fd backend does the rest (reads
         * with deadlines, hang-up as -ENODEV, no SIGPIPE). The server owns the line
         * settings, so the baud is only recorded (DTR/RTS and breaks do nothing: raw
         * mode has no way to ask for them). */
        r = link_tcp_connect(url, &l);
        if (r < 0)
                return r;
        l->baud = baud;
        l->caps = link_transport_caps(LINK_TRANSPORT_TCP);
        *ret = l;
        return 0;
}
