/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Intel HEX: ":LLAAAATT<data>CC" records, one per line (LF or CRLF; blank lines and
 * surrounding blanks are ignored). Types 00 data, 01 end of file, 02 extended segment
 * address, 03 start segment address, 04 extended linear address, 05 start linear
 * address. Addresses are computed linearly (base + offset), without the 8086 wrap at a
 * 64 KiB boundary, which is what every toolchain writing HEX for 32-bit parts means.
 * The end-of-file record is required (a truncated file must not be flashed), and
 * anything but blank lines after it is an error (a concatenation of two files would
 * otherwise lose the second one silently). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "image-internal.h"

enum {
        HEX_DATA = 0x00,
        HEX_EOF = 0x01,
        HEX_EXT_SEGMENT = 0x02,
        HEX_START_SEGMENT = 0x03,
        HEX_EXT_LINEAR = 0x04,
        HEX_START_LINEAR = 0x05,
};

static const char *const hex_type_names[] = {
        [HEX_DATA] = "data",
        [HEX_EOF] = "end-of-file",
        [HEX_EXT_SEGMENT] = "extended segment address",
        [HEX_START_SEGMENT] = "start segment address",
        [HEX_EXT_LINEAR] = "extended linear address",
        [HEX_START_LINEAR] = "start linear address",
};

static int check_length(uint8_t type, size_t have, size_t want, size_t line, size_t offset, ImageError *err) {
        if (have != want)
                return image_error(err, -EINVAL, line, offset,
                                   "%s record (type 0x%02X) must hold %zu data bytes, not %zu",
                                   hex_type_names[type], type, want, have);
        return 0;
}

int image_parse_hex(const uint8_t *data, size_t size, Image **ret, ImageError *err) {
        const char *buf = (const char *) data;
        ImageBuilder b = {};
        uint64_t base = 0;
        uint32_t entry = 0;
        size_t pos = 0, line = 0, eof_line = 0;
        const char *text;
        size_t len, offset;
        int r;

        while (image_text_next_line(buf, size, &pos, &line, &text, &len, &offset)) {
                uint8_t rec[5 + 255];
                size_t n_data;
                uint16_t addr;
                uint8_t type, sum = 0;

                if (eof_line > 0) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "data after the end-of-file record on line %zu", eof_line);
                        goto fail;
                }
                if (text[0] != ':') {
                        r = image_error(err, -EINVAL, line, offset,
                                        "not a HEX record (does not start with ':')");
                        goto fail;
                }

                r = image_text_decode_hex(text + 1, len - 1, line, offset + 1, 2, rec, sizeof(rec), err);
                if (r < 0)
                        goto fail;
                if (r < 5) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "record too short (%d bytes, at least 5)", r);
                        goto fail;
                }
                n_data = (size_t) r - 5;
                if (rec[0] != n_data) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "record length 0x%02X (%u bytes) does not match the %zu data bytes on the line",
                                        rec[0], rec[0], n_data);
                        goto fail;
                }

                for (size_t i = 0; i < n_data + 4; i++)
                        sum += rec[i];
                if ((uint8_t) (sum + rec[n_data + 4]) != 0) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "checksum 0x%02X, expected 0x%02X",
                                        rec[n_data + 4], (uint8_t) -sum);
                        goto fail;
                }

                addr = (uint16_t) (rec[1] << 8 | rec[2]);
                type = rec[3];
                const uint8_t *d = rec + 4;

                switch (type) {
                case HEX_DATA:
                        r = image_builder_add(&b, base + addr, d, n_data, line, offset, err);
                        if (r < 0)
                                goto fail;
                        break;
                case HEX_EOF:
                        r = check_length(type, n_data, 0, line, offset, err);
                        if (r < 0)
                                goto fail;
                        eof_line = line;
                        break;
                case HEX_EXT_SEGMENT:
                        r = check_length(type, n_data, 2, line, offset, err);
                        if (r < 0)
                                goto fail;
                        base = (uint64_t) (d[0] << 8 | d[1]) << 4;
                        break;
                case HEX_START_SEGMENT:
                        r = check_length(type, n_data, 4, line, offset, err);
                        if (r < 0)
                                goto fail;
                        /* CS:IP, as a real-mode linear address */
                        entry = ((uint32_t) (d[0] << 8 | d[1]) << 4) + (uint32_t) (d[2] << 8 | d[3]);
                        break;
                case HEX_EXT_LINEAR:
                        r = check_length(type, n_data, 2, line, offset, err);
                        if (r < 0)
                                goto fail;
                        base = (uint64_t) (d[0] << 8 | d[1]) << 16;
                        break;
                case HEX_START_LINEAR:
                        r = check_length(type, n_data, 4, line, offset, err);
                        if (r < 0)
                                goto fail;
                        entry = (uint32_t) d[0] << 24 | (uint32_t) d[1] << 16 | (uint32_t) d[2] << 8 | d[3];
                        break;
                default:
                        r = image_error(err, -EINVAL, line, offset, "record type 0x%02X unknown", type);
                        goto fail;
                }
        }

        if (eof_line == 0) {
                r = image_error(err, -EINVAL, line, size,
                                "no end-of-file record (:00000001FF): the file is truncated");
                goto fail;
        }

        return image_builder_finalize(&b, IMAGE_FORMAT_HEX, entry, ret, err);

fail:
        image_builder_done(&b);
        return r;
}
