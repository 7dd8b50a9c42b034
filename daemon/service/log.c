/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging to stderr or to the journal. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

static bool log_verbose;
static int log_journal = -1;

void log_setup(bool verbose) {
        log_verbose = verbose;
}

/* Under systemd stderr is connected to the journal and JOURNAL_STREAM names it
 * ("dev:inode"); if stderr was redirected elsewhere since, keep writing text there. */
bool log_to_journal(void) {
        if (log_journal < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;

                log_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0 &&
                              (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
        }
        return log_journal;
}

void log_msg(int priority, const char *port, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        if (priority >= LOG_DEBUG && !log_verbose)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (log_to_journal()) {
                if (port)
                        (void) sd_journal_send("MESSAGE=%s: %s", port, buf, "PRIORITY=%i", priority,
                                               "STM32ISP_PORT=%s", port, NULL);
                else
                        (void) sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%i", priority, NULL);
                return;
        }
        fprintf(stderr, "stm32ispd: %s%s%s\n", port ?: "", port ? ": " : "", buf);
}

/* The journal gets the entry's fields as STM32ISP_<KEY>= (options as JSON). */
static void journal_job_result(const char *port, const char *operation, json_object *entry, int error,
                               const char *message) {
        struct iovec iov[40];
        char *fields[40] = {};
        size_t n = 0;

        if (asprintf(&fields[n++], "MESSAGE=%s: %s %s%s", port, operation,
                     error < 0 ? "failed: " : "passed", error < 0 ? message : "") < 0 ||
            asprintf(&fields[n++], "PRIORITY=%i", error < 0 ? LOG_WARNING : LOG_INFO) < 0)
                goto finish;
        json_object_object_foreach(entry, key, v) {
                char upper[64];
                size_t k;

                if (n >= ELEMENTSOF(fields))
                        break;
                for (k = 0; key[k] && k < sizeof upper - 1; k++)
                        upper[k] = (char) (key[k] >= 'a' && key[k] <= 'z' ? key[k] - 'a' + 'A' : key[k]);
                upper[k] = 0;
                if (asprintf(&fields[n], "STM32ISP_%s=%s", upper,
                             json_object_is_type(v, json_type_object) ?
                             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : json_object_get_string(v)) < 0) {
                        fields[n] = NULL;
                        goto finish;
                }
                n++;
        }
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = fields[i], .iov_len = strlen(fields[i]) };
        (void) sd_journal_sendv(iov, (int) n);
finish:
        for (size_t i = 0; i < n; i++)
                free(fields[i]);
}

void log_job_result(const char *port, const char *operation, json_object *entry, int error,
                    const char *error_name, const char *message) {
        if (log_to_journal())
                journal_job_result(port, operation, entry, error, message);
        else
                log_msg(error < 0 ? LOG_WARNING : LOG_INFO, port, "%s %s%s: %s", operation,
                        error < 0 ? "failed: " : "passed", error < 0 ? error_name : "",
                        json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}
