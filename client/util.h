/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "string-util.h"


/* "4096", "0x1000", "4K", "64KiB", "1M" -> bytes. 0 or -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t *ret);
/* Like parse_size without suffixes, for addresses. */
int parse_address(const char *s, uint64_t *ret);

/* "@SECONDS", "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" or with 'T' (local time; a trailing
 * 'Z' means UTC) -> usec since the epoch. 0 or -EINVAL. */
int parse_timestamp(const char *s, uint64_t *ret);

static inline int safe_close(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}
