/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entry sequences (syntax in entry.h). A step is parsed, then run: a line step sets
 * the lines and maybe starts a break, then pauses (ENTRY_STEP_USEC, or the delay steps
 * that follow it, added up), then ends its break. Pausing after the step, not before
 * the next, leaves the bootloader its start-up time after the last one. */

#include <errno.h>
#include <string.h>

#include "entry.h"
#include "macro.h"

#define ENTRY_STEP_USEC (100 * USEC_PER_MSEC)
#define ENTRY_DELAY_MAX_MS 5000
/* The pauses of one part (entry or exit) together, so a sequence cannot hold a port
 * for long even when nobody cancels it. */
#define ENTRY_TOTAL_MAX_USEC (10 * USEC_PER_SEC)

typedef struct EntryStep {
        int dtr, rts;           /* 1 raise, 0 lower, -1 leave */
        bool brk;               /* hold TX in break until the pause after the step ends */
        unsigned delay_ms;      /* non-zero: a delay step ("50ms"), nothing else */
} EntryStep;

static bool entry_step_end(char c) {
        return c == 0 || c == ',' || c == ':';
}

/* "<N>ms", N in 1..ENTRY_DELAY_MAX_MS, standing alone in its step. */
static int parse_entry_delay(const char **p, unsigned *ret_ms) {
        const char *q = *p;
        unsigned ms = 0;

        if (*q < '0' || *q > '9')
                return -EINVAL;
        for (; *q >= '0' && *q <= '9'; q++) {
                ms = ms * 10 + (unsigned) (*q - '0');
                if (ms > ENTRY_DELAY_MAX_MS)
                        return -EINVAL;
        }
        if (ms == 0 || strncmp(q, "ms", 2) != 0 || !entry_step_end(q[2]))
                return -EINVAL;
        *p = q + 2;
        *ret_ms = ms;
        return 0;
}

/* One step at *p: a delay, or lines and "brk" joined by '&'. Leaves *p at the
 * separator after it. */
static int parse_entry_step(const char **p, EntryStep *ret) {
        const char *q = *p;
        EntryStep step = { .dtr = -1, .rts = -1 };

        if (*q >= '0' && *q <= '9') {
                int r = parse_entry_delay(&q, &step.delay_ms);
                if (r < 0)
                        return r;
                *p = q;
                *ret = step;
                return 0;
        }

        for (;;) {
                bool neg = false;

                if (*q == '-') {
                        neg = true;
                        q++;
                }
                if (strncmp(q, "dtr", 3) == 0)
                        step.dtr = !neg;
                else if (strncmp(q, "rts", 3) == 0)
                        step.rts = !neg;
                else if (strncmp(q, "brk", 3) == 0 && !neg)
                        step.brk = true;        /* a break only lasts its step: no "-brk" */
                else
                        return -EINVAL;
                q += 3;
                if (*q != '&')
                        break;
                q++;
        }
        if (!entry_step_end(*q))
                return -EINVAL;
        *p = q;
        *ret = step;
        return 0;
}

typedef struct Pauser {
        entry_pause_t pause;
        void *userdata;
} Pauser;

/* A pause of usec: the caller's, or a sleep. */
static int pauser_wait(const Pauser *z, uint64_t usec) {
        if (z->pause)
                return z->pause(z->userdata, usec);
        if (usec > 0)
                sleep_usec(usec);
        return 0;
}

/* The pause after a step, then the end of its break (a cancelled pause ends it too).
 * A lost port is the news over a cancel: the port reports it either way. */
static int entry_pause(const Pauser *z, Link *l, uint64_t pause_usec, bool *brk) {
        int r = pauser_wait(z, pause_usec), k;

        if (!*brk)
                return r;
        *brk = false;
        k = link_set_break(l, false);
        return k < 0 ? k : r;
}

/* Runs the entry part of seq (up to ':'). With l == NULL it only checks the syntax.
 * Each step starts with the pause before it, so a cancel (z) stops the sequence before
 * its next line change. A sequence cancelled after it set a line drops DTR and RTS
 * together (one call), as a hang-up would: that releases a reset held through either, where the port's close
 * would not (the serial link clears HUPCL, so that a close never resets a board the
 * sequences did not ask to); replaying the exit part instead would start the
 * application the caller just cancelled. */
static int run_entry(const Pauser *z, Link *l, const char *seq) {
        const char *p = seq;
        uint64_t pause = 0, total = 0;
        bool brk = false, delayed = false, touched = false;
        int r;

        while (*p && *p != ':') {
                EntryStep step;

                r = parse_entry_step(&p, &step);
                if (r < 0)
                        return r;
                if (step.delay_ms > 0) {
                        /* replaces the default pause of the step before; delays add up */
                        pause = (delayed ? pause : 0) + step.delay_ms * USEC_PER_MSEC;
                        delayed = true;
                } else {
                        total += pause;
                        if (total > ENTRY_TOTAL_MAX_USEC)
                                return -EINVAL;
                        if (l) {
                                r = entry_pause(z, l, pause, &brk);
                                if (r == -ECANCELED && touched)
                                        (void) link_set_lines(l, 0, 0);
                                if (r >= 0) {
                                        r = link_set_lines(l, step.dtr, step.rts);
                                        touched = touched || step.dtr >= 0 || step.rts >= 0;
                                }
                                if (r >= 0 && step.brk) {
                                        r = link_set_break(l, true);
                                        brk = r >= 0;
                                }
                                if (r < 0)
                                        return r;
                        }
                        pause = ENTRY_STEP_USEC;
                        delayed = false;
                }
                if (*p == ',')
                        p++;
        }
        if (total + pause > ENTRY_TOTAL_MAX_USEC)
                return -EINVAL;
        if (!l)
                return 0;
        r = entry_pause(z, l, pause, &brk);
        if (r == -ECANCELED && touched)
                (void) link_set_lines(l, 0, 0);
        return r;
}

/* The common auto-reset circuits, as ENTRY:EXIT. BOOT0 through an inverter: line
 * asserted = BOOT0 high; "nboot0": the line drives BOOT0 directly (asserted = low).
 * Entry: BOOT0 high, reset held, released; exit: BOOT0 low, reset pulse: the
 * application starts. */
static const struct {
        const char *name, *seq;
} entry_presets[] = {
        { "dtr-nrst,rts-boot0",  "rts&dtr,-dtr:-rts&dtr,-dtr" },
        { "rts-nrst,dtr-boot0",  "dtr&rts,-rts:-dtr&rts,-rts" },
        { "dtr-nrst,rts-nboot0", "-rts&dtr,-dtr:rts&dtr,-dtr" },
        { "rts-nrst,dtr-nboot0", "-dtr&rts,-rts:dtr&rts,-rts" },
};

const char *entry_expand(const char *seq) {
        for (size_t i = 0; i < ELEMENTSOF(entry_presets); i++)
                if (strcmp(entry_presets[i].name, seq) == 0)
                        return entry_presets[i].seq;
        return seq;
}

static const char *exit_part(const char *seq) {
        const char *colon = strchr(seq, ':');

        return colon ? colon + 1 : NULL;
}

int entry_validate(const char *seq) {
        const char *exit_seq;
        int r;

        seq = entry_expand(seq);
        r = run_entry(&(Pauser) {}, NULL, seq);
        if (r < 0)
                return r;
        exit_seq = exit_part(seq);
        if (exit_seq && strchr(exit_seq, ':'))
                return -EINVAL;
        return exit_seq ? run_entry(&(Pauser) {}, NULL, exit_seq) : 0;
}

bool entry_has_exit(const char *seq) {
        return exit_part(entry_expand(seq));
}

int entry_run(Link *l, const char *seq, bool exit_seq, entry_pause_t pause, void *userdata) {
        const Pauser z = { pause, userdata };
        const char *part;
        int r;

        if (!l || !seq)
                return -EINVAL;
        r = entry_validate(seq);
        if (r < 0)
                return r;
        part = entry_expand(seq);
        if (exit_seq)
                part = exit_part(part);
        return part ? run_entry(&z, l, part) : 0;
}
