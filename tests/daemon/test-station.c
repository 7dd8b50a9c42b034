/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A station slot (daemon/service/station.c): which polls flash a board, which leave it
 * alone, how many 0x7F each poll sends, and the operator's words. */

#include <errno.h>

#include "station.h"
#include "test-util.h"

static const uint8_t uid_a[STATION_UID_SIZE] = { 0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const uint8_t uid_b[STATION_UID_SIZE] = { 0xb1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static void flash(Station *s, int error, const char *reason) {
        station_flash_started(s);
        ASSERT_EQ(s->state, STATION_FLASHING);
        station_flash_done(s, error, reason);
}

/* A board left in place is flashed once; the next one in the slot is flashed too. */
static void test_board_left_in_place(void) {
        char buf[STATION_REASON_MAX + 64];
        Station s;

        station_init(&s);
        ASSERT_STREQ(station_describe(&s, buf, sizeof buf), "waiting for a board");
        ASSERT_EQ(station_poll_syncs(&s), 1);
        ASSERT_TRUE(!station_polled(&s, -EHOSTDOWN, NULL));
        ASSERT_EQ(station_poll_syncs(&s), 1);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        station_flash_started(&s);
        station_flash_progress(&s, 43);
        ASSERT_STREQ(station_describe(&s, buf, sizeof buf), "flashing 43%");
        station_flash_done(&s, 0, NULL);
        ASSERT_STREQ(station_state_to_string(s.state), "passed");
        ASSERT_STREQ(station_describe(&s, buf, sizeof buf), "PASS — take the board out");
        /* Still there: a chip left synced says nothing to a lone 0x7F, so two go out. */
        for (int i = 0; i < 5; i++) {
                ASSERT_EQ(station_poll_syncs(&s), 2);
                ASSERT_TRUE(!station_polled(&s, 0, uid_a));
                ASSERT_EQ(s.state, STATION_PASSED);
        }
        /* Another board in its place (swapped between two polls): flashed. */
        ASSERT_TRUE(station_polled(&s, 0, uid_b));
        flash(&s, 0, NULL);
        ASSERT_TRUE(!station_polled(&s, 0, uid_b));
}

/* One silent poll (a chip resetting after its option-byte write) keeps the board;
 * silence for a whole interval (two polls) empties the slot: the same board put back
 * is a new insertion. */
static void test_silence(void) {
        Station s;

        station_init(&s);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        flash(&s, 0, NULL);
        ASSERT_TRUE(!station_polled(&s, -EHOSTDOWN, NULL));
        ASSERT_EQ(s.state, STATION_PASSED);
        ASSERT_EQ(station_poll_syncs(&s), 1);
        ASSERT_TRUE(!station_polled(&s, 0, uid_a));     /* back after one silent poll */
        ASSERT_TRUE(!station_polled(&s, -EHOSTDOWN, NULL));
        ASSERT_TRUE(!station_polled(&s, -EPROTO, NULL)); /* not a bootloader either */
        ASSERT_EQ(s.state, STATION_WAITING);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
}

/* A failed board: one automatic retry, then it waits for another board. */
static void test_failure(void) {
        char buf[STATION_REASON_MAX + 64];
        Station s;

        station_init(&s);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        flash(&s, -EIO, "verify failed at 0x08000100");
        ASSERT_STREQ(station_describe(&s, buf, sizeof buf), "FAIL: verify failed at 0x08000100 — take the board out");
        ASSERT_TRUE(station_polled(&s, 0, uid_a));      /* the retry */
        flash(&s, -EIO, "verify failed again");
        for (int i = 0; i < 3; i++)
                ASSERT_TRUE(!station_polled(&s, 0, uid_a));
        ASSERT_EQ(s.state, STATION_FAILED);
        ASSERT_TRUE(station_polled(&s, 0, uid_b));
        flash(&s, 0, NULL);
        /* A retry that passes is not retried again. */
        station_init(&s);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        flash(&s, -EIO, "x");
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        flash(&s, 0, NULL);
        ASSERT_TRUE(!station_polled(&s, 0, uid_a));
        /* A reason-less failure says what its errno says. */
        station_init(&s);
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
        flash(&s, -ETIMEDOUT, NULL);
        ASSERT_TRUE(strstr(station_describe(&s, buf, sizeof buf), "timed out") != NULL);
}

/* Chips without a readable UID cannot be told apart: one left in place is not flashed
 * again, and a chip with a UID after it is another board. */
static void test_no_uid(void) {
        Station s;

        station_init(&s);
        ASSERT_TRUE(station_polled(&s, 0, NULL));
        flash(&s, 0, NULL);
        ASSERT_TRUE(!station_polled(&s, 0, NULL));
        ASSERT_TRUE(station_polled(&s, 0, uid_a));
}

int main(void) {
        test_board_left_in_place();
        test_silence();
        test_failure();
        test_no_uid();
        return 0;
}
