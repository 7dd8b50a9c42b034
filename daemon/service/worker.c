/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-port worker thread: a job queue in, progress and finished jobs out through
 * a locked event queue and an eventfd. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "worker.h"

/* Jobs are chained through a side list so Job stays a plain record. */
typedef struct QueuedJob {
        Job *job;
        struct QueuedJob *next;
} QueuedJob;

struct Worker {
        char *device;
        bool verbose;
        int event_fd;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t mutex;
        pthread_cond_t cond;
        pthread_cond_t pause_cond;      /* CLOCK_MONOTONIC; broadcast when cancel is set */
        bool stopping;                  /* under mutex */
        QueuedJob *queue_head, *queue_tail; /* under mutex */
        WorkerEvent *events_head, *events_tail; /* under mutex */

        atomic_bool cancel;             /* set under mutex, so a pause cannot miss it */

        /* the worker thread's own: the last progress it posted */
        FlasherStage last_stage;
        uint64_t last_progress_usec;
};

/* Progress reaches the main loop at most this often within a stage (a stage's first
 * and last value go at once); each post wakes the main loop, and 10 a second are as
 * many as a progress bar shows. */
#define PROGRESS_POST_USEC (100 * USEC_PER_MSEC)

WorkerEvent *worker_event_free(WorkerEvent *e) {
        if (!e)
                return NULL;
        job_free(e->job);
        free(e);
        return NULL;
}

static void worker_signal(Worker *w) {
        uint64_t one = 1;

        /* Can only fail with EAGAIN when the counter is saturated: then it is readable anyway. */
        (void) !write(w->event_fd, &one, sizeof one);
}

/* Appends an event; a progress event replaces a queued progress event of the same
 * stage, so a slow main loop sees the latest value instead of a backlog. */
static void worker_post(Worker *w, WorkerEvent *e) {
        bool wake = true;

        pthread_mutex_lock(&w->mutex);
        if (e->type == WORKER_EVENT_PROGRESS && w->events_tail &&
            w->events_tail->type == WORKER_EVENT_PROGRESS && w->events_tail->stage == e->stage) {
                w->events_tail->done = e->done;
                w->events_tail->total = e->total;
                free(e);
                wake = false;
        } else {
                if (w->events_tail)
                        w->events_tail->next = e;
                else
                        w->events_head = e;
                w->events_tail = e;
        }
        pthread_mutex_unlock(&w->mutex);
        if (wake)
                worker_signal(w);
}

WorkerEvent *worker_pop_event(Worker *w) {
        WorkerEvent *e;
        uint64_t v;

        (void) !read(w->event_fd, &v, sizeof v);

        pthread_mutex_lock(&w->mutex);
        e = w->events_head;
        if (e) {
                w->events_head = e->next;
                if (!w->events_head)
                        w->events_tail = NULL;
                e->next = NULL;
        }
        pthread_mutex_unlock(&w->mutex);
        return e;
}

static void on_progress(void *userdata, FlasherStage stage, uint64_t done, uint64_t total) {
        Worker *w = userdata;
        uint64_t now = now_usec();
        WorkerEvent *e;

        /* A new stage, its start and its end always go through. */
        if (stage == w->last_stage && done > 0 && done < total && now - w->last_progress_usec < PROGRESS_POST_USEC)
                return;
        w->last_stage = stage;
        w->last_progress_usec = now;

        e = calloc(1, sizeof(WorkerEvent));
        if (!e)
                return; /* progress is advisory */
        e->type = WORKER_EVENT_PROGRESS;
        e->stage = stage;
        e->done = done;
        e->total = total;
        worker_post(w, e);
}

static void on_trace(void *userdata, bool tx, const uint8_t *buf, size_t n) {
        Worker *w = userdata;
        char line[3 * 64 + 1];
        size_t i, k = 0;

        for (i = 0; i < n && i < 64; i++)
                k += (size_t) snprintf(line + k, sizeof line - k, " %02x", buf[i]);
        fprintf(stderr, "%s: %s%s%s\n", w->device, tx ? ">" : "<", line, n > 64 ? " ..." : "");
}

/* The cancel is set under the mutex, so it is either seen here or wakes the wait. */
int worker_entry_pause(void *userdata, uint64_t usec) {
        Worker *w = userdata;
        struct timespec deadline;
        uint64_t end;
        int r;

        end = now_usec() + usec;
        deadline = (struct timespec) { .tv_sec = (time_t) (end / USEC_PER_SEC),
                                       .tv_nsec = (long) ((end % USEC_PER_SEC) * NSEC_PER_USEC) };
        pthread_mutex_lock(&w->mutex);
        /* 0: woken (by a cancel, or spuriously); ETIMEDOUT or an error: over */
        while (!atomic_load(&w->cancel) && usec > 0 &&
               pthread_cond_timedwait(&w->pause_cond, &w->mutex, &deadline) == 0)
                ;
        r = atomic_load(&w->cancel) ? -ECANCELED : 0;
        pthread_mutex_unlock(&w->mutex);
        return r;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;

        for (;;) {
                QueuedJob *q;
                WorkerEvent *e;
                Job *j;

                pthread_mutex_lock(&w->mutex);
                while (!w->stopping && !w->queue_head)
                        pthread_cond_wait(&w->cond, &w->mutex);
                if (w->stopping) {
                        pthread_mutex_unlock(&w->mutex);
                        break;
                }
                q = w->queue_head;
                w->queue_head = q->next;
                if (!w->queue_head)
                        w->queue_tail = NULL;
                pthread_mutex_unlock(&w->mutex);

                j = q->job;
                free(q);
                job_run(j, w->device, &(const JobHooks) {
                        .progress = on_progress,
                        .trace = w->verbose ? on_trace : NULL,
                        .pause = worker_entry_pause,
                        .userdata = w,
                        .cancel = &w->cancel,
                });

                /* The main thread owes the caller a reply: this event must get through. */
                while (!(e = calloc(1, sizeof(WorkerEvent))))
                        sleep_usec(10 * USEC_PER_MSEC);
                e->type = WORKER_EVENT_DONE;
                e->job = j;
                worker_post(w, e);
        }
        return NULL;
}

int worker_new(const char *device, bool verbose, Worker **ret) {
        pthread_condattr_t attr;
        Worker *w;
        int r;

        w = calloc(1, sizeof(Worker));
        if (!w)
                return -ENOMEM;
        w->event_fd = -1;
        pthread_mutex_init(&w->mutex, NULL);
        pthread_cond_init(&w->cond, NULL);
        /* pauses are deadlines on the clock now_usec() reads, immune to clock steps */
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->pause_cond, &attr);
        pthread_condattr_destroy(&attr);
        atomic_init(&w->cancel, false);
        w->verbose = verbose;

        w->device = strdup(device);
        if (!w->device) {
                r = -ENOMEM;
                goto fail;
        }
        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r < 0)
                goto fail;
        w->thread_started = true;
        *ret = w;
        return 0;
fail:
        worker_free(w);
        return r;
}

Worker *worker_free(Worker *w) {
        QueuedJob *q;
        WorkerEvent *e;

        if (!w)
                return NULL;
        if (w->thread_started) {
                pthread_mutex_lock(&w->mutex);
                atomic_store(&w->cancel, true);
                w->stopping = true;
                pthread_cond_signal(&w->cond);
                pthread_cond_broadcast(&w->pause_cond);
                pthread_mutex_unlock(&w->mutex);
                pthread_join(w->thread, NULL);
        }
        q = w->queue_head;
        while (q) {
                QueuedJob *n = q->next;
                job_free(q->job);
                free(q);
                q = n;
        }
        e = w->events_head;
        while (e) {
                WorkerEvent *n = e->next;
                worker_event_free(e);
                e = n;
        }
        if (w->event_fd >= 0)
                close(w->event_fd);
        pthread_cond_destroy(&w->cond);
        pthread_cond_destroy(&w->pause_cond);
        pthread_mutex_destroy(&w->mutex);
        free(w->device);
        free(w);
        return NULL;
}

int worker_get_fd(const Worker *w) {
        return w->event_fd;
}

int worker_submit(Worker *w, Job *job) {
        QueuedJob *q = calloc(1, sizeof(QueuedJob));

        if (!q)
                return -ENOMEM;
        q->job = job;

        pthread_mutex_lock(&w->mutex);
        /* A cancel meant for an earlier job must not stop this one. */
        atomic_store(&w->cancel, false);
        if (w->queue_tail)
                w->queue_tail->next = q;
        else
                w->queue_head = q;
        w->queue_tail = q;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mutex);
        return 0;
}

void worker_cancel(Worker *w) {
        /* under the mutex: a pause checks the flag and waits under it, so it cannot miss
         * the wake-up */
        pthread_mutex_lock(&w->mutex);
        atomic_store(&w->cancel, true);
        pthread_cond_broadcast(&w->pause_cond);
        pthread_mutex_unlock(&w->mutex);
}
