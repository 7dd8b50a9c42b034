/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A job's wire trace: what went over the link (every byte each way, the line changes,
 * the reads that timed out) with the time since the job started and what each event
 * is in AN3155 terms (sync, Get, Read Memory 0x08000100 256 bytes, ACK, NACK ...),
 * decoded as it is recorded by following the command/reply state. Bounded: the first
 * quarter of the budget keeps the start of the job (the sync, the probe), the rest the
 * latest events; what fell out between is counted. Rendered as text for a bug report
 * or as JSON for tools. Records on the job's thread (link_set_trace(l, trace_link_event,
 * t)); no D-Bus, no printing. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "macro.h"

/* The memory one job's trace may take (events and their bytes). */
#define TRACE_MAX_BYTES (64u * 1024)

typedef struct Trace Trace;

/* What the decoder saw of the command pairs, for diagnoses (diagnose.h): a pair's
 * bytes have the same number of ones modulo 2 (c and c ^ 0xFF), so a pair is "even"
 * or "odd". A pair failed when NACK, something else or nothing came back. */
typedef struct TraceStats {
        unsigned syncs_sent, syncs_acked, syncs_nacked;
        unsigned even_acked, even_failed;   /* Get, Read Memory, Go, Extended Erase ... */
        unsigned odd_acked, odd_failed;     /* Get Version, Get ID, Write Memory, Erase ... */
} TraceStats;

/* port and op (may be NULL) head the rendering. max_bytes 0: TRACE_MAX_BYTES. */
int trace_new(const char *port, const char *op, size_t max_bytes, Trace **ret);
Trace *trace_free(Trace *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Trace *, trace_free);

/* A link_trace_t: userdata is the Trace. Out of memory drops the event (counted). */
void trace_link_event(void *userdata, LinkEvent ev, const uint8_t *buf, size_t n, int a, int b);
/* A line of the job's own (the result, a diagnosis), in the trace's order. */
void trace_note(Trace *t, const char *note);

const TraceStats *trace_stats(const Trace *t);
size_t trace_n_events(const Trace *t);
size_t trace_n_dropped(const Trace *t);
/* The bytes the events take (at most the budget). */
size_t trace_size(const Trace *t);

/* Readable text, one line per event ("+0.001234 > 7f  sync"); malloc'd, NUL-terminated. */
int trace_to_text(const Trace *t, char **ret);
/* {"port":..,"op":..,"started":"2026-12-06T02:36:14Z","version":..,"dropped_events":N,
 *  "dropped_bytes":N,"events":[{"t_usec":..,"dir":"tx","bytes":"7f","length":1,"note":"sync"},...]} */
int trace_to_json(const Trace *t, char **ret);
