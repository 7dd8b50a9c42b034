/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One thread per port running jobs (probe, flash, erase, read, lock, unlock, go) with
 * the flasher. The main thread submits jobs; the worker opens the link for each job,
 * runs it and posts progress and the finished job to a locked event queue, then
 * signals an eventfd that the main loop watches. Workers never touch sd-bus or
 * sd-event. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "flasher.h"
#include "image.h"
#include "link.h"
#include "macro.h"
#include "sha256.h"

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

typedef struct Job {
        JobOp op;
        unsigned baudrate;              /* 0: the default, 115200; above 115200: tried
                                         * first, then 115200 if the chip does not answer */
        char *entry;                    /* DTR/RTS entry sequence, NULL: none */

        /* Flash */
        Image *image;
        char *image_name;               /* for the results log: the caller's name, or "fd" */
        char image_sha256[SHA256_HEX_MAX]; /* hex SHA-256 of the image file's bytes */
        FlasherFlashOptions flash;
        uint16_t expect_pid;            /* Flash: refuse another chip (UnsupportedChip); 0: any */
        bool automatic;                 /* started by an auto-flash profile, not a caller */
        /* Erase */
        FlasherErase erase_mode;
        uint32_t address, length;       /* Erase (AUTO), Read, Go (address) */
        /* Read: the caller's fd, owned by the job */
        int out_fd;

        /* Filled in by the worker. */
        int error;                      /* 0 or a negative errno (flasher.h) */
        unsigned baudrate_used;         /* the baud the last sync ran at (after a fallback:
                                         * 115200); 0: no sync was tried */
        char message[256];
        bool have_chip;
        FlasherChip chip;
        FlasherResult result;
        uint64_t duration_usec;

        void *userdata;                 /* the main thread's: the pending method call */
} Job;

/* Entry sequence syntax: steps separated by ',', an exit sequence after ':' (run after
 * a successful Flash: reset into the application). A step is either
 *  - lines joined by '&': "dtr"/"rts" raise the line, "-dtr"/"-rts" lower it, "brk"
 *    holds TX in break for the step's pause, then releases it ("-brk" is an error);
 *    the pause after a step is 100 ms, or
 *  - a delay "<N>ms" (1..5000) that replaces the pause after the step before it
 *    (delays in a row add up; at most 10 s of pauses per part): "rts&dtr,-dtr,50ms", "brk,20ms,rts&dtr,-dtr".
 * Or a preset naming the wiring: "dtr-nrst,rts-boot0", "rts-nrst,dtr-boot0" (BOOT0
 * through an inverter), "dtr-nrst,rts-nboot0", "rts-nrst,dtr-nboot0" (BOOT0 driven
 * directly). 0 or -EINVAL. */
int job_entry_validate(const char *seq);
/* A preset's "ENTRY:EXIT" sequence, or seq itself. */
const char *job_entry_expand(const char *seq);
/* Runs the entry part of seq (a preset or a sequence), or its exit part when exit_seq
 * (none: nothing to do), on l: the lines, breaks and pauses, the last pause included.
 * -EINVAL for a sequence job_entry_validate() refuses (nothing is run), or the link's
 * error (a break is ended first). */
int job_entry_run(Link *l, const char *seq, bool exit_seq);

typedef struct Worker Worker;

/* job_entry_run(), with each pause ended early by worker_cancel(w): then -ECANCELED,
 * before the next line change (a break is ended first). A cancel that came before
 * stops it before its first step. NULL w: job_entry_run(). */
int worker_entry_run(Worker *w, Link *l, const char *seq, bool exit_seq);

Job *job_new(JobOp op);
Job *job_free(Job *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

typedef enum WorkerEventType {
        WORKER_EVENT_PROGRESS,
        WORKER_EVENT_DONE,
} WorkerEventType;

typedef struct WorkerEvent {
        WorkerEventType type;
        FlasherStage stage;
        uint64_t done, total;
        Job *job;                       /* DONE: ownership passes to the receiver */
        struct WorkerEvent *next;
} WorkerEvent;

WorkerEvent *worker_event_free(WorkerEvent *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerEvent *, worker_event_free);

/* device: a device node ("/dev/ttyUSB0") or "tcp://host:port". Starts the thread. */
int worker_new(const char *device, bool verbose, Worker **ret);
/* Cancels the running job, stops and joins the thread, frees queued jobs and events. */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

/* The eventfd to watch for EPOLLIN; read it with worker_pop_event(). */
int worker_get_fd(const Worker *w);
/* Queues job (ownership passes to the worker). */
int worker_submit(Worker *w, Job *job);
/* Asks the running job to stop at the next block boundary; a pause of its entry or
 * exit sequence ends at once (the job then ends with -ECANCELED, unless its flash was
 * already written and verified). A job submitted after it is not affected. */
void worker_cancel(Worker *w);
/* Next event, or NULL when none is queued (also clears the eventfd). */
WorkerEvent *worker_pop_event(Worker *w);
