/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The read-only diagnosis of a chip (stm32ispctl diagnose, Port.Diagnose): what a
 * probe and a few reads found, decoded for people (option bytes field by field, where
 * the chip will boot, warnings in plain words) and checked against what the project
 * infers about silicon (bootloader.md §4, the README's "Tested on silicon / inferred"):
 * each inference this chip can confirm read-only holds or differs. Pure: job.c reads,
 * this module decodes; no I/O, no D-Bus. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chips.h"
#include "flasher.h"

/* Get ID round trips timed for the latency. */
#define DIAGNOSIS_ROUND_TRIPS 5u

/* What the job read (job.c): the probe's chip and the reads it adds. Nothing is written. */
typedef struct DiagnosisSample {
        FlasherChip chip;
        bool have_version;              /* Get Version answered */
        uint8_t version;
        bool have_size_reg;             /* the flash-size register as read (KiB) */
        uint16_t size_reg_kib;
        bool have_first_word;           /* the flash's first word (the empty check) */
        uint8_t first_word[4];
        bool have_bootloader_id;        /* the byte at bootloader_id_addr (AN2606) */
        uint8_t bootloader_id;
        bool low_latency;               /* the driver took ASYNC_LOW_LATENCY (Link) */
        unsigned latency_timer_ms;      /* FTDI latency_timer as the job ran, 0: none */
        unsigned n_latency;             /* Get ID round trips timed */
        uint64_t latency_usec[DIAGNOSIS_ROUND_TRIPS];
} DiagnosisSample;

typedef enum DiagnosisVerdict {
        DIAGNOSIS_NOT_CHECKED,          /* not on this chip, or not without writing */
        DIAGNOSIS_HOLDS,
        DIAGNOSIS_DIFFERS,
        _DIAGNOSIS_VERDICT_MAX,
} DiagnosisVerdict;

/* "not_checked", "holds", "differs" */
const char *diagnosis_verdict_to_string(DiagnosisVerdict v);

/* One inference and what this chip said about it. */
typedef struct DiagnosisCheck {
        const char *id;                 /* "option_pairs" */
        const char *inference;          /* the sentence the project relies on */
        const char *source;             /* where it comes from, [D]/[T]/[F]/[U] as in the facts */
        DiagnosisVerdict verdict;
        char found[192];                /* what the chip said (or why not checked) */
} DiagnosisCheck;

/* One decoded option field. */
typedef struct DiagnosisOption {
        const char *name;               /* CMSIS name: "RDP", "nBOOT_SEL", "WRP1A", ... */
        uint32_t value;
        char meaning[128];
} DiagnosisOption;

#define DIAGNOSIS_CHECKS_MAX 16
#define DIAGNOSIS_OPTIONS_MAX 20
#define DIAGNOSIS_WARNINGS_MAX 10

typedef struct Diagnosis {
        const ChipInfo *info;           /* NULL: a chip missing from the table */
        int rdp_level;                  /* -1: unknown */
        bool have_options;
        DiagnosisOption options[DIAGNOSIS_OPTIONS_MAX];
        size_t n_options;

        /* Where the chip starts, known when the options and the first word are. */
        bool have_boot;
        bool flash_empty;               /* the first word reads erased 0xFFFFFFFF */
        ChipBootTarget power_on_boot0_low, power_on_boot0_high;
        char boot_summary[320];         /* the same in words, with the next reset */

        DiagnosisCheck checks[DIAGNOSIS_CHECKS_MAX];
        size_t n_checks;

        char warnings[DIAGNOSIS_WARNINGS_MAX][320];
        size_t n_warnings;

        uint64_t latency_usec;          /* median per reply, 0: not measured */
        uint32_t flash_verify_round_trips;     /* a 32 KiB flash + verify */
        uint64_t flash_verify_latency_usec;    /* their cost at latency_usec */
} Diagnosis;

/* The round trips (a command and its reply) a flash of size bytes with a verify takes on
 * c: Write Memory is 3 per block (command, address, data), a verify read 3 per 256
 * bytes (command, address, length), the erase 2 per page list. */
uint32_t diagnosis_round_trips(const ChipInfo *c, uint32_t size);

/* Median of n values (sorts v). 0 for n == 0. */
uint64_t diagnosis_median(uint64_t *v, size_t n);

/* Decodes s (s->chip.info may be NULL) into d. */
void diagnosis_build(const DiagnosisSample *s, Diagnosis *d);
