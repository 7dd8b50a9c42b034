/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a caller asks of a port, in the daemon's words: the options of a Port method
 * (parsed from its a{sv}) or of an auto-flash profile, and the one place a Job is
 * built from them. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "flasher.h"
#include "image.h"
#include "job.h"
#include "serialjob.h"

typedef struct Request {
        bool have_address, have_length;
        uint64_t address, length;       /* Flash: where a raw binary goes; Erase (auto): the range */
        ImageFormat format;
        FlasherFlashOptions flash;      /* Flash's; flash.erase is also Erase's "mode" */
        bool have_erase;
        unsigned baudrate;              /* 0: the default */
        const char *entry;              /* borrowed; NULL: none */
        const char *image_name;         /* borrowed; NULL: the caller's default */
        uint16_t expect_chip;           /* Flash: refuse another chip; 0: any */
        bool automatic;                 /* an auto-flash profile's, not a caller's */
        bool detach;                    /* the job outlives its caller on the bus */
        int trace_fd;                   /* "trace-fd": borrowed from the message; -1: none */
        bool trace_json;                /* "trace-format" json */
        SerialSpec serial;              /* Flash: a serial number (sn-address given) */
} Request;

/* The Flash method's defaults (flasher_flash_options_init(): erase auto, verify,
 * boot0), format auto. */
void request_init(Request *q);

/* Reads a Port method's a{sv} (m positioned at it) into q, over request_init()'s
 * defaults: keys outside allowed (PORT_OPTIONS_*), wrong types and bad values are
 * InvalidArgs naming the key. Strings point into m. */
int request_parse(sd_bus_message *m, uint64_t allowed, Request *q, sd_bus_error *error);

/* A job for op with the link options (baudrate, entry, a copy of the trace fd) and the operation's own
 * (Erase: mode, address, length; Read/Go: address and length as given; Lock: force). */
int request_new_job(const Request *q, JobOp op, Job **ret);

/* A Flash job: the image file's bytes parsed (format, address; image_file_parse()'s
 * errors, with err), its SHA-256 (sha256: precomputed, NULL: computed here) and name
 * (q->image_name, else default_name) for the results log, the flash options. */
int request_new_flash_job(const Request *q, const uint8_t *data, size_t size, const char *sha256,
                          const char *default_name, Job **ret, ImageError *err);

/* Sets the yes/no Flash option named key (verify, unprotect, protect, boot0, go, force:
 * the same keys for a Port method and an auto-flash profile); -ENOENT for another key. */
int flash_options_set_flag(FlasherFlashOptions *o, const char *key, bool b);

/* "auto", "mass" (also "all", an older spelling), "none"; -EINVAL otherwise. */
int erase_mode_from_string(const char *s, FlasherErase *ret);
const char *erase_mode_to_string(FlasherErase e);
