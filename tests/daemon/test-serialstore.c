/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Serial-number counters on disk (daemon/service/serialstore.c): the same chip gets the
 * same number, new chips the next ones, a release gives a number back, everything
 * survives a reload, and a file that cannot be trusted is refused. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "serialstore.h"
#include "test-util.h"

static char dir[] = "/tmp/test-serialstore.XXXXXX";

static uint64_t reserve(SerialStore *s, const char *counter, const char *uid, bool want_new) {
        uint64_t n = 0;
        bool is_new;

        ASSERT_OK(serial_store_reserve(s, counter, uid, 1000, 10, &n, &is_new));
        ASSERT_EQ(is_new, want_new);
        return n;
}

static void test_store(void) {
        _cleanup_(serial_store_freep) SerialStore *s = NULL;
        char path[256], tmp[256];
        uint64_t n;

        ASSERT_OK(serial_store_new(dir, &s));
        ASSERT_EQ(reserve(s, "default", "aa", true), 1000);
        ASSERT_OK(serial_store_commit(s, "default", "aa"));
        ASSERT_EQ(reserve(s, "default", "bb", true), 1010);
        /* bb failed before its write: 1010 goes to the next chip */
        ASSERT_OK(serial_store_release(s, "default", "bb"));
        ASSERT_EQ(serial_store_lookup(s, "default", "bb", &n), 0);
        ASSERT_EQ(reserve(s, "default", "cc", true), 1010);
        ASSERT_OK(serial_store_commit(s, "default", "cc"));
        /* a written number is never released */
        ASSERT_OK(serial_store_release(s, "default", "cc"));
        ASSERT_EQ(reserve(s, "default", "cc", false), 1010);
        /* the same chip: its own number */
        ASSERT_EQ(reserve(s, "default", "aa", false), 1000);
        /* another counter starts at its own first */
        ASSERT_EQ(reserve(s, "rev-b", "aa", true), 1000);
        /* reserved, not committed, then a "crash": still the chip's after a reload */
        ASSERT_EQ(reserve(s, "default", "dd", true), 1020);
        s = serial_store_free(s);

        ASSERT_OK(serial_store_new(dir, &s));
        ASSERT_EQ(reserve(s, "default", "dd", false), 1020);
        ASSERT_EQ(reserve(s, "default", "ee", true), 1030);
        ASSERT_EQ(serial_store_lookup(s, "default", "cc", &n), 1);
        ASSERT_EQ(n, 1010);
        s = serial_store_free(s);

        /* no temporary file left behind; a damaged file is refused, not reset */
        snprintf(tmp, sizeof tmp, "%s/." SERIAL_STORE_NAME ".tmp", dir);
        ASSERT_TRUE(access(tmp, F_OK) < 0);
        snprintf(path, sizeof path, "%s/" SERIAL_STORE_NAME, dir);
        static const char *const bad[] = {
                "{\"counters\": {\"default\": {\"next\": 5}",
                "{\"counters\": {\"default\": {\"next\": \"5\", \"free\": [], \"chips\": {}}}}",
                "[]",
        };
        for (size_t i = 0; i < 3; i++) {
                ASSERT_OK(write_file(path, bad[i], strlen(bad[i])));
                ASSERT_ERR(serial_store_new(dir, &s), EBADMSG);
        }
        /* the right shape is taken */
        ASSERT_OK(write_file(path, "{\"counters\": {\"default\": {\"next\": 5, \"free\": [], \"chips\": {}}}}", strlen("{\"counters\": {\"default\": {\"next\": 5, \"free\": [], \"chips\": {}}}}")));
        ASSERT_OK(serial_store_new(dir, &s));
        ASSERT_EQ(reserve(s, "default", "ff", true), 5);
        s = serial_store_free(s);
        ASSERT_OK(unlink(path));
}

/* A save that cannot happen gives nothing out. */
static void test_unwritable(void) {
        _cleanup_(serial_store_freep) SerialStore *s = NULL;
        uint64_t n = 0;
        bool is_new;

        if (geteuid() == 0)
                return;         /* root writes anyway */
        ASSERT_OK(serial_store_new(dir, &s));
        ASSERT_OK(chmod(dir, 0500));
        ASSERT_ERR(serial_store_reserve(s, "default", "aa", 1, 1, &n, &is_new), EACCES);
        ASSERT_OK(chmod(dir, 0700));
        ASSERT_OK(serial_store_reserve(s, "default", "aa", 1, 1, &n, &is_new));
        ASSERT_EQ(n, 1);
}

int main(void) {
        char path[256];

        ASSERT_TRUE(mkdtemp(dir) != NULL);
        test_store();
        test_unwritable();
        snprintf(path, sizeof path, "%s/" SERIAL_STORE_NAME, dir);
        (void) unlink(path);
        ASSERT_OK(rmdir(dir));
        return 0;
}
