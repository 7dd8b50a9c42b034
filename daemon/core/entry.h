/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* DTR/RTS entry sequences: what puts a board into its bootloader (and, after a good
 * flash, back into its application) through an adapter's modem lines wired to BOOT0 and
 * NRST. Parsed, checked and run here; no threads: a pause is the caller's to take (a
 * worker ends it early on Cancel).
 *
 * Syntax: steps separated by ',', an exit sequence after ':' (run after a successful
 * Flash: reset into the application). A step is either
 *  - lines joined by '&': "dtr"/"rts" raise the line, "-dtr"/"-rts" lower it, "brk"
 *    holds TX in break for the step's pause, then releases it ("-brk" is an error);
 *    the pause after a step is 100 ms, or
 *  - a delay "<N>ms" (1..5000) that replaces the pause after the step before it
 *    (delays in a row add up; at most 10 s of pauses per part): "rts&dtr,-dtr,50ms",
 *    "brk,20ms,rts&dtr,-dtr".
 * Or a preset naming the wiring: "dtr-nrst,rts-boot0", "rts-nrst,dtr-boot0" (BOOT0
 * through an inverter), "dtr-nrst,rts-nboot0", "rts-nrst,dtr-nboot0" (BOOT0 driven
 * directly). */

#include <stdbool.h>
#include <stdint.h>

#include "link.h"

/* Waits usec (0: only checks): 0, or -ECANCELED to stop the sequence. */
typedef int (*entry_pause_t)(void *userdata, uint64_t usec);

/* 0 or -EINVAL. */
int entry_validate(const char *seq);
/* A preset's "ENTRY:EXIT" sequence, or seq itself. */
const char *entry_expand(const char *seq);
/* True when seq (a preset or a sequence) has an exit part. */
bool entry_has_exit(const char *seq);
/* Runs the entry part of seq, or its exit part when exit_seq (none: nothing to do), on
 * l: the lines, breaks and pauses, the last pause included. Each pause goes through
 * pause (NULL: a plain sleep); when it fails (-ECANCELED) the sequence stops before its
 * next line change, its break ended first, and drops DTR and RTS together when it
 * set one. -EINVAL for a sequence entry_validate() refuses (nothing is run), or the
 * link's error (a break is ended first). */
int entry_run(Link *l, const char *seq, bool exit_seq, entry_pause_t pause, void *userdata);
