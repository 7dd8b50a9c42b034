/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Private to the image parsers: the segment builder, error reporting, and the line
 * and hex-digit helpers shared by the two text formats. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "macro.h"

/* One contiguous run of bytes as it was added; runs are merged in finalize. */
typedef struct ImageRun {
        uint32_t address;
        uint32_t size;
        size_t allocated;
        uint8_t *data;
        size_t seq;                     /* order of creation, keeps the sort stable */
        size_t line, offset;            /* where the run started, for overlap errors */
} ImageRun;

/* Add bytes at an address in any order; finalize sorts, rejects overlaps and merges
 * adjacent runs. Contiguous adds extend the current run, so a HEX file of thousands of
 * 16-byte records costs amortised O(1) each, and finalize is O(n log n) in runs. */
typedef struct ImageBuilder {
        ImageRun *runs;
        size_t n_runs, n_allocated;
} ImageBuilder;

/* Frees what the builder holds; it may be reused afterwards. */
void image_builder_done(ImageBuilder *b);

/* address is 64-bit so callers can pass unchecked sums: data that ends past
 * 0xFFFFFFFF fails -EFBIG. line/offset locate the source for error messages. */
int image_builder_add(ImageBuilder *b, uint64_t address, const void *data, size_t size,
                      size_t line, size_t offset, ImageError *err);

/* Builds the Image and empties the builder (also on failure). */
int image_builder_finalize(ImageBuilder *b, ImageFormat format, uint32_t entry,
                           Image **ret, ImageError *err);

/* Fills err (may be NULL) and returns r. With line > 0 the message gets a "line N: "
 * prefix. */
int image_error(ImageError *err, int r, size_t line, size_t offset, const char *fmt, ...) _printf_(5, 6);

/* Text formats: the next non-blank line, stripped of surrounding blanks and the line
 * ending (LF or CRLF). *pos and *line advance; returns false at the end of input. */
bool image_text_next_line(const char *buf, size_t size, size_t *pos, size_t *line,
                          const char **ret_text, size_t *ret_len, size_t *ret_offset);

/* Decodes hex digit pairs into out (capacity out_max). Errors name the line and the
 * column (column_base is the column of text[0], 1-based). Returns the byte count. */
int image_text_decode_hex(const char *text, size_t len, size_t line, size_t offset,
                          size_t column_base, uint8_t *out, size_t out_max, ImageError *err);

int image_parse_hex(const uint8_t *data, size_t size, Image **ret, ImageError *err);
int image_parse_srec(const uint8_t *data, size_t size, Image **ret, ImageError *err);
int image_parse_elf(const uint8_t *data, size_t size, Image **ret, ImageError *err);
