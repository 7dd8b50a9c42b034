/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Operations on one chip over one link: probe, flash (erase plan, write, verify),
 * erase, read, lock, unlock, go. No D-Bus and no threads here: progress goes to a
 * callback, cancellation is a flag the caller sets from another thread and the
 * flasher checks between blocks.
 *
 * Errors (negative errno); flasher_error_message() has the sentence for the user:
 *   -EHOSTDOWN     no bootloader answered the sync            -> NoBootloader
 *   -ETIMEDOUT     the bootloader stopped answering            -> Timeout
 *   -EREMOTEIO     NACK (after bounded retries)                -> Nack
 *   -EPROTO        an unexpected reply byte                    -> Nack
 *   -EILSEQ        read-back differs from what was written     -> VerifyFailed
 *   -EACCES        the chip is read-protected                  -> ReadProtected
 *   -EOPNOTSUPP    unknown PID, or an operation the chip lacks -> UnsupportedChip
 *   -EFBIG         the image does not fit the flash            -> ImageTooLarge
 *   -ERANGE        the image lies outside the flash            -> InvalidImage
 *   -ECANCELED     the cancel flag was set                     -> Cancelled
 *   -ENODEV        the adapter went away                       -> Disconnected
 *   -EINVAL        bad arguments                               -> InvalidArgs
 *   -EROFS         the job touches write-protected pages       -> WriteProtected
 *   -ENOTRECOVERABLE  option bytes read back other than written -> OptionBytesMismatch
 *   -ENOLINK       the job would leave no way back into the bootloader over UART and
 *                  force was not given                         -> NeedsForce
 *   -EPERM         a write the option-byte guard refuses (chips.h; a bug if ever seen) */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an3155.h"
#include "chips.h"
#include "image.h"
#include "link.h"
#include "macro.h"

typedef enum FlasherStage {
        FLASHER_STAGE_CONNECTING,
        FLASHER_STAGE_UNPROTECTING,
        FLASHER_STAGE_ERASING,
        FLASHER_STAGE_WRITING,
        FLASHER_STAGE_VERIFYING,
        FLASHER_STAGE_READING,
        FLASHER_STAGE_OPTIONS,          /* writing option bytes (nBOOT_SEL) */
        FLASHER_STAGE_PROTECTING,
        FLASHER_STAGE_STARTING,         /* Go */
        _FLASHER_STAGE_MAX,
} FlasherStage;

/* "connecting", "erasing", "writing", ... (the D-Bus State names where they exist). */
const char *flasher_stage_to_string(FlasherStage s);

typedef void (*flasher_progress_t)(void *userdata, FlasherStage stage, uint64_t done, uint64_t total);

typedef enum FlasherErase {
        FLASHER_ERASE_AUTO,     /* only the pages the image touches (a mass erase when
                                 * that is every page and the chip has one); flash keeps
                                 * what the image does not cover of those pages */
        FLASHER_ERASE_MASS,     /* the whole flash (page by page where there is no mass erase) */
        FLASHER_ERASE_NONE,
} FlasherErase;

typedef struct FlasherChip {
        const ChipInfo *info;           /* NULL if the PID is unknown */
        uint16_t pid;
        uint8_t protocol_version;       /* from Get, 0x31 = V3.1 */
        uint8_t commands[32];
        size_t n_commands;
        uint32_t flash_size;            /* from the flash-size register, else the table */
        bool have_uid;
        uint8_t uid[12];
        int rdp_level;                  /* 0, 1, 2; -1 unknown */
        bool have_option_bytes;         /* false when read-protected */
        uint8_t option_bytes[128];
        size_t option_bytes_size;
        uint32_t optr;                  /* chip_optr() of option_bytes */
        /* write protection decoded from option_bytes (chip_wrp_pages()): bit p set =
         * page p protected; none known without option bytes */
        uint32_t n_wrp_pages;
        uint8_t wrp_pages[CHIP_WRP_PAGES_MAX / 8];
} FlasherChip;

/* Whether page p is write-protected on c. */
static inline bool flasher_chip_page_protected(const FlasherChip *c, uint32_t p) {
        return p < CHIP_WRP_PAGES_MAX && (c->wrp_pages[p / 8] & (1u << (p % 8)));
}

typedef struct FlasherFlashOptions {
        FlasherErase erase;
        bool verify;            /* default true */
        bool unprotect;         /* read-protected chip: Readout Unprotect (mass erase) first;
                                 * write-protected pages in the way: Write Unprotect */
        bool protect;           /* Readout Protect after a verified flash */
        bool boot0;             /* C0/G0: clear nBOOT_SEL after a verified flash; default true */
        bool go;                /* start the code after a verified flash */
        uint32_t go_address;    /* 0: the flash base */
        bool force;             /* allow an end state with no way back into the bootloader
                                 * over UART (else -ENOLINK before anything is written) */
} FlasherFlashOptions;

void flasher_flash_options_init(FlasherFlashOptions *o);

typedef struct FlasherResult {
        uint64_t bytes_written;
        uint64_t bytes_verified;
        uint32_t pages_erased;          /* UINT32_MAX for a mass erase */
        bool mass_erased;
        bool unprotected;               /* read protection removed (flash mass-erased) */
        bool write_unprotected;         /* write protection removed (Write Unprotect) */
        bool protected_;
        bool boot0_changed;             /* nBOOT_SEL was cleared */
        bool started;                   /* Go was sent */
        uint64_t preserved_bytes;       /* erase=auto: bytes of the touched pages outside the image
                                         * that held data, read before the erase, written back
                                         * (and verified) */
        bool nothing_done;              /* Lock/Unlock: the chip was as asked already */
        uint32_t write_retries;         /* blocks that succeeded on retry: after a NACK, or after a
                                         * lost reply and a recovery (found programmed or written again) */
        uint64_t duration_usec;
} FlasherResult;

typedef struct Flasher Flasher;

/* Borrows link. */
int flasher_new(Link *link, Flasher **ret);
Flasher *flasher_free(Flasher *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Flasher *, flasher_free);

void flasher_set_progress(Flasher *f, flasher_progress_t cb, void *userdata);
/* The flasher polls *flag between blocks; set it from any thread. */
void flasher_set_cancel(Flasher *f, const atomic_bool *flag);
/* Protocol-level access (timeouts, trace). */
An3155 *flasher_protocol(Flasher *f);
/* A sentence describing the last error, "" after success. */
const char *flasher_error_message(const Flasher *f);

/* The chip the board is believed to hold (an auto-flash profile's, or the port's last
 * probe), for the words of a NoBootloader message; 0: unknown. */
void flasher_set_chip_hint(Flasher *f, uint16_t pid);

/* Sync, Get, Get ID; UID, flash size, option bytes when readable. A sync that nothing
 * answers gets one an3155_recover() (a chip an earlier host left inside a command)
 * before the probe fails with -EHOSTDOWN. */
int flasher_probe(Flasher *f, FlasherChip *ret);
/* A station's poll: at most syncs 0x7F bytes (1 or 2) and nothing else until a chip
 * answers one (then a probe as flasher_probe()'s); silence is -EHOSTDOWN, with no
 * recovery filler: a poll must cost an empty line nothing but the 0x7F. */
int flasher_poll(Flasher *f, unsigned syncs, FlasherChip *ret);
/* The chip of the last successful probe, NULL before. */
const FlasherChip *flasher_chip(const Flasher *f);

/* Probes if needed, then erases, writes, verifies, and applies the options. */
int flasher_flash(Flasher *f, const Image *img, const FlasherFlashOptions *opts, FlasherResult *ret);
/* Whole flash (mode MASS) or the pages covering [address, address+length) (mode AUTO). */
int flasher_erase(Flasher *f, FlasherErase mode, uint32_t address, uint32_t length);
int flasher_read(Flasher *f, uint32_t address, void *buf, size_t length);
/* RDP level 1. The chip resets; on C0/G0 with factory option bytes it then runs user code.
 * -ENOLINK (nothing sent) when that leaves no way back into the bootloader over UART
 * (C0/G0 with nBOOT_SEL = 1, nBOOT0 = 1 and code in flash), unless force. 1 (nothing
 * sent) when the chip is read-protected already: the bootloader would NACK Readout
 * Protect (AN3155: under RDP only Get, Get Version, Get ID and Readout Unprotect). */
int flasher_lock(Flasher *f, bool force);
/* RDP level 0: mass-erases the flash; re-syncs after the reset. 1 (nothing sent) when
 * the probe found the chip not read-protected (its option bytes readable, or a Read
 * Memory that was not NACKed), unless force: an unlock then only erases the flash. */
int flasher_unlock(Flasher *f, bool force);
/* 0: the flash base. The bootloader stops answering afterwards. Go leaves the ROM's
 * context on some parts (the vector table still in system memory; on F0, without VTOR,
 * system memory still mapped at 0): code that does not set its own VTOR can hang at its
 * first interrupt (reports on ST's forum, G041, G070). A reset with BOOT0 low starts it clean. */
int flasher_go(Flasher *f, uint32_t address);
