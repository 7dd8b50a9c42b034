/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

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

int parse_timestamp(const char *s, uint64_t *ret) {
        static const char *const formats[] = {
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
        };
        uint64_t v;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '@') {
                if (parse_address(s + 1, &v) < 0 || v > UINT64_MAX / 1000000)
                        return -EINVAL;
                *ret = v * 1000000;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = { .tm_isdst = -1 };
                const char *end = strptime(s, formats[i], &tm);
                time_t t;

                if (!end)
                        continue;
                if (streq(end, "Z") || streq(end, "UTC") || streq(end, " UTC"))
                        t = timegm(&tm);
                else if (*end == 0)
                        t = mktime(&tm);
                else
                        continue;
                if (t == (time_t) -1 || t < 0)
                        return -EINVAL;
                *ret = (uint64_t) t * 1000000;
                return 0;
        }
        return -EINVAL;
}
