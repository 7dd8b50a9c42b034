/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The device table: sanity of every entry, RDP decoding, the boot decision, and the
 * nBOOT_SEL rewrite on factory option bytes. */

#include <errno.h>
#include <string.h>

#include "chips.h"
#include "macro.h"
#include "test-util.h"

static void test_table_sanity(void) {
        size_t n;
        const ChipInfo *t = chip_table(&n);
        static const uint16_t pids[] = { 0x443, 0x453, 0x444, 0x466, 0x457 };

        ASSERT_EQ(n, ELEMENTSOF(pids));
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                const ChipInfo *c = chip_lookup(pids[i]);
                ASSERT_TRUE(c);
                ASSERT_EQ(c->pid, pids[i]);
        }
        ASSERT_TRUE(!chip_lookup(0x410));
        ASSERT_TRUE(!chip_lookup(0));

        for (size_t i = 0; i < n; i++) {
                const ChipInfo *c = &t[i];

                fprintf(stderr, "   %s 0x%03x\n", c->name, c->pid);
                ASSERT_TRUE(c->name && c->name[0]);
                ASSERT_TRUE(chip_family_to_string(c->family));
                ASSERT_EQ(c->flash_base, 0x08000000);
                ASSERT_TRUE(c->flash_size >= 16 * 1024);
                ASSERT_TRUE(c->flash_size_reg != 0);
                ASSERT_TRUE(c->page_size != 0);
                ASSERT_EQ(c->flash_size % c->page_size, 0);
                ASSERT_TRUE(c->flash_size / c->page_size <= 0x10000);  /* Extended Erase page numbers */
                ASSERT_TRUE(c->write_unit == 4 || c->write_unit == 8);
                ASSERT_TRUE(c->write_block > 0 && c->write_block <= 256);
                ASSERT_EQ(c->write_block % c->write_unit, 0);
                ASSERT_EQ(c->write_block % 8, 0);
                /* blocks cut at write_block boundaries never straddle a page */
                ASSERT_TRUE(c->page_size % c->write_block == 0 || c->write_block % c->page_size == 0);
                ASSERT_TRUE(c->pages_per_sector >= 1);
                ASSERT_EQ(c->flash_size % (c->page_size * c->pages_per_sector), 0);

                ASSERT_TRUE(c->ob_base != 0);
                ASSERT_TRUE(c->ob_size >= 8 && c->ob_size <= 128);
                ASSERT_EQ(c->ob_size % 4, 0);
                ASSERT_TRUE(c->ob_factory);
                ASSERT_EQ(chip_rdp_level(c, c->ob_factory), 0);

                for (size_t k = 0; k < 3; k++)
                        ASSERT_TRUE(c->uid[k] != 0);
                ASSERT_TRUE(c->uid[1] > c->uid[0] && c->uid[2] > c->uid[1]);
                ASSERT_EQ(c->ram_base, 0x20000000);
                ASSERT_TRUE(c->ram_size >= 2048);
                ASSERT_TRUE(c->ram_user > c->ram_base && c->ram_user <= c->ram_base + c->ram_size);
                ASSERT_TRUE(c->sysmem_base != 0 && c->sysmem_size != 0);
                ASSERT_TRUE(c->bootloader_id != 0);
                ASSERT_TRUE(c->bootloader_id_addr >= c->sysmem_base &&
                            c->bootloader_id_addr < c->sysmem_base + c->sysmem_size);
                ASSERT_TRUE(c->program_usec > 0 && c->page_erase_usec > 0 && c->mass_erase_usec > 0);

                switch (c->family) {
                case CHIP_FAMILY_C0:
                case CHIP_FAMILY_G0:
                        ASSERT_EQ(c->erased, 0xFF);
                        ASSERT_EQ(c->write_unit, 8);
                        ASSERT_EQ(c->page_size, 2048);
                        ASSERT_EQ(c->ob_layout, CHIP_OB_G0);
                        ASSERT_EQ(c->ob_base, 0x1FFF7800);
                        ASSERT_EQ(c->ob_size, 0x80);
                        ASSERT_EQ(c->boot_rule, CHIP_BOOT_NBOOT_SEL);
                        ASSERT_TRUE(c->mass_erase);
                        break;
                case CHIP_FAMILY_F0:
                        ASSERT_EQ(c->erased, 0xFF);
                        ASSERT_EQ(c->write_unit, 4);
                        ASSERT_EQ(c->page_size, 1024);
                        ASSERT_EQ(c->ob_layout, CHIP_OB_F0);
                        ASSERT_EQ(c->ob_base, 0x1FFFF800);
                        ASSERT_EQ(c->ob_size, 16);
                        ASSERT_EQ(c->boot_rule, CHIP_BOOT_PIN);
                        ASSERT_TRUE(c->mass_erase);
                        break;
                case CHIP_FAMILY_L0:
                        ASSERT_EQ(c->erased, 0x00);
                        ASSERT_EQ(c->write_unit, 4);
                        ASSERT_EQ(c->write_block, 128);
                        ASSERT_EQ(c->page_size, 128);
                        ASSERT_EQ(c->ob_layout, CHIP_OB_L0);
                        ASSERT_EQ(c->ob_base, 0x1FF80000);
                        ASSERT_EQ(c->ob_size, 12);
                        ASSERT_EQ(c->boot_rule, CHIP_BOOT_PIN);
                        ASSERT_TRUE(!c->mass_erase);
                        break;
                }
        }

        /* spot values from the facts */
        ASSERT_EQ(chip_lookup(0x466)->flash_size, 64 * 1024);
        ASSERT_EQ(chip_lookup(0x466)->uid[0], 0x1FFF7590);
        ASSERT_EQ(chip_lookup(0x466)->flash_size_reg, 0x1FFF75E0);
        ASSERT_EQ(chip_lookup(0x443)->flash_size_reg, 0x1FFF75A0);
        ASSERT_EQ(chip_lookup(0x444)->flash_size_reg, 0x1FFFF7CC);
        ASSERT_EQ(chip_lookup(0x457)->uid[2], 0x1FF80064);
        ASSERT_EQ(chip_lookup(0x457)->flash_size, 16 * 1024);
        ASSERT_EQ(chip_lookup(0x457)->bootloader_id, 0xC3);
        ASSERT_EQ(chip_page_of(chip_lookup(0x466), 0x08000800), 1);
        ASSERT_EQ(chip_page_of(chip_lookup(0x457), 0x080000FF), 1);
        ASSERT_EQ(chip_page_of(chip_lookup(0x444), 0x08007FFF), 31);
}

static void test_factory_bytes(void) {
        static const uint8_t g0[8] = { 0xAA, 0xFE, 0xFF, 0xFF, 0x55, 0x01, 0x00, 0x00 };
        /* C0x1 OPTR 0xFFFFFFAA (Black Magic Probe's current value, corrected from 0x3FFFFFAA) */
        static const uint8_t c0[8] = { 0xAA, 0xFF, 0xFF, 0xFF, 0x55, 0x00, 0x00, 0x00 };
        static const uint8_t f0[4] = { 0xAA, 0x55, 0xFF, 0x00 };
        static const uint8_t l0[8] = { 0xAA, 0x00, 0x55, 0xFF, 0x70, 0x80, 0x8F, 0x7F };
        const ChipInfo *c;

        c = chip_lookup(0x466);
        ASSERT_MEMEQ(c->ob_factory, g0, 8);
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0xFFFFFEAA);
        c = chip_lookup(0x443);
        ASSERT_MEMEQ(c->ob_factory, c0, 8);
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0xFFFFFFAA);
        ASSERT_MEMEQ(chip_lookup(0x453)->ob_factory, c0, 8);
        /* the rest of the C0/G0 area: PCROP1A, WRP1A/B off, PCROP1B, SECR = 0 (BOOT_LOCK off) */
        static const uint8_t g0_tail[] = {
                0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00,         /* PCROP1ASR */
                0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,         /* PCROP1AER */
                0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,         /* WRP1AR */
                0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,         /* WRP1BR */
        };
        static const uint8_t secr[] = { 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF };
        for (size_t k = 0; k < 2; k++) {
                c = chip_lookup(k ? 0x466 : 0x443);
                ASSERT_MEMEQ(c->ob_factory + 8, g0_tail, sizeof(g0_tail));
                ASSERT_MEMEQ(c->ob_factory + 0x70, secr, sizeof(secr));
                for (size_t i = 0x78; i < 0x80; i++)
                        ASSERT_EQ(c->ob_factory[i], 0xFF);
        }
        c = chip_lookup(0x444);
        ASSERT_MEMEQ(c->ob_factory, f0, 4);
        for (size_t i = 2; i < 16; i += 2) {
                ASSERT_EQ(c->ob_factory[i], 0xFF);
                ASSERT_EQ(c->ob_factory[i + 1], 0x00);
        }
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0xFFFFFFAA);
        c = chip_lookup(0x457);
        ASSERT_MEMEQ(c->ob_factory, l0, 8);
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0x807000AA);
}

static void test_rdp(void) {
        uint8_t ob[128];
        const ChipInfo *c;

        /* G0/C0: OPTR[7:0] */
        c = chip_lookup(0x466);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_rdp_level(c, ob), 0);
        ob[0] = 0xBB;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0x00;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0xCC;
        ASSERT_EQ(chip_rdp_level(c, ob), 2);
        c = chip_lookup(0x453);
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[0] = 0x55;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);

        /* F0: value byte and complement byte */
        c = chip_lookup(0x444);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_rdp_level(c, ob), 0);
        ob[0] = 0xBB, ob[1] = 0x44;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0xAA, ob[1] = 0xFF;     /* broken pair: not level 0 */
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0xCC, ob[1] = 0x33;
        ASSERT_EQ(chip_rdp_level(c, ob), 2);

        /* L0: xx55xxAA / xx33xxCC in w0 */
        c = chip_lookup(0x457);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_rdp_level(c, ob), 0);
        ob[0] = 0xBB, ob[2] = 0x44;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0xAA, ob[2] = 0x00;
        ASSERT_EQ(chip_rdp_level(c, ob), 1);
        ob[0] = 0xCC, ob[2] = 0x33;
        ASSERT_EQ(chip_rdp_level(c, ob), 2);
}

static void make_g0_ob(uint8_t ob[8], uint32_t optr) {
        uint32_t n = ~optr;
        for (size_t i = 0; i < 4; i++) {
                ob[i] = optr >> (8 * i);
                ob[4 + i] = n >> (8 * i);
        }
}

static void test_boot_table(void) {
        const ChipInfo *c;
        uint8_t ob[128];

        /* G0/C0, AN5096 Table 3 rows (BOOT_LOCK = 0), flash not empty unless stated */
        c = chip_lookup(0x466);
        const uint32_t base = 0xF8FFFEAA;       /* factory with nBOOT0/nBOOT1/nBOOT_SEL cleared */
        struct {
                unsigned nboot1, pin, nboot_sel, nboot0;
                bool empty, expect;
        } rows[] = {
                /* nBOOT_SEL = 0: the pin decides */
                { 0, 0, 0, 0, false, false },   /* main flash */
                { 1, 0, 0, 1, false, false },
                { 1, 0, 0, 1, true,  true  },   /* main flash*, EMPTY -> bootloader */
                { 1, 1, 0, 0, false, true  },   /* system memory */
                { 1, 1, 0, 1, true,  true  },
                { 0, 1, 0, 1, false, false },   /* SRAM */
                { 0, 1, 0, 1, true,  false },   /* SRAM, EMPTY does not matter */
                /* nBOOT_SEL = 1: nBOOT0 decides, the pin is ignored */
                { 1, 1, 1, 1, false, false },   /* factory: main flash even with BOOT0 high */
                { 1, 0, 1, 1, false, false },
                { 1, 1, 1, 1, true,  true  },   /* blank factory part */
                { 0, 0, 1, 1, true,  true  },
                { 1, 0, 1, 0, false, true  },   /* system memory */
                { 0, 1, 1, 0, false, false },   /* SRAM */
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                uint32_t optr = base | rows[i].nboot_sel << 24 | rows[i].nboot1 << 25 | rows[i].nboot0 << 26;
                make_g0_ob(ob, optr);
                if (chip_boots_bootloader(c, ob, rows[i].pin, rows[i].empty) != rows[i].expect) {
                        fprintf(stderr, "boot row %zu (optr 0x%08x) wrong\n", i, optr);
                        ASSERT_TRUE(false);
                }
        }
        /* BOOT_LOCK in SECR: main flash whatever else, empty or not */
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[0x72] = 0x01, ob[0x76] = 0xFE;       /* SECR 0x00010000, complement 0xFFFEFFFF */
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, true));
        ob[3] = 0xF8 | 0x02;                    /* nBOOT_SEL 0, nBOOT1 1: would be system memory */
        ob[7] = (uint8_t) ~ob[3];
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, false));
        ob[0x76] = 0xFF;                        /* broken SECR pair: not trusted */
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));

        /* factory option bytes: only the empty flash brings the bootloader */
        ASSERT_TRUE(!chip_boots_bootloader(c, c->ob_factory, true, false));
        ASSERT_TRUE(chip_boots_bootloader(c, c->ob_factory, false, true));
        ASSERT_TRUE(chip_boots_bootloader(c, NULL, true, true));
        /* level 2: never */
        make_g0_ob(ob, 0xFEFFFECC);
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, true));
        /* level 1 still boots the bootloader */
        make_g0_ob(ob, 0xFEFFFEBB);
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));
        c = chip_lookup(0x443);
        ASSERT_TRUE(!chip_boots_bootloader(c, c->ob_factory, true, false));
        ASSERT_TRUE(chip_boots_bootloader(c, c->ob_factory, true, true));

        /* F0: BOOT0 pin with nBOOT1 (USER bit 4), no empty check */
        c = chip_lookup(0x444);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, false, true));
        ob[2] &= ~0x10, ob[3] |= 0x10;
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, false));
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[0] = 0xCC, ob[1] = 0x33;
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, false));

        /* L0: BOOT0 pin with nBOOT1 (w1 bit 15) */
        c = chip_lookup(0x457);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, false, true));
        ob[5] &= 0x7F, ob[7] |= 0x80;
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, true, false));
}

static void test_enable_boot0(void) {
        uint8_t ob[128], before[128];
        const ChipInfo *c;

        /* G0x1 factory OPTR 0xFFFFFEAA -> byte 3 0xFF -> 0xFE: 0xFEFFFEAA, ~ = 0x01000155 */
        c = chip_lookup(0x466);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        static const uint8_t g0_expect[8] = { 0xAA, 0xFE, 0xFF, 0xFE, 0x55, 0x01, 0x00, 0x01 };
        ASSERT_MEMEQ(ob, g0_expect, 8);
        /* only the OPTR pair: the rest of the area is never written */
        ASSERT_MEMEQ(ob + 8, c->ob_factory + 8, c->ob_size - 8);
        ASSERT_EQ(chip_optr(c, ob) & (7u << 24), 6u << 24);
        ASSERT_EQ(chip_rdp_level(c, ob), 0);
        /* pin high now brings the bootloader, pin low the user code */
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, false, false));
        /* idempotent */
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 0);
        ASSERT_MEMEQ(ob, g0_expect, 8);

        /* C0 factory 0xFFFFFFAA -> 0xFEFFFFAA, ~ = 0x01000055 */
        c = chip_lookup(0x453);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        static const uint8_t c0_expect[8] = { 0xAA, 0xFF, 0xFF, 0xFE, 0x55, 0x00, 0x00, 0x01 };
        ASSERT_MEMEQ(ob, c0_expect, 8);

        /* nBOOT_SEL = 1 with nBOOT1 = 0 and nBOOT0 = 0: both set; other bits of byte 3 kept */
        make_g0_ob(ob, 0x29FFFEAA);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        ASSERT_EQ(chip_optr(c, ob), 0x2EFFFEAA);
        ASSERT_EQ(ob[4] | ob[5] << 8 | ob[6] << 16 | (uint32_t) ob[7] << 24, ~UINT32_C(0x2EFFFEAA));

        /* nBOOT_SEL already 0: no write, whatever nBOOT1/nBOOT0 say (an interrupted
         * option-byte programming can lock a chip: none without need) */
        make_g0_ob(ob, 0x28FFFEAA);
        memcpy(before, ob, 8);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 0);
        ASSERT_MEMEQ(ob, before, 8);

        /* a wrong complement: the chip did not load what the area holds; never written over */
        make_g0_ob(ob, 0xFFFFFFAA);
        ob[6] = 0x12;
        memcpy(before, ob, 8);
        ASSERT_ERR(chip_ob_enable_boot0(c, ob), EBADMSG);
        ASSERT_MEMEQ(ob, before, 8);

        /* families without nBOOT_SEL */
        c = chip_lookup(0x444);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_ERR(chip_ob_enable_boot0(c, ob), EOPNOTSUPP);
        ASSERT_MEMEQ(ob, c->ob_factory, c->ob_size);
        c = chip_lookup(0x457);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_ERR(chip_ob_enable_boot0(c, ob), EOPNOTSUPP);
        ASSERT_MEMEQ(ob, c->ob_factory, c->ob_size);
}

/* The guard every Write Memory passes: only the C0/G0 OPTR form reaches an option area. */
static void test_option_write_guard(void) {
        uint8_t ob[128], form[8];
        const uint16_t c0g0[] = { 0x443, 0x453, 0x466 };

        /* flash, RAM, OTP: not option bytes */
        ASSERT_OK(chip_check_option_write(0x08000000, ob, 256));
        ASSERT_OK(chip_check_option_write(0x20001000, ob, 8));
        ASSERT_OK(chip_check_option_write(0x1FFF7000, ob, 8));
        ASSERT_OK(chip_check_option_write(0x1FFF77F8, ob, 8));  /* ends right before the area */

        for (size_t i = 0; i < ELEMENTSOF(c0g0); i++) {
                const ChipInfo *c = chip_lookup(c0g0[i]);

                memcpy(ob, c->ob_factory, c->ob_size);
                memcpy(form, ob, 8);
                ASSERT_EQ(chip_ob_enable_boot0(c, form), 1);
                ASSERT_OK(chip_check_option_write(c->ob_base, form, 8));
                ASSERT_OK(chip_check_option_write(c->ob_base, ob, 8));  /* factory OPTR as it is */
                /* the whole area, or any longer or shorter form */
                ASSERT_ERR(chip_check_option_write(c->ob_base, ob, 128), EPERM);
                ASSERT_ERR(chip_check_option_write(c->ob_base, ob, 16), EPERM);
                ASSERT_ERR(chip_check_option_write(c->ob_base, ob, 4), EPERM);
                /* any other word of the area: PCROP, WRP, SECR, reserved */
                for (uint32_t off = 8; off < 0x80; off += 8)
                        ASSERT_ERR(chip_check_option_write(c->ob_base + off, ob + off, 8), EPERM);
                /* a write that runs into the area from below */
                ASSERT_ERR(chip_check_option_write(c->ob_base - 8, ob, 16), EPERM);
                /* a broken complement */
                form[5] ^= 1;
                ASSERT_ERR(chip_check_option_write(c->ob_base, form, 8), EPERM);
                form[5] ^= 1;
                /* RDP other than level 0: never 0xCC (level 2), and level 1 only by 0x82 */
                make_g0_ob(form, 0xFEFFFECC);
                ASSERT_ERR(chip_check_option_write(c->ob_base, form, 8), EPERM);
                make_g0_ob(form, 0xFEFFFEBB);
                ASSERT_ERR(chip_check_option_write(c->ob_base, form, 8), EPERM);
        }
        /* F0 and L0 option bytes never go through Write Memory */
        const ChipInfo *f0 = chip_lookup(0x444), *l0 = chip_lookup(0x457);
        ASSERT_ERR(chip_check_option_write(f0->ob_base, f0->ob_factory, 16), EPERM);
        ASSERT_ERR(chip_check_option_write(f0->ob_base + 8, f0->ob_factory, 4), EPERM);
        ASSERT_ERR(chip_check_option_write(l0->ob_base, l0->ob_factory, 12), EPERM);
        ASSERT_ERR(chip_check_option_write(l0->ob_base + 0x1C, l0->ob_factory, 4), EPERM);
        ASSERT_ERR(chip_check_option_write(l0->ob_base, l0->ob_factory, 8), EPERM);
        /* the L0 factory bytes after the option words are readable, not option bytes */
        ASSERT_OK(chip_check_option_write(l0->ob_base + 0x20, l0->ob_factory, 4));
}

static uint32_t wrp_count(const ChipInfo *c, const uint8_t *ob, uint32_t flash, uint8_t *pages) {
        return (uint32_t) chip_wrp_pages(c, ob, flash, pages);
}

static bool page_in(const uint8_t *pages, uint32_t p) {
        return pages[p / 8] & (1u << (p % 8));
}

static void test_wrp(void) {
        uint8_t ob[128], pages[CHIP_WRP_PAGES_MAX / 8];
        const ChipInfo *c;

        /* factory: nothing protected on any family */
        for (size_t i = 0; i < 5; i++) {
                static const uint16_t pids[] = { 0x443, 0x453, 0x444, 0x466, 0x457 };
                c = chip_lookup(pids[i]);
                ASSERT_EQ(wrp_count(c, c->ob_factory, c->flash_size, pages), 0);
        }

        /* G0: WRP1AR STRT 2, END 5 (pages 2-5); WRP1BR STRT 30, END 40: 30, 31 (flash ends) */
        c = chip_lookup(0x466);
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[0x18] = 2, ob[0x1A] = 5;
        ob[0x20] = 30, ob[0x22] = 40;
        ASSERT_EQ(wrp_count(c, ob, 64 * 1024, pages), 6);
        ASSERT_TRUE(page_in(pages, 2) && page_in(pages, 5) && page_in(pages, 30) && page_in(pages, 31));
        ASSERT_TRUE(!page_in(pages, 1) && !page_in(pages, 6) && !page_in(pages, 29));
        /* a 16 KiB part: only pages 0-7 exist */
        ASSERT_EQ(wrp_count(c, ob, 16 * 1024, pages), 4);
        /* STRT > END: off */
        ob[0x18] = 6;
        ob[0x20] = 0xFF, ob[0x22] = 0;
        ASSERT_EQ(wrp_count(c, ob, 64 * 1024, pages), 0);
        /* STRT = END: one page */
        ob[0x18] = 0, ob[0x1A] = 0;
        ASSERT_EQ(wrp_count(c, ob, 64 * 1024, pages), 1);
        ASSERT_TRUE(page_in(pages, 0));

        /* F0: WRP0 bit per 4-page sector, 0 = protected: sectors 0 and 7 -> pages 0-3, 28-31 */
        c = chip_lookup(0x444);
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[8] = 0x7E, ob[9] = 0x81;
        ASSERT_EQ(wrp_count(c, ob, c->flash_size, pages), 8);
        ASSERT_TRUE(page_in(pages, 0) && page_in(pages, 3) && page_in(pages, 28) && page_in(pages, 31));
        ASSERT_TRUE(!page_in(pages, 4) && !page_in(pages, 27));

        /* L0: WRPROT1 bit per 32-page sector, 1 = protected [U]: sector 1 -> pages 32-63 */
        c = chip_lookup(0x457);
        memcpy(ob, c->ob_factory, c->ob_size);
        ob[8] = 0x02, ob[10] = 0xFD;
        ASSERT_EQ(wrp_count(c, ob, c->flash_size, pages), 32);
        ASSERT_TRUE(page_in(pages, 32) && page_in(pages, 63) && !page_in(pages, 31) && !page_in(pages, 64));
        /* an 8 KiB part has no sector 2 */
        ob[8] = 0x04, ob[10] = 0xFB;
        ASSERT_EQ(wrp_count(c, ob, 8 * 1024, pages), 0);

        ASSERT_STREQ(chip_ob_field_name(chip_lookup(0x466), 0x18), "WRP1AR");
        ASSERT_STREQ(chip_ob_field_name(chip_lookup(0x466), 0x70), "SECR");
        ASSERT_STREQ(chip_ob_field_name(chip_lookup(0x466), 0x40), "reserved");
        ASSERT_STREQ(chip_ob_field_name(chip_lookup(0x444), 8), "WRP0");
}

/* A way back into the bootloader: some BOOT0 level at reset starts it. */
static void test_reachable(void) {
        uint8_t ob[128];
        const ChipInfo *c = chip_lookup(0x466);

        /* factory with code: only a debugger (the pin is ignored); blank: the empty check */
        ASSERT_TRUE(!chip_bootloader_reachable(c, c->ob_factory, false));
        ASSERT_TRUE(chip_bootloader_reachable(c, c->ob_factory, true));
        /* nBOOT_SEL cleared: BOOT0 high */
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        ASSERT_TRUE(chip_bootloader_reachable(c, ob, false));
        /* level 2: never */
        make_g0_ob(ob, 0xFEFFFECC);
        ASSERT_TRUE(!chip_bootloader_reachable(c, ob, true));
        /* F0/L0: the pin, whatever the flash holds */
        c = chip_lookup(0x444);
        ASSERT_TRUE(chip_bootloader_reachable(c, c->ob_factory, false));
        c = chip_lookup(0x457);
        ASSERT_TRUE(chip_bootloader_reachable(c, c->ob_factory, false));

        /* the NoBootloader hints: per family where it is known, short for all otherwise */
        ASSERT_TRUE(strstr(chip_no_bootloader_hint(0x443), "debugger") && strstr(chip_no_bootloader_hint(0x443), "nBOOT_SEL"));
        ASSERT_TRUE(!strstr(chip_no_bootloader_hint(0x466), "debugger") && strstr(chip_no_bootloader_hint(0x466), "PA14"));
        ASSERT_TRUE(strstr(chip_no_bootloader_hint(0x444), "STM32F0 starts the bootloader by BOOT0 high") &&
                    !strstr(chip_no_bootloader_hint(0x444), "nBOOT_SEL"));
        /* the wiring, for every family and an unknown chip */
        for (size_t i = 0; i < 4; i++) {
                static const uint16_t p[] = { 0x443, 0x466, 0x457, 0 };
                ASSERT_TRUE(strstr(chip_no_bootloader_hint(p[i]), "TX to the chip's RX and RX to TX (not swapped)"));
                ASSERT_TRUE(strstr(chip_no_bootloader_hint(p[i]), "3.3 V logic levels"));
        }
        ASSERT_TRUE(strstr(chip_no_bootloader_hint(0), "C0") && strstr(chip_no_bootloader_hint(0x999), "C0/G0"));
}

int main(void) {
        TEST(test_table_sanity);
        TEST(test_factory_bytes);
        TEST(test_rdp);
        TEST(test_boot_table);
        TEST(test_enable_boot0);
        TEST(test_option_write_guard);
        TEST(test_wrp);
        TEST(test_reachable);
        return 0;
}
