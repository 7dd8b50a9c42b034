/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AN3155 host protocol against a scripted peer over a socketpair. The peer thread
 * follows a script (expect these exact bytes, send these, wait, hang up) and then
 * records anything more the host sends; the tests assert the bytes on the wire, the
 * parsed results and the return codes for every way a step can go wrong. */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "an3155.h"
#include "link.h"
#include "sim.h"
#include "test-util.h"

/* ---- the scripted peer ---- */

typedef enum StepKind {
        STEP_EXPECT,            /* read exactly these bytes (5 s at most) */
        STEP_SEND,
        STEP_DELAY,             /* a slow device: the reply comes later */
        STEP_CLOSE,             /* hang up */
        STEP_NOISE,             /* send bytes the host must drop, never take as replies */
} StepKind;

typedef struct Step {
        StepKind kind;
        const uint8_t *bytes;
        size_t n;
        uint64_t usec;
} Step;

#define MAX_STEPS 64
#define POOL_SIZE 8192
#define LOG_SIZE 8192

typedef struct Script {
        Step steps[MAX_STEPS];
        size_t n_steps;
        uint8_t pool[POOL_SIZE];
        size_t pool_used;
        /* Written into the host's receive queue before anything runs: stale input. */
        uint8_t prelude[16];
        size_t n_prelude;
} Script;

static void script_add(Script *s, StepKind kind, const uint8_t *bytes, size_t n, uint64_t usec) {
        Step *st;

        ASSERT_TRUE(s->n_steps < MAX_STEPS);
        ASSERT_TRUE(s->pool_used + n <= POOL_SIZE);
        st = &s->steps[s->n_steps++];
        *st = (Step) { .kind = kind, .n = n, .usec = usec, .bytes = s->pool + s->pool_used };
        if (n > 0)
                memcpy(s->pool + s->pool_used, bytes, n);
        s->pool_used += n;
}

#define BYTES(...) (const uint8_t[]) { __VA_ARGS__ }, sizeof((const uint8_t[]) { __VA_ARGS__ })
#define EXPECT(s, ...) script_add(s, STEP_EXPECT, BYTES(__VA_ARGS__), 0)
#define SEND(s, ...) script_add(s, STEP_SEND, BYTES(__VA_ARGS__), 0)
#define DELAY(s, u) script_add(s, STEP_DELAY, NULL, 0, u)
#define HANGUP(s) script_add(s, STEP_CLOSE, NULL, 0, 0)
#define NOISE(s, ...) script_add(s, STEP_NOISE, BYTES(__VA_ARGS__), 0)

typedef struct Peer {
        const Script *script;
        int fd;
        pthread_t thread;
        bool failed;
        char why[512];
        bool closed;
        uint8_t rx_log[LOG_SIZE];       /* everything the host sent */
        size_t n_rx;
        uint8_t tx_log[LOG_SIZE];       /* everything we sent */
        size_t n_tx;
        size_t extra;                   /* bytes after the script ended */
        uint8_t extra_bytes[16];
} Peer;

_printf_(2, 3)
static void peer_fail(Peer *p, const char *fmt, ...) {
        va_list ap;

        if (p->failed)
                return;
        p->failed = true;
        va_start(ap, fmt);
        vsnprintf(p->why, sizeof(p->why), fmt, ap);
        va_end(ap);
}

/* Reads up to n bytes within timeout_ms; 0 on EOF or timeout. */
static ssize_t peer_read(Peer *p, uint8_t *buf, size_t n, int timeout_ms) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        ssize_t k;

        if (poll(&pfd, 1, timeout_ms) <= 0)
                return 0;
        k = read(p->fd, buf, n);
        if (k <= 0)
                return 0;
        if (p->n_rx + (size_t) k <= LOG_SIZE) {
                memcpy(p->rx_log + p->n_rx, buf, (size_t) k);
                p->n_rx += (size_t) k;
        }
        return k;
}

static void hex(char *out, size_t size, const uint8_t *b, size_t n) {
        size_t k = 0;

        out[0] = 0;
        for (size_t i = 0; i < n && k + 4 < size; i++)
                k += (size_t) snprintf(out + k, size - k, "%02x ", b[i]);
}

static void *peer_main(void *arg) {
        Peer *p = arg;
        const Script *s = p->script;
        uint8_t buf[1024];

        for (size_t i = 0; i < s->n_steps && !p->failed; i++) {
                const Step *st = &s->steps[i];

                switch (st->kind) {
                case STEP_EXPECT: {
                        size_t got = 0;
                        char a[128], b[128];

                        ASSERT_TRUE(st->n <= sizeof(buf));
                        while (got < st->n) {
                                ssize_t k = peer_read(p, buf + got, st->n - got, 5000);
                                if (k <= 0)
                                        break;
                                got += (size_t) k;
                        }
                        if (got < st->n || memcmp(buf, st->bytes, st->n) != 0) {
                                hex(a, sizeof(a), st->bytes, MIN(st->n, (size_t) 24));
                                hex(b, sizeof(b), buf, MIN(got, (size_t) 24));
                                peer_fail(p, "step %zu: expected %zu bytes [%s], got %zu [%s]",
                                          i, st->n, a, got, b);
                        }
                        break;
                }
                case STEP_SEND:
                        /* The host may have given up and closed: EPIPE, not SIGPIPE. */
                        if (send(p->fd, st->bytes, st->n, MSG_NOSIGNAL) != (ssize_t) st->n)
                                peer_fail(p, "step %zu: write failed", i);
                        else if (p->n_tx + st->n <= LOG_SIZE) {
                                memcpy(p->tx_log + p->n_tx, st->bytes, st->n);
                                p->n_tx += st->n;
                        }
                        break;
                case STEP_NOISE:
                        /* not in tx_log: harness_end() checks the host traced none of it */
                        if (send(p->fd, st->bytes, st->n, MSG_NOSIGNAL) != (ssize_t) st->n)
                                peer_fail(p, "step %zu: write failed", i);
                        break;
                case STEP_DELAY:
                        sleep_usec(st->usec);
                        break;
                case STEP_CLOSE:
                        close(p->fd);
                        p->fd = -1;
                        p->closed = true;
                        return NULL;
                }
        }

        /* The script is done: anything more the host sends is a failure. Runs until
         * the host closes its end. */
        for (;;) {
                ssize_t k = peer_read(p, buf, sizeof(buf), 10000);
                if (k <= 0)
                        break;
                for (ssize_t j = 0; j < k; j++) {
                        if (p->extra < sizeof(p->extra_bytes))
                                p->extra_bytes[p->extra] = buf[j];
                        p->extra++;
                }
        }
        close(p->fd);
        p->fd = -1;
        return NULL;
}

/* ---- the host side ---- */

typedef struct Harness {
        Script *script;
        Peer peer;
        Link *link;
        An3155 *p;
        uint8_t trace_tx[LOG_SIZE], trace_rx[LOG_SIZE];
        size_t n_trace_tx, n_trace_rx;
        unsigned trace_calls;
} Harness;

static void on_trace(void *userdata, bool tx, const uint8_t *buf, size_t n) {
        Harness *h = userdata;

        h->trace_calls++;
        if (tx) {
                ASSERT_TRUE(h->n_trace_tx + n <= LOG_SIZE);
                memcpy(h->trace_tx + h->n_trace_tx, buf, n);
                h->n_trace_tx += n;
        } else {
                ASSERT_TRUE(h->n_trace_rx + n <= LOG_SIZE);
                memcpy(h->trace_rx + h->n_trace_rx, buf, n);
                h->n_trace_rx += n;
        }
}

/* Generous: for steps that get their answer (a failing test then hangs 5 s, not forever). */
static const An3155Timeouts slow = {
        .reply_usec = 5 * USEC_PER_SEC, .write_usec = 5 * USEC_PER_SEC,
        .page_erase_usec = 10 * USEC_PER_MSEC, .mass_erase_usec = 5 * USEC_PER_SEC,
        .option_usec = 5 * USEC_PER_SEC, .reset_usec = 10 * USEC_PER_MSEC,
};
/* Short: for steps that are meant to time out. */
static const An3155Timeouts fast = {
        .reply_usec = 80 * USEC_PER_MSEC, .write_usec = 80 * USEC_PER_MSEC,
        .page_erase_usec = 1 * USEC_PER_MSEC, .mass_erase_usec = 80 * USEC_PER_MSEC,
        .option_usec = 80 * USEC_PER_MSEC, .reset_usec = 1 * USEC_PER_MSEC,
};

static Harness *harness_start(Script *s, const An3155Timeouts *t) {
        Harness *h = calloc(1, sizeof(*h));
        int sv[2];

        ASSERT_TRUE(h);
        h->script = s;
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        if (s->n_prelude > 0)
                ASSERT_EQ(write(sv[1], s->prelude, s->n_prelude), (ssize_t) s->n_prelude);
        ASSERT_OK(link_open_fd(sv[0], "peer", &h->link));
        ASSERT_OK(an3155_new(h->link, &h->p));
        an3155_set_timeouts(h->p, t);
        an3155_set_trace(h->p, on_trace, h);

        h->peer.script = s;
        h->peer.fd = sv[1];
        ASSERT_EQ(pthread_create(&h->peer.thread, NULL, peer_main, &h->peer), 0);
        return h;
}

/* Hangs up, waits for the peer and checks it saw exactly the script: every expected
 * byte, nothing more; and that the trace hook saw every byte. */
static void harness_end(Harness *h) {
        Peer *p = &h->peer;

        an3155_free(h->p);
        link_free(h->link);
        ASSERT_EQ(pthread_join(p->thread, NULL), 0);

        if (p->failed)
                fprintf(stderr, "peer: %s\n", p->why);
        ASSERT_TRUE(!p->failed);
        if (p->extra > 0) {
                char b[128];
                hex(b, sizeof(b), p->extra_bytes, MIN(p->extra, sizeof(p->extra_bytes)));
                fprintf(stderr, "peer: %zu unexpected bytes after the script: %s\n", p->extra, b);
        }
        ASSERT_EQ(p->extra, 0);
        if (!p->closed) {
                /* The trace shows exactly what went on the wire. */
                ASSERT_EQ(h->n_trace_tx, p->n_rx);
                ASSERT_MEMEQ(h->trace_tx, p->rx_log, p->n_rx);
        }
        /* What the host traced as received came from the peer, in order: stale bytes
         * (a prelude, late replies) were dropped, never taken as replies. */
        ASSERT_TRUE(h->n_trace_rx <= p->n_tx);
        ASSERT_MEMEQ(h->trace_rx, p->tx_log, h->n_trace_rx);
        free(h);
}

static Script *script_new(void) {
        Script *s = calloc(1, sizeof(Script));
        ASSERT_TRUE(s);
        return s;
}

static void assert_status(An3155 *p, uint8_t cmd, const char *step, int reply) {
        const An3155Status *st = an3155_last_status(p);

        ASSERT_EQ(st->command, cmd);
        ASSERT_STREQ(st->step, step);
        if (reply != -2)
                ASSERT_EQ(st->reply, reply);
}

/* ---- table: every command's exchange, and the injected faults ---- */

typedef struct Exchange {
        const uint8_t *tx;
        size_t n_tx;
        const uint8_t *rx;
        size_t n_rx;
        const char *step;       /* the step whose ACK is rx[0] */
        const char *step_last;  /* set: rx ends with another ACK, of this step */
        bool setup;             /* not a fault target (a Get that sets the command list) */
} Exchange;

#define TX(...) .tx = (const uint8_t[]) { __VA_ARGS__ }, .n_tx = sizeof((const uint8_t[]) { __VA_ARGS__ })
#define RX(...) .rx = (const uint8_t[]) { __VA_ARGS__ }, .n_rx = sizeof((const uint8_t[]) { __VA_ARGS__ })

typedef struct Case {
        const char *name;
        uint8_t command;
        int (*run)(An3155 *p);
        Exchange ex[4];
        size_t n_ex;
} Case;

static const uint8_t get_v31[] = { 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92 };

static int run_get(An3155 *p) {
        uint8_t v = 0, cmds[32];
        size_t n = 0;
        int r;

        ASSERT_TRUE(an3155_supports(p, AN3155_CMD_ERASE));     /* before any Get: true */
        r = an3155_get(p, &v, cmds, &n);
        if (r < 0)
                return r;
        ASSERT_EQ(v, 0x31);
        ASSERT_EQ(n, sizeof(get_v31));
        ASSERT_MEMEQ(cmds, get_v31, n);
        ASSERT_TRUE(an3155_supports(p, AN3155_CMD_EXTENDED_ERASE));
        ASSERT_TRUE(an3155_supports(p, AN3155_CMD_READOUT_UNPROTECT));
        ASSERT_TRUE(!an3155_supports(p, AN3155_CMD_ERASE));
        ASSERT_TRUE(!an3155_supports(p, 0xA1));
        return 0;
}

static int run_get_version(An3155 *p) {
        uint8_t v = 0;
        int r = an3155_get_version(p, &v);
        if (r >= 0)
                ASSERT_EQ(v, 0x31);
        return r;
}

static int run_get_id(An3155 *p) {
        uint16_t pid = 0;
        int r = an3155_get_id(p, &pid);
        if (r >= 0)
                ASSERT_EQ(pid, 0x466);
        return r;
}

static int run_read(An3155 *p) {
        static const uint8_t expect[8] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17 };
        uint8_t buf[8] = {};
        int r = an3155_read_memory(p, 0x08000100, buf, sizeof(buf));
        if (r >= 0)
                ASSERT_MEMEQ(buf, expect, sizeof(expect));
        return r;
}

static int run_write(An3155 *p) {
        static const uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        return an3155_write_memory(p, 0x20000004, data, sizeof(data));
}

static int run_go(An3155 *p) {
        return an3155_go(p, 0x08000000);
}

static int run_mass(An3155 *p) {
        return an3155_erase_mass(p);
}

static int run_pages_ext(An3155 *p) {
        static const uint16_t pages[] = { 3, 0x10, 0x1FF };
        return an3155_erase_pages(p, pages, ELEMENTSOF(pages));
}

static int run_pages_legacy(An3155 *p) {
        static const uint16_t pages[] = { 1, 2, 0x80 };
        return an3155_erase_pages(p, pages, ELEMENTSOF(pages));
}

static int run_wp(An3155 *p) {
        static const uint8_t sectors[] = { 2, 5 };
        return an3155_write_protect(p, sectors, sizeof(sectors));
}

static int run_wup(An3155 *p) {
        return an3155_write_unprotect(p);
}

static int run_rp(An3155 *p) {
        return an3155_readout_protect(p);
}

static int run_rup(An3155 *p) {
        return an3155_readout_unprotect(p);
}

/* A V2.2-style list: legacy Erase 0x43, no Extended Erase. */
#define GET_LEGACY \
        { TX(0x00, 0xFF), RX(0x79, 0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79), \
          "command", "data", true }

/* The bytes and checksums are written out by hand (not computed by the code under test). */
static const Case cases[] = {
        { "get", 0x00, run_get, {
                { TX(0x00, 0xFF), RX(0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, 0x79),
                  "command", "data" } }, 1 },
        { "get version", 0x01, run_get_version, {
                { TX(0x01, 0xFE), RX(0x79, 0x31, 0x00, 0x00, 0x79), "command", "data" } }, 1 },
        { "get id", 0x02, run_get_id, {
                { TX(0x02, 0xFD), RX(0x79, 0x01, 0x04, 0x66, 0x79), "command", "data" } }, 1 },
        { "read memory", 0x11, run_read, {
                { TX(0x11, 0xEE), RX(0x79), "command" },
                { TX(0x08, 0x00, 0x01, 0x00, 0x09), RX(0x79), "address" },
                { TX(0x07, 0xF8), RX(0x79, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17), "length" } }, 3 },
        { "write memory", 0x31, run_write, {
                { TX(0x31, 0xCE), RX(0x79), "command" },
                { TX(0x20, 0x00, 0x00, 0x04, 0x24), RX(0x79), "address" },
                { TX(0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0x0F), RX(0x79), "data" } }, 3 },
        { "go", 0x21, run_go, {
                { TX(0x21, 0xDE), RX(0x79), "command" },
                { TX(0x08, 0x00, 0x00, 0x00, 0x08), RX(0x79), "address" } }, 2 },
        { "extended erase mass", 0x44, run_mass, {
                { TX(0x44, 0xBB), RX(0x79), "command" },
                { TX(0xFF, 0xFF, 0x00), RX(0x79), "data" } }, 2 },
        { "extended erase pages", 0x44, run_pages_ext, {
                { TX(0x44, 0xBB), RX(0x79), "command" },
                { TX(0x00, 0x02, 0x00, 0x03, 0x00, 0x10, 0x01, 0xFF, 0xEF), RX(0x79), "data" } }, 2 },
        { "legacy erase mass", 0x43, run_mass, {
                GET_LEGACY,
                { TX(0x43, 0xBC), RX(0x79), "command" },
                { TX(0xFF, 0x00), RX(0x79), "data" } }, 3 },
        { "legacy erase pages", 0x43, run_pages_legacy, {
                GET_LEGACY,
                { TX(0x43, 0xBC), RX(0x79), "command" },
                { TX(0x02, 0x01, 0x02, 0x80, 0x81), RX(0x79), "data" } }, 3 },
        { "write protect", 0x63, run_wp, {
                { TX(0x63, 0x9C), RX(0x79), "command" },
                { TX(0x01, 0x02, 0x05, 0x06), RX(0x79), "data" } }, 2 },
        { "write unprotect", 0x73, run_wup, {
                { TX(0x73, 0x8C), RX(0x79, 0x79), "command", "second ACK" } }, 1 },
        { "readout protect", 0x82, run_rp, {
                { TX(0x82, 0x7D), RX(0x79, 0x79), "command", "second ACK" } }, 1 },
        { "readout unprotect", 0x92, run_rup, {
                { TX(0x92, 0x6D), RX(0x79, 0x79), "command", "second ACK" } }, 1 },
};

typedef enum Fault {
        FAULT_NACK,
        FAULT_GARBAGE,
        FAULT_SILENCE,
        FAULT_HANGUP,
        _FAULT_MAX,
} Fault;

static const char *const fault_names[] = { "NACK", "garbage", "silence", "hang-up" };

/* The whole exchange up to exchange i, whose reply is cut at rx[pos] by the fault. */
static Script *case_script(const Case *c, size_t i, size_t pos, int fault) {
        Script *s = script_new();

        for (size_t j = 0; j < c->n_ex; j++) {
                const Exchange *e = &c->ex[j];

                script_add(s, STEP_EXPECT, e->tx, e->n_tx, 0);
                if (j < i || fault < 0) {
                        script_add(s, STEP_SEND, e->rx, e->n_rx, 0);
                        continue;
                }
                if (pos > 0)
                        script_add(s, STEP_SEND, e->rx, pos, 0);
                switch (fault) {
                case FAULT_NACK:
                        SEND(s, AN3155_NACK);
                        break;
                case FAULT_GARBAGE:
                        SEND(s, 0xA5);
                        break;
                case FAULT_SILENCE:
                        break;
                case FAULT_HANGUP:
                        HANGUP(s);
                        break;
                }
                /* An erase command pair without a clean reply: the host sends a page list
                 * the chip must refuse, then syncs (this peer stays silent: the first
                 * error stands). */
                if (IN_SET(c->command, AN3155_CMD_ERASE, AN3155_CMD_EXTENDED_ERASE) &&
                    e->tx[0] == c->command && IN_SET(fault, FAULT_GARBAGE, FAULT_SILENCE)) {
                        if (c->command == AN3155_CMD_ERASE)
                                EXPECT(s, 0x00, 0x00, 0x5A);
                        else
                                EXPECT(s, 0x00, 0x00, 0x00, 0x00, 0x5A);
                        EXPECT(s, 0x7F);
                        EXPECT(s, 0x7F);
                }
                break;
        }
        return s;
}

static void run_case(const Case *c, size_t i, size_t pos, const char *step, int fault) {
        _cleanup_free_ Script *s = case_script(c, i, pos, fault);
        Harness *h = harness_start(s, fault == FAULT_SILENCE ? &fast : &slow);
        An3155Status st;
        int r;

        /* A setup exchange is the Get that tells which commands the device has. */
        if (c->ex[0].setup)
                ASSERT_OK(an3155_get(h->p, NULL, NULL, NULL));
        r = c->run(h->p);
        st = *an3155_last_status(h->p);
        /* First the peer's verdict (the bytes on the wire), then the host's. */
        harness_end(h);

        switch (fault) {
        case FAULT_NACK:
                ASSERT_ERR(r, EREMOTEIO);
                ASSERT_EQ(st.reply, AN3155_NACK);
                break;
        case FAULT_GARBAGE:
                ASSERT_ERR(r, EPROTO);
                ASSERT_EQ(st.reply, 0xA5);
                break;
        case FAULT_SILENCE:
                ASSERT_ERR(r, ETIMEDOUT);
                break;
        case FAULT_HANGUP:
                ASSERT_ERR(r, ENODEV);
                break;
        default:
                ASSERT_OK(r);
                return;
        }
        ASSERT_EQ(st.command, c->command);
        ASSERT_STREQ(st.step, step);
}

static void test_commands(void) {
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                const Case *c = &cases[k];

                fprintf(stderr, "   %s: success\n", c->name);
                run_case(c, 0, 0, NULL, -1);

                for (size_t i = 0; i < c->n_ex; i++) {
                        const Exchange *e = &c->ex[i];

                        if (e->setup)
                                continue;
                        for (int f = 0; f < _FAULT_MAX; f++) {
                                fprintf(stderr, "   %s: %s instead of the ACK of step \"%s\"\n", c->name, fault_names[f], e->step);
                                run_case(c, i, 0, e->step, f);
                                if (e->step_last) {
                                        fprintf(stderr, "   %s: %s instead of the final ACK of step \"%s\"\n", c->name, fault_names[f], e->step_last);
                                        run_case(c, i, e->n_rx - 1, e->step_last, f);
                                }
                        }
                }
        }
}

/* ---- sync ---- */

static void expect_get(Script *s) {
        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, 0x79);
}

static void test_sync_ack(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_sync(h->p, 3));
        /* sync ran Get and kept its list */
        ASSERT_TRUE(an3155_supports(h->p, AN3155_CMD_EXTENDED_ERASE));
        ASSERT_TRUE(!an3155_supports(h->p, AN3155_CMD_ERASE));
        harness_end(h);
}

static void test_sync_already_synced(void) {
        _cleanup_free_ Script *s = script_new();

        /* A synced chip takes the first 0x7F as a command byte and says nothing; the
         * second completes a bad pair: NACK, and the chip waits for a command again. */
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &fast);
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_sync(h->p, 2));
        uint64_t dt = now_usec() - t0;
        ASSERT_TRUE(dt >= fast.reply_usec);
        ASSERT_TRUE(dt < 2 * fast.reply_usec + USEC_PER_SEC);
        harness_end(h);
}

static void test_sync_already_synced_short_wait(void) {
        _cleanup_free_ Script *s = script_new();

        /* With a long reply timeout, the silence after the first 0x7F must not cost a
         * whole reply timeout: the second 0x7F goes out after the short first wait. */
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_sync(h->p, 2));
        ASSERT_TRUE(now_usec() - t0 < slow.reply_usec / 2);
        harness_end(h);
}

static void test_sync_late_ack(void) {
        _cleanup_free_ Script *s = script_new();

        /* The ACK to the first 0x7F comes after the short first wait: the host has sent
         * a second 0x7F, which the (now synced) chip takes as a command byte. The late
         * ACK passes for the sync answer; Get's 0x00 completes the bad pair (NACK) and
         * its 0xFF starts a new command. Syncing again completes that one (NACK) and
         * the next Get works. */
        EXPECT(s, 0x7F);
        DELAY(s, 150 * USEC_PER_MSEC);
        SEND(s, 0x79);
        EXPECT(s, 0x7F);
        EXPECT(s, 0x00, 0xFF);
        SEND(s, AN3155_NACK);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_sync(h->p, 3));
        ASSERT_TRUE(an3155_supports(h->p, AN3155_CMD_EXTENDED_ERASE));
        harness_end(h);
}

static void test_sync_nack_first(void) {
        _cleanup_free_ Script *s = script_new();

        /* A chip left mid-command answers the first 0x7F with NACK: synced too. */
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_sync(h->p, 1));
        harness_end(h);
}

static void test_sync_stray(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        SEND(s, 0x00, 0xFF, 0x79);      /* noise, then the ACK */
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_sync(h->p, 1));
        harness_end(h);
}

static void test_sync_retry(void) {
        _cleanup_free_ Script *s = script_new();

        /* Not awake yet: the first 0x7F is lost, the second is answered. */
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        expect_get(s);
        Harness *h = harness_start(s, &fast);
        ASSERT_OK(an3155_sync(h->p, 3));
        harness_end(h);
}

static void test_sync_never(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        Harness *h = harness_start(s, &fast);
        uint64_t t0 = now_usec();
        ASSERT_ERR(an3155_sync(h->p, 3), EHOSTDOWN);
        uint64_t dt = now_usec() - t0;
        ASSERT_TRUE(dt >= 3 * fast.reply_usec);
        ASSERT_TRUE(dt < 3 * fast.reply_usec + USEC_PER_SEC);
        assert_status(h->p, 0xFF, "sync", -1);
        harness_end(h);
}

static void test_sync_noise_only(void) {
        _cleanup_free_ Script *s = script_new();

        /* Something answers, but not a bootloader. */
        EXPECT(s, 0x7F);
        SEND(s, 0x55);
        EXPECT(s, 0x7F);
        SEND(s, 0x7E);
        Harness *h = harness_start(s, &fast);
        ASSERT_ERR(an3155_sync(h->p, 2), EHOSTDOWN);
        assert_status(h->p, 0xFF, "sync", 0x7E);
        harness_end(h);
}

static void test_sync_flushes_stale(void) {
        _cleanup_free_ Script *s = script_new();

        /* Old bytes in the receive queue would pass for an answer if not dropped. */
        memcpy(s->prelude, (const uint8_t[]) { 0x1F, 0x0B, 0x79 }, 3);
        s->n_prelude = 3;
        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_sync(h->p, 1));
        ASSERT_EQ(h->n_trace_rx, 1 + 15);       /* the stale bytes were never read as replies */
        harness_end(h);
}

static void test_sync_hangup(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        HANGUP(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_sync(h->p, 3), ENODEV);
        harness_end(h);
}

static void test_sync_get_fails(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        EXPECT(s, 0x00, 0xFF);
        SEND(s, AN3155_NACK);
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_sync(h->p, 1), EREMOTEIO);
        assert_status(h->p, 0x00, "command", AN3155_NACK);
        harness_end(h);
}

static void test_resync(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_resync(h->p, 30 * USEC_PER_MSEC, 2));
        ASSERT_TRUE(now_usec() - t0 >= 30 * USEC_PER_MSEC);
        harness_end(h);
}

/* ---- replies that break the rules ---- */

static void test_get_too_long(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x21);            /* 34 bytes announced: more than any list */
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_get(h->p, NULL, NULL, NULL), EPROTO);
        assert_status(h->p, 0x00, "data", 0x21);
        harness_end(h);
}

static void test_get_truncated(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x0B, 0x31, 0x00, 0x01);  /* then nothing */
        Harness *h = harness_start(s, &fast);
        ASSERT_ERR(an3155_get(h->p, NULL, NULL, NULL), ETIMEDOUT);
        assert_status(h->p, 0x00, "data", -2);
        harness_end(h);
}

static void test_get_id_variants(void) {
        _cleanup_free_ Script *s = script_new();
        uint16_t pid = 0;

        /* N = 2: three ID bytes; the PID is the last two. */
        EXPECT(s, 0x02, 0xFD);
        SEND(s, 0x79, 0x02, 0x00, 0x04, 0x53, 0x79);
        /* N = 0: a one-byte ID is not an STM32 answer. */
        EXPECT(s, 0x02, 0xFD);
        SEND(s, 0x79, 0x00);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_get_id(h->p, &pid));
        ASSERT_EQ(pid, 0x453);
        ASSERT_ERR(an3155_get_id(h->p, &pid), EPROTO);
        harness_end(h);
}

static void test_busy_is_not_ack(void) {
        _cleanup_free_ Script *s = script_new();

        /* 0x76 is the I2C bootloader's BUSY; on the USART it is just a wrong byte. */
        EXPECT(s, 0x21, 0xDE);
        SEND(s, 0x76);
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_go(h->p, 0x08000000), EPROTO);
        assert_status(h->p, 0x21, "command", 0x76);
        harness_end(h);
}

static void test_read_truncated(void) {
        _cleanup_free_ Script *s = script_new();
        uint8_t buf[8];

        EXPECT(s, 0x11, 0xEE);
        SEND(s, 0x79);
        EXPECT(s, 0x08, 0x00, 0x00, 0x00, 0x08);
        SEND(s, 0x79);
        EXPECT(s, 0x07, 0xF8);
        SEND(s, 0x79, 1, 2, 3);
        Harness *h = harness_start(s, &fast);
        ASSERT_ERR(an3155_read_memory(h->p, 0x08000000, buf, sizeof(buf)), ETIMEDOUT);
        assert_status(h->p, 0x11, "data", -2);
        harness_end(h);
}

/* After a failed step a late reply may still arrive: the next command drops it. */
static void test_late_reply_dropped(void) {
        _cleanup_free_ Script *s = script_new();
        uint8_t v = 0;

        EXPECT(s, 0x11, 0xEE);
        /* silence: the host times out; then the late bytes arrive */
        EXPECT(s, 0x01, 0xFE);
        SEND(s, 0x79, 0x31, 0x00, 0x00, 0x79);
        Harness *h = harness_start(s, &fast);
        uint8_t buf[4];
        ASSERT_ERR(an3155_read_memory(h->p, 0x08000000, buf, sizeof(buf)), ETIMEDOUT);
        ASSERT_EQ(write(h->peer.fd, (const uint8_t[]) { 0x79, 0x1F }, 2), 2);
        ASSERT_OK(an3155_get_version(h->p, &v));
        ASSERT_EQ(v, 0x31);
        harness_end(h);
}

/* ---- block sizes, checksums over real lengths ---- */

static void test_read_write_256(void) {
        _cleanup_free_ Script *s = script_new();
        uint8_t data[256], back[256], block[258], x = 0;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 37 + 11);

        EXPECT(s, 0x11, 0xEE);
        SEND(s, 0x79);
        EXPECT(s, 0x08, 0x00, 0xFF, 0x00, 0xF7);
        SEND(s, 0x79);
        EXPECT(s, 0xFF, 0x00);
        SEND(s, 0x79);
        script_add(s, STEP_SEND, data, sizeof(data), 0);

        EXPECT(s, 0x31, 0xCE);
        SEND(s, 0x79);
        EXPECT(s, 0x08, 0x00, 0x01, 0x00, 0x09);
        SEND(s, 0x79);
        block[0] = 0xFF;
        memcpy(block + 1, data, sizeof(data));
        for (size_t i = 0; i < 257; i++)
                x ^= block[i];
        block[257] = x;
        script_add(s, STEP_EXPECT, block, sizeof(block), 0);
        SEND(s, 0x79);

        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_read_memory(h->p, 0x0800FF00, back, sizeof(back)));
        ASSERT_MEMEQ(back, data, sizeof(data));
        ASSERT_OK(an3155_write_memory(h->p, 0x08000100, data, sizeof(data)));
        harness_end(h);
}

/* 300 pages: 128 + 128 + 44, each its own command with its own count and checksum. */
static void test_erase_chunking(void) {
        _cleanup_free_ Script *s = script_new();
        uint16_t pages[300];
        static const size_t chunks[] = { 128, 128, 44 };
        size_t first = 0;

        for (size_t i = 0; i < ELEMENTSOF(pages); i++)
                pages[i] = (uint16_t) (i * 3 + 0x100);  /* high bytes vary */

        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                uint8_t buf[2 + 2 * 128 + 1], x = 0;
                size_t k = 0, n = chunks[c];

                EXPECT(s, 0x44, 0xBB);
                SEND(s, 0x79);
                buf[k++] = 0x00;
                buf[k++] = (uint8_t) (n - 1);
                for (size_t i = first; i < first + n; i++) {
                        buf[k++] = (uint8_t) (pages[i] >> 8);
                        buf[k++] = (uint8_t) pages[i];
                }
                for (size_t i = 0; i < k; i++)
                        x ^= buf[i];
                buf[k++] = x;
                script_add(s, STEP_EXPECT, buf, k, 0);
                SEND(s, 0x79);
                first += n;
        }
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_erase_pages(h->p, pages, ELEMENTSOF(pages)));
        harness_end(h);

        /* The counts as the wire carries them: 0x007F, 0x007F, 0x002B. */
        ASSERT_EQ(s->steps[2].bytes[0], 0x00);
        ASSERT_EQ(s->steps[2].bytes[1], 0x7F);
        ASSERT_EQ(s->steps[6].bytes[1], 0x7F);
        ASSERT_EQ(s->steps[10].bytes[1], 0x2B);
        ASSERT_EQ(s->steps[10].n, 2 + 2 * 44 + 1);
}

/* Legacy Erase: one-byte count and page numbers, split the same way. */
static void test_erase_chunking_legacy(void) {
        _cleanup_free_ Script *s = script_new();
        uint16_t pages[200];
        static const size_t chunks[] = { 128, 72 };
        size_t first = 0;

        for (size_t i = 0; i < ELEMENTSOF(pages); i++)
                pages[i] = (uint16_t) (255 - i);
        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79);
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                uint8_t buf[1 + 128 + 1], x = 0;
                size_t k = 0, n = chunks[c];

                EXPECT(s, 0x43, 0xBC);
                SEND(s, 0x79);
                buf[k++] = (uint8_t) (n - 1);
                for (size_t i = first; i < first + n; i++)
                        buf[k++] = (uint8_t) pages[i];
                for (size_t i = 0; i < k; i++)
                        x ^= buf[i];
                buf[k++] = x;
                script_add(s, STEP_EXPECT, buf, k, 0);
                SEND(s, 0x79);
                first += n;
        }
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_get(h->p, NULL, NULL, NULL));
        ASSERT_OK(an3155_erase_pages(h->p, pages, ELEMENTSOF(pages)));
        harness_end(h);
}

/* A page list's timeout grows with its length: 4 pages may take longer than one
 * reply timeout. */
static void test_erase_timeout_scales(void) {
        _cleanup_free_ Script *s = script_new();
        static const uint16_t pages[] = { 0, 1, 2, 3 };
        An3155Timeouts t = fast;

        t.reply_usec = 20 * USEC_PER_MSEC;
        t.page_erase_usec = 100 * USEC_PER_MSEC;   /* 420 ms for four pages */
        EXPECT(s, 0x44, 0xBB);
        SEND(s, 0x79);
        EXPECT(s, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x03);
        DELAY(s, 60 * USEC_PER_MSEC);                   /* > reply_usec */
        SEND(s, 0x79);
        Harness *h = harness_start(s, &slow);
        an3155_set_timeouts(h->p, &t);
        ASSERT_OK(an3155_erase_pages(h->p, pages, ELEMENTSOF(pages)));
        harness_end(h);
}

/* Deadlines include the wire time of the expected bytes: at 1200 baud 32 bytes take
 * 293 ms, far more than the reply timeout. */
static void test_deadline_includes_wire_time(void) {
        _cleanup_free_ Script *s = script_new();
        An3155Timeouts t = fast;
        uint8_t data[32], buf[32];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) i;
        t.reply_usec = 40 * USEC_PER_MSEC;
        EXPECT(s, 0x11, 0xEE);
        SEND(s, 0x79);
        EXPECT(s, 0x08, 0x00, 0x00, 0x00, 0x08);
        SEND(s, 0x79);
        EXPECT(s, 0x1F, 0xE0);
        SEND(s, 0x79);
        DELAY(s, 150 * USEC_PER_MSEC);          /* the bytes are "still on the wire" */
        script_add(s, STEP_SEND, data, sizeof(data), 0);
        Harness *h = harness_start(s, &t);
        ASSERT_OK(link_set_baud(h->link, 1200));
        ASSERT_OK(an3155_read_memory(h->p, 0x08000000, buf, sizeof(buf)));
        ASSERT_MEMEQ(buf, data, sizeof(data));
        harness_end(h);
}

/* ---- arguments rejected before a byte goes out ---- */

static void test_invalid_args(void) {
        _cleanup_free_ Script *s = script_new();
        uint8_t buf[260] = {};
        static const uint16_t pages[] = { 1 };

        Harness *h = harness_start(s, &fast);
        An3155 *p = h->p;
        ASSERT_ERR(an3155_write_memory(p, 0x08000000, buf, 0), EINVAL);
        ASSERT_ERR(an3155_write_memory(p, 0x08000000, buf, 3), EINVAL);
        ASSERT_ERR(an3155_write_memory(p, 0x08000000, buf, 6), EINVAL);
        ASSERT_ERR(an3155_write_memory(p, 0x08000000, buf, 260), EINVAL);
        ASSERT_ERR(an3155_write_memory(p, 0x08000000, NULL, 4), EINVAL);
        ASSERT_ERR(an3155_read_memory(p, 0x08000000, buf, 0), EINVAL);
        ASSERT_ERR(an3155_read_memory(p, 0x08000000, buf, 257), EINVAL);
        ASSERT_ERR(an3155_read_memory(p, 0x08000000, NULL, 4), EINVAL);
        ASSERT_ERR(an3155_write_protect(p, buf, 0), EINVAL);
        ASSERT_ERR(an3155_write_protect(p, buf, 257), EINVAL);
        ASSERT_ERR(an3155_write_protect(p, NULL, 1), EINVAL);
        ASSERT_ERR(an3155_erase_pages(p, NULL, 1), EINVAL);
        ASSERT_OK(an3155_erase_pages(p, pages, 0));     /* nothing to do */
        ASSERT_EQ(h->trace_calls, 0);
        harness_end(h);                                 /* and the peer saw nothing */
}

static void test_legacy_page_too_big(void) {
        _cleanup_free_ Script *s = script_new();
        static const uint16_t pages[] = { 1, 2, 256 };

        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_get(h->p, NULL, NULL, NULL));
        ASSERT_ERR(an3155_erase_pages(h->p, pages, ELEMENTSOF(pages)), EINVAL);
        harness_end(h);
}

static void test_unsupported(void) {
        _cleanup_free_ Script *s = script_new();
        static const uint16_t pages[] = { 1 };

        /* A list without Go, erase of either kind, or the protection commands. */
        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x05, 0x31, 0x00, 0x01, 0x02, 0x11, 0x31, 0x79);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_get(h->p, NULL, NULL, NULL));
        ASSERT_ERR(an3155_go(h->p, 0x08000000), EOPNOTSUPP);
        ASSERT_ERR(an3155_erase_mass(h->p), EOPNOTSUPP);
        ASSERT_ERR(an3155_erase_pages(h->p, pages, 1), EOPNOTSUPP);
        ASSERT_ERR(an3155_readout_unprotect(h->p), EOPNOTSUPP);
        ASSERT_ERR(an3155_write_unprotect(h->p), EOPNOTSUPP);
        harness_end(h);
}

/* The option-byte guard (chips.h): a Write Memory into an option-byte area other than
 * the C0/G0 OPTR form is refused before a byte goes out; the form itself goes through. */
static void test_option_guard(void) {
        _cleanup_free_ Script *s = script_new();
        uint8_t ob[128] = {}, form[8] = { 0xAA, 0xFE, 0xFF, 0xFE, 0x55, 0x01, 0x00, 0x01 };

        EXPECT(s, 0x31, 0xCE);
        SEND(s, 0x79);
        EXPECT(s, 0x1F, 0xFF, 0x78, 0x00, 0x98);
        SEND(s, 0x79);
        EXPECT(s, 0x07, 0xAA, 0xFE, 0xFF, 0xFE, 0x55, 0x01, 0x00, 0x01, 0x07);
        SEND(s, 0x79);
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FFF7800, ob, 128), EPERM);     /* the whole C0/G0 area */
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FFF7818, ob, 8), EPERM);       /* WRP1AR */
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FFF7870, ob, 8), EPERM);       /* SECR */
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FFFF800, ob, 16), EPERM);      /* F0 */
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FF80000, ob, 12), EPERM);      /* L0 */
        form[0] = 0xCC, form[4] = 0x33;
        ASSERT_ERR(an3155_write_memory(h->p, 0x1FFF7800, form, 8), EPERM);     /* RDP level 2 */
        ASSERT_EQ(h->n_trace_tx, 0);
        form[0] = 0xAA, form[4] = 0x55;
        ASSERT_OK(an3155_write_memory(h->p, 0x1FFF7800, form, 8));
        harness_end(h);
}

static void test_defaults(void) {
        An3155Timeouts t, u;
        _cleanup_free_ Script *s = script_new();

        an3155_default_timeouts(&t);
        ASSERT_EQ(t.reply_usec, 500 * USEC_PER_MSEC);
        ASSERT_EQ(t.write_usec, USEC_PER_SEC);
        ASSERT_EQ(t.page_erase_usec, 100 * USEC_PER_MSEC);
        ASSERT_EQ(t.mass_erase_usec, 30 * USEC_PER_SEC);
        ASSERT_EQ(t.option_usec, 2 * USEC_PER_SEC);
        ASSERT_EQ(t.reset_usec, 100 * USEC_PER_MSEC);

        Harness *h = harness_start(s, &fast);
        an3155_get_timeouts(h->p, &u);
        ASSERT_EQ(u.reply_usec, fast.reply_usec);
        ASSERT_EQ(u.mass_erase_usec, fast.mass_erase_usec);
        assert_status(h->p, 0xFF, "sync", -1);
        An3155 *q = NULL;
        ASSERT_ERR(an3155_new(NULL, &q), EINVAL);
        ASSERT_TRUE(!q);
        harness_end(h);
        ASSERT_TRUE(an3155_free(NULL) == NULL);
}

/* ---- recovery from a reply lost inside a command ---- */

/* One more 0x7F (a chip that finished booting hears a sync first, never filler), then
 * the filler. */
static void expect_filler(Script *s) {
        uint8_t filler[AN3155_RECOVER_FILLER_LEN];

        EXPECT(s, 0x7F);
        memset(filler, AN3155_RECOVER_FILLER, sizeof filler);
        filler[0] = AN3155_RECOVER_FILLER_LEAD;
        script_add(s, STEP_EXPECT, filler, sizeof filler, 0);
}

/* What a chip inside a command answers to the filler: a NACK for every frame it ends. */
static void noise_nacks(Script *s, size_t n) {
        uint8_t nacks[AN3155_RECOVER_FILLER_LEN];

        ASSERT_TRUE(n <= sizeof nacks);
        memset(nacks, AN3155_NACK, n);
        script_add(s, STEP_NOISE, nacks, n, 0);
}

/* The filler (a lead byte e, then b) ends no frame validly after any number m of 0x7F
 * (see an3155.c): a command pair, the address XOR, a Read count, and a Write count
 * N = 0x7F (128 data bytes and a checksum), for m = 1..16 (the recovery sends two, a
 * probe's silent sync three more: m = 5). The longest state fits. */
static void test_recover_filler_choice(void) {
        uint8_t stream[16 + AN3155_RECOVER_FILLER_LEN];
        const uint8_t e = AN3155_RECOVER_FILLER_LEAD, b = AN3155_RECOVER_FILLER;

        ASSERT_TRUE(AN3155_RECOVER_FILLER_LEN >= 5 + 1 + 256 + 1);
        ASSERT_TRUE(e != b);
        for (size_t m = 1; m <= 16; m++) {
                size_t n = m + AN3155_RECOVER_FILLER_LEN;

                memset(stream, 0x7F, m);
                stream[m] = e;
                memset(stream + m + 1, b, AN3155_RECOVER_FILLER_LEN - 1);

                /* waiting for a command, or for a command's complement (one byte in) */
                for (size_t i = 0; i + 1 < n; i++)
                        ASSERT_TRUE((uint8_t) (stream[i] ^ stream[i + 1]) != 0xFF);
                /* the address: 4 bytes and their XOR */
                ASSERT_TRUE((uint8_t) (stream[0] ^ stream[1] ^ stream[2] ^ stream[3]) != stream[4]);
                /* a Write (or Write Protect) count: N = stream[0], N + 1 bytes, checksum */
                size_t len = (size_t) stream[0] + 1;
                uint8_t x = stream[0];
                ASSERT_TRUE(len + 1 < n);
                for (size_t i = 1; i <= len; i++)
                        x ^= stream[i];
                ASSERT_TRUE(x != stream[len + 1]);
                /* ... and after a 0x7F and a Get's 00 FF (the 0x7F got an answer) */
                uint8_t g[5] = { 0x7F, 0x00, 0xFF, e, b };
                ASSERT_TRUE((uint8_t) (g[0] ^ g[1] ^ g[2] ^ g[3]) != g[4]);
                /* a 0x7F that completed an address: Get's 00 FF is N = 0 and one byte,
                 * and the checksum the 0x7F sent before the filler */
                ASSERT_TRUE((uint8_t) (0x00 ^ 0xFF) != 0x7F);
        }
}

/* The chip reset (or waited for a command's complement): the first 0x7F is answered,
 * Get confirms, and no filler reaches a chip that measures its baud. The real ACK after
 * a stray byte, still in the queue, is drained, not taken for the answer. */
static void test_recover_quick_sync(void) {
        _cleanup_free_ Script *s = script_new();

        memcpy(s->prelude, (const uint8_t[]) { 0x79, 0x1F }, 2);
        s->n_prelude = 2;
        EXPECT(s, 0x7F);
        SEND(s, 0x79);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_recover(h->p));
        ASSERT_EQ(h->n_trace_tx, 1 + 2);
        ASSERT_EQ(h->n_trace_rx, 1 + 15);
        harness_end(h);
}

/* A chip waiting for address bytes: silence to the 0x7F, NACKs to the filler (drained),
 * then the sync's 0x7F completes the last pair. */
static void test_recover_filler(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        expect_filler(s);
        noise_nacks(s, 131);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_recover(h->p));
        /* the waits are capped whatever the configured reply timeout (5 s here) */
        ASSERT_TRUE(now_usec() - t0 < 2 * USEC_PER_SEC);
        ASSERT_EQ(h->n_trace_tx, 1 + 1 + AN3155_RECOVER_FILLER_LEN + 1 + 2);
        ASSERT_TRUE(an3155_supports(h->p, AN3155_CMD_EXTENDED_ERASE));
        harness_end(h);
}

/* A chip that ends up waiting for a command: the first sync 0x7F is a command byte, the
 * second completes a bad pair. */
static void test_recover_idle(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        expect_filler(s);
        noise_nacks(s, 133);
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(an3155_recover(h->p));
        harness_end(h);
}

/* An answer to the first 0x7F that Get does not confirm: on to the filler. Get's wait
 * is capped too. */
static void test_recover_get_fails(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        EXPECT(s, 0x00, 0xFF);
        expect_filler(s);
        noise_nacks(s, 1);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        expect_get(s);
        Harness *h = harness_start(s, &slow);
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_recover(h->p));
        ASSERT_TRUE(now_usec() - t0 < 2 * USEC_PER_SEC);
        /* the caller's timeouts are back */
        An3155Timeouts t;
        an3155_get_timeouts(h->p, &t);
        ASSERT_EQ(t.reply_usec, slow.reply_usec);
        harness_end(h);
}

/* Nothing answers at all: a bounded failure. */
static void test_recover_silent(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        expect_filler(s);
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        Harness *h = harness_start(s, &slow);
        uint64_t t0 = now_usec();
        ASSERT_ERR(an3155_recover(h->p), EHOSTDOWN);
        uint64_t dt = now_usec() - t0;
        ASSERT_TRUE(dt >= 100 * USEC_PER_MSEC);
        ASSERT_TRUE(dt < 2 * USEC_PER_SEC);
        assert_status(h->p, 0xFF, "sync", -1);
        harness_end(h);
}

static void test_recover_hangup(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x7F);
        HANGUP(s);
        Harness *h = harness_start(s, &slow);
        ASSERT_ERR(an3155_recover(h->p), ENODEV);
        ASSERT_ERR(an3155_recover(NULL), EINVAL);
        harness_end(h);
}

/* Against the simulator: the chip is put, with raw bytes, into every state a lost or
 * garbled reply in Write or Read Memory leaves it in (the host sends each part whole,
 * after the previous ACK), on G0, F0 and L0 (erased 0x00: a write of filler would show).
 * After the recovery nothing was written, the flash is still erased, the chip is synced
 * and the next Write Memory works. */
typedef struct RecState {
        const char *name;
        uint8_t bytes[8];
        size_t n;
        unsigned acks;          /* replies to wait for before recovering */
        bool reset;             /* sim_reset(): back in the sync wait */
        bool quick;             /* the first 0x7F is answered: no filler */
} RecState;

static const RecState rec_states[] = {
        { "waiting for a command",            { 0 }, 0, 0, false },
        { "waiting for a command complement", { 0x31 }, 1, 0, false, true },
        { "Write: waiting for the address",   { 0x31, 0xCE }, 2, 1, false },
        { "Write: 2 address bytes in",        { 0x31, 0xCE, 0x08, 0x00 }, 4, 1, false },
        /* the 0x7F completes the address: 08^00^01^00 = 09, NACK */
        { "Write: 4 address bytes in",        { 0x31, 0xCE, 0x08, 0x00, 0x01, 0x00 }, 6, 1, false, true },
        /* 08^00^01^76 = 7F: the 0x7F is a valid checksum (ACK), Get's 00 FF a count and a
         * data byte, the first filler byte the checksum: NACK */
        { "Write: 0x7F completes the address", { 0x31, 0xCE, 0x08, 0x00, 0x01, 0x76 }, 6, 1, false },
        { "Write: waiting for the count",     { 0x31, 0xCE, 0x08, 0x00, 0x01, 0x00, 0x09 }, 7, 2, false },
        { "Read: waiting for the address",    { 0x11, 0xEE }, 2, 1, false },
        { "Read: waiting for the count",      { 0x11, 0xEE, 0x08, 0x00, 0x01, 0x00, 0x09 }, 7, 2, false },
        { "Read: waiting for ~N",             { 0x11, 0xEE, 0x08, 0x00, 0x01, 0x00, 0x09, 0xFF }, 8, 2, false, true },
        { "reset: waiting for sync",          { 0 }, 0, 0, true, true },
};

/* after_sync: first the probe's sync, whose 0x7F bytes all go unanswered into the
 * command (3 more before the recovery's own: an even number, see an3155.c). */
static void recover_sim_state(uint16_t pid, const RecState *st, bool after_sync) {
        An3155Timeouts t = slow;
        SimCounters c0, c1;
        An3155 *p;
        Link *l;
        Sim *sim;
        int sv[2];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(sim_new(pid, 0, &sim));
        ASSERT_OK(sim_start(sim, sv[1]));
        ASSERT_OK(link_open_fd(sv[0], "sim", &l));
        ASSERT_OK(an3155_new(l, &p));
        t.reply_usec = 300 * USEC_PER_MSEC;
        an3155_set_timeouts(p, &t);
        ASSERT_OK(an3155_sync(p, 2));

        /* the chip into the state, with the replies it gives on the way */
        sim_counters(sim, &c0);
        if (st->n > 0)
                ASSERT_OK(link_write(l, st->bytes, st->n));
        for (unsigned i = 0; i < st->acks; i++) {
                uint8_t b = 0;
                ASSERT_OK(link_read_exact(l, &b, 1, now_usec() + 5 * USEC_PER_SEC));
                ASSERT_EQ(b, AN3155_ACK);
        }
        if (st->reset) {
                sim_reset(sim);
                ASSERT_EQ(sim_state(sim), SIM_STATE_WAIT_SYNC);
        }

        if (after_sync)
                ASSERT_ERR(an3155_sync(p, 3), EHOSTDOWN);
        ASSERT_OK(an3155_recover(p));

        sim_counters(sim, &c1);
        ASSERT_EQ(c1.writes, 0);
        ASSERT_EQ(c1.mass_erases + c1.page_erases + c1.ob_writes + c1.gos, 0);
        ASSERT_EQ(sim_state(sim), SIM_STATE_BOOTLOADER);
        if (after_sync)
                ASSERT_TRUE(c1.bytes_in - c0.bytes_in >= st->n + 3 + 2 + AN3155_RECOVER_FILLER_LEN);
        else if (st->quick)
                /* only 0x7F and Get: a chip measuring its baud hears nothing else */
                ASSERT_EQ(c1.bytes_in - c0.bytes_in, st->n + 3);
        else
                ASSERT_TRUE(c1.bytes_in - c0.bytes_in >= st->n + 1 + AN3155_RECOVER_FILLER_LEN);

        size_t size;
        sim_lock(sim);
        uint8_t *m = sim_flash(sim, &size);
        uint8_t erased = sim_erased_value(sim);
        for (size_t i = 0; i < size; i++)
                ASSERT_EQ(m[i], erased);
        sim_unlock(sim);

        /* and the chip takes commands again */
        uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];
        ASSERT_OK(an3155_write_memory(p, 0x08000100, d, sizeof d));
        ASSERT_OK(an3155_read_memory(p, 0x08000100, back, sizeof back));
        ASSERT_MEMEQ(back, d, sizeof d);
        sim_counters(sim, &c1);
        ASSERT_EQ(c1.writes, 1);

        an3155_free(p);
        sim_stop(sim);
        link_free(l);
        close(sv[1]);
        sim_free(sim);
}

static void test_recover_sim(void) {
        static const uint16_t pids[] = { 0x466, 0x444, 0x457 };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                for (size_t k = 0; k < ELEMENTSOF(rec_states); k++) {
                        fprintf(stderr, "   0x%03x %s\n", pids[i], rec_states[k].name);
                        recover_sim_state(pids[i], &rec_states[k], false);
                }
        /* After a probe's silent sync: a filler of 0x02 alone would complete this Write
         * (N = 0x7F, 0x7F x 3, 0x02 x 125, checksum 0x02) and program the block. */
        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                for (size_t k = 0; k < ELEMENTSOF(rec_states); k++)
                        if (strcmp(rec_states[k].name, "Write: waiting for the count") == 0 ||
                            strcmp(rec_states[k].name, "Write: waiting for the address") == 0) {
                                fprintf(stderr, "   0x%03x %s, after a silent sync\n", pids[i], rec_states[k].name);
                                recover_sim_state(pids[i], &rec_states[k], true);
                        }
}

/* ---- a lost or garbled reply to an erase command pair ---- */

/* The page list a chip must refuse, written out by hand: count 0, page 0, checksum 0x5A
 * (their XOR is 0x00). */
#define REFUSED_EXT 0x00, 0x00, 0x00, 0x00, 0x5A
#define REFUSED_LEGACY 0x00, 0x00, 0x5A
/* Reply timeouts short enough for the lost ACK, long enough for a loaded machine. */
static const An3155Timeouts lossy = {
        .reply_usec = 150 * USEC_PER_MSEC, .write_usec = 5 * USEC_PER_SEC,
        .page_erase_usec = 10 * USEC_PER_MSEC, .mass_erase_usec = 5 * USEC_PER_SEC,
        .option_usec = 5 * USEC_PER_SEC, .reset_usec = 10 * USEC_PER_MSEC,
};

/* The chip took "44 BB" and its ACK was lost: the refused list (NACK, drained), a sync
 * (the first 0x7F a command byte, the second a bad pair: NACK), Get, the command again. */
static void expect_erase_recovery(Script *s, bool legacy) {
        if (legacy)
                EXPECT(s, REFUSED_LEGACY);
        else
                EXPECT(s, REFUSED_EXT);
        noise_nacks(s, 1);
        EXPECT(s, 0x7F);
        EXPECT(s, 0x7F);
        SEND(s, AN3155_NACK);
        if (legacy) {
                EXPECT(s, 0x00, 0xFF);
                SEND(s, 0x79, 0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79);
        } else
                expect_get(s);
}

static void test_erase_lost_ack_pages(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x44, 0xBB);                  /* its ACK is lost */
        expect_erase_recovery(s, false);
        EXPECT(s, 0x44, 0xBB);
        SEND(s, 0x79);
        EXPECT(s, 0x00, 0x02, 0x00, 0x03, 0x00, 0x10, 0x01, 0xFF, 0xEF);
        SEND(s, 0x79);
        Harness *h = harness_start(s, &lossy);
        ASSERT_OK(run_pages_ext(h->p));
        /* the caller's timeouts are back */
        An3155Timeouts t;
        an3155_get_timeouts(h->p, &t);
        ASSERT_EQ(t.reply_usec, lossy.reply_usec);
        harness_end(h);
}

/* Garbled: a stray byte, then the real ACK (drained, never taken for a reply). */
static void test_erase_garbled_ack_mass(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x44, 0xBB);
        SEND(s, 0xA5);
        NOISE(s, 0x79);
        expect_erase_recovery(s, false);
        EXPECT(s, 0x44, 0xBB);
        SEND(s, 0x79);
        EXPECT(s, 0xFF, 0xFF, 0x00);
        SEND(s, 0x79);
        Harness *h = harness_start(s, &slow);
        ASSERT_OK(run_mass(h->p));
        harness_end(h);
}

static void test_erase_lost_ack_legacy(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x00, 0xFF);
        SEND(s, 0x79, 0x0B, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79);
        EXPECT(s, 0x43, 0xBC);
        expect_erase_recovery(s, true);
        EXPECT(s, 0x43, 0xBC);
        SEND(s, 0x79);
        EXPECT(s, 0x02, 0x01, 0x02, 0x80, 0x81);
        SEND(s, 0x79);
        Harness *h = harness_start(s, &lossy);
        ASSERT_OK(an3155_get(h->p, NULL, NULL, NULL));
        ASSERT_OK(run_pages_legacy(h->p));
        harness_end(h);
}

/* The retry's ACK is lost too: the chip is taken out once more, and the error is the
 * retry's Timeout, with its status. */
static void test_erase_lost_ack_twice(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x44, 0xBB);
        expect_erase_recovery(s, false);
        EXPECT(s, 0x44, 0xBB);
        expect_erase_recovery(s, false);
        Harness *h = harness_start(s, &lossy);
        ASSERT_ERR(run_mass(h->p), ETIMEDOUT);
        assert_status(h->p, 0x44, "command", -1);
        harness_end(h);
}

/* The line goes away during the recovery: that is the news, not the Timeout. */
static void test_erase_lost_ack_hangup(void) {
        _cleanup_free_ Script *s = script_new();

        EXPECT(s, 0x44, 0xBB);
        EXPECT(s, REFUSED_EXT);
        HANGUP(s);
        Harness *h = harness_start(s, &lossy);
        ASSERT_ERR(run_pages_ext(h->p), ENODEV);
        harness_end(h);
}

/* The refused list against every state the chip can be in, as byte streams: a chip
 * waiting for the count refuses it (count 0 is no special erase, the checksum is
 * wrong); one waiting for a command, or holding one byte of a pair (any value), gets
 * only pairs that are no command; the last byte left pending is completed by the
 * sync's 0x7F into no command either. */
static void test_erase_refused_list_choice(void) {
        static const uint8_t ext[] = { REFUSED_EXT }, legacy[] = { REFUSED_LEGACY };
        static const struct { const uint8_t *b; size_t n; } lists[] = {
                { ext, sizeof ext }, { legacy, sizeof legacy },
        };

        for (size_t k = 0; k < ELEMENTSOF(lists); k++) {
                const uint8_t *b = lists[k].b;
                size_t n = lists[k].n;
                uint8_t x = 0;

                /* waiting for the count: not a special code, one page, a bad checksum */
                if (n == sizeof ext) {
                        ASSERT_TRUE((b[0] << 8 | b[1]) < 0xFFF0);
                        ASSERT_EQ(b[0] << 8 | b[1], 0);
                        ASSERT_EQ(n, 2 + 2 + 1);
                } else {
                        ASSERT_TRUE(b[0] != 0xFF);
                        ASSERT_EQ(b[0], 0);
                        ASSERT_EQ(n, 1 + 1 + 1);
                }
                for (size_t i = 0; i + 1 < n; i++)
                        x ^= b[i];
                ASSERT_TRUE(x != b[n - 1]);

                /* waiting for a command: the pairs, then the last byte and the sync's 0x7F */
                uint8_t stream[8];
                memcpy(stream, b, n);
                stream[n] = 0x7F;
                for (size_t i = 0; i + 1 < n + 1; i += 2)
                        ASSERT_TRUE((uint8_t) (stream[i] ^ stream[i + 1]) != 0xFF);
                /* one byte y of a pair already in: (y, b0), then the rest shifted */
                for (unsigned y = 0; y < 256; y++)
                        if ((uint8_t) (y ^ b[0]) == 0xFF)
                                ASSERT_EQ(y, 0xFF);     /* 0xFF is no command */
                for (size_t i = 1; i + 1 < n + 1; i += 2)
                        ASSERT_TRUE((uint8_t) (stream[i] ^ stream[i + 1]) != 0xFF);
        }
}

/* Against the simulator. */
typedef struct SimRig {
        Sim *sim;
        Link *link;
        An3155 *p;
        int sv[2];
} SimRig;

static void rig_start(SimRig *r, uint16_t pid) {
        An3155Timeouts t = slow;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->sv));
        ASSERT_OK(sim_new(pid, 0, &r->sim));
        ASSERT_OK(sim_start(r->sim, r->sv[1]));
        ASSERT_OK(link_open_fd(r->sv[0], "sim", &r->link));
        ASSERT_OK(an3155_new(r->link, &r->p));
        t.reply_usec = 300 * USEC_PER_MSEC;     /* what a lost reply costs */
        an3155_set_timeouts(r->p, &t);
}

static void rig_end(SimRig *r) {
        an3155_free(r->p);
        sim_stop(r->sim);
        link_free(r->link);
        close(r->sv[1]);
        sim_free(r->sim);
}

static void fill_block(uint8_t *b, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (seed * 31 + i * 7 + 1);
}

/* The chip answers a Get and a Read after the erase; the block at address still holds
 * its data. */
static void expect_block(SimRig *r, uint32_t address, unsigned seed) {
        uint8_t want[16], got[16];

        fill_block(want, sizeof want, seed);
        ASSERT_OK(an3155_get(r->p, NULL, NULL, NULL));
        ASSERT_OK(an3155_read_memory(r->p, address, got, sizeof got));
        ASSERT_MEMEQ(got, want, sizeof want);
}

static bool page_erased(SimRig *r, uint32_t page, uint32_t page_size) {
        size_t size;
        bool erased = true;

        sim_lock(r->sim);
        uint8_t *m = sim_flash(r->sim, &size);
        ASSERT_TRUE((size_t) (page + 1) * page_size <= size);
        for (size_t i = 0; i < page_size; i++)
                erased = erased && m[(size_t) page * page_size + i] == sim_erased_value(r->sim);
        sim_unlock(r->sim);
        return erased;
}

/* A page list on L0 (128-byte pages, erased 0x00), the ACK to "44 BB" lost or (stray)
 * garbled: pages 0 (the refused list's page), 3 (in the list) and 6 hold data first;
 * the call succeeds, pages 2..4 are erased once, 0 and 6 keep their data. */
static void sim_erase_pages(uint16_t pid, SimFault fault) {
        static const uint16_t pages[] = { 2, 3, 4 };
        const uint32_t page_size = pid == 0x457 ? 128 : 2048, base = 0x08000000;
        SimCounters c0, c1;
        uint8_t block[16];
        SimRig r;

        rig_start(&r, pid);
        ASSERT_OK(an3155_sync(r.p, 2));
        for (unsigned pg = 0; pg <= 6; pg += 3) {
                fill_block(block, sizeof block, pg);
                ASSERT_OK(an3155_write_memory(r.p, base + pg * page_size, block, sizeof block));
        }
        ASSERT_TRUE(!page_erased(&r, 3, page_size));

        sim_counters(r.sim, &c0);
        sim_inject(r.sim, fault, 1);            /* the next reply burst / ACK: the command's */
        uint64_t t0 = now_usec();
        ASSERT_OK(an3155_erase_pages(r.p, pages, ELEMENTSOF(pages)));
        ASSERT_TRUE(now_usec() - t0 < 3 * USEC_PER_SEC);
        sim_counters(r.sim, &c1);

        ASSERT_EQ(c1.page_erases - c0.page_erases, ELEMENTSOF(pages));
        ASSERT_EQ(c1.mass_erases, 0);
        /* the refused list's NACK and the sync's bad pair: the chip was waiting for the
         * count, and refused the list */
        ASSERT_EQ(c1.nacks - c0.nacks, 2);
        for (uint32_t pg = 2; pg <= 4; pg++)
                ASSERT_TRUE(page_erased(&r, pg, page_size));
        expect_block(&r, base, 0);
        expect_block(&r, base + 6 * page_size, 6);
        ASSERT_EQ(sim_state(r.sim), SIM_STATE_BOOTLOADER);
        rig_end(&r);
}

/* A mass erase on G0, its command ACK lost: one mass erase, the flash erased, the chip
 * answers. */
static void sim_erase_mass(void) {
        SimCounters c0, c1;
        uint8_t block[16], got[16];
        size_t size;
        SimRig r;

        rig_start(&r, 0x466);
        ASSERT_OK(an3155_sync(r.p, 2));
        fill_block(block, sizeof block, 9);
        ASSERT_OK(an3155_write_memory(r.p, 0x08000000, block, sizeof block));
        ASSERT_OK(an3155_write_memory(r.p, 0x08004000, block, sizeof block));

        sim_counters(r.sim, &c0);
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 1);
        ASSERT_OK(an3155_erase_mass(r.p));
        sim_counters(r.sim, &c1);
        ASSERT_EQ(c1.mass_erases - c0.mass_erases, 1);
        ASSERT_EQ(c1.page_erases, 0);
        ASSERT_EQ(c1.nacks - c0.nacks, 2);

        sim_lock(r.sim);
        uint8_t *m = sim_flash(r.sim, &size);
        for (size_t i = 0; i < size; i++)
                ASSERT_EQ(m[i], 0xFF);
        sim_unlock(r.sim);
        ASSERT_OK(an3155_get(r.p, NULL, NULL, NULL));
        ASSERT_OK(an3155_read_memory(r.p, 0x08004000, got, sizeof got));
        memset(block, 0xFF, sizeof block);
        ASSERT_MEMEQ(got, block, sizeof got);
        rig_end(&r);
}

/* The chip never took the command: here it NACKs "44 BB" (read protection) and the NACK
 * is lost, so it waits for a command when the refused list comes. Its bytes are pairs
 * that are no command (two NACKs), the sync's 0x7F completes the last one (NACK), Get
 * works, and the retry's NACK is the answer. Nothing erased. */
static void sim_erase_never_taken(void) {
        static const uint16_t pages[] = { 0, 1 };
        SimCounters c0, c1;
        uint8_t block[16];
        SimRig r;

        rig_start(&r, 0x466);
        /* not in the first word: an empty first word keeps the G0 in the bootloader when
         * the option bytes reload */
        fill_block(block, sizeof block, 0);
        ASSERT_OK(sim_load(r.sim, 0x08000800, block, sizeof block));
        sim_set_rdp(r.sim, 1);
        ASSERT_OK(an3155_sync(r.p, 2));

        sim_counters(r.sim, &c0);
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 1);
        ASSERT_ERR(an3155_erase_pages(r.p, pages, ELEMENTSOF(pages)), EREMOTEIO);
        assert_status(r.p, 0x44, "command", AN3155_NACK);
        sim_counters(r.sim, &c1);
        /* the lost NACK, (00, 00) twice, (5A, 7F), the retry's NACK */
        ASSERT_EQ(c1.nacks - c0.nacks, 5);
        /* pairs: 44 BB, 00 00, 00 00, 5A 7F, Get, 44 BB */
        ASSERT_EQ(c1.commands - c0.commands, 6);
        ASSERT_EQ(c1.page_erases + c1.mass_erases, 0);
        ASSERT_TRUE(!page_erased(&r, 1, 2048));
        /* the chip answers */
        uint16_t pid = 0;
        ASSERT_OK(an3155_get_id(r.p, &pid));
        ASSERT_EQ(pid, 0x466);
        rig_end(&r);
}

static void test_erase_lost_ack_sim(void) {
        fprintf(stderr, "   0x457 page list, ACK lost\n");
        sim_erase_pages(0x457, SIM_FAULT_DROP_REPLY);
        fprintf(stderr, "   0x466 page list, ACK after a stray byte\n");
        sim_erase_pages(0x466, SIM_FAULT_STRAY_BYTE);
        fprintf(stderr, "   0x466 mass erase, ACK lost\n");
        sim_erase_mass();
        fprintf(stderr, "   0x466 command never taken, NACK lost\n");
        sim_erase_never_taken();
}

int main(void) {
        TEST(test_defaults);
        TEST(test_commands);
        TEST(test_sync_ack);
        TEST(test_sync_already_synced);
        TEST(test_sync_already_synced_short_wait);
        TEST(test_sync_late_ack);
        TEST(test_sync_nack_first);
        TEST(test_sync_stray);
        TEST(test_sync_retry);
        TEST(test_sync_never);
        TEST(test_sync_noise_only);
        TEST(test_sync_flushes_stale);
        TEST(test_sync_hangup);
        TEST(test_sync_get_fails);
        TEST(test_resync);
        TEST(test_get_too_long);
        TEST(test_get_truncated);
        TEST(test_get_id_variants);
        TEST(test_busy_is_not_ack);
        TEST(test_read_truncated);
        TEST(test_late_reply_dropped);
        TEST(test_read_write_256);
        TEST(test_erase_chunking);
        TEST(test_erase_chunking_legacy);
        TEST(test_erase_timeout_scales);
        TEST(test_deadline_includes_wire_time);
        TEST(test_invalid_args);
        TEST(test_legacy_page_too_big);
        TEST(test_unsupported);
        TEST(test_option_guard);
        TEST(test_recover_filler_choice);
        TEST(test_recover_quick_sync);
        TEST(test_recover_filler);
        TEST(test_recover_idle);
        TEST(test_recover_get_fails);
        TEST(test_recover_silent);
        TEST(test_recover_hangup);
        TEST(test_recover_sim);
        TEST(test_erase_refused_list_choice);
        TEST(test_erase_lost_ack_pages);
        TEST(test_erase_garbled_ack_mass);
        TEST(test_erase_lost_ack_legacy);
        TEST(test_erase_lost_ack_twice);
        TEST(test_erase_lost_ack_hangup);
        TEST(test_erase_lost_ack_sim);
        return 0;
}
