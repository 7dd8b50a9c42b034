/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The host side of the STM32 ROM USART bootloader protocol (ST AN3155).
 *
 * Every function returns 0 on success or a negative errno:
 *   -ETIMEDOUT    no (complete) reply before the step's timeout
 *   -EREMOTEIO    the device answered NACK (0x1F)
 *   -EPROTO       the device answered something that is neither ACK nor NACK
 *   -EHOSTDOWN    sync failed: nothing that looks like a bootloader answered 0x7F
 *   -EOPNOTSUPP   the device's Get list does not offer the command
 *   -ENODEV       the link went away
 *   -EINVAL       bad arguments (length, alignment)
 * an3155_last_status() tells which command and which step failed and what came back.
 * Nothing here prints. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "macro.h"

#define AN3155_ACK  0x79
#define AN3155_NACK 0x1F
#define AN3155_SYNC 0x7F

enum {
        AN3155_CMD_GET               = 0x00,
        AN3155_CMD_GET_VERSION       = 0x01,
        AN3155_CMD_GET_ID            = 0x02,
        AN3155_CMD_READ_MEMORY       = 0x11,
        AN3155_CMD_GO                = 0x21,
        AN3155_CMD_WRITE_MEMORY      = 0x31,
        AN3155_CMD_ERASE             = 0x43,
        AN3155_CMD_EXTENDED_ERASE    = 0x44,
        AN3155_CMD_WRITE_PROTECT     = 0x63,
        AN3155_CMD_WRITE_UNPROTECT   = 0x73,
        AN3155_CMD_READOUT_PROTECT   = 0x82,
        AN3155_CMD_READOUT_UNPROTECT = 0x92,
};

/* The command's name as AN3155 §3 heads it ("Extended Erase"), NULL for a byte it does not
 * name. */
const char *an3155_command_name(uint8_t command);

#define AN3155_MAX_BLOCK 256u

/* "Get", "Extended Erase", ... (AN3155's names); NULL for a byte AN3155 does not name. */
const char *an3155_command_name(uint8_t cmd);

typedef struct An3155 An3155;

typedef struct An3155Timeouts {
        uint64_t reply_usec;       /* an ACK to a command byte pair, address or length: 500 ms */
        uint64_t write_usec;       /* the ACK after a Write Memory block: 1 s */
        uint64_t page_erase_usec;  /* per page of an Extended Erase list: 100 ms */
        uint64_t mass_erase_usec;  /* a mass erase, and Readout Unprotect's erase: 30 s */
        uint64_t option_usec;      /* the 2nd ACK of protect/unprotect commands: 2 s */
        uint64_t reset_usec;       /* the time a reset takes before the device answers sync: 100 ms */
} An3155Timeouts;

typedef struct An3155Status {
        uint8_t command;       /* the command in flight (0xFF: none/sync) */
        const char *step;      /* "sync", "command", "address", "length", "data", "checksum", "second ACK",
                                * "recovery" */
        int reply;             /* the last byte received, -1 when none */
} An3155Status;

/* A trace hook for --verbose: every byte sequence sent (tx=true) and received. */
typedef void (*an3155_trace_t)(void *userdata, bool tx, const uint8_t *buf, size_t n);

/* Borrows link; the caller frees it after an3155_free(). */
int an3155_new(Link *link, An3155 **ret);
An3155 *an3155_free(An3155 *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(An3155 *, an3155_free);

void an3155_set_timeouts(An3155 *p, const An3155Timeouts *t);
void an3155_get_timeouts(const An3155 *p, An3155Timeouts *ret);
void an3155_default_timeouts(An3155Timeouts *ret);
void an3155_set_trace(An3155 *p, an3155_trace_t cb, void *userdata);
const An3155Status *an3155_last_status(const An3155 *p);

/* Flushes stale input, sends 0x7F and accepts ACK, or NACK from a chip that was
 * already synced; tolerates a stray byte before the answer; up to attempts tries.
 * After a successful sync it sends Get and remembers the command list. */
int an3155_sync(An3155 *p, unsigned attempts);

/* Waits delay_usec (a reset in progress), then syncs again. */
int an3155_resync(An3155 *p, uint64_t delay_usec, unsigned attempts);

/* After a lost or garbled reply in the middle of a command (Write or Read Memory), or a
 * sync that nothing answered (an earlier host may have stopped mid-command): gets the
 * chip back to waiting for a command without letting it complete a frame that writes,
 * then syncs (and runs Get). In order: drain the line until quiet; one 0x7F (a
 * chip that reset answers ACK, one waiting for a command's complement NACK); if that
 * does not do it, one more 0x7F (a chip that finished booting since hears a sync
 * first, never filler) and AN3155_RECOVER_FILLER_LEN bytes of filler in one write (one
 * AN3155_RECOVER_FILLER_LEAD, then AN3155_RECOVER_FILLER), drain the NACKs, sync. Replies
 * are awaited at most AN3155_RECOVER_REPLY_USEC each: about 0.5 s against a silent chip,
 * about 2 s at worst. Why the filler cannot write, whatever number of unanswered 0x7F
 * (a failed sync's) the chip took before: see an3155.c. -EHOSTDOWN: nothing answered
 * the final sync. */
#define AN3155_RECOVER_FILLER_LEAD 0x01
#define AN3155_RECOVER_FILLER      0x02
#define AN3155_RECOVER_FILLER_LEN  265u
#define AN3155_RECOVER_REPLY_USEC  (200 * USEC_PER_MSEC)
int an3155_recover(An3155 *p);

/* Get: protocol version and the command list (at most 32 entries). */
int an3155_get(An3155 *p, uint8_t *ret_version, uint8_t *ret_cmds, size_t *ret_n_cmds);
/* True when the last Get listed cmd (before any Get: true). */
bool an3155_supports(const An3155 *p, uint8_t cmd);
int an3155_get_version(An3155 *p, uint8_t *ret_version);
int an3155_get_id(An3155 *p, uint16_t *ret_pid);

/* 1..256 bytes. */
int an3155_read_memory(An3155 *p, uint32_t address, void *buf, size_t n);
/* 1..256 bytes, n a multiple of 4. -EPERM, before anything is sent, for a write into
 * an option-byte area other than the C0/G0 OPTR form (chip_check_option_write()). */
int an3155_write_memory(An3155 *p, uint32_t address, const void *buf, size_t n);
int an3155_go(An3155 *p, uint32_t address);

/* Both erase calls: when the reply to the command pair is lost or garbled, the chip may
 * wait for a page list; a list it must refuse (bad checksum, nothing erased), a sync and
 * one more try of the command follow (see an3155.c). A second failure returns that
 * error (the chip taken out again); a failed recovery returns the first one. */
/* Mass erase: Extended Erase 0xFFFF, or legacy Erase 0xFF when Get offered 0x43. */
int an3155_erase_mass(An3155 *p);
/* Erases the listed pages, in as many commands as needed (Extended Erase, or legacy
 * Erase with 8-bit page numbers when Get offered 0x43). */
int an3155_erase_pages(An3155 *p, const uint16_t *pages, size_t n);

/* These end with a device reset: call an3155_resync() when the boot configuration
 * brings the device back into the bootloader. */
int an3155_write_protect(An3155 *p, const uint8_t *sectors, size_t n);
int an3155_write_unprotect(An3155 *p);
int an3155_readout_protect(An3155 *p);
int an3155_readout_unprotect(An3155 *p);
