/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "macro.h"
#include "output.h"
#include "progress.h"
#include "util.h"

#define REDRAW_USEC (USEC_PER_SEC / 10)

struct Progress {
        FILE *f;
        ProgressMode mode;
        char stage[32];
        char label[64];
        uint64_t stage_start;   /* usec */
        uint64_t stage_done0;   /* done at the first update of the stage */
        uint64_t last_draw;
        unsigned last_decile;   /* plain mode: the last 10 % step printed */
        uint64_t last_done, last_total;
        bool drawn;             /* a bar is on the screen */
};

int progress_new(FILE *f, ProgressMode mode, Progress **ret) {
        Progress *p = calloc(1, sizeof *p);

        if (!p)
                return -ENOMEM;
        p->f = f;
        p->mode = mode;
        *ret = p;
        return 0;
}

Progress *progress_free(Progress *p) {
        if (!p)
                return NULL;
        progress_end(p);
        free(p);
        return NULL;
}

ProgressMode progress_mode_for(FILE *f, int quiet) {
        if (quiet)
                return PROGRESS_QUIET;
        return isatty(fileno(f)) ? PROGRESS_BAR : PROGRESS_PLAIN;
}

bool progress_is_quiet(const Progress *p) {
        return !p || p->mode == PROGRESS_QUIET;
}

const char *progress_format_eta(char *buf, size_t size, double seconds) {
        if (!(seconds >= 0) || seconds > 99 * 3600)
                snprintf(buf, size, "--:--");
        else if (seconds >= 3600)
                snprintf(buf, size, "%u:%02u:%02u", (unsigned) seconds / 3600, (unsigned) seconds / 60 % 60,
                         (unsigned) seconds % 60);
        else
                snprintf(buf, size, "%u:%02u", (unsigned) seconds / 60, (unsigned) seconds % 60);
        return buf;
}

static unsigned columns(FILE *f) {
        struct winsize ws;
        const char *e;

        if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                return ws.ws_col;
        e = getenv("COLUMNS");
        if (e && atoi(e) > 20)
                return (unsigned) atoi(e);
        return 80;
}

/* The flasher counts erase progress in pages, everything else in bytes. */
static bool counts_pages(const char *stage) {
        return startswith(stage, "eras");
}

static void count_format(char *buf, size_t size, const char *stage, uint64_t n) {
        if (counts_pages(stage))
                snprintf(buf, size, "%" PRIu64, n);
        else
                format_bytes(buf, size, n);
}

static void draw_bar(Progress *p, uint64_t done, uint64_t total, double rate, double eta, bool final) {
        char line[512], bar[256], b1[32], b2[32], b3[32], e[16];
        unsigned cols = MIN(columns(p->f), 200u);
        int n;

        count_format(b1, sizeof b1, p->stage, done);
        count_format(b2, sizeof b2, p->stage, total);
        count_format(b3, sizeof b3, p->stage, (uint64_t) rate);
        n = snprintf(line, sizeof line, "%s%s%-10s", p->label, *p->label ? " " : "", p->stage);
        if (total > 1) {
                unsigned pct = (unsigned) (done * 100 / total);
                char tail[160];
                char r[48] = "";

                /* The rate, when there is one to tell (bytes only; pages come in bursts). */
                if (!counts_pages(p->stage) && rate > 0)
                        snprintf(r, sizeof r, "  %s/s", b3);
                int tl = snprintf(tail, sizeof tail, " %3u%%  %s/%s%s%s  %s %s", pct, b1, b2,
                                  counts_pages(p->stage) ? " pages" : "", r, final ? "in" : "ETA",
                                  progress_format_eta(e, sizeof e, eta));
                /* A steady bar: room for the longest tail, not the current one. */
                int w = (int) cols - 1 - n - MAX(tl, 50) - 3;

                if (w >= 10) {
                        int fill = (int) ((uint64_t) w * done / total);

                        memset(bar, '#', fill);
                        memset(bar + fill, '.', w - fill);
                        bar[w] = 0;
                        n += snprintf(line + n, sizeof line - n, " [%s]", bar);
                }
                snprintf(line + n, sizeof line - n, "%s", tail);
        } else
                snprintf(line + n, sizeof line - n, " ...");

        line[MIN((size_t) cols - 1, sizeof line - 1)] = 0;
        fprintf(p->f, "\r%s\033[K", line);
        fflush(p->f);
        p->drawn = true;
}

void progress_update(Progress *p, const char *label, const char *stage, uint64_t done, uint64_t total) {
        uint64_t now = now_usec();
        bool new_stage, final;
        double secs, rate, eta;

        if (!p || p->mode == PROGRESS_QUIET)
                return;
        if (!label)
                label = "";
        if (!stage)
                stage = "";

        new_stage = !streq(p->stage, stage) || !streq(p->label, label) || done < p->stage_done0;
        if (new_stage) {
                if (p->mode == PROGRESS_BAR && p->drawn && *p->stage)
                        fputc('\n', p->f);      /* keep the finished stage's bar visible */
                p->drawn = false;
                snprintf(p->stage, sizeof p->stage, "%s", stage);
                snprintf(p->label, sizeof p->label, "%s", label);
                p->stage_start = now;
                p->stage_done0 = done;
                p->last_decile = UINT32_MAX;
                p->last_draw = 0;
        }
        final = total > 0 && done >= total;
        /* A stage without a byte count ("connecting": 0/1, 1/1) shows once. */
        if (!new_stage && total <= 1)
                return;
        /* The daemon repeats the final update (signal and property): show it once. */
        if (!new_stage && p->drawn && done == p->last_done && total == p->last_total)
                return;

        /* The bar redraws at most ~10 times a second; plain mode has its own limit below. */
        if (p->mode == PROGRESS_BAR && !new_stage && !final && now - p->last_draw < REDRAW_USEC)
                return;
        p->last_draw = now;
        p->last_done = done;
        p->last_total = total;

        /* The rate over the stage so far; once done, the ETA shows the time it took. */
        secs = (now - p->stage_start) / 1e6;
        rate = secs > (final ? 0.001 : 0.05) ? (done - p->stage_done0) / secs : 0;
        eta = final ? secs : rate > 0 && total >= done ? (total - done) / rate : -1;

        if (p->mode == PROGRESS_BAR) {
                draw_bar(p, done, total, rate, eta, final);
                return;
        }

        /* A stage without a byte count ("connecting": 0/1): its name, once. */
        if (total <= 1) {
                if (new_stage)
                        fprintf(p->f, "%s%s%s...\n", p->label, *p->label ? " " : "", stage);
                fflush(p->f);
                return;
        }

        /* Plain lines for logs: the stage start, every 10 %, the end. */
        unsigned decile = total > 0 ? (unsigned) (done * 10 / total) : 0;
        if (!new_stage && !final && decile == p->last_decile)
                return;
        if (final && p->last_decile == 10)
                return;
        p->last_decile = final ? 10 : decile;
        if (total > 0)
                fprintf(p->f, "%s%s%s: %" PRIu64 "/%" PRIu64 " %s (%u%%)\n", p->label, *p->label ? " " : "", stage,
                        done, total, counts_pages(stage) ? "pages" : "bytes", (unsigned) (done * 100 / total));
        else
                fprintf(p->f, "%s%s%s\n", p->label, *p->label ? " " : "", stage);
        fflush(p->f);
}

void progress_clear(Progress *p) {
        if (!p || p->mode != PROGRESS_BAR || !p->drawn)
                return;
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->drawn = false;
        p->last_draw = 0;
}

void progress_end(Progress *p) {
        if (!p || p->mode != PROGRESS_BAR || !p->drawn)
                return;
        fputc('\n', p->f);
        fflush(p->f);
        p->drawn = false;
        p->stage[0] = 0;
}
