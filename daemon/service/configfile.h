/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The configuration file (stm32ispd.conf): [Adapters] Allow=/Deny= lists of USB VID:PID
 * (hex; PID may be *), and an [AutoFlash] profile whose Image= is read at load time (the
 * file is trusted, callers are not). Errors are logged with the file's name and line. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autoflash.h"

#define ADAPTER_RULES_MAX 64

typedef struct AdapterRule {
        uint16_t vid, pid;
        bool any_pid;
} AdapterRule;

typedef struct Config {
        AdapterRule allow[ADAPTER_RULES_MAX], deny[ADAPTER_RULES_MAX];
        size_t n_allow, n_deny;
        AutoFlash *autoflash;           /* [AutoFlash], its image read; NULL: none */
        char *autoflash_error;          /* why [AutoFlash] was refused ("line 3: unknown key
                                         * MatchVendor="); NULL: it was not */

        /* while a file is read */
        AutoFlash *config_autoflash;
        char *config_image;
        const char *path;
} Config;

/* Reads path into c (rules add up). -ENOENT: no such file; -EINVAL: a syntax or value
 * error (logged); an Image= that cannot be read: its error (logged). An unknown
 * [AutoFlash] key is no load error: the profile is not armed, autoflash_error says why. */
int config_load(Config *c, const char *path);
void config_done(Config *c);

/* True if the adapter's VID:PID passes the lists: on Allow (or no Allow at all), and
 * not on Deny. */
bool config_adapter_allowed(const Config *c, uint16_t vid, uint16_t pid);
