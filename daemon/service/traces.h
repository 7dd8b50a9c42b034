/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Failed jobs' wire traces, kept in the state directory for a bug report: one text file
 * per failed job in DIR/traces/, named by time and port so that they sort oldest first;
 * only the newest TRACES_KEPT stay, each at most the text of one trace's budget
 * (TRACE_MAX_BYTES of events, trace.h). No D-Bus, no printing. */

#include <stdint.h>

#include "trace.h"

#define TRACES_SUBDIR "traces"
/* How many failed jobs' traces the state directory keeps. */
#define TRACES_KEPT 16u

/* Writes t's text to a new file in state_dir/traces (made where missing), named for
 * port (a kernel name or a URL: its odd characters become '_') and timestamp_usec
 * (CLOCK_REALTIME), then removes the oldest files beyond TRACES_KEPT. ret: the file's
 * path, malloc'd. */
int traces_save(const char *state_dir, const char *port, uint64_t timestamp_usec, const Trace *t, char **ret);
