/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The read-only diagnosis: option bytes decoded, the boot prediction, the warnings, and
 * each inference holding on a chip as the table describes it and differing where a
 * sample says otherwise. */

#include <string.h>

#include "chips.h"
#include "diagnosis.h"
#include "macro.h"
#include "string-util.h"
#include "test-util.h"

static const uint8_t all_commands[] = { 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92 };

/* A sample as the simulator of pid answers it: factory options, first word erased
 * (empty) or code. */
static void make_sample(uint16_t pid, bool empty, DiagnosisSample *s) {
        const ChipInfo *c = chip_lookup(pid);

        ASSERT_TRUE(c);
        memset(s, 0, sizeof *s);
        s->chip.info = c;
        s->chip.pid = pid;
        s->chip.protocol_version = 0x31;
        memcpy(s->chip.commands, all_commands, sizeof all_commands);
        s->chip.n_commands = sizeof all_commands;
        s->chip.flash_size = c->flash_size;
        s->chip.have_uid = true;
        s->chip.rdp_level = 0;
        s->chip.have_option_bytes = true;
        memcpy(s->chip.option_bytes, c->ob_factory, c->ob_size);
        s->chip.option_bytes_size = c->ob_size;
        s->have_version = true;
        s->version = 0x31;
        s->have_size_reg = true;
        s->size_reg_kib = (uint16_t) (c->flash_size / 1024);
        s->have_first_word = true;
        memset(s->first_word, empty ? 0xFF : 0x20, 4);
        s->have_bootloader_id = true;
        s->bootloader_id = c->bootloader_id;
        s->n_latency = 3;
        s->latency_usec[0] = 1500;
        s->latency_usec[1] = 900;
        s->latency_usec[2] = 1100;
}

static const DiagnosisCheck *check_of(const Diagnosis *d, const char *id) {
        for (size_t i = 0; i < d->n_checks; i++)
                if (streq(d->checks[i].id, id))
                        return &d->checks[i];
        ASSERT_TRUE(!"no such check");
        return NULL;
}

static bool has_option(const Diagnosis *d, const char *name) {
        for (size_t i = 0; i < d->n_options; i++)
                if (streq(d->options[i].name, name))
                        return true;
        return false;
}

static DiagnosisOption option_of(const Diagnosis *d, const char *name) {
        for (size_t i = 0; i < d->n_options; i++)
                if (streq(d->options[i].name, name))
                        return d->options[i];
        fprintf(stderr, "no option %s\n", name);
        abort();
}

static bool has_warning(const Diagnosis *d, const char *words) {
        for (size_t i = 0; i < d->n_warnings; i++)
                if (strstr(d->warnings[i], words))
                        return true;
        return false;
}

static size_t count(const Diagnosis *d, DiagnosisVerdict v) {
        size_t n = 0;

        for (size_t i = 0; i < d->n_checks; i++)
                n += d->checks[i].verdict == v;
        return n;
}

/* Every chip as its table entry says: every read-only check holds, none differs. */
static void test_every_chip_holds(void) {
        size_t n;
        const ChipInfo *t = chip_table(&n);

        for (size_t i = 0; i < n; i++) {
                DiagnosisSample s;
                Diagnosis d;

                make_sample(t[i].pid, true, &s);
                diagnosis_build(&s, &d);
                fprintf(stderr, "   %s: %zu hold, %zu not checked\n", t[i].name, count(&d, DIAGNOSIS_HOLDS),
                        count(&d, DIAGNOSIS_NOT_CHECKED));
                ASSERT_EQ(count(&d, DIAGNOSIS_DIFFERS), 0);
                ASSERT_EQ(count(&d, DIAGNOSIS_HOLDS), 7);
                ASSERT_TRUE(d.have_options);
                ASSERT_EQ(option_of(&d, "RDP").value, 0xAA);
                ASSERT_TRUE(strstr(option_of(&d, "RDP").meaning, "level 0"));
                ASSERT_TRUE(has_option(&d, "nBOOT1"));
                ASSERT_TRUE(d.have_boot);
                ASSERT_EQ(d.rdp_level, 0);
                for (size_t k = 0; k < d.n_checks; k++) {
                        ASSERT_TRUE(d.checks[k].inference[0] && d.checks[k].source[0] && d.checks[k].found[0]);
                        ASSERT_TRUE(diagnosis_verdict_to_string(d.checks[k].verdict));
                }
        }
}

static void test_g0_boot(void) {
        DiagnosisSample s;
        Diagnosis d;

        /* factory options, empty flash: the bootloader whatever the pin */
        make_sample(0x466, true, &s);
        diagnosis_build(&s, &d);
        ASSERT_EQ(d.power_on_boot0_low, CHIP_BOOT_SYSTEM_MEMORY);
        ASSERT_EQ(d.power_on_boot0_high, CHIP_BOOT_SYSTEM_MEMORY);
        ASSERT_EQ(option_of(&d, "nBOOT_SEL").value, 1);
        ASSERT_EQ(option_of(&d, "NRST_MODE").value, 3);
        ASSERT_STREQ(option_of(&d, "WRP1A").meaning, "off");
        ASSERT_TRUE(has_warning(&d, "only while its flash is empty"));
        ASSERT_TRUE(!has_warning(&d, "will not enter the bootloader"));

        /* factory options, code in flash: never the bootloader again after a power cycle */
        make_sample(0x466, false, &s);
        diagnosis_build(&s, &d);
        ASSERT_EQ(d.power_on_boot0_low, CHIP_BOOT_MAIN_FLASH);
        ASSERT_EQ(d.power_on_boot0_high, CHIP_BOOT_MAIN_FLASH);
        ASSERT_TRUE(has_warning(&d, "nBOOT_SEL is set and the flash is not empty: after a power cycle this chip will "
                                    "not enter the bootloader; flash it with boot0=true or use SWD"));
        ASSERT_TRUE(strstr(d.boot_summary, "whatever the BOOT0 pin says"));

        /* nBOOT_SEL cleared (what boot0=true writes): the pin decides */
        ASSERT_EQ(chip_ob_enable_boot0(s.chip.info, s.chip.option_bytes), 1);
        diagnosis_build(&s, &d);
        ASSERT_EQ(option_of(&d, "nBOOT_SEL").value, 0);
        ASSERT_EQ(d.power_on_boot0_low, CHIP_BOOT_MAIN_FLASH);
        ASSERT_EQ(d.power_on_boot0_high, CHIP_BOOT_SYSTEM_MEMORY);
        ASSERT_TRUE(has_warning(&d, "PA14"));
        ASSERT_TRUE(!has_warning(&d, "will not enter the bootloader"));
        /* no longer the factory value, and the check says which field */
        ASSERT_EQ(check_of(&d, "factory_options")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "factory_options")->found, "OPTR"));
        ASSERT_EQ(check_of(&d, "option_pairs")->verdict, DIAGNOSIS_HOLDS);
}

static void test_c0_warning(void) {
        DiagnosisSample s;
        Diagnosis d;

        make_sample(0x443, false, &s);
        diagnosis_build(&s, &d);
        ASSERT_TRUE(has_warning(&d, "BOOT0 stays forced low"));
        ASSERT_TRUE(has_warning(&d, "will not enter the bootloader"));
}

static void test_pin_families(void) {
        static const uint16_t pids[] = { 0x444, 0x457 };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                DiagnosisSample s;
                Diagnosis d;

                make_sample(pids[i], false, &s);
                diagnosis_build(&s, &d);
                ASSERT_EQ(d.power_on_boot0_low, CHIP_BOOT_MAIN_FLASH);
                ASSERT_EQ(d.power_on_boot0_high, CHIP_BOOT_SYSTEM_MEMORY);
                ASSERT_EQ(option_of(&d, "nBOOT1").value, 1);
                ASSERT_TRUE(!has_option(&d, "nBOOT_SEL"));
                ASSERT_TRUE(!has_warning(&d, "nBOOT_SEL"));
        }
}

static void test_broken_pair(void) {
        DiagnosisSample s;
        Diagnosis d;

        make_sample(0x466, true, &s);
        s.chip.option_bytes[0x1C] ^= 0x01;     /* WRP1AR's complement */
        diagnosis_build(&s, &d);
        ASSERT_EQ(check_of(&d, "option_pairs")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "option_pairs")->found, "WRP1AR"));
        ASSERT_TRUE(strstr(check_of(&d, "option_pairs")->found, "0x1FFF7818"));
        ASSERT_TRUE(has_warning(&d, "without its complement"));

        make_sample(0x444, true, &s);
        s.chip.option_bytes[3] = 0x01;         /* nUSER */
        diagnosis_build(&s, &d);
        ASSERT_EQ(check_of(&d, "option_pairs")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "option_pairs")->found, "USER"));

        make_sample(0x457, true, &s);
        s.chip.option_bytes[10] = 0x00;        /* WRPROT1's complement half */
        diagnosis_build(&s, &d);
        ASSERT_EQ(check_of(&d, "option_pairs")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "option_pairs")->found, "WRPROT1"));
}

static void test_bootloader_differs(void) {
        DiagnosisSample s;
        Diagnosis d;

        make_sample(0x453, true, &s);
        s.chip.protocol_version = 0x30;
        s.version = 0x30;
        s.chip.n_commands--;                    /* no 0x92 */
        s.bootloader_id = 0x53;
        s.size_reg_kib = 0xFFFF;
        diagnosis_build(&s, &d);
        ASSERT_EQ(check_of(&d, "protocol_version")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "protocol_version")->found, "3.0"));
        ASSERT_EQ(check_of(&d, "get_commands")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "get_commands")->found, "missing 92"));
        ASSERT_EQ(check_of(&d, "bootloader_id")->verdict, DIAGNOSIS_DIFFERS);
        ASSERT_TRUE(strstr(check_of(&d, "bootloader_id")->found, "0x53"));
        ASSERT_EQ(check_of(&d, "flash_size_register")->verdict, DIAGNOSIS_DIFFERS);

        /* Get Version that does not agree with Get */
        make_sample(0x453, true, &s);
        s.version = 0x32;
        diagnosis_build(&s, &d);
        ASSERT_EQ(check_of(&d, "protocol_version")->verdict, DIAGNOSIS_DIFFERS);
}

static void test_read_protected(void) {
        DiagnosisSample s;
        Diagnosis d;

        make_sample(0x466, false, &s);
        s.chip.rdp_level = 1;
        s.chip.have_option_bytes = false;
        s.chip.have_uid = false;
        s.have_size_reg = s.have_first_word = s.have_bootloader_id = false;
        diagnosis_build(&s, &d);
        ASSERT_TRUE(!d.have_options);
        ASSERT_TRUE(!d.have_boot);
        ASSERT_TRUE(strstr(d.boot_summary, "read-protected"));
        ASSERT_EQ(count(&d, DIAGNOSIS_DIFFERS), 0);
        ASSERT_EQ(check_of(&d, "uid_readable")->verdict, DIAGNOSIS_NOT_CHECKED);
        ASSERT_EQ(check_of(&d, "protocol_version")->verdict, DIAGNOSIS_HOLDS);
        ASSERT_TRUE(has_warning(&d, "read-protected (level 1)"));
}

static void test_write_protected(void) {
        DiagnosisSample s;
        Diagnosis d;

        make_sample(0x466, true, &s);
        /* WRP1AR = pages 0..3, with its complement */
        s.chip.option_bytes[0x18] = 0x00;
        s.chip.option_bytes[0x1A] = 0x03;
        s.chip.option_bytes[0x1C] = 0xFF;
        s.chip.option_bytes[0x1E] = 0xFC;
        s.chip.n_wrp_pages = (uint32_t) chip_wrp_pages(s.chip.info, s.chip.option_bytes, s.chip.flash_size,
                                                       s.chip.wrp_pages);
        ASSERT_EQ(s.chip.n_wrp_pages, 4);
        diagnosis_build(&s, &d);
        ASSERT_STREQ(option_of(&d, "WRP1A").meaning, "pages 0-3 write-protected");
        ASSERT_TRUE(has_warning(&d, "4 page(s) are write-protected"));
        ASSERT_EQ(check_of(&d, "option_pairs")->verdict, DIAGNOSIS_HOLDS);
}

static void test_unknown_chip(void) {
        DiagnosisSample s = { .chip = { .pid = 0x410, .rdp_level = -1 } };
        Diagnosis d;

        diagnosis_build(&s, &d);
        ASSERT_TRUE(!d.info);
        ASSERT_EQ(d.n_checks, 0);
        ASSERT_TRUE(strstr(d.boot_summary, "0x410"));
}

static void test_latency(void) {
        uint64_t v[] = { 5, 1, 3 }, w[] = { 4, 1, 3, 2 };
        DiagnosisSample s;
        Diagnosis d;

        ASSERT_EQ(diagnosis_median(v, 3), 3);
        ASSERT_EQ(diagnosis_median(w, 4), 2);
        ASSERT_EQ(diagnosis_median(v, 0), 0);
        /* 128 blocks written and read back, 3 round trips each, one mass erase */
        ASSERT_EQ(diagnosis_round_trips(chip_lookup(0x466), 32 * 1024), 3 * 128 + 3 * 128 + 2);
        /* L0: 128-byte blocks, 256 pages in one page list */
        ASSERT_EQ(diagnosis_round_trips(chip_lookup(0x457), 32 * 1024), 3 * 256 + 3 * 128 + 2);

        make_sample(0x466, true, &s);
        diagnosis_build(&s, &d);
        ASSERT_EQ(d.latency_usec, 1100);
        ASSERT_EQ(d.flash_verify_round_trips, 770);
        ASSERT_EQ(d.flash_verify_latency_usec, 770 * 1100);
        ASSERT_TRUE(!has_warning(&d, "latency_timer"));
        ASSERT_TRUE(!has_warning(&d, "Each reply takes"));

        /* an FTDI adapter left at 16 ms: both warnings */
        s.latency_timer_ms = 16;
        s.latency_usec[0] = s.latency_usec[1] = s.latency_usec[2] = 16500;
        diagnosis_build(&s, &d);
        ASSERT_TRUE(has_warning(&d, "latency_timer stays at 16 ms"));
        ASSERT_TRUE(has_warning(&d, "Each reply takes 16.5 ms"));
        s.latency_timer_ms = 1;
        diagnosis_build(&s, &d);
        ASSERT_TRUE(!has_warning(&d, "latency_timer"));
}

int main(void) {
        test_every_chip_holds();
        test_g0_boot();
        test_c0_warning();
        test_pin_families();
        test_broken_pair();
        test_bootloader_differs();
        test_read_protected();
        test_write_protected();
        test_unknown_chip();
        test_latency();
        return 0;
}
