/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backend-independent half of a link: argument checks, dispatch to the ops,
 * and the helpers every backend shares (exact reads, wire time). */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "link-rfc2217.h"
#include "link.h"
#include "string-util.h"

/* The one list of port name schemes: AddPort, the client and profiles go through
 * link_transport_from_url() and link_url_check(). */
static const struct {
        const char *name;
        const char *scheme;     /* NULL: a device node */
        unsigned caps;
} transports[_LINK_TRANSPORT_MAX] = {
        [LINK_TRANSPORT_SERIAL]  = { "serial",  NULL,         LINK_CAP_LINE_SETTINGS | LINK_CAP_DEVICE_NODE },
        [LINK_TRANSPORT_TCP]     = { "tcp",     "tcp://",     0 },
        [LINK_TRANSPORT_RFC2217] = { "rfc2217", "rfc2217://", LINK_CAP_LINE_SETTINGS },
};

LinkTransport link_transport_from_url(const char *url) {
        for (LinkTransport t = 0; t < _LINK_TRANSPORT_MAX; t++)
                if (transports[t].scheme && url && startswith(url, transports[t].scheme))
                        return t;
        return LINK_TRANSPORT_SERIAL;
}

const char *link_transport_to_string(LinkTransport t) {
        return t >= 0 && t < _LINK_TRANSPORT_MAX ? transports[t].name : "unknown";
}

const char *link_transport_scheme(LinkTransport t) {
        return t >= 0 && t < _LINK_TRANSPORT_MAX ? transports[t].scheme : NULL;
}

unsigned link_transport_caps(LinkTransport t) {
        return t >= 0 && t < _LINK_TRANSPORT_MAX ? transports[t].caps : 0;
}

int link_url_check(const char *url) {
        _cleanup_free_ char *host = NULL, *port = NULL;

        switch (link_transport_from_url(url)) {
        case LINK_TRANSPORT_TCP:
        case LINK_TRANSPORT_RFC2217:
                return link_tcp_parse_url(url, &host, &port);
        default:
                return url[0] == '/' ? 0 : -EINVAL;
        }
}

int link_open_url(const char *url, unsigned baud, Link **ret) {
        switch (link_transport_from_url(url)) {
        case LINK_TRANSPORT_TCP:
                return link_open_tcp(url, baud, ret);
        case LINK_TRANSPORT_RFC2217:
                return link_open_rfc2217(url, baud, ret);
        default:
                return link_open_serial(url, baud, ret);
        }
}

Link *link_free(Link *l) {
        if (!l)
                return NULL;
        /* The backend owns the allocation (and the name). */
        if (l->ops && l->ops->free)
                l->ops->free(l);
        return NULL;
}

void link_set_trace(Link *l, link_trace_t cb, void *userdata) {
        if (!l)
                return;
        l->trace = cb;
        l->trace_userdata = userdata;
}

static void trace(Link *l, LinkEvent ev, const void *buf, size_t n, int a, int b) {
        if (l->trace)
                l->trace(l->trace_userdata, ev, buf, n, a, b);
}

/* A failed read or write: the trace says why when it is the line's doing. */
static void trace_failure(Link *l, int r) {
        if (r == -ETIMEDOUT)
                trace(l, LINK_EVENT_TIMEOUT, NULL, 0, 0, 0);
        else if (r == -ENODEV)
                trace(l, LINK_EVENT_GONE, NULL, 0, 0, 0);
}

int link_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        int r;

        if (!l || !l->ops || (!buf && n > 0))
                return -EINVAL;
        if (n == 0)
                return 0;
        if (!l->ops->read)
                return -EOPNOTSUPP;
        r = l->ops->read(l, buf, n, deadline_usec);
        if (r > 0)
                trace(l, LINK_EVENT_RX, buf, (size_t) r, 0, 0);
        else if (r < 0)
                trace_failure(l, r);
        return r;
}

int link_read_exact(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        uint8_t *p = buf;
        size_t got = 0;

        if (!l || !l->ops || (!buf && n > 0))
                return -EINVAL;

        while (got < n) {
                int r;

                r = link_read(l, p + got, n - got, deadline_usec);
                if (r < 0)
                        return r;
                /* A backend that reports "nothing" without an error would make us spin. */
                if (r == 0) {
                        if (now_usec() >= deadline_usec)
                                return -ETIMEDOUT;
                        continue;
                }
                if ((size_t) r > n - got)
                        return -EIO;
                got += (size_t) r;
        }
        return 0;
}

int link_write(Link *l, const void *buf, size_t n) {
        int r;

        if (!l || !l->ops || (!buf && n > 0))
                return -EINVAL;
        if (n == 0)
                return 0;
        if (!l->ops->write)
                return -EOPNOTSUPP;
        /* traced before it goes out: a reply can only follow it */
        trace(l, LINK_EVENT_TX, buf, n, 0, 0);
        r = l->ops->write(l, buf, n);
        if (r < 0)
                trace_failure(l, r);
        return r;
}

int link_drain(Link *l) {
        if (!l || !l->ops)
                return -EINVAL;
        if (!l->ops->drain)
                return 0;
        return l->ops->drain(l);
}

int link_flush_input(Link *l) {
        if (!l || !l->ops)
                return -EINVAL;
        if (!l->ops->flush_input)
                return -EOPNOTSUPP;
        trace(l, LINK_EVENT_FLUSH, NULL, 0, 0, 0);
        return l->ops->flush_input(l);
}

int link_set_lines(Link *l, int dtr, int rts) {
        if (!l || !l->ops)
                return -EINVAL;
        if (dtr < 0 && rts < 0)
                return 0;
        if (!l->ops->set_lines)
                return -EOPNOTSUPP;
        trace(l, LINK_EVENT_LINES, NULL, 0, dtr, rts);
        return l->ops->set_lines(l, dtr, rts);
}

int link_set_baud(Link *l, unsigned baud) {
        int r;

        if (!l || !l->ops || baud == 0)
                return -EINVAL;
        if (!l->ops->set_baud)
                return -EOPNOTSUPP;
        r = l->ops->set_baud(l, baud);
        if (r < 0)
                return r;
        l->baud = baud;
        trace(l, LINK_EVENT_BAUD, NULL, 0, (int) baud, 0);
        return 0;
}

int link_set_break(Link *l, bool on) {
        if (!l || !l->ops)
                return -EINVAL;
        if (!l->ops->set_break)
                return 0;
        trace(l, LINK_EVENT_BREAK, NULL, 0, on, 0);
        return l->ops->set_break(l, on);
}

uint64_t link_wire_usec(const Link *l, size_t n) {
        /* start + 8 data + parity + stop = 11 bits a byte; unknown rate = instant. */
        if (!l || l->baud == 0 || n == 0)
                return 0;
        return ((uint64_t) n * 11 * USEC_PER_SEC + l->baud - 1) / l->baud;
}

int link_fd_wait(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                uint64_t now = now_usec(), left = deadline_usec > now ? deadline_usec - now : 0;
                struct timespec ts = {
                        .tv_sec = (time_t) (left / USEC_PER_SEC),
                        .tv_nsec = (long) ((left % USEC_PER_SEC) * NSEC_PER_USEC),
                };
                int r;

                r = ppoll(&p, 1, &ts, NULL);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0) {
                        if (now_usec() < deadline_usec)
                                continue;
                        return 0;
                }
                return p.revents;
        }
}
