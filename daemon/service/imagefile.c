/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>

#include "fileio.h"
#include "imagefile.h"
#include "stm32isp.h"

int image_file_read(int fd, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0;
        int r;

        r = read_regular_fd(fd, IMAGE_FILE_MAX, &buf, &n);
        if (r == -EFBIG)
                *ret_size = n;
        if (r < 0)
                return r;
        if (n == 0)
                return -ENODATA;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int image_file_parse(const void *data, size_t size, ImageFormat format, bool have_address, uint32_t address,
                     Image **ret, ImageError *err) {
        _cleanup_(image_freep) Image *img = NULL;
        ImageFormat f = format == IMAGE_FORMAT_AUTO ? image_detect(data, size) : format;
        int r;

        /* An address would move a file that carries its own: refused, never ignored. */
        if (have_address && f != IMAGE_FORMAT_BIN) {
                if (err)
                        snprintf(err->message, sizeof err->message,
                                 "Option 'address' is for raw binaries: this %s file carries its own addresses",
                                 f == IMAGE_FORMAT_HEX ? "Intel HEX" : f == IMAGE_FORMAT_ELF ? "ELF" : "S-record");
                return -EDOM;
        }
        r = image_parse(data, size, format, have_address ? address : STM32ISP_FLASH_ADDRESS_DEFAULT, &img, err);
        if (r < 0)
                return r;
        if (image_size(img) == 0)
                return -ENODATA;
        *ret = TAKE_PTR(img);
        return 0;
}
