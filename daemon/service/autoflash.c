/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Auto-flash profiles: settings, the image, matching. */

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "autoflash.h"
#include "request.h"
#include "sha256.h"
#include "stm32isp.h"

#define AUTOFLASH_IMAGE_MAX (4u * 1024 * 1024)

int autoflash_new(const char *source, AutoFlash **ret) {
        AutoFlash *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        flasher_flash_options_init(&a->flash);
        a->format = IMAGE_FORMAT_AUTO;
        a->source = source;
        *ret = a;
        return 0;
}

AutoFlash *autoflash_free(AutoFlash *a) {
        if (!a)
                return NULL;
        free(a->data);
        free(a->image_name);
        free(a->entry);
        free(a->match_serial);
        free(a->match_id_path);
        free(a);
        return NULL;
}

typedef enum Setting {
        SET_IMAGE_NAME, SET_FORMAT, SET_ADDRESS, SET_ERASE, SET_VERIFY, SET_UNPROTECT, SET_PROTECT,
        SET_BOOT0, SET_GO, SET_BAUDRATE, SET_ENTRY, SET_MATCH_USB, SET_VID, SET_PID, SET_SERIAL,
        SET_ID_PATH, SET_CHIP,
} Setting;

static const struct {
        const char *config, *bus;
        char type;
        Setting setting;
} settings[] = {
        { "ImageName",   "image-name", 's', SET_IMAGE_NAME },
        { "Format",      "format",     's', SET_FORMAT },
        { "Address",     "address",    't', SET_ADDRESS },
        { "Erase",       "erase",      's', SET_ERASE },
        { "Verify",      "verify",     'b', SET_VERIFY },
        { "Unprotect",   "unprotect",  'b', SET_UNPROTECT },
        { "Protect",     "protect",    'b', SET_PROTECT },
        { "Boot0",       "boot0",      'b', SET_BOOT0 },
        { "Go",          "go",         'b', SET_GO },
        { "Baudrate",    "baudrate",   'u', SET_BAUDRATE },
        { "Entry",       "entry",      's', SET_ENTRY },
        { "MatchUSB",    NULL,         0,   SET_MATCH_USB },
        { NULL,          "vid",        'q', SET_VID },
        { NULL,          "pid",        'q', SET_PID },
        { "MatchSerial", "serial",     's', SET_SERIAL },
        { "MatchIdPath", "id-path",    's', SET_ID_PATH },
        { "ExpectChip",  "chip",       'q', SET_CHIP },
};

char autoflash_bus_type(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                if (settings[i].bus && strcmp(settings[i].bus, key) == 0)
                        return settings[i].type;
        return 0;
}

static int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return *ret = true, 0;
                if (strcasecmp(s, no[i]) == 0)
                        return *ret = false, 0;
        }
        return -EINVAL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_hex16(const char *s, uint16_t *ret) {
        unsigned long v;
        char *end;

        if (!*s || strlen(s) > 4)
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 16);
        if (errno || *end || v > 0xffff)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* One line, bounded: they go to the log and the journal. */
static int set_string(char **field, const char *value, bool empty_is_null) {
        char *s;

        if (strlen(value) > 255 || strpbrk(value, "\n\r"))
                return -EINVAL;
        if (empty_is_null && !*value) {
                free(*field);
                *field = NULL;
                return 0;
        }
        s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int autoflash_set(AutoFlash *a, const char *key, const char *value) {
        Setting setting;
        bool found = false, b;
        uint64_t v;
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(settings) && !found; i++)
                if ((settings[i].config && strcasecmp(settings[i].config, key) == 0) ||
                    (settings[i].bus && strcmp(settings[i].bus, key) == 0)) {
                        setting = settings[i].setting;
                        found = true;
                }
        if (!found)
                return -ENOENT;

        switch (setting) {
        case SET_IMAGE_NAME:
                return *value ? set_string(&a->image_name, value, false) : -EINVAL;
        case SET_FORMAT:
                return image_format_from_string(value, &a->format) < 0 ? -EINVAL : 0;
        case SET_ADDRESS:
                r = parse_u64(value, UINT32_MAX, &v);
                if (r >= 0) {
                        a->address = (uint32_t) v;
                        a->have_address = true;
                }
                return r;
        case SET_ERASE:
                return erase_mode_from_string(value, &a->flash.erase);
        case SET_VERIFY:
        case SET_UNPROTECT:
        case SET_PROTECT:
        case SET_BOOT0:
        case SET_GO:
                r = parse_bool(value, &b);
                if (r < 0)
                        return r;
                if (setting == SET_VERIFY)
                        a->flash.verify = b;
                else if (setting == SET_UNPROTECT)
                        a->flash.unprotect = b;
                else if (setting == SET_PROTECT)
                        a->flash.protect = b;
                else if (setting == SET_BOOT0)
                        a->flash.boot0 = b;
                else
                        a->flash.go = b;
                return 0;
        case SET_BAUDRATE:
                /* The bootloader measures 1200..115200 (AN3155); a faster rate is tried
                 * first and the worker falls back to 115200. */
                r = parse_u64(value, STM32ISP_BAUDRATE_MAX, &v);
                if (r < 0 || v < STM32ISP_BAUDRATE_MIN)
                        return -EINVAL;
                a->baudrate = (unsigned) v;
                return 0;
        case SET_ENTRY:
                return set_string(&a->entry, value, true);
        case SET_MATCH_USB: {
                char vid[8], pid[8];

                if (!*value) {
                        a->match_usb = false;
                        return 0;
                }
                if (sscanf(value, "%7[0-9a-fA-F]:%7[0-9a-fA-F*]", vid, pid) != 2 || parse_hex16(vid, &a->match_vid) < 0)
                        return -EINVAL;
                a->match_any_pid = strcmp(pid, "*") == 0;
                if (!a->match_any_pid && parse_hex16(pid, &a->match_pid) < 0)
                        return -EINVAL;
                a->match_usb = true;
                return 0;
        }
        case SET_VID:
        case SET_PID:
        case SET_CHIP:
                r = parse_u64(value, UINT16_MAX, &v);
                if (r < 0)
                        return r;
                if (setting == SET_VID) {
                        a->match_vid = (uint16_t) v;
                        a->match_usb = true;
                        if (!a->match_pid)
                                a->match_any_pid = true;
                } else if (setting == SET_PID) {
                        a->match_pid = (uint16_t) v;
                        a->match_any_pid = false;
                } else
                        a->expect_chip = (uint16_t) v;
                return 0;
        case SET_SERIAL:
                return set_string(&a->match_serial, value, true);
        case SET_ID_PATH:
                return set_string(&a->match_id_path, value, true);
        }
        return -ENOENT;
}

int autoflash_make_image(const AutoFlash *a, Image **ret) {
        Image *img = NULL;
        ImageError err = {};
        int r;

        if (!a->data)
                return -ENODATA;
        r = image_parse(a->data, a->size, a->format, a->have_address ? a->address : STM32ISP_FLASH_ADDRESS_DEFAULT, &img, &err);
        if (r < 0)
                return r;
        if (image_size(img) == 0) {
                image_free(img);
                return -ERANGE;
        }
        *ret = img;
        return 0;
}

int autoflash_set_image(AutoFlash *a, const void *data, size_t size, const char *default_name) {
        Image *img = NULL;
        uint8_t *copy;
        int r;

        if (size == 0)
                return -ERANGE;
        if (size > AUTOFLASH_IMAGE_MAX)
                return -EFBIG;
        copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);
        free(a->data);
        a->data = copy;
        a->size = size;
        /* Parse once now, so a bad image is refused when armed, not on every board. */
        r = autoflash_make_image(a, &img);
        image_free(img);
        if (r < 0) {
                free(a->data);
                a->data = NULL;
                a->size = 0;
                return r == -ENOMEM || r == -EFBIG ? r : -ERANGE;
        }
        sha256_hex(a->data, a->size, a->sha256);
        if (!a->image_name && default_name)
                return set_string(&a->image_name, default_name, false);
        return 0;
}

int autoflash_load_fd(AutoFlash *a, int fd, const char *default_name) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r;

        r = read_regular_fd(fd, AUTOFLASH_IMAGE_MAX, &buf, &n);
        if (r < 0)
                return r;
        return autoflash_set_image(a, buf, n, default_name);
}

int autoflash_load_image(AutoFlash *a, const char *path) {
        _cleanup_close_ int fd = -1;
        const char *base = strrchr(path, '/');

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return autoflash_load_fd(a, fd, base ? base + 1 : path);
}

bool autoflash_matches(const AutoFlash *a, uint16_t vid, uint16_t pid, const char *serial, const char *id_path) {
        if (!a->data)
                return false;
        if (a->match_usb && (vid != a->match_vid || (!a->match_any_pid && pid != a->match_pid)))
                return false;
        if (a->match_serial && fnmatch(a->match_serial, serial ?: "", 0) != 0)
                return false;
        if (a->match_id_path && fnmatch(a->match_id_path, id_path ?: "", 0) != 0)
                return false;
        return true;
}
