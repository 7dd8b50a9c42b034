/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The simulator's own device table, written from ST's documents and the tools that
 * program these parts (sim-devices.c).
 * Deliberately independent of daemon/core/chips.c: an oracle must not share the code it checks. */

#include <stdbool.h>
#include <stdint.h>

typedef enum SimFamily {
        SIM_FAMILY_C0,
        SIM_FAMILY_F0,
        SIM_FAMILY_G0,
        SIM_FAMILY_L0,
} SimFamily;

typedef struct SimDevice {
        uint16_t pid;
        const char *name;
        SimFamily family;

        uint32_t flash_base;
        uint32_t flash_max;             /* the family's largest part */
        uint32_t page_size;             /* erase unit */
        uint8_t erased;                 /* L0: 0x00 */
        unsigned write_unit;            /* hardware programming unit: 2 (F0), 4 (L0), 8 (C0/G0) */
        uint32_t pages_per_sector;      /* write-protection granularity */

        uint32_t host_ram_start;        /* RAM the bootloader leaves to the host; */
        uint32_t host_ram_end;          /* [start, end), empty on L0 */

        uint32_t sys_base, sys_size;    /* system memory (the bootloader) */
        uint32_t bl_id_addr;            /* where the bootloader ID byte sits */
        uint8_t bl_id;

        uint32_t ob_base, ob_size;      /* option-byte area as readable */

        uint32_t info_base, info_size;  /* factory info area outside system memory (0: none) */
        uint32_t uid_addr[3];
        uint32_t flash_size_reg;
        uint32_t package_reg;           /* 0: none */

        uint32_t otp_base, otp_size;    /* 0: none */
        uint32_t eeprom_base, eeprom_size;

        uint32_t factory_optr;          /* C0/G0 */

        /* datasheet timings in nanoseconds (timing model) */
        uint64_t program_nsec;          /* per write unit (L0: per 64-byte half-page chunk) */
        uint64_t page_erase_nsec;
        uint64_t mass_erase_nsec;
} SimDevice;

const SimDevice *sim_device_find(uint16_t pid);
