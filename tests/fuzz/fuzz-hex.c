/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the HEX parser alone (see fuzz-image.c). */
#define FUZZ_FORMAT IMAGE_FORMAT_HEX
#include "fuzz-image.c"
