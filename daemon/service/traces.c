/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The failed jobs' traces in the state directory, and their count kept. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "string-util.h"
#include "traces.h"

#define PREFIX "trace-"
#define SUFFIX ".txt"

static int is_trace(const struct dirent *d) {
        size_t n = strlen(d->d_name);

        return startswith(d->d_name, PREFIX) && n > strlen(SUFFIX) &&
               streq(d->d_name + n - strlen(SUFFIX), SUFFIX);
}

/* The oldest files beyond TRACES_KEPT go: the names sort by time. */
static void prune(int dfd) {
        struct dirent **list = NULL;
        int n;

        n = scandirat(dfd, ".", &list, is_trace, alphasort);
        if (n < 0)
                return;
        for (int i = 0; i < n; i++) {
                if ((unsigned) (n - i) > TRACES_KEPT)
                        (void) unlinkat(dfd, list[i]->d_name, 0);
                free(list[i]);
        }
        free(list);
}

int traces_save(const char *state_dir, const char *port, uint64_t timestamp_usec, const Trace *t, char **ret) {
        _cleanup_free_ char *dir = NULL, *text = NULL, *path = NULL;
        _cleanup_close_ int dfd = -1, fd = -1;
        char name[128], stamp[32], tag[48];
        time_t secs = (time_t) (timestamp_usec / USEC_PER_SEC);
        struct tm tm;
        size_t k = 0;
        int r;

        if (!state_dir || !t || !ret)
                return -EINVAL;
        if (asprintf(&dir, "%s/" TRACES_SUBDIR, state_dir) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return -errno;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        /* "ttyUSB0", "tcp___host_4000": a file name, never a path */
        for (const char *s = port ?: "port"; *s && k < sizeof tag - 1; s++)
                tag[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                                   *s == '-' || *s == '.' ? *s : '_';
        tag[k] = '\0';
        if (!gmtime_r(&secs, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm) == 0)
                return -EINVAL;
        snprintf(name, sizeof name, PREFIX "%s.%06llu-%s" SUFFIX, stamp,
                 (unsigned long long) (timestamp_usec % USEC_PER_SEC), tag);

        r = trace_to_text(t, &text);
        if (r < 0)
                return r;
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0)
                return -errno;
        r = write_all(fd, text, strlen(text));
        if (r < 0) {
                (void) unlinkat(dfd, name, 0);
                return r;
        }
        prune(dfd);
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(path);
        return 0;
}
