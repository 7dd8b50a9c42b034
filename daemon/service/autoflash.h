/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* An auto-flash profile: an image (kept as the file's bytes, parsed again for each
 * board), flash options, a match on the adapter (USB VID:PID, serial glob, ID_PATH
 * glob; empty matches every port) and the expected chip. Built from the config file's
 * [AutoFlash] section (autoflash_set(), values as text) or from SetAutoFlash's options
 * (autoflash_set_value(), values as the bus typed them); each setting is checked in one
 * place. No D-Bus. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flasher.h"
#include "image.h"
#include "job.h"
#include "macro.h"
#include "serialjob.h"
#include "sha256.h"

typedef struct AutoFlash {
        uint8_t *data;                  /* the image file */
        size_t size;
        uint64_t payload_size;          /* the bytes it writes (the results log's image_size) */
        char *image_name;
        char sha256[SHA256_HEX_MAX];
        ImageFormat format;
        bool have_address;
        uint32_t address;               /* where a raw binary goes */

        FlasherFlashOptions flash;
        unsigned baudrate;              /* 0: the default (115200); 1200..3000000 */
        char *entry;

        bool match_usb, match_any_pid;
        uint16_t match_vid, match_pid;
        char *match_serial;             /* fnmatch globs, NULL: any */
        char *match_id_path;
        char *match_port;               /* glob on the port's device or name; NULL: only
                                         * USB adapters udev reports as they appear */
        uint16_t expect_chip;           /* 0: any */

        /* How a board is found: when its adapter appears (plug), or by asking every
         * idle matching port for a bootloader every poll_ms (poll: adapters that stay
         * plugged into a fixture while boards are swapped; station.h). */
        bool detect_poll;
        unsigned poll_ms;

        SerialSpec serial;              /* a number for every board (sn-address given) */

        const char *source;             /* "config" or "bus" */
        uint64_t n_started, n_passed, n_failed;
} AutoFlash;

int autoflash_new(const char *source, AutoFlash **ret);
AutoFlash *autoflash_free(AutoFlash *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AutoFlash *, autoflash_free);

/* Sets one setting from its config name (case-insensitive: ImageName, Format, Address,
 * Erase, Verify, Unprotect, Protect, Boot0, Go, Force, Baudrate, Entry, MatchUSB=VVVV:PPPP
 * (PPPP may be *), MatchSerial, MatchIdPath, MatchPort, ExpectChip, Detect, PollMs,
 * SnAddress, SnFirst, SnStep, SnFormat, SnCounter) or its bus name (image-name, format,
 * address, erase, verify, ..., vid, pid, serial, id-path, port, chip, detect, poll-ms,
 * sn-address, sn-first, sn-step, sn-format, sn-counter), value as text.
 * -ENOENT for an unknown key, -EINVAL for a bad value. Image= is not handled here: the
 * caller reads the file and calls autoflash_set_image(). */
int autoflash_set(AutoFlash *a, const char *key, const char *value);

/* A value of the type its bus key takes (autoflash_bus_type()): s for 's', b for 'b',
 * u for the integers. */
typedef struct AutoFlashValue {
        const char *s;
        bool b;
        uint64_t u;
} AutoFlashValue;
/* Sets the setting a SetAutoFlash key names (AutoFlashOptionId, options.h) from its
 * typed value, checked as autoflash_set() checks text. -ENOENT, -EINVAL, -ENOMEM. */
int autoflash_set_value(AutoFlash *a, unsigned setting, const AutoFlashValue *v);
/* The D-Bus type a bus key takes ('s', 'b', 'q', 'u', 't'), or 0 if unknown. */
char autoflash_bus_type(const char *key);

/* Takes a copy of the image file's bytes; checks that it parses to some data. */
int autoflash_set_image(AutoFlash *a, const void *data, size_t size, const char *default_name);
/* Reads a regular file from its start (a caller's fd). */
int autoflash_load_fd(AutoFlash *a, int fd, const char *default_name);
/* Reads the file at path (the config's Image=: a trusted path). */
int autoflash_load_image(AutoFlash *a, const char *path);

/* A fresh parsed image for one board. */
int autoflash_make_image(const AutoFlash *a, Image **ret);
/* The Flash job for one board: the image, the flash options, the expected chip;
 * marked automatic. */
int autoflash_new_job(const AutoFlash *a, Job **ret);

/* A port the profile may flash. */
typedef struct AutoFlashCandidate {
        const char *name;               /* "ttyUSB0", "tcp://host:port" */
        const char *device;             /* "/dev/ttyUSB0", "tcp://host:port" */
        bool plugged;                   /* a USB adapter udev reported as it appeared */
        uint16_t vid, pid;
        const char *serial, *id_path;
} AutoFlashCandidate;

/* Without MatchPort/"port" only plugged adapters match; with it, the ports it names
 * (any transport). The other match keys narrow further. */
bool autoflash_matches(const AutoFlash *a, const AutoFlashCandidate *c);
/* What the profile matches, for the log: "every USB adapter", "port tcp://10.0.0.*",
 * "USB adapters with USB ID 0403:6001 with serial ST*". */
int autoflash_describe_match(const AutoFlash *a, char **ret);
