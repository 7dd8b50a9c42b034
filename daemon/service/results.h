/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "stm32isp.h"

/* The results log: one JSON object per line (JSON Lines) per operation, appended to
 * DIR/results.jsonl; when a line would take the file over the cap it is first moved to
 * results.jsonl.1 (the previous .1 is dropped), so the log never holds more than about
 * twice the cap. Queried oldest first. And the entries themselves, built from a finished
 * job. No D-Bus, no printing. */

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "macro.h"

#define RESULTS_LOG_NAME "results.jsonl"
#define RESULTS_LOG_MAX_DEFAULT (8u * 1024 * 1024)

typedef struct ResultsLog ResultsLog;

/* dir must exist. max_size 0: the default. */
int results_log_new(const char *dir, uint64_t max_size, ResultsLog **ret);
ResultsLog *results_log_free(ResultsLog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(ResultsLog *, results_log_free);

const char *results_log_path(const ResultsLog *l);

/* Writes entry as one line (one write(2) with O_APPEND, so lines never interleave). */
int results_log_append(ResultsLog *l, json_object *entry);

typedef struct ResultsFilter {
        const char *result;             /* "pass"/"fail", NULL: any */
        const char *uid;                /* case-insensitive, NULL: any */
        bool have_serial_number;        /* the board that got this serial number */
        uint64_t serial_number;
        const char *port;               /* the entry's "port" or its device name, NULL: any */
        uint64_t since_usec, until_usec;        /* on "timestamp_usec"; 0: unbounded */
        unsigned limit;                 /* keep the newest N; 0: all */
} ResultsFilter;

/* A new json array of the matching entries, oldest first. Lines that do not parse (a
 * torn last line after a crash) are skipped. A missing log is an empty array. */
int results_log_query(ResultsLog *l, const ResultsFilter *f, json_object **ret);

/* "2026-11-27T03:20:00.123456Z" */
#define RESULTS_TIMESTAMP_MAX STM32ISP_TIMESTAMP_MAX
void results_format_timestamp(uint64_t usec, char buf[static RESULTS_TIMESTAMP_MAX]);

/* Where a job ran, as its entry records it. Strings are borrowed. */
typedef struct ResultsPort {
        const char *device;             /* "/dev/ttyUSB0", "tcp://host:port" */
        const char *serial, *physical_path;
        uint16_t vendor_id, product_id;
} ResultsPort;

/* The entry of one finished job: what ran (the options as the caller would pass them),
 * where, on which chip (only what this job saw), with which image, and how it ended
 * (error < 0: error_name and message). NULL when out of memory. */
json_object *results_entry_new(const ResultsPort *where, const Job *j, uint64_t timestamp_usec, int error,
                               const char *error_name, const char *message);
