/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recording fake link of the entry-sequence tests (fake-link.h). */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fake-link.h"
#include "test-util.h"

/* ---- what happened, as text: "D1R1" lines, "B+"/"B-" break, "100" a pause in ms ---- */

char events[1024];
uint64_t event_usec[64];
size_t n_events;

static void event(const char *fmt, ...) _printf_(1, 2);
static void event(const char *fmt, ...) {
        size_t n = strlen(events);
        va_list ap;

        if (n > 0 && n < sizeof(events) - 1)
                events[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(events + n, sizeof(events) - n, fmt, ap);
        va_end(ap);
        if (n_events < ELEMENTSOF(event_usec))
                event_usec[n_events] = now_usec();
        n_events++;
}

void events_reset(void) {
        events[0] = 0;
        n_events = 0;
}

/* Every sleep in this program is a sequence's pause (sleep_usec() in macro.h). */
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
        uint64_t usec = (uint64_t) req->tv_sec * USEC_PER_SEC + (uint64_t) req->tv_nsec / 1000;

        if (usec % USEC_PER_MSEC == 0)
                event("%" PRIu64, usec / USEC_PER_MSEC);
        else
                event("%" PRIu64 "us", usec);
        if (syscall(SYS_clock_nanosleep, clock, flags, req, rem) < 0)
                return errno;
        return 0;
}

/* ---- a fake link: records, and fails on request ---- */

static int fake_fail(FakeLink *f) {
        f->calls++;
        if (f->cancel_at == f->calls)
                ASSERT_TRUE(write(f->cancel_fd, "c", 1) == 1);
        return f->fail_at == f->calls ? f->fail_error : 0;
}

int fake_set_lines(Link *l, int dtr, int rts) {
        FakeLink *f = (FakeLink *) l;
        char buf[16] = "";
        int r = fake_fail(f);

        if (r < 0)
                return r;
        if (dtr >= 0)
                snprintf(buf, sizeof(buf), "D%d", dtr);
        if (rts >= 0)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "R%d", rts);
        event("%s", buf);
        return 0;
}

int fake_set_break(Link *l, bool on) {
        int r = fake_fail((FakeLink *) l);

        if (r < 0)
                return r;
        event("B%c", on ? '+' : '-');
        return 0;
}

const LinkOps fake_ops = {
        .set_lines = fake_set_lines,
        .set_break = fake_set_break,
};
