/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's log: text on stderr, or the journal with fields when stderr is the
 * journal (JOURNAL_STREAM). A finished job's line carries its results entry: as
 * STM32ISP_<KEY>= journal fields, or as JSON on stderr. */

#include <json-c/json.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

void log_setup(bool verbose);
bool log_to_journal(void);
/* port: the port's name, NULL for a daemon-wide message. LOG_DEBUG only when verbose. */
void log_msg(int priority, const char *port, const char *fmt, ...) _printf_(3, 4);
#define log_debug(port, ...) log_msg(LOG_DEBUG, port, __VA_ARGS__)
#define log_info(port, ...) log_msg(LOG_INFO, port, __VA_ARGS__)
#define log_warning(port, ...) log_msg(LOG_WARNING, port, __VA_ARGS__)
#define log_error(port, ...) log_msg(LOG_ERR, port, __VA_ARGS__)

/* One finished job on port: "<operation> passed", or "<operation> failed: ..." with the
 * error (error < 0), and entry (results.h) as fields. */
void log_job_result(const char *port, const char *operation, json_object *entry, int error,
                    const char *error_name, const char *message);
