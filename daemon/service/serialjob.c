/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A Flash job's serial number (serialjob.h). */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serialjob.h"

void serial_spec_init(SerialSpec *s) {
        *s = (SerialSpec) { .first = 1, .step = 1, .layout.format = SERIAL_FORMAT_LE32 };
        snprintf(s->format, sizeof s->format, "le32");
        snprintf(s->counter, sizeof s->counter, "%s", SERIAL_COUNTER_DEFAULT);
}

int serial_spec_set(SerialSpec *s, SerialKey key, uint64_t u, const char *text) {
        switch (key) {
        case SERIAL_KEY_ADDRESS:
                if (u > UINT32_MAX)
                        return -EINVAL;
                s->address = (uint32_t) u;
                s->enabled = true;
                return 0;
        case SERIAL_KEY_FIRST:
                s->first = u;
                return 0;
        case SERIAL_KEY_STEP:
                if (u == 0)
                        return -EINVAL;
                s->step = u;
                return 0;
        case SERIAL_KEY_FORMAT:
                if (!text || strlen(text) >= sizeof s->format || serial_layout_parse(text, &s->layout) < 0)
                        return -EINVAL;
                snprintf(s->format, sizeof s->format, "%s", text);
                return 0;
        case SERIAL_KEY_COUNTER:
                if (!serial_counter_name_valid(text))
                        return -EINVAL;
                snprintf(s->counter, sizeof s->counter, "%s", text);
                return 0;
        default:
                return -ENOENT;
        }
}

typedef struct SerialJob {
        SerialStore *store;
        SerialSpec spec;
        char uid[2 * sizeof(((FlasherChip *) NULL)->uid) + 1];
        bool reserved;                  /* this job took a new number */
} SerialJob;

static int serial_prepare(Job *j, char *msg, size_t n, void *userdata) {
        SerialJob *sj = userdata;
        uint8_t bytes[SERIAL_BYTES_MAX];
        size_t size;
        uint64_t number;
        int r;

        /* The number is bound to the chip: without its UID there is nothing to bind to. */
        if (!j->chip.have_uid) {
                snprintf(msg, n, "The chip gave no unique ID: a serial number cannot be bound to it");
                return -EOPNOTSUPP;
        }
        for (size_t i = 0; i < sizeof j->chip.uid; i++)
                snprintf(sj->uid + 2 * i, 3, "%02x", j->chip.uid[i]);
        r = serial_store_reserve(sj->store, sj->spec.counter, sj->uid, sj->spec.first, sj->spec.step, &number,
                                 &sj->reserved);
        if (r == -EOVERFLOW) {
                snprintf(msg, n, "Serial-number counter '%s' is at its end", sj->spec.counter);
                return -ERANGE;
        }
        if (r < 0) {
                snprintf(msg, n, "Cannot save the serial numbers in %s: %s", serial_store_path(sj->store),
                         strerror(-r));
                return r;
        }
        r = serial_render(&sj->spec.layout, number, bytes, &size);
        if (r >= 0)
                r = serial_patch_image(j->image, sj->spec.address, bytes, size);
        if (r < 0) {
                if (r == -ERANGE)
                        snprintf(msg, n, "Serial number %" PRIu64 " (%s, %zu bytes at 0x%08" PRIX32 ") does not fit: "
                                 "it must fit its format and lie inside the image or clear of it",
                                 number, sj->spec.format, size, sj->spec.address);
                if (sj->reserved)
                        (void) serial_store_release(sj->store, sj->spec.counter, sj->uid);
                sj->reserved = false;
                return r == -ERANGE ? -EINVAL : r;
        }
        j->have_serial_number = true;
        j->serial_number = number;
        return 0;
}

static void serial_finish(Job *j, void *userdata) {
        SerialJob *sj = userdata;

        /* Nothing written: a new number goes back. Anything written (a failure in the
         * middle, a verify error): the chip may hold it, so it keeps it. */
        if (j->error < 0 && j->result.bytes_written == 0) {
                if (sj->reserved)
                        (void) serial_store_release(sj->store, sj->spec.counter, sj->uid);
                j->have_serial_number = false;
                return;
        }
        (void) serial_store_commit(sj->store, sj->spec.counter, sj->uid);
}

int serial_job_attach(Job *j, SerialStore *store, const SerialSpec *spec) {
        SerialJob *sj = calloc(1, sizeof *sj);

        if (!sj)
                return -ENOMEM;
        sj->store = store;
        sj->spec = *spec;
        j->board = (JobBoardHooks) {
                .prepare = serial_prepare,
                .finish = serial_finish,
                .free = free,
                .userdata = sj,
        };
        return 0;
}
