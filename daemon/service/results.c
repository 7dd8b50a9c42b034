/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results log: append with rotation at a size cap, and filtered queries. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "request.h"
#include "results.h"
#include "stm32isp.h"

struct ResultsLog {
        char *path, *old_path;
        uint64_t max_size;
};

int results_log_new(const char *dir, uint64_t max_size, ResultsLog **ret) {
        ResultsLog *l;

        if (!dir || !*dir)
                return -EINVAL;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        if (asprintf(&l->path, "%s/" RESULTS_LOG_NAME, dir) < 0) {
                l->path = NULL;
                return results_log_free(l), -ENOMEM;
        }
        if (asprintf(&l->old_path, "%s.1", l->path) < 0) {
                l->old_path = NULL;
                return results_log_free(l), -ENOMEM;
        }
        l->max_size = max_size ?: RESULTS_LOG_MAX_DEFAULT;
        *ret = l;
        return 0;
}

ResultsLog *results_log_free(ResultsLog *l) {
        if (!l)
                return NULL;
        free(l->path);
        free(l->old_path);
        free(l);
        return NULL;
}

const char *results_log_path(const ResultsLog *l) {
        return l->path;
}

int results_log_append(ResultsLog *l, json_object *entry) {
        _cleanup_free_ char *line = NULL;
        _cleanup_close_ int fd = -1;
        const char *s;
        struct stat st;
        size_t n;

        s = json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        line = malloc(n + 1);
        if (!line)
                return -ENOMEM;
        memcpy(line, s, n);
        line[n++] = '\n';

        /* Rotate first, so that the current file never exceeds the cap (unless one line
         * alone does). */
        if (stat(l->path, &st) >= 0 && st.st_size > 0 && (uint64_t) st.st_size + n > l->max_size)
                if (rename(l->path, l->old_path) < 0)
                        return -errno;

        fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return -errno;
        return write_all(fd, line, n);
}

static bool entry_matches(json_object *e, const ResultsFilter *f) {
        json_object *v;

        if (!json_object_is_type(e, json_type_object))
                return false;
        if (f->result && !(json_object_object_get_ex(e, "result", &v) &&
                           strcmp(json_object_get_string(v), f->result) == 0))
                return false;
        if (f->have_serial_number && !(json_object_object_get_ex(e, "serial_number", &v) &&
                                       json_object_get_uint64(v) == f->serial_number))
                return false;
        if (f->uid && !(json_object_object_get_ex(e, "uid", &v) &&
                        strcasecmp(json_object_get_string(v), f->uid) == 0))
                return false;
        if (f->port) {
                bool ok = false;

                if (json_object_object_get_ex(e, "port", &v)) {
                        const char *p = json_object_get_string(v);
                        const char *slash = strrchr(p, '/');

                        ok = strcmp(p, f->port) == 0 || (slash && strcmp(slash + 1, f->port) == 0);
                }
                if (!ok)
                        return false;
        }
        if (f->since_usec || f->until_usec) {
                uint64_t t;

                if (!json_object_object_get_ex(e, "timestamp_usec", &v))
                        return false;
                t = (uint64_t) json_object_get_uint64(v);
                if (f->since_usec && t < f->since_usec)
                        return false;
                if (f->until_usec && t > f->until_usec)
                        return false;
        }
        return true;
}

static int query_file(const char *path, const ResultsFilter *f, json_object *array) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        ssize_t n;
        FILE *file;

        file = fopen(path, "re");
        if (!file)
                return errno == ENOENT ? 0 : -errno;
        while ((n = getline(&line, &size, file)) > 0) {
                json_object *e;

                if (line[n - 1] != '\n')
                        break;          /* torn: being written, or cut by a crash */
                e = json_tokener_parse(line);
                if (!e)
                        continue;
                if (!entry_matches(e, f) || json_object_array_add(array, e) < 0)
                        json_object_put(e);
        }
        fclose(file);
        return 0;
}

int results_log_query(ResultsLog *l, const ResultsFilter *f, json_object **ret) {
        static const ResultsFilter none = {};
        json_object *array;
        size_t n;
        int r;

        f = f ?: &none;
        array = json_object_new_array();
        if (!array)
                return -ENOMEM;
        r = query_file(l->old_path, f, array);
        if (r >= 0)
                r = query_file(l->path, f, array);
        if (r < 0) {
                json_object_put(array);
                return r;
        }
        n = json_object_array_length(array);
        if (f->limit && n > f->limit)
                json_object_array_del_idx(array, 0, n - f->limit);
        *ret = array;
        return 0;
}

void results_format_timestamp(uint64_t usec, char buf[static RESULTS_TIMESTAMP_MAX]) {
        stm32isp_format_timestamp(usec, buf);
}

/* ---- entries ---- */

static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* The options the job ran with, as the caller would pass them. */
static json_object *job_options_json(const Job *j) {
        json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return NULL;
        if (j->baudrate)
                r |= json_add(o, "baudrate", json_object_new_int64(j->baudrate));
        if (j->entry)
                r |= json_add(o, "entry", json_object_new_string(j->entry));
        switch (j->op) {
        case JOB_FLASH:
                r |= json_add(o, "address", json_object_new_int64(j->image && j->image->n_segments ? j->image->segments[0].address : 0));
                r |= json_add(o, "erase", json_object_new_string(erase_mode_to_string(j->flash.erase)));
                r |= json_add(o, "verify", json_object_new_boolean(j->flash.verify));
                r |= json_add(o, "unprotect", json_object_new_boolean(j->flash.unprotect));
                r |= json_add(o, "protect", json_object_new_boolean(j->flash.protect));
                r |= json_add(o, "boot0", json_object_new_boolean(j->flash.boot0));
                r |= json_add(o, "go", json_object_new_boolean(j->flash.go));
                r |= json_add(o, "force", json_object_new_boolean(j->flash.force));
                if (j->expect_pid)
                        r |= json_add(o, "expect_chip", json_object_new_int(j->expect_pid));
                break;
        case JOB_ERASE:
                r |= json_add(o, "mode", json_object_new_string(erase_mode_to_string(j->erase_mode)));
                if (j->erase_mode == FLASHER_ERASE_AUTO) {
                        r |= json_add(o, "address", json_object_new_int64(j->address));
                        r |= json_add(o, "length", json_object_new_int64(j->length));
                }
                break;
        case JOB_READ:
                r |= json_add(o, "address", json_object_new_int64(j->address));
                r |= json_add(o, "length", json_object_new_int64(j->length));
                break;
        case JOB_GO:
                r |= json_add(o, "address", json_object_new_int64(j->address));
                break;
        case JOB_LOCK:
        case JOB_UNLOCK:
                r |= json_add(o, "force", json_object_new_boolean(j->flash.force));
                break;
        default:
                break;
        }
        if (r < 0)
                return json_object_put(o), NULL;
        return o;
}

json_object *results_entry_new(const ResultsPort *where, const Job *j, uint64_t timestamp_usec, int error,
                               const char *error_name, const char *message) {
        char ts[RESULTS_TIMESTAMP_MAX], uid[25] = "";
        json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return NULL;
        if (j->have_chip && j->chip.have_uid)
                for (size_t i = 0; i < sizeof j->chip.uid; i++)
                        snprintf(uid + 2 * i, 3, "%02x", j->chip.uid[i]);
        results_format_timestamp(timestamp_usec, ts);

        r |= json_add(o, "timestamp", json_object_new_string(ts));
        r |= json_add(o, "timestamp_usec", json_object_new_uint64(timestamp_usec));
        r |= json_add(o, "operation", json_object_new_string(job_op_to_string(j->op)));
        r |= json_add(o, "auto", json_object_new_boolean(j->automatic));
        r |= json_add(o, "port", json_object_new_string(where->device));
        r |= json_add(o, "adapter_serial", json_object_new_string(where->serial ?: ""));
        r |= json_add(o, "physical_path", json_object_new_string(where->physical_path ?: ""));
        r |= json_add(o, "vendor_id", json_object_new_int(where->vendor_id));
        r |= json_add(o, "product_id", json_object_new_int(where->product_id));
        /* Only what this job saw: a stale chip would be another board's. */
        r |= json_add(o, "chip_pid", json_object_new_int(j->have_chip ? j->chip.pid : 0));
        r |= json_add(o, "chip_name", json_object_new_string(j->have_chip && j->chip.info ? j->chip.info->name : ""));
        r |= json_add(o, "uid", json_object_new_string(uid));
        /* the number this board got (a job that failed before writing it has none) */
        if (j->have_serial_number)
                r |= json_add(o, "serial_number", json_object_new_uint64(j->serial_number));
        r |= json_add(o, "flash_size", json_object_new_int64(j->have_chip ? j->chip.flash_size : 0));
        /* The rate the job ran at (options.baudrate is the one asked for). */
        if (j->baudrate_used > 0)
                r |= json_add(o, "baudrate", json_object_new_int64(j->baudrate_used));
        /* the asked rate met silence; the chip answered at the one an earlier job left */
        if (j->baudrate_remembered)
                r |= json_add(o, "baudrate_remembered", json_object_new_boolean(true));
        if (j->op == JOB_FLASH) {
                r |= json_add(o, "image_name", json_object_new_string(j->image_name ?: "fd"));
                r |= json_add(o, "image_sha256", json_object_new_string(j->image_sha256));
                r |= json_add(o, "image_size", json_object_new_int64((int64_t) image_size(j->image)));
        }
        r |= json_add(o, "options", job_options_json(j));
        r |= json_add(o, "result", json_object_new_string(error < 0 ? "fail" : "pass"));
        r |= json_add(o, "error", json_object_new_string(error_name));
        r |= json_add(o, "message", json_object_new_string(message));
        r |= json_add(o, "duration_usec", json_object_new_uint64(j->duration_usec));
        if (j->op == JOB_FLASH && error == 0) {
                r |= json_add(o, "bytes_written", json_object_new_uint64(j->result.bytes_written));
                r |= json_add(o, "bytes_verified", json_object_new_uint64(j->result.bytes_verified));
                r |= json_add(o, "preserved_bytes", json_object_new_uint64(j->result.preserved_bytes));
                r |= json_add(o, "started", json_object_new_boolean(j->result.started || j->started_by_reset));
                if (j->result.started || j->started_by_reset)
                        r |= json_add(o, "start_method", json_object_new_string(j->started_by_reset ? "reset" : "go"));
                r |= json_add(o, "write_unprotected", json_object_new_boolean(j->result.write_unprotected));
                r |= json_add(o, "unprotected", json_object_new_boolean(j->result.unprotected));
        }
        if ((j->op == JOB_LOCK || j->op == JOB_UNLOCK) && error == 0)
                r |= json_add(o, "nothing_done", json_object_new_boolean(j->result.nothing_done));
        if (r < 0)
                return json_object_put(o), NULL;
        return o;
}
