/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The device table: what the host must know about each supported STM32 to program
 * it through the ROM bootloader. Each value's source is named where chips.c sets it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ChipFamily {
        CHIP_FAMILY_C0,
        CHIP_FAMILY_F0,
        CHIP_FAMILY_G0,
        CHIP_FAMILY_L0,
} ChipFamily;

/* How the option bytes are laid out in the option-byte area. */
typedef enum ChipObLayout {
        CHIP_OB_F0,     /* byte value + complement byte per half-word; RDP at +0 (level 0: 0xAA) */
        CHIP_OB_G0,     /* 32-bit register + complement word per 8 bytes; OPTR at +0, RDP = OPTR[7:0] */
        CHIP_OB_L0,     /* 16-bit value + complement in the high half per word; RDP = w0[7:0] */
} ChipObLayout;

/* What decides whether a reset comes back into the bootloader. */
typedef enum ChipBootRule {
        CHIP_BOOT_PIN,          /* F0, L0: BOOT0 pin high (nBOOT1 = 1) */
        CHIP_BOOT_NBOOT_SEL,    /* C0, G0: nBOOT_SEL/nBOOT0/BOOT0 pin, and the empty-flash check */
} ChipBootRule;

typedef struct ChipInfo {
        uint16_t pid;
        const char *name;               /* "STM32G03x/04x" */
        ChipFamily family;

        uint32_t flash_base;            /* 0x08000000 */
        uint32_t flash_size;            /* the largest part of the line, bytes */
        uint32_t flash_size_reg;        /* 16-bit flash size in KiB; 0 = none */
        uint32_t page_size;             /* erase unit */
        uint8_t erased;                 /* 0xFF, L0: 0x00 */
        uint8_t write_unit;             /* programming unit: G0/C0 8, F0 4 (AN3155), L0 4 */
        uint16_t write_block;           /* preferred Write Memory size: 256, L0 128 */
        uint32_t pages_per_sector;      /* write protection granularity */

        uint32_t ob_base;               /* option-byte area */
        uint32_t ob_size;               /* bytes to read/write back as one block */
        ChipObLayout ob_layout;
        const uint8_t *ob_factory;      /* ob_size bytes as shipped */

        uint32_t uid[3];                /* addresses of the three UID words (L0: not contiguous) */
        uint32_t ram_base;              /* SRAM */
        uint32_t ram_size;
        uint32_t ram_user;              /* first RAM address the bootloader leaves to the host */
        uint32_t sysmem_base;
        uint32_t sysmem_size;
        uint8_t bootloader_id;          /* the byte AN2606 lists (V5.3 = 0x53) */
        uint32_t bootloader_id_addr;

        bool mass_erase;                /* false on L0: erase page by page */
        ChipBootRule boot_rule;

        /* Datasheet timings (typical), for timeouts and the simulator's model. */
        uint32_t program_usec;          /* per write unit */
        uint32_t page_erase_usec;
        uint32_t mass_erase_usec;
} ChipInfo;

const ChipInfo *chip_lookup(uint16_t pid);
/* The table, for listings and tests. */
const ChipInfo *chip_table(size_t *ret_n);
const char *chip_family_to_string(ChipFamily f);

/* Read protection level from the option bytes as read at ob_base (ob_size bytes):
 * 0, 1 or 2. */
int chip_rdp_level(const ChipInfo *c, const uint8_t *ob);

/* G0/C0: the OPTR word (ob[0..3] little endian); F0/L0: the user option byte(s). */
uint32_t chip_optr(const ChipInfo *c, const uint8_t *ob);

/* C0/G0: rewrites ob (ob_size bytes, in place) so that nBOOT_SEL = 0, nBOOT1 = 1 and
 * the complement words match; returns 1 if changed, 0 if already so, -EOPNOTSUPP on
 * families without nBOOT_SEL. */
int chip_ob_enable_boot0(const ChipInfo *c, uint8_t *ob);

/* True when the device, after a reset with these option bytes, the given BOOT0 pin
 * level and the given first flash word, starts the bootloader. Used by the flasher
 * to know whether to re-sync after a reset. */
bool chip_boots_bootloader(const ChipInfo *c, const uint8_t *ob, bool boot0_pin, bool flash_empty);

/* Number of the page holding address (address inside flash). */
static inline uint32_t chip_page_of(const ChipInfo *c, uint32_t address) {
        return (address - c->flash_base) / c->page_size;
}
