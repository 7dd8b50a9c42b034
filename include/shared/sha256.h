/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SHA-256 of a buffer as lower-case hex: what the results log records of an image. */

#include <stddef.h>

#define SHA256_HEX_MAX 65
void sha256_hex(const void *data, size_t size, char buf[static SHA256_HEX_MAX]);
