/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "diagnosis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"

/* Field positions: CMSIS stm32g031xx.h / stm32c011xx.h (FLASH_OPTR, FLASH_SECR),
 * stm32f030x6.h (OB_TypeDef USER), stm32l011xx.h (FLASH_OPTR) as
 * /work/shared/facts/bootloader.md §2.4 lists them. */
#define G0_BOR_EN        (UINT32_C(1) << 8)
#define G0_BORR_LEV(o)   (((o) >> 9) & 3u)
#define G0_BORF_LEV(o)   (((o) >> 11) & 3u)
#define G0_NRST_MODE(o)  (((o) >> 27) & 3u)
#define G0_SECR_BOOT_LOCK (UINT32_C(1) << 16)
#define F0_USER_NBOOT1   0x10u
#define F0_USER_NRST_STOP 0x02u
#define F0_USER_NRST_STDBY 0x04u
#define L0_WPRMOD        (UINT32_C(1) << 8)

/* The AN3155 V3.x commands the host relies on (Get, Get Version, Get ID, Read, Go,
 * Write, Extended Erase, Write/Readout Protect and Unprotect). */
static const uint8_t expected_commands[] = { 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92 };
#define EXPECTED_PROTOCOL 0x31

static const char *const verdicts[_DIAGNOSIS_VERDICT_MAX] = {
        [DIAGNOSIS_NOT_CHECKED] = "not_checked",
        [DIAGNOSIS_HOLDS] = "holds",
        [DIAGNOSIS_DIFFERS] = "differs",
};

const char *diagnosis_verdict_to_string(DiagnosisVerdict v) {
        return v >= 0 && v < _DIAGNOSIS_VERDICT_MAX ? verdicts[v] : NULL;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

uint64_t diagnosis_median(uint64_t *v, size_t n) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof *v, cmp_u64);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint32_t diagnosis_round_trips(const ChipInfo *c, uint32_t size) {
        uint32_t block = c && c->write_block ? c->write_block : 256;
        uint32_t page = c && c->page_size ? c->page_size : 2048;
        uint32_t writes = (size + block - 1) / block, reads = (size + 255) / 256;

        /* erase: command + page list (one list for a flash this size) */
        return 3 * writes + 3 * reads + (size ? 2 : 0) * (c && !c->mass_erase ? (size / page + 511) / 512 : 1);
}

/* ---- the pieces of the diagnosis ---- */

static void add_option(Diagnosis *d, const char *name, uint32_t value, const char *fmt, ...) {
        DiagnosisOption *o;
        va_list ap;

        if (d->n_options >= DIAGNOSIS_OPTIONS_MAX)
                return;
        o = &d->options[d->n_options++];
        o->name = name;
        o->value = value;
        va_start(ap, fmt);
        vsnprintf(o->meaning, sizeof o->meaning, fmt, ap);
        va_end(ap);
}

static void warn(Diagnosis *d, const char *fmt, ...) {
        va_list ap;

        if (d->n_warnings >= DIAGNOSIS_WARNINGS_MAX)
                return;
        va_start(ap, fmt);
        vsnprintf(d->warnings[d->n_warnings++], sizeof d->warnings[0], fmt, ap);
        va_end(ap);
}

static const char *rdp_meaning(int level) {
        return level == 0 ? "level 0: not protected" :
               level == 2 ? "level 2: protected for good, bootloader disabled" :
                            "level 1: read-protected (an unlock mass-erases the flash)";
}

/* C0/G0 WRP1AR/WRP1BR (chips.c: STRT low bits, END from bit 16, active when STRT <= END). */
static void decode_wrp_area(Diagnosis *d, const char *name, uint32_t reg) {
        uint32_t start = reg & 0x3F, end = (reg >> 16) & 0x3F;

        if (start > end)
                add_option(d, name, reg, "off");
        else
                add_option(d, name, reg, "pages %u-%u write-protected", start, end);
}

static void decode_g0(Diagnosis *d, const ChipInfo *c, const uint8_t *ob) {
        static const char *const nrst[] = { "reserved", "reset input only", "GPIO (no reset pin)",
                                            "bidirectional reset (factory)" };
        uint32_t optr = le32(ob), secr;

        add_option(d, "RDP", optr & 0xFF, "%s", rdp_meaning(chip_rdp_level(c, ob)));
        add_option(d, "BOR_EN", !!(optr & G0_BOR_EN), optr & G0_BOR_EN ? "brown-out reset on" : "brown-out reset off");
        add_option(d, "BORR_LEV", G0_BORR_LEV(optr), "rising threshold %u", G0_BORR_LEV(optr) + 1);
        add_option(d, "BORF_LEV", G0_BORF_LEV(optr), "falling threshold %u", G0_BORF_LEV(optr) + 1);
        add_option(d, "nBOOT_SEL", !!(optr & CHIP_OPTR_NBOOT_SEL),
                   optr & CHIP_OPTR_NBOOT_SEL ? "1: the BOOT0 pin is ignored, nBOOT0 decides (factory)" :
                                                "0: the BOOT0 pin (PA14) decides at each reset");
        add_option(d, "nBOOT1", !!(optr & CHIP_OPTR_NBOOT1),
                   optr & CHIP_OPTR_NBOOT1 ? "1: a boot request starts system memory (the bootloader)" :
                                             "0: a boot request starts SRAM");
        add_option(d, "nBOOT0", !!(optr & CHIP_OPTR_NBOOT0),
                   optr & CHIP_OPTR_NBOOT_SEL ?
                           (optr & CHIP_OPTR_NBOOT0 ? "1: main flash (the bootloader only while the flash is empty)" :
                                                      "0: boot request (nBOOT1 decides)") :
                           "ignored while nBOOT_SEL = 0");
        add_option(d, "NRST_MODE", G0_NRST_MODE(optr), "%s", nrst[G0_NRST_MODE(optr)]);
        decode_wrp_area(d, "WRP1A", le32(ob + 0x18));
        decode_wrp_area(d, "WRP1B", le32(ob + 0x20));
        secr = le32(ob + 0x70);
        add_option(d, "BOOT_LOCK", !!(secr & G0_SECR_BOOT_LOCK),
                   secr & G0_SECR_BOOT_LOCK ? "1: always boots main flash" : "0: off");
}

static void decode_f0(Diagnosis *d, const ChipInfo *c, const uint8_t *ob) {
        uint8_t user = ob[2];
        uint32_t wrp = (uint32_t) ob[8] | (uint32_t) ob[10] << 8 | (uint32_t) ob[12] << 16 | (uint32_t) ob[14] << 24;

        add_option(d, "RDP", ob[0], "%s", rdp_meaning(chip_rdp_level(c, ob)));
        add_option(d, "nBOOT1", !!(user & F0_USER_NBOOT1),
                   user & F0_USER_NBOOT1 ? "1: BOOT0 high starts system memory (the bootloader)" :
                                           "0: BOOT0 high starts SRAM");
        add_option(d, "nRST_STOP", !!(user & F0_USER_NRST_STOP), user & F0_USER_NRST_STOP ? "no reset on Stop" : "reset on Stop");
        add_option(d, "nRST_STDBY", !!(user & F0_USER_NRST_STDBY),
                   user & F0_USER_NRST_STDBY ? "no reset on Standby" : "reset on Standby");
        add_option(d, "WRP", wrp, wrp == UINT32_MAX ? "off" : "4 KiB sectors with a 0 bit are write-protected");
}

static void decode_l0(Diagnosis *d, const ChipInfo *c, const uint8_t *ob) {
        uint32_t w0 = le32(ob) & 0xFFFF, w1 = le32(ob + 4) & 0xFFFF, w2 = le32(ob + 8) & 0xFFFF;

        add_option(d, "RDP", w0 & 0xFF, "%s", rdp_meaning(chip_rdp_level(c, ob)));
        add_option(d, "WPRMOD", !!(w0 & L0_WPRMOD), w0 & L0_WPRMOD ? "1: WRPROT1 selects PCROP sectors" :
                                                                     "0: WRPROT1 selects write-protected sectors");
        /* RM0367: below 0x8 the BOR is off, 0x8..0xC levels 1..5 (from memory [U]) */
        add_option(d, "BOR_LEV", w1 & 0xF, (w1 & 0xF) >= 0x8 ? "brown-out reset on" : "brown-out reset off");
        add_option(d, "nBOOT1", !!(w1 & 0x8000),
                   w1 & 0x8000 ? "1: BOOT0 high starts system memory (the bootloader)" : "0: BOOT0 high starts SRAM");
        add_option(d, "WRPROT1", w2, w2 == 0 ? "off" : "4 KiB sectors with a 1 bit protected (polarity inferred [U])");
}

/* Each value/complement pair of the area: 0 when all hold, else the offset of the first
 * that does not (+1) and its register name in *ret_name. */
static uint32_t first_broken_pair(const ChipInfo *c, const uint8_t *ob, const char **ret_name) {
        switch (c->ob_layout) {
        case CHIP_OB_G0:
                for (uint32_t off = 0; off + 8 <= c->ob_size; off += 8) {
                        const char *name = chip_ob_field_name(c, off);

                        /* the words no source names are not checked (erased in the table) */
                        if (streq(name, "reserved"))
                                continue;
                        if ((le32(ob + off) ^ le32(ob + off + 4)) != UINT32_MAX) {
                                *ret_name = name;
                                return off + 1;
                        }
                }
                break;
        case CHIP_OB_F0:
                for (uint32_t off = 0; off + 2 <= c->ob_size; off += 2)
                        if ((uint8_t) (ob[off] ^ ob[off + 1]) != 0xFF) {
                                *ret_name = chip_ob_field_name(c, off);
                                return off + 1;
                        }
                break;
        case CHIP_OB_L0:
                for (uint32_t off = 0; off + 4 <= c->ob_size; off += 4) {
                        uint32_t w = le32(ob + off);

                        if (((w & 0xFFFF) ^ (w >> 16)) != 0xFFFF) {
                                *ret_name = chip_ob_field_name(c, off);
                                return off + 1;
                        }
                }
                break;
        }
        return 0;
}

/* ---- the inferences (one table) ---- */

typedef DiagnosisVerdict (*check_fn)(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n);

static DiagnosisVerdict check_protocol(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        const FlasherChip *ch = &s->chip;

        snprintf(found, n, "Get: %u.%u, Get Version: %s%u.%u", ch->protocol_version >> 4, ch->protocol_version & 0xF,
                 s->have_version ? "" : "no answer ", s->version >> 4, s->version & 0xF);
        return ch->protocol_version == EXPECTED_PROTOCOL && s->have_version && s->version == EXPECTED_PROTOCOL ?
                       DIAGNOSIS_HOLDS : DIAGNOSIS_DIFFERS;
}

static bool has_command(const FlasherChip *ch, uint8_t cmd) {
        for (size_t i = 0; i < ch->n_commands; i++)
                if (ch->commands[i] == cmd)
                        return true;
        return false;
}

static DiagnosisVerdict check_commands(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        const FlasherChip *ch = &s->chip;
        size_t k = 0;
        bool differs = false;

        k += (size_t) snprintf(found, n, "Get listed");
        for (size_t i = 0; i < ch->n_commands && k < n; i++)
                k += (size_t) snprintf(found + k, n - k, " %02X", ch->commands[i]);
        for (size_t i = 0; i < ELEMENTSOF(expected_commands); i++)
                if (!has_command(ch, expected_commands[i])) {
                        differs = true;
                        if (k < n)
                                k += (size_t) snprintf(found + k, n - k, "; missing %02X", expected_commands[i]);
                }
        for (size_t i = 0; i < ch->n_commands; i++) {
                bool known = false;

                for (size_t j = 0; j < ELEMENTSOF(expected_commands); j++)
                        known = known || ch->commands[i] == expected_commands[j];
                if (!known) {
                        differs = true;
                        if (k < n)
                                k += (size_t) snprintf(found + k, n - k, "; extra %02X", ch->commands[i]);
                }
        }
        return differs ? DIAGNOSIS_DIFFERS : DIAGNOSIS_HOLDS;
}

static DiagnosisVerdict check_bootloader_id(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        if (!s->have_bootloader_id) {
                snprintf(found, n, "0x%08X not readable", c->bootloader_id_addr);
                return s->chip.rdp_level == 1 ? DIAGNOSIS_NOT_CHECKED : DIAGNOSIS_DIFFERS;
        }
        snprintf(found, n, "0x%02X at 0x%08X (table: 0x%02X)", s->bootloader_id, c->bootloader_id_addr, c->bootloader_id);
        return s->bootloader_id == c->bootloader_id ? DIAGNOSIS_HOLDS : DIAGNOSIS_DIFFERS;
}

static DiagnosisVerdict check_option_pairs(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        const char *name = NULL;
        uint32_t off;

        if (!s->chip.have_option_bytes) {
                snprintf(found, n, "the option bytes are not readable (read protection)");
                return DIAGNOSIS_NOT_CHECKED;
        }
        off = first_broken_pair(c, s->chip.option_bytes, &name);
        if (off == 0) {
                snprintf(found, n, "every pair of the %u bytes at 0x%08X holds", c->ob_size, c->ob_base);
                return DIAGNOSIS_HOLDS;
        }
        off--;
        snprintf(found, n, "%s at 0x%08X (+0x%02X) is not followed by its complement", name, c->ob_base + off, off);
        return DIAGNOSIS_DIFFERS;
}

static DiagnosisVerdict check_factory(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        const uint8_t *ob = s->chip.option_bytes;

        if (!s->chip.have_option_bytes) {
                snprintf(found, n, "the option bytes are not readable (read protection)");
                return DIAGNOSIS_NOT_CHECKED;
        }
        for (uint32_t off = 0; off < c->ob_size; off++)
                if (ob[off] != c->ob_factory[off]) {
                        snprintf(found, n, "%s (+0x%02X) reads 0x%02X, the table's factory value is 0x%02X "
                                 "(expected on a chip whose options were changed)",
                                 chip_ob_field_name(c, off), off, ob[off], c->ob_factory[off]);
                        return DIAGNOSIS_DIFFERS;
                }
        snprintf(found, n, "all %u bytes as the table's factory values", c->ob_size);
        return DIAGNOSIS_HOLDS;
}

static DiagnosisVerdict check_flash_size(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        if (!s->have_size_reg) {
                snprintf(found, n, "0x%08X not readable", c->flash_size_reg);
                return s->chip.rdp_level == 1 ? DIAGNOSIS_NOT_CHECKED : DIAGNOSIS_DIFFERS;
        }
        snprintf(found, n, "%u KiB at 0x%08X (table: at most %u KiB)", s->size_reg_kib, c->flash_size_reg,
                 c->flash_size / 1024);
        return s->size_reg_kib != 0 && s->size_reg_kib != 0xFFFF && s->size_reg_kib * 1024u <= c->flash_size ?
                       DIAGNOSIS_HOLDS : DIAGNOSIS_DIFFERS;
}

static DiagnosisVerdict check_uid(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        if (!s->chip.have_uid) {
                snprintf(found, n, "0x%08X not readable", c->uid[0]);
                return s->chip.rdp_level == 1 ? DIAGNOSIS_NOT_CHECKED : DIAGNOSIS_DIFFERS;
        }
        snprintf(found, n, "readable at 0x%08X, 0x%08X, 0x%08X", c->uid[0], c->uid[1], c->uid[2]);
        return DIAGNOSIS_HOLDS;
}

static DiagnosisVerdict check_unchecked(const DiagnosisSample *s, const ChipInfo *c, char *found, size_t n) {
        snprintf(found, n, "only writing shows it (selftest --destructive, on a spare board)");
        return DIAGNOSIS_NOT_CHECKED;
}

static const struct {
        const char *id, *inference, *source;
        check_fn check;
} inferences[] = {
        { "protocol_version", "The bootloader speaks AN3155 protocol 3.1; Get and Get Version agree",
          "[U] Get replies of this family (G0: [F])", check_protocol },
        { "get_commands", "Get lists the AN3155 V3.x commands: 00 01 02 11 21 31 44 63 73 82 92",
          "[U] Get replies of this family (G0: [F])", check_commands },
        { "bootloader_id", "The bootloader ID byte in system memory is the chip table's (AN2606)",
          "[T] stm32flash/stm32loader tables", check_bootloader_id },
        { "option_pairs", "The option area reads back as value/complement pairs (C0/G0: one per 8 bytes)",
          "[U] C0/G0 in-flash layout; [D] F0; [T] L0", check_option_pairs },
        { "factory_options", "Option bytes never changed read as the chip table's factory values",
          "[T] Black Magic Probe, stm32isp", check_factory },
        { "flash_size_register", "The flash-size register is readable through the bootloader and fits the table",
          "[D] CMSIS, [T] stm32flash", check_flash_size },
        { "uid_readable", "The unique ID words are readable through the bootloader",
          "[D] CMSIS (F0: RM0360 documents none)", check_uid },
        { "write_alignment", "Write Memory programs 8-byte aligned blocks; 4- but not 8-aligned ones are dropped (C0/G0)",
          "[F] G0, [U] C0", check_unchecked },
        { "erased_value", "Erased flash reads 0xFF (L0: 0x00)", "[D] C0/F0/G0, [F] L0", check_unchecked },
        { "wrp_silent", "Write Memory to a write-protected page is ACKed and not programmed; a mass erase is NACKed",
          "[D] AN3155, [U] F0/L0", check_unchecked },
};

static void run_checks(const DiagnosisSample *s, Diagnosis *d) {
        for (size_t i = 0; i < ELEMENTSOF(inferences) && d->n_checks < DIAGNOSIS_CHECKS_MAX; i++) {
                DiagnosisCheck *k = &d->checks[d->n_checks++];

                k->id = inferences[i].id;
                k->inference = inferences[i].inference;
                k->source = inferences[i].source;
                k->verdict = inferences[i].check(s, d->info, k->found, sizeof k->found);
        }
}

/* ---- boot and warnings ---- */

static void predict_boot(const DiagnosisSample *s, Diagnosis *d) {
        const ChipInfo *c = d->info;
        const uint8_t *ob = s->chip.option_bytes;
        bool pin_matters;

        if (!s->chip.have_option_bytes || !s->have_first_word) {
                snprintf(d->boot_summary, sizeof d->boot_summary,
                         "unknown: %s", s->chip.rdp_level == 1 ? "the chip is read-protected, its option bytes "
                                                                  "and flash cannot be read" :
                                                                  "the option bytes or the flash could not be read");
                return;
        }
        d->have_boot = true;
        d->flash_empty = le32(s->first_word) == UINT32_MAX;
        d->power_on_boot0_low = chip_boot_target(c, ob, false, d->flash_empty);
        d->power_on_boot0_high = chip_boot_target(c, ob, true, d->flash_empty);
        pin_matters = d->power_on_boot0_low != d->power_on_boot0_high;
        if (pin_matters)
                snprintf(d->boot_summary, sizeof d->boot_summary,
                         "After a power-on: %s with BOOT0 low, %s with BOOT0 high.%s",
                         chip_boot_target_to_string(d->power_on_boot0_low),
                         chip_boot_target_to_string(d->power_on_boot0_high),
                         c->boot_rule == CHIP_BOOT_NBOOT_SEL ?
                                 " A reset does the same, except that a chip whose flash was empty at its last "
                                 "power-on keeps starting the bootloader until it is power-cycled." :
                                 " A reset does the same.");
        else
                snprintf(d->boot_summary, sizeof d->boot_summary,
                         "After a power-on: %s, whatever the BOOT0 pin says.%s",
                         chip_boot_target_to_string(d->power_on_boot0_low),
                         c->boot_rule == CHIP_BOOT_NBOOT_SEL ?
                                 " A reset does the same, except that a chip whose flash was empty at its last "
                                 "power-on keeps starting the bootloader until it is power-cycled." :
                                 " A reset does the same.");
}

static void add_warnings(const DiagnosisSample *s, Diagnosis *d) {
        const ChipInfo *c = d->info;
        const uint8_t *ob = s->chip.option_bytes;

        if (s->chip.rdp_level == 1)
                warn(d, "The chip is read-protected (level 1): nothing can be read or written until an unlock, "
                        "which erases the whole flash (stm32ispctl unlock).");
        for (size_t i = 0; i < d->n_checks; i++)
                if (d->checks[i].verdict == DIAGNOSIS_DIFFERS && streq(d->checks[i].id, "option_pairs"))
                        warn(d, "The option bytes hold a value without its complement (%s): the chip loads another "
                                "configuration than the one stored; do not program option bytes on it, report it.",
                             d->checks[i].found);
        if (!s->chip.have_option_bytes)
                return;
        if (s->chip.n_wrp_pages > 0)
                warn(d, "%u page(s) are write-protected: writes there are ACKed and silently dropped; flashing over "
                        "them needs --unprotect.", s->chip.n_wrp_pages);
        if (c->boot_rule == CHIP_BOOT_NBOOT_SEL) {
                uint32_t optr = le32(ob);

                if (d->have_boot && (optr & CHIP_OPTR_NBOOT_SEL) && d->power_on_boot0_low == d->power_on_boot0_high &&
                    d->power_on_boot0_high == CHIP_BOOT_MAIN_FLASH)
                        warn(d, "nBOOT_SEL is set and the flash is not empty: after a power cycle this chip will not "
                                "enter the bootloader; flash it with boot0=true or use SWD.");
                else if (d->have_boot && (optr & CHIP_OPTR_NBOOT_SEL) && d->flash_empty)
                        warn(d, "Factory boot configuration (nBOOT_SEL = 1): the chip enters the bootloader only while "
                                "its flash is empty; flash with boot0=true (the default) to keep the BOOT0 pin working.");
                if (!(optr & CHIP_OPTR_NBOOT_SEL))
                        warn(d, "nBOOT_SEL = 0: the BOOT0 pin (PA14) decides at every reset; a board whose PA14 is "
                                "high at reset starts the bootloader instead of its application.");
                if (d->have_boot && d->power_on_boot0_high == CHIP_BOOT_SRAM)
                        warn(d, "nBOOT1 = 0: a boot request starts SRAM, not the bootloader.");
                if (c->family == CHIP_FAMILY_C0)
                        warn(d, "STM32C0: after an SWD/debugger session BOOT0 stays forced low until the next "
                                "power-on, so UART entry fails until the board is power-cycled.");
        } else if (d->have_boot && d->power_on_boot0_high == CHIP_BOOT_SRAM)
                warn(d, "nBOOT1 = 0: BOOT0 high starts SRAM, not the bootloader.");
        if (c->family == CHIP_FAMILY_L0 && d->have_boot && le32(s->first_word) == 0)
                warn(d, "The flash's first word reads 0x00000000 (erased on L0): whether an L0 has an empty check is "
                        "disputed; the host never relies on it.");
}

/* An adapter that holds every reply back costs each round trip (link-serial.c lowers
 * what it can: ASYNC_LOW_LATENCY, the FTDI latency_timer). */
#define LATENCY_SLOW_USEC 4000u

static void add_adapter_warnings(const DiagnosisSample *s, Diagnosis *d) {
        if (s->latency_timer_ms > 1)
                warn(d, "The FTDI latency_timer stays at %u ms (the daemon could not lower it to 1): every reply "
                        "waits that long; give the service write access to the port's latency_timer in sysfs.",
                     s->latency_timer_ms);
        if (d->latency_usec > LATENCY_SLOW_USEC)
                warn(d, "Each reply takes %.1f ms: a 32 KiB flash with verify spends %.1f s waiting for replies; "
                        "an adapter with a lower latency (or its driver's low-latency mode) is faster.",
                     d->latency_usec / 1000.0, d->flash_verify_latency_usec / 1e6);
}

void diagnosis_build(const DiagnosisSample *s, Diagnosis *d) {
        const ChipInfo *c = s->chip.info;
        uint64_t lat[DIAGNOSIS_ROUND_TRIPS];
        size_t n = MIN((size_t) s->n_latency, ELEMENTSOF(lat));

        memset(d, 0, sizeof *d);
        d->info = c;
        d->rdp_level = s->chip.rdp_level;
        memcpy(lat, s->latency_usec, n * sizeof lat[0]);
        d->latency_usec = diagnosis_median(lat, n);
        d->flash_verify_round_trips = diagnosis_round_trips(c, 32 * 1024);
        d->flash_verify_latency_usec = d->latency_usec * d->flash_verify_round_trips;
        add_adapter_warnings(s, d);
        if (!c) {
                snprintf(d->boot_summary, sizeof d->boot_summary, "unknown: product ID 0x%03X is not in the chip table",
                         s->chip.pid);
                return;
        }
        if (s->chip.have_option_bytes) {
                d->have_options = true;
                switch (c->ob_layout) {
                case CHIP_OB_G0: decode_g0(d, c, s->chip.option_bytes); break;
                case CHIP_OB_F0: decode_f0(d, c, s->chip.option_bytes); break;
                case CHIP_OB_L0: decode_l0(d, c, s->chip.option_bytes); break;
                }
        }
        run_checks(s, d);
        predict_boot(s, d);
        add_warnings(s, d);
}
