/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The worker (daemon/service/worker.c): its Cancel ends a pause of an entry or exit
 * sequence at once, a break ended first; a cancel that came first stops a sequence
 * before its first step, and the next job clears it. The pauses wait on the worker's
 * cancel, so only the lines, the breaks (tests/rig/fake-link.c) and the wall clock are
 * checked: a Cancel from another thread ends a 5 s pause. */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "fake-link.h"
#include "test-util.h"
#include "worker.h"

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
        r = entry_run(&f.link, seq, exit_seq, worker_entry_pause, w);
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

        /* a Cancel during a 5 s pause: over at once, the next step never runs; both
         * lines drop together (the port's close drops nothing: HUPCL is off) */
        t0 = now_usec();
        ASSERT_ERR(run_cancel(w, "rts&dtr,5000ms,-dtr", false, 1), ECANCELED);
        ASSERT_STREQ(events, "D1R1 D0R0");
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
        ASSERT_STREQ(events, "R1 D0R0");
        ASSERT_ERR(run_cancel(w2, "dtr:rts,-rts,5000ms", true, 2), ECANCELED);
        ASSERT_STREQ(events, "R1 R0 D0R0");
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
        events_reset();
        ASSERT_OK(entry_run(&(FakeLink) { .link.ops = &fake_ops }.link, "dtr,1ms", false, NULL, NULL));
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
        TEST(test_cancel_pause);
        TEST(test_cancel_break);
        TEST(test_cancel_exit);
        TEST(test_cancel_before);
        return 0;
}
