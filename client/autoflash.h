/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* autoflash set's profile options: the command-line option -> the key of
 * Manager.SetAutoFlash, one row each (the flash options are flash's own). main.c makes
 * a long option of each row, --help lists them, the completion offers them. */

#include <stddef.h>

typedef struct ProfileOption {
        const char *option;     /* --OPTION */
        const char *key;        /* its SetAutoFlash key */
        char type;              /* 's'; 'q', 'u', 't' (decimal or 0x hex); 'b' (a flag, no value) */
        const char *arg;        /* the value's name in --help, NULL for a flag */
        const char *help;
} ProfileOption;

#define PROFILE_OPTIONS_MAX 32

extern const ProfileOption profile_options[];
extern const size_t profile_options_n;
