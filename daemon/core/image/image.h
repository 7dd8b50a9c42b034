/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Firmware images: raw binary, Intel HEX, ELF and Motorola S-record, parsed from a
 * buffer into a sorted list of non-overlapping (address, bytes) segments. Adjacent
 * data is merged into one segment; gaps make separate segments; overlapping data is
 * an error. All data ends at or below 0xFFFFFFFF (else -EFBIG), so address + size
 * always fits a uint32_t. HEX and S-record files must end with their end-of-file /
 * termination record (a truncated file is -EINVAL); only blank lines may follow it.
 * ELF: PT_LOAD segments with p_filesz > 0, placed at p_paddr (the load address). */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum ImageFormat {
        IMAGE_FORMAT_AUTO,
        IMAGE_FORMAT_BIN,
        IMAGE_FORMAT_HEX,
        IMAGE_FORMAT_ELF,
        IMAGE_FORMAT_SREC,
        _IMAGE_FORMAT_MAX,
} ImageFormat;

typedef struct ImageSegment {
        uint32_t address;
        uint32_t size;
        uint8_t *data;
} ImageSegment;

typedef struct Image {
        ImageFormat format;             /* the format it was parsed as */
        ImageSegment *segments;         /* sorted by address, disjoint, not adjacent */
        size_t n_segments;
        uint32_t entry;                 /* ELF/HEX/S-record start address, 0 when none */
} Image;

/* What went wrong, for the user: "line 12: checksum 0x3D, expected 0x3C". The message
 * is complete by itself (it carries the "line N: " prefix); offset is the byte offset
 * of the offending line or character (text formats) or segment (ELF). */
typedef struct ImageError {
        size_t line;                    /* 1-based text line (HEX, S-record), 0 if n/a */
        size_t offset;                  /* byte offset in the input */
        char message[256];
} ImageError;

/* Parses size bytes. bin_address places a raw binary (ignored by the other formats).
 * Returns 0, -EINVAL (malformed; err says where), -ENOMEM, -EFBIG (beyond 4 GiB).
 * err may be NULL. */
int image_parse(const void *data, size_t size, ImageFormat format, uint32_t bin_address,
                Image **ret, ImageError *err);

/* Guesses the format from the content: ELF magic, ':' HEX records, 'S0'..'S9'
 * records (after leading blank lines), else binary (also for empty input). */
ImageFormat image_detect(const void *data, size_t size);

Image *image_free(Image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);

/* Sum of segment sizes. */
uint64_t image_size(const Image *img);
/* Lowest address and one past the highest address (0,0 for an empty image). */
void image_span(const Image *img, uint32_t *ret_start, uint32_t *ret_end);
/* 0 if every segment lies in [base, base+size), else -ERANGE and err names the segment. */
int image_check_range(const Image *img, uint32_t base, uint32_t size, ImageError *err);

const char *image_format_to_string(ImageFormat f);
/* "auto", "bin", "hex" (also "ihex"), "elf", "srec" (also "s19", "mot"); -EINVAL otherwise. */
int image_format_from_string(const char *s, ImageFormat *ret);
