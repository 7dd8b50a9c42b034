/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A byte transport to one bootloader: a local UART (libserialport), a raw TCP serial
 * server (tcp://), an RFC 2217 serial server (rfc2217://), a plain file descriptor
 * (socketpair/pty, used by tests). A port is
 * opened from its name with link_open_url(); the transport's capabilities say what the
 * host controls, so callers ask for a capability rather than for a scheme.
 * Every call returns 0 (or a byte count) on success and a negative errno on failure:
 *   -ETIMEDOUT  nothing arrived before the deadline
 *   -ENODEV     the port went away (adapter unplugged, pty hung up, peer closed)
 * The line is always 8 data bits, even parity, 1 stop bit (AN3155). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Link Link;

/* What a link's trace hook sees: every byte in and out, and every change of the line,
 * as the callers asked for it (link.c calls the hook, so every backend is traced alike). */
typedef enum LinkEvent {
        LINK_EVENT_TX,          /* buf, n: bytes written */
        LINK_EVENT_RX,          /* buf, n: bytes read */
        LINK_EVENT_TIMEOUT,     /* a read's deadline passed with nothing */
        LINK_EVENT_GONE,        /* a read or a write found the port gone */
        LINK_EVENT_BAUD,        /* a: the new rate */
        LINK_EVENT_LINES,       /* a: DTR, b: RTS (-1: unchanged) */
        LINK_EVENT_BREAK,       /* a: on (1) or off (0) */
        LINK_EVENT_FLUSH,       /* input not yet read was discarded */
        _LINK_EVENT_MAX,
} LinkEvent;

typedef void (*link_trace_t)(void *userdata, LinkEvent ev, const uint8_t *buf, size_t n, int a, int b);

typedef struct LinkOps {
        /* Reads 1..n bytes; waits until deadline_usec (CLOCK_MONOTONIC) for the first. */
        int (*read)(Link *l, void *buf, size_t n, uint64_t deadline_usec);
        /* Writes all n bytes or fails. */
        int (*write)(Link *l, const void *buf, size_t n);
        /* Waits until written bytes have left the host. */
        int (*drain)(Link *l);
        /* Discards bytes received and not yet read. */
        int (*flush_input)(Link *l);
        /* Sets DTR and RTS; a negative value leaves that line unchanged. */
        int (*set_lines)(Link *l, int dtr, int rts);
        /* Sets the baud rate, 8E1, no flow control. */
        int (*set_baud)(Link *l, unsigned baud);
        void (*free)(Link *l);
        /* Holds TX in break (on) or releases it. Optional: NULL = nothing to do. */
        int (*set_break)(Link *l, bool on);
} LinkOps;

struct Link {
        const LinkOps *ops;
        unsigned baud;
        char *name;     /* for messages: "/dev/ttyUSB0", "fd:5" */
        unsigned caps;  /* LINK_CAP_* of its transport */
        /* A local UART's latency settings as opened (for Diagnose): the driver took
         * ASYNC_LOW_LATENCY (or had it), and the FTDI latency_timer in ms now (0: the
         * adapter has none). */
        bool low_latency;
        unsigned latency_timer_ms;
        link_trace_t trace;     /* link_set_trace(); NULL: none */
        void *trace_userdata;
};

/* What carries a port's bytes, from the name it is opened by. */
typedef enum LinkTransport {
        LINK_TRANSPORT_SERIAL,  /* a local UART: a device node, "/dev/ttyUSB0" */
        LINK_TRANSPORT_TCP,     /* a raw TCP serial server: "tcp://HOST:PORT" */
        LINK_TRANSPORT_RFC2217, /* a Telnet COM-PORT-OPTION server: "rfc2217://HOST:PORT" */
        _LINK_TRANSPORT_MAX,
} LinkTransport;

/* -LINK_ENOPARITY: the port did not take even parity (an RFC 2217 server that refused
 * or ignored SET-PARITY EVEN). No other link failure returns this errno, so the caller
 * can say "parity" (the AN3155 bootloader ignores bytes without it). */
#define LINK_ENOPARITY EMEDIUMTYPE

/* -LINK_EPARITY: a byte arrived with a parity or framing error (or a break): it was
 * dropped, never passed on as data, and so was the rest of that read. The reply it was
 * part of is garbage: the caller retries the exchange. */
#define LINK_EPARITY EBADMSG

enum {
        /* The host sets the rate, the parity and the modem lines (a raw TCP server owns
         * them: there another rate or a DTR/RTS step changes nothing). */
        LINK_CAP_LINE_SETTINGS = 1 << 0,
        /* The port is a node in /dev that leaves with its adapter (a server that went
         * away may come back). */
        LINK_CAP_DEVICE_NODE   = 1 << 1,
};

/* The transport a port name's scheme names: "tcp://..." a TCP server, "rfc2217://..." an
 * RFC 2217 server, anything else a device node. The name is not checked here:
 * link_url_check() does. */
LinkTransport link_transport_from_url(const char *url);
/* "serial", "tcp", "rfc2217" (the Port object's Transport property). */
const char *link_transport_to_string(LinkTransport t);
/* "tcp://", "rfc2217://"; NULL for a device node. */
const char *link_transport_scheme(LinkTransport t);
unsigned link_transport_caps(LinkTransport t);
/* 0 if url is a port name link_open_url() can open (an absolute device path, a
 * well-formed SCHEME://HOST:PORT), else -EINVAL; -ENOMEM. */
int link_url_check(const char *url);
/* Opens the port named url at baud, with the backend its transport names. */
int link_open_url(const char *url, unsigned baud, Link **ret);

/* Opens a local serial port with libserialport at baud, 8E1, DTR/RTS left as the
 * driver set them. -ENOENT: no such port; -EACCES: no permission; -EBUSY: in use. */
int link_open_serial(const char *device, unsigned baud, Link **ret);

/* Wraps a connected file descriptor (a socketpair end, a pty master). Takes
 * ownership of fd. set_baud only records the rate; set_lines and set_break succeed and
 * do nothing. */
int link_open_fd(int fd, const char *name, Link **ret);

/* Connects to a raw TCP serial server (ser2net "raw", serial device servers):
 * "tcp://HOST:PORT" (HOST may be [v6addr]). The server owns the line settings, so
 * set_baud only records the rate and set_lines/set_break succeed and do nothing. The peer
 * closing the connection reads as -ENODEV. -EINVAL: not a tcp:// URL. (link-tcp.c) */
int link_open_tcp(const char *url, unsigned baud, Link **ret);
/* Splits "SCHEME://HOST:PORT" (a network transport's scheme) into malloc'd host and
 * port strings; -EINVAL if malformed. */
int link_tcp_parse_url(const char *url, char **ret_host, char **ret_port);
/* Connects to the HOST:PORT of a network URL (any network scheme) within a few
 * seconds: the connected stream as an fd link named url, its baud and caps unset. */
int link_tcp_connect(const char *url, Link **ret);
/* Whether the HOST of a network URL resolves: 0, or -EHOSTUNREACH with the resolver's
 * reason in *ret_reason (static), -ENOMEM, -EINVAL (malformed). */
int link_tcp_resolve(const char *url, const char **ret_reason);

Link *link_free(Link *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Link *, link_free);

/* Every byte and line change from now on goes to cb (NULL: none), on the caller's thread. */
void link_set_trace(Link *l, link_trace_t cb, void *userdata);

int link_read(Link *l, void *buf, size_t n, uint64_t deadline_usec);
/* Reads exactly n bytes before deadline_usec (returns 0), or fails with -ETIMEDOUT/-ENODEV;
 * bytes read before a failure are lost. Works over any backend's ops. */
int link_read_exact(Link *l, void *buf, size_t n, uint64_t deadline_usec);
int link_write(Link *l, const void *buf, size_t n);
int link_drain(Link *l);
int link_flush_input(Link *l);
int link_set_lines(Link *l, int dtr, int rts);
int link_set_baud(Link *l, unsigned baud);
/* Starts (on) or ends a break on TX. A backend without breaks (fd, tcp) succeeds and
 * does nothing: a break is only ever a hint to the board's reset circuit. */
int link_set_break(Link *l, bool on);

/* For the backends: waits for events on fd until deadline_usec (CLOCK_MONOTONIC, usec).
 * Returns the revents, 0 on timeout, or a negative errno; a signal only shortens a wait,
 * which then goes on with the time that is left. */
int link_fd_wait(int fd, short events, uint64_t deadline_usec);

/* Time the wire needs for n bytes at the link's baud (11 bits a byte), in usec. */
uint64_t link_wire_usec(const Link *l, size_t n);
