/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Assertions for the test programs: print where and what, then abort (the harness
 * counts a crash as a failure; ASan/UBSan reports stay attached). */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                               \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: %s: assertion failed: %s\n",            \
                                __FILE__, __LINE__, __func__, #expr);                   \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_EQ(a, b)                                                                 \
        do {                                                                            \
                intmax_t _a = (intmax_t) (a), _b = (intmax_t) (b);                      \
                if (_a != _b) {                                                         \
                        fprintf(stderr, "%s:%d: %s: %s == %s failed: %jd (0x%jx) != %jd (0x%jx)\n", \
                                __FILE__, __LINE__, __func__, #a, #b, _a, _a, _b, _b);  \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_OK(expr)                                                                 \
        do {                                                                            \
                intmax_t _r = (intmax_t) (expr);                                        \
                if (_r < 0) {                                                           \
                        fprintf(stderr, "%s:%d: %s: %s failed: %jd (%s)\n",             \
                                __FILE__, __LINE__, __func__, #expr, _r, strerror((int) -_r)); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* expr must fail with -err (err positive, e.g. ETIMEDOUT). */
#define ASSERT_ERR(expr, err)                                                           \
        do {                                                                            \
                intmax_t _r = (intmax_t) (expr);                                        \
                if (_r != -(intmax_t) (err)) {                                          \
                        fprintf(stderr, "%s:%d: %s: %s returned %jd (%s), expected -%s\n", \
                                __FILE__, __LINE__, __func__, #expr, _r,                \
                                _r < 0 ? strerror((int) -_r) : "success", #err);        \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_STREQ(a, b)                                                              \
        do {                                                                            \
                const char *_a = (a), *_b = (b);                                        \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                \
                        fprintf(stderr, "%s:%d: %s: %s == %s failed: \"%s\" != \"%s\"\n", \
                                __FILE__, __LINE__, __func__, #a, #b,                   \
                                _a ? _a : "(null)", _b ? _b : "(null)");                \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_MEMEQ(a, b, n)                                                           \
        do {                                                                            \
                const uint8_t *_a = (const uint8_t *) (a), *_b = (const uint8_t *) (b); \
                size_t _n = (n);                                                        \
                for (size_t _i = 0; _i < _n; _i++)                                      \
                        if (_a[_i] != _b[_i]) {                                         \
                                fprintf(stderr, "%s:%d: %s: %s and %s differ at %zu: 0x%02x != 0x%02x\n", \
                                        __FILE__, __LINE__, __func__, #a, #b, _i, _a[_i], _b[_i]); \
                                abort();                                                \
                        }                                                               \
        } while (0)

/* Runs one test function and says so, so a log shows how far it got. */
#define TEST(fn)                                                                        \
        do {                                                                            \
                fprintf(stderr, "== %s\n", #fn);                                        \
                fn();                                                                   \
        } while (0)

#define EXIT_TEST_SKIP 77
