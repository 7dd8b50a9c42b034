/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The subcommands. Each returns an exit code (exit-codes.h). */

#include <stdbool.h>
#include <stdint.h>

#include "autoflash.h"
#include "bus.h"

typedef struct Args {
        BusKind bus_kind;
        const char *bus_address;
        bool ask_password;      /* the daemon may have polkit ask the user (a password) */
        bool json;
        bool quiet;

        const char *command;
        char **pos;             /* positional arguments after the command */
        int n_pos;

        bool have_address, have_length, have_baud;
        uint64_t address, length;
        uint32_t baud;
        const char *format;     /* auto|bin|hex|elf|srec */
        const char *erase;      /* auto|mass|none */
        const char *entry;
        const char *pages;      /* erase --pages FIRST[-LAST] */
        bool mass;
        int verify, unprotect, protect, boot0, go;      /* -1: daemon default */
        bool force;             /* flash, lock: accept an end state with no way back */
        const char *profile[PROFILE_OPTIONS_MAX];      /* autoflash set: the values of profile_options[] */
        bool have_profile;
        int image_fd;           /* flash: the image, opened before the bus (cmd_flash_open_image()) */
        bool detach;            /* return once the job started; it outlives the client */
        const char *report;     /* diagnose --report FILE */
        const char *trace;      /* --trace FILE */
        int trace_fd;           /* FILE opened for writing, -1: none */
        /* flash: a serial number (sn-address given) */
        bool have_sn_address, have_sn_first, have_sn_step;
        uint64_t sn_address, sn_first, sn_step;
        const char *sn_format, *sn_counter;

        /* log */
        const char *result;     /* pass|fail */
        const char *uid;
        uint64_t since_usec, until_usec;        /* 0: unbounded */
        uint32_t limit;         /* 0: all */
        bool have_serial;       /* --serial N */
        uint64_t serial;
        bool stats;             /* --stats: counts instead of entries */

        /* monitor station: print the table once and exit (since_usec: where its counts start) */
        bool once;
} Args;

int cmd_list(ClientBus *c, const Args *a);
int cmd_info(ClientBus *c, const Args *a);
int cmd_diagnose(ClientBus *c, const Args *a);
/* Opens the image (flash, autoflash set) into a->image_fd: file errors come before the
 * bus is touched. Returns 0 or an exit code. */
int client_open_image(Args *a, const char *file);
/* Appends Flash's options from the command line (also the profile's of autoflash set);
 * file names the image (image-name). */
int flash_append_options(sd_bus_message *call, const Args *a, const char *file);
int cmd_flash(ClientBus *c, const Args *a);
int cmd_erase(ClientBus *c, const Args *a);
int cmd_read(ClientBus *c, const Args *a);
int cmd_lock(ClientBus *c, const Args *a);
int cmd_unlock(ClientBus *c, const Args *a);
int cmd_go(ClientBus *c, const Args *a);
int cmd_cancel(ClientBus *c, const Args *a);
int cmd_remove(ClientBus *c, const Args *a);
int cmd_autoflash(ClientBus *c, const Args *a);
int cmd_monitor(ClientBus *c, const Args *a);
int cmd_log(ClientBus *c, const Args *a);
