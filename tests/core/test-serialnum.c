/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Serial numbers (daemon/core/serialnum.c): formats, counter names, the image patch. */

#include <errno.h>
#include <stdlib.h>

#include "serialnum.h"
#include "test-util.h"

static void check_render(const char *format, uint64_t n, const char *want, size_t want_size) {
        uint8_t buf[SERIAL_BYTES_MAX];
        SerialLayout l;
        size_t size;

        ASSERT_OK(serial_layout_parse(format, &l));
        ASSERT_OK(serial_render(&l, n, buf, &size));
        ASSERT_EQ(size, want_size);
        ASSERT_TRUE(memcmp(buf, want, size) == 0);
}

static void test_formats(void) {
        uint8_t buf[SERIAL_BYTES_MAX];
        SerialLayout l;
        size_t size;

        check_render("le32", 0x01020304, "\x04\x03\x02\x01", 4);
        check_render("be32", 0x01020304, "\x01\x02\x03\x04", 4);
        check_render("le64", UINT64_C(0x0102030405060708), "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
        check_render("be64", 7, "\0\0\0\0\0\0\0\x07", 8);
        check_render("text:SN%06u", 42, "SN000042\0\0\0\0\0\0\0\0", 16);
        check_render("text:%u", 1234567, "1234567\0", 8);
        check_render("text:%lx-%%", 255, "ff-%\0\0\0\0", 8);
        check_render("text:B%llu", UINT64_C(18446744073709551615), "B18446744073709551615\0\0\0", 24);
        /* 32-bit formats refuse what they cannot hold */
        ASSERT_OK(serial_layout_parse("le32", &l));
        ASSERT_ERR(serial_render(&l, UINT64_C(0x100000000), buf, &size), ERANGE);
        /* exactly one conversion, of the %u family */
        static const char *const bad[] = {
                "", "le16", "LE32", "text:", "text:SN", "text:%d", "text:%s", "text:%u%u", "text:%n",
                "text:%123u", "text:%%", "text:%u\n", "text:%", "text:%*u", "text:%.3u",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ASSERT_ERR(serial_layout_parse(bad[i], &l), EINVAL);
        /* a text too long for its bytes */
        ASSERT_OK(serial_layout_parse("text:0123456789%060u", &l));
        ASSERT_ERR(serial_render(&l, 1, buf, &size), ERANGE);
}

static void test_counter_names(void) {
        ASSERT_TRUE(serial_counter_name_valid("default"));
        ASSERT_TRUE(serial_counter_name_valid("board-rev.B_2"));
        ASSERT_TRUE(!serial_counter_name_valid(""));
        ASSERT_TRUE(!serial_counter_name_valid("a/b"));
        ASSERT_TRUE(!serial_counter_name_valid("../x"));
        ASSERT_TRUE(!serial_counter_name_valid("with space"));
        ASSERT_TRUE(!serial_counter_name_valid(NULL));
}

static void test_patch(void) {
        static const uint8_t data[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        _cleanup_(image_freep) Image *img = NULL;

        ASSERT_OK(image_parse(data, sizeof data, IMAGE_FORMAT_BIN, 0x08000000, &img, NULL));
        /* inside the image: overwritten in place */
        ASSERT_OK(serial_patch_image(img, 0x08000004, (const uint8_t *) "\xaa\xbb\xcc\xdd", 4));
        ASSERT_EQ(img->n_segments, 1);
        ASSERT_TRUE(memcmp(img->segments[0].data, "\x01\x02\x03\x04\xaa\xbb\xcc\xdd", 8) == 0);
        /* clear of it: a segment of its own, in address order */
        ASSERT_OK(serial_patch_image(img, 0x08000800, (const uint8_t *) "\x11\x22\x33\x44", 4));
        ASSERT_OK(serial_patch_image(img, 0x07fff000, (const uint8_t *) "\x55\x66\x77\x88", 4));
        ASSERT_EQ(img->n_segments, 3);
        ASSERT_EQ(img->segments[0].address, 0x07fff000);
        ASSERT_EQ(img->segments[1].address, 0x08000000);
        ASSERT_EQ(img->segments[2].address, 0x08000800);
        ASSERT_EQ(img->segments[2].data[3], 0x44);
        /* across an edge, or touching one: refused */
        ASSERT_ERR(serial_patch_image(img, 0x0800001e, (const uint8_t *) "\0\0\0\0", 4), ERANGE);
        ASSERT_ERR(serial_patch_image(img, 0x08000020, (const uint8_t *) "\0\0\0\0", 4), ERANGE);
        ASSERT_ERR(serial_patch_image(img, 0x07fffffc, (const uint8_t *) "\0\0\0\0", 4), ERANGE);
        ASSERT_ERR(serial_patch_image(img, 0xfffffffe, (const uint8_t *) "\0\0\0\0", 4), ERANGE);
        ASSERT_EQ(img->n_segments, 3);
}

int main(void) {
        test_formats();
        test_counter_names();
        test_patch();
        return 0;
}
