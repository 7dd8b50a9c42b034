/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Serial-number counters and which chip (UID) holds which number, kept in the state
 * directory (serials.json). Every change is on disk before it is acted on: written to
 * a temporary file, fsync'd, renamed over the old one, and the directory fsync'd, so
 * a crash or a restart at any moment keeps every number given out. A number is first
 * reserved for a chip (saved: no other chip gets it, even after a crash), then either
 * committed (the flash wrote it) or released (the job failed before writing it: the
 * next chip gets it). A chip that has a number from a counter gets the same one again.
 * Thread-safe: the port workers call it. No D-Bus. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define SERIAL_STORE_NAME "serials.json"

typedef struct SerialStore SerialStore;

/* Loads dir/serials.json if it exists. A file that cannot be read or parsed is an
 * error (-EBADMSG): numbers must never be handed out twice, so nothing is guessed. */
int serial_store_new(const char *dir, SerialStore **ret);
SerialStore *serial_store_free(SerialStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SerialStore *, serial_store_free);
const char *serial_store_path(const SerialStore *s);

/* The number of the chip uid (hex) in counter: its own when it has one (*ret_new
 * false), else a released one or the counter's next (first for a new counter, then
 * step by step), saved as reserved (*ret_new true). -EOVERFLOW when the counter is
 * at its end; -errno when it cannot be saved (nothing is given out then). */
int serial_store_reserve(SerialStore *s, const char *counter, const char *uid, uint64_t first, uint64_t step,
                         uint64_t *ret, bool *ret_new);
/* The flash wrote the number (or may have): the chip keeps it for good. */
int serial_store_commit(SerialStore *s, const char *counter, const char *uid);
/* The job failed before it wrote anything: a number reserved for it goes back. */
int serial_store_release(SerialStore *s, const char *counter, const char *uid);
/* The chip's number in counter: 1, or 0 when it has none. */
int serial_store_lookup(SerialStore *s, const char *counter, const char *uid, uint64_t *ret);
