/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SHA-256 as the results log records it: lower-case hex, known vectors. */

#include "sha256.h"
#include "test-util.h"

static void test_vectors(void) {
        char sha[SHA256_HEX_MAX];

        sha256_hex("", 0, sha);
        ASSERT_STREQ(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, sha);
        ASSERT_STREQ(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void) {
        TEST(test_vectors);
        return 0;
}
