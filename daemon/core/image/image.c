/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "image-internal.h"
#include "image.h"

/* Nothing may end past the last byte of the 32-bit address space, so that
 * address + size always fits a uint32_t (image_span() returns it). */
#define ADDRESS_LIMIT ((uint64_t) UINT32_MAX)

int image_error(ImageError *err, int r, size_t line, size_t offset, const char *fmt, ...) {
        va_list ap;
        int n = 0;

        if (!err)
                return r;

        err->line = line;
        err->offset = offset;
        if (line > 0)
                n = snprintf(err->message, sizeof(err->message), "line %zu: ", line);
        if (n < 0 || (size_t) n >= sizeof(err->message))
                n = 0;

        va_start(ap, fmt);
        vsnprintf(err->message + n, sizeof(err->message) - n, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- the segment builder ---- */

void image_builder_done(ImageBuilder *b) {
        for (size_t i = 0; i < b->n_runs; i++)
                free(b->runs[i].data);
        free(b->runs);
        *b = (ImageBuilder) {};
}

/* Appends to a run, growing geometrically. The caller checked the address space. */
static int run_append(ImageRun *run, const void *data, size_t size) {
        if (size > run->allocated - run->size) {
                size_t want = MAX((size_t) run->size + size, run->allocated * 2);
                uint8_t *p;

                want = MAX(want, (size_t) 64);
                p = realloc(run->data, want);
                if (!p)
                        return -ENOMEM;
                run->data = p;
                run->allocated = want;
        }
        memcpy(run->data + run->size, data, size);
        run->size += (uint32_t) size;
        return 0;
}

int image_builder_add(ImageBuilder *b, uint64_t address, const void *data, size_t size,
                      size_t line, size_t offset, ImageError *err) {
        ImageRun *last;

        if (size == 0)
                return 0;
        if (address > ADDRESS_LIMIT || (uint64_t) size > ADDRESS_LIMIT || address + size > ADDRESS_LIMIT)
                return image_error(err, -EFBIG, line, offset,
                                   "data at 0x%08" PRIX64 " (%zu bytes) runs past the 32-bit address space",
                                   address, size);

        last = b->n_runs > 0 ? &b->runs[b->n_runs - 1] : NULL;
        if (last && (uint64_t) last->address + last->size == address)
                return run_append(last, data, size);

        if (b->n_runs == b->n_allocated) {
                size_t want = MAX(b->n_allocated * 2, (size_t) 16);
                ImageRun *p;

                if (want > SIZE_MAX / sizeof(ImageRun))
                        return -ENOMEM;
                p = realloc(b->runs, want * sizeof(ImageRun));
                if (!p)
                        return -ENOMEM;
                b->runs = p;
                b->n_allocated = want;
        }

        last = &b->runs[b->n_runs];
        *last = (ImageRun) {
                .address = (uint32_t) address,
                .seq = b->n_runs,
                .line = line,
                .offset = offset,
        };
        b->n_runs++;
        return run_append(last, data, size);
}

static int run_compare(const void *a, const void *b) {
        const ImageRun *x = a, *y = b;

        if (x->address != y->address)
                return x->address < y->address ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int image_builder_finalize(ImageBuilder *b, ImageFormat format, uint32_t entry,
                           Image **ret, ImageError *err) {
        _cleanup_(image_freep) Image *img = NULL;
        size_t n = 0;
        int r;

        img = calloc(1, sizeof(Image));
        if (!img) {
                r = -ENOMEM;
                goto finish;
        }
        img->format = format;
        img->entry = entry;

        if (b->n_runs > 1)
                qsort(b->runs, b->n_runs, sizeof(ImageRun), run_compare);

        /* Merge in place: runs[n-1] is the segment being grown. */
        for (size_t i = 0; i < b->n_runs; i++) {
                ImageRun *cur = &b->runs[i];

                if (n > 0) {
                        ImageRun *prev = &b->runs[n - 1];
                        uint64_t prev_end = (uint64_t) prev->address + prev->size;

                        if (cur->address < prev_end) {
                                r = image_error(err, -EINVAL, MAX(cur->line, prev->line),
                                                cur->line >= prev->line ? cur->offset : prev->offset,
                                                "data at 0x%08" PRIX32 " overlaps data at 0x%08" PRIX32 "..0x%08" PRIX64,
                                                cur->address, prev->address, prev_end - 1);
                                goto finish;
                        }
                        if (cur->address == prev_end) {
                                r = run_append(prev, cur->data, cur->size);
                                if (r < 0)
                                        goto finish;
                                free(cur->data);
                                cur->data = NULL;
                                continue;
                        }
                }
                if (n != i) {
                        b->runs[n] = *cur;
                        cur->data = NULL;
                }
                n++;
        }
        /* Runs past n now own no data. */
        for (size_t i = n; i < b->n_runs; i++)
                b->runs[i].data = NULL;
        b->n_runs = n;

        if (n > 0) {
                img->segments = calloc(n, sizeof(ImageSegment));
                if (!img->segments) {
                        r = -ENOMEM;
                        goto finish;
                }
                for (size_t i = 0; i < n; i++) {
                        ImageRun *run = &b->runs[i];
                        uint8_t *p = realloc(run->data, run->size);  /* drop the slack */

                        img->segments[i] = (ImageSegment) {
                                .address = run->address,
                                .size = run->size,
                                .data = p ?: run->data,
                        };
                        run->data = NULL;
                        img->n_segments++;
                }
        }

        *ret = TAKE_PTR(img);
        r = 0;
finish:
        image_builder_done(b);
        return r;
}

/* ---- text helpers ---- */

static bool is_blank(char c) {
        /* 0x1A: a DOS end-of-file mark some old tools leave at the end */
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == 0x1A;
}

bool image_text_next_line(const char *buf, size_t size, size_t *pos, size_t *line,
                          const char **ret_text, size_t *ret_len, size_t *ret_offset) {
        size_t p = *pos;

        /* A UTF-8 byte order mark some editors add. */
        if (p == 0 && size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
                p = 3;

        while (p < size) {
                const char *nl = memchr(buf + p, '\n', size - p);
                size_t end = nl ? (size_t) (nl - buf) : size;
                size_t s = p, e = end;

                (*line)++;
                p = nl ? end + 1 : size;

                while (s < e && is_blank(buf[s]))
                        s++;
                while (e > s && is_blank(buf[e - 1]))
                        e--;
                if (s == e)
                        continue;

                *pos = p;
                *ret_text = buf + s;
                *ret_len = e - s;
                *ret_offset = s;
                return true;
        }

        *pos = p;
        return false;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int image_text_decode_hex(const char *text, size_t len, size_t line, size_t offset,
                          size_t column_base, uint8_t *out, size_t out_max, ImageError *err) {
        for (size_t i = 0; i < len; i++)
                if (hex_value(text[i]) < 0) {
                        unsigned char c = (unsigned char) text[i];

                        if (c > ' ' && c < 0x7F)
                                return image_error(err, -EINVAL, line, offset + i,
                                                   "'%c' at column %zu is not a hex digit",
                                                   c, column_base + i);
                        return image_error(err, -EINVAL, line, offset + i,
                                           "byte 0x%02X at column %zu is not a hex digit",
                                           c, column_base + i);
                }

        if (len % 2 != 0)
                return image_error(err, -EINVAL, line, offset,
                                   "odd number of hex digits (%zu)", len);
        if (len / 2 > out_max)
                return image_error(err, -EINVAL, line, offset,
                                   "record too long (%zu hex digits, at most %zu)", len, out_max * 2);

        for (size_t i = 0; i < len / 2; i++)
                out[i] = (uint8_t) (hex_value(text[2 * i]) << 4 | hex_value(text[2 * i + 1]));
        return (int) (len / 2);
}

/* ---- public ---- */

static int parse_bin(const uint8_t *data, size_t size, uint32_t address, Image **ret, ImageError *err) {
        ImageBuilder b = {};
        int r;

        r = image_builder_add(&b, address, data, size, 0, 0, err);
        if (r < 0) {
                image_builder_done(&b);
                return r;
        }
        return image_builder_finalize(&b, IMAGE_FORMAT_BIN, 0, ret, err);
}

int image_parse(const void *data, size_t size, ImageFormat format, uint32_t bin_address,
                Image **ret, ImageError *err) {
        if (err)
                *err = (ImageError) {};
        if (!ret || (!data && size > 0))
                return -EINVAL;
        if (size == 0)
                return image_error(err, -EINVAL, 0, 0, "image is empty");

        if (format == IMAGE_FORMAT_AUTO)
                format = image_detect(data, size);

        switch (format) {
        case IMAGE_FORMAT_BIN:
                return parse_bin(data, size, bin_address, ret, err);
        case IMAGE_FORMAT_HEX:
                return image_parse_hex(data, size, ret, err);
        case IMAGE_FORMAT_ELF:
                return image_parse_elf(data, size, ret, err);
        case IMAGE_FORMAT_SREC:
                return image_parse_srec(data, size, ret, err);
        default:
                return image_error(err, -EINVAL, 0, 0, "unknown image format %d", (int) format);
        }
}

ImageFormat image_detect(const void *data, size_t size) {
        const char *p = data;
        size_t i = 0;

        if (!data || size == 0)
                return IMAGE_FORMAT_BIN;
        if (size >= 4 && memcmp(p, "\x7F" "ELF", 4) == 0)
                return IMAGE_FORMAT_ELF;

        if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
                i = 3;
        while (i < size && (is_blank(p[i]) || p[i] == '\n'))
                i++;

        /* Two hex digits after the record mark are enough: a broken HEX file should get a
         * HEX error, not be flashed as raw bytes. */
        if (size - i >= 3 && p[i] == ':' && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0)
                return IMAGE_FORMAT_HEX;
        if (size - i >= 4 && p[i] == 'S' && p[i + 1] >= '0' && p[i + 1] <= '9' &&
            hex_value(p[i + 2]) >= 0 && hex_value(p[i + 3]) >= 0)
                return IMAGE_FORMAT_SREC;

        return IMAGE_FORMAT_BIN;
}

Image *image_free(Image *img) {
        if (!img)
                return NULL;
        for (size_t i = 0; i < img->n_segments; i++)
                free(img->segments[i].data);
        free(img->segments);
        free(img);
        return NULL;
}

uint64_t image_size(const Image *img) {
        uint64_t sum = 0;

        if (!img)
                return 0;
        for (size_t i = 0; i < img->n_segments; i++)
                sum += img->segments[i].size;
        return sum;
}

void image_span(const Image *img, uint32_t *ret_start, uint32_t *ret_end) {
        uint32_t start = 0, end = 0;

        if (img && img->n_segments > 0) {
                const ImageSegment *last = &img->segments[img->n_segments - 1];

                start = img->segments[0].address;
                end = last->address + last->size;       /* the builder keeps this below 4 GiB */
        }
        if (ret_start)
                *ret_start = start;
        if (ret_end)
                *ret_end = end;
}

int image_check_range(const Image *img, uint32_t base, uint32_t size, ImageError *err) {
        uint64_t end = (uint64_t) base + size;

        if (err)
                *err = (ImageError) {};
        if (!img)
                return -EINVAL;

        for (size_t i = 0; i < img->n_segments; i++) {
                const ImageSegment *s = &img->segments[i];
                uint64_t s_end = (uint64_t) s->address + s->size;

                if (s->address < base)
                        return image_error(err, -ERANGE, 0, 0,
                                           "data at 0x%08" PRIX32 "..0x%08" PRIX64 " lies below the flash (0x%08" PRIX32 "..0x%08" PRIX64 ")",
                                           s->address, s_end - 1, base, end - 1);
                if (s->address >= end)
                        return image_error(err, -ERANGE, 0, 0,
                                           "data at 0x%08" PRIX32 "..0x%08" PRIX64 " lies past the end of the flash (0x%08" PRIX32 "..0x%08" PRIX64 ")",
                                           s->address, s_end - 1, base, end - 1);
                if (s_end > end)
                        return image_error(err, -ERANGE, 0, 0,
                                           "data at 0x%08" PRIX32 "..0x%08" PRIX64 " runs past the end of the flash at 0x%08" PRIX64,
                                           s->address, s_end - 1, end - 1);
        }
        return 0;
}

static const char *const format_names[_IMAGE_FORMAT_MAX] = {
        [IMAGE_FORMAT_AUTO] = "auto",
        [IMAGE_FORMAT_BIN] = "bin",
        [IMAGE_FORMAT_HEX] = "hex",
        [IMAGE_FORMAT_ELF] = "elf",
        [IMAGE_FORMAT_SREC] = "srec",
};

const char *image_format_to_string(ImageFormat f) {
        if ((unsigned) f >= _IMAGE_FORMAT_MAX)
                return NULL;
        return format_names[f];
}

int image_format_from_string(const char *s, ImageFormat *ret) {
        static const struct {
                const char *name;
                ImageFormat format;
        } aliases[] = {
                { "auto", IMAGE_FORMAT_AUTO },
                { "bin", IMAGE_FORMAT_BIN },
                { "binary", IMAGE_FORMAT_BIN },
                { "hex", IMAGE_FORMAT_HEX },
                { "ihex", IMAGE_FORMAT_HEX },
                { "elf", IMAGE_FORMAT_ELF },
                { "srec", IMAGE_FORMAT_SREC },
                { "s19", IMAGE_FORMAT_SREC },
                { "mot", IMAGE_FORMAT_SREC },
        };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (strcasecmp(s, aliases[i].name) == 0) {
                        if (ret)
                                *ret = aliases[i].format;
                        return 0;
                }
        return -EINVAL;
}
