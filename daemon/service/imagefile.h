/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* An image as the daemon takes it: a file read once into memory (from a caller's fd,
 * never a path a caller names; or the configuration's Image=), capped in size, then
 * parsed into segments for each board. The one loader of Flash and auto-flash. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* The largest flash of the supported parts is 64 KiB; Intel HEX/S-record text is about
 * 2.5x the data, ELF carries symbols and debug info: a generous cap, still small. */
#define IMAGE_FILE_MAX (4u * 1024 * 1024)

/* Reads the regular file behind fd from its start, whatever the descriptor's position.
 * -EINVAL: not a regular file; -EFBIG: larger than IMAGE_FILE_MAX (*ret_size: its
 * size); -ENODATA: empty; -ENOMEM; else the read's -errno. */
int image_file_read(int fd, uint8_t **ret, size_t *ret_size);

/* Parses a file's bytes; a raw binary goes to address, or to the flash base when
 * !have_address. -EINVAL (malformed: err says where), -EFBIG (beyond 4 GiB), -ENOMEM,
 * -ENODATA (it parses but holds no data), -EDOM (an address for a HEX, ELF or S-record
 * file, which carries its own: err says so). */
int image_file_parse(const void *data, size_t size, ImageFormat format, bool have_address, uint32_t address,
                     Image **ret, ImageError *err);
