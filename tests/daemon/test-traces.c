/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Failed jobs' traces in the state directory: the file holds the trace's text, the
 * name says when and which port (a URL made a file name), and the count kept holds:
 * only the newest TRACES_KEPT stay, other files in the folder untouched. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "traces.h"
#include "test-util.h"

static char dir[] = "/tmp/test-traces-XXXXXX";

static unsigned count(const char *prefix) {
        char p[256];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(p, sizeof p, "%s/" TRACES_SUBDIR, dir);
        d = opendir(p);
        ASSERT_TRUE(d);
        while ((de = readdir(d)))
                n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
        closedir(d);
        return n;
}

int main(void) {
        static const uint8_t sync = 0x7F;
        _cleanup_(trace_freep) Trace *t = NULL;
        char first[512], other[512];
        char *path = NULL;
        uint64_t t0 = 1796524574000000;        /* 2026-12-06T02:36:14Z */
        struct stat st;
        int fd;

        ASSERT_TRUE(mkdtemp(dir));
        ASSERT_OK(trace_new("/dev/ttyUSB0", "Flash", 0, &t));
        trace_link_event(t, LINK_EVENT_TX, &sync, 1, 0, 0);

        ASSERT_OK(traces_save(dir, "ttyUSB0", t0, t, &path));
        ASSERT_STREQ(strrchr(path, '/'), "/trace-20261206T023614.000000-ttyUSB0.txt");
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0640);
        snprintf(first, sizeof first, "%s", path);
        free(path);

        /* a URL is a file name, never a path */
        ASSERT_OK(traces_save(dir, "tcp://host:4000/../x", t0 + 1, t, &path));
        ASSERT_STREQ(strrchr(path, '/'), "/trace-20261206T023614.000001-tcp___host_4000_.._x.txt");
        free(path);

        /* something else in the folder stays */
        snprintf(other, sizeof other, "%s/" TRACES_SUBDIR "/notes.txt", dir);
        fd = open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        close(fd);

        for (unsigned i = 2; i < TRACES_KEPT + 5; i++) {
                ASSERT_OK(traces_save(dir, "ttyUSB1", t0 + i * USEC_PER_SEC, t, &path));
                free(path);
                ASSERT_TRUE(count("trace-") <= TRACES_KEPT);
        }
        ASSERT_EQ(count("trace-"), TRACES_KEPT);
        ASSERT_EQ(count("notes.txt"), 1);
        /* the oldest went */
        ASSERT_TRUE(access(first, F_OK) < 0);

        /* the file is the text rendering */
        {
                _cleanup_free_ uint8_t *text = NULL;
                _cleanup_free_ char *want = NULL;
                size_t n;

                ASSERT_OK(traces_save(dir, "ttyUSB2", t0 + 100 * USEC_PER_SEC, t, &path));
                ASSERT_OK(read_file(path, 1 << 20, &text, &n));
                ASSERT_OK(trace_to_text(t, &want));
                ASSERT_EQ(n, strlen(want));
                ASSERT_MEMEQ(text, want, n);
                free(path);
        }
        ASSERT_ERR(traces_save(NULL, "x", t0, t, &path), EINVAL);

        {
                char cmd[128];

                snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
                ASSERT_OK(system(cmd));
        }
        return 0;
}
