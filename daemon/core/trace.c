/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job's wire trace: recording (a kept head and a tail that drops its oldest events
 * past the budget), an AN3155 decoder that follows the command/reply state, and the
 * text and JSON renderings. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "an3155.h"
#include "trace.h"

/* Bytes of one event kept (a Write Memory block is 258, recovery filler 265): more
 * would let one event take the budget; the event says how many there were. */
#define EVENT_BYTES_MAX 512u
#define NOTE_MAX 96u
/* What the kept head of the job may take of the budget. */
#define HEAD_SHARE 4u

/* The events that are not link events. */
enum { TRACE_KIND_NOTE = _LINK_EVENT_MAX };

typedef struct TraceEvent {
        struct TraceEvent *next;
        uint64_t usec;          /* since trace_new() */
        uint8_t kind;           /* LinkEvent or TRACE_KIND_NOTE */
        size_t n_total;         /* bytes on the wire */
        size_t n;               /* bytes kept: the first ones */
        char *note;             /* points into the allocation, after the bytes */
        uint8_t data[];
} TraceEvent;

/* A step of a command's exchange (AN3155 §3). */
enum {
        S_END,
        S_ACK,          /* rx: ACK or NACK */
        S_ADDR,         /* tx: 4 address bytes + XOR */
        S_LEN,          /* tx: N-1 and its complement (Read Memory) */
        S_WDATA,        /* tx: N-1, N bytes, XOR (Write Memory) */
        S_ERASE,        /* tx: Erase's page list or 0xFF 0x00 */
        S_XERASE,       /* tx: Extended Erase's page list or special code */
        S_WPLIST,       /* tx: Write Protect's sector list */
        S_COUNTED,      /* rx: N, then N+1 bytes (Get, Get ID) */
        S_FIXED3,       /* rx: 3 bytes (Get Version) */
        S_RDATA,        /* rx: the length S_LEN asked for */
};

#define CMD_NONE (-1)
#define CMD_SYNC 0x100

static const struct {
        uint8_t cmd;
        const char *name;
        uint8_t script[8];
} commands[] = {
        { AN3155_CMD_GET,               "Get",               { S_ACK, S_COUNTED, S_ACK } },
        { AN3155_CMD_GET_VERSION,       "Get Version",       { S_ACK, S_FIXED3, S_ACK } },
        { AN3155_CMD_GET_ID,            "Get ID",            { S_ACK, S_COUNTED, S_ACK } },
        { AN3155_CMD_READ_MEMORY,       "Read Memory",       { S_ACK, S_ADDR, S_ACK, S_LEN, S_ACK, S_RDATA } },
        { AN3155_CMD_GO,                "Go",                { S_ACK, S_ADDR, S_ACK } },
        { AN3155_CMD_WRITE_MEMORY,      "Write Memory",      { S_ACK, S_ADDR, S_ACK, S_WDATA, S_ACK } },
        { AN3155_CMD_ERASE,             "Erase",             { S_ACK, S_ERASE, S_ACK } },
        { AN3155_CMD_EXTENDED_ERASE,    "Extended Erase",    { S_ACK, S_XERASE, S_ACK } },
        { AN3155_CMD_WRITE_PROTECT,     "Write Protect",     { S_ACK, S_WPLIST, S_ACK } },
        { AN3155_CMD_WRITE_UNPROTECT,   "Write Unprotect",   { S_ACK, S_ACK } },
        { AN3155_CMD_READOUT_PROTECT,   "Readout Protect",   { S_ACK, S_ACK } },
        { AN3155_CMD_READOUT_UNPROTECT, "Readout Unprotect", { S_ACK, S_ACK } },
};

static const uint8_t sync_script[] = { S_ACK, S_END };
static const uint8_t unknown_script[] = { S_ACK, S_END };

typedef struct Decoder {
        int cmd;                        /* CMD_NONE, CMD_SYNC or the command byte */
        const char *name;
        const uint8_t *script;
        size_t step;
        bool awaiting_first_ack;        /* the pair's own ACK: counted in the stats */
        bool even;                      /* the pair's bytes have an even number of ones */
        uint32_t address;
        size_t length;                  /* Read Memory's N */
        bool have_count;
        size_t want, total;             /* rx payload still expected, and its size */
} Decoder;

struct Trace {
        char *port, *op;
        uint64_t start_usec;
        char started[32];               /* CLOCK_REALTIME at the start, ISO 8601 UTC */
        size_t max_bytes, size;
        TraceEvent *first, *last;
        TraceEvent *head_end;           /* the last event of the kept head; NULL while it grows */
        size_t head_size;
        size_t n_events, n_dropped, dropped_bytes;
        Decoder dec;
        TraceStats stats;
};

int trace_new(const char *port, const char *op, size_t max_bytes, Trace **ret) {
        _cleanup_(trace_freep) Trace *t = NULL;

        if (!ret)
                return -EINVAL;
        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->max_bytes = max_bytes ?: TRACE_MAX_BYTES;
        t->start_usec = now_usec();
        {
                time_t now = time(NULL);
                struct tm tm;

                if (gmtime_r(&now, &tm))
                        strftime(t->started, sizeof t->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        t->dec.cmd = CMD_NONE;
        if ((port && !(t->port = strdup(port))) || (op && !(t->op = strdup(op))))
                return -ENOMEM;
        *ret = TAKE_PTR(t);
        return 0;
}

Trace *trace_free(Trace *t) {
        if (!t)
                return NULL;
        for (TraceEvent *e = t->first, *n; e; e = n) {
                n = e->next;
                free(e);
        }
        free(t->port);
        free(t->op);
        free(t);
        return NULL;
}

const TraceStats *trace_stats(const Trace *t) {
        return &t->stats;
}

size_t trace_n_events(const Trace *t) {
        return t->n_events;
}

size_t trace_n_dropped(const Trace *t) {
        return t->n_dropped;
}

size_t trace_size(const Trace *t) {
        return t->size;
}

/* ---- recording ---- */

static size_t event_cost(const TraceEvent *e) {
        return sizeof(TraceEvent) + e->n + strlen(e->note) + 1;
}

/* Drops the oldest event after the kept head. */
static bool drop_one(Trace *t) {
        TraceEvent *victim = t->head_end ? t->head_end->next : t->first;

        /* never the newest: it is what the caller just recorded */
        if (!victim || victim == t->last)
                return false;
        if (t->head_end)
                t->head_end->next = victim->next;
        else
                t->first = victim->next;
        t->size -= event_cost(victim);
        t->n_events--;
        t->n_dropped++;
        t->dropped_bytes += victim->n_total;
        free(victim);
        return true;
}

static void record(Trace *t, uint8_t kind, const uint8_t *buf, size_t n, const char *note) {
        size_t keep = MIN(n, (size_t) EVENT_BYTES_MAX), len = strlen(note);
        TraceEvent *e;

        e = malloc(sizeof *e + keep + len + 1);
        if (!e) {
                t->n_dropped++;
                t->dropped_bytes += n;
                return;
        }
        *e = (TraceEvent) {
                .usec = now_usec() - t->start_usec,
                .kind = kind,
                .n_total = n,
                .n = keep,
                .note = (char *) e->data + keep,
        };
        if (keep > 0)
                memcpy(e->data, buf, keep);
        memcpy(e->note, note, len + 1);

        /* the head closes before the event that would take it over its share */
        if (!t->head_end && t->first && t->head_size + event_cost(e) > t->max_bytes / HEAD_SHARE)
                t->head_end = t->last;
        if (!t->head_end)
                t->head_size += event_cost(e);

        if (t->last)
                t->last->next = e;
        else
                t->first = e;
        t->last = e;
        t->size += event_cost(e);
        t->n_events++;
        while (t->size > t->max_bytes && drop_one(t))
                ;
}

/* ---- the decoder ---- */

static void appendf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void appendf(char *buf, size_t size, const char *fmt, ...) {
        size_t k = strlen(buf);
        va_list ap;

        if (k + 1 >= size)
                return;
        if (k > 0 && k + 2 < size) {
                memcpy(buf + k, ", ", 3);
                k += 2;
        }
        va_start(ap, fmt);
        vsnprintf(buf + k, size - k, fmt, ap);
        va_end(ap);
}

static uint8_t step_of(const Decoder *d) {
        return d->cmd == CMD_NONE ? S_END : d->script[d->step];
}

static void enter_step(Decoder *d) {
        d->have_count = false;
        d->want = d->total = 0;
        switch (step_of(d)) {
        case S_FIXED3:
                d->want = d->total = 3;
                break;
        case S_RDATA:
                d->want = d->total = d->length;
                break;
        case S_END:
                d->cmd = CMD_NONE;
                break;
        }
}

static void advance(Decoder *d) {
        d->step++;
        enter_step(d);
}

static void decoder_reset(Decoder *d) {
        d->cmd = CMD_NONE;
        d->awaiting_first_ack = false;
}

static void start(Decoder *d, int cmd, const char *name, const uint8_t *script, bool even) {
        *d = (Decoder) {
                .cmd = cmd,
                .name = name,
                .script = script,
                .awaiting_first_ack = cmd != CMD_SYNC,
                .even = even,
        };
        enter_step(d);
}

static bool even_ones(uint8_t b) {
        return __builtin_popcount(b) % 2 == 0;
}

static void count_pair(Trace *t, bool acked) {
        Decoder *d = &t->dec;

        if (!d->awaiting_first_ack)
                return;
        d->awaiting_first_ack = false;
        if (d->even)
                (*(acked ? &t->stats.even_acked : &t->stats.even_failed))++;
        else
                (*(acked ? &t->stats.odd_acked : &t->stats.odd_failed))++;
}

static uint32_t be32(const uint8_t *b) {
        return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
}

static uint8_t xor8(const uint8_t *b, size_t n) {
        uint8_t x = 0;

        for (size_t i = 0; i < n; i++)
                x ^= b[i];
        return x;
}

/* Bytes the host sends: the next step of the command in flight, else a new sync or
 * command, else bytes outside the protocol's framing (recovery filler). */
static void decode_tx(Trace *t, const uint8_t *b, size_t n, char *note, size_t size) {
        Decoder *d = &t->dec;

        switch (step_of(d)) {
        case S_ADDR:
                if (n != 5)
                        break;
                d->address = be32(b);
                snprintf(note, size, "address 0x%08x%s", d->address, xor8(b, 5) ? " (bad checksum)" : "");
                advance(d);
                return;
        case S_LEN:
                if (n != 2)
                        break;
                d->length = (size_t) b[0] + 1;
                snprintf(note, size, "%s 0x%08x %zu bytes", d->name, d->address, d->length);
                advance(d);
                return;
        case S_WDATA:
                if (n < 3 || n != (size_t) b[0] + 3)
                        break;
                snprintf(note, size, "%s 0x%08x %zu bytes", d->name, d->address, n - 2);
                advance(d);
                return;
        case S_ERASE:
                if (n == 2 && b[0] == 0xFF)
                        snprintf(note, size, "mass erase");
                else if (n >= 3 && n == (size_t) b[0] + 3)
                        snprintf(note, size, "%zu pages from %u", n - 2, b[1]);
                else
                        break;
                advance(d);
                return;
        case S_XERASE: {
                size_t k = n >= 2 ? ((size_t) b[0] << 8 | b[1]) : 0;

                if (n == 3 && b[0] == 0xFF)
                        snprintf(note, size, "%s", b[1] == 0xFF ? "mass erase" : "bank erase");
                else if (n >= 5 && n == 2 * (k + 1) + 3)
                        snprintf(note, size, "%zu pages from %u", k + 1, (unsigned) b[2] << 8 | b[3]);
                else
                        break;
                advance(d);
                return;
        }
        case S_WPLIST:
                if (n < 3 || n != (size_t) b[0] + 3)
                        break;
                snprintf(note, size, "%zu sectors", n - 2);
                advance(d);
                return;
        }

        /* The exchange in flight ends here: the host moved on. */
        if (n == 1 && b[0] == AN3155_SYNC) {
                start(d, CMD_SYNC, "sync", sync_script, false);
                t->stats.syncs_sent++;
                snprintf(note, size, "sync");
                return;
        }
        if (n == 2 && (b[0] ^ b[1]) == 0xFF) {
                for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                        if (commands[i].cmd == b[0]) {
                                start(d, b[0], commands[i].name, commands[i].script, even_ones(b[0]));
                                snprintf(note, size, "%s", commands[i].name);
                                return;
                        }
                start(d, b[0], "command", unknown_script, even_ones(b[0]));
                snprintf(note, size, "command 0x%02x", b[0]);
                return;
        }
        decoder_reset(d);
        snprintf(note, size, "%zu bytes outside a command", n);
}

/* The payload of a counted or fixed reply, described when it came in one piece. */
static void describe_payload(const Decoder *d, const uint8_t *b, size_t k, char *note, size_t size) {
        if (k != d->total) {
                appendf(note, size, "%zu of %zu bytes", k, d->total);
                return;
        }
        if (d->cmd == AN3155_CMD_GET && k >= 1)
                appendf(note, size, "version %u.%u, %zu commands", b[0] >> 4, b[0] & 0xF, k - 1);
        else if (d->cmd == AN3155_CMD_GET_ID && k == 2)
                appendf(note, size, "PID 0x%03x", (unsigned) b[0] << 8 | b[1]);
        else if (d->cmd == AN3155_CMD_GET_VERSION && k == 3)
                appendf(note, size, "version %u.%u", b[0] >> 4, b[0] & 0xF);
        else
                appendf(note, size, "data %zu bytes", k);
}

static void decode_rx(Trace *t, const uint8_t *b, size_t n, char *note, size_t size) {
        Decoder *d = &t->dec;
        size_t i = 0;

        while (i < n) {
                switch (step_of(d)) {
                case S_ACK: {
                        uint8_t c = b[i++];
                        bool sync = d->cmd == CMD_SYNC;

                        if (c == AN3155_ACK) {
                                appendf(note, size, "ACK");
                                if (sync)
                                        t->stats.syncs_acked++;
                                count_pair(t, true);
                                advance(d);
                        } else {
                                if (c == AN3155_NACK)
                                        appendf(note, size, "%s", sync ? "NACK (a chip synced already)" : "NACK");
                                else
                                        appendf(note, size, "0x%02x: neither ACK nor NACK", c);
                                if (sync && c == AN3155_NACK)
                                        t->stats.syncs_nacked++;
                                count_pair(t, false);
                                decoder_reset(d);
                        }
                        break;
                }
                case S_COUNTED:
                        if (!d->have_count) {
                                d->have_count = true;
                                d->want = d->total = (size_t) b[i] + 1;
                                appendf(note, size, "%u more", b[i]);
                                i++;
                                break;
                        }
                        __attribute__((fallthrough));
                case S_FIXED3:
                case S_RDATA: {
                        size_t k = MIN(d->want, n - i);

                        if (d->want == d->total)
                                describe_payload(d, b + i, k, note, size);
                        else
                                appendf(note, size, "%zu more bytes", k);
                        d->want -= k;
                        i += k;
                        if (d->want == 0)
                                advance(d);
                        break;
                }
                default:
                        appendf(note, size, n - i == 1 ? "unexpected byte" : "%zu unexpected bytes", n - i);
                        i = n;
                }
        }
}

void trace_link_event(void *userdata, LinkEvent ev, const uint8_t *buf, size_t n, int a, int b) {
        Trace *t = userdata;
        char note[NOTE_MAX] = "";

        switch (ev) {
        case LINK_EVENT_TX:
                decode_tx(t, buf, n, note, sizeof note);
                break;
        case LINK_EVENT_RX:
                decode_rx(t, buf, n, note, sizeof note);
                break;
        case LINK_EVENT_TIMEOUT:
                if (t->dec.cmd != CMD_NONE)
                        snprintf(note, sizeof note, "no reply to %s before the deadline", t->dec.name);
                else
                        snprintf(note, sizeof note, "nothing before the deadline");
                count_pair(t, false);
                decoder_reset(&t->dec);
                break;
        case LINK_EVENT_GONE:
                snprintf(note, sizeof note, "the port went away");
                break;
        case LINK_EVENT_BAUD:
                snprintf(note, sizeof note, "baud %d", a);
                break;
        case LINK_EVENT_LINES:
                if (a >= 0)
                        appendf(note, sizeof note, "DTR=%d", a);
                if (b >= 0)
                        appendf(note, sizeof note, "RTS=%d", b);
                break;
        case LINK_EVENT_BREAK:
                snprintf(note, sizeof note, "break %s", a ? "on" : "off");
                break;
        case LINK_EVENT_FLUSH:
                /* what was in flight is over: the host starts again */
                snprintf(note, sizeof note, "input discarded");
                decoder_reset(&t->dec);
                break;
        default:
                return;
        }
        record(t, (uint8_t) ev, buf, n, note);
}

void trace_note(Trace *t, const char *note) {
        if (t && note)
                record(t, TRACE_KIND_NOTE, NULL, 0, note);
}

/* ---- rendering ---- */

typedef struct Out {
        char *buf;
        size_t len, size;
        bool oom;
} Out;

static void out_printf(Out *o, const char *fmt, ...) _printf_(2, 3);
static void out_printf(Out *o, const char *fmt, ...) {
        va_list ap;
        int k;

        if (o->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                k = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->size - o->len : 0, fmt, ap);
                va_end(ap);
                if (k < 0) {
                        o->oom = true;
                        return;
                }
                if (o->buf && o->len + (size_t) k < o->size) {
                        o->len += (size_t) k;
                        return;
                }
                size_t nsize = MAX(o->size * 2, o->len + (size_t) k + 4096);
                char *p = realloc(o->buf, nsize);
                if (!p) {
                        o->oom = true;
                        return;
                }
                o->buf = p;
                o->size = nsize;
        }
}

static int out_finish(Out *o, char **ret) {
        if (!o->buf)
                out_printf(o, "%s", "");
        if (o->oom) {
                free(o->buf);
                return -ENOMEM;
        }
        *ret = o->buf;
        return 0;
}

static const char *const kind_names[] = {
        [LINK_EVENT_TX] = "tx",
        [LINK_EVENT_RX] = "rx",
        [LINK_EVENT_TIMEOUT] = "timeout",
        [LINK_EVENT_GONE] = "gone",
        [LINK_EVENT_BAUD] = "line",
        [LINK_EVENT_LINES] = "line",
        [LINK_EVENT_BREAK] = "line",
        [LINK_EVENT_FLUSH] = "line",
        [TRACE_KIND_NOTE] = "note",
};

static char kind_mark(uint8_t kind) {
        switch (kind) {
        case LINK_EVENT_TX:
                return '>';
        case LINK_EVENT_RX:
                return '<';
        case LINK_EVENT_TIMEOUT:
        case LINK_EVENT_GONE:
                return '!';
        case TRACE_KIND_NOTE:
                return '#';
        default:
                return '=';
        }
}

#define BYTES_PER_LINE 16u

static void text_event(Out *o, const TraceEvent *e) {
        char hex[BYTES_PER_LINE * 3 + 1] = "";
        size_t first = MIN(e->n, (size_t) BYTES_PER_LINE);

        for (size_t i = 0; i < first; i++)
                snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", e->data[i]);
        out_printf(o, "+%llu.%06llu %c %-*s %s\n", (unsigned long long) (e->usec / USEC_PER_SEC),
                   (unsigned long long) (e->usec % USEC_PER_SEC), kind_mark(e->kind), (int) sizeof hex - 1, hex,
                   e->note);
        for (size_t i = first; i < e->n; i += BYTES_PER_LINE) {
                hex[0] = '\0';
                for (size_t k = i; k < e->n && k < i + BYTES_PER_LINE; k++)
                        snprintf(hex + 3 * (k - i), sizeof hex - 3 * (k - i), "%02x ", e->data[k]);
                out_printf(o, "%*s%s\n", 12, "", hex);
        }
        if (e->n < e->n_total)
                out_printf(o, "%*s(%zu bytes, the first %zu shown)\n", 12, "", e->n_total, e->n);
}

int trace_to_text(const Trace *t, char **ret) {
        Out o = {};

        out_printf(&o, "# stm32ispd wire trace: %s%s%s\n", t->port ?: "", t->op ? ", " : "", t->op ?: "");
        out_printf(&o, "# started %s by stm32ispd %s\n", t->started, PACKAGE_VERSION);
        out_printf(&o, "# seconds since the job started; > host to chip, < chip to host, = the line, "
                       "! a wait that ended, # the job\n");
        for (const TraceEvent *e = t->first; e; e = e->next) {
                text_event(&o, e);
                if (e == t->head_end && t->n_dropped > 0)
                        out_printf(&o, "# ... %zu events (%zu bytes on the wire) dropped to keep the trace "
                                       "under %zu bytes ...\n",
                                   t->n_dropped, t->dropped_bytes, t->max_bytes);
        }
        return out_finish(&o, ret);
}

static void json_string(Out *o, const char *s) {
        out_printf(o, "\"");
        for (; s && *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (c == '"' || c == '\\')
                        out_printf(o, "\\%c", c);
                else if (c < 0x20)
                        out_printf(o, "\\u%04x", c);
                else
                        out_printf(o, "%c", c);
        }
        out_printf(o, "\"");
}

int trace_to_json(const Trace *t, char **ret) {
        Out o = {};

        out_printf(&o, "{\"port\":");
        json_string(&o, t->port);
        out_printf(&o, ",\"op\":");
        json_string(&o, t->op);
        out_printf(&o, ",\"started\":\"%s\",\"version\":\"%s\"", t->started, PACKAGE_VERSION);
        out_printf(&o, ",\"dropped_events\":%zu,\"dropped_bytes\":%zu,\"events\":[", t->n_dropped, t->dropped_bytes);
        for (const TraceEvent *e = t->first; e; e = e->next) {
                out_printf(&o, "%s{\"t_usec\":%llu,\"dir\":\"%s\",\"bytes\":\"", e == t->first ? "" : ",",
                           (unsigned long long) e->usec, kind_names[e->kind]);
                for (size_t i = 0; i < e->n; i++)
                        out_printf(&o, "%02x", e->data[i]);
                out_printf(&o, "\",\"length\":%zu,\"note\":", e->n_total);
                json_string(&o, e->note);
                out_printf(&o, "}");
                if (e == t->head_end && t->n_dropped > 0)
                        out_printf(&o, ",{\"dir\":\"dropped\",\"events\":%zu}", t->n_dropped);
        }
        out_printf(&o, "]}\n");
        return out_finish(&o, ret);
}
