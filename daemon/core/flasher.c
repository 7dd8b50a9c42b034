/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "flasher.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Sync attempts for a probe, and for a resync after a reset (a lost reply in a block
 * goes through an3155_recover() instead). */
#define SYNC_ATTEMPTS           3u
#define RESYNC_ATTEMPTS         6u
/* Tries per Write/Read Memory block when the chip answers NACK. */
#define BLOCK_TRIES             3u
/* Read Memory chunk. Every command costs an adapter latency per reply (1..16 ms on USB
 * adapters), so blocks are as large as AN3155 allows. */
#define READ_CHUNK              256u
#define WRITE_CHUNK             AN3155_MAX_BLOCK
/* Pages per Extended Erase command: enough for about ERASE_CHUNK_USEC of erasing (one
 * command for a whole L0), at least ERASE_CHUNK_MIN; between commands the flasher reports
 * progress and checks for cancellation. */
#define ERASE_CHUNK_MIN         16u
#define ERASE_CHUNK_MAX         128u
#define ERASE_CHUNK_USEC        (500u * 1000u)
/* Blocks start 8-aligned: the G0 (and, assumed, C0) bootloader ACKs but drops a write
 * at a 4- but not 8-aligned address (reported on 0x466 on ST's forum; AN3155 §3.6: a
 * Write Memory can ACK without programming). */
#define BLOCK_ALIGN             8u

struct Flasher {
        Link *link;
        An3155 *proto;

        flasher_progress_t progress;
        void *userdata;
        const atomic_bool *cancel;

        bool have_chip;         /* chip holds the last probe and the bootloader is ours */
        FlasherChip chip;
        uint16_t chip_hint;     /* flasher_set_chip_hint() */

        char message[1024];
};

/* A range to program: starts BLOCK_ALIGN-aligned, ends on the write unit. */
typedef struct Run {
        uint32_t start, end;
} Run;

static const char *const stage_names[_FLASHER_STAGE_MAX] = {
        [FLASHER_STAGE_CONNECTING]   = "connecting",
        [FLASHER_STAGE_UNPROTECTING] = "unprotecting",
        [FLASHER_STAGE_ERASING]      = "erasing",
        [FLASHER_STAGE_WRITING]      = "writing",
        [FLASHER_STAGE_VERIFYING]    = "verifying",
        [FLASHER_STAGE_READING]      = "reading",
        [FLASHER_STAGE_OPTIONS]      = "options",
        [FLASHER_STAGE_PROTECTING]   = "protecting",
        [FLASHER_STAGE_STARTING]     = "starting",
};

const char *flasher_stage_to_string(FlasherStage s) {
        if ((unsigned) s >= _FLASHER_STAGE_MAX)
                return NULL;
        return stage_names[s];
}

void flasher_flash_options_init(FlasherFlashOptions *o) {
        *o = (FlasherFlashOptions) {
                .erase = FLASHER_ERASE_AUTO,
                .verify = true,
                .boot0 = true,
        };
}

int flasher_new(Link *link, Flasher **ret) {
        _cleanup_free_ Flasher *f = NULL;
        int r;

        if (!link || !ret)
                return -EINVAL;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->link = link;
        r = an3155_new(link, &f->proto);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

Flasher *flasher_free(Flasher *f) {
        if (!f)
                return NULL;
        an3155_free(f->proto);
        free(f);
        return NULL;
}

void flasher_set_progress(Flasher *f, flasher_progress_t cb, void *userdata) {
        f->progress = cb;
        f->userdata = userdata;
}

void flasher_set_cancel(Flasher *f, const atomic_bool *flag) {
        f->cancel = flag;
}

An3155 *flasher_protocol(Flasher *f) {
        return f->proto;
}

const char *flasher_error_message(const Flasher *f) {
        return f->message;
}

void flasher_set_chip_hint(Flasher *f, uint16_t pid) {
        f->chip_hint = pid;
}

const FlasherChip *flasher_chip(const Flasher *f) {
        return f->have_chip && f->chip.info ? &f->chip : NULL;
}

/* ---- messages ---- */

_printf_(3, 4)
static int fail(Flasher *f, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(f->message, sizeof(f->message), fmt, ap);
        va_end(ap);
        return r;
}

/* A protocol error r during "what" ("Write Memory at 0x08000400 (3 tries)"), in words
 * that say what the chip did. */
_printf_(3, 4)
static int fail_proto(Flasher *f, int r, const char *fmt, ...) {
        const An3155Status *st = an3155_last_status(f->proto);
        const char *step = st && st->step ? st->step : "reply";
        const char *port = f->link->name ? f->link->name : "the port";
        char what[160];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);

        switch (r) {
        case -EREMOTEIO:
                return fail(f, r, "chip answered NACK to %s", what);
        case -ETIMEDOUT:
                return fail(f, r, "chip stopped answering during %s (no reply at the %s step)", what, step);
        case -EPROTO:
                if (st && st->reply >= 0)
                        return fail(f, r, "chip answered 0x%02X to %s (%s step), neither ACK nor NACK",
                                    (unsigned) st->reply, what, step);
                return fail(f, r, "chip answered garbage to %s (%s step)", what, step);
        case -EHOSTDOWN:
                return fail(f, r, "no bootloader answered the sync on %s (%s): is BOOT0 high and the chip reset?%s",
                            port, what, chip_no_bootloader_hint(f->chip_hint ?: f->chip.info ? f->chip.pid : 0));
        case -ENODEV:
                return fail(f, r, "%s went away during %s", port, what);
        case -EOPNOTSUPP:
                return fail(f, r, "the bootloader does not offer %s", what);
        default:
                return fail(f, r, "%s failed: %s", what, strerror(-r));
        }
}

/* ---- small helpers ---- */

static void progress(Flasher *f, FlasherStage stage, uint64_t done, uint64_t total) {
        if (f->progress)
                f->progress(f->userdata, stage, done, total);
}

static bool cancelled(const Flasher *f) {
        return f->cancel && atomic_load(f->cancel);
}

static int fail_cancelled(Flasher *f, FlasherStage stage, uint64_t done, uint64_t total) {
        return fail(f, -ECANCELED, "cancelled while %s (%" PRIu64 " of %" PRIu64 " done)",
                    flasher_stage_to_string(stage), done, total);
}

static uint64_t reset_usec(Flasher *f) {
        An3155Timeouts t;

        an3155_get_timeouts(f->proto, &t);
        return t.reset_usec;
}

/* After an option-byte reload the chip is back in the bootloader within a few ms, but
 * how soon is not documented: instead of one sync after the full reset_usec, try early
 * and often, within the same overall budget. A 0x7F that reaches the chip while it still
 * boots is lost and simply retried; one that reaches it mid-frame still measures one
 * bit time (every low pulse of 0x7F 8E1 is one bit long). A late ACK makes the next
 * 0x7F a command byte, which the chip NACKs: an3155_sync() takes that as synced. */
#define RESET_POLL_FIRST_USEC   (5u * 1000u)
#define RESET_POLL_REPLY_USEC   (100u * 1000u)

static int resync_after_reset(Flasher *f) {
        An3155Timeouts t, fast;
        uint64_t budget, first;
        unsigned attempts;
        int r;

        an3155_get_timeouts(f->proto, &t);
        fast = t;
        fast.reply_usec = MIN(t.reply_usec, (uint64_t) RESET_POLL_REPLY_USEC);
        first = MIN(t.reset_usec, (uint64_t) RESET_POLL_FIRST_USEC);
        budget = t.reset_usec + SYNC_ATTEMPTS * t.reply_usec;
        attempts = (unsigned) MAX((budget - first) / MAX(fast.reply_usec, (uint64_t) 1), (uint64_t) SYNC_ATTEMPTS);
        an3155_set_timeouts(f->proto, &fast);
        r = an3155_resync(f->proto, first, attempts);
        an3155_set_timeouts(f->proto, &t);
        return r;
}

static bool is_nack_after_command(Flasher *f, int r) {
        const An3155Status *st = an3155_last_status(f->proto);

        return r == -EREMOTEIO && st && st->step && strcmp(st->step, "command") == 0;
}

/* After a recovery, the block being written is either programmed (only the final ACK
 * was lost), or still erased (the chip never took the data: the recovery's bytes cannot
 * complete a write, see an3155.c). 1: programmed, 0: erased, write it again. Anything
 * else (a frame completed by bytes we did not foresee, a half-programmed block after a
 * reset): programming over it would fail or, worse, pass over wrong bytes, so stop;
 * the user erases and flashes again. */
static int block_after_recovery(Flasher *f, uint32_t address, const uint8_t *want, size_t n) {
        uint8_t got[AN3155_MAX_BLOCK], erased = f->chip.info->erased;
        bool all_erased = true;
        int r;

        r = an3155_read_memory(f->proto, address, got, n);
        if (r < 0)
                return fail_proto(f, r, "the read-back of Write Memory at 0x%08X after a recovery", address);
        if (memcmp(got, want, n) == 0)
                return 1;
        for (size_t i = 0; i < n; i++)
                all_erased = all_erased && got[i] == erased;
        if (all_erased)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (got[i] != want[i] && got[i] != erased)
                        return fail(f, -EILSEQ, "after a lost reply, Write Memory at 0x%08X left 0x%02X at 0x%08zX "
                                    "(expected 0x%02X or erased): erase and flash again",
                                    address, got[i], (size_t) address + i, want[i]);
        /* partly programmed with the right bytes, partly erased: the write unit cannot be
         * programmed twice, so the block cannot be finished either */
        return fail(f, -EILSEQ, "after a lost reply, Write Memory at 0x%08X left the block partly programmed: "
                    "erase and flash again", address);
}

/* One Write or Read Memory block. A NACK is retried (BLOCK_TRIES in all). A lost or
 * garbled reply leaves the bootloader inside the command: an3155_recover() gets it out
 * and syncs, once per block; a written block is read back before it is written again
 * (it may be programmed already, and cannot be programmed twice). A second loss on the
 * same block fails. */
static int transfer_block(Flasher *f, bool write, uint32_t address, uint8_t *buf, size_t n,
                          unsigned *ret_tries) {
        const char *name = write ? "Write Memory" : "Read Memory";
        unsigned tries = 0, nacks = 0;
        bool recovered = false;
        int r;

        for (;;) {
                tries++;
                r = write ? an3155_write_memory(f->proto, address, buf, n)
                          : an3155_read_memory(f->proto, address, buf, n);
                if (r >= 0)
                        break;
                if (r == -EREMOTEIO) {
                        if (++nacks < BLOCK_TRIES)
                                continue;
                        return fail_proto(f, r, "%s at 0x%08X (%u tries)", name, address, tries);
                }
                if (!IN_SET(r, -ETIMEDOUT, -EPROTO))
                        return fail_proto(f, r, "%s at 0x%08X", name, address);
                if (recovered)
                        return fail_proto(f, r, "%s at 0x%08X, again after a recovery", name, address);

                recovered = true;
                r = an3155_recover(f->proto);
                if (r < 0)
                        return fail_proto(f, r == -EHOSTDOWN ? -ETIMEDOUT : r,
                                          "the recovery after a lost reply to %s at 0x%08X", name, address);
                if (write) {
                        r = block_after_recovery(f, address, buf, n);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                tries++;        /* the lost try did it: counts as a retry */
                                break;
                        }
                }
        }

        if (ret_tries)
                *ret_tries = tries;
        return 0;
}

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

/* Reads a factory value; the L0 workaround for bootloaders that NACK single reads in
 * the 0x1FF80000 info area (an L05x does, stm32loader issue 61): read 128 bytes from its
 * start and pick. */
static int read_info(Flasher *f, const ChipInfo *info, uint32_t address, uint8_t *buf, size_t n) {
        uint8_t area[128];
        int r;

        r = an3155_read_memory(f->proto, address, buf, n);
        if (r != -EREMOTEIO || info->family != CHIP_FAMILY_L0 ||
            address < info->ob_base || address + n > info->ob_base + sizeof(area))
                return r;
        r = an3155_read_memory(f->proto, info->ob_base, area, sizeof(area));
        if (r < 0)
                return r;
        memcpy(buf, area + (address - info->ob_base), n);
        return 0;
}

int flasher_read_info(Flasher *f, uint32_t address, void *buf, size_t n) {
        if (!f->have_chip || !f->chip.info)
                return -EINVAL;
        return read_info(f, f->chip.info, address, buf, n);
}

/* ---- probe ---- */

/* The UID into uid once: -EREMOTEIO (uid zeroed) when the bootloader does not let it
 * be read (F030: RM0360 documents no UID). */
static int read_uid_once(Flasher *f, const ChipInfo *info, uint8_t uid[static 12]) {
        int r;

        if (info->uid[1] == info->uid[0] + 4 && info->uid[2] == info->uid[0] + 8) {
                /* contiguous (C0, F0, G0): one read */
                r = read_info(f, info, info->uid[0], uid, 12);
                if (r == -EREMOTEIO)
                        memset(uid, 0, 12);
                else if (r < 0)
                        return fail_proto(f, r, "Read Memory of the UID at 0x%08X", info->uid[0]);
                return r;
        }
        for (size_t i = 0; i < 3; i++) {
                r = read_info(f, info, info->uid[i], uid + 4 * i, 4);
                if (r == -EREMOTEIO) {
                        memset(uid, 0, 12);
                        return r;
                }
                if (r < 0)
                        return fail_proto(f, r, "Read Memory of the UID at 0x%08X", info->uid[i]);
        }
        return 0;
}

/* The UID names the board in the results log: a wrong one would put another board's
 * name on this job. Read Memory data has no checksum (AN3155 §3.4) and reading changes
 * nothing, so it is read twice, and when the two differ once more: a third read must
 * agree with one of them, else the probe fails rather than log a UID that may be
 * wrong. */
static int read_uid(Flasher *f, const ChipInfo *info, uint8_t uid[static 12]) {
        uint8_t second[12], third[12];
        int r;

        r = read_uid_once(f, info, uid);
        if (r < 0)
                return r;
        r = read_uid_once(f, info, second);
        if (r < 0)
                return r;
        if (memcmp(uid, second, 12) == 0)
                return 0;
        r = read_uid_once(f, info, third);
        if (r < 0)
                return r;
        if (memcmp(third, uid, 12) != 0 && memcmp(third, second, 12) != 0)
                return fail(f, -EILSEQ, "the UID at 0x%08X read differently three times: the line is not reliable "
                            "(check the wiring, or try a lower baud rate); no UID was taken", info->uid[0]);
        memcpy(uid, third, 12);
        return 0;
}

/* After a successful sync: Get, Get ID, then what is readable. No Get Version: Get
 * already gave the protocol version, and every command is a round trip. */
static int probe_synced(Flasher *f, FlasherChip *ret) {
        FlasherChip c = { .rdp_level = -1 };
        const ChipInfo *info;
        uint8_t buf[4];
        int r;

        f->have_chip = false;

        r = an3155_get(f->proto, &c.protocol_version, c.commands, &c.n_commands);
        if (r < 0)
                return fail_proto(f, r, "Get");
        r = an3155_get_id(f->proto, &c.pid);
        if (r < 0)
                return fail_proto(f, r, "Get ID");

        info = chip_lookup(c.pid);
        c.info = info;
        if (!info) {
                /* keep what we know: reads still work on an unknown part */
                f->chip = c;
                f->have_chip = true;
                if (ret)
                        *ret = c;
                return fail(f, -EOPNOTSUPP, "unsupported chip: product ID 0x%03X is not in the chip table",
                            (unsigned) c.pid);
        }
        c.flash_size = info->flash_size;

        /* Option bytes first: under read protection every Read Memory is NACKed right
         * after the command pair (AN3155), so this read doubles as the protection test. */
        r = an3155_read_memory(f->proto, info->ob_base, c.option_bytes, info->ob_size);
        if (is_nack_after_command(f, r)) {
                c.rdp_level = 1;
                /* some parts send a second NACK (AN3155 §3.4): drop it */
                (void) link_flush_input(f->link);
                goto done;
        }
        if (r == -EREMOTEIO)
                c.rdp_level = -1;       /* the area is not readable on this bootloader */
        else if (r < 0)
                return fail_proto(f, r, "Read Memory of the option bytes at 0x%08X", info->ob_base);
        else {
                c.have_option_bytes = true;
                c.option_bytes_size = info->ob_size;
                c.rdp_level = chip_rdp_level(info, c.option_bytes);
                c.optr = chip_optr(info, c.option_bytes);
        }

        /* Flash size register (KiB); unreadable, blank or larger than the line: the table. */
        r = read_info(f, info, info->flash_size_reg, buf, 2);
        if (r < 0 && r != -EREMOTEIO)
                return fail_proto(f, r, "Read Memory of the flash size at 0x%08X", info->flash_size_reg);
        if (r >= 0) {
                uint32_t kib = le16(buf);

                if (kib != 0 && kib != 0xFFFF && kib * 1024u <= info->flash_size)
                        c.flash_size = ALIGN_DOWN(kib * 1024u, info->page_size);
                if (c.flash_size == 0)
                        c.flash_size = info->flash_size;
        }

        r = read_uid(f, info, c.uid);
        if (r < 0 && r != -EREMOTEIO)
                return r;
        c.have_uid = r >= 0;

done:
        if (c.have_option_bytes)
                c.n_wrp_pages = (uint32_t) chip_wrp_pages(info, c.option_bytes, c.flash_size, c.wrp_pages);
        f->chip = c;
        f->have_chip = true;
        if (ret)
                *ret = c;
        return 0;
}

int flasher_probe(Flasher *f, FlasherChip *ret) {
        int r;

        f->message[0] = 0;
        f->have_chip = false;
        progress(f, FLASHER_STAGE_CONNECTING, 0, 1);

        r = an3155_sync(f->proto, SYNC_ATTEMPTS);
        if (r == -EHOSTDOWN) {
                int k;

                /* Silence. Besides a dead line, BOOT0 low or no power, that is a chip an
                 * earlier host left inside a command (it was unplugged, killed, or gave up
                 * on a Timeout): the 0x7F bytes went into an address or a data frame. One
                 * recovery gets it out, and ends in a sync. Why its filler is harmless
                 * where nothing is stuck:
                 * - a chip waiting for sync would have answered the first 0x7F, and the
                 *   recovery's own 0x7F comes before any filler, so such a chip (say one
                 *   just powered up) never measures its baud on filler;
                 * - with BOOT0 low the application owns the UART (if it listens there at
                 *   all): it gets 265 bytes of 0x01/0x02 after the 0x7F bytes, the same
                 *   kind of noise, and the bootloader is not running;
                 * - on a dead line it costs 0.54 s (measured at 115200 baud with the
                 *   default timeouts: the probe fails after 1.65 s instead of 1.10 s):
                 *   two drains, one 0x7F and a 2-attempt sync, each wait capped at
                 *   AN3155_RECOVER_REPLY_USEC.
                 * Not recovered here: a chip waiting for an Extended Erase page list
                 * takes the 0x7F pair as 0x7F7F pages and wants 64 KiB more (6 s at
                 * 115200 baud); sending that to every silent line is not worth it: a
                 * power cycle clears it. This host no longer leaves a chip there when the
                 * ACK to "44 BB" is lost or garbled (an3155.c sends a page list the chip
                 * refuses, then syncs and retries); only a host that stops between that
                 * ACK and the list (killed, unplugged, another tool) still does.
                 * Here and not in an3155_sync(): a resync after a reset must not send
                 * filler to a chip that is still booting into its sync wait. */
                k = an3155_recover(f->proto);
                if (k >= 0)
                        r = 0;
                else if (k != -EHOSTDOWN)
                        r = k;
        }
        if (r < 0)
                return fail_proto(f, r, "sync");
        r = probe_synced(f, ret);
        if (r < 0)
                return r;

        progress(f, FLASHER_STAGE_CONNECTING, 1, 1);
        return 0;
}

int flasher_poll(Flasher *f, unsigned syncs, FlasherChip *ret) {
        int r;

        f->message[0] = 0;
        f->have_chip = false;
        /* Only 0x7F bytes go out before an answer: a chip reset into the bootloader
         * measures its baud on the first byte it hears (facts §4, a G031), so nothing
         * else may come first. */
        r = an3155_sync(f->proto, syncs >= 2 ? 2 : 1);
        if (r < 0)
                return r == -EHOSTDOWN ? r : fail_proto(f, r, "sync");
        return probe_synced(f, ret);
}

/* Probes unless the last probe still stands; need_info: the PID must be known. */
static int ensure_probed(Flasher *f, bool need_info) {
        int r;

        if (!f->have_chip) {
                r = flasher_probe(f, NULL);
                if (r < 0 && !(r == -EOPNOTSUPP && !need_info))
                        return r;
        }
        if (need_info && !f->chip.info)
                return fail(f, -EOPNOTSUPP, "unsupported chip: product ID 0x%03X is not in the chip table",
                            (unsigned) f->chip.pid);
        f->message[0] = 0;
        return 0;
}

static int refuse_protected(Flasher *f) {
        if (f->chip.rdp_level >= 1)
                return fail(f, -EACCES, "chip is read-protected; flash with unprotect to erase it and continue");
        return 0;
}

/* ---- write protection ---- */

/* A set of pages, one bit each: every supported part has at most CHIP_WRP_PAGES_MAX
 * (an L0: 16 KiB of 128-byte pages). */
typedef struct PageSet {
        uint8_t bits[CHIP_WRP_PAGES_MAX / 8];
} PageSet;

static void page_set_add(PageSet *s, uint32_t p) {
        if (p < CHIP_WRP_PAGES_MAX)
                s->bits[p / 8] |= (uint8_t) (1u << (p % 8));
}

static bool page_set_has(const PageSet *s, uint32_t p) {
        return p < CHIP_WRP_PAGES_MAX && (s->bits[p / 8] & (1u << (p % 8)));
}

/* "0-3, 8, 10-11" */
static void page_set_format(const PageSet *s, char *buf, size_t size) {
        size_t k = 0;

        buf[0] = 0;
        for (uint32_t p = 0; p < CHIP_WRP_PAGES_MAX && k < size; p++) {
                uint32_t q = p;

                if (!page_set_has(s, p))
                        continue;
                while (q + 1 < CHIP_WRP_PAGES_MAX && page_set_has(s, q + 1))
                        q++;
                k += (size_t) snprintf(buf + k, size - k, q > p ? "%s%u-%u" : "%s%u", k ? ", " : "",
                                       (unsigned) p, (unsigned) q);
                p = q;
        }
}

/* The pages of touch that the last probe found write-protected, into hit; how many. */
static uint32_t protected_pages_in(const FlasherChip *c, const PageSet *touch, PageSet *hit) {
        uint32_t n = 0;

        *hit = (PageSet) {};
        for (uint32_t p = 0; p < CHIP_WRP_PAGES_MAX; p++)
                if (page_set_has(touch, p) && flasher_chip_page_protected(c, p)) {
                        page_set_add(hit, p);
                        n++;
                }
        return n;
}

/* AN3155 §3.6/3.8: the bootloader skips write-protected pages without an error, so
 * writing there ends in a VerifyFailed at best; refused before anything is erased. */
static int fail_write_protected(Flasher *f, const PageSet *hit, const char *what) {
        char list[200];

        page_set_format(hit, list, sizeof list);
        return fail(f, -EROFS, "page%s %s of the %s %s write-protected (WRP), and the bootloader skips such "
                    "pages without an error. %s; nothing was erased or written",
                    strchr(list, ',') || strchr(list, '-') ? "s" : "", list, f->chip.info->name,
                    strchr(list, ',') || strchr(list, '-') ? "are" : "is", what);
}

static void page_set_all(PageSet *s, const FlasherChip *c) {
        *s = (PageSet) {};
        for (uint32_t p = 0; p < c->flash_size / c->info->page_size; p++)
                page_set_add(s, p);
}

/* ---- erase ---- */

static size_t erase_chunk(const ChipInfo *info) {
        size_t k = info->page_erase_usec > 0 ? ERASE_CHUNK_USEC / info->page_erase_usec : ERASE_CHUNK_MAX;

        return MIN(MAX(k, (size_t) ERASE_CHUNK_MIN), (size_t) ERASE_CHUNK_MAX);
}

static int erase_page_list(Flasher *f, const uint16_t *pages, size_t n, uint64_t *done, uint64_t total) {
        size_t chunk = erase_chunk(f->chip.info);

        for (size_t i = 0; i < n; i += chunk) {
                size_t k = MIN(n - i, chunk);
                int r;

                if (cancelled(f))
                        return fail_cancelled(f, FLASHER_STAGE_ERASING, *done, total);
                r = an3155_erase_pages(f->proto, pages + i, k);
                if (r < 0)
                        return fail_proto(f, r, "Extended Erase of pages %u..%u",
                                          (unsigned) pages[i], (unsigned) pages[i + k - 1]);
                *done += k;
                progress(f, FLASHER_STAGE_ERASING, *done, total);
        }
        return 0;
}

/* The whole flash: Extended Erase 0xFFFF, or every page where there is no mass erase (L0). */
static int erase_all(Flasher *f, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        uint32_t n = f->chip.flash_size / info->page_size;
        uint64_t done = 0;
        int r;

        progress(f, FLASHER_STAGE_ERASING, 0, n);
        if (cancelled(f))
                return fail_cancelled(f, FLASHER_STAGE_ERASING, 0, n);

        if (info->mass_erase) {
                r = an3155_erase_mass(f->proto);
                /* a mass erase with write protection active is refused (AN3155 §3.8) */
                if (r == -EREMOTEIO && f->chip.n_wrp_pages > 0) {
                        PageSet all, hit;

                        page_set_all(&all, &f->chip);
                        (void) protected_pages_in(&f->chip, &all, &hit);
                        return fail_write_protected(f, &hit, "The chip refused the mass erase (NACK)");
                }
                if (r < 0)
                        return fail_proto(f, r, "mass erase");
                if (res)
                        res->pages_erased = UINT32_MAX;
        } else {
                _cleanup_free_ uint16_t *pages = calloc(MAX(n, 1u), sizeof(uint16_t));

                if (!pages)
                        return fail(f, -ENOMEM, "out of memory");
                for (uint32_t i = 0; i < n; i++)
                        pages[i] = i;
                r = erase_page_list(f, pages, n, &done, n);
                if (r < 0)
                        return r;
                if (res)
                        res->pages_erased = n;
        }
        if (res)
                res->mass_erased = true;
        progress(f, FLASHER_STAGE_ERASING, n, n);
        return 0;
}

/* The pages the runs touch, each once, ascending. */
static int erase_runs(Flasher *f, const Run *runs, size_t n_runs, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        _cleanup_free_ uint16_t *pages = NULL;
        size_t n = 0, max = f->chip.flash_size / info->page_size;
        uint64_t done = 0;
        int r;

        pages = calloc(MAX(max, (size_t) 1), sizeof(uint16_t));
        if (!pages)
                return fail(f, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_runs; i++)
                for (uint32_t p = chip_page_of(info, runs[i].start); p <= chip_page_of(info, runs[i].end - 1); p++)
                        if ((n == 0 || pages[n - 1] < p) && n < max)
                                pages[n++] = p;

        /* Every page: one mass erase does the same in one page-erase time (G0: 22 ms
         * instead of 22 ms a page). Pages the image does not touch are never erased. */
        if (n == max && n > 1 && info->mass_erase)
                return erase_all(f, res);

        progress(f, FLASHER_STAGE_ERASING, 0, n);
        r = erase_page_list(f, pages, n, &done, n);
        if (r < 0)
                return r;
        if (res)
                res->pages_erased = n;
        progress(f, FLASHER_STAGE_ERASING, n, n);
        return 0;
}

/* ---- images ---- */

/* Fails -EFBIG when a segment starts in the flash but runs past its end, -ERANGE when
 * one lies elsewhere. */
static int check_image(Flasher *f, const Image *img) {
        uint32_t base = f->chip.info->flash_base, size = f->chip.flash_size;
        uint64_t end = (uint64_t) base + size;
        int r;

        r = image_check_range(img, base, size, NULL);
        if (r == 0)
                return 0;
        if (r != -ERANGE)
                return fail(f, r, "checking the image failed: %s", strerror(-r));

        for (size_t i = 0; i < img->n_segments; i++) {
                const ImageSegment *s = &img->segments[i];
                uint64_t s_end = (uint64_t) s->address + s->size;

                if (s->address >= base && s->address < end && s_end > end)
                        return fail(f, -EFBIG, "image does not fit: it ends at 0x%08" PRIX64 ", the %u KiB flash ends at 0x%08" PRIX64,
                                    s_end - 1, size / 1024, end - 1);
                /* A file linked at 0 (the flash's boot alias): its addresses moved by
                 * the flash base would fit. A raw binary has no link address. */
                if (s->address < base && img->format != IMAGE_FORMAT_BIN &&
                    (uint64_t) img->segments[img->n_segments - 1].address +
                    img->segments[img->n_segments - 1].size <= size)
                        return fail(f, -ERANGE, "image at 0x%08X lies below the flash 0x%08X..0x%08" PRIX64
                                    ": it is linked at 0; relocate it to the flash, e.g. objcopy "
                                    "--change-addresses 0x%08X IN OUT",
                                    s->address, base, end - 1, base);
                if (s->address < base || s->address >= end)
                        return fail(f, -ERANGE, "image at 0x%08X lies outside the flash 0x%08X..0x%08" PRIX64,
                                    s->address, base, end - 1);
        }
        return fail(f, -ERANGE, "image lies outside the flash 0x%08X..0x%08" PRIX64, base, end - 1);
}

/* Merges the segments into runs to program. Each run starts on BLOCK_ALIGN and ends on
 * the write unit; segments whose padded ranges touch share a run (the gap is filled with
 * the erased value), so no write unit is ever programmed twice, and a gap wider than the
 * padding splits the runs, so padding never covers bytes beyond the image's own units. */
static int plan_runs(const Image *img, const ChipInfo *info, Run **ret, size_t *ret_n) {
        _cleanup_free_ Run *runs = NULL;
        size_t n = 0;

        runs = calloc(MAX(img->n_segments, (size_t) 1), sizeof(Run));
        if (!runs)
                return -ENOMEM;
        for (size_t i = 0; i < img->n_segments; i++) {
                const ImageSegment *s = &img->segments[i];
                uint32_t start, end;

                if (s->size == 0)
                        continue;
                start = ALIGN_DOWN(s->address, BLOCK_ALIGN);
                end = (uint32_t) ALIGN_UP((uint64_t) s->address + s->size, info->write_unit);
                if (n > 0 && start <= runs[n - 1].end)
                        runs[n - 1].end = MAX(runs[n - 1].end, end);
                else
                        runs[n++] = (Run) { start, end };
        }
        *ret = TAKE_PTR(runs);
        *ret_n = n;
        return 0;
}

/* The bytes [address, address+n) as they should be programmed: image data where the
 * image has it, the erased value elsewhere. owned (optional) marks image bytes. */
static void fill_range(const Image *img, uint32_t address, size_t n, uint8_t erased, uint8_t *buf, bool *owned) {
        uint64_t end = (uint64_t) address + n;

        memset(buf, erased, n);
        if (owned)
                memset(owned, 0, n * sizeof(bool));
        for (size_t i = 0; i < img->n_segments; i++) {
                const ImageSegment *s = &img->segments[i];
                uint64_t a = MAX((uint64_t) s->address, (uint64_t) address);
                uint64_t b = MIN((uint64_t) s->address + s->size, end);

                if ((uint64_t) s->address >= end)
                        break;          /* sorted */
                if (a >= b)
                        continue;
                memcpy(buf + (a - address), s->data + (a - s->address), b - a);
                if (owned)
                        for (uint64_t k = a; k < b; k++)
                                owned[k - address] = true;
        }
}

static uint64_t runs_bytes(const Run *runs, size_t n) {
        uint64_t t = 0;

        for (size_t i = 0; i < n; i++)
                t += runs[i].end - runs[i].start;
        return t;
}

/* How many bytes of [a, b) the runs cover. */
static uint64_t runs_overlap(const Run *runs, size_t n, uint32_t a, uint32_t b) {
        uint64_t t = 0;

        for (size_t i = 0; i < n; i++)
                if (runs[i].start < b && runs[i].end > a)
                        t += MIN(runs[i].end, b) - MAX(runs[i].start, a);
        return t;
}

/* ---- keeping the rest of a page ----
 *
 * The erase unit is a page (chips.c: L0 128 bytes, F0 1 KiB, C0/G0 2 KiB), so an image
 * that starts or ends inside a page would erase its neighbours with it (a vector table
 * in the case that made this). Before an erase=auto erase, the bytes of each touched
 * page that the image does not cover are read (a Read Memory changes nothing on the
 * chip, AN3155 §3.4), and written back with the image: the pages end as they were
 * except where the image says otherwise. Bytes that read erased need no writing, and
 * are not counted as kept (an erase would have left them so). */
typedef struct Keep {
        Image write;            /* the image plus the kept bytes that are not erased */
        Image check;            /* every byte of the touched pages, as they must end */
        uint8_t *flash;         /* their contents, indexed from the flash base */
        uint64_t read;          /* bytes read to keep them */
        uint64_t bytes;         /* of those, the ones that held data (not erased) */
} Keep;

static void keep_done(Keep *k) {
        free(k->write.segments);
        free(k->check.segments);
        free(k->flash);
        *k = (Keep) {};
}

/* Segments over the bytes of [start, end) (a page range) whose mask is set, into segs
 * (NULL: only counted); how many. */
static size_t mask_segments(const Keep *k, uint32_t base, uint32_t start, uint32_t end, const bool *mask,
                            ImageSegment *segs) {
        size_t n = 0;

        for (uint32_t a = start; a < end; a++) {
                uint32_t b = a;

                if (!mask[a - base])
                        continue;
                while (b < end && mask[b - base])
                        b++;
                if (segs)
                        segs[n] = (ImageSegment) { .address = a, .size = b - a, .data = k->flash + (a - base) };
                n++;
                a = b;
        }
        return n;
}

/* Bytes the host keeps (a page's rest that goes back into the flash, a UID that goes
 * into the results log) must not be what a glitch made of them: Read Memory data has
 * no checksum (AN3155 §3.4), and a kept byte garbled on the way in would be written
 * back wrong and then verified as right. A Read Memory changes nothing on the chip, so
 * it is read twice, and when the two differ a third time, which must agree with one of
 * them; -EILSEQ (no message: the caller says what it read) when it does not. */
#define STABLE_READS 3u
static int read_stable(Flasher *f, uint32_t address, uint8_t *buf, size_t n) {
        uint8_t second[READ_CHUNK], third[READ_CHUNK];
        int r;

        assert(n <= sizeof second);
        r = transfer_block(f, false, address, buf, n, NULL);
        if (r >= 0)
                r = transfer_block(f, false, address, second, n, NULL);
        if (r < 0 || memcmp(buf, second, n) == 0)
                return r;
        r = transfer_block(f, false, address, third, n, NULL);
        if (r < 0)
                return r;
        if (memcmp(third, buf, n) != 0 && memcmp(third, second, n) != 0)
                return -EILSEQ;
        memcpy(buf, third, n);
        return 0;
}

/* Reads what the image leaves of the pages the runs touch and builds k. A chip that
 * refuses the read (read protection the probe could not see) is refused before anything
 * is erased: its neighbours cannot be kept. */
static int keep_pages(Flasher *f, const Image *img, const Run *runs, size_t n_runs, Keep *k) {
        const ChipInfo *info = f->chip.info;
        uint32_t base = info->flash_base, size = f->chip.flash_size, ps = info->page_size;
        _cleanup_free_ bool *touched = NULL, *owned = NULL, *want_write = NULL, *want_check = NULL;
        size_t nw, nc;
        int r;

        *k = (Keep) {};
        touched = calloc(size / ps, sizeof(bool));
        owned = calloc(size, sizeof(bool));
        want_write = calloc(size, sizeof(bool));
        want_check = calloc(size, sizeof(bool));
        k->flash = malloc(size);
        if (!touched || !owned || !want_write || !want_check || !k->flash)
                return fail(f, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_runs; i++)
                for (uint32_t p = chip_page_of(info, runs[i].start); p <= chip_page_of(info, runs[i].end - 1); p++)
                        touched[p] = true;

        for (uint32_t p = 0; p < size / ps; p++) {
                uint32_t p0 = base + p * ps, off = p * ps;

                if (!touched[p])
                        continue;
                fill_range(img, p0, ps, info->erased, k->flash + off, owned + off);
                for (uint32_t a = 0; a < ps; ) {
                        uint32_t b = a, n;

                        if (owned[off + a]) {
                                a++;
                                continue;
                        }
                        while (b < ps && !owned[off + b] && b - a < READ_CHUNK)
                                b++;
                        n = b - a;
                        if (cancelled(f))
                                return fail(f, -ECANCELED, "cancelled while reading the rest of page %u to keep it", p);
                        r = read_stable(f, p0 + a, k->flash + off + a, n);
                        if (r == -EILSEQ)
                                return fail(f, r, "%u reads of the %u bytes at 0x%08X, to keep them, gave different bytes "
                                            "each time: the line is not reliable (check the wiring, or try a lower baud "
                                            "rate); nothing was erased", STABLE_READS, n, p0 + a);
                        if (is_nack_after_command(f, r)) {
                                (void) link_flush_input(f->link);       /* a second NACK, see probe_synced() */
                                return fail(f, -EACCES, "the image covers only part of page %u (0x%08X..0x%08X), and the chip "
                                            "refuses to read the rest (read protection?), so it cannot be kept: "
                                            "nothing was erased. Flash an image that covers whole pages, or with "
                                            "erase=mass to give up what the chip holds", p, p0, p0 + ps - 1);
                        }
                        if (r < 0)
                                return r;
                        k->read += n;
                        a = b;
                }
                for (uint32_t i = off; i < off + ps; i++) {
                        want_check[i] = true;
                        want_write[i] = owned[i] || k->flash[i] != info->erased;
                        k->bytes += !owned[i] && k->flash[i] != info->erased;
                }
        }

        nw = mask_segments(k, base, base, base + size, want_write, NULL);
        nc = mask_segments(k, base, base, base + size, want_check, NULL);
        k->write.segments = calloc(MAX(nw, (size_t) 1), sizeof(ImageSegment));
        k->check.segments = calloc(MAX(nc, (size_t) 1), sizeof(ImageSegment));
        if (!k->write.segments || !k->check.segments)
                return fail(f, -ENOMEM, "out of memory");
        k->write.n_segments = mask_segments(k, base, base, base + size, want_write, k->write.segments);
        k->check.n_segments = mask_segments(k, base, base, base + size, want_check, k->check.segments);
        return 0;
}

/* Blocks are cut at 256-byte boundaries: each starts 8-aligned and is as long as a
 * Write Memory allows (AN3155: 256 bytes on every part). L0 too: its 128-byte page is
 * the erase unit, not a write limit, and stm32flash writes 256-byte blocks to L0 parts;
 * the chip table's 128 (write_block) is stm32loader's cautious choice and costs one more
 * command, three more replies, per 256 bytes. Not yet checked on a real 0x457. */
static int write_runs(Flasher *f, const Image *img, const Run *runs, size_t n_runs,
                      const Run *counted, size_t n_counted, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        uint64_t total = runs_bytes(runs, n_runs), done = 0;
        uint8_t buf[AN3155_MAX_BLOCK];
        int r;

        progress(f, FLASHER_STAGE_WRITING, 0, total);
        for (size_t i = 0; i < n_runs; i++)
                for (uint32_t a = runs[i].start, b; a < runs[i].end; a = b) {
                        unsigned tries;

                        b = (uint32_t) MIN((uint64_t) runs[i].end, (uint64_t) ALIGN_DOWN(a, WRITE_CHUNK) + WRITE_CHUNK);
                        if (cancelled(f))
                                return fail_cancelled(f, FLASHER_STAGE_WRITING, done, total);
                        fill_range(img, a, b - a, info->erased, buf, NULL);
                        r = transfer_block(f, true, a, buf, b - a, &tries);
                        if (r < 0)
                                return r;
                        if (tries > 1)
                                res->write_retries++;
                        done += b - a;
                        res->bytes_written += runs_overlap(counted, n_counted, a, b);
                        progress(f, FLASHER_STAGE_WRITING, done, total);
                }
        progress(f, FLASHER_STAGE_WRITING, total, total);
        return 0;
}

/* Reads back every run and compares the image's bytes; counted: the runs that make
 * bytes_verified (the image's own, not the kept bytes around it). */
static int verify_runs(Flasher *f, const Image *img, const Run *runs, size_t n_runs,
                       const Run *counted, size_t n_counted, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        uint64_t total = runs_bytes(runs, n_runs), done = 0;
        uint8_t got[READ_CHUNK], want[READ_CHUNK];
        bool owned[READ_CHUNK];
        int r;

        progress(f, FLASHER_STAGE_VERIFYING, 0, total);
        for (size_t i = 0; i < n_runs; i++)
                for (uint32_t a = runs[i].start, b; a < runs[i].end; a = b) {
                        b = (uint32_t) MIN((uint64_t) runs[i].end, (uint64_t) ALIGN_DOWN(a, READ_CHUNK) + READ_CHUNK);
                        if (cancelled(f))
                                return fail_cancelled(f, FLASHER_STAGE_VERIFYING, done, total);
                        fill_range(img, a, b - a, info->erased, want, owned);
                        /* A mismatch is read once more before it is believed: Read Memory
                         * data has no checksum (AN3155 §3.4), a glitch the parity check
                         * missed garbles one read, a wrong cell every read. */
                        for (unsigned pass = 0;; pass++) {
                                uint32_t bad = UINT32_MAX;

                                r = transfer_block(f, false, a, got, b - a, NULL);
                                if (r < 0)
                                        return r;
                                for (uint32_t k = 0; k < b - a && bad == UINT32_MAX; k++)
                                        if (owned[k] && got[k] != want[k])
                                                bad = k;
                                if (bad == UINT32_MAX)
                                        break;
                                if (pass > 0)
                                        return fail(f, -EILSEQ, "verify failed at 0x%08X: read 0x%02X, expected 0x%02X "
                                                    "(read twice)", a + bad, got[bad], want[bad]);
                        }
                        done += b - a;
                        res->bytes_verified += runs_overlap(counted, n_counted, a, b);
                        progress(f, FLASHER_STAGE_VERIFYING, done, total);
                }
        progress(f, FLASHER_STAGE_VERIFYING, total, total);
        return 0;
}

/* ---- protection, option bytes, go ---- */

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) le16(p) | (uint32_t) le16(p + 2) << 16;
}

static bool word_erased_ff(const uint8_t w[4]) {
        return w[0] == 0xFF && w[1] == 0xFF && w[2] == 0xFF && w[3] == 0xFF;
}

/* Whether the first flash word reads erased: the C0/G0 EMPTY flag latched at the next
 * option-byte load (AN5096 §3, "Empty check"). */
static int first_word_empty(Flasher *f, bool *ret) {
        uint8_t w[4];
        int r;

        r = transfer_block(f, false, f->chip.info->flash_base, w, sizeof(w), NULL);
        if (r < 0)
                return r;
        *ret = word_erased_ff(w);
        return 0;
}

/* Whether the first flash word reads erased once a job has written img (NULL: nothing)
 * after erasing page 0 or not: the image's bytes where it has them; elsewhere erased
 * when page 0 is erased, else what the flash holds now. */
static int first_word_empty_after(Flasher *f, const Image *img, bool page0_erased, bool *ret) {
        const ChipInfo *info = f->chip.info;
        bool owned[4] = {};
        uint8_t w[4], now[4];
        int r;

        memset(w, info->erased, sizeof w);
        if (img)
                fill_range(img, info->flash_base, sizeof w, info->erased, w, owned);
        if (!page0_erased && !(owned[0] && owned[1] && owned[2] && owned[3])) {
                r = transfer_block(f, false, info->flash_base, now, sizeof now, NULL);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < sizeof w; k++)
                        if (!owned[k])
                                w[k] = now[k];
        }
        *ret = word_erased_ff(w);
        return 0;
}

/* The last command failed after the chip had all it needed to start programming option
 * bytes (a Write Memory frame sent, or the first ACK of a protect command received): it
 * may be programming them now. */
static bool may_be_programming(Flasher *f) {
        const An3155Status *st = an3155_last_status(f->proto);

        return st && st->step && (strcmp(st->step, "data") == 0 || strcmp(st->step, "second ACK") == 0);
}

/* After a lost, garbled or refused reply to a command that programs option bytes, the
 * host sends nothing and ends no job until that programming is certainly over: the next
 * job's entry sequence (or the DTR/RTS a port raises on open, on an auto-reset circuit)
 * would reset the chip, and RM0444 warns that an interrupted option-byte programming can
 * lock it for good (RM0444 Rev 5 p.90). The bound is the second-ACK timeout of the protect
 * commands (2 s by default), against a page erase of 40 ms at most (G031, DS12992). */
static void wait_option_programming(Flasher *f, uint64_t started_usec) {
        An3155Timeouts t;
        uint64_t now = now_usec();

        an3155_get_timeouts(f->proto, &t);
        if (now < started_usec + t.option_usec)
                sleep_usec(started_usec + t.option_usec - now);
}

/* A command that programs option bytes and resets the chip (Readout Protect, Write
 * Unprotect). After a failure once the chip had it all, nothing more until that
 * programming is certainly over. The chip is not ours any more either way. */
static int option_command(Flasher *f, int (*cmd)(An3155 *p), const char *what) {
        uint64_t t0 = now_usec();
        int r;

        r = cmd(f->proto);
        f->have_chip = false;
        if (r < 0) {
                if (may_be_programming(f))
                        wait_option_programming(f, t0);
                return fail_proto(f, r, "%s", what);
        }
        return 0;
}

/* Refuses (-ENOLINK) an end state without a way back into the bootloader over UART: no
 * BOOT0 level at reset starts it (chip_bootloader_reachable() with the option bytes ob
 * and the first flash word as the job leaves them), e.g. a C0/G0 with nBOOT_SEL = 1,
 * nBOOT0 = 1 and code at the flash base: only a debugger would get back in. protect:
 * the job also sets read protection level 1; what: how to avoid it. */
static int check_way_back(Flasher *f, const uint8_t *ob, bool empty, bool protect, bool force, const char *what) {
        const ChipInfo *info = f->chip.info;
        char why[96];

        if (force || chip_bootloader_reachable(info, ob, empty))
                return 0;
        if (info->ob_layout == CHIP_OB_G0) {
                uint32_t optr = chip_optr(info, ob);

                snprintf(why, sizeof why, "OPTR 0x%08X: nBOOT_SEL=%u nBOOT0=%u nBOOT1=%u", optr,
                         (unsigned) (optr >> 24) & 1, (unsigned) (optr >> 26) & 1, (unsigned) (optr >> 25) & 1);
        } else
                snprintf(why, sizeof why, "option bytes 0x%08X", chip_optr(info, ob));
        return fail(f, -ENOLINK,
                    "after this job the %s would start its code at every reset whatever BOOT0 says (%s, %s at 0x%08X%s): "
                    "nothing but a debugger could bring back the bootloader. %s, or pass force to accept that; nothing was written",
                    info->name, why, empty ? "erased word" : "code", info->flash_base,
                    protect ? ", read protection level 1" : "", what);
}

/* check_way_back() for a flash of img with options o; page0_erased: the job erases page
 * 0 (mass erase, or the runs start there). */
static int check_flash_way_back(Flasher *f, const Image *img, const FlasherFlashOptions *o, bool page0_erased) {
        const ChipInfo *info = f->chip.info;
        uint8_t ob[sizeof(f->chip.option_bytes)];
        bool empty;
        int r;

        if (!f->chip.have_option_bytes)
                return 0;       /* not readable on this bootloader: nothing to decide from */
        memcpy(ob, f->chip.option_bytes, info->ob_size);
        if (o->boot0 && info->boot_rule == CHIP_BOOT_NBOOT_SEL)
                (void) chip_ob_enable_boot0(info, ob);
        r = first_word_empty_after(f, img, page0_erased, &empty);
        if (r < 0)
                return r;
        return check_way_back(f, ob, empty, o->protect, o->force,
                              o->boot0 || info->boot_rule != CHIP_BOOT_NBOOT_SEL ? "Change the option bytes with a debugger"
                              : "Flash with boot0 (the default: it clears nBOOT_SEL, so BOOT0 high at reset starts the bootloader)");
}

/* After a command that reset the chip into the bootloader: r, the resync's outcome, and
 * then the probe of what came back. */
static int probe_after_reset(Flasher *f, int r, const char *what) {
        if (r < 0)
                return fail_proto(f, r == -EHOSTDOWN ? -ETIMEDOUT : r,
                                  "the resync after %s (the chip did not come back into the bootloader)", what);
        return probe_synced(f, NULL);
}

/* Readout Unprotect: the chip mass-erases, resets and (its flash empty, or BOOT0 high)
 * comes back into the bootloader after about a mass-erase time (AN3155 §3.12). */
static int do_unprotect(Flasher *f) {
        const ChipInfo *info = f->chip.info;
        int r;

        progress(f, FLASHER_STAGE_UNPROTECTING, 0, 1);
        r = an3155_readout_unprotect(f->proto);
        if (r < 0)
                return fail_proto(f, r, "Readout Unprotect");
        f->have_chip = false;

        r = an3155_resync(f->proto, reset_usec(f) + info->mass_erase_usec, RESYNC_ATTEMPTS);
        r = probe_after_reset(f, r, "Readout Unprotect");
        if (r < 0)
                return r;
        if (f->chip.rdp_level != 0)
                return fail(f, -EACCES, "chip is still read-protected after Readout Unprotect");
        progress(f, FLASHER_STAGE_UNPROTECTING, 1, 1);
        return 0;
}

/* Write Unprotect (0x73): ACK, the chip clears write protection for the whole flash,
 * ACK, and resets (AN3155 §3.10; an option-byte load on C0/G0/L0). It must come back
 * into the bootloader to go on, which its boot configuration decides (BOOT0 assumed
 * high, as for every reset the flasher causes): checked before anything is sent. What
 * the C0/G0 ROM writes into WRP1AR/WRP1BR for it is not documented [U]: the chip is
 * probed again and the pages checked once more, never assumed free. */
static int do_write_unprotect(Flasher *f, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        bool empty = false;
        int r;

        if (info->boot_rule == CHIP_BOOT_NBOOT_SEL) {
                r = first_word_empty(f, &empty);
                if (r < 0)
                        return r;
        }
        if (!chip_boots_bootloader(info, f->chip.option_bytes, true, empty))
                return fail(f, -EROFS, "the %s is write-protected, and lifting that resets it into its code instead of the "
                            "bootloader (nBOOT_SEL = 1, code in flash): clear write protection or nBOOT_SEL with a debugger; "
                            "nothing was erased or written", info->name);

        progress(f, FLASHER_STAGE_UNPROTECTING, 0, 1);
        r = option_command(f, an3155_write_unprotect, "Write Unprotect");
        if (r < 0)
                return r;
        r = probe_after_reset(f, resync_after_reset(f), "Write Unprotect");
        if (r < 0)
                return r;
        res->write_unprotected = true;
        progress(f, FLASHER_STAGE_UNPROTECTING, 1, 1);
        return 0;
}

/* Readout Protect: the chip resets. It comes back into the bootloader only when its
 * boot configuration says so (BOOT0 assumed high, see options_boot0); a C0/G0 with
 * nBOOT_SEL = 1 and programmed flash runs the user code instead (allowed only with
 * force, see check_way_back()), which is not an error. */
static int do_protect(Flasher *f) {
        const ChipInfo *info = f->chip.info;
        uint8_t ob[sizeof(f->chip.option_bytes)];
        bool empty = false, back;
        int r;

        progress(f, FLASHER_STAGE_PROTECTING, 0, 1);
        if (f->chip.have_option_bytes)
                memcpy(ob, f->chip.option_bytes, info->ob_size);
        else
                memcpy(ob, info->ob_factory, info->ob_size);
        if (info->boot_rule == CHIP_BOOT_NBOOT_SEL) {
                r = first_word_empty(f, &empty);
                if (r < 0)
                        return r;
        }
        back = chip_boots_bootloader(info, ob, true, empty);

        r = option_command(f, an3155_readout_protect, "Readout Protect");
        if (r < 0)
                return r;

        if (back && an3155_resync(f->proto, reset_usec(f), SYNC_ATTEMPTS) >= 0)
                (void) probe_synced(f, NULL);
        f->message[0] = 0;
        progress(f, FLASHER_STAGE_PROTECTING, 1, 1);
        return 0;
}

/* The option-byte area as the chip holds it: the probe's copy (nothing since changed an
 * option byte: a Readout or Write Unprotect probes again), else read now. */
static int current_option_bytes(Flasher *f, uint8_t *ob) {
        const ChipInfo *info = f->chip.info;

        if (f->chip.have_option_bytes && f->chip.option_bytes_size == info->ob_size) {
                memcpy(ob, f->chip.option_bytes, info->ob_size);
                return 0;
        }
        return transfer_block(f, false, info->ob_base, ob, info->ob_size, NULL);
}

/* After a write of the OPTR form want: OPTR and its complement as written and every
 * other byte of the area as before. Else -ENOTRECOVERABLE naming what changed. */
static int check_option_bytes(Flasher *f, const uint8_t *before, const uint8_t *want, const uint8_t *after) {
        const ChipInfo *info = f->chip.info;
        char changes[320] = "";
        unsigned n = 0;
        size_t k = 0;

        for (uint32_t off = 0; off + 8 <= info->ob_size; off += 8) {
                const uint8_t *expect = off == 0 ? want : before + off;

                if (memcmp(after + off, expect, 8) == 0)
                        continue;
                if (n++ < 3 && k < sizeof changes)
                        k += (size_t) snprintf(changes + k, sizeof changes - k,
                                               "%s%s (+0x%02X) reads 0x%08X/0x%08X, expected 0x%08X/0x%08X", k ? "; " : "",
                                               chip_ob_field_name(info, off), off, le32(after + off), le32(after + off + 4),
                                               le32(expect), le32(expect + 4));
        }
        if (n == 0)
                return 0;
        if (n > 3 && k < sizeof changes)
                snprintf(changes + k, sizeof changes - k, "; and %u more", n - 3);
        return fail(f, -ENOTRECOVERABLE, "the option bytes read back other than written: %s. Check the chip with a debugger "
                    "before anything else; nothing more was written", changes);
}

/* C0/G0: clear nBOOT_SEL so that the BOOT0 pin brings the bootloader back later (the
 * factory setting ignores the pin, and once the flash holds code the empty check no
 * longer helps). Only the form proven on silicon is written: 8 bytes at the area's base,
 * OPTR and its complement (stm32isp's enablebootpin; what the ROM does with more is
 * unknown), and only when nBOOT_SEL is 1. The option-byte load that follows is a reset;
 * after it the whole area is read again: OPTR as written, the rest unchanged, or the job
 * fails (OptionBytesMismatch) and writes nothing more.
 *
 * Whether the chip then comes back into the bootloader depends on the BOOT0 pin, which
 * the host cannot read. We assume it is high: the chip is in the bootloader now, and
 * the boards this serves reach it through BOOT0 (a jumper or the DTR/RTS entry
 * sequence holding it high). The one way to be here with BOOT0 low is the empty-flash
 * rule on a blank factory part; then the chip starts the new code instead and the
 * resync fails. That is harmless unless a later step (protect, go) needs the
 * bootloader, so only then is it an error; the option bytes then stay unread. */
static int options_boot0(Flasher *f, const Image *img, bool need_bootloader, FlasherResult *res) {
        const ChipInfo *info = f->chip.info;
        uint8_t before[sizeof(f->chip.option_bytes)], after[sizeof(f->chip.option_bytes)];
        uint8_t want[CHIP_OB_OPTR_FORM_SIZE], w[4];
        bool empty, owned[4], lost = false;
        uint64_t t0;
        int r, wr;

        progress(f, FLASHER_STAGE_OPTIONS, 0, 1);
        r = current_option_bytes(f, before);
        if (r < 0)
                return r;
        memcpy(want, before, sizeof want);
        r = chip_ob_enable_boot0(info, want);
        if (r == -EBADMSG)
                return fail(f, -ENOTRECOVERABLE, "OPTR 0x%08X and its complement word 0x%08X do not match: the chip "
                            "did not load what its option bytes hold. Check it with a debugger; the option bytes were "
                            "not written", le32(before), le32(before + 4));
        if (r < 0)
                return fail(f, r, "cannot enable the BOOT0 pin on %s", info->name);
        if (r == 0)
                goto done;      /* nBOOT_SEL is 0 already: no option-byte programming */

        /* The first flash word: the image's own when it has all four bytes (they were
         * written, and verified when asked), else read it. */
        fill_range(img, info->flash_base, sizeof(w), info->erased, w, owned);
        if (owned[0] && owned[1] && owned[2] && owned[3])
                empty = word_erased_ff(w);
        else {
                r = first_word_empty(f, &empty);
                if (r < 0)
                        return r;
        }

        t0 = now_usec();
        wr = an3155_write_memory(f->proto, info->ob_base, want, sizeof want);
        if (wr < 0) {
                if (wr == -EPERM || !may_be_programming(f))
                        return fail_proto(f, wr, "Write Memory of the option bytes at 0x%08X", info->ob_base);
                /* The frame went out, and its reply was lost, garbled or a NACK: the chip
                 * may be programming, or be done and have reset. Nothing is sent until
                 * that is certainly over; then only a sync (0x7F), to find out. */
                lost = true;
                wait_option_programming(f, t0);
        }
        f->have_chip = false;

        /* the area as it loads now: the new OPTR pair, the rest as it was */
        memcpy(after, before, info->ob_size);
        memcpy(after, want, sizeof want);
        if (!lost && !chip_boots_bootloader(info, after, true, empty)) {
                if (need_bootloader)
                        return fail(f, -EHOSTDOWN, "the new option bytes do not boot the bootloader");
                res->boot0_changed = true;
                goto done;
        }
        r = lost ? an3155_sync(f->proto, RESYNC_ATTEMPTS) : resync_after_reset(f);
        if (r < 0) {
                if (lost)
                        return fail_proto(f, wr, "Write Memory of the option bytes at 0x%08X, and no bootloader answered "
                                          "after it: whether they changed is unknown; probe the chip with BOOT0 high to see",
                                          info->ob_base);
                /* silence: BOOT0 low, the chip runs its code (see above); anything else,
                 * an adapter that went away included, leaves the option bytes unread */
                if (r != -EHOSTDOWN)
                        return fail_proto(f, r, "the resync after the option-byte write (the option bytes were "
                                          "not read back)");
                if (need_bootloader)
                        return fail_proto(f, -ETIMEDOUT, "the resync after the option-byte write (is BOOT0 high?)");
                res->boot0_changed = true;
                goto done;
        }
        /* The same chip came back: read the whole area again. */
        r = transfer_block(f, false, info->ob_base, after, info->ob_size, NULL);
        if (r < 0) {
                if (is_nack_after_command(f, r))
                        return fail(f, -ENOTRECOVERABLE, "the option bytes can no longer be read after writing OPTR "
                                    "0x%08X (read protection?). Check the chip with a debugger before anything else; "
                                    "nothing more was written", le32(want));
                return r;
        }
        if (lost && memcmp(after, before, info->ob_size) == 0)
                return fail_proto(f, wr, "Write Memory of the option bytes at 0x%08X (they read back unchanged: nothing "
                                  "was programmed; flash again)", info->ob_base);
        r = check_option_bytes(f, before, want, after);
        if (r < 0)
                return r;
        res->boot0_changed = true;
        memcpy(f->chip.option_bytes, after, info->ob_size);
        f->chip.option_bytes_size = info->ob_size;
        f->chip.have_option_bytes = true;
        f->chip.rdp_level = chip_rdp_level(info, after);
        f->chip.optr = chip_optr(info, after);
        f->chip.n_wrp_pages = (uint32_t) chip_wrp_pages(info, after, f->chip.flash_size, f->chip.wrp_pages);
        f->have_chip = true;

done:
        f->message[0] = 0;
        progress(f, FLASHER_STAGE_OPTIONS, 1, 1);
        return 0;
}

static int do_go(Flasher *f, uint32_t address) {
        int r;

        if (address == 0)
                address = f->chip.info->flash_base;
        progress(f, FLASHER_STAGE_STARTING, 0, 1);
        r = an3155_go(f->proto, address);
        if (r < 0)
                return fail_proto(f, r, "Go to 0x%08X", address);
        f->have_chip = false;   /* the bootloader is gone */
        progress(f, FLASHER_STAGE_STARTING, 1, 1);
        return 0;
}

/* ---- operations ---- */

static int do_flash(Flasher *f, const Image *img, const FlasherFlashOptions *o, FlasherResult *res) {
        _cleanup_free_ Run *runs = NULL, *wruns = NULL, *vruns = NULL;
        _cleanup_(keep_done) Keep keep = {};
        const Image *wimg = img, *vimg = img;
        const Run *wr, *vr;
        PageSet touch = {}, hit;
        size_t n_runs = 0, n_wr, n_vr;
        bool erased_all = false, page0_erased;
        int r;

        if (!img || img->n_segments == 0 || image_size(img) == 0)
                return fail(f, -EINVAL, "the image is empty");
        if (o->protect && o->go)
                return fail(f, -EINVAL, "protect and go cannot be combined: the bootloader refuses Go on a read-protected chip");
        if ((unsigned) o->erase > FLASHER_ERASE_NONE)
                return fail(f, -EINVAL, "unknown erase mode %d", (int) o->erase);

        r = ensure_probed(f, true);
        if (r < 0)
                return r;
        /* nothing beyond the probe touches the chip before the image is known to fit */
        r = check_image(f, img);
        if (r < 0)
                return r;
        r = plan_runs(img, f->chip.info, &runs, &n_runs);
        if (r < 0)
                return fail(f, r, "out of memory");

        if (f->chip.rdp_level >= 1 && !o->unprotect)
                return refuse_protected(f);
        /* Nothing is written before the end state is known to leave a way back into the
         * bootloader (a read-protected chip's option bytes are read after its Readout
         * Unprotect, which leaves it blank: the check follows it). */
        /* erase=auto keeps what the image does not cover of page 0 (keep_pages()) */
        page0_erased = o->erase == FLASHER_ERASE_MASS;
        if (f->chip.rdp_level < 1) {
                r = check_flash_way_back(f, img, o, page0_erased);
                if (r < 0)
                        return r;
        } else {
                r = do_unprotect(f);
                if (r < 0)
                        return r;
                res->unprotected = true;
                /* the RDP 1 -> 0 regression mass-erased the flash */
                res->mass_erased = true;
                res->pages_erased = UINT32_MAX;
                erased_all = true;
                r = check_flash_way_back(f, img, o, true);
                if (r < 0)
                        return r;
        }

        /* Write protection: the pages this job erases or writes must be free of it
         * before anything is erased. */
        if (o->erase == FLASHER_ERASE_MASS && !erased_all)
                page_set_all(&touch, &f->chip);
        else
                for (size_t i = 0; i < n_runs; i++)
                        for (uint32_t p = chip_page_of(f->chip.info, runs[i].start);
                             p <= chip_page_of(f->chip.info, runs[i].end - 1); p++)
                                page_set_add(&touch, p);
        if (protected_pages_in(&f->chip, &touch, &hit) > 0) {
                if (!o->unprotect)
                        return fail_write_protected(f, &hit, "Flash with unprotect to lift write protection first");
                r = do_write_unprotect(f, res);
                if (r < 0)
                        return r;
                if (protected_pages_in(&f->chip, &touch, &hit) > 0)
                        return fail_write_protected(f, &hit, "Write Unprotect did not clear it: check the chip with a debugger");
        }

        /* What the image leaves of its pages is read before they are erased, and
         * written back and verified with it. */
        wr = vr = runs;
        n_wr = n_vr = n_runs;
        if (!erased_all && o->erase == FLASHER_ERASE_AUTO) {
                r = keep_pages(f, img, runs, n_runs, &keep);
                if (r < 0)
                        return r;
                if (keep.read > 0) {
                        wimg = &keep.write;
                        vimg = &keep.check;
                        if (plan_runs(wimg, f->chip.info, &wruns, &n_wr) < 0 ||
                            plan_runs(vimg, f->chip.info, &vruns, &n_vr) < 0)
                                return fail(f, -ENOMEM, "out of memory");
                        wr = wruns;
                        vr = vruns;
                }
        }

        if (!erased_all && o->erase == FLASHER_ERASE_MASS)
                r = erase_all(f, res);
        else if (!erased_all && o->erase == FLASHER_ERASE_AUTO)
                r = erase_runs(f, runs, n_runs, res);
        if (r < 0)
                return r;

        r = write_runs(f, wimg, wr, n_wr, runs, n_runs, res);
        if (r < 0)
                return r;

        if (o->verify) {
                r = verify_runs(f, vimg, vr, n_vr, runs, n_runs, res);
                if (r < 0)
                        return r;
        }
        res->preserved_bytes = keep.bytes;

        if (o->boot0 && f->chip.info->boot_rule == CHIP_BOOT_NBOOT_SEL) {
                r = options_boot0(f, img, o->protect || o->go, res);
                if (r < 0)
                        return r;
        }

        if (o->protect) {
                r = do_protect(f);
                if (r < 0)
                        return r;
                res->protected_ = true;
        } else if (o->go) {
                r = do_go(f, o->go_address);
                if (r < 0)
                        return r;
                res->started = true;
        }
        return 0;
}

int flasher_flash(Flasher *f, const Image *img, const FlasherFlashOptions *opts, FlasherResult *ret) {
        FlasherFlashOptions defaults;
        FlasherResult res = {};
        uint64_t t0 = now_usec();
        int r;

        f->message[0] = 0;
        if (!opts) {
                flasher_flash_options_init(&defaults);
                opts = &defaults;
        }
        r = do_flash(f, img, opts, &res);
        res.duration_usec = now_usec() - t0;
        if (ret)
                *ret = res;
        if (r >= 0)
                f->message[0] = 0;
        return r;
}

int flasher_erase(Flasher *f, FlasherErase mode, uint32_t address, uint32_t length) {
        const ChipInfo *info;
        PageSet touch = {}, hit;
        uint64_t end;
        Run run;
        int r;

        f->message[0] = 0;
        if ((unsigned) mode > FLASHER_ERASE_NONE)
                return fail(f, -EINVAL, "unknown erase mode %d", (int) mode);
        r = ensure_probed(f, true);
        if (r < 0)
                return r;
        r = refuse_protected(f);
        if (r < 0)
                return r;
        info = f->chip.info;

        switch (mode) {
        case FLASHER_ERASE_NONE:
                return 0;
        case FLASHER_ERASE_MASS:
                page_set_all(&touch, &f->chip);
                if (protected_pages_in(&f->chip, &touch, &hit) > 0)
                        return fail_write_protected(f, &hit, "Lift write protection first (a flash with unprotect does)");
                return erase_all(f, NULL);
        case FLASHER_ERASE_AUTO:
                break;
        }
        if (length == 0)
                return 0;
        end = (uint64_t) address + length;
        if (address < info->flash_base || end > (uint64_t) info->flash_base + f->chip.flash_size)
                return fail(f, -ERANGE, "0x%08X..0x%08" PRIX64 " lies outside the flash 0x%08X..0x%08X",
                            address, end - 1, info->flash_base, info->flash_base + f->chip.flash_size - 1);
        for (uint32_t p = chip_page_of(info, address); p <= chip_page_of(info, (uint32_t) (end - 1)); p++)
                page_set_add(&touch, p);
        if (protected_pages_in(&f->chip, &touch, &hit) > 0)
                return fail_write_protected(f, &hit, "Lift write protection first (a flash with unprotect does)");
        run = (Run) { address, (uint32_t) end };
        return erase_runs(f, &run, 1, NULL);
}

int flasher_read(Flasher *f, uint32_t address, void *buf, size_t length) {
        uint64_t done = 0;
        int r;

        f->message[0] = 0;
        if (!buf && length > 0)
                return fail(f, -EINVAL, "no buffer");
        if ((uint64_t) address + length > UINT64_C(0x100000000))
                return fail(f, -EINVAL, "0x%08X + %zu runs past the end of the address space", address, length);
        r = ensure_probed(f, false);
        if (r < 0)
                return r;
        r = refuse_protected(f);
        if (r < 0)
                return fail(f, r, "chip is read-protected; unlock it first (that erases the flash)");
        /* A range that starts in the flash and runs past its end is a wrong length (what
         * follows is reserved, the bootloader NACKs it): refused before any Read Memory. */
        if (f->chip.info && f->chip.flash_size > 0 && address >= f->chip.info->flash_base &&
            address < f->chip.info->flash_base + f->chip.flash_size &&
            (uint64_t) address + length > (uint64_t) f->chip.info->flash_base + f->chip.flash_size)
                return fail(f, -EINVAL, "0x%08X + %zu runs past the end of the %u KiB flash (it ends at 0x%08X); "
                            "nothing was read", address, length, f->chip.flash_size / 1024,
                            f->chip.info->flash_base + f->chip.flash_size - 1);

        progress(f, FLASHER_STAGE_READING, 0, length);
        while (done < length) {
                size_t n = MIN(length - done, (size_t) READ_CHUNK);

                if (cancelled(f))
                        return fail_cancelled(f, FLASHER_STAGE_READING, done, length);
                r = transfer_block(f, false, address + (uint32_t) done, (uint8_t *) buf + done, n, NULL);
                if (r < 0)
                        return r;
                done += n;
                progress(f, FLASHER_STAGE_READING, done, length);
        }
        progress(f, FLASHER_STAGE_READING, length, length);
        return 0;
}

int flasher_lock(Flasher *f, bool force) {
        bool empty;
        int r;

        f->message[0] = 0;
        r = ensure_probed(f, true);
        if (r < 0)
                return r;
        if (f->chip.rdp_level >= 1)
                return 1;       /* already; Readout Protect would be NACKed */
        if (f->chip.have_option_bytes) {
                r = first_word_empty_after(f, NULL, false, &empty);
                if (r < 0)
                        return r;
                r = check_way_back(f, f->chip.option_bytes, empty, true, force,
                                   f->chip.info->boot_rule == CHIP_BOOT_NBOOT_SEL ?
                                   "Clear nBOOT_SEL first (a flash with boot0 does)" : "Change the option bytes with a debugger");
                if (r < 0)
                        return r;
        }
        return do_protect(f);
}

int flasher_unlock(Flasher *f, bool force) {
        int r;

        f->message[0] = 0;
        r = ensure_probed(f, true);
        if (r < 0)
                return r;
        /* Readout Unprotect on a chip that is not protected mass-erases it all the same
         * (AN3155 §3.13): not without force. rdp_level -1 (option bytes not readable,
         * but not NACKed) is no protection either: under RDP every Read Memory is NACKed. */
        if (f->chip.rdp_level < 1 && !force)
                return 1;
        return do_unprotect(f);
}

int flasher_go(Flasher *f, uint32_t address) {
        int r;

        f->message[0] = 0;
        r = ensure_probed(f, true);
        if (r < 0)
                return r;
        if (f->chip.rdp_level >= 1)
                return fail(f, -EACCES, "chip is read-protected: the bootloader refuses Go");
        return do_go(f, address);
}
