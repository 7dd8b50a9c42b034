/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nettle does the hashing: a small library with no global state, configuration files
 * or provider loading (unlike libcrypto). */

#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>

#include "sha256.h"

void sha256_hex(const void *data, size_t size, char buf[static SHA256_HEX_MAX]) {
        struct sha256_ctx ctx;
        uint8_t digest[SHA256_DIGEST_SIZE];

        sha256_init(&ctx);
        sha256_update(&ctx, size, data);
        sha256_digest(&ctx, sizeof digest, digest);
        for (size_t i = 0; i < sizeof digest; i++)
                snprintf(buf + 2 * i, 3, "%02x", digest[i]);
}
