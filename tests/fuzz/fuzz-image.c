/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer entry point for the image parsers (built and run by tests/ci.sh):
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude/shared -Idaemon/core/image \
 *         tests/fuzz/fuzz-image.c daemon/core/image/image*.c -lelf
 *   ./a.out -max_total_time=30 tests/fuzz/corpus/fuzz-image
 * The first input byte picks the format and the flash window; the rest is the image.
 * tests/fuzz/fuzz-{hex,srec,elf}.c define FUZZ_FORMAT to fix the format (the byte then only
 * picks the window), so each parser gets the whole budget.
 * Beyond "no crash", every accepted image must keep the invariants of image.h. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_image(const Image *img) {
        uint64_t sum = 0;
        uint32_t start, end;

        for (size_t i = 0; i < img->n_segments; i++) {
                const ImageSegment *s = &img->segments[i];

                if (s->size == 0 || !s->data || (uint64_t) s->address + s->size > UINT32_MAX)
                        abort();
                if (i > 0 && (uint64_t) img->segments[i - 1].address + img->segments[i - 1].size >= s->address)
                        abort();        /* unsorted, overlapping or not merged */
                /* touch every byte so ASan sees a bad length */
                for (size_t k = 0; k < s->size; k += 64)
                        sum += s->data[k];
                sum += s->data[s->size - 1];
        }
        (void) sum;

        image_span(img, &start, &end);
        if (img->n_segments > 0 && (start != img->segments[0].address || end <= start))
                abort();
        if (image_size(img) > (uint64_t) end - start)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImageError err;
        Image *img = NULL;
        ImageFormat f;
        uint8_t sel;
        int r;

        if (size < 1)
                return 0;
        sel = data[0];
        data++, size--;

#ifdef FUZZ_FORMAT
        f = FUZZ_FORMAT;
#else
        f = (ImageFormat) (sel % _IMAGE_FORMAT_MAX);
        (void) image_detect(data, size);
        /* the Flash "format" option's parser */
        if (size < 16) {
                char name[16];
                ImageFormat g;

                memcpy(name, data, size);
                name[size] = '\0';
                if (image_format_from_string(name, &g) == 0 &&
                    (g >= _IMAGE_FORMAT_MAX || !image_format_to_string(g)))
                        abort();
        }
#endif

        r = image_parse(data, size, f, (sel & 0x80) ? 0xFFFFFF00 : 0x08000000, &img, &err);
        if (memchr(err.message, 0, sizeof(err.message)) == NULL)
                abort();
        if (r < 0) {
                if (img || (r != -EINVAL && r != -EFBIG && r != -ENOMEM))
                        abort();
                return 0;
        }
        if (!img)
                abort();

        check_image(img);
        r = image_check_range(img, 0x08000000, (sel & 0x40) ? 0x8000 : 0x40000, &err);
        if (r != 0 && r != -ERANGE)
                abort();
        image_free(img);
        return 0;
}
