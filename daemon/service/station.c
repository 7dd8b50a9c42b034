/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A station slot's state machine (station.h has the rules). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "station.h"

void station_init(Station *s) {
        *s = (Station) { .state = STATION_WAITING };
}

unsigned station_poll_syncs(const Station *s) {
        return s->synced ? 2 : 1;
}

static bool same_board(const Station *s, const uint8_t *uid) {
        if (!s->have_board)
                return false;
        if (!uid || !s->board_has_uid)
                /* Two chips without a readable UID cannot be told apart: the one
                 * that is still there is taken for the same board (no surprise write). */
                return !uid && !s->board_has_uid;
        return memcmp(s->uid, uid, STATION_UID_SIZE) == 0;
}

bool station_polled(Station *s, int error, const uint8_t *uid) {
        if (error < 0) {
                /* Silence, or bytes that were no bootloader (an application's output). */
                s->synced = false;
                if (s->silent < 2)
                        s->silent++;
                if (s->silent >= 2 && s->state != STATION_FLASHING) {
                        /* empty for one whole interval: the next board is a new one */
                        s->have_board = false;
                        s->attempts = 0;
                        s->state = STATION_WAITING;
                        s->reason[0] = 0;
                }
                return false;
        }

        s->silent = 0;
        s->synced = true;               /* the probe left it waiting for a command */
        if (same_board(s, uid)) {
                if (s->state == STATION_FAILED && s->attempts < STATION_ATTEMPTS_MAX)
                        return true;    /* the one automatic retry */
                return false;           /* passed, or failed twice: left alone */
        }
        s->have_board = true;
        s->board_has_uid = uid != NULL;
        if (uid)
                memcpy(s->uid, uid, STATION_UID_SIZE);
        else
                memset(s->uid, 0, STATION_UID_SIZE);
        s->attempts = 0;
        return true;
}

void station_flash_started(Station *s) {
        s->state = STATION_FLASHING;
        s->percent = 0;
        s->reason[0] = 0;
        s->attempts++;
}

void station_flash_progress(Station *s, unsigned percent) {
        if (s->state == STATION_FLASHING)
                s->percent = MIN(percent, 100u);
}

void station_flash_done(Station *s, int error, const char *reason) {
        s->state = error < 0 ? STATION_FAILED : STATION_PASSED;
        s->percent = error < 0 ? s->percent : 100;
        snprintf(s->reason, sizeof s->reason, "%s", error < 0 ? (reason && *reason ? reason : strerror(-error)) : "");
        /* A chip the flash left in the bootloader waits for a command; one that Go or an
         * exit sequence started runs its application: two 0x7F cost that nothing. */
        s->synced = true;
        s->silent = 0;
}

static const char *const state_names[_STATION_STATE_MAX] = {
        [STATION_WAITING] = "waiting",
        [STATION_FLASHING] = "flashing",
        [STATION_PASSED] = "passed",
        [STATION_FAILED] = "failed",
};

const char *station_state_to_string(StationState s) {
        return s < _STATION_STATE_MAX ? state_names[s] : NULL;
}

const char *station_describe(const Station *s, char *buf, size_t size) {
        switch (s->state) {
        case STATION_FLASHING:
                snprintf(buf, size, "flashing %u%%", s->percent);
                break;
        case STATION_PASSED:
                snprintf(buf, size, "PASS — take the board out");
                break;
        case STATION_FAILED:
                snprintf(buf, size, "FAIL: %s — take the board out", s->reason);
                break;
        default:
                snprintf(buf, size, "waiting for a board");
        }
        return buf;
}
