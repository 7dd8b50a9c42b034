/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A serial number for each board a Flash job writes: the settings (sn-address,
 * sn-first, sn-step, sn-format, sn-counter, checked in one place for the profile, the
 * Port.Flash options and the config file), and the job's board hooks that take the
 * chip's number from the store, patch the image in memory and commit or release the
 * number when the flash ends. No D-Bus. */

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "serialnum.h"
#include "serialstore.h"

typedef struct SerialSpec {
        bool enabled;                   /* sn-address given */
        uint32_t address;
        uint64_t first, step;
        SerialLayout layout;
        char format[SERIAL_BYTES_MAX + 8]; /* as given, for the log */
        char counter[SERIAL_COUNTER_NAME_MAX + 1];
} SerialSpec;

/* sn-first 1, sn-step 1, le32, counter "default". */
void serial_spec_init(SerialSpec *s);

typedef enum SerialKey {
        SERIAL_KEY_ADDRESS,
        SERIAL_KEY_FIRST,
        SERIAL_KEY_STEP,
        SERIAL_KEY_FORMAT,
        SERIAL_KEY_COUNTER,
        _SERIAL_KEY_MAX,
} SerialKey;
/* One setting: a number for the address, first and step, text for the format and the
 * counter. -EINVAL for a bad value (an address above 4 GiB, a step of 0, a format
 * serial_layout_parse() refuses, a counter name serial_counter_name_valid() refuses). */
int serial_spec_set(SerialSpec *s, SerialKey key, uint64_t u, const char *text);

/* Gives j (a Flash) the board hooks: its number from store (borrowed: must outlive
 * the job) for the chip's UID. -ENOMEM. */
int serial_job_attach(Job *j, SerialStore *store, const SerialSpec *spec);
