/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entry/exit sequences (daemon/core/entry.c): the syntax entry_validate() takes and
 * refuses, and what entry_run() does on a link, step by step. The link is a fake that
 * records each line change and break, and every clock_nanosleep() of the program: each
 * pause the sequence asks for (then sleeps it), so the order and the lengths are
 * checked exactly and the wall clock only loosely (tests/rig/fake-link.c). The pauses
 * a worker's Cancel ends: tests/daemon/test-worker.c. */

#include <errno.h>
#include <stdio.h>

#include "entry.h"
#include "fake-link.h"
#include "test-util.h"

/* Runs seq's entry (or exit) part on a fresh fake link; returns its result. */
static int run(const char *seq, bool exit_seq, unsigned fail_at, int fail_error) {
        FakeLink f = { .link.ops = &fake_ops, .fail_at = fail_at, .fail_error = fail_error };

        events_reset();
        return entry_run(&f.link, seq, exit_seq, NULL, NULL);
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
                if (entry_validate(good[i]) != 0)
                        fprintf(stderr, "refused: \"%s\"\n", good[i]);
                ASSERT_OK(entry_validate(good[i]));
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
                if (entry_validate(bad[i]) != -EINVAL)
                        fprintf(stderr, "taken: \"%s\"\n", bad[i]);
                ASSERT_ERR(entry_validate(bad[i]), EINVAL);
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
                ASSERT_OK(entry_run(&f.link, "brk,10ms,dtr", false, NULL, NULL));
                ASSERT_STREQ(events, "10 D1 100");
        }
        ASSERT_ERR(entry_run(NULL, "dtr", false, NULL, NULL), EINVAL);
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

int main(void) {
        TEST(test_valid);
        TEST(test_invalid);
        TEST(test_steps);
        TEST(test_link_errors);
        TEST(test_wall_clock);
        return 0;
}
