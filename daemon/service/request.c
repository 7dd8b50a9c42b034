/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Port method options and auto-flash profiles become jobs here. */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "imagefile.h"
#include "options.h"
#include "request.h"
#include "sha256.h"
#include "stm32isp.h"
#include "string-util.h"

/* The contract lists the modes in the flasher's order. */
_Static_assert(STM32ISP_ERASE_AUTO == (int) FLASHER_ERASE_AUTO && STM32ISP_ERASE_MASS == (int) FLASHER_ERASE_MASS &&
               STM32ISP_ERASE_NONE == (int) FLASHER_ERASE_NONE, "erase modes");

int erase_mode_from_string(const char *s, FlasherErase *ret) {
        int m = streq(s, "all") ? STM32ISP_ERASE_MASS : stm32isp_erase_mode_from_string(s);

        if (m < 0)
                return m;
        *ret = (FlasherErase) m;
        return 0;
}

const char *erase_mode_to_string(FlasherErase e) {
        return stm32isp_erase_modes[e == FLASHER_ERASE_MASS ? STM32ISP_ERASE_MASS :
                                    e == FLASHER_ERASE_NONE ? STM32ISP_ERASE_NONE : STM32ISP_ERASE_AUTO];
}

int flash_options_set_flag(FlasherFlashOptions *o, const char *key, bool b) {
        static const struct {
                const char *key;
                size_t offset;
        } flags[] = {
                { "verify",    offsetof(FlasherFlashOptions, verify) },
                { "unprotect", offsetof(FlasherFlashOptions, unprotect) },
                { "protect",   offsetof(FlasherFlashOptions, protect) },
                { "boot0",     offsetof(FlasherFlashOptions, boot0) },
                { "go",        offsetof(FlasherFlashOptions, go) },
                { "force",     offsetof(FlasherFlashOptions, force) },
        };

        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (streq(flags[i].key, key)) {
                        *(bool *) ((uint8_t *) o + flags[i].offset) = b;
                        return 0;
                }
        return -ENOENT;
}

void request_init(Request *q) {
        *q = (Request) {
                .format = IMAGE_FORMAT_AUTO,
                .trace_fd = -1,
        };
        flasher_flash_options_init(&q->flash);
        serial_spec_init(&q->serial);
}

/* One key of a Port method's options (options_parse() checked key and type). */
static int port_option(const OptionValue *v, void *userdata, sd_bus_error *error) {
        Request *o = userdata;
        int r = 0;

        switch ((PortOptionId) v->spec->id) {
        case PORT_OPTION_ADDRESS:
        case PORT_OPTION_LENGTH:
                if (v->t > UINT32_MAX)
                        return options_error(error, v, "is out of range");
                if (v->spec->id == PORT_OPTION_ADDRESS) {
                        o->address = v->t;
                        o->have_address = true;
                } else {
                        o->length = v->t;
                        o->have_length = true;
                }
                return 0;
        case PORT_OPTION_FORMAT:
                r = image_format_from_string(v->s, &o->format);
                break;
        case PORT_OPTION_ENTRY:
                r = entry_validate(v->s);
                o->entry = v->s;
                break;
        case PORT_OPTION_IMAGE_NAME:
                r = v->s[0] && stm32isp_text_valid(v->s) ? 0 : -EINVAL;
                o->image_name = v->s;
                break;
        case PORT_OPTION_ERASE:
        case PORT_OPTION_MODE:
                r = erase_mode_from_string(v->s, &o->flash.erase);
                o->have_erase = true;
                break;
        case PORT_OPTION_BAUDRATE:
                /* Above 115200 the worker tries the rate first and falls back to 115200. */
                if (v->u < STM32ISP_BAUDRATE_MIN || v->u > STM32ISP_BAUDRATE_MAX)
                        return options_error(error, v, "must be %u..%u", STM32ISP_BAUDRATE_MIN, STM32ISP_BAUDRATE_MAX);
                o->baudrate = v->u;
                return 0;
        case PORT_OPTION_TRACE_FD: {
                struct stat st;
                int flags = fcntl(v->i, F_GETFL);

                if (flags < 0 || fstat(v->i, &st) < 0 || (flags & O_ACCMODE) == O_RDONLY || S_ISDIR(st.st_mode))
                        return options_error(error, v, "is not a writable file descriptor");
                o->trace_fd = v->i;
                return 0;
        }
        case PORT_OPTION_TRACE_FORMAT:
                r = streq(v->s, STM32ISP_TRACE_FORMAT_TEXT) || streq(v->s, STM32ISP_TRACE_FORMAT_JSON) ? 0 : -EINVAL;
                o->trace_json = streq(v->s, STM32ISP_TRACE_FORMAT_JSON);
                break;
        case PORT_OPTION_VERIFY:
        case PORT_OPTION_UNPROTECT:
        case PORT_OPTION_PROTECT:
        case PORT_OPTION_BOOT0:
        case PORT_OPTION_GO:
        case PORT_OPTION_FORCE:
                return flash_options_set_flag(&o->flash, v->spec->key, v->b);
        case PORT_OPTION_DETACH:
                o->detach = v->b;
                return 0;
        case PORT_OPTION_SN_ADDRESS:
        case PORT_OPTION_SN_FIRST:
        case PORT_OPTION_SN_STEP:
        case PORT_OPTION_SN_FORMAT:
        case PORT_OPTION_SN_COUNTER:
                r = serial_spec_set(&o->serial, (SerialKey) (v->spec->id - PORT_OPTION_SN_ADDRESS),
                                    v->type == 't' ? v->t : 0, v->type == 's' ? v->s : NULL);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return options_error_invalid(error, v);
        return 0;
}

int request_parse(sd_bus_message *m, uint64_t allowed, Request *q, sd_bus_error *error) {
        int r;

        request_init(q);
        r = options_parse(m, &port_option_table, allowed, port_option, q, error);
        return r < 0 ? r : 0;
}

int request_new_job(const Request *q, JobOp op, Job **ret) {
        _cleanup_(job_freep) Job *j = job_new(op);

        if (!j)
                return -ENOMEM;
        j->baudrate = q->baudrate;
        if (q->trace_fd >= 0) {
                j->trace_fd = fcntl(q->trace_fd, F_DUPFD_CLOEXEC, 3);
                if (j->trace_fd < 0)
                        return -errno;
                j->trace_json = q->trace_json;
        }
        if (q->entry) {
                j->entry = strdup(q->entry);
                if (!j->entry)
                        return -ENOMEM;
        }
        j->erase_mode = q->flash.erase;
        j->flash.force = q->flash.force;        /* Lock's, Unlock's; Flash takes all of q->flash */
        j->address = (uint32_t) q->address;
        j->length = (uint32_t) q->length;
        *ret = TAKE_PTR(j);
        return 0;
}

int request_new_flash_job(const Request *q, const uint8_t *data, size_t size, const char *sha256,
                          const char *default_name, Job **ret, ImageError *err) {
        _cleanup_(job_freep) Job *j = NULL;
        int r;

        r = request_new_job(q, JOB_FLASH, &j);
        if (r < 0)
                return r;
        r = image_file_parse(data, size, q->format, q->have_address, (uint32_t) q->address, &j->image, err);
        if (r < 0)
                return r;
        j->image_name = strdup(q->image_name ?: default_name);
        if (!j->image_name)
                return -ENOMEM;
        if (sha256)
                memcpy(j->image_sha256, sha256, sizeof j->image_sha256);
        else
                sha256_hex(data, size, j->image_sha256);
        j->flash = q->flash;
        j->expect_pid = q->expect_chip;
        j->automatic = q->automatic;
        *ret = TAKE_PTR(j);
        return 0;
}
