/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image parsers: every input is generated here (HEX and S-record text, a hand
 * assembled ELF32), so the expected bytes and addresses are known exactly. */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "test-util.h"

/* ---- input builders ---- */

typedef struct Text {
        char *buf;
        size_t len, allocated;
} Text;

static void text_add(Text *t, const char *fmt, ...) _printf_(2, 3);
static void text_add(Text *t, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        ASSERT_TRUE(n >= 0);
        if (t->len + n + 1 > t->allocated) {
                t->allocated = MAX(t->allocated * 2, t->len + n + 1);
                t->buf = realloc(t->buf, t->allocated);
                ASSERT_TRUE(t->buf);
        }
        va_start(ap, fmt);
        vsnprintf(t->buf + t->len, n + 1, fmt, ap);
        va_end(ap);
        t->len += n;
}

static void text_done(Text *t) {
        free(t->buf);
        *t = (Text) {};
}

static void text_byte(Text *t, bool lower, unsigned v) {
        text_add(t, lower ? "%02x" : "%02X", v & 0xFF);
}

/* One Intel HEX record; eol is "\n" or "\r\n". */
static void hex_record(Text *t, uint8_t type, uint16_t addr, const void *data, size_t n, bool lower, const char *eol) {
        const uint8_t *d = data;
        uint8_t sum = (uint8_t) n + (addr >> 8) + (addr & 0xFF) + type;

        text_add(t, ":");
        text_byte(t, lower, (unsigned) n);
        text_byte(t, lower, addr >> 8);
        text_byte(t, lower, addr & 0xFF);
        text_byte(t, lower, type);
        for (size_t i = 0; i < n; i++) {
                text_byte(t, lower, d[i]);
                sum += d[i];
        }
        text_byte(t, lower, (uint8_t) -sum);
        text_add(t, "%s", eol);
}

static void hex_ela(Text *t, uint16_t upper) {
        uint8_t d[2] = { upper >> 8, upper & 0xFF };
        hex_record(t, 0x04, 0, d, 2, false, "\n");
}

static void hex_eof(Text *t) {
        hex_record(t, 0x01, 0, NULL, 0, false, "\n");
}

/* Data as 16-byte records with 04 records wherever the upper half changes. */
static void hex_data(Text *t, uint32_t address, const uint8_t *data, size_t n, uint32_t *upper) {
        for (size_t i = 0; i < n;) {
                uint32_t a = address + (uint32_t) i;
                size_t chunk = MIN((size_t) 16, n - i);

                chunk = MIN(chunk, (size_t) (0x10000 - (a & 0xFFFF)));
                if (!upper || *upper != a >> 16) {
                        hex_ela(t, (uint16_t) (a >> 16));
                        if (upper)
                                *upper = a >> 16;
                }
                hex_record(t, 0x00, a & 0xFFFF, data + i, chunk, false, "\n");
                i += chunk;
        }
}

static void srec_record(Text *t, char type, uint32_t addr, const void *data, size_t n) {
        static const size_t alen[10] = { 2, 2, 3, 4, 0, 2, 3, 4, 3, 2 };
        size_t al = alen[type - '0'];
        const uint8_t *d = data;
        uint8_t count = (uint8_t) (al + n + 1), sum = count;

        text_add(t, "S%c%02X", type, count);
        for (size_t i = 0; i < al; i++) {
                uint8_t b = (uint8_t) (addr >> (8 * (al - 1 - i)));
                text_add(t, "%02X", b);
                sum += b;
        }
        for (size_t i = 0; i < n; i++) {
                text_add(t, "%02X", d[i]);
                sum += d[i];
        }
        text_add(t, "%02X\n", (uint8_t) ~sum);
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = (uint8_t) (seed >> 16);
        }
}

static int parse_text(const Text *t, ImageFormat f, Image **img, ImageError *err) {
        return image_parse(t->buf, t->len, f, 0, img, err);
}

/* The parse fails -EINVAL on the given line with msg in the message. */
static void assert_fails(const char *what, const void *data, size_t size, ImageFormat f,
                         int r_expected, size_t line, const char *msg) {
        Image *img = NULL;
        ImageError err;
        int r;

        r = image_parse(data, size, f, 0x08000000, &img, &err);
        fprintf(stderr, "   %s: %d \"%s\"\n", what, r, err.message);
        ASSERT_EQ(r, r_expected);
        ASSERT_TRUE(img == NULL);
        ASSERT_EQ(err.line, line);
        if (!strstr(err.message, msg)) {
                fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.message, msg);
                abort();
        }
}

static void assert_segment(const Image *img, size_t i, uint32_t address, const void *data, uint32_t size) {
        ASSERT_TRUE(i < img->n_segments);
        ASSERT_EQ(img->segments[i].address, address);
        ASSERT_EQ(img->segments[i].size, size);
        ASSERT_MEMEQ(img->segments[i].data, data, size);
}

/* ---- tests ---- */

static void test_format_strings(void) {
        ImageFormat f;

        ASSERT_STREQ(image_format_to_string(IMAGE_FORMAT_AUTO), "auto");
        ASSERT_STREQ(image_format_to_string(IMAGE_FORMAT_BIN), "bin");
        ASSERT_STREQ(image_format_to_string(IMAGE_FORMAT_HEX), "hex");
        ASSERT_STREQ(image_format_to_string(IMAGE_FORMAT_ELF), "elf");
        ASSERT_STREQ(image_format_to_string(IMAGE_FORMAT_SREC), "srec");
        ASSERT_TRUE(image_format_to_string(_IMAGE_FORMAT_MAX) == NULL);

        for (ImageFormat i = 0; i < _IMAGE_FORMAT_MAX; i++) {
                ASSERT_OK(image_format_from_string(image_format_to_string(i), &f));
                ASSERT_EQ(f, i);
        }
        ASSERT_OK(image_format_from_string("ihex", &f));
        ASSERT_EQ(f, IMAGE_FORMAT_HEX);
        ASSERT_OK(image_format_from_string("s19", &f));
        ASSERT_EQ(f, IMAGE_FORMAT_SREC);
        ASSERT_OK(image_format_from_string("mot", &f));
        ASSERT_EQ(f, IMAGE_FORMAT_SREC);
        ASSERT_OK(image_format_from_string("HEX", &f));
        ASSERT_EQ(f, IMAGE_FORMAT_HEX);
        ASSERT_ERR(image_format_from_string("zip", &f), EINVAL);
        ASSERT_ERR(image_format_from_string("", &f), EINVAL);
        ASSERT_ERR(image_format_from_string(NULL, &f), EINVAL);
}

static void test_detect(void) {
        static const uint8_t vectors[] = { 0x00, 0x20, 0x00, 0x20, 0xC1, 0x00, 0x00, 0x08 };

        ASSERT_EQ(image_detect("\x7F" "ELF\x01\x01\x01", 7), IMAGE_FORMAT_ELF);
        ASSERT_EQ(image_detect(":020000040800F2\n", 16), IMAGE_FORMAT_HEX);
        ASSERT_EQ(image_detect("\r\n  \n:10", 8), IMAGE_FORMAT_HEX);
        ASSERT_EQ(image_detect(":0", 2), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect(":xy", 3), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect("S00F0000", 8), IMAGE_FORMAT_SREC);
        ASSERT_EQ(image_detect("\nS315", 5), IMAGE_FORMAT_SREC);
        ASSERT_EQ(image_detect("SX15", 4), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect("S1", 2), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect(vectors, sizeof(vectors)), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect("\x7F" "EL", 3), IMAGE_FORMAT_BIN);
        ASSERT_EQ(image_detect("", 0), IMAGE_FORMAT_BIN);
}

static void test_empty(void) {
        for (ImageFormat f = 0; f < _IMAGE_FORMAT_MAX; f++)
                assert_fails(image_format_to_string(f), "", 0, f, -EINVAL, 0, "image is empty");
}

static void test_bin(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t data[1000];
        uint32_t start, end;
        ImageError err;

        fill(data, sizeof(data), 1);
        data[0] = 0x00;         /* a vector table: not text */
        ASSERT_OK(image_parse(data, sizeof(data), IMAGE_FORMAT_AUTO, 0x08000000, &img, &err));
        ASSERT_EQ(img->format, IMAGE_FORMAT_BIN);
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x08000000, data, sizeof(data));
        ASSERT_EQ(img->entry, 0);
        ASSERT_EQ(image_size(img), 1000);
        image_span(img, &start, &end);
        ASSERT_EQ(start, 0x08000000);
        ASSERT_EQ(end, 0x080003E8);
        img = image_free(img);

        /* Forced bin of something that looks like HEX. */
        ASSERT_OK(image_parse(":00000001FF", 11, IMAGE_FORMAT_BIN, 0x20000000, &img, NULL));
        ASSERT_EQ(img->format, IMAGE_FORMAT_BIN);
        assert_segment(img, 0, 0x20000000, ":00000001FF", 11);
        img = image_free(img);

        ASSERT_ERR(image_parse(data, sizeof(data), IMAGE_FORMAT_BIN, 0xFFFFFC18, &img, &err), EFBIG);
        ASSERT_TRUE(img == NULL);
        ASSERT_TRUE(strstr(err.message, "data at 0xFFFFFC18 (1000 bytes) runs past the 32-bit address space"));
        /* ending at the last byte but one is fine */
        ASSERT_OK(image_parse(data, sizeof(data), IMAGE_FORMAT_BIN, 0xFFFFFC17, &img, &err));
        assert_segment(img, 0, 0xFFFFFC17, data, sizeof(data));
}

static void test_hex_roundtrip(void) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ uint8_t *data = malloc(200000);
        Text t = {};
        uint32_t upper = UINT32_MAX, start, end;
        uint8_t entry[4] = { 0x08, 0x00, 0x01, 0x23 };
        ImageError err;

        /* 12500 records crossing three 64 KiB boundaries, then start linear address. */
        ASSERT_TRUE(data);
        fill(data, 200000, 2);
        hex_data(&t, 0x0800F000, data, 200000, &upper);
        hex_record(&t, 0x05, 0, entry, 4, false, "\n");
        hex_eof(&t);

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_AUTO, &img, &err));
        ASSERT_EQ(img->format, IMAGE_FORMAT_HEX);
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x0800F000, data, 200000);
        ASSERT_EQ(img->entry, 0x08000123);
        image_span(img, &start, &end);
        ASSERT_EQ(start, 0x0800F000);
        ASSERT_EQ(end, 0x0800F000 + 200000);
        ASSERT_EQ(err.message[0], 0);
        text_done(&t);
}

static void test_hex_segment_address(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t seg[2] = { 0x10, 0x00 }, cs_ip[4] = { 0x12, 0x34, 0x56, 0x78 };
        uint8_t data[32];
        Text t = {};

        /* 02: base 0x1000 << 4 = 0x10000; 03: CS:IP -> 0x12340 + 0x5678 */
        fill(data, sizeof(data), 3);
        hex_record(&t, 0x02, 0, seg, 2, false, "\n");
        hex_record(&t, 0x00, 0x0010, data, 16, false, "\n");
        hex_record(&t, 0x00, 0x0020, data + 16, 16, false, "\n");
        hex_record(&t, 0x03, 0, cs_ip, 4, false, "\n");
        hex_eof(&t);

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_HEX, &img, NULL));
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x10010, data, 32);
        ASSERT_EQ(img->entry, 0x12340 + 0x5678);
        text_done(&t);
}

static void test_hex_cross_64k(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t data[32];
        Text t = {};

        fill(data, sizeof(data), 4);
        hex_ela(&t, 0x0800);
        hex_record(&t, 0x00, 0xFFF0, data, 16, false, "\n");
        hex_ela(&t, 0x0801);
        hex_record(&t, 0x00, 0x0000, data + 16, 16, false, "\n");
        hex_eof(&t);

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_HEX, &img, NULL));
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x0800FFF0, data, 32);
        ASSERT_EQ(img->entry, 0);
        text_done(&t);
}

static void test_hex_gaps_and_order(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t data[64];
        uint32_t start, end;
        Text t = {};

        /* Records out of order: 0x20..0x2F, 0x00..0x0F, 0x10..0x1F merge into one segment;
         * 0x100 is separate. 0x200 and 0x80 come later and sort before/after it. */
        fill(data, sizeof(data), 5);
        hex_ela(&t, 0x0800);
        hex_record(&t, 0x00, 0x0020, data + 32, 16, false, "\n");
        hex_record(&t, 0x00, 0x0100, data, 8, false, "\n");
        hex_record(&t, 0x00, 0x0000, data, 16, false, "\n");
        hex_record(&t, 0x00, 0x0010, data + 16, 16, false, "\n");
        hex_record(&t, 0x00, 0x0200, data, 4, false, "\n");
        hex_record(&t, 0x00, 0x0080, data, 1, false, "\n");
        hex_record(&t, 0x00, 0x0040, data, 0, false, "\n");   /* empty: ignored */
        hex_eof(&t);

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_HEX, &img, NULL));
        ASSERT_EQ(img->n_segments, 4);
        uint8_t first[48];
        memcpy(first, data, 16);
        memcpy(first + 16, data + 16, 16);
        memcpy(first + 32, data + 32, 16);
        assert_segment(img, 0, 0x08000000, first, 48);
        assert_segment(img, 1, 0x08000080, data, 1);
        assert_segment(img, 2, 0x08000100, data, 8);
        assert_segment(img, 3, 0x08000200, data, 4);
        ASSERT_EQ(image_size(img), 48 + 1 + 8 + 4);
        image_span(img, &start, &end);
        ASSERT_EQ(start, 0x08000000);
        ASSERT_EQ(end, 0x08000204);
        text_done(&t);
}

static void test_hex_lowercase_crlf(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t ela[2] = { 0x08, 0x00 }, data[32];
        Text t = {};

        fill(data, sizeof(data), 6);
        text_add(&t, "\r\n");
        hex_record(&t, 0x04, 0, ela, 2, true, "\r\n");
        hex_record(&t, 0x00, 0xab00, data, 16, true, "\r\n");
        hex_record(&t, 0x00, 0xab10, data + 16, 16, true, "  \r\n");
        hex_record(&t, 0x01, 0, NULL, 0, true, "\r\n");
        text_add(&t, "\r\n\r\n   \n");

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_AUTO, &img, NULL));
        ASSERT_EQ(img->format, IMAGE_FORMAT_HEX);
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x0800AB00, data, 32);
        img = image_free(img);

        /* No final newline at all. */
        t.len -= strlen("\r\n\r\n   \n") + 2;
        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_HEX, &img, NULL));
        assert_segment(img, 0, 0x0800AB00, data, 32);
        text_done(&t);
}

static void test_hex_errors(void) {
        uint8_t data[32];
        Text t = {};

        fill(data, sizeof(data), 7);

#define FAILS(text, line, msg) assert_fails(#line ": " msg, text, strlen(text), IMAGE_FORMAT_HEX, -EINVAL, line, msg)
        /* :10 0000 00 <16 bytes 00..0F> checksum: sum = 0x10 + 0x78 = 0x88 -> 0x78 */
        FAILS(":020000040800F2\n"
              ":10000000000102030405060708090A0B0C0D0E0F79\n"
              ":00000001FF\n", 2, "checksum 0x79, expected 0x78");
        FAILS(":020000040800F2\n"
              ":10000000000102030405060708090A0B0C0D0E78\n"
              ":00000001FF\n", 2, "record length 0x10 (16 bytes) does not match the 15 data bytes");
        FAILS(":020000040800F2\n"
              ":10000000000102030405060708090A0B0C0D0E0F7\n"
              ":00000001FF\n", 2, "odd number of hex digits");
        FAILS(":020000040800F2\n"
              ":0000000000\n"
              ":00000007F9\n"
              ":00000001FF\n", 3, "record type 0x07 unknown");
        FAILS(":020000040800F2\n"
              ":10000000000102030405060708090A0B0C0D0E0F78\n", 2, "no end-of-file record");
        FAILS(":020000040800F2\n"
              ":1000000000010203040506070G090A0B0C0D0E0F78\n"
              ":00000001FF\n", 2, "'G' at column 27 is not a hex digit");
        FAILS(":020000040800F2\n"
              ":10000000000102030405060708090A0B0C0D0E0F78\n"
              "\n"
              "\n"
              "10000000000102030405060708090A0B0C0D0E0F78\n"
              ":00000001FF\n", 5, "not a HEX record (does not start with ':')");
        FAILS(":00000001FF\n"
              ":020000040800F2\n", 2, "data after the end-of-file record on line 1");
        FAILS(":0000\n", 1, "record too short");
        FAILS(":0100000100FE\n", 1, "end-of-file record (type 0x01) must hold 0 data bytes, not 1");
        FAILS(":03000004080000F1\n:00000001FF\n", 1, "extended linear address record (type 0x04) must hold 2 data bytes");
#undef FAILS
        assert_fails("NUL", ":00000001FF\0\n", 13, IMAGE_FORMAT_HEX, -EINVAL, 1, "byte 0x00 at column 12 is not a hex digit");

        /* Overlap: 0x08000000..0x0800001F, then 16 bytes at 0x08000010 on line 4. */
        hex_ela(&t, 0x0800);
        hex_record(&t, 0x00, 0x0000, data, 16, false, "\n");
        hex_record(&t, 0x00, 0x0010, data + 16, 16, false, "\n");
        hex_record(&t, 0x00, 0x0010, data, 16, false, "\n");
        hex_eof(&t);
        assert_fails("overlap", t.buf, t.len, IMAGE_FORMAT_HEX, -EINVAL, 4,
                     "line 4: data at 0x08000010 overlaps data at 0x08000000..0x0800001F");
        text_done(&t);

        /* Overlap where the earlier line holds the higher address. */
        hex_ela(&t, 0x0800);
        hex_record(&t, 0x00, 0x0008, data, 16, false, "\n");
        hex_record(&t, 0x00, 0x0000, data, 9, false, "\n");
        hex_eof(&t);
        assert_fails("overlap reversed", t.buf, t.len, IMAGE_FORMAT_HEX, -EINVAL, 3,
                     "data at 0x08000008 overlaps data at 0x08000000..0x08000008");
        text_done(&t);

        /* Past 4 GiB: 0xFFFF0000 + 0xFFF8 + 16. */
        hex_ela(&t, 0xFFFF);
        hex_record(&t, 0x00, 0xFFF0, data, 8, false, "\n");
        hex_record(&t, 0x00, 0xFFF8, data, 16, false, "\n");
        hex_eof(&t);
        assert_fails("past 4 GiB", t.buf, t.len, IMAGE_FORMAT_HEX, -EFBIG, 3, "runs past the 32-bit address space");
        text_done(&t);
}

static void test_srec(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t data[600];
        Text t = {};

        fill(data, sizeof(data), 8);
        srec_record(&t, '0', 0, "hello.srec", 10);
        for (size_t i = 0; i < 512; i += 32)
                srec_record(&t, '3', 0x08000000 + (uint32_t) i, data + i, 32);
        srec_record(&t, '5', 16, NULL, 0);
        srec_record(&t, '7', 0x080000C1, NULL, 0);

        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_AUTO, &img, NULL));
        ASSERT_EQ(img->format, IMAGE_FORMAT_SREC);
        ASSERT_EQ(img->n_segments, 1);
        assert_segment(img, 0, 0x08000000, data, 512);
        ASSERT_EQ(img->entry, 0x080000C1);
        img = image_free(img);
        text_done(&t);

        /* S1 (16-bit) and S2 (24-bit) addresses, S6 count, S8 start, lowercase, CRLF. */
        srec_record(&t, '1', 0x1000, data, 16);
        srec_record(&t, '2', 0x123456, data + 16, 16);
        srec_record(&t, '2', 0x123466, data + 32, 8);
        srec_record(&t, '6', 3, NULL, 0);
        srec_record(&t, '8', 0x123456, NULL, 0);
        for (size_t i = 0; i < t.len; i++)
                if (t.buf[i] >= 'A' && t.buf[i] <= 'F')
                        t.buf[i] += 'a' - 'A';
        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_SREC, &img, NULL));
        ASSERT_EQ(img->n_segments, 2);
        assert_segment(img, 0, 0x1000, data, 16);
        assert_segment(img, 1, 0x123456, data + 16, 24);
        ASSERT_EQ(img->entry, 0x123456);
        img = image_free(img);
        text_done(&t);

        srec_record(&t, '1', 0x2000, data, 4);
        srec_record(&t, '9', 0x2001, NULL, 0);
        text_add(&t, "\n\n");
        ASSERT_OK(parse_text(&t, IMAGE_FORMAT_SREC, &img, NULL));
        assert_segment(img, 0, 0x2000, data, 4);
        ASSERT_EQ(img->entry, 0x2001);
        text_done(&t);
}

static void test_srec_errors(void) {
        Text t = {};
        uint8_t d[4] = { 0xAA, 0xBB, 0xCC, 0xDD };

#define FAILS(text, line, msg) assert_fails(#line ": " msg, text, strlen(text), IMAGE_FORMAT_SREC, -EINVAL, line, msg)
        FAILS("S1051000AABB85\nS1051002AABB84\nS9030000FC\n", 2, "checksum 0x84, expected 0x83");
        FAILS("S1061000AABB85\nS9030000FC\n", 1, "record length 0x06 (6 bytes) does not match the 5 bytes");
        FAILS("S1051000AABB85\nS4030000FC\nS9030000FC\n", 2, "record type S4 unknown");
        FAILS("S1051000AABB85\n", 1, "no termination record");
        FAILS("S1051000AABB85\nS503000" "2FA\nS9030000FC\n", 2, "record count 2, but 1 data records precede it");
        FAILS("S1051000AABB85\nS9030000FC\nS1051000AABB85\n", 3, "data after the termination record on line 2");
        FAILS("S1051000AABB8\nS9030000FC\n", 1, "odd number of hex digits");
        FAILS("S105100QAABB85\nS9030000FC\n", 1, "'Q' at column 8 is not a hex digit");
        FAILS("S1051000AABB85\n:00000001FF\n", 2, "not an S-record");
        FAILS("S10210ED\nS9030000FC\n", 1, "record too short");
#undef FAILS

        srec_record(&t, '3', 0x08000000, d, 4);
        srec_record(&t, '3', 0x08000002, d, 4);
        srec_record(&t, '7', 0, NULL, 0);
        assert_fails("srec overlap", t.buf, t.len, IMAGE_FORMAT_SREC, -EINVAL, 2,
                     "data at 0x08000002 overlaps data at 0x08000000..0x08000003");
        text_done(&t);

        srec_record(&t, '3', 0xFFFFFFFE, d, 4);
        srec_record(&t, '7', 0, NULL, 0);
        assert_fails("srec past 4 GiB", t.buf, t.len, IMAGE_FORMAT_SREC, -EFBIG, 1, "address space");
        text_done(&t);
}

/* ---- ELF, assembled by hand ---- */

typedef struct ElfSeg {
        uint32_t type, vaddr, paddr, filesz, memsz;
        const uint8_t *data;
} ElfSeg;

static void put(uint8_t *p, uint32_t v, size_t n, bool big) {
        for (size_t i = 0; i < n; i++)
                p[big ? n - 1 - i : i] = (uint8_t) (v >> (8 * i));
}

/* ELF32 ARM executable: header, program headers, then each segment's file bytes. */
static size_t make_elf32(uint8_t *out, size_t out_max, bool big, uint32_t entry, const ElfSeg *segs, size_t n) {
        size_t off = 52 + 32 * n;

        ASSERT_TRUE(off <= out_max);
        memset(out, 0, off);
        memcpy(out, "\x7F" "ELF", 4);
        out[4] = 1;                     /* ELFCLASS32 */
        out[5] = big ? 2 : 1;           /* ELFDATA2MSB / LSB */
        out[6] = 1;                     /* EV_CURRENT */
        put(out + 16, 2, 2, big);       /* ET_EXEC */
        put(out + 18, 40, 2, big);      /* EM_ARM */
        put(out + 20, 1, 4, big);
        put(out + 24, entry, 4, big);
        put(out + 28, 52, 4, big);      /* e_phoff */
        put(out + 36, 0x05000200, 4, big);
        put(out + 40, 52, 2, big);
        put(out + 42, 32, 2, big);
        put(out + 44, (uint32_t) n, 2, big);
        put(out + 46, 40, 2, big);

        for (size_t i = 0; i < n; i++) {
                uint8_t *ph = out + 52 + 32 * i;

                put(ph + 0, segs[i].type, 4, big);
                put(ph + 4, (uint32_t) off, 4, big);
                put(ph + 8, segs[i].vaddr, 4, big);
                put(ph + 12, segs[i].paddr, 4, big);
                put(ph + 16, segs[i].filesz, 4, big);
                put(ph + 20, segs[i].memsz, 4, big);
                put(ph + 24, 5, 4, big);
                put(ph + 28, 4, 4, big);
                if (segs[i].data) {
                        ASSERT_TRUE(off + segs[i].filesz <= out_max);
                        memcpy(out + off, segs[i].data, segs[i].filesz);
                        off += segs[i].filesz;
                }
        }
        return off;
}

static void test_elf(void) {
        uint8_t text[200], data[24], elf[1024];
        size_t n;

        fill(text, sizeof(text), 9);
        fill(data, sizeof(data), 10);

        for (int big = 0; big <= 1; big++) {
                _cleanup_(image_freep) Image *img = NULL;
                ElfSeg segs[] = {
                        { 1, 0x08000000, 0x08000000, sizeof(text), sizeof(text), text },       /* .text */
                        { 4, 0, 0, 8, 8, text },                                               /* PT_NOTE: not loaded */
                        { 1, 0x20000000, 0x08000400, sizeof(data), sizeof(data), data },       /* .data: VMA != LMA */
                        { 1, 0x20000018, 0x20000018, 0, 0x100, NULL },                         /* .bss */
                        { 1, 0x080000C8, 0x080000C8, 8, 8, text + 100 },                        /* adjacent to .text */
                };
                ImageError err;

                n = make_elf32(elf, sizeof(elf), big, 0x08000041, segs, ELEMENTSOF(segs));
                ASSERT_OK(image_parse(elf, n, IMAGE_FORMAT_AUTO, 0, &img, &err));
                ASSERT_EQ(img->format, IMAGE_FORMAT_ELF);
                ASSERT_EQ(img->entry, 0x08000041);
                ASSERT_EQ(img->n_segments, 2);
                uint8_t merged[208];
                memcpy(merged, text, 200);
                memcpy(merged + 200, text + 100, 8);
                assert_segment(img, 0, 0x08000000, merged, 208);
                assert_segment(img, 1, 0x08000400, data, sizeof(data));
        }

        /* Only .bss and a note: nothing to flash. */
        {
                ElfSeg segs[] = {
                        { 1, 0x20000000, 0x20000000, 0, 0x100, NULL },
                        { 4, 0, 0, 8, 8, text },
                };
                n = make_elf32(elf, sizeof(elf), false, 0, segs, ELEMENTSOF(segs));
                assert_fails("no PT_LOAD", elf, n, IMAGE_FORMAT_AUTO, -EINVAL, 0, "ELF: no loadable segment");
        }

        /* A segment whose bytes run past the end of the file. */
        {
                ElfSeg segs[] = { { 1, 0x08000000, 0x08000000, sizeof(text), sizeof(text), text } };
                n = make_elf32(elf, sizeof(elf), false, 0, segs, 1);
                assert_fails("truncated segment", elf, n - 1, IMAGE_FORMAT_ELF, -EINVAL, 0,
                             "ELF: segment at offset 0x54 (0xC8 bytes) beyond end of file");
                /* truncated in the header */
                assert_fails("truncated header", elf, 30, IMAGE_FORMAT_ELF, -EINVAL, 0, "ELF: ");
                assert_fails("truncated ident", elf, 8, IMAGE_FORMAT_ELF, -EINVAL, 0, "ELF: ");
                /* truncated in the program headers */
                assert_fails("truncated phdrs", elf, 60, IMAGE_FORMAT_ELF, -EINVAL, 0,
                             "ELF: program header table at offset 0x34 beyond end of file (0x3C bytes)");

                _cleanup_(image_freep) Image *img = NULL;
                ImageError err;
                ASSERT_ERR(image_parse(elf, n - 1, IMAGE_FORMAT_ELF, 0, &img, &err), EINVAL);
                ASSERT_EQ(err.offset, 0x54);
                ASSERT_EQ(err.line, 0);
        }

        /* Two segments at the same flash address. */
        {
                ElfSeg segs[] = {
                        { 1, 0x08000000, 0x08000000, 16, 16, text },
                        { 1, 0x20000000, 0x08000008, 16, 16, data },
                };
                n = make_elf32(elf, sizeof(elf), false, 0, segs, 2);
                assert_fails("ELF overlap", elf, n, IMAGE_FORMAT_ELF, -EINVAL, 0,
                             "data at 0x08000008 overlaps data at 0x08000000..0x0800000F");
        }

        /* Past 4 GiB. */
        {
                ElfSeg segs[] = { { 1, 0xFFFFFFF0, 0xFFFFFFF0, 32, 32, text } };
                n = make_elf32(elf, sizeof(elf), false, 0, segs, 1);
                assert_fails("ELF past 4 GiB", elf, n, IMAGE_FORMAT_ELF, -EFBIG, 0, "32-bit address space");
        }

        assert_fails("forced ELF on text", ":00000001FF\n", 12, IMAGE_FORMAT_ELF, -EINVAL, 0, "ELF: not an ELF file");
}

static void test_check_range(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t data[1024];
        ImageError err;

        fill(data, sizeof(data), 11);
        ASSERT_OK(image_parse(data, sizeof(data), IMAGE_FORMAT_BIN, 0x08000000, &img, NULL));

        ASSERT_OK(image_check_range(img, 0x08000000, 0x8000, &err));
        ASSERT_EQ(err.message[0], 0);
        ASSERT_OK(image_check_range(img, 0x08000000, 1024, &err));
        ASSERT_OK(image_check_range(img, 0x08000000, 1024, NULL));

        ASSERT_ERR(image_check_range(img, 0x08000100, 0x8000, &err), ERANGE);
        ASSERT_TRUE(strstr(err.message, "data at 0x08000000..0x080003FF lies below the flash (0x08000100..0x080080FF)"));

        ASSERT_ERR(image_check_range(img, 0x08000000, 0x200, &err), ERANGE);
        ASSERT_TRUE(strstr(err.message, "data at 0x08000000..0x080003FF runs past the end of the flash at 0x080001FF"));

        ASSERT_ERR(image_check_range(img, 0x00000000, 0x1000, &err), ERANGE);
        ASSERT_TRUE(strstr(err.message, "data at 0x08000000..0x080003FF lies past the end of the flash"));
        ASSERT_ERR(image_check_range(img, 0x00000000, 0x1000, NULL), ERANGE);

        /* The flash may end at the top of the address space. */
        ASSERT_OK(image_check_range(img, 0x08000000, UINT32_MAX - 0x08000000 + 1, &err));
}

static void test_span_empty(void) {
        _cleanup_(image_freep) Image *img = NULL;
        uint32_t start = 1, end = 1;

        /* A HEX file with only an end-of-file record parses to no segments. */
        ASSERT_OK(image_parse(":00000001FF\r\n", 13, IMAGE_FORMAT_AUTO, 0, &img, NULL));
        ASSERT_EQ(img->n_segments, 0);
        ASSERT_EQ(image_size(img), 0);
        image_span(img, &start, &end);
        ASSERT_EQ(start, 0);
        ASSERT_EQ(end, 0);
        ASSERT_OK(image_check_range(img, 0x08000000, 0x4000, NULL));
        ASSERT_TRUE(image_free(NULL) == NULL);
        ASSERT_EQ(image_size(NULL), 0);
}

/* Random and mutated inputs: no crash, and every success keeps the invariants. */
static void test_garbage(void) {
        uint8_t buf[512];
        uint32_t seed = 12345;
        Text t = {};
        uint8_t data[64];

        fill(data, sizeof(data), 12);
        hex_ela(&t, 0x0800);
        hex_record(&t, 0x00, 0x0000, data, 32, false, "\n");
        hex_record(&t, 0x00, 0x0040, data + 32, 32, false, "\n");
        hex_eof(&t);
        ASSERT_TRUE(t.len <= sizeof(buf));

        for (unsigned i = 0; i < 20000; i++) {
                _cleanup_(image_freep) Image *img = NULL;
                ImageFormat f = i % _IMAGE_FORMAT_MAX;
                size_t n;
                int r;

                memcpy(buf, t.buf, t.len);
                n = t.len;
                for (int k = 0; k < 3; k++) {
                        seed = seed * 1103515245u + 12345u;
                        buf[(seed >> 8) % n] = (uint8_t) (seed >> 24) % 3 == 0 ? (uint8_t) (seed >> 16) : "0123456789ABCDEF:\n\r"[(seed >> 16) % 19];
                }
                if (i % 7 == 0)
                        n = (seed >> 4) % n;

                r = image_parse(buf, n, f, 0xFFFFFF00, &img, NULL);
                ASSERT_TRUE(r == 0 || r == -EINVAL || r == -EFBIG);
                if (r < 0)
                        continue;
                for (size_t s = 0; s < img->n_segments; s++) {
                        ASSERT_TRUE(img->segments[s].size > 0);
                        ASSERT_TRUE((uint64_t) img->segments[s].address + img->segments[s].size <= UINT32_MAX);
                        if (s > 0)
                                ASSERT_TRUE((uint64_t) img->segments[s - 1].address + img->segments[s - 1].size <
                                            img->segments[s].address);
                }
        }
        text_done(&t);
}

int main(void) {
        TEST(test_format_strings);
        TEST(test_detect);
        TEST(test_empty);
        TEST(test_bin);
        TEST(test_hex_roundtrip);
        TEST(test_hex_segment_address);
        TEST(test_hex_cross_64k);
        TEST(test_hex_gaps_and_order);
        TEST(test_hex_lowercase_crlf);
        TEST(test_hex_errors);
        TEST(test_srec);
        TEST(test_srec_errors);
        TEST(test_elf);
        TEST(test_check_range);
        TEST(test_span_empty);
        TEST(test_garbage);
        return 0;
}
