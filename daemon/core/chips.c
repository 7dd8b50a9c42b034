/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "chips.h"

#include <errno.h>
#include <string.h>

#include "macro.h"

/* Values and their sources: ST's AN3155, the CMSIS device headers and reference
 * manuals, and the tools that program these parts on silicon (stm32flash, stm32loader,
 * stm32isp, Black Magic Probe), named at each value.
 *
 * Option bytes. The host reads the whole area (C0/G0 the 0x80 bytes 0x1FFF7800..787F:
 * OPTR, PCROP, WRP, SECR pairs; F0 the 16 bytes stm32flash names; L0 the 3 words that
 * exist, per BMD) and writes only one thing through Write Memory: on C0/G0 the 8 bytes
 * OPTR + complement at 0x1FFF7800, the only form shown to work on silicon (stm32isp's
 * enablebootpin). Nothing public shows what the ROM does with a longer write, so none is
 * ever sent: chip_check_option_write() refuses it, and every other option change goes
 * through the AN3155 protect/unprotect commands.
 *
 * Proven on silicon or documented: the AN3155 commands, the G0 8-byte alignment quirk
 * (reported on 0x466 on ST's forum), the OPTR+complement write (stm32isp), the RDP byte
 * values (HAL), the C0/G0 boot table (AN5096/RM0490), OBL resets after option changes
 * (BMD, HAL). Inferred, and named where the code relies on them: the rest of the C0/G0
 * option layout (pairs every 8 bytes, as CubeProgrammer dumps suggest [U]), C0 timings
 * and write unit (G0's), the L0 erased value, WRP polarity on L0, the WRP field width
 * on C0. */

#define LE32(v) (uint8_t) ((v) & 0xFF), (uint8_t) (((v) >> 8) & 0xFF), \
                (uint8_t) (((v) >> 16) & 0xFF), (uint8_t) (((v) >> 24) & 0xFF)
/* a C0/G0 register and its complement word */
#define PAIR32(v) LE32(UINT32_C(v)), LE32(~UINT32_C(v) & UINT32_C(0xFFFFFFFF))
#define ERASED8 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF

/* Black Magic Probe's stm32g0_options_def: PCROP1A start 0xFFFFFFFF end 0, WRP1A/B 0xFF (off),
 * PCROP1B the same, SECR 0; the words no source names read as erased. */
#define G0_OB_TAIL \
        PAIR32(0xFFFFFFFF), PAIR32(0x00000000), PAIR32(0x000000FF), PAIR32(0x000000FF), \
        PAIR32(0xFFFFFFFF), PAIR32(0x00000000), \
        ERASED8, ERASED8, ERASED8, ERASED8, ERASED8, ERASED8, ERASED8, \
        PAIR32(0x00000000), ERASED8

/* G0x1 factory OPTR 0xFFFFFEAA (Black Magic Probe; read on a G071 on ST's forum). */
static const uint8_t ob_factory_g0[0x80] = { PAIR32(0xFFFFFEAA), G0_OB_TAIL };
/* C0x1 OPTR 0xFFFFFFAA (Black Magic Probe's current FLASH_OPTR_C0x1_DEF, citing RM0490;
 * an older value was 0x3FFFFFAA). Not read from a C0 yet [T]. */
static const uint8_t ob_factory_c0[0x80] = { PAIR32(0xFFFFFFAA), G0_OB_TAIL };
/* CMSIS OB_TypeDef, stm32isp's factory word 0x00FF55AA: RDP AA/55, USER FF/00,
 * DATA0/1 FF/00, WRP0..3 FF/00 (no protection). */
static const uint8_t ob_factory_f0[16] = {
        0xAA, 0x55, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00,
        0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00,
};
/* stm32isp's factory OPTR 0x807000AA as value + complement halves (Black Magic Probe's
 * layout): w0 0xFF5500AA, w1 0x7F8F8070, w2 WRP1 = 0 (nothing protected) -> 0xFFFF0000. */
static const uint8_t ob_factory_l0[12] = {
        0xAA, 0x00, 0x55, 0xFF, 0x70, 0x80, 0x8F, 0x7F, 0x00, 0x00, 0xFF, 0xFF,
};

static const ChipInfo chips[] = {
        {
                .pid = 0x443, .name = "STM32C011xx", .family = CHIP_FAMILY_C0,
                /* the C011 die has 32 KiB (a C011F4 read and wrote all 32, ST's forum); the
                 * register says what is sold */
                .flash_base = 0x08000000, .flash_size = 32 * 1024, .flash_size_reg = 0x1FFF75A0,
                /* 64-bit programming (HAL) with the G0's 8-aligned Write Memory quirk
                 * assumed [U: reported on 0x466 only]; one page per WRP sector [U] */
                .page_size = 2048, .erased = 0xFF, .write_unit = 8, .write_block = 256,
                .pages_per_sector = 1,
                .ob_base = 0x1FFF7800, .ob_size = sizeof(ob_factory_c0), .ob_layout = CHIP_OB_G0,
                .ob_factory = ob_factory_c0,
                .uid = { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 },
                .ram_base = 0x20000000, .ram_size = 6 * 1024, .ram_user = 0x20001000,
                .sysmem_base = 0x1FFF0000, .sysmem_size = 0x1800,
                .bootloader_id = 0x51, .bootloader_id_addr = 0x1FFF17FE,
                /* mass erase: the V3.x Extended Erase rule, no C0 log seen [U] */
                .mass_erase = true, .boot_rule = CHIP_BOOT_NBOOT_SEL,
                /* no C0 datasheet figures found: the G031's (DS12992 Table 44) [U] */
                .program_usec = 85, .page_erase_usec = 22000, .mass_erase_usec = 22100,
        },
        {
                .pid = 0x453, .name = "STM32C031xx", .family = CHIP_FAMILY_C0,
                .flash_base = 0x08000000, .flash_size = 32 * 1024, .flash_size_reg = 0x1FFF75A0,
                .page_size = 2048, .erased = 0xFF, .write_unit = 8, .write_block = 256,
                .pages_per_sector = 1,
                .ob_base = 0x1FFF7800, .ob_size = sizeof(ob_factory_c0), .ob_layout = CHIP_OB_G0,
                .ob_factory = ob_factory_c0,
                .uid = { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 },
                /* the tools disagree on the bootloader's RAM (0x20001000 / 0x20002000):
                 * the later one is safe under both readings */
                .ram_base = 0x20000000, .ram_size = 12 * 1024, .ram_user = 0x20002000,
                .sysmem_base = 0x1FFF0000, .sysmem_size = 0x1800,
                .bootloader_id = 0x52, .bootloader_id_addr = 0x1FFF17FE,
                .mass_erase = true, .boot_rule = CHIP_BOOT_NBOOT_SEL,
                .program_usec = 85, .page_erase_usec = 22000, .mass_erase_usec = 22100,
        },
        {
                .pid = 0x444, .name = "STM32F03xx4/6", .family = CHIP_FAMILY_F0,
                .flash_base = 0x08000000, .flash_size = 32 * 1024, .flash_size_reg = 0x1FFFF7CC,
                .page_size = 1024, .erased = 0xFF, .write_unit = 4, .write_block = 256,
                .pages_per_sector = 4,
                .ob_base = 0x1FFFF800, .ob_size = sizeof(ob_factory_f0), .ob_layout = CHIP_OB_F0,
                .ob_factory = ob_factory_f0,
                .uid = { 0x1FFFF7AC, 0x1FFFF7B0, 0x1FFFF7B4 },
                .ram_base = 0x20000000, .ram_size = 4 * 1024, .ram_user = 0x20000800,
                .sysmem_base = 0x1FFFEC00, .sysmem_size = 0xC00,
                .bootloader_id = 0x10, .bootloader_id_addr = 0x1FFFF7A6,
                /* BOOT0 pin with nBOOT1 = 1 and no empty check on 0x444 (stm32flash
                 * quoting RM0360 [T]; the entry pattern is confirmed on an F030C8 only) */
                .mass_erase = true, .boot_rule = CHIP_BOOT_PIN,
                /* 53.5 us per half-word, so 107 us per 4-byte unit (DS9773 Table 39) */
                .program_usec = 107, .page_erase_usec = 30000, .mass_erase_usec = 30000,
        },
        {
                .pid = 0x466, .name = "STM32G03x/04x", .family = CHIP_FAMILY_G0,
                .flash_base = 0x08000000, .flash_size = 64 * 1024, .flash_size_reg = 0x1FFF75E0,
                .page_size = 2048, .erased = 0xFF, .write_unit = 8, .write_block = 256,
                .pages_per_sector = 1,
                .ob_base = 0x1FFF7800, .ob_size = sizeof(ob_factory_g0), .ob_layout = CHIP_OB_G0,
                .ob_factory = ob_factory_g0,
                .uid = { 0x1FFF7590, 0x1FFF7594, 0x1FFF7598 },
                .ram_base = 0x20000000, .ram_size = 8 * 1024, .ram_user = 0x20001000,
                .sysmem_base = 0x1FFF0000, .sysmem_size = 0x2000,
                .bootloader_id = 0x53, .bootloader_id_addr = 0x1FFF1FFE,
                .mass_erase = true, .boot_rule = CHIP_BOOT_NBOOT_SEL,
                .program_usec = 85, .page_erase_usec = 22000, .mass_erase_usec = 22100,
        },
        {
                .pid = 0x457, .name = "STM32L01x/02x", .family = CHIP_FAMILY_L0,
                .flash_base = 0x08000000, .flash_size = 16 * 1024, .flash_size_reg = 0x1FF8007C,
                /* erased flash reads 0x00 (forum reports on L07x [F]) */
                .page_size = 128, .erased = 0x00, .write_unit = 4, .write_block = 128,
                .pages_per_sector = 32,
                .ob_base = 0x1FF80000, .ob_size = sizeof(ob_factory_l0), .ob_layout = CHIP_OB_L0,
                .ob_factory = ob_factory_l0,
                .uid = { 0x1FF80050, 0x1FF80054, 0x1FF80064 },
                /* the bootloader keeps all 2 KiB: nothing is left to the host */
                .ram_base = 0x20000000, .ram_size = 2 * 1024, .ram_user = 0x20000800,
                .sysmem_base = 0x1FF00000, .sysmem_size = 0x1000,
                .bootloader_id = 0xC3, .bootloader_id_addr = 0x1FF00FFE,
                /* no mass erase through the bootloader (stm32flash F_NO_ME [T]); boot by
                 * the BOOT0 pin. Whether the L0 also has an empty check is disputed
                 * (ST's knowledge base says yes, CMSIS names no flag [U]): the host
                 * assumes BOOT0 high after a reset, so it works either way and never
                 * relies on one. */
                .mass_erase = false, .boot_rule = CHIP_BOOT_PIN,
                /* ~3.2 ms per word or half-page and per page [F/U]. No mass erase through
                 * the bootloader; the RDP 1->0 erase is bounded by 128 page erases. */
                .program_usec = 3200, .page_erase_usec = 3200, .mass_erase_usec = 128 * 3200,
        },
};

const ChipInfo *chip_lookup(uint16_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(chips); i++)
                if (chips[i].pid == pid)
                        return &chips[i];
        return NULL;
}

const ChipInfo *chip_table(size_t *ret_n) {
        if (ret_n)
                *ret_n = ELEMENTSOF(chips);
        return chips;
}

const char *chip_family_to_string(ChipFamily f) {
        switch (f) {
        case CHIP_FAMILY_C0: return "C0";
        case CHIP_FAMILY_F0: return "F0";
        case CHIP_FAMILY_G0: return "G0";
        case CHIP_FAMILY_L0: return "L0";
        }
        return NULL;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v) {
        p[0] = v;
        p[1] = v >> 8;
        p[2] = v >> 16;
        p[3] = v >> 24;
}

int chip_rdp_level(const ChipInfo *c, const uint8_t *ob) {
        switch (c->ob_layout) {
        case CHIP_OB_G0:
                /* RDP = OPTR[7:0]: 0xAA level 0, 0xCC level 2, anything else level 1 */
                return ob[0] == 0xAA ? 0 : ob[0] == 0xCC ? 2 : 1;
        case CHIP_OB_F0:
                /* value byte + complement byte; a broken pair is not level 0 */
                if (ob[0] == 0xAA && ob[1] == 0x55)
                        return 0;
                if (ob[0] == 0xCC && ob[1] == 0x33)
                        return 2;
                return 1;
        case CHIP_OB_L0:
                /* RM0367: xx55xxAA = level 0, xx33xxCC = level 2, else level 1 */
                if (ob[0] == 0xAA && ob[2] == 0x55)
                        return 0;
                if (ob[0] == 0xCC && ob[2] == 0x33)
                        return 2;
                return 1;
        }
        return 1;
}

uint32_t chip_optr(const ChipInfo *c, const uint8_t *ob) {
        switch (c->ob_layout) {
        case CHIP_OB_G0:
                return le32(ob);
        case CHIP_OB_F0:
                /* the value bytes in FLASH_OBR's order: RDP, USER, DATA0, DATA1 */
                return (uint32_t) ob[0] | (uint32_t) ob[2] << 8 | (uint32_t) ob[4] << 16 | (uint32_t) ob[6] << 24;
        case CHIP_OB_L0:
                /* FLASH_OPTR = w0.lo | w1.lo << 16 */
                return (le32(ob) & 0xFFFF) | (le32(ob + 4) & 0xFFFF) << 16;
        }
        return 0;
}

/* G0/C0 OPTR bits (CMSIS). */
#define OPTR_NBOOT_SEL (UINT32_C(1) << 24)
#define OPTR_NBOOT1    (UINT32_C(1) << 25)
#define OPTR_NBOOT0    (UINT32_C(1) << 26)

int chip_ob_enable_boot0(const ChipInfo *c, uint8_t *ob) {
        uint32_t optr;

        if (c->boot_rule != CHIP_BOOT_NBOOT_SEL || c->ob_layout != CHIP_OB_G0 || c->ob_size < CHIP_OB_OPTR_FORM_SIZE)
                return -EOPNOTSUPP;

        optr = le32(ob);
        /* a broken pair loads as something else (RM0444: a mismatch forces a secure
         * configuration): do not program over what the chip did not load */
        if ((optr ^ le32(ob + 4)) != UINT32_MAX)
                return -EBADMSG;
        if (!(optr & OPTR_NBOOT_SEL))
                return 0;

        /* What stm32isp does on silicon (enablebootpin): byte 3 = (b3 & 0xF8) | 0x06, i.e.
         * nBOOT_SEL = 0 (the BOOT0 pin decides), nBOOT1 = 1 (pin high = system memory),
         * nBOOT0 = 1 (ignored once nBOOT_SEL = 0). The complement word follows. */
        ob[3] = (ob[3] & 0xF8) | 0x06;
        put_le32(ob + 4, ~le32(ob));
        return 1;
}

/* An option-byte area of the table that [address, address + n) overlaps, or NULL. */
static const ChipInfo *option_area_of(uint32_t address, size_t n) {
        uint64_t end = (uint64_t) address + n;

        for (size_t i = 0; i < ELEMENTSOF(chips); i++) {
                const ChipInfo *c = &chips[i];
                /* L0: the whole 0x1FF80000..1F block stm32flash names, not only the 3
                 * words in use */
                uint32_t size = c->ob_layout == CHIP_OB_L0 ? MAX(c->ob_size, UINT32_C(0x20)) : c->ob_size;

                if (address < (uint64_t) c->ob_base + size && end > c->ob_base)
                        return c;
        }
        return NULL;
}

int chip_check_option_write(uint32_t address, const uint8_t *data, size_t n) {
        const ChipInfo *c = option_area_of(address, n);
        uint32_t optr;

        if (!c)
                return 0;
        if (c->ob_layout != CHIP_OB_G0 || address != c->ob_base || n != CHIP_OB_OPTR_FORM_SIZE || !data)
                return -EPERM;
        optr = le32(data);
        if ((optr ^ le32(data + 4)) != UINT32_MAX)
                return -EPERM;
        /* RDP stays level 0: level 1 is Readout Protect's (0x82), level 2 (0xCC) never */
        if ((optr & 0xFF) != 0xAA)
                return -EPERM;
        return 0;
}

/* C0/G0 WRP1AR/WRP1BR: STRT (a page number) in the low bits, END from bit 16; the area
 * is active when STRT <= END; factory 0x000000FF is off (CMSIS, Black Magic Probe). The field is
 * 6 bits wide in the G0 CMSIS header; the C0's is assumed the same [U]. A page number
 * past the flash protects nothing. */
#define WRP_AREA_MASK 0x3Fu

static void set_page(uint8_t *pages, uint32_t p) {
        pages[p / 8] |= (uint8_t) (1u << (p % 8));
}

int chip_wrp_pages(const ChipInfo *c, const uint8_t *ob, uint32_t flash_size, uint8_t pages[CHIP_WRP_PAGES_MAX / 8]) {
        uint32_t n_pages = MIN(flash_size / c->page_size, CHIP_WRP_PAGES_MAX);
        int n = 0;

        memset(pages, 0, CHIP_WRP_PAGES_MAX / 8);
        switch (c->ob_layout) {
        case CHIP_OB_G0:
                for (uint32_t off = 0x18; off <= 0x20; off += 8) {
                        uint32_t reg = le32(ob + off);
                        uint32_t start = reg & WRP_AREA_MASK, end = (reg >> 16) & WRP_AREA_MASK;

                        for (uint32_t p = start; start <= end && p <= end && p < n_pages; p++)
                                set_page(pages, p);
                }
                break;
        case CHIP_OB_F0:
                /* WRP0..3 value bytes at +8, +A, +C, +E: one bit per sector of
                 * pages_per_sector pages (4 KiB), 0 = protected (CMSIS) */
                for (uint32_t p = 0; p < n_pages; p++) {
                        uint32_t sector = p / c->pages_per_sector;

                        if (sector < 32 && !(ob[8 + 2 * (sector / 8)] & (1u << (sector % 8))))
                                set_page(pages, p);
                }
                break;
        case CHIP_OB_L0: {
                /* w2 low half: WRPROT1, one bit per 4 KiB sector (32 pages). Set =
                 * protected under WPRMOD = 0 (w0 bit 8); that polarity is inferred [U].
                 * Under WPRMOD = 1 the same bits select PCROP sectors, which cannot be
                 * written either: counted as protected too. */
                uint32_t bits = le32(ob + 8) & 0xFFFF;

                for (uint32_t p = 0; p < n_pages; p++) {
                        uint32_t sector = p / c->pages_per_sector;

                        if (sector < 16 && (bits & (1u << sector)))
                                set_page(pages, p);
                }
                break;
        }
        }
        for (uint32_t p = 0; p < n_pages; p++)
                n += !!(pages[p / 8] & (1u << (p % 8)));
        return n;
}

const char *chip_ob_field_name(const ChipInfo *c, uint32_t off) {
        switch (c->ob_layout) {
        case CHIP_OB_G0:
                /* the in-flash layout, partly evidenced (stm32isp, CubeProgrammer dumps) [U] */
                switch (off / 8) {
                case 0x00: return "OPTR";
                case 0x01: return "PCROP1ASR";
                case 0x02: return "PCROP1AER";
                case 0x03: return "WRP1AR";
                case 0x04: return "WRP1BR";
                case 0x05: return "PCROP1BSR";
                case 0x06: return "PCROP1BER";
                case 0x0E: return "SECR";
                default:   return "reserved";
                }
        case CHIP_OB_F0: {
                static const char *const names[] = { "RDP", "USER", "DATA0", "DATA1", "WRP0", "WRP1", "WRP2", "WRP3" };
                return off / 2 < ELEMENTSOF(names) ? names[off / 2] : "reserved";
        }
        case CHIP_OB_L0: {
                static const char *const names[] = { "RDP/WPRMOD", "USER", "WRPROT1" };
                return off / 4 < ELEMENTSOF(names) ? names[off / 4] : "reserved";
        }
        }
        return "reserved";
}

bool chip_boots_bootloader(const ChipInfo *c, const uint8_t *ob, bool boot0_pin, bool flash_empty) {
        if (!ob)
                ob = c->ob_factory;

        /* Level 2 disables the bootloader on every family. */
        if (chip_rdp_level(c, ob) == 2)
                return false;

        switch (c->ob_layout) {
        case CHIP_OB_F0:
                /* BOOT0 high with nBOOT1 (USER bit 4) = 1; no empty check on 0x444 (RM0360 as
                 * stm32flash quotes it: only the F070x6 and F030xC have one) */
                return boot0_pin && (ob[2] & 0x10);
        case CHIP_OB_L0:
                /* BOOT0 high with nBOOT1 (w1 bit 15 = OPTR bit 31) = 1 */
                return boot0_pin && (ob[5] & 0x80);
        case CHIP_OB_G0: {
                /* AN5096 Table 3 / RM0490 Table 9 */
                uint32_t optr = le32(ob);
                bool main_flash;

                /* SECR.BOOT_LOCK (bit 16, SECR pair at +0x70): always main flash, and no
                 * empty-check exception in that row */
                if (c->ob_size >= 0x78 && (le32(ob + 0x70) ^ le32(ob + 0x74)) == UINT32_MAX &&
                    (le32(ob + 0x70) & (UINT32_C(1) << 16)))
                        return false;

                if (!(optr & OPTR_NBOOT_SEL)) {
                        if (boot0_pin)
                                return optr & OPTR_NBOOT1;      /* else SRAM */
                        main_flash = true;
                } else {
                        if (!(optr & OPTR_NBOOT0))
                                return optr & OPTR_NBOOT1;      /* else SRAM */
                        main_flash = true;
                }
                /* a "main flash" boot turns into a bootloader boot while EMPTY is set */
                return main_flash && flash_empty;
        }
        }
        return false;
}

bool chip_bootloader_reachable(const ChipInfo *c, const uint8_t *ob, bool flash_empty) {
        return chip_boots_bootloader(c, ob, true, flash_empty) || chip_boots_bootloader(c, ob, false, flash_empty);
}

/* What to check when nothing answers the sync, in one table: how the family enters its
 * bootloader, then what any board can get wrong (the wiring). Facts: RM0490 (C0: a
 * debugger access forces BOOT0 low "until the earliest power-on"); RM0490/RM0444/AN5096
 * (C0/G0: PA14-BOOT0 is sampled at reset only once nBOOT_SEL is 0); AN2606 (F0, L0:
 * BOOT0 high at reset); every part here runs at 3.3 V or less. */
#define NO_BOOTLOADER_WIRING " Then the wiring: the adapter's TX to the chip's RX and RX to TX (not swapped), a " \
        "common ground, 3.3 V logic levels and the board powered."
static const struct {
        ChipFamily family;
        const char *hint;
} no_bootloader_hints[] = {
        { CHIP_FAMILY_C0, " An STM32C0 keeps BOOT0 forced low after a debugger session until it is power-cycled, "
                          "and starts the bootloader by PA14-BOOT0 high at reset only once nBOOT_SEL is cleared "
                          "(factory nBOOT_SEL = 1: the pin is ignored once the flash holds code)." NO_BOOTLOADER_WIRING },
        { CHIP_FAMILY_G0, " An STM32G0 starts the bootloader by PA14-BOOT0 high at reset only once nBOOT_SEL is "
                          "cleared (factory nBOOT_SEL = 1: the pin is ignored once the flash holds code)."
                          NO_BOOTLOADER_WIRING },
        { CHIP_FAMILY_F0, " An STM32F0 starts the bootloader by BOOT0 high at reset." NO_BOOTLOADER_WIRING },
        { CHIP_FAMILY_L0, " An STM32L0 starts the bootloader by BOOT0 high at reset." NO_BOOTLOADER_WIRING },
};
/* a chip not known (yet) */
#define NO_BOOTLOADER_UNKNOWN " (On a C0, BOOT0 stays forced low after a debugger session until a power cycle; a " \
        "C0/G0 heeds BOOT0 only once nBOOT_SEL is cleared.)" NO_BOOTLOADER_WIRING

const char *chip_no_bootloader_hint(uint16_t pid) {
        const ChipInfo *c = pid ? chip_lookup(pid) : NULL;

        for (size_t i = 0; c && i < ELEMENTSOF(no_bootloader_hints); i++)
                if (no_bootloader_hints[i].family == c->family)
                        return no_bootloader_hints[i].hint;
        return NO_BOOTLOADER_UNKNOWN;
}
