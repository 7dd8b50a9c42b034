/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The wire trace: a flash against the simulator, traced at the link, reads as the
 * exchange it was (the sync first, each command decoded, the NACK of a refused block);
 * the budget holds while the start and the end of a long job stay; the decoder follows
 * replies that arrive in pieces; the JSON form. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "flasher.h"
#include "sim.h"
#include "test-util.h"
#include "trace.h"

typedef struct Rig {
        Sim *sim;
        int sim_fd;
        Link *link;
        Flasher *f;
        Trace *trace;
} Rig;

static void rig_start(Rig *r, uint16_t pid, size_t max_bytes) {
        An3155Timeouts t;
        int fds[2];

        memset(r, 0, sizeof *r);
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        ASSERT_OK(sim_new(pid, 0, &r->sim));
        r->sim_fd = fds[1];
        ASSERT_OK(sim_start(r->sim, r->sim_fd));
        ASSERT_OK(link_open_fd(fds[0], "sim", &r->link));
        ASSERT_OK(trace_new("sim", "Flash", max_bytes, &r->trace));
        link_set_trace(r->link, trace_link_event, r->trace);
        ASSERT_OK(flasher_new(r->link, &r->f));
        an3155_get_timeouts(flasher_protocol(r->f), &t);
        t.reply_usec = 200 * USEC_PER_MSEC;
        t.write_usec = 500 * USEC_PER_MSEC;
        an3155_set_timeouts(flasher_protocol(r->f), &t);
}

static void rig_stop(Rig *r) {
        r->f = flasher_free(r->f);
        sim_stop(r->sim);
        r->link = link_free(r->link);
        close(r->sim_fd);
        r->sim = sim_free(r->sim);
        r->trace = trace_free(r->trace);
}

static int flash_random(Rig *r, uint32_t size) {
        FlasherFlashOptions o;
        FlasherResult res;
        FlasherChip chip;
        ImageSegment seg;
        Image img;
        uint8_t *d = malloc(size);
        int k;

        ASSERT_TRUE(d);
        for (uint32_t i = 0; i < size; i++)
                d[i] = (uint8_t) (i * 7 + 3);
        seg = (ImageSegment) { .address = 0x08000000, .size = size, .data = d };
        img = (Image) { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        ASSERT_OK(flasher_probe(r->f, &chip));
        k = flasher_flash(r->f, &img, &o, &res);
        free(d);
        return k;
}

/* The line of text that holds needle, NULL if none. */
static const char *line_with(const char *text, const char *needle) {
        const char *p = strstr(text, needle);

        if (!p)
                return NULL;
        while (p > text && p[-1] != '\n')
                p--;
        return p;
}

static void test_flash(void) {
        _cleanup_free_ char *text = NULL, *json = NULL;
        const char *first, *l;
        Rig r;

        rig_start(&r, 0x466, 0);
        ASSERT_OK(flash_random(&r, 1024));
        ASSERT_OK(trace_to_text(r.trace, &text));
        fputs(text, stderr);

        /* the first byte sent is the sync: 0x7F, decoded (after the stale input is
         * discarded) */
        first = strstr(text, "\n+");
        while (first && first[11] != '>')
                first = strstr(first + 1, "\n+");
        ASSERT_TRUE(first++ && strncmp(strstr(first, " > "), " > 7f ", 6) == 0);
        ASSERT_TRUE(strstr(first, " sync\n") < strchr(first, '\n'));
        ASSERT_TRUE(line_with(text, "< 79 ") && strstr(line_with(text, "< 79 "), "ACK"));
        /* each command, with the bytes on the wire */
        ASSERT_TRUE((l = line_with(text, "> 00 ff ")) && strstr(l, "Get\n"));
        ASSERT_TRUE((l = line_with(text, "> 02 fd ")) && strstr(l, "Get ID\n"));
        ASSERT_TRUE(line_with(text, "PID 0x466"));
        ASSERT_TRUE((l = line_with(text, "> 31 ce ")) && strstr(l, "Write Memory\n"));
        ASSERT_TRUE(line_with(text, "address 0x08000000\n"));
        ASSERT_TRUE(line_with(text, "Write Memory 0x08000000 256 bytes\n"));
        ASSERT_TRUE(line_with(text, "Write Memory 0x08000300 256 bytes\n"));
        ASSERT_TRUE(line_with(text, "Read Memory 0x08000300 256 bytes\n"));
        ASSERT_TRUE(line_with(text, "Extended Erase\n"));
        ASSERT_TRUE(line_with(text, "data 256 bytes"));
        ASSERT_EQ(trace_n_dropped(r.trace), 0);
        ASSERT_TRUE(trace_stats(r.trace)->syncs_acked >= 1);
        ASSERT_EQ(trace_stats(r.trace)->even_failed + trace_stats(r.trace)->odd_failed, 0);

        ASSERT_OK(trace_to_json(r.trace, &json));
        ASSERT_TRUE(strncmp(json, "{\"port\":\"sim\",\"op\":\"Flash\"", 26) == 0);
        ASSERT_TRUE(strstr(json, "\"dir\":\"tx\",\"bytes\":\"7f\",\"length\":1,\"note\":\"sync\""));
        ASSERT_TRUE(strstr(json, "\"note\":\"Write Memory 0x08000000 256 bytes\""));
        rig_stop(&r);
}

static void test_nack(void) {
        _cleanup_free_ char *text = NULL;
        const char *w, *n;
        Rig r;

        rig_start(&r, 0x466, 0);
        sim_inject(r.sim, SIM_FAULT_NACK_ALL_WRITES, 0);
        ASSERT_TRUE(flash_random(&r, 1024) < 0);
        ASSERT_OK(trace_to_text(r.trace, &text));
        /* the first block went out and was refused */
        w = line_with(text, "Write Memory 0x08000000 256 bytes\n");
        ASSERT_TRUE(w);
        n = strstr(w, "NACK\n");
        ASSERT_TRUE(n && line_with(n, "< 1f "));
        ASSERT_TRUE(trace_stats(r.trace)->odd_acked > 0);
        rig_stop(&r);
}

/* A long job in a small budget: the start (sync, probe) and the end stay, what fell
 * out between is said, and the size holds. */
static void test_cap(void) {
        _cleanup_free_ char *text = NULL;
        const size_t max = 8192;
        Rig r;

        rig_start(&r, 0x466, max);
        ASSERT_OK(flash_random(&r, 16 * 1024));
        trace_note(r.trace, "the end");
        ASSERT_TRUE(trace_size(r.trace) <= max);
        ASSERT_TRUE(trace_n_dropped(r.trace) > 0);
        ASSERT_OK(trace_to_text(r.trace, &text));
        ASSERT_TRUE(strstr(text, " sync\n"));
        ASSERT_TRUE(strstr(text, "PID 0x466"));
        ASSERT_TRUE(strstr(text, "events (") && strstr(text, "dropped to keep the trace under 8192 bytes"));
        /* the last block's verify is among the latest */
        ASSERT_TRUE(strstr(text, "Read Memory 0x08003f00 256 bytes\n"));
        ASSERT_TRUE(strstr(text, "the end\n"));
        fputs(strstr(text, "dropped to keep"), stderr);
        ASSERT_TRUE(strstr(text, " sync\n") < strstr(text, "dropped to keep"));
        rig_stop(&r);
}

/* Replies in pieces, a timeout, a parity tally (Get is even, Get ID odd). */
static void test_decoder(void) {
        static const uint8_t sync = 0x7F, ack = 0x79, nack = 0x1F;
        static const uint8_t get[] = { 0x00, 0xFF }, get_id[] = { 0x02, 0xFD }, pid[] = { 0x01, 0x04, 0x66 };
        static const uint8_t read[] = { 0x11, 0xEE }, addr[] = { 0x08, 0x00, 0x01, 0x00, 0x09 }, len[] = { 0x0F, 0xF0 };
        uint8_t data[16] = {};
        _cleanup_(trace_freep) Trace *t = NULL;
        _cleanup_free_ char *text = NULL;

        ASSERT_OK(trace_new(NULL, NULL, 0, &t));
        trace_link_event(t, LINK_EVENT_TX, &sync, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, get, 2, 0, 0);
        trace_link_event(t, LINK_EVENT_TIMEOUT, NULL, 0, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, get_id, 2, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, pid, 3, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, read, 2, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, addr, 5, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, len, 2, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &ack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, data, 10, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, data, 6, 0, 0);
        trace_link_event(t, LINK_EVENT_TX, get, 2, 0, 0);
        trace_link_event(t, LINK_EVENT_RX, &nack, 1, 0, 0);
        trace_link_event(t, LINK_EVENT_LINES, NULL, 0, 1, -1);
        ASSERT_OK(trace_to_text(t, &text));
        fputs(text, stderr);
        ASSERT_TRUE(strstr(text, "no reply to Get before the deadline\n"));
        ASSERT_TRUE(strstr(text, "ACK, 1 more, PID 0x466\n") || strstr(text, "1 more, PID 0x466\n"));
        ASSERT_TRUE(strstr(text, "Read Memory 0x08000100 16 bytes\n"));
        ASSERT_TRUE(strstr(text, "10 of 16 bytes\n"));
        ASSERT_TRUE(strstr(text, "6 more bytes\n"));
        ASSERT_TRUE(strstr(text, "= ") && strstr(text, "DTR=1\n"));
        ASSERT_EQ(trace_stats(t)->syncs_acked, 1);
        ASSERT_EQ(trace_stats(t)->even_failed, 2);
        ASSERT_EQ(trace_stats(t)->even_acked, 1);       /* Read Memory: 0x11 has two ones */
        ASSERT_EQ(trace_stats(t)->odd_acked, 1);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_decoder();
        test_flash();
        test_nack();
        test_cap();
        fprintf(stderr, "OK\n");
        return 0;
}
