/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the ELF parser alone (see fuzz-image.c). */
#define FUZZ_FORMAT IMAGE_FORMAT_ELF
#include "fuzz-image.c"
