/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "util.h"

static int parse_number(const char *s, uint64_t *ret, bool suffixes) {
        unsigned long long v;
        uint64_t mult = 1;
        char *end;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0)
                return -errno;
        if (end == s)
                return -EINVAL;
        if (*end) {
                if (!suffixes)
                        return -EINVAL;
                if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
                        mult = 1024;
                else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
                        mult = 1024 * 1024;
                else
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        return parse_number(s, ret, true);
}

int parse_address(const char *s, uint64_t *ret) {
        return parse_number(s, ret, false);
}
