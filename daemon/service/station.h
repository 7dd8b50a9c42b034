/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One slot of a station whose adapters stay plugged in while boards are swapped
 * (auto-flash detect=poll): what each poll's answer means, and what the operator is
 * told. A pure state machine: the manager feeds it the polls and the flashes it
 * started; it never touches a port. No D-Bus, no clock.
 *
 * The rules (issue 16, and the silicon facts they rest on):
 * - a chip that answered a sync is in the bootloader at that baud: it is probed, and
 *   flashed unless its UID is the one this slot last flashed successfully;
 * - a board that failed is flashed again once automatically, then waits for another
 *   board (another UID, or the slot empty first);
 * - "empty" is no bootloader for one whole interval: two polls in a row, one interval
 *   apart, that met silence. One silent poll is not enough: a C0/G0 resets after its
 *   option-byte write (OBL_LAUNCH, facts §1.4) and a poll that lands in that reset
 *   meets a chip that says nothing for a moment; and a chip left synced takes the
 *   next lone 0x7F as a command byte and says nothing (facts §1.1).
 * - a chip that answered is left waiting for a command, so the next poll sends two
 *   0x7F: the second completes a bad pair and the chip answers NACK (facts §1.1). An
 *   empty slot or one whose last poll met silence gets one 0x7F. Nothing but 0x7F is
 *   ever sent before an answer (facts §4: the first byte after a reset sets the
 *   autobaud). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum StationState {
        STATION_WAITING,                /* no board, or one not yet seen */
        STATION_FLASHING,
        STATION_PASSED,                 /* the board in the slot was flashed */
        STATION_FAILED,                 /* ... and failed: it waits for another board */
        _STATION_STATE_MAX,
} StationState;

#define STATION_UID_SIZE 12
#define STATION_REASON_MAX 256
/* Automatic attempts at one board: the first and one retry. */
#define STATION_ATTEMPTS_MAX 2

typedef struct Station {
        StationState state;
        bool have_board;                /* the board below is the one the slot last flashed */
        bool board_has_uid;
        uint8_t uid[STATION_UID_SIZE];
        unsigned attempts;              /* automatic flashes of that board */
        unsigned silent;                /* polls in a row that met silence */
        bool synced;                    /* the last poll (or flash) left a chip waiting for a command */
        unsigned percent;               /* FLASHING: 0..100 */
        char reason[STATION_REASON_MAX];/* FAILED: why */
} Station;

void station_init(Station *s);

/* How many 0x7F the next poll sends (1 or 2). */
unsigned station_poll_syncs(const Station *s);

/* A poll's outcome: error 0 with the chip's UID (uid NULL: the chip gave none), or a
 * negative errno (-EHOSTDOWN: silence). Returns true when the board in the slot is to
 * be flashed now (the caller then calls station_flash_started()). */
bool station_polled(Station *s, int error, const uint8_t *uid);

void station_flash_started(Station *s);
void station_flash_progress(Station *s, unsigned percent);
/* The flash ended: error 0 or a negative errno, reason the message (failures). */
void station_flash_done(Station *s, int error, const char *reason);

/* "waiting", "flashing", "passed", "failed". */
const char *station_state_to_string(StationState s);
/* The operator's sentence: "waiting for a board", "flashing 43%", "PASS — take the
 * board out", "FAIL: <reason> — take the board out". Returns buf. */
const char *station_describe(const Station *s, char *buf, size_t size);
