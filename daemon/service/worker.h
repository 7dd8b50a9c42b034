/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One thread per port running its jobs (job.h) one after the other. The main thread
 * submits jobs; the worker runs each (job_run()) and posts its progress and the
 * finished job to a locked event queue, then signals an eventfd that the main loop
 * watches. Workers never touch sd-bus or sd-event. */

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "macro.h"

typedef struct Worker Worker;

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
/* The pause the worker's jobs take in entry sequences (an entry_pause_t, userdata the
 * Worker): usec, ended early by worker_cancel() with -ECANCELED (at once when the
 * cancel came before). */
int worker_entry_pause(void *userdata, uint64_t usec);
/* Next event, or NULL when none is queued (also clears the eventfd). */
WorkerEvent *worker_pop_event(Worker *w);
