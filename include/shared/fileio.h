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
