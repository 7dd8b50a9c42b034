/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One operation on one port, from opening the link to closing it: the link at the
 * asked rate, the entry sequence, a probe (with one fallback to 115200 for a chip that
 * does not answer a faster rate), the operation (probe, flash, erase, read, lock,
 * unlock, go), and the exit sequence after a good flash. Runs on the caller's thread
 * (a port's worker) and reports through the hooks it is given: progress, the protocol
 * trace, the entry sequences' pauses, a cancel flag. No D-Bus. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "entry.h"
#include "flasher.h"
#include "image.h"
#include "macro.h"
#include "sha256.h"
#include "trace.h"

typedef enum JobOp {
        JOB_PROBE,
        JOB_FLASH,
        JOB_ERASE,
        JOB_READ,
        JOB_LOCK,
        JOB_UNLOCK,
        JOB_GO,
        _JOB_OP_MAX,
} JobOp;

/* "Probe", "Flash", ... (the D-Bus method names). */
const char *job_op_to_string(JobOp op);

typedef struct Job Job;

/* A Flash's per-board step (a serial number): prepare() runs once the chip is known
 * and before anything is erased, and may change j->image; a negative errno fails the
 * job, msg (size n) saying why. finish() runs when the flash has ended (j->error and
 * j->result filled in) if prepare() succeeded. Both on the worker thread. free() drops
 * userdata with the job. All NULL: none. */
typedef struct JobBoardHooks {
        int (*prepare)(Job *j, char *msg, size_t n, void *userdata);
        void (*finish)(Job *j, void *userdata);
        void (*free)(void *userdata);
        void *userdata;
} JobBoardHooks;

struct Job {
        JobOp op;
        unsigned baudrate;              /* 0: the default, 115200; above 115200: tried
                                         * first, then 115200 if the chip does not answer */
        char *entry;                    /* DTR/RTS entry sequence, NULL: none */
        unsigned remembered_baud;       /* the rate an earlier job on this port left the
                                         * chip synced at, in its bootloader (the port's
                                         * memory, baud_left); 0: none. Tried when the
                                         * job's rate meets silence and no entry sequence
                                         * reset the chip */

        /* Flash */
        Image *image;
        char *image_name;               /* carried for the results log: the caller's name, or "fd" */
        char image_sha256[SHA256_HEX_MAX]; /* hex SHA-256 of the image file's bytes */
        FlasherFlashOptions flash;
        uint16_t expect_pid;            /* Flash: refuse another chip (UnsupportedChip); 0: any */
        uint16_t hint_pid;              /* the chip the port last saw, for a NoBootloader
                                         * message (expect_pid first); 0: none */
        bool automatic;                 /* started by an auto-flash profile, not a caller (for the log) */
        JobBoardHooks board;
        bool have_serial_number;        /* set by board.prepare(): the number this board got */
        uint64_t serial_number;
        /* Probe: a station's poll when > 0: that many 0x7F (1 or 2, flasher_poll()), no
         * entry sequence, no baud fallback, no recovery. */
        unsigned poll_syncs;
        /* Erase */
        FlasherErase erase_mode;
        uint32_t address, length;       /* Erase (AUTO), Read, Go (address) */
        /* Read: the caller's fd, owned by the job */
        int out_fd;
        /* The wire trace goes here when the job ends (owned by the job; -1: nowhere),
         * as JSON or as text. */
        int trace_fd;
        bool trace_json;

        /* Filled in by job_run(). */
        int error;                      /* 0 or a negative errno (flasher.h) */
        unsigned baudrate_used;         /* the baud the last sync ran at (after a fallback:
                                         * 115200); 0: no sync was tried */
        bool baudrate_remembered;       /* the job ran at remembered_baud after silence */
        unsigned baud_left;             /* the rate the chip is left synced at in its
                                         * bootloader; 0: not synced, or not there any more
                                         * (started, reset into its code, unknown) */
        char message[1024];
        bool started_by_reset;          /* Flash: the exit sequence reset the chip into its code */
        bool have_chip;
        FlasherChip chip;
        FlasherResult result;
        uint64_t duration_usec;
        Trace *trace;                   /* every job's, from its start; NULL: out of memory */
};

Job *job_new(JobOp op);
Job *job_free(Job *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

typedef struct JobHooks {
        flasher_progress_t progress;    /* NULL: none */
        an3155_trace_t trace;           /* every byte sent and received; NULL: none */
        entry_pause_t pause;            /* the entry sequences' pauses; NULL: a sleep */
        void *userdata;                 /* for the three */
        const atomic_bool *cancel;      /* polled between blocks and before the fallback */
} JobHooks;

/* Beyond flasher.h's errors, a job's own (job_run()):
 *   -EUSERS        another process holds the port (the message names it) -> PortInUse
 *   -EMEDIUMTYPE   the link does not carry even parity: an RFC 2217 server that refused
 *                  it, an adapter that drops it (diagnose.h)              -> AdapterParity */

/* Runs j on the port named device (link_open_url()): fills in its error, message,
 * chip, result, baudrate_used, duration and trace (the link's, from its opening, ending
 * with the outcome); closes j->out_fd; writes the trace to j->trace_fd and closes it. */
void job_run(Job *j, const char *device, const JobHooks *hooks);
