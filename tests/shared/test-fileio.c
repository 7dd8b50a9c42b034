/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole-file I/O: a regular file read from its start whatever the descriptor's
 * position, the size cap, what is not a regular file; writes that complete. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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

int main(void) {
        TEST(test_read_write);
        TEST(test_empty_and_pipe);
        return 0;
}
