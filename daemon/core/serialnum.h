/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Serial numbers written into each board's image: how a number becomes bytes
 * (sn-format), which names a counter may have, and the patch of a parsed image in
 * memory (the caller's file is never touched). Pure: no files, no D-Bus. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef enum SerialFormat {
        SERIAL_FORMAT_LE32,             /* the default */
        SERIAL_FORMAT_LE64,
        SERIAL_FORMAT_BE32,
        SERIAL_FORMAT_BE64,
        SERIAL_FORMAT_TEXT,             /* text:FMT, ASCII, NUL-padded to a multiple of 8 */
        _SERIAL_FORMAT_MAX,
} SerialFormat;

/* The longest rendering (a text format's, NUL padding included). */
#define SERIAL_BYTES_MAX 64
#define SERIAL_COUNTER_NAME_MAX 64
#define SERIAL_COUNTER_DEFAULT "default"

/* A parsed sn-format. */
typedef struct SerialLayout {
        SerialFormat format;
        char text[SERIAL_BYTES_MAX];    /* TEXT: FMT with its one conversion rewritten for a uint64_t */
} SerialLayout;

/* "le32", "le64", "be32", "be64" or "text:FMT", where FMT has exactly one conversion
 * of the %u family (%u %x %X %o, with '0' or '-' flags, a width, and an l/ll/j/z length
 * that is ignored) and any number of "%%". -EINVAL otherwise. */
int serial_layout_parse(const char *s, SerialLayout *ret);
/* The bytes for n (size: at most SERIAL_BYTES_MAX). -ERANGE when n does not fit (a
 * 32-bit format above 0xFFFFFFFF, a text longer than SERIAL_BYTES_MAX with its NUL). */
int serial_render(const SerialLayout *l, uint64_t n, uint8_t *buf, size_t *ret_size);
/* 1..64 characters of [A-Za-z0-9_.-]. */
bool serial_counter_name_valid(const char *s);

/* Puts size bytes at address into img: inside one segment, or clear of every segment
 * (a new one: an area the image does not cover). -ERANGE when they straddle a
 * segment's edge or touch one (the number would silently merge into the image). */
int serial_patch_image(Image *img, uint32_t address, const uint8_t *bytes, size_t size);
