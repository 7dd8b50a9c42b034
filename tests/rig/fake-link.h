/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A fake link for the entry-sequence tests: it records each line change and break as
 * text ("D1R1" lines, "B+"/"B-" a break), and fails or signals on request. Linking
 * this also records every clock_nanosleep() of the program (a sequence's pause when it
 * sleeps) as "100" (ms) or "250us", then sleeps it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

/* What happened, in order, space-separated; event_usec[i]: when event i was recorded. */
extern char events[1024];
extern uint64_t event_usec[64];
extern size_t n_events;
void events_reset(void);

typedef struct FakeLink {
        Link link;
        unsigned calls;         /* set_lines + set_break calls so far */
        unsigned fail_at;       /* that call (1-based) fails with fail_error; 0: none */
        int fail_error;
        unsigned cancel_at;     /* after that call, a byte to cancel_fd; 0: none */
        int cancel_fd;
} FakeLink;

int fake_set_lines(Link *l, int dtr, int rts);
int fake_set_break(Link *l, bool on);
/* Both. */
extern const LinkOps fake_ops;
