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

#include "fileio.h"
#include "link.h"
#include "worker.h"

#define DEFAULT_BAUD 115200u
#define ENTRY_STEP_USEC (100 * USEC_PER_MSEC)

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

static const char *const op_names[_JOB_OP_MAX] = {
        [JOB_PROBE] = "Probe",
        [JOB_FLASH] = "Flash",
        [JOB_ERASE] = "Erase",
        [JOB_READ] = "Read",
        [JOB_LOCK] = "Lock",
        [JOB_UNLOCK] = "Unlock",
        [JOB_GO] = "Go",
};

const char *job_op_to_string(JobOp op) {
        return op >= 0 && op < _JOB_OP_MAX ? op_names[op] : "Unknown";
}

Job *job_new(JobOp op) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->op = op;
        j->out_fd = -1;
        flasher_flash_options_init(&j->flash);
        return j;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        image_free(j->image);
        free(j->image_name);
        free(j->entry);
        if (j->out_fd >= 0)
                close(j->out_fd);
        free(j);
        return NULL;
}

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

/* Entry sequences (syntax in worker.h). A step is parsed, then run: a line step sets
 * the lines and maybe starts a break, then pauses (ENTRY_STEP_USEC, or the delay steps
 * that follow it, added up), then ends its break. Pausing after the step, not before
 * the next, leaves the bootloader its start-up time after the last one. */

#define ENTRY_DELAY_MAX_MS 5000
/* The pauses of one part (entry or exit) together, so a sequence cannot hold a port
 * for long even when nobody cancels it. */
#define ENTRY_TOTAL_MAX_USEC (10 * USEC_PER_SEC)

typedef struct EntryStep {
        int dtr, rts;           /* 1 raise, 0 lower, -1 leave */
        bool brk;               /* hold TX in break until the pause after the step ends */
        unsigned delay_ms;      /* non-zero: a delay step ("50ms"), nothing else */
} EntryStep;

static bool entry_step_end(char c) {
        return c == 0 || c == ',' || c == ':';
}

/* "<N>ms", N in 1..ENTRY_DELAY_MAX_MS, standing alone in its step. */
static int parse_entry_delay(const char **p, unsigned *ret_ms) {
        const char *q = *p;
        unsigned ms = 0;

        if (*q < '0' || *q > '9')
                return -EINVAL;
        for (; *q >= '0' && *q <= '9'; q++) {
                ms = ms * 10 + (unsigned) (*q - '0');
                if (ms > ENTRY_DELAY_MAX_MS)
                        return -EINVAL;
        }
        if (ms == 0 || strncmp(q, "ms", 2) != 0 || !entry_step_end(q[2]))
                return -EINVAL;
        *p = q + 2;
        *ret_ms = ms;
        return 0;
}

/* One step at *p: a delay, or lines and "brk" joined by '&'. Leaves *p at the
 * separator after it. */
static int parse_entry_step(const char **p, EntryStep *ret) {
        const char *q = *p;
        EntryStep step = { .dtr = -1, .rts = -1 };

        if (*q >= '0' && *q <= '9') {
                int r = parse_entry_delay(&q, &step.delay_ms);
                if (r < 0)
                        return r;
                *p = q;
                *ret = step;
                return 0;
        }

        for (;;) {
                bool neg = false;

                if (*q == '-') {
                        neg = true;
                        q++;
                }
                if (strncmp(q, "dtr", 3) == 0)
                        step.dtr = !neg;
                else if (strncmp(q, "rts", 3) == 0)
                        step.rts = !neg;
                else if (strncmp(q, "brk", 3) == 0 && !neg)
                        step.brk = true;        /* a break only lasts its step: no "-brk" */
                else
                        return -EINVAL;
                q += 3;
                if (*q != '&')
                        break;
                q++;
        }
        if (!entry_step_end(*q))
                return -EINVAL;
        *p = q;
        *ret = step;
        return 0;
}

/* Waits usec, or until worker_cancel(w): 0 or -ECANCELED (also at once when the
 * cancel came before). Without a worker nothing can end it early. The cancel is set
 * under the mutex, so it is either seen here or wakes the wait. */
static int worker_pause(Worker *w, uint64_t usec) {
        struct timespec deadline;
        uint64_t end;
        int r;

        if (!w) {
                if (usec > 0)
                        sleep_usec(usec);
                return 0;
        }
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

/* The pause after a step, then the end of its break (a cancelled pause ends it too).
 * A lost port is the news over a cancel: the port reports it either way. */
static int entry_pause(Worker *w, Link *l, uint64_t pause_usec, bool *brk) {
        int r = worker_pause(w, pause_usec), k;

        if (!*brk)
                return r;
        *brk = false;
        k = link_set_break(l, false);
        return k < 0 ? k : r;
}

/* Runs the entry part of seq (up to ':'). With l == NULL it only checks the syntax.
 * Each step starts with the pause before it, so a cancel (w) stops the sequence before
 * its next line change. A cancelled sequence leaves the lines as any failed step does:
 * the job closes the port, and the tty's hang-up on close (HUPCL) drops DTR and RTS,
 * which releases a reset held through either; replaying the exit part instead would
 * start the application the caller just cancelled. */
static int run_entry(Worker *w, Link *l, const char *seq) {
        const char *p = seq;
        uint64_t pause = 0, total = 0;
        bool brk = false, delayed = false;
        int r;

        while (*p && *p != ':') {
                EntryStep step;

                r = parse_entry_step(&p, &step);
                if (r < 0)
                        return r;
                if (step.delay_ms > 0) {
                        /* replaces the default pause of the step before; delays add up */
                        pause = (delayed ? pause : 0) + step.delay_ms * USEC_PER_MSEC;
                        delayed = true;
                } else {
                        total += pause;
                        if (total > ENTRY_TOTAL_MAX_USEC)
                                return -EINVAL;
                        if (l) {
                                r = entry_pause(w, l, pause, &brk);
                                if (r >= 0)
                                        r = link_set_lines(l, step.dtr, step.rts);
                                if (r >= 0 && step.brk) {
                                        r = link_set_break(l, true);
                                        brk = r >= 0;
                                }
                                if (r < 0)
                                        return r;
                        }
                        pause = ENTRY_STEP_USEC;
                        delayed = false;
                }
                if (*p == ',')
                        p++;
        }
        if (total + pause > ENTRY_TOTAL_MAX_USEC)
                return -EINVAL;
        return l ? entry_pause(w, l, pause, &brk) : 0;
}

/* The common auto-reset circuits, as ENTRY:EXIT. BOOT0 through an inverter: line
 * asserted = BOOT0 high; "nboot0": the line drives BOOT0 directly (asserted = low).
 * Entry: BOOT0 high, reset held, released; exit: BOOT0 low, reset pulse: the
 * application starts. */
static const struct {
        const char *name, *seq;
} entry_presets[] = {
        { "dtr-nrst,rts-boot0",  "rts&dtr,-dtr:-rts&dtr,-dtr" },
        { "rts-nrst,dtr-boot0",  "dtr&rts,-rts:-dtr&rts,-rts" },
        { "dtr-nrst,rts-nboot0", "-rts&dtr,-dtr:rts&dtr,-dtr" },
        { "rts-nrst,dtr-nboot0", "-dtr&rts,-rts:dtr&rts,-rts" },
};

const char *job_entry_expand(const char *seq) {
        for (size_t i = 0; i < ELEMENTSOF(entry_presets); i++)
                if (strcmp(entry_presets[i].name, seq) == 0)
                        return entry_presets[i].seq;
        return seq;
}

static const char *exit_part(const char *seq) {
        const char *colon = strchr(seq, ':');

        return colon ? colon + 1 : NULL;
}

int job_entry_validate(const char *seq) {
        const char *exit_seq;
        int r;

        seq = job_entry_expand(seq);
        r = run_entry(NULL, NULL, seq);
        if (r < 0)
                return r;
        exit_seq = exit_part(seq);
        if (exit_seq && strchr(exit_seq, ':'))
                return -EINVAL;
        return exit_seq ? run_entry(NULL, NULL, exit_seq) : 0;
}

int worker_entry_run(Worker *w, Link *l, const char *seq, bool exit_seq) {
        const char *part;
        int r;

        if (!l || !seq)
                return -EINVAL;
        r = job_entry_validate(seq);
        if (r < 0)
                return r;
        part = job_entry_expand(seq);
        if (exit_seq)
                part = exit_part(part);
        return part ? run_entry(w, l, part) : 0;
}

int job_entry_run(Link *l, const char *seq, bool exit_seq) {
        return worker_entry_run(NULL, l, seq, exit_seq);
}

static int open_link(const char *device, unsigned baud, Link **ret) {
        if (strncmp(device, "tcp://", 6) == 0)
                return link_open_tcp(device, baud, ret);
        return link_open_serial(device, baud, ret);
}

/* Opens the port at the job's baud. A rate the adapter (driver) refuses is the
 * caller's bad argument, so the port is opened at the default rate first and then
 * switched: a failure of the switch is then known to be about the rate. */
static int open_job_link(Worker *w, Job *j, Link **ret) {
        _cleanup_(link_freep) Link *l = NULL;
        unsigned baud = j->baudrate ?: DEFAULT_BAUD;
        int r;

        r = open_link(w->device, DEFAULT_BAUD, &l);
        if (r < 0) {
                snprintf(j->message, sizeof j->message, "Cannot open %s: %s", w->device, strerror(-r));
                /* A port that cannot be opened any more is gone for our purposes; no
                 * permission on the node is AccessDenied, not the chip's ReadProtected. */
                return r == -ENOENT || r == -ENXIO || r == -ECONNREFUSED || r == -EHOSTUNREACH ? -ENODEV :
                       r == -EACCES ? -EPERM : r;
        }
        if (baud != DEFAULT_BAUD) {
                r = link_set_baud(l, baud);
                if (r == -ENODEV) {
                        snprintf(j->message, sizeof j->message, "%s went away", w->device);
                        return r;
                }
                if (r < 0) {
                        snprintf(j->message, sizeof j->message, "The adapter on %s refuses %u baud (%s)",
                                 w->device, baud, strerror(-r));
                        return -EINVAL;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Every operation starts with a probe (sync, Get, Get ID, ...); doing it here, before
 * the operation, gives one place for the baud fallback, and the flasher keeps the
 * probed chip so the operation does not probe again. A chip that does not answer a
 * sync above 115200 (the highest rate AN3155 gives for its baud detection) gets one
 * more try at 115200, after the entry sequence if there is one: it resets the chip,
 * which may have measured a wrong rate from the fast 0x7F. A raw TCP server owns its
 * line settings, so there another rate would change nothing. On a double failure,
 * msg (size n) gets the sentence. */
static int probe_with_fallback(Worker *w, Job *j, Link *l, Flasher *f, char *msg, size_t n) {
        unsigned first = l->baud;
        int r, k;

        j->baudrate_used = l->baud;
        r = flasher_probe(f, &j->chip);
        if (r != -EHOSTDOWN || first <= DEFAULT_BAUD || strncmp(w->device, "tcp://", 6) == 0 ||
            atomic_load(&w->cancel))
                return r;

        /* A port that went away says so; another failure here leaves the sync failure
         * as the news. */
        k = link_set_baud(l, DEFAULT_BAUD);
        if (k >= 0) {
                j->baudrate_used = DEFAULT_BAUD;
                (void) link_flush_input(l);
                if (j->entry)
                        k = run_entry(w, l, job_entry_expand(j->entry));
        }
        if (k < 0) {
                if (k == -ENODEV)
                        snprintf(msg, n, "%s went away", w->device);
                else if (k == -ECANCELED)
                        snprintf(msg, n, "cancelled during the entry sequence");
                return IN_SET(k, -ENODEV, -ECANCELED) ? k : r;
        }
        r = flasher_probe(f, &j->chip);
        if (r == -EHOSTDOWN)
                snprintf(msg, n, "no answer at %u baud nor at %u on %s: is BOOT0 high and the chip reset?",
                         first, DEFAULT_BAUD, w->device);
        return r;
}

static void run_job(Worker *w, Job *j) {
        _cleanup_(link_freep) Link *l = NULL;
        _cleanup_(flasher_freep) Flasher *f = NULL;
        uint64_t start = now_usec();
        const char *msg = NULL;
        char wrong_chip[64], no_answer[160] = "";
        bool probed = false;
        int r;

        r = open_job_link(w, j, &l);
        if (r < 0) {
                j->error = r;
                goto finish;
        }
        if (j->entry) {
                r = run_entry(w, l, job_entry_expand(j->entry));
                if (r < 0) {
                        j->error = r;
                        if (r == -ECANCELED)
                                snprintf(j->message, sizeof j->message, "cancelled during the entry sequence");
                        else
                                snprintf(j->message, sizeof j->message, "Entry sequence failed: %s", strerror(-r));
                        goto finish;
                }
        }

        r = flasher_new(l, &f);
        if (r < 0) {
                j->error = r;
                snprintf(j->message, sizeof j->message, "%s", strerror(-r));
                goto finish;
        }
        flasher_set_progress(f, on_progress, w);
        flasher_set_cancel(f, &w->cancel);
        if (w->verbose)
                an3155_set_trace(flasher_protocol(f), on_trace, w);

        r = probe_with_fallback(w, j, l, f, no_answer, sizeof no_answer);
        if (no_answer[0])
                msg = no_answer;
        /* Read works on a chip missing from the table (the flasher allows it). */
        if (r < 0 && !(r == -EOPNOTSUPP && j->op == JOB_READ))
                goto done;

        switch (j->op) {
        case JOB_PROBE:
                break;
        case JOB_FLASH:
                /* The board is identified before anything is erased: the expected chip
                 * is checked, and the chip is known for the results log even when Go
                 * made the flasher forget it. */
                probed = true;
                if (j->expect_pid && j->chip.pid != j->expect_pid) {
                        snprintf(wrong_chip, sizeof wrong_chip, "Chip 0x%03x is not the expected 0x%03x",
                                 j->chip.pid, j->expect_pid);
                        msg = wrong_chip;
                        r = -EOPNOTSUPP;
                        break;
                }
                r = flasher_flash(f, j->image, &j->flash, &j->result);
                break;
        case JOB_ERASE:
                r = flasher_erase(f, j->erase_mode, j->address, j->length);
                break;
        case JOB_READ: {
                _cleanup_free_ uint8_t *buf = malloc(j->length ?: 1);

                if (!buf) {
                        r = -ENOMEM;
                        break;
                }
                r = flasher_read(f, j->address, buf, j->length);
                if (r >= 0) {
                        r = write_all(j->out_fd, buf, j->length);
                        if (r < 0)
                                msg = "Cannot write to the output file descriptor";
                }
                break;
        }
        case JOB_LOCK:
                r = flasher_lock(f);
                break;
        case JOB_UNLOCK:
                r = flasher_unlock(f);
                break;
        case JOB_GO:
                r = flasher_go(f, j->address);
                break;
        default:
                r = -EINVAL;
        }
done:
        j->error = r < 0 ? r : 0;
        if (r < 0)
                snprintf(j->message, sizeof j->message, "%s",
                         msg ?: (flasher_error_message(f)[0] ? flasher_error_message(f) : strerror(-r)));
        /* A flashed board is reset into its application by the exit sequence; one that
         * failed stays in the bootloader. The flash is written and verified either way: a
         * failed reset only leaves the board in the bootloader until it is powered up.
         * For the same reason a Cancel during the exit stops its pauses but not the job's
         * success. */
        if (r >= 0 && j->op == JOB_FLASH && j->entry && exit_part(job_entry_expand(j->entry)))
                (void) run_entry(w, l, exit_part(job_entry_expand(j->entry)));
        if (flasher_chip(f)) {
                j->have_chip = true;
                j->chip = *flasher_chip(f);
        } else if (probed || j->chip.pid != 0)
                /* a chip missing from the table still has its PID for the log */
                j->have_chip = true;

finish:
        j->duration_usec = now_usec() - start;
        if (j->out_fd >= 0) {
                close(j->out_fd);
                j->out_fd = -1;
        }
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
                run_job(w, j);

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
