/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Port object: method calls become jobs (request.c) for the worker thread; the
 * worker's events come back through its eventfd and become signals, property changes
 * and, when the job ends, the results entry and the single reply. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus-dict.h"
#include "imagefile.h"
#include "inhibit.h"
#include "log.h"
#include "options.h"
#include "port.h"
#include "request.h"
#include "results.h"
#include "stm32isp-errors.h"
#include "string-util.h"
#include "worker.h"

#define READ_LENGTH_MAX (16u * 1024 * 1024)
#define PROGRESS_INTERVAL_USEC (50 * USEC_PER_MSEC)   /* <= 20 signals/s */

struct Port {
        unsigned n_ref;
        sd_bus *bus;
        sd_event *event;
        Polkit *polkit;                 /* borrowed: authorizes method calls */
        const PortHooks *hooks;
        void *userdata;

        char *name, *device, *path;
        LinkTransport transport;
        uint16_t vendor_id, product_id;
        char *serial, *manufacturer, *product, *physical_path, *driver;

        uint64_t added_usec;
        Worker *worker;
        sd_event_source *worker_source;
        sd_event_source *progress_timer;        /* sends a held-back value when the flasher goes quiet */
        sd_bus_slot *slot;

        /* The running job. */
        bool busy;
        JobOp op;
        sd_bus_message *pending;
        sd_bus_track *caller;           /* the pending call's sender, unless it detached */
        bool caller_left;               /* it left the bus: its job was cancelled */
        Inhibitor *inhibitor;           /* logind: no sleep while it runs */
        bool unplugged;
        bool exiting;                   /* the daemon is shutting down: no new jobs */

        const char *state;
        uint64_t progress_done, progress_total;
        FlasherStage stage;
        bool have_stage;
        uint64_t last_progress_usec;
        bool progress_unsent;

        bool have_chip;
        /* The rate the last job left the chip synced at in its bootloader (Job.baud_left):
         * a chip that autobauded there answers only there until it is reset. In memory
         * only: a daemon restart forgets it, and a board reset since makes it moot. */
        unsigned synced_baud;
        FlasherChip chip;
        LastResult last;

        SerialStore *serials;           /* borrowed */
        bool plugged;
        bool polling;                   /* a poll job is with the worker */
        Station station;
        const char *station_profile;
};

const char *port_name(const Port *p) {
        return p->name;
}

const char *port_path(const Port *p) {
        return p->path;
}

const char *port_device(const Port *p) {
        return p->device;
}

bool port_is_busy(const Port *p) {
        return p->busy;
}

uint64_t port_added_usec(const Port *p) {
        return p->added_usec;
}

uint16_t port_vendor_id(const Port *p) {
        return p->vendor_id;
}

uint16_t port_product_id(const Port *p) {
        return p->product_id;
}

const char *port_serial(const Port *p) {
        return p->serial;
}

const char *port_physical_path(const Port *p) {
        return p->physical_path;
}

/* ---- state and progress ---- */

/* The State property while the flasher is in a stage. */
static const char *const stage_states[_FLASHER_STAGE_MAX] = {
        [FLASHER_STAGE_CONNECTING]   = "probing",
        [FLASHER_STAGE_UNPROTECTING] = "unprotecting",
        [FLASHER_STAGE_ERASING]      = "erasing",
        [FLASHER_STAGE_WRITING]      = "writing",
        [FLASHER_STAGE_OPTIONS]      = "writing",
        [FLASHER_STAGE_VERIFYING]    = "verifying",
        [FLASHER_STAGE_READING]      = "reading",
        [FLASHER_STAGE_PROTECTING]   = "protecting",
        [FLASHER_STAGE_STARTING]     = "starting",
};

static const char *stage_to_state(FlasherStage s) {
        return s >= 0 && s < _FLASHER_STAGE_MAX && stage_states[s] ? stage_states[s] : "probing";
}

_Static_assert(FLASHER_STAGE_CONNECTING == 0, "the stage of an operation's missing entries");

/* A job's State before its first progress: the stage its operation begins with after
 * the probe (Probe and Flash: probing). */
static const char *op_to_state(JobOp op) {
        static const FlasherStage first[_JOB_OP_MAX] = {
                [JOB_ERASE]  = FLASHER_STAGE_ERASING,
                [JOB_READ]   = FLASHER_STAGE_READING,
                [JOB_LOCK]   = FLASHER_STAGE_PROTECTING,
                [JOB_UNLOCK] = FLASHER_STAGE_UNPROTECTING,
                [JOB_GO]     = FLASHER_STAGE_STARTING,
        };

        return stage_to_state(op >= 0 && op < _JOB_OP_MAX ? first[op] : FLASHER_STAGE_CONNECTING);
}

static void port_set_state(Port *p, const char *state) {
        if (p->state && streq_ptr(p->state, state))
                return;
        p->state = state;
        (void) sd_bus_emit_properties_changed(p->bus, p->path, STM32ISP_PORT_INTERFACE,
                                              "State", NULL);
}

static void port_emit_progress(Port *p) {
        sd_bus *bus = p->bus;

        (void) sd_bus_emit_signal(bus, p->path, STM32ISP_PORT_INTERFACE, "Progress", "stt",
                                  flasher_stage_to_string(p->stage), p->progress_done, p->progress_total);
        (void) sd_bus_emit_properties_changed(bus, p->path, STM32ISP_PORT_INTERFACE, "Progress", NULL);
        p->last_progress_usec = now_usec();
        p->progress_unsent = false;
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Port *p = userdata;

        if (p->progress_unsent && p->busy)
                port_emit_progress(p);
        return 0;
}

static void port_arm_progress_timer(Port *p, uint64_t when) {
        int r;

        if (p->progress_timer) {
                r = sd_event_source_set_time(p->progress_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(p->progress_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(p->event, &p->progress_timer, CLOCK_MONOTONIC, when,
                                      10 * USEC_PER_MSEC, on_progress_timer, p);
        if (r < 0)
                log_debug(p->name, "Cannot arm the progress timer: %s", strerror(-r));
}

static void port_on_progress(Port *p, const WorkerEvent *e) {
        bool stage_changed = !p->have_stage || p->stage != e->stage;
        uint64_t now = now_usec();

        if (!p->busy)
                return;                 /* a poll's: nobody is told */
        if (e->total > 0 && p->station.state == STATION_FLASHING) {
                unsigned percent = (unsigned) MIN(e->done * 100 / e->total, UINT64_C(100));

                /* the whole flash in one number: probing, erasing, writing, verifying */
                if (e->stage == FLASHER_STAGE_WRITING || e->stage == FLASHER_STAGE_VERIFYING ||
                    e->stage == FLASHER_STAGE_ERASING) {
                        unsigned base = e->stage == FLASHER_STAGE_ERASING ? 0 : e->stage == FLASHER_STAGE_WRITING ? 10 : 60;
                        unsigned span = e->stage == FLASHER_STAGE_ERASING ? 10 : e->stage == FLASHER_STAGE_WRITING ? 50 : 40;
                        unsigned v = base + percent * span / 100;

                        if (v != p->station.percent) {
                                station_flash_progress(&p->station, v);
                                port_station_changed(p);
                        }
                }
        }

        p->stage = e->stage;
        p->have_stage = true;
        p->progress_done = e->done;
        p->progress_total = e->total;
        port_set_state(p, stage_to_state(e->stage));

        /* Throttle, but never drop a stage's first or last value. */
        if (stage_changed || e->done >= e->total || now - p->last_progress_usec >= PROGRESS_INTERVAL_USEC)
                port_emit_progress(p);
        else if (!p->progress_unsent) {
                p->progress_unsent = true;
                port_arm_progress_timer(p, p->last_progress_usec + PROGRESS_INTERVAL_USEC);
        }
}

/* ---- properties ---- */

static int prop_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        const char *v = "";

        if (streq(property, "Device"))
                v = p->device;
        else if (streq(property, "Transport"))
                v = link_transport_to_string(p->transport);
        else if (streq(property, "Serial"))
                v = p->serial;
        else if (streq(property, "Manufacturer"))
                v = p->manufacturer;
        else if (streq(property, "Product"))
                v = p->product;
        else if (streq(property, "PhysicalPath"))
                v = p->physical_path;
        else if (streq(property, "State"))
                v = p->state;
        return sd_bus_message_append(reply, "s", v ?: "");
}

static int prop_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        return sd_bus_message_append(reply, "q", streq(property, "VendorId") ? p->vendor_id : p->product_id);
}

static int prop_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        return sd_bus_message_append(reply, "(tt)", p->progress_done, p->progress_total);
}

static int prop_chip(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        if (!p->have_chip)
                return sd_bus_message_append(reply, "a{sv}", 0);
        return bus_append_chip(reply, &p->chip);
}

/* The slot in the operator's words (station.h), for station views. */
static int prop_station(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        char text[STATION_REASON_MAX + 64];

        return sd_bus_message_append(reply, "a{sv}", 5,
                                     "state", "s", station_state_to_string(p->station.state),
                                     "text", "s", station_describe(&p->station, text, sizeof text),
                                     "percent", "u", (uint32_t) p->station.percent,
                                     "reason", "s", p->station.reason,
                                     "profile", "s", p->station_profile ?: "");
}

static int prop_last_result(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        return bus_append_last_result(reply, &p->last);
}

/* ---- jobs ---- */

/* What the caller needs polkit's yes for (include/stm32isp.h names the actions). */
static int port_authorize(Port *p, sd_bus_message *m, JobOp op, bool protection, sd_bus_error *error) {
        const char *action = op == JOB_PROBE || op == JOB_READ || op == JOB_DIAGNOSE ? STM32ISP_ACTION_READ :
                             op == JOB_ERASE ? STM32ISP_ACTION_ERASE :
                             op == JOB_LOCK || op == JOB_UNLOCK ? STM32ISP_ACTION_PROTECT :
                             STM32ISP_ACTION_FLASH;     /* Flash, Go */

        return polkit_authorize(p->polkit, m,
                                protection ? POLKIT_ACTIONS(action, STM32ISP_ACTION_PROTECT) : POLKIT_ACTIONS(action),
                                p->device, error);
}

static int port_check_idle(Port *p, sd_bus_error *error) {
        if (p->unplugged)
                return sd_bus_error_setf(error, STM32ISP_ERROR_DISCONNECTED, "%s is gone", p->device);
        if (p->exiting)
                return sd_bus_error_setf(error, STM32ISP_ERROR_CANCELLED, "The daemon is shutting down");
        if (p->busy)
                return sd_bus_error_setf(error, STM32ISP_ERROR_BUSY, "%s is busy with %s",
                                         p->device, job_op_to_string(p->op));
        return 0;
}

/* The caller of the running job left the bus: nobody would see its result, so the job
 * is cancelled (a half-written flash is then reported, not left to look done). */
static int on_caller_gone(sd_bus_track *t, void *userdata) {
        Port *p = userdata;

        p->caller = sd_bus_track_unref(p->caller);
        if (!p->busy)
                return 0;
        log_info(p->name, "The caller of %s left the bus, cancelling it (detach keeps a job running)",
                 job_op_to_string(p->op));
        p->caller_left = true;
        worker_cancel(p->worker);
        return 0;
}

/* Hands j (always taken) to the worker; m: the call to answer when it ends, NULL for
 * none (an auto-flash job: no caller, it runs to its end); unless detach, the job is
 * cancelled when m's sender leaves the bus (a sender gone already: the job does not
 * start). */
static int port_start_job(Port *p, sd_bus_message *m, Job *j, bool detach) {
        _cleanup_(sd_bus_track_unrefp) sd_bus_track *caller = NULL;
        int r;

        /* Watched from before the job starts: a caller gone by then is seen at once. */
        if (m && !detach) {
                r = sd_bus_track_new(p->bus, &caller, on_caller_gone, p);
                if (r >= 0)
                        r = sd_bus_track_add_sender(caller, m);
                if (r < 0) {
                        job_free(j);
                        return r;
                }
        }
        /* the chip the port last saw, for a NoBootloader message; j is the worker's once
         * submitted */
        j->hint_pid = p->have_chip ? p->chip.pid : 0;
        j->remembered_baud = p->synced_baud;
        r = worker_submit(p->worker, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        sd_bus_track_unref(p->caller);
        p->caller = TAKE_PTR(caller);
        p->caller_left = false;
        p->busy = true;
        p->op = j->op;
        p->pending = sd_bus_message_ref(m);
        /* Without it (no logind) the job runs all the same. */
        p->inhibitor = inhibitor_free(p->inhibitor);
        (void) inhibitor_new(p->bus, job_op_to_string(j->op), p->device, &p->inhibitor);
        p->have_stage = false;
        p->progress_unsent = false;
        p->progress_done = p->progress_total = 0;
        port_set_state(p, op_to_state(j->op));
        (void) sd_bus_emit_properties_changed(p->bus, p->path, STM32ISP_PORT_INTERFACE, "Progress", NULL);
        p->hooks->busy_changed(p, p->userdata);
        log_debug(p->name, "%s started", job_op_to_string(j->op));
        return 1;
}

/* A job built from q for op, started for the call m. */
static int port_start_request(Port *p, sd_bus_message *m, const Request *q, JobOp op) {
        Job *j = NULL;
        int r;

        r = request_new_job(q, op, &j);
        if (r < 0)
                return r;
        return port_start_job(p, m, j, q->detach);
}

static int method_simple(sd_bus_message *m, Port *p, JobOp op, sd_bus_error *error) {
        Request q;
        int r;

        r = request_parse(m, op == JOB_ERASE ? PORT_OPTIONS_ERASE :
                             op == JOB_LOCK || op == JOB_UNLOCK ? PORT_OPTIONS_LOCK : PORT_OPTIONS_LINK,
                          &q, error);
        if (r < 0)
                return r;
        if (op == JOB_ERASE) {
                if (!q.have_erase)
                        q.flash.erase = FLASHER_ERASE_MASS;
                if (q.flash.erase == FLASHER_ERASE_NONE)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'mode' must be 'mass' or 'auto'");
                if (q.flash.erase == FLASHER_ERASE_AUTO && (!q.have_address || !q.have_length || q.length == 0))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'mode' 'auto' needs 'address' and 'length'");
        }
        r = port_authorize(p, m, op, false, error);
        if (r != 0)
                return r;
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        return port_start_request(p, m, &q, op);
}

static int method_probe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_PROBE, error);
}

/* Read-only: the probe, a few reads, Get ID round trips (job.c); the reply is decoded
 * by diagnosis.c. */
static int method_diagnose(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_DIAGNOSE, error);
}

static int method_erase(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_ERASE, error);
}

static int method_lock(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_LOCK, error);
}

static int method_unlock(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_UNLOCK, error);
}

static int method_go(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        Request q = {};
        int r;

        r = sd_bus_message_read(m, "t", &q.address);
        if (r < 0)
                return r;
        if (q.address > UINT32_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Address is out of range");
        /* Go loads MSP from [address] and jumps to [address + 4] (AN3155 §3.5): the
         * address of a vector table, word-aligned. An odd one is a function's Thumb
         * address, which would start garbage. */
        if (q.address & 3)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Go takes the address of a vector table (word-aligned), not 0x%08" PRIX64
                                         "%s", q.address,
                                         (q.address & 1) ? ": an odd address is a function's Thumb address" : "");
        r = port_authorize(p, m, JOB_GO, false, error);
        if (r != 0)
                return r;
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        return port_start_request(p, m, &q, JOB_GO);
}

static int method_read(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        uint64_t address, length;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int in_fd, flags, r;
        Request q;
        Job *j = NULL;

        r = sd_bus_message_read(m, "htt", &in_fd, &address, &length);
        if (r < 0)
                return r;
        r = request_parse(m, PORT_OPTIONS_LINK, &q, error);
        if (r < 0)
                return r;
        if (address > UINT32_MAX || length == 0 || length > READ_LENGTH_MAX || address + length > (uint64_t) UINT32_MAX + 1)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Address and length must describe 1..%u bytes of the 32-bit space",
                                         READ_LENGTH_MAX);
        flags = fcntl(in_fd, F_GETFL);
        if (flags < 0 || fstat(in_fd, &st) < 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot use the output file descriptor: %m");
        if ((flags & O_ACCMODE) == O_RDONLY || S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The output file descriptor is not writable");
        r = port_authorize(p, m, JOB_READ, false, error);
        if (r != 0)
                return r;
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        q.address = address;
        q.length = length;
        r = request_new_job(&q, JOB_READ, &j);
        if (r < 0)
                return r;
        j->out_fd = TAKE_FD(fd);
        return port_start_job(p, m, j, q.detach);
}

static int method_flash(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        _cleanup_free_ uint8_t *data = NULL;
        ImageError ierr = {};
        size_t size = 0;
        int in_fd, r;
        Request q;
        Job *j = NULL;

        r = sd_bus_message_read(m, "h", &in_fd);
        if (r < 0)
                return r;
        r = request_parse(m, PORT_OPTIONS_FLASH, &q, error);
        if (r < 0)
                return r;
        if (q.serial.enabled && !p->serials)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Serial numbers need the daemon's state directory (--state-dir), where the "
                                         "counters are kept");
        r = port_authorize(p, m, JOB_FLASH, q.flash.unprotect || q.flash.protect, error);
        if (r != 0)
                return r;
        r = port_check_idle(p, error);
        if (r < 0)
                return r;

        /* The caller's image, read once from offset 0 into memory. */
        r = image_file_read(in_fd, &data, &size);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image must be a regular file");
        if (r == -EFBIG)
                return sd_bus_error_setf(error, STM32ISP_ERROR_IMAGE_TOO_LARGE,
                                         "The image file has %zu bytes, more than the %u allowed",
                                         size, IMAGE_FILE_MAX);
        if (r == -ENODATA)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image is empty");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot read the image: %s", strerror(-r));

        r = request_new_flash_job(&q, data, size, NULL, "fd", &j, &ierr);
        if (r == -EDOM)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", ierr.message);
        if (r == -EFBIG)
                return sd_bus_error_setf(error, STM32ISP_ERROR_IMAGE_TOO_LARGE, "%s",
                                         ierr.message[0] ? ierr.message : "The image is too large");
        if (r == -ENODATA)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image holds no data");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "%s",
                                         ierr.message[0] ? ierr.message : "The image cannot be parsed");
        if (q.serial.enabled) {
                r = serial_job_attach(j, p->serials, &q.serial);
                if (r < 0) {
                        job_free(j);
                        return r;
                }
        }
        return port_start_job(p, m, j, q.detach);
}

int port_poll(Port *p, unsigned syncs) {
        Job *j;
        int r;

        if (p->busy || p->polling || p->unplugged || p->exiting)
                return -EBUSY;
        j = job_new(JOB_PROBE);
        if (!j)
                return -ENOMEM;
        j->poll_syncs = syncs;
        r = worker_submit(p->worker, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        p->polling = true;
        return 0;
}

bool port_is_polling(const Port *p) {
        return p->polling;
}

void port_set_serial_store(Port *p, SerialStore *store) {
        p->serials = store;
}

void port_set_plugged(Port *p, bool plugged) {
        p->plugged = plugged;
}

bool port_plugged(const Port *p) {
        return p->plugged;
}

Station *port_station(Port *p) {
        return &p->station;
}

void port_set_station_profile(Port *p, const char *profile) {
        if (streq_ptr(p->station_profile, profile))
                return;
        p->station_profile = profile;
        port_station_changed(p);
}

void port_station_changed(Port *p) {
        (void) sd_bus_emit_properties_changed(p->bus, p->path, STM32ISP_PORT_INTERFACE, "Station", NULL);
}

int port_submit(Port *p, Job *j) {
        int r;

        if (p->busy || p->unplugged || p->exiting) {
                job_free(j);
                return -EBUSY;
        }
        r = port_start_job(p, NULL, j, true);
        return r < 0 ? r : 0;
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        int r;

        /* Others' jobs (and auto-flash runs) need the right to start one like it. */
        if (p->busy && !(p->pending && streq_ptr(sd_bus_message_get_sender(p->pending),
                                                 sd_bus_message_get_sender(m)))) {
                r = port_authorize(p, m, p->op, false, error);
                if (r != 0)
                        return r;
        }
        if (p->busy) {
                log_info(p->name, "Cancelling %s", job_op_to_string(p->op));
                worker_cancel(p->worker);
        }
        return sd_bus_reply_method_return(m, NULL);
}

bool port_shutdown(Port *p) {
        p->exiting = true;
        if (p->busy)
                worker_cancel(p->worker);
        return p->busy;
}

bool port_unplug(Port *p) {
        p->unplugged = true;
        if (!p->busy)
                return false;
        worker_cancel(p->worker);
        return true;
}

void port_abandon(Port *p) {
        if (!p->pending)
                return;
        (void) sd_bus_reply_method_errorf(p->pending, STM32ISP_ERROR_CANCELLED, "The daemon is shutting down");
        p->pending = sd_bus_message_unref(p->pending);
}

/* ---- the end of a job ---- */

/* The job's results entry: to the log (the journal's fields), then to the caller's
 * record hook (the results file, the auto-flash counts). */
static void port_record(Port *p, const Job *j, uint64_t timestamp_usec, int error, const char *error_name,
                        const char *message) {
        const ResultsPort where = {
                .device = p->device,
                .serial = p->serial,
                .physical_path = p->physical_path,
                .vendor_id = p->vendor_id,
                .product_id = p->product_id,
        };
        json_object *entry = results_entry_new(&where, j, timestamp_usec, error, error_name, message);

        if (!entry) {
                log_error(p->name, "Cannot build the result entry: out of memory");
                return;
        }
        if (p->last.trace_file[0])
                (void) json_object_object_add(entry, "trace_file", json_object_new_string(p->last.trace_file));
        log_job_result(p->name, job_op_to_string(j->op), entry, error, error_name, message);
        p->hooks->record(p, j, entry, error, p->userdata);
        json_object_put(entry);
}

static void port_on_done(Port *p, Job *j) {
        sd_bus *bus = p->bus;
        const char *error_name = "";
        const char *message = "";
        char stopping[sizeof p->last.message];
        struct timespec ts;
        int error = j->error;

        /* A job that ended because the adapter left reports that, whatever the flasher saw. */
        if (error < 0 && p->unplugged)
                error = -ENODEV;
        if (error < 0) {
                error_name = stm32isp_error_name_from_errno(error);
                message = j->message[0] ? j->message : strerror(-error);
                if (error == -ENODEV && p->unplugged)
                        message = "The adapter was unplugged";
                if (error == -ECANCELED && p->caller_left) {
                        char why[sizeof j->message];

                        snprintf(why, sizeof why, "The caller left the bus: %.480s", message);
                        snprintf(j->message, sizeof j->message, "%s", why);
                        message = j->message;
                } else if (error == -ECANCELED && p->exiting) {
                        /* Not another client's Cancel: the daemon itself is stopping (SIGTERM). */
                        snprintf(stopping, sizeof stopping, "stm32ispd is stopping (SIGTERM): %.400s", message);
                        message = stopping;
                }
        }
        p->caller = sd_bus_track_unref(p->caller);
        p->caller_left = false;

        if (p->progress_unsent)
                port_emit_progress(p);

        if (j->have_chip) {
                p->have_chip = true;
                p->chip = j->chip;
        }
        /* a job that never reached the chip (the port did not open) changed nothing */
        if (j->baudrate_used > 0)
                p->synced_baud = j->baud_left;
        if (j->baudrate_remembered)
                log_info(p->name, "No answer at the asked rate: the chip answered at %u baud, the rate an earlier "
                         "job left it synced at", j->baudrate_used);
        clock_gettime(CLOCK_REALTIME, &ts);
        p->last = (LastResult) {
                .valid = true,
                .op = j->op,
                .error = error,
                .result = j->result,
                .duration_usec = j->duration_usec,
                .timestamp_usec = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC,
                .bytes_read = j->op == JOB_READ && error == 0 ? j->length : 0,
                .baudrate = j->baudrate_used,
                .baudrate_remembered = j->baudrate_remembered,
                .started_by_reset = j->started_by_reset,
                .have_serial_number = j->have_serial_number,
                .serial_number = j->serial_number,
        };
        if (j->have_chip) {
                p->last.have_chip = true;
                p->last.chip_pid = j->chip.pid;
                snprintf(p->last.chip_name, sizeof p->last.chip_name, "%s", j->chip.info ? j->chip.info->name : "");
                for (size_t i = 0; j->chip.have_uid && i < sizeof j->chip.uid; i++)
                        snprintf(p->last.uid + 2 * i, 3, "%02x", j->chip.uid[i]);
        }
        snprintf(p->last.error_name, sizeof p->last.error_name, "%s", error_name);
        snprintf(p->last.message, sizeof p->last.message, "%s", message);
        if (error < 0 && j->trace && p->hooks->save_trace) {
                _cleanup_free_ char *path = NULL;
                int r = p->hooks->save_trace(p, j, p->last.timestamp_usec, &path, p->userdata);

                if (r < 0)
                        log_warning(p->name, "Cannot keep the wire trace: %s", strerror(-r));
                else if (path)
                        snprintf(p->last.trace_file, sizeof p->last.trace_file, "%s", path);
        }

        p->busy = false;
        p->inhibitor = inhibitor_free(p->inhibitor);
        p->state = "idle";
        p->hooks->busy_changed(p, p->userdata);
        (void) sd_bus_emit_properties_changed(bus, p->path, STM32ISP_PORT_INTERFACE,
                                              "State", "Progress", "LastResult",
                                              j->have_chip ? "Chip" : NULL, NULL);
        (void) sd_bus_emit_signal(bus, p->path, STM32ISP_PORT_INTERFACE, "Finished", "sss",
                                  job_op_to_string(j->op), error_name, message);
        port_record(p, j, p->last.timestamp_usec, error, error_name, message);

        if (p->pending) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int r;

                if (error < 0 && p->last.trace_file[0])
                        r = sd_bus_reply_method_errorf(p->pending, error_name, "%s (wire trace: %s)", message,
                                                       p->last.trace_file);
                else if (error < 0)
                        r = sd_bus_reply_method_errorf(p->pending, error_name, "%s", message);
                else {
                        r = sd_bus_message_new_method_return(p->pending, &reply);
                        if (r >= 0 && j->op == JOB_PROBE)
                                r = bus_append_chip(reply, &j->chip);
                        else if (r >= 0 && j->op == JOB_FLASH)
                                r = bus_append_last_result(reply, &p->last);
                        else if (r >= 0 && j->op == JOB_DIAGNOSE) {
                                const BusAdapter a = {
                                        .device = p->device,
                                        .transport = link_transport_to_string(p->transport),
                                        .driver = p->driver,
                                        .serial = p->serial,
                                        .manufacturer = p->manufacturer,
                                        .product = p->product,
                                        .vendor_id = p->vendor_id,
                                        .product_id = p->product_id,
                                };

                                r = bus_append_diagnosis(reply, j, &a);
                        }
                        if (r >= 0)
                                r = sd_bus_send(NULL, reply, NULL);
                }
                if (r < 0)
                        log_warning(p->name, "Cannot send the reply: %s", strerror(-r));
                p->pending = sd_bus_message_unref(p->pending);
        }
}

static int port_on_worker(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        /* The job_done hook may drop the port: it lives until this handler returns. */
        _cleanup_(port_unrefp) Port *p = port_ref(userdata);
        WorkerEvent *e;

        while ((e = worker_pop_event(p->worker))) {
                if (e->type == WORKER_EVENT_PROGRESS)
                        port_on_progress(p, e);
                else if (e->job->poll_syncs) {
                        p->polling = false;
                        if (p->hooks->polled)
                                p->hooks->polled(p, e->job, p->userdata);
                } else {
                        bool drop;

                        port_on_done(p, e->job);
                        /* Gone for good when the device node went with it (a TCP server
                         * may come back: those ports stay until RemovePort). */
                        drop = p->unplugged ||
                               (e->job->error == -ENODEV &&
                                (link_transport_caps(p->transport) & LINK_CAP_DEVICE_NODE) &&
                                access(p->device, F_OK) < 0);
                        worker_event_free(e);
                        p->hooks->job_done(p, drop, p->userdata);
                        return 0;
                }
                worker_event_free(e);
        }
        return 0;
}

/* ---- object ---- */

static const sd_bus_vtable port_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Device", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Transport", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("VendorId", "q", prop_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ProductId", "q", prop_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Serial", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Manufacturer", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Product", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PhysicalPath", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "(tt)", prop_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Chip", "a{sv}", prop_chip, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastResult", "a{sv}", prop_last_result, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Station", "a{sv}", prop_station, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Probe", "a{sv}", SD_BUS_PARAM(options), "a{sv}", SD_BUS_PARAM(chip),
                                 method_probe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Diagnose", "a{sv}", SD_BUS_PARAM(options), "a{sv}", SD_BUS_PARAM(diagnosis),
                                 method_diagnose, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Flash", "ha{sv}", SD_BUS_PARAM(image) SD_BUS_PARAM(options),
                                 "a{sv}", SD_BUS_PARAM(result), method_flash, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Erase", "a{sv}", SD_BUS_PARAM(options), "", ,
                                 method_erase, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Read", "htta{sv}",
                                 SD_BUS_PARAM(out) SD_BUS_PARAM(address) SD_BUS_PARAM(length) SD_BUS_PARAM(options),
                                 "", , method_read, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Lock", "a{sv}", SD_BUS_PARAM(options), "", ,
                                 method_lock, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Unlock", "a{sv}", SD_BUS_PARAM(options), "", ,
                                 method_unlock, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Go", "t", SD_BUS_PARAM(address), "", ,
                                 method_go, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Cancel", "", "", method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Progress", "stt", SD_BUS_PARAM(stage) SD_BUS_PARAM(done) SD_BUS_PARAM(total), 0),
        SD_BUS_SIGNAL_WITH_NAMES("Finished", "sss",
                                 SD_BUS_PARAM(operation) SD_BUS_PARAM(error_name) SD_BUS_PARAM(message), 0),
        SD_BUS_VTABLE_END
};

static int strdup_or_empty(const char *s, char **ret) {
        *ret = strdup(s ?: "");
        return *ret ? 0 : -ENOMEM;
}

int port_new(sd_bus *bus, sd_event *event, Polkit *polkit, bool verbose, const PortInfo *info,
             const PortHooks *hooks, void *userdata, Port **ret) {
        _cleanup_(port_unrefp) Port *p = NULL;
        int r;

        p = calloc(1, sizeof(Port));
        if (!p)
                return -ENOMEM;
        p->n_ref = 1;
        p->added_usec = now_usec();
        p->bus = sd_bus_ref(bus);
        p->event = sd_event_ref(event);
        p->polkit = polkit;
        p->hooks = hooks;
        p->userdata = userdata;
        p->state = "idle";
        station_init(&p->station);
        p->transport = info->transport;
        p->vendor_id = info->vendor_id;
        p->product_id = info->product_id;
        if (strdup_or_empty(info->name, &p->name) < 0 ||
            strdup_or_empty(info->device, &p->device) < 0 ||
            strdup_or_empty(info->serial, &p->serial) < 0 ||
            strdup_or_empty(info->manufacturer, &p->manufacturer) < 0 ||
            strdup_or_empty(info->product, &p->product) < 0 ||
            strdup_or_empty(info->physical_path, &p->physical_path) < 0 ||
            strdup_or_empty(info->driver, &p->driver) < 0)
                return -ENOMEM;
        r = sd_bus_path_encode(STM32ISP_PORT_PATH_PREFIX, p->name, &p->path);
        if (r < 0)
                return r;

        r = worker_new(p->device, verbose, &p->worker);
        if (r < 0)
                return r;
        r = sd_event_add_io(p->event, &p->worker_source, worker_get_fd(p->worker), EPOLLIN,
                            port_on_worker, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->worker_source, "port-worker");

        r = sd_bus_add_object_vtable(p->bus, &p->slot, p->path, STM32ISP_PORT_INTERFACE, port_vtable, p);
        if (r < 0)
                return r;
        (void) sd_bus_emit_object_added(p->bus, p->path);

        *ret = TAKE_PTR(p);
        return 0;
}

static Port *port_free(Port *p) {
        if (p->slot) {
                (void) sd_bus_emit_object_removed(p->bus, p->path);
                p->slot = sd_bus_slot_unref(p->slot);
        }
        p->worker_source = sd_event_source_disable_unref(p->worker_source);
        p->progress_timer = sd_event_source_disable_unref(p->progress_timer);
        p->inhibitor = inhibitor_free(p->inhibitor);
        p->caller = sd_bus_track_unref(p->caller);
        /* Joins the thread; a job still running sees the cancel flag. */
        p->worker = worker_free(p->worker);
        if (p->pending) {
                (void) sd_bus_reply_method_errorf(p->pending, STM32ISP_ERROR_DISCONNECTED, "%s was removed", p->device);
                p->pending = sd_bus_message_unref(p->pending);
        }
        sd_bus_unref(p->bus);
        sd_event_unref(p->event);
        free(p->name);
        free(p->device);
        free(p->path);
        free(p->serial);
        free(p->manufacturer);
        free(p->product);
        free(p->physical_path);
        free(p->driver);
        free(p);
        return NULL;
}

Port *port_ref(Port *p) {
        if (p)
                p->n_ref++;
        return p;
}

Port *port_unref(Port *p) {
        if (p && --p->n_ref == 0)
                port_free(p);
        return NULL;
}
