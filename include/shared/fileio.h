/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whole-buffer I/O on file descriptors. */

#include <stddef.h>
#include <stdint.h>

/* Reads the regular file behind fd from offset 0, whatever the descriptor's position
 * (it is not moved), into a new buffer of *ret_size bytes (0 for an empty file; the
 * buffer is never NULL on success). A file that shrinks while read yields what is
 * there. -EINVAL: not a regular file; -EFBIG: larger than max (*ret_size is then its
 * size); else -errno. */
int read_regular_fd(int fd, size_t max, uint8_t **ret, size_t *ret_size);

/* write() until all of buf is written; 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* read_regular_fd() of the file at path (opened read-only), or open()'s -errno. */
int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_size);

/* Creates or truncates the file at path (mode 0644) and writes all of buf; 0 or -errno. */
int write_file(const char *path, const void *buf, size_t n);

/* A file replaced only once it is complete: written under a temporary name beside it
 * (".NAME.XXXXXX", same directory, so the rename stays on one file system), renamed over
 * it by replace_file_commit(); replace_file_done() without a commit unlinks the
 * temporary and leaves the old file as it was. A path that exists and is no regular
 * file (a device, a FIFO) is opened as it is (path and temp NULL); a symlink's target
 * is replaced. */
typedef struct ReplaceFile {
        int fd;
        char *path, *temp;
} ReplaceFile;

int replace_file_open(const char *path, ReplaceFile *ret);
/* Renames the temporary over the path and closes; 0 or -errno (the temporary is then
 * gone too). */
int replace_file_commit(ReplaceFile *f);
/* Closes; unlinks the temporary unless committed. Safe to call twice. */
void replace_file_done(ReplaceFile *f);
