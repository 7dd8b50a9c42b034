/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

static int safe_close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

int read_regular_fd(int fd, size_t max, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t n = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > max) {
                *ret_size = (size_t) MIN((uint64_t) st.st_size, (uint64_t) SIZE_MAX);
                return -EFBIG;
        }
        buf = malloc((size_t) st.st_size ?: 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                /* pread: the caller's file position stays where it was */
                ssize_t k = pread(fd, buf + n, (size_t) st.st_size - n, (off_t) n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int write_all(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        return read_regular_fd(fd, max, ret, ret_size);
}

int write_file(const char *path, const void *buf, size_t n) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        int r;

        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, n);
        if (r < 0)
                return r;
        return close(TAKE_FD(fd)) < 0 ? -errno : 0;
}

int replace_file_open(const char *path, ReplaceFile *ret) {
        _cleanup_free_ char *target = NULL, *temp = NULL;
        const char *slash;
        struct stat st;
        mode_t mask;
        int fd;

        *ret = (ReplaceFile) { .fd = -1 };
        /* A device or a pipe (/dev/stdout, a FIFO) is written as it is: renaming over it
         * would replace the node. A symlink's target is the file replaced. */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
                fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return -errno;
                ret->fd = fd;
                return 0;
        }
        target = realpath(path, NULL);
        if (!target) {
                if (errno != ENOENT)
                        return -errno;
                target = strdup(path);
                if (!target)
                        return -ENOMEM;
        }
        slash = strrchr(target, '/');
        if (asprintf(&temp, "%.*s.%s.XXXXXX", slash ? (int) (slash - target + 1) : 0, target,
                     slash ? slash + 1 : target) < 0)
                return -ENOMEM;
        fd = mkostemp(temp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* mkstemp's 0600, as open(0644) would have made it */
        mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0644 & ~mask) < 0) {
                int r = -errno;

                (void) unlink(temp);
                close(fd);
                return r;
        }
        *ret = (ReplaceFile) { .fd = fd, .path = TAKE_PTR(target), .temp = TAKE_PTR(temp) };
        return 0;
}

int replace_file_commit(ReplaceFile *f) {
        int r = 0;

        if (f->temp && rename(f->temp, f->path) < 0)
                r = -errno;
        else
                f->temp = mfree(f->temp);
        replace_file_done(f);
        return r;
}

void replace_file_done(ReplaceFile *f) {
        if (f->temp)
                (void) unlink(f->temp);
        f->temp = mfree(f->temp);
        f->path = mfree(f->path);
        f->fd = safe_close_fd(f->fd);
}
