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

#include "autoflash.h"
#include "entry.h"
#include "imagefile.h"
#include "options.h"
#include "request.h"
#include "sha256.h"
#include "stm32isp.h"
#include "string-util.h"

int autoflash_new(const char *source, AutoFlash **ret) {
        AutoFlash *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        flasher_flash_options_init(&a->flash);
        a->format = IMAGE_FORMAT_AUTO;
        a->poll_ms = STM32ISP_POLL_MS_DEFAULT;
        serial_spec_init(&a->serial);
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
        free(a->match_port);
        free(a);
        return NULL;
}

/* The settings: the bus's keys and types are SetAutoFlash's table (options.c); the
 * configuration file's names are these, case-insensitive (NULL: bus only). MatchUSB,
 * the file's VID:PID, is the one setting the bus spells as two keys (vid, pid). */
#define SETTING_MATCH_USB _AUTOFLASH_OPTION_MAX

static const char *const config_names[_AUTOFLASH_OPTION_MAX + 1] = {
        [AUTOFLASH_OPTION_IMAGE_NAME] = "ImageName",
        [AUTOFLASH_OPTION_FORMAT]     = "Format",
        [AUTOFLASH_OPTION_ADDRESS]    = "Address",
        [AUTOFLASH_OPTION_ERASE]      = "Erase",
        [AUTOFLASH_OPTION_VERIFY]     = "Verify",
        [AUTOFLASH_OPTION_UNPROTECT]  = "Unprotect",
        [AUTOFLASH_OPTION_PROTECT]    = "Protect",
        [AUTOFLASH_OPTION_BOOT0]      = "Boot0",
        [AUTOFLASH_OPTION_GO]         = "Go",
        [AUTOFLASH_OPTION_BAUDRATE]   = "Baudrate",
        [AUTOFLASH_OPTION_ENTRY]      = "Entry",
        [AUTOFLASH_OPTION_SERIAL]     = "MatchSerial",
        [AUTOFLASH_OPTION_ID_PATH]    = "MatchIdPath",
        [AUTOFLASH_OPTION_CHIP]       = "ExpectChip",
        [AUTOFLASH_OPTION_FORCE]      = "Force",
        [AUTOFLASH_OPTION_PORT]       = "MatchPort",
        [AUTOFLASH_OPTION_DETECT]     = "Detect",
        [AUTOFLASH_OPTION_POLL_MS]    = "PollMs",
        [AUTOFLASH_OPTION_SN_ADDRESS] = "SnAddress",
        [AUTOFLASH_OPTION_SN_FIRST]   = "SnFirst",
        [AUTOFLASH_OPTION_SN_STEP]    = "SnStep",
        [AUTOFLASH_OPTION_SN_FORMAT]  = "SnFormat",
        [AUTOFLASH_OPTION_SN_COUNTER] = "SnCounter",
        [SETTING_MATCH_USB]           = "MatchUSB",
};

static const OptionSpec *bus_spec(const char *key, unsigned id) {
        for (size_t i = 0; i < autoflash_option_table.n_specs; i++)
                if (key ? streq(autoflash_option_table.specs[i].key, key) ||
                                  streq_ptr(autoflash_option_table.specs[i].alias, key) :
                          autoflash_option_table.specs[i].id == id)
                        return &autoflash_option_table.specs[i];
        return NULL;
}

char autoflash_bus_type(const char *key) {
        const OptionSpec *spec = bus_spec(key, 0);

        return spec ? spec->signature[0] : 0;
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

        if (!stm32isp_text_valid(value))
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

/* Stores one typed value (the walk or the text parser checked its type). */
static int apply(AutoFlash *a, unsigned setting, const AutoFlashValue *v) {
        int r;

        switch (setting) {
        case AUTOFLASH_OPTION_IMAGE_NAME:
                return *v->s ? set_string(&a->image_name, v->s, false) : -EINVAL;
        case AUTOFLASH_OPTION_FORMAT:
                return image_format_from_string(v->s, &a->format) < 0 ? -EINVAL : 0;
        case AUTOFLASH_OPTION_ADDRESS:
                if (v->u > UINT32_MAX)
                        return -EINVAL;
                a->address = (uint32_t) v->u;
                a->have_address = true;
                return 0;
        case AUTOFLASH_OPTION_ERASE:
                return erase_mode_from_string(v->s, &a->flash.erase);
        case AUTOFLASH_OPTION_VERIFY:
        case AUTOFLASH_OPTION_UNPROTECT:
        case AUTOFLASH_OPTION_PROTECT:
        case AUTOFLASH_OPTION_BOOT0:
        case AUTOFLASH_OPTION_GO:
        case AUTOFLASH_OPTION_FORCE:
                return flash_options_set_flag(&a->flash, bus_spec(NULL, setting)->key, v->b);
        case AUTOFLASH_OPTION_BAUDRATE:
                /* A rate above 115200 is tried first, then the worker falls back to 115200. */
                if (v->u < STM32ISP_BAUDRATE_MIN || v->u > STM32ISP_BAUDRATE_MAX)
                        return -EINVAL;
                a->baudrate = (unsigned) v->u;
                return 0;
        case AUTOFLASH_OPTION_ENTRY:
                /* checked here, for the file and the bus alike */
                r = entry_validate(v->s);
                if (r < 0)
                        return r;
                return set_string(&a->entry, v->s, true);
        case AUTOFLASH_OPTION_VID:
        case AUTOFLASH_OPTION_PID:
        case AUTOFLASH_OPTION_CHIP:
                if (v->u > UINT16_MAX)
                        return -EINVAL;
                if (setting == AUTOFLASH_OPTION_VID) {
                        a->match_vid = (uint16_t) v->u;
                        a->match_usb = true;
                        if (!a->match_pid)
                                a->match_any_pid = true;
                } else if (setting == AUTOFLASH_OPTION_PID) {
                        a->match_pid = (uint16_t) v->u;
                        a->match_any_pid = false;
                } else
                        a->expect_chip = (uint16_t) v->u;
                return 0;
        case AUTOFLASH_OPTION_DETECT:
                if (streq(v->s, "plug"))
                        a->detect_poll = false;
                else if (streq(v->s, "poll"))
                        a->detect_poll = true;
                else
                        return -EINVAL;
                return 0;
        case AUTOFLASH_OPTION_POLL_MS:
                if (v->u < STM32ISP_POLL_MS_MIN || v->u > STM32ISP_POLL_MS_MAX)
                        return -EINVAL;
                a->poll_ms = (unsigned) v->u;
                return 0;
        case AUTOFLASH_OPTION_SN_ADDRESS:
        case AUTOFLASH_OPTION_SN_FIRST:
        case AUTOFLASH_OPTION_SN_STEP:
        case AUTOFLASH_OPTION_SN_FORMAT:
        case AUTOFLASH_OPTION_SN_COUNTER:
                return serial_spec_set(&a->serial, (SerialKey) (setting - AUTOFLASH_OPTION_SN_ADDRESS), v->u, v->s);
        case AUTOFLASH_OPTION_SERIAL:
                return set_string(&a->match_serial, v->s, true);
        case AUTOFLASH_OPTION_ID_PATH:
                return set_string(&a->match_id_path, v->s, true);
        case AUTOFLASH_OPTION_PORT:
                return set_string(&a->match_port, v->s, true);
        case SETTING_MATCH_USB: {
                char vid[8], pid[8];

                if (!*v->s) {
                        a->match_usb = false;
                        return 0;
                }
                if (sscanf(v->s, "%7[0-9a-fA-F]:%7[0-9a-fA-F*]", vid, pid) != 2 || parse_hex16(vid, &a->match_vid) < 0)
                        return -EINVAL;
                a->match_any_pid = streq(pid, "*");
                if (!a->match_any_pid && parse_hex16(pid, &a->match_pid) < 0)
                        return -EINVAL;
                a->match_usb = true;
                return 0;
        }
        }
        return -ENOENT;
}

int autoflash_set_value(AutoFlash *a, unsigned setting, const AutoFlashValue *v) {
        if (setting >= _AUTOFLASH_OPTION_MAX)
                return -ENOENT;
        return apply(a, setting, v);
}

int autoflash_set(AutoFlash *a, const char *key, const char *value) {
        AutoFlashValue v = { .s = value };
        const OptionSpec *spec = NULL;
        unsigned setting;
        int r;

        for (setting = 0; setting < ELEMENTSOF(config_names); setting++)
                if (config_names[setting] && strcasecmp(config_names[setting], key) == 0)
                        break;
        if (setting == SETTING_MATCH_USB)
                return apply(a, setting, &v);
        spec = setting < ELEMENTSOF(config_names) ? bus_spec(NULL, setting) : bus_spec(key, 0);
        if (!spec)
                return -ENOENT;
        /* The text as the value of the type the bus takes. */
        switch (spec->signature[0]) {
        case 'b':
                r = parse_bool(value, &v.b);
                break;
        case 'q':
        case 'u':
        case 't':
                r = parse_u64(value, UINT64_MAX, &v.u);
                break;
        default:
                r = 0;
        }
        if (r < 0)
                return r;
        return apply(a, spec->id, &v);
}

int autoflash_make_image(const AutoFlash *a, Image **ret) {
        int r;

        if (!a->data)
                return -ENODATA;
        r = image_file_parse(a->data, a->size, a->format, a->have_address, a->address, ret, NULL);
        return r == -ENODATA ? -ERANGE : r;
}

int autoflash_set_image(AutoFlash *a, const void *data, size_t size, const char *default_name) {
        _cleanup_(image_freep) Image *img = NULL;
        uint8_t *copy;
        int r;

        if (size == 0)
                return -ERANGE;
        if (size > IMAGE_FILE_MAX)
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
        if (r < 0) {
                a->data = mfree(a->data);
                a->size = 0;
                return r == -ENOMEM || r == -EFBIG || r == -EDOM ? r : -ERANGE;
        }
        sha256_hex(a->data, a->size, a->sha256);
        a->payload_size = image_size(img);
        if (!a->image_name && default_name)
                return set_string(&a->image_name, default_name, false);
        return 0;
}

int autoflash_load_fd(AutoFlash *a, int fd, const char *default_name) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r;

        r = image_file_read(fd, &buf, &n);
        if (r == -ENODATA)
                return -ERANGE;
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

int autoflash_new_job(const AutoFlash *a, Job **ret) {
        Request q;

        if (!a->data)
                return -ENODATA;
        request_init(&q);
        q.format = a->format;
        q.have_address = a->have_address;
        q.address = a->address;
        q.flash = a->flash;
        q.baudrate = a->baudrate;
        q.entry = a->entry;
        q.image_name = a->image_name;
        q.expect_chip = a->expect_chip;
        q.automatic = true;
        return request_new_flash_job(&q, a->data, a->size, a->sha256, "image", ret, NULL);
}

bool autoflash_matches(const AutoFlash *a, const AutoFlashCandidate *c) {
        if (!a->data)
                return false;
        /* A network port (or a tty added by hand) is flashed only when the profile names
         * it: naming a port to look at it (AddPort, "stm32ispctl info tcp://...") must not
         * start a flash on it. */
        if (a->match_port) {
                if (fnmatch(a->match_port, c->device ?: "", 0) != 0 && fnmatch(a->match_port, c->name ?: "", 0) != 0)
                        return false;
        } else if (!c->plugged)
                return false;
        if (a->match_usb && (c->vid != a->match_vid || (!a->match_any_pid && c->pid != a->match_pid)))
                return false;
        if (a->match_serial && fnmatch(a->match_serial, c->serial ?: "", 0) != 0)
                return false;
        if (a->match_id_path && fnmatch(a->match_id_path, c->id_path ?: "", 0) != 0)
                return false;
        return true;
}

int autoflash_describe_match(const AutoFlash *a, char **ret) {
        char usb[16] = "";
        char *s = NULL;

        if (!a->match_usb && !a->match_serial && !a->match_id_path && !a->match_port)
                s = strdup("every USB adapter");
        else {
                if (a->match_usb && a->match_any_pid)
                        snprintf(usb, sizeof usb, "%04x:*", a->match_vid);
                else if (a->match_usb)
                        snprintf(usb, sizeof usb, "%04x:%04x", a->match_vid, a->match_pid);
                /* "port GLOB" or "USB adapters", then each narrowing key */
                if (asprintf(&s, "%s%s%s%s%s%s%s%s",
                             a->match_port ? "port " : "USB adapters", a->match_port ?: "",
                             *usb ? " with USB ID " : "", usb,
                             a->match_serial ? " with serial " : "", a->match_serial ?: "",
                             a->match_id_path ? " at path " : "", a->match_id_path ?: "") < 0)
                        s = NULL;
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
