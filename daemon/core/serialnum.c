/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Serial numbers: formats, counter names, the image patch. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "serialnum.h"
#include "string-util.h"

/* Rewrites FMT's one conversion to take a uint64_t; -EINVAL unless there is exactly
 * one, of the %u family. */
static int text_layout(const char *fmt, char *out, size_t size) {
        size_t o = 0;
        unsigned n_conv = 0;

        for (const char *p = fmt; *p; p++) {
                char spec[24];
                size_t k = 0;
                const char *conv;

                if (*p != '%') {
                        if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
                                return -EINVAL; /* ASCII, printable */
                        if (o + 1 >= size)
                                return -EINVAL;
                        out[o++] = *p;
                        continue;
                }
                if (p[1] == '%') {
                        if (o + 2 >= size)
                                return -EINVAL;
                        out[o++] = '%';
                        out[o++] = '%';
                        p++;
                        continue;
                }
                spec[k++] = '%';
                p++;
                while (*p == '0' || *p == '-')
                        if (k < 4)
                                spec[k++] = *p++;
                        else
                                return -EINVAL;
                for (unsigned digits = 0; *p >= '0' && *p <= '9'; digits++)
                        if (digits < 2)
                                spec[k++] = *p++;
                        else
                                return -EINVAL; /* a width above 99 */
                while (*p == 'l' || *p == 'j' || *p == 'z')
                        p++;
                switch (*p) {
                case 'u':
                        conv = PRIu64;
                        break;
                case 'x':
                        conv = PRIx64;
                        break;
                case 'X':
                        conv = PRIX64;
                        break;
                case 'o':
                        conv = PRIo64;
                        break;
                default:
                        return -EINVAL;
                }
                if (++n_conv > 1)
                        return -EINVAL;
                spec[k] = 0;
                if (o + strlen(spec) + strlen(conv) >= size)
                        return -EINVAL;
                o += (size_t) snprintf(out + o, size - o, "%s%s", spec, conv);
        }
        if (n_conv != 1)
                return -EINVAL;
        out[o] = 0;
        return 0;
}

int serial_layout_parse(const char *s, SerialLayout *ret) {
        static const char *const names[] = {
                [SERIAL_FORMAT_LE32] = "le32",
                [SERIAL_FORMAT_LE64] = "le64",
                [SERIAL_FORMAT_BE32] = "be32",
                [SERIAL_FORMAT_BE64] = "be64",
        };
        SerialLayout l = {};

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i])) {
                        l.format = (SerialFormat) i;
                        *ret = l;
                        return 0;
                }
        if (strncmp(s, "text:", 5) != 0)
                return -EINVAL;
        l.format = SERIAL_FORMAT_TEXT;
        if (text_layout(s + 5, l.text, sizeof l.text) < 0)
                return -EINVAL;
        *ret = l;
        return 0;
}

int serial_render(const SerialLayout *l, uint64_t n, uint8_t *buf, size_t *ret_size) {
        size_t width = 0;
        bool big = false;

        switch (l->format) {
        case SERIAL_FORMAT_BE32:
                big = true;
                __attribute__((fallthrough));
        case SERIAL_FORMAT_LE32:
                if (n > UINT32_MAX)
                        return -ERANGE;
                width = 4;
                break;
        case SERIAL_FORMAT_BE64:
                big = true;
                __attribute__((fallthrough));
        case SERIAL_FORMAT_LE64:
                width = 8;
                break;
        case SERIAL_FORMAT_TEXT: {
                char text[SERIAL_BYTES_MAX + 1];
                int k;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                k = snprintf(text, sizeof text, l->text, n);
#pragma GCC diagnostic pop
                /* with at least one NUL, padded to a multiple of 8 */
                if (k < 0 || (size_t) k >= SERIAL_BYTES_MAX)
                        return -ERANGE;
                width = ((size_t) k + 1 + 7) / 8 * 8;
                memset(buf, 0, width);
                memcpy(buf, text, (size_t) k);
                *ret_size = width;
                return 0;
        }
        default:
                return -EINVAL;
        }
        for (size_t i = 0; i < width; i++)
                buf[big ? width - 1 - i : i] = (uint8_t) (n >> (8 * i));
        *ret_size = width;
        return 0;
}

bool serial_counter_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > SERIAL_COUNTER_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return true;
}

int serial_patch_image(Image *img, uint32_t address, const uint8_t *bytes, size_t size) {
        uint64_t end = (uint64_t) address + size;
        ImageSegment *segs;
        size_t at = 0;

        if (size == 0 || end > UINT64_C(1) << 32)
                return -ERANGE;
        for (size_t i = 0; i < img->n_segments; i++) {
                ImageSegment *s = &img->segments[i];
                uint64_t s_end = (uint64_t) s->address + s->size;

                if (address >= s->address && end <= s_end) {
                        memcpy(s->data + (address - s->address), bytes, size);
                        return 0;
                }
                /* touching or overlapping an edge */
                if (end >= s->address && address <= s_end)
                        return -ERANGE;
                if (s->address < address)
                        at = i + 1;
        }
        segs = realloc(img->segments, (img->n_segments + 1) * sizeof *segs);
        if (!segs)
                return -ENOMEM;
        img->segments = segs;
        memmove(segs + at + 1, segs + at, (img->n_segments - at) * sizeof *segs);
        segs[at] = (ImageSegment) { .address = address, .size = (uint32_t) size, .data = malloc(size) };
        if (!segs[at].data) {
                memmove(segs + at, segs + at + 1, (img->n_segments - at) * sizeof *segs);
                return -ENOMEM;
        }
        memcpy(segs[at].data, bytes, size);
        img->n_segments++;
        return 0;
}
