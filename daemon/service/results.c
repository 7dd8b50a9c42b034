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
#include "results.h"

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
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        if (!gmtime_r(&t, &tm)) {
                snprintf(buf, RESULTS_TIMESTAMP_MAX, "%s", "");
                return;
        }
        n = strftime(buf, RESULTS_TIMESTAMP_MAX - 9, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, RESULTS_TIMESTAMP_MAX - n, ".%06uZ", (unsigned) (usec % USEC_PER_SEC));
}
