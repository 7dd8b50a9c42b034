/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Motorola S-record: "S" type count address data checksum, one per line (LF or CRLF;
 * blank lines ignored). S0 header (ignored), S1/S2/S3 data with 16/24/32-bit
 * addresses, S5/S6 record counts (checked against the data records seen), S7/S8/S9
 * start address and end of file. As with HEX, the termination record is required and
 * only blank lines may follow it. */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include "image-internal.h"

static uint32_t be(const uint8_t *p, size_t n) {
        uint32_t v = 0;

        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

int image_parse_srec(const uint8_t *data, size_t size, Image **ret, ImageError *err) {
        const char *buf = (const char *) data;
        ImageBuilder b = {};
        uint32_t entry = 0;
        uint64_t n_data_records = 0;
        size_t pos = 0, line = 0, end_line = 0;
        const char *text;
        size_t len, offset;
        int r;

        while (image_text_next_line(buf, size, &pos, &line, &text, &len, &offset)) {
                /* address sizes by type; 0 = reserved or unknown */
                static const uint8_t addr_len[10] = { 2, 2, 3, 4, 0, 2, 3, 4, 3, 2 };
                uint8_t rec[1 + 255];
                size_t n_addr, n_data;
                uint8_t sum = 0;
                char type;

                if (end_line > 0) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "data after the termination record on line %zu", end_line);
                        goto fail;
                }
                if (text[0] != 'S') {
                        r = image_error(err, -EINVAL, line, offset,
                                        "not an S-record (does not start with 'S')");
                        goto fail;
                }
                if (len < 2) {
                        r = image_error(err, -EINVAL, line, offset, "record too short");
                        goto fail;
                }
                type = text[1];
                if (type < '0' || type > '9' || addr_len[type - '0'] == 0) {
                        if (type > ' ' && type < 0x7F)
                                r = image_error(err, -EINVAL, line, offset, "record type S%c unknown", type);
                        else
                                r = image_error(err, -EINVAL, line, offset,
                                                "record type byte 0x%02X unknown", (unsigned char) type);
                        goto fail;
                }
                n_addr = addr_len[type - '0'];

                r = image_text_decode_hex(text + 2, len - 2, line, offset + 2, 3, rec, sizeof(rec), err);
                if (r < 0)
                        goto fail;
                if ((size_t) r < 1 + n_addr + 1) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "record too short (%d bytes, S%c needs at least %zu)",
                                        r, type, 1 + n_addr + 1);
                        goto fail;
                }
                if (rec[0] != (size_t) r - 1) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "record length 0x%02X (%u bytes) does not match the %d bytes on the line",
                                        rec[0], rec[0], r - 1);
                        goto fail;
                }
                n_data = (size_t) r - 2 - n_addr;

                for (int i = 0; i < r - 1; i++)
                        sum += rec[i];
                /* the checksum is the ones' complement of the sum */
                if ((uint8_t) (sum + rec[r - 1]) != 0xFF) {
                        r = image_error(err, -EINVAL, line, offset,
                                        "checksum 0x%02X, expected 0x%02X", rec[r - 1], (uint8_t) (0xFF - sum));
                        goto fail;
                }

                uint32_t addr = be(rec + 1, n_addr);
                const uint8_t *d = rec + 1 + n_addr;

                switch (type) {
                case '0':
                        break;
                case '1':
                case '2':
                case '3':
                        r = image_builder_add(&b, addr, d, n_data, line, offset, err);
                        if (r < 0)
                                goto fail;
                        n_data_records++;
                        break;
                case '5':
                case '6':
                        if (n_data != 0) {
                                r = image_error(err, -EINVAL, line, offset,
                                                "count record S%c must not carry data", type);
                                goto fail;
                        }
                        /* S5 holds 16 bits, S6 24: larger counts wrap */
                        if (addr != (n_data_records & ((UINT64_C(1) << (8 * n_addr)) - 1))) {
                                r = image_error(err, -EINVAL, line, offset,
                                                "record count %" PRIu32 ", but %" PRIu64 " data records precede it",
                                                addr, n_data_records);
                                goto fail;
                        }
                        break;
                default: /* '7', '8', '9' */
                        if (n_data != 0) {
                                r = image_error(err, -EINVAL, line, offset,
                                                "termination record S%c must not carry data", type);
                                goto fail;
                        }
                        entry = addr;
                        end_line = line;
                        break;
                }
        }

        if (end_line == 0) {
                r = image_error(err, -EINVAL, line, size,
                                "no termination record (S7, S8 or S9): the file is truncated");
                goto fail;
        }

        return image_builder_finalize(&b, IMAGE_FORMAT_SREC, entry, ret, err);

fail:
        image_builder_done(&b);
        return r;
}
