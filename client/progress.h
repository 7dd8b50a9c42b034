/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shows a job's progress: a bar redrawn in place on a terminal (stage, bytes, rate, ETA),
 * plain lines when the output is not a terminal, nothing in quiet mode. Redraws at most
 * ~10 times per second; stage changes and the final update always show. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

typedef enum ProgressMode {
        PROGRESS_QUIET,
        PROGRESS_PLAIN,
        PROGRESS_BAR,
} ProgressMode;

typedef struct Progress Progress;

/* f: where to draw (stderr). mode: PROGRESS_BAR only makes sense when f is a terminal,
 * see progress_mode_for(). */
int progress_new(FILE *f, ProgressMode mode, Progress **ret);
Progress *progress_free(Progress *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Progress *, progress_free);

/* The mode for f: quiet, else a bar on a terminal, else plain lines. */
ProgressMode progress_mode_for(FILE *f, int quiet);

/* True for PROGRESS_QUIET, and for NULL. */
bool progress_is_quiet(const Progress *p);

/* label: shown before the stage (the port, in monitor), may be NULL. */
void progress_update(Progress *p, const char *label, const char *stage, uint64_t done, uint64_t total);
/* Removes the bar from the terminal so that other output can be printed (it comes back
 * with the next update). */
void progress_clear(Progress *p);
/* Ends the bar line (leaves the last state visible). */
void progress_end(Progress *p);

/* For tests and the renderer: "1:05", "--:--" for unknown. */
const char *progress_format_eta(char *buf, size_t size, double seconds);
