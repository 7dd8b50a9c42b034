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
        static const uint8_t c0[8] = { 0xAA, 0xFF, 0xFF, 0x3F, 0x55, 0x00, 0x00, 0xC0 };
        static const uint8_t f0[4] = { 0xAA, 0x55, 0xFF, 0x00 };
        static const uint8_t l0[8] = { 0xAA, 0x00, 0x55, 0xFF, 0x70, 0x80, 0x8F, 0x7F };
        const ChipInfo *c;

        c = chip_lookup(0x466);
        ASSERT_MEMEQ(c->ob_factory, g0, 8);
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0xFFFFFEAA);
        c = chip_lookup(0x443);
        ASSERT_MEMEQ(c->ob_factory, c0, 8);
        ASSERT_EQ(chip_optr(c, c->ob_factory), 0x3FFFFFAA);
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
        uint8_t ob[128];
        const ChipInfo *c;

        /* G0x1 factory OPTR 0xFFFFFEAA -> byte 3 0xFF -> 0xFE: 0xFEFFFEAA, ~ = 0x01000155 */
        c = chip_lookup(0x466);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        static const uint8_t g0_expect[8] = { 0xAA, 0xFE, 0xFF, 0xFE, 0x55, 0x01, 0x00, 0x01 };
        ASSERT_MEMEQ(ob, g0_expect, 8);
        ASSERT_EQ(chip_optr(c, ob) & (7u << 24), 6u << 24);
        ASSERT_EQ(chip_rdp_level(c, ob), 0);
        /* pin high now brings the bootloader, pin low the user code */
        ASSERT_TRUE(chip_boots_bootloader(c, ob, true, false));
        ASSERT_TRUE(!chip_boots_bootloader(c, ob, false, false));
        /* idempotent */
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 0);
        ASSERT_MEMEQ(ob, g0_expect, 8);

        /* C0 factory 0x3FFFFFAA -> 0x3EFFFFAA, ~ = 0xC1000055 */
        c = chip_lookup(0x453);
        memcpy(ob, c->ob_factory, c->ob_size);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        static const uint8_t c0_expect[8] = { 0xAA, 0xFF, 0xFF, 0x3E, 0x55, 0x00, 0x00, 0xC1 };
        ASSERT_MEMEQ(ob, c0_expect, 8);

        /* nBOOT1 = 0 and nBOOT0 = 0 get set; other bits of byte 3 are kept */
        make_g0_ob(ob, 0x28FFFEAA);
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        ASSERT_EQ(chip_optr(c, ob), 0x2EFFFEAA);
        ASSERT_EQ(ob[4] | ob[5] << 8 | ob[6] << 16 | (uint32_t) ob[7] << 24, ~UINT32_C(0x2EFFFEAA));

        /* a wrong complement alone is a change (it gets rewritten) */
        make_g0_ob(ob, 0x3EFFFFAA);
        ob[6] = 0x12;
        ASSERT_EQ(chip_ob_enable_boot0(c, ob), 1);
        ASSERT_MEMEQ(ob, c0_expect, 8);

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

int main(void) {
        TEST(test_table_sanity);
        TEST(test_factory_bytes);
        TEST(test_rdp);
        TEST(test_boot_table);
        TEST(test_enable_boot0);
        return 0;
}
