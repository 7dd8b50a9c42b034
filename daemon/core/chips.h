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

/* C0/G0: the one option-byte write form proven on silicon is 8 bytes at ob_base, OPTR
 * and its complement (stm32isp). CHIP_OB_OPTR_FORM_SIZE is that length. */
#define CHIP_OB_OPTR_FORM_SIZE 8u

/* C0/G0: rewrites the OPTR pair (ob[0..7], in place) so that nBOOT_SEL = 0, nBOOT1 = 1,
 * nBOOT0 = 1, with its complement; the rest of ob is not touched (it is never written).
 * Returns 1 if changed, 0 when nBOOT_SEL is already 0 (no write: an interrupted
 * option-byte programming can lock a chip for good, so none is done without need),
 * -EBADMSG when the pair read is not a value and its complement (the chip is not in a
 * state to program over), -EOPNOTSUPP on families without nBOOT_SEL. */
int chip_ob_enable_boot0(const ChipInfo *c, uint8_t *ob);

/* The guard every Write Memory passes (an3155_write_memory()): 0 when [address,
 * address+n) touches no option-byte area of any chip in the table, or is exactly the
 * C0/G0 8-byte form at ob_base (OPTR with its complement, read protection level 0
 * kept: RDP 0xAA); -EPERM otherwise. So no caller can ever write RDP 0xCC, PCROP, WRP,
 * SECR or reserved words through Write Memory, nor any F0/L0 option byte (those change
 * only through the AN3155 protect and unprotect commands). */
int chip_check_option_write(uint32_t address, const uint8_t *data, size_t n);

/* Write protection as decoded from the option bytes (ob_size bytes at ob_base): sets
 * bit p of pages (CHIP_WRP_PAGES_MAX bits) for each protected page p below
 * flash_size / page_size and returns how many there are. See chips.c for each family's
 * encoding and what rests on inference. */
#define CHIP_WRP_PAGES_MAX 128u
int chip_wrp_pages(const ChipInfo *c, const uint8_t *ob, uint32_t flash_size, uint8_t pages[CHIP_WRP_PAGES_MAX / 8]);

/* C0/G0: the name of the option register stored at offset off of the area ("OPTR",
 * "WRP1AR", ... or "reserved"); F0/L0: "RDP", "USER", "WRP", ... For messages. */
const char *chip_ob_field_name(const ChipInfo *c, uint32_t off);

/* True when the device, after a reset with these option bytes, the given BOOT0 pin
 * level and the given first flash word, starts the bootloader. Used by the flasher
 * to know whether to re-sync after a reset. */
bool chip_boots_bootloader(const ChipInfo *c, const uint8_t *ob, bool boot0_pin, bool flash_empty);

/* True when some BOOT0 pin level brings the device into the bootloader after a reset
 * with these option bytes and this first flash word: a board that ends a job like this
 * can still be reached over the UART. */
bool chip_bootloader_reachable(const ChipInfo *c, const uint8_t *ob, bool flash_empty);

/* What to check when no bootloader answers, for a board believed to hold pid (0: not
 * known): sentences (with a leading space) for the family's way into the bootloader
 * and the wiring every board can get wrong. */
const char *chip_no_bootloader_hint(uint16_t pid);

/* Number of the page holding address (address inside flash). */
static inline uint32_t chip_page_of(const ChipInfo *c, uint32_t address) {
        return (address - c->flash_base) / c->page_size;
}
