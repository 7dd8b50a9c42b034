/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An RFC 2217 serial server. libtelnet does the Telnet part (option negotiation by the
 * Q method of RFC 1143, IAC escaping, command and subnegotiation parsing); this module
 * speaks the COM-PORT-OPTION (RFC 2217) through it. libtelnet never touches the socket:
 * what it wants sent collects in tx and goes out with one write; what it decodes as data
 * collects in rx for the reader. Every wait is a read of the connected stream (link-fd)
 * against the caller's deadline, on the caller's thread. */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
/* libtelnet.h uses size_t and va_list without including their headers */
#include <libtelnet.h>

#include "link-rfc2217.h"
#include "link.h"

/* RFC 2217: the option and its client commands; a server answers command N as N + 100. */
#define COM_PORT_OPTION 44
enum {
        CPO_SIGNATURE           = 0,
        CPO_SET_BAUDRATE        = 1,
        CPO_SET_DATASIZE        = 2,
        CPO_SET_PARITY          = 3,
        CPO_SET_STOPSIZE        = 4,
        CPO_SET_CONTROL         = 5,
        CPO_NOTIFY_LINESTATE    = 6,
        CPO_NOTIFY_MODEMSTATE   = 7,
        CPO_FLOWCONTROL_SUSPEND = 8,
        CPO_FLOWCONTROL_RESUME  = 9,
        CPO_SET_LINESTATE_MASK  = 10,
        CPO_SET_MODEMSTATE_MASK = 11,
        CPO_PURGE_DATA          = 12,
        _CPO_MAX,
};
#define CPO_SERVER_OFFSET 100

#define CPO_PARITY_EVEN          3
#define CPO_STOPSIZE_1           1
#define CPO_CONTROL_NO_FLOW      1
#define CPO_CONTROL_BREAK_ON     5
#define CPO_CONTROL_BREAK_OFF    6
#define CPO_CONTROL_DTR_ON       8
#define CPO_CONTROL_DTR_OFF      9
#define CPO_CONTROL_RTS_ON       11
#define CPO_CONTROL_RTS_OFF      12
#define CPO_PURGE_RX             1      /* the server's buffer of bytes from the UART */

/* How long a server may take to answer a negotiation or a command. A server that lets
 * one command go unanswered is not waited for again (it ignores them), except for the
 * framing at open, which must be confirmed. */
#define REPLY_TIMEOUT_USEC (2 * USEC_PER_SEC)
/* Decoded bytes waiting for the reader: a bootloader never sends this much unasked. */
#define RX_MAX (1024u * 1024u)

typedef struct Buf {
        uint8_t *data;
        size_t len, cap;
} Buf;

typedef struct LinkRfc2217 {
        Link link;
        Link *sock;             /* the connected stream */
        telnet_t *telnet;
        Buf rx, tx;
        size_t rx_pos;          /* bytes of rx already read */
        int error;              /* the first failure inside the event handler */
        bool comport;           /* the server said DO COM-PORT-OPTION */
        bool quiet;             /* the server left a command unanswered */
        unsigned pending[_CPO_MAX];     /* commands sent and not answered yet */
        uint32_t reply[_CPO_MAX];       /* the value of the last answer */
} LinkRfc2217;

static LinkRfc2217 *to_rfc(Link *l) {
        return (LinkRfc2217 *) l;
}

static int buf_append(Buf *b, const void *p, size_t n, size_t max) {
        if (n > max || b->len > max - n)
                return -ENOBUFS;
        if (b->len + n > b->cap) {
                size_t cap = MAX(b->cap * 2, MAX(b->len + n, (size_t) 256));
                uint8_t *d = realloc(b->data, cap);

                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

/* A server's answer to a command: the value it set (1 byte, 4 for the baud rate). */
static void on_com_port(LinkRfc2217 *r, const uint8_t *p, size_t n) {
        unsigned cmd;
        uint32_t v = 0;

        if (n < 1 || p[0] < CPO_SERVER_OFFSET || p[0] >= CPO_SERVER_OFFSET + _CPO_MAX)
                return;         /* a client's command echoed, or something newer */
        cmd = p[0] - CPO_SERVER_OFFSET;
        /* NOTIFY-LINESTATE/MODEMSTATE arrive whenever the server likes: not answers. */
        if (cmd == CPO_NOTIFY_LINESTATE || cmd == CPO_NOTIFY_MODEMSTATE)
                return;
        for (size_t i = 1; i < n && i <= 4; i++)
                v = v << 8 | p[i];
        r->reply[cmd] = v;
        if (r->pending[cmd] > 0)
                r->pending[cmd]--;
        /* What arrived before the server purged is stale; what follows is new. */
        if (cmd == CPO_PURGE_DATA)
                r->rx.len = r->rx_pos = 0;
}

static void on_telnet(telnet_t *t, telnet_event_t *ev, void *userdata) {
        LinkRfc2217 *r = userdata;
        int k = 0;

        switch (ev->type) {
        case TELNET_EV_DATA:
                k = buf_append(&r->rx, ev->data.buffer, ev->data.size, RX_MAX);
                break;
        case TELNET_EV_SEND:
                k = buf_append(&r->tx, ev->data.buffer, ev->data.size, SIZE_MAX / 2);
                break;
        case TELNET_EV_DO:
                /* (libtelnet reports no event for a DONT answering our WILL: a refusal
                 * looks like silence, and the framing check tells them apart) */
                if (ev->neg.telopt == COM_PORT_OPTION)
                        r->comport = true;
                break;
        case TELNET_EV_SUBNEGOTIATION:
                if (ev->sub.telopt == COM_PORT_OPTION)
                        on_com_port(r, (const uint8_t *) ev->sub.buffer, ev->sub.size);
                break;
        case TELNET_EV_ERROR:
                /* not -EPROTO: that is the bootloader's NACK to the layers above */
                k = ev->error.errcode == TELNET_ENOMEM ? -ENOMEM : -EBADMSG;
                break;
        default:
                /* WILL/WONT of the server's options, IAC commands (NOP, BREAK...),
                 * warnings: nothing the UART's bytes depend on. */
                break;
        }
        if (k < 0 && r->error == 0)
                r->error = k;
        (void) t;
}

/* Sends what libtelnet queued (one write: a DTR and an RTS command leave together). */
static int rfc_flush_tx(LinkRfc2217 *r) {
        int k;

        if (r->error < 0)
                return r->error;
        if (r->tx.len == 0)
                return 0;
        k = link_write(r->sock, r->tx.data, r->tx.len);
        r->tx.len = 0;
        return k;
}

/* Reads what the stream has (waiting until deadline_usec for the first byte) and feeds
 * it to libtelnet: data to rx, answers to reply[], negotiations answered. */
static int rfc_pump(LinkRfc2217 *r, uint64_t deadline_usec) {
        char buf[4096];
        int n;

        n = link_read(r->sock, buf, sizeof buf, deadline_usec);
        if (n < 0)
                return n;
        telnet_recv(r->telnet, buf, (size_t) n);
        return rfc_flush_tx(r);
}

/* Queues a COM-PORT-OPTION command (libtelnet escapes 0xFF in the value). */
static void rfc_command(LinkRfc2217 *r, uint8_t cmd, uint32_t value, size_t n) {
        uint8_t b[5] = { cmd };

        for (size_t i = 0; i < n; i++)
                b[1 + i] = (uint8_t) (value >> (8 * (n - 1 - i)));
        r->pending[cmd]++;
        telnet_subnegotiation(r->telnet, COM_PORT_OPTION, (const char *) b, 1 + n);
}

/* Waits for the answers to the commands in cmds: 0 when all came, -ETIMEDOUT when one
 * did not come in time (then the server counts as one that ignores commands, and
 * answers that come later are not waited for). */
static int rfc_wait(LinkRfc2217 *r, const uint8_t *cmds, size_t n, uint64_t deadline_usec) {
        for (;;) {
                bool all = true;
                int k;

                for (size_t i = 0; i < n; i++)
                        all = all && r->pending[cmds[i]] == 0;
                if (all)
                        return 0;
                k = rfc_pump(r, deadline_usec);
                if (k == -ETIMEDOUT)
                        r->quiet = true;
                if (k < 0)
                        return k;
        }
}

/* Sends the queued commands and waits for their answers, unless the server is known
 * to leave them unanswered. A missing answer is tolerated (servers may ignore options). */
static int rfc_send_and_wait(LinkRfc2217 *r, const uint8_t *cmds, size_t n) {
        int k = rfc_flush_tx(r);

        if (k < 0 || r->quiet)
                return k;
        k = rfc_wait(r, cmds, n, now_usec() + REPLY_TIMEOUT_USEC);
        return k == -ETIMEDOUT ? 0 : k;
}

static int rfc_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        LinkRfc2217 *r = to_rfc(l);
        size_t avail;

        if (n == 0)
                return 0;
        n = MIN(n, (size_t) INT32_MAX);
        while (r->rx.len == r->rx_pos) {
                int k = rfc_pump(r, deadline_usec);
                if (k < 0)
                        return k;
        }
        avail = MIN(n, r->rx.len - r->rx_pos);
        memcpy(buf, r->rx.data + r->rx_pos, avail);
        r->rx_pos += avail;
        if (r->rx_pos == r->rx.len)
                r->rx.len = r->rx_pos = 0;
        return (int) avail;
}

static int rfc_write(Link *l, const void *buf, size_t n) {
        LinkRfc2217 *r = to_rfc(l);

        telnet_send(r->telnet, buf, n);         /* 0xFF goes out as IAC IAC */
        return rfc_flush_tx(r);
}

static int rfc_flush_input(Link *l) {
        LinkRfc2217 *r = to_rfc(l);
        int k;

        /* The server's buffer first; the answer marks where new bytes begin. A server that
         * does not answer leaves only what is here to discard. */
        rfc_command(r, CPO_PURGE_DATA, CPO_PURGE_RX, 1);
        k = rfc_send_and_wait(r, (const uint8_t[]) { CPO_PURGE_DATA }, 1);
        if (k < 0)
                return k;
        for (;;) {
                k = rfc_pump(r, 0);
                if (k == -ETIMEDOUT)
                        break;
                if (k < 0)
                        return k;
        }
        r->rx.len = r->rx_pos = 0;
        return 0;
}

/* DTR and RTS are two commands in RFC 2217, sent in one TCP segment; the server applies
 * them one after the other (no protocol sets both at once). */
static int rfc_set_lines(Link *l, int dtr, int rts) {
        LinkRfc2217 *r = to_rfc(l);

        if (dtr >= 0)
                rfc_command(r, CPO_SET_CONTROL, dtr ? CPO_CONTROL_DTR_ON : CPO_CONTROL_DTR_OFF, 1);
        if (rts >= 0)
                rfc_command(r, CPO_SET_CONTROL, rts ? CPO_CONTROL_RTS_ON : CPO_CONTROL_RTS_OFF, 1);
        return rfc_send_and_wait(r, (const uint8_t[]) { CPO_SET_CONTROL }, 1);
}

static int rfc_set_break(Link *l, bool on) {
        LinkRfc2217 *r = to_rfc(l);

        rfc_command(r, CPO_SET_CONTROL, on ? CPO_CONTROL_BREAK_ON : CPO_CONTROL_BREAK_OFF, 1);
        return rfc_send_and_wait(r, (const uint8_t[]) { CPO_SET_CONTROL }, 1);
}

static int rfc_set_baud(Link *l, unsigned baud) {
        LinkRfc2217 *r = to_rfc(l);
        int k;

        rfc_command(r, CPO_SET_BAUDRATE, baud, 4);
        k = rfc_send_and_wait(r, (const uint8_t[]) { CPO_SET_BAUDRATE }, 1);
        if (k < 0)
                return k;
        /* A server that set another rate refuses this one (as a driver refuses it). */
        if (r->pending[CPO_SET_BAUDRATE] == 0 && r->reply[CPO_SET_BAUDRATE] != baud)
                return -EINVAL;
        l->baud = baud;
        r->sock->baud = baud;   /* the stream's write deadlines follow the wire */
        return 0;
}

static void rfc_free(Link *l) {
        LinkRfc2217 *r = to_rfc(l);

        if (!r)
                return;
        if (r->telnet)
                telnet_free(r->telnet);
        link_free(r->sock);
        free(r->rx.data);
        free(r->tx.data);
        free(r->link.name);
        free(r);
}

static const LinkOps rfc2217_ops = {
        .read = rfc_read,
        .write = rfc_write,
        /* no .drain: the server owns the UART's output queue */
        .flush_input = rfc_flush_input,
        .set_lines = rfc_set_lines,
        .set_baud = rfc_set_baud,
        .free = rfc_free,
        .set_break = rfc_set_break,
};

/* Binary both ways (the UART's bytes are not text), suppress-go-ahead (a full-duplex
 * stream), and the COM-PORT-OPTION offered by us (RFC 2217: the client WILLs it). */
static const telnet_telopt_t telopts[] = {
        { TELNET_TELOPT_BINARY, TELNET_WILL, TELNET_DO },
        { TELNET_TELOPT_SGA,    TELNET_WILL, TELNET_DO },
        { COM_PORT_OPTION,      TELNET_WILL, TELNET_DONT },
        { -1, 0, 0 },
};

/* Negotiates the options and sets 8E1 at baud: the framing must be confirmed. */
static int rfc_setup(LinkRfc2217 *r, unsigned baud) {
        static const uint8_t framing[] = { CPO_SET_BAUDRATE, CPO_SET_DATASIZE, CPO_SET_PARITY, CPO_SET_STOPSIZE };
        uint64_t deadline = now_usec() + REPLY_TIMEOUT_USEC;
        int k;

        telnet_negotiate(r->telnet, TELNET_WILL, TELNET_TELOPT_BINARY);
        telnet_negotiate(r->telnet, TELNET_DO, TELNET_TELOPT_BINARY);
        telnet_negotiate(r->telnet, TELNET_WILL, TELNET_TELOPT_SGA);
        telnet_negotiate(r->telnet, TELNET_DO, TELNET_TELOPT_SGA);
        telnet_negotiate(r->telnet, TELNET_WILL, COM_PORT_OPTION);
        k = rfc_flush_tx(r);
        if (k < 0)
                return k;

        /* A server may drop commands sent before it agreed to the option. */
        while (!r->comport) {
                k = rfc_pump(r, deadline);
                if (k == -ETIMEDOUT)
                        break;          /* refused or ignored: the framing check decides */
                if (k < 0)
                        return k;
        }

        rfc_command(r, CPO_SET_BAUDRATE, baud, 4);
        rfc_command(r, CPO_SET_DATASIZE, 8, 1);
        rfc_command(r, CPO_SET_PARITY, CPO_PARITY_EVEN, 1);
        rfc_command(r, CPO_SET_STOPSIZE, CPO_STOPSIZE_1, 1);
        /* No flow control; no line or modem state notifications (tolerated anyway). */
        rfc_command(r, CPO_SET_CONTROL, CPO_CONTROL_NO_FLOW, 1);
        rfc_command(r, CPO_SET_LINESTATE_MASK, 0, 1);
        rfc_command(r, CPO_SET_MODEMSTATE_MASK, 0, 1);
        k = rfc_flush_tx(r);
        if (k < 0)
                return k;
        k = rfc_wait(r, framing, ELEMENTSOF(framing), now_usec() + REPLY_TIMEOUT_USEC);
        if (k < 0 && k != -ETIMEDOUT)
                return k;

        /* A server that neither agreed to the option nor answered: not RFC 2217. */
        if (!r->comport && r->pending[CPO_SET_PARITY] > 0)
                return -EPROTONOSUPPORT;
        /* Without even parity the bootloader ignores every byte (AN3155: 8E1): a server
         * that did not confirm it is refused here, not after a sync that never comes. */
        if (r->pending[CPO_SET_DATASIZE] > 0 || r->reply[CPO_SET_DATASIZE] != 8 ||
            r->pending[CPO_SET_PARITY] > 0 || r->reply[CPO_SET_PARITY] != CPO_PARITY_EVEN ||
            r->pending[CPO_SET_STOPSIZE] > 0 || r->reply[CPO_SET_STOPSIZE] != CPO_STOPSIZE_1)
                return -LINK_ENOPARITY;
        if (r->pending[CPO_SET_BAUDRATE] > 0 || r->reply[CPO_SET_BAUDRATE] != baud)
                return -EINVAL;
        r->link.baud = r->sock->baud = baud;
        return 0;
}

int link_open_rfc2217(const char *url, unsigned baud, Link **ret) {
        LinkRfc2217 *r;
        int k;

        if (!url || !ret || baud == 0 || link_transport_from_url(url) != LINK_TRANSPORT_RFC2217)
                return -EINVAL;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->link.ops = &rfc2217_ops;
        r->link.caps = link_transport_caps(LINK_TRANSPORT_RFC2217);
        r->link.name = strdup(url);
        if (!r->link.name) {
                k = -ENOMEM;
                goto fail;
        }
        r->telnet = telnet_init(telopts, on_telnet, 0, r);
        if (!r->telnet) {
                k = -ENOMEM;
                goto fail;
        }
        k = link_tcp_connect(url, &r->sock);
        if (k < 0)
                goto fail;
        k = rfc_setup(r, baud);
        if (k < 0)
                goto fail;

        *ret = &r->link;
        return 0;

fail:
        rfc_free(&r->link);
        return k;
}
