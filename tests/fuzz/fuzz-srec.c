/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the S-record parser alone (see fuzz-image.c). */
#define FUZZ_FORMAT IMAGE_FORMAT_SREC
#include "fuzz-image.c"
