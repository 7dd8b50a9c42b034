/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole-file I/O: a regular file read from its start whatever the descriptor's
 * position, the size cap, what is not a regular file; writes that complete. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "test-util.h"

static int temp_file(void) {
        char path[] = "/tmp/test-fileio-XXXXXX";
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(unlink(path));
        return fd;
}

static void test_read_write(void) {
        _cleanup_close_ int fd = temp_file();
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t data[5000];
        size_t n = 0;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 13);
        ASSERT_OK(write_all(fd, data, sizeof data));
        /* the position (at the end now) is neither used nor moved */
        ASSERT_OK(read_regular_fd(fd, sizeof data, &buf, &n));
        ASSERT_EQ(n, sizeof data);
        ASSERT_MEMEQ(buf, data, sizeof data);
        ASSERT_EQ(lseek(fd, 0, SEEK_CUR), (off_t) sizeof data);
        free(TAKE_PTR(buf));

        /* one byte over the cap: refused, with the size */
        ASSERT_ERR(read_regular_fd(fd, sizeof data - 1, &buf, &n), EFBIG);
        ASSERT_EQ(n, sizeof data);
        ASSERT_TRUE(!buf);
}

static void test_empty_and_pipe(void) {
        _cleanup_close_ int fd = temp_file();
        _cleanup_free_ uint8_t *buf = NULL;
        int p[2];
        size_t n = 1;

        /* an empty file is a buffer of 0 bytes, never NULL */
        ASSERT_OK(read_regular_fd(fd, 10, &buf, &n));
        ASSERT_EQ(n, 0);
        ASSERT_TRUE(buf);
        free(TAKE_PTR(buf));

        ASSERT_OK(pipe(p));
        ASSERT_ERR(read_regular_fd(p[0], 10, &buf, &n), EINVAL);
        close(p[0]);
        close(p[1]);
}

/* The directory's entries besides "." and "..". */
static size_t count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        ASSERT_TRUE(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.' || (e->d_name[1] && (e->d_name[1] != '.' || e->d_name[2]));
        closedir(d);
        return n;
}

static void test_replace_file(void) {
        char dir[] = "/tmp/test-fileio-XXXXXX", path[64], link_path[64];
        _cleanup_free_ uint8_t *buf = NULL;
        ReplaceFile f;
        struct stat st;
        size_t n = 0;

        ASSERT_TRUE(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/out.bin", dir);
        ASSERT_OK(write_file(path, "old", 3));

        /* Not committed (a failed or cancelled read): the old file, no temporary. */
        ASSERT_OK(replace_file_open(path, &f));
        ASSERT_OK(write_all(f.fd, "new data", 8));
        ASSERT_EQ(count_entries(dir), 2);
        replace_file_done(&f);
        replace_file_done(&f);
        ASSERT_OK(read_file(path, 100, &buf, &n));
        ASSERT_EQ(n, 3);
        ASSERT_TRUE(memcmp(buf, "old", 3) == 0);
        buf = mfree(buf);
        ASSERT_EQ(count_entries(dir), 1);

        /* Committed: the new content, mode 0644 under umask 022. */
        umask(022);
        ASSERT_OK(replace_file_open(path, &f));
        ASSERT_OK(write_all(f.fd, "new data", 8));
        ASSERT_OK(replace_file_commit(&f));
        ASSERT_EQ(f.fd, -1);
        ASSERT_OK(read_file(path, 100, &buf, &n));
        ASSERT_EQ(n, 8);
        ASSERT_TRUE(memcmp(buf, "new data", 8) == 0);
        buf = mfree(buf);
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0644);
        ASSERT_EQ(count_entries(dir), 1);

        /* Through a symlink: its target is replaced, the link stays. */
        snprintf(link_path, sizeof link_path, "%s/link.bin", dir);
        ASSERT_OK(symlink("out.bin", link_path));
        ASSERT_OK(replace_file_open(link_path, &f));
        ASSERT_OK(write_all(f.fd, "linked", 6));
        ASSERT_OK(replace_file_commit(&f));
        ASSERT_OK(lstat(link_path, &st));
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        ASSERT_OK(read_file(path, 100, &buf, &n));
        ASSERT_EQ(n, 6);
        buf = mfree(buf);

        /* A device is written as it is. */
        ASSERT_OK(replace_file_open("/dev/null", &f));
        ASSERT_TRUE(f.fd >= 0 && !f.temp);
        ASSERT_OK(replace_file_commit(&f));
        ASSERT_OK(stat("/dev/null", &st));
        ASSERT_TRUE(S_ISCHR(st.st_mode));

        /* A new file. */
        ASSERT_OK(unlink(link_path));
        ASSERT_OK(unlink(path));
        ASSERT_OK(replace_file_open(path, &f));
        replace_file_done(&f);
        ASSERT_EQ(count_entries(dir), 0);
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        TEST(test_read_write);
        TEST(test_empty_and_pipe);
        TEST(test_replace_file);
        return 0;
}
