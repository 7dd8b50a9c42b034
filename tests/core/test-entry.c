/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entry/exit sequences (daemon/worker.c): the syntax job_entry_validate() takes and
 * refuses, and what job_entry_run() does on a link, step by step. The link is a fake
 * that records each line change and break; the test's clock_nanosleep() records each
 * pause the sequence asks for (then sleeps it), so the order and the lengths are
 * checked exactly and the wall clock only loosely. With a worker (worker_entry_run())
 * the pauses wait on the worker's cancel instead, so there only the lines, the breaks
 * and the wall clock are checked: a Cancel from another thread ends a 5 s pause. */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "link.h"
#include "worker.h"
#include "test-util.h"

/* ---- what happened, as text: "D1R1" lines, "B+"/"B-" break, "100" a pause in ms ---- */

static char events[1024];
static uint64_t event_usec[64];
static size_t n_events;

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

static void events_reset(void) {
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

typedef struct FakeLink {
        Link link;
        unsigned calls;         /* set_lines + set_break calls so far */
        unsigned fail_at;       /* that call (1-based) fails with fail_error; 0: none */
        int fail_error;
        unsigned cancel_at;     /* after that call, a byte to cancel_fd; 0: none */
        int cancel_fd;
} FakeLink;

static int fake_fail(FakeLink *f) {
        f->calls++;
        if (f->cancel_at == f->calls)
                ASSERT_TRUE(write(f->cancel_fd, "c", 1) == 1);
        return f->fail_at == f->calls ? f->fail_error : 0;
}

static int fake_set_lines(Link *l, int dtr, int rts) {
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

static int fake_set_break(Link *l, bool on) {
        int r = fake_fail((FakeLink *) l);

        if (r < 0)
                return r;
        event("B%c", on ? '+' : '-');
        return 0;
}

static const LinkOps fake_ops = {
        .set_lines = fake_set_lines,
        .set_break = fake_set_break,
};

/* Runs seq's entry (or exit) part on a fresh fake link; returns its result. */
static int run(const char *seq, bool exit_seq, unsigned fail_at, int fail_error) {
        FakeLink f = { .link.ops = &fake_ops, .fail_at = fail_at, .fail_error = fail_error };

        events_reset();
        return job_entry_run(&f.link, seq, exit_seq);
}

static void test_valid(void) {
        static const char *const good[] = {
                /* what was valid before stays valid */
                "dtr", "rts", "-dtr", "-rts", "rts&dtr,-dtr", "dtr&rts,-rts:-dtr&rts,-rts",
                "-rts&dtr,-dtr:rts&dtr,-dtr", "dtr,", "", ":-dtr", "dtr&-dtr",
                "dtr-nrst,rts-boot0", "rts-nrst,dtr-boot0", "dtr-nrst,rts-nboot0", "rts-nrst,dtr-nboot0",
                /* breaks and delays */
                "brk", "brk,20ms,rts&dtr,-dtr", "rts&dtr,-dtr,50ms", "dtr,200ms,-dtr", "50ms,dtr",
                "dtr,1ms", "dtr,5000ms", "dtr,5000ms,4900ms", "rts&brk", "brk&dtr,-dtr:brk,10ms,rts", "dtr,10ms,10ms",
                "1ms", "rts&dtr,-dtr:-rts&dtr,20ms,-dtr,300ms",
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (job_entry_validate(good[i]) != 0)
                        fprintf(stderr, "refused: \"%s\"\n", good[i]);
                ASSERT_OK(job_entry_validate(good[i]));
        }
}

static void test_invalid(void) {
        static const char *const bad[] = {
                "bogus", "dtr,bogus", "dtr,,rts", "dtr:rts:dtr", "dtrx", "dtr rts", "DTR", "dtr&",
                "&dtr", ",dtr", "dtr-nrst,rts-bogus",
                "-brk", "brk&-brk", "brkx", "-brk,10ms",
                "0ms", "5001ms", "99999999999999999999ms", "10", "10s", "ms", "10ms&dtr", "dtr&10ms",
                "10 ms", "-10ms", "10msx", "10mss", "dtr:10ms&brk", "10ms,,dtr", "dtr,10m", "+10ms",
                /* more than 10 s of pauses in one part */
                "dtr,5000ms,5000ms,1ms", "5000ms,dtr,5000ms,rts,5000ms", "dtr:5000ms,5000ms,5000ms",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (job_entry_validate(bad[i]) != -EINVAL)
                        fprintf(stderr, "taken: \"%s\"\n", bad[i]);
                ASSERT_ERR(job_entry_validate(bad[i]), EINVAL);
        }
        /* a refused sequence runs nothing */
        ASSERT_ERR(run("dtr,rts,-brk", false, 0, 0), EINVAL);
        ASSERT_STREQ(events, "");
}

static void test_steps(void) {
        /* the default pause follows every step, the last one too */
        ASSERT_OK(run("rts&dtr,-dtr", false, 0, 0));
        ASSERT_STREQ(events, "D1R1 100 D0 100");
        /* presets: entry, and exit after ':' */
        ASSERT_OK(run("dtr-nrst,rts-boot0", false, 0, 0));
        ASSERT_STREQ(events, "D1R1 100 D0 100");
        ASSERT_OK(run("dtr-nrst,rts-boot0", true, 0, 0));
        ASSERT_STREQ(events, "D1R0 100 D0 100");
        ASSERT_OK(run("rts-nrst,dtr-nboot0", true, 0, 0));
        ASSERT_STREQ(events, "D1R1 100 R0 100");
        /* no exit part: nothing */
        ASSERT_OK(run("rts&dtr,-dtr", true, 0, 0));
        ASSERT_STREQ(events, "");

        /* a delay replaces the pause after the step before it */
        ASSERT_OK(run("dtr,200ms,-dtr", false, 0, 0));
        ASSERT_STREQ(events, "D1 200 D0 100");
        ASSERT_OK(run("rts&dtr,-dtr,50ms", false, 0, 0));
        ASSERT_STREQ(events, "D1R1 100 D0 50");
        /* delays in a row add up; a leading one waits before the first step */
        ASSERT_OK(run("30ms,dtr,10ms,15ms", false, 0, 0));
        ASSERT_STREQ(events, "30 D1 25");

        /* a break lasts its step: on, the pause, off; then the next step */
        ASSERT_OK(run("brk,20ms,rts&dtr,-dtr", false, 0, 0));
        ASSERT_STREQ(events, "B+ 20 B- D1R1 100 D0 100");
        /* with lines in the same step: lines first, then the break */
        ASSERT_OK(run("rts&brk,-rts", false, 0, 0));
        ASSERT_STREQ(events, "R1 B+ 100 B- R0 100");
        /* a break as the last step is still ended */
        ASSERT_OK(run("dtr:brk,5ms", true, 0, 0));
        ASSERT_STREQ(events, "B+ 5 B-");
}

static void test_link_errors(void) {
        /* a failing line change ends the sequence with its error */
        ASSERT_ERR(run("rts&dtr,-dtr", false, 2, -ENODEV), ENODEV);
        ASSERT_STREQ(events, "D1R1 100");
        /* a break that cannot start: nothing to end */
        ASSERT_ERR(run("brk,dtr", false, 1, -EIO), EIO);
        ASSERT_STREQ(events, "");
        /* a break that cannot end: reported, nothing after it */
        ASSERT_ERR(run("brk,10ms,dtr", false, 2, -ENODEV), ENODEV);
        ASSERT_STREQ(events, "B+ 10");
        /* a link without breaks (fd, tcp): the break steps do nothing, pauses still run */
        {
                static const LinkOps ops = { .set_lines = fake_set_lines };
                FakeLink f = { .link.ops = &ops };

                events_reset();
                ASSERT_OK(job_entry_run(&f.link, "brk,10ms,dtr", false));
                ASSERT_STREQ(events, "10 D1 100");
        }
        ASSERT_ERR(job_entry_run(NULL, "dtr", false), EINVAL);
}

/* The pauses are real time: at least as long as asked, within a generous bound. */
static void test_wall_clock(void) {
        uint64_t t0 = now_usec(), t1;

        ASSERT_OK(run("dtr,200ms,-dtr,20ms", false, 0, 0));
        t1 = now_usec();
        ASSERT_STREQ(events, "D1 200 D0 20");
        /* events: D1, 200, D0, 20 */
        ASSERT_TRUE(event_usec[2] - event_usec[0] >= 200 * USEC_PER_MSEC);
        ASSERT_TRUE(t1 - event_usec[2] >= 20 * USEC_PER_MSEC);
        ASSERT_TRUE(t1 - t0 >= 220 * USEC_PER_MSEC);
        ASSERT_TRUE(t1 - t0 < 10 * USEC_PER_SEC);
}

/* ---- pauses a worker's cancel ends ---- */

/* Another thread, as the main loop is for a port: it calls worker_cancel() when the
 * fake link says so (a byte on the pipe). */
typedef struct Canceller {
        Worker *w;
        int pipe[2];
        pthread_t thread;
} Canceller;

static void *canceller_main(void *userdata) {
        Canceller *c = userdata;
        char b;

        if (read(c->pipe[0], &b, 1) == 1)
                worker_cancel(c->w);
        return NULL;
}

static void canceller_start(Canceller *c, Worker *w) {
        c->w = w;
        ASSERT_OK(pipe(c->pipe));
        ASSERT_OK(-pthread_create(&c->thread, NULL, canceller_main, c));
}

/* Joins the thread; without a byte sent it ends at the pipe's EOF, cancelling nothing. */
static void canceller_stop(Canceller *c) {
        close(c->pipe[1]);
        ASSERT_OK(-pthread_join(c->thread, NULL));
        close(c->pipe[0]);
}

/* Runs seq on a fresh fake link with worker w; another thread cancels after call
 * cancel_at (0: never). */
static int run_cancel(Worker *w, const char *seq, bool exit_seq, unsigned cancel_at) {
        Canceller c;
        FakeLink f = { .link.ops = &fake_ops, .cancel_at = cancel_at };
        int r;

        canceller_start(&c, w);
        f.cancel_fd = c.pipe[1];
        events_reset();
        r = worker_entry_run(w, &f.link, seq, exit_seq);
        canceller_stop(&c);
        return r;
}

/* A port's worker that never opens its device here, but for the one job submitted. */
static Worker *test_worker(void) {
        Worker *w = NULL;

        ASSERT_OK(worker_new("/nonexistent/ttySTM32", false, &w));
        return w;
}

static void test_cancel_pause(void) {
        _cleanup_(worker_freep) Worker *w = test_worker();
        uint64_t t0;

        /* not cancelled: the pauses last as asked, steps in order */
        t0 = now_usec();
        ASSERT_OK(run_cancel(w, "dtr,200ms,-dtr,20ms", false, 0));
        ASSERT_STREQ(events, "D1 D0");
        ASSERT_TRUE(event_usec[1] - event_usec[0] >= 200 * USEC_PER_MSEC);
        ASSERT_TRUE(now_usec() - event_usec[1] >= 20 * USEC_PER_MSEC);
        ASSERT_TRUE(now_usec() - t0 < 10 * USEC_PER_SEC);

        /* a Cancel during a 5 s pause: over at once, the next step never runs (the
         * lines stay as they were: the job closing the port drops them) */
        t0 = now_usec();
        ASSERT_ERR(run_cancel(w, "rts&dtr,5000ms,-dtr", false, 1), ECANCELED);
        ASSERT_STREQ(events, "D1R1");
        ASSERT_TRUE(now_usec() - t0 < 4 * USEC_PER_SEC);
}

static void test_cancel_break(void) {
        _cleanup_(worker_freep) Worker *w = test_worker();
        uint64_t t0 = now_usec();

        /* a break is ended before the cancel is reported */
        ASSERT_ERR(run_cancel(w, "brk,5000ms,dtr", false, 1), ECANCELED);
        ASSERT_STREQ(events, "B+ B-");
        ASSERT_TRUE(now_usec() - t0 < 4 * USEC_PER_SEC);
}

static void test_cancel_exit(void) {
        _cleanup_(worker_freep) Worker *w1 = test_worker(), *w2 = test_worker();
        uint64_t t0 = now_usec();

        /* the exit part's pauses too, the last one included (a cancel lasts until the
         * next job: one worker each) */
        ASSERT_ERR(run_cancel(w1, "dtr:rts,5000ms,-rts", true, 1), ECANCELED);
        ASSERT_STREQ(events, "R1");
        ASSERT_ERR(run_cancel(w2, "dtr:rts,-rts,5000ms", true, 2), ECANCELED);
        ASSERT_STREQ(events, "R1 R0");
        ASSERT_TRUE(now_usec() - t0 < 4 * USEC_PER_SEC);
}

/* Waits for the worker's finished job (the eventfd, not a sleep). */
static Job *wait_done(Worker *w) {
        for (;;) {
                struct pollfd p = { .fd = worker_get_fd(w), .events = POLLIN };
                WorkerEvent *e;

                ASSERT_TRUE(poll(&p, 1, 30 * 1000) == 1);
                while ((e = worker_pop_event(w))) {
                        if (e->type == WORKER_EVENT_DONE) {
                                Job *j = TAKE_PTR(e->job);

                                worker_event_free(e);
                                return j;
                        }
                        worker_event_free(e);
                }
        }
}

static void test_cancel_before(void) {
        _cleanup_(worker_freep) Worker *w = test_worker();
        _cleanup_(job_freep) Job *j = NULL;

        /* a cancel that came first: no line is touched, no pause waited */
        worker_cancel(w);
        ASSERT_ERR(run_cancel(w, "rts&dtr,5000ms,-dtr", false, 0), ECANCELED);
        ASSERT_STREQ(events, "");
        /* without a worker nothing cancels */
        ASSERT_OK(run("dtr,1ms", false, 0, 0));
        ASSERT_STREQ(events, "D1 1");

        /* the next job clears it: its sequence runs whole (the job itself fails: its
         * device does not exist) */
        j = job_new(JOB_PROBE);
        ASSERT_TRUE(j);
        ASSERT_OK(worker_submit(w, TAKE_PTR(j)));
        j = wait_done(w);
        ASSERT_ERR(j->error, ENODEV);
        ASSERT_OK(run_cancel(w, "rts&dtr,10ms,-dtr", false, 0));
        ASSERT_STREQ(events, "D1R1 D0");
}

int main(void) {
        TEST(test_valid);
        TEST(test_invalid);
        TEST(test_steps);
        TEST(test_link_errors);
        TEST(test_wall_clock);
        TEST(test_cancel_pause);
        TEST(test_cancel_break);
        TEST(test_cancel_exit);
        TEST(test_cancel_before);
        return 0;
}
