/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results log: lines, rotation at the cap, filters, torn lines, timestamps, SHA-256. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results.h"
#include "test-util.h"

static char dir[] = "/tmp/test-results-XXXXXX";

static json_object *entry(unsigned i, const char *result, const char *uid, const char *port, uint64_t t) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "n", json_object_new_int((int) i));
        json_object_object_add(e, "result", json_object_new_string(result));
        json_object_object_add(e, "uid", json_object_new_string(uid));
        json_object_object_add(e, "port", json_object_new_string(port));
        json_object_object_add(e, "timestamp_usec", json_object_new_uint64(t));
        json_object_object_add(e, "message", json_object_new_string("a \"quoted\"\nline/with slash"));
        return e;
}

static void clean(void) {
        char p[256];

        snprintf(p, sizeof p, "%s/" RESULTS_LOG_NAME, dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/" RESULTS_LOG_NAME ".1", dir);
        unlink(p);
}

static int n_of(json_object *a, size_t i) {
        json_object *v;

        ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(a, i), "n", &v));
        return json_object_get_int(v);
}

static void test_append_query(void) {
        _cleanup_(results_log_freep) ResultsLog *l = NULL;
        json_object *a, *v;
        char line[4096];
        FILE *f;

        clean();
        ASSERT_OK(results_log_new(dir, 0, &l));
        /* No log yet: empty. */
        ASSERT_OK(results_log_query(l, NULL, &a));
        ASSERT_EQ(json_object_array_length(a), 0);
        json_object_put(a);

        for (unsigned i = 0; i < 10; i++) {
                json_object *e = entry(i, i % 3 == 0 ? "fail" : "pass", i < 5 ? "AABB" : "ccdd",
                                       i % 2 ? "/dev/ttyUSB1" : "/dev/ttyUSB0", 1000 + i);
                ASSERT_OK(results_log_append(l, e));
                json_object_put(e);
        }
        /* Exactly one line per entry, each a full object. */
        f = fopen(results_log_path(l), "re");
        ASSERT_TRUE(f);
        for (unsigned i = 0; i < 10; i++) {
                json_object *e;

                ASSERT_TRUE(fgets(line, sizeof line, f));
                ASSERT_TRUE(line[strlen(line) - 1] == '\n');
                e = json_tokener_parse(line);
                ASSERT_TRUE(e);
                ASSERT_TRUE(json_object_object_get_ex(e, "message", &v));
                ASSERT_STREQ(json_object_get_string(v), "a \"quoted\"\nline/with slash");
                json_object_put(e);
        }
        ASSERT_TRUE(!fgets(line, sizeof line, f));
        fclose(f);

        ASSERT_OK(results_log_query(l, NULL, &a));
        ASSERT_EQ(json_object_array_length(a), 10);
        for (unsigned i = 0; i < 10; i++)
                ASSERT_EQ(n_of(a, i), i);
        json_object_put(a);

        /* fail: 0, 3, 6, 9 */
        ASSERT_OK(results_log_query(l, &(ResultsFilter) { .result = "fail" }, &a));
        ASSERT_EQ(json_object_array_length(a), 4);
        ASSERT_EQ(n_of(a, 3), 9);
        json_object_put(a);
        /* uid is case-insensitive; with result: 1, 2, 4 */
        ASSERT_OK(results_log_query(l, &(ResultsFilter) { .result = "pass", .uid = "aabb" }, &a));
        ASSERT_EQ(json_object_array_length(a), 3);
        ASSERT_EQ(n_of(a, 0), 1);
        ASSERT_EQ(n_of(a, 2), 4);
        json_object_put(a);
        /* port by path or name; time window 1003..1007 */
        ASSERT_OK(results_log_query(l, &(ResultsFilter) { .port = "ttyUSB1", .since_usec = 1003, .until_usec = 1007 }, &a));
        ASSERT_EQ(json_object_array_length(a), 3);
        ASSERT_EQ(n_of(a, 0), 3);
        ASSERT_EQ(n_of(a, 2), 7);
        json_object_put(a);
        ASSERT_OK(results_log_query(l, &(ResultsFilter) { .port = "/dev/ttyUSB0" }, &a));
        ASSERT_EQ(json_object_array_length(a), 5);
        json_object_put(a);
        /* limit keeps the newest */
        ASSERT_OK(results_log_query(l, &(ResultsFilter) { .limit = 3 }, &a));
        ASSERT_EQ(json_object_array_length(a), 3);
        ASSERT_EQ(n_of(a, 0), 7);
        ASSERT_EQ(n_of(a, 2), 9);
        json_object_put(a);
}

static void test_torn_and_garbage(void) {
        _cleanup_(results_log_freep) ResultsLog *l = NULL;
        json_object *a, *e;
        int fd;

        clean();
        ASSERT_OK(results_log_new(dir, 0, &l));
        e = entry(1, "pass", "01", "p", 1);
        ASSERT_OK(results_log_append(l, e));
        json_object_put(e);
        fd = open(results_log_path(l), O_WRONLY | O_APPEND);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, "not json\n{\"n\":", 15), 15);
        close(fd);
        ASSERT_OK(results_log_query(l, NULL, &a));
        ASSERT_EQ(json_object_array_length(a), 1);
        ASSERT_EQ(n_of(a, 0), 1);
        json_object_put(a);
}

static void test_rotation(void) {
        _cleanup_(results_log_freep) ResultsLog *l = NULL;
        char old[256];
        struct stat st;
        json_object *a;
        size_t len;
        unsigned total = 0;

        clean();
        /* Each line is about 140 bytes: a 1000-byte cap holds 7. */
        ASSERT_OK(results_log_new(dir, 1000, &l));
        snprintf(old, sizeof old, "%s.1", results_log_path(l));
        for (unsigned i = 0; i < 40; i++) {
                json_object *e = entry(i, "pass", "00", "p", i);

                len = strlen(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) + 1;
                ASSERT_OK(results_log_append(l, e));
                json_object_put(e);
                ASSERT_EQ(stat(results_log_path(l), &st), 0);
                ASSERT_TRUE(st.st_size <= 1000);
        }
        ASSERT_EQ(stat(old, &st), 0);
        ASSERT_TRUE(st.st_size <= 1000 && st.st_size > 1000 - (off_t) len);
        /* The query spans both files, in order, ending with the newest. */
        ASSERT_OK(results_log_query(l, NULL, &a));
        total = (unsigned) json_object_array_length(a);
        ASSERT_TRUE(total > 1000 / len && total <= 2 * (1000 / len));
        for (unsigned i = 0; i < total; i++)
                ASSERT_EQ(n_of(a, i), 40 - total + i);
        json_object_put(a);
}

static void test_format(void) {
        char ts[RESULTS_TIMESTAMP_MAX];

        results_format_timestamp(0, ts);
        ASSERT_STREQ(ts, "1970-01-01T00:00:00.000000Z");
        results_format_timestamp(1795749600123456ull, ts);
        ASSERT_STREQ(ts, "2026-11-27T03:20:00.123456Z");
        /* (the image hash: tests/shared/test-sha256.c) */
        ASSERT_ERR(results_log_new("", 0, &(ResultsLog *) { NULL }), EINVAL);
}

int main(void) {
        ASSERT_TRUE(mkdtemp(dir));
        TEST(test_append_query);
        TEST(test_torn_and_garbage);
        TEST(test_rotation);
        TEST(test_format);
        clean();
        rmdir(dir);
        return 0;
}
