/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Port object: method calls become jobs for the worker thread; the worker's
 * events come back through its eventfd and become signals, property changes and,
 * when the job ends, the single reply. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
#include <time.h>

#include "fileio.h"
#include "autoflash.h"
#include "manager.h"
#include "options.h"
#include "port.h"
#include "request.h"
#include "results.h"
#include "sha256.h"
#include "stm32isp-errors.h"
#include "worker.h"

/* The largest flash of the supported parts is 64 KiB; Intel HEX/S-record text is about
 * 2.5x the data, ELF carries symbols and debug info: a generous cap, still small. */
#define IMAGE_SIZE_MAX (4u * 1024 * 1024)
#define READ_LENGTH_MAX (16u * 1024 * 1024)
#define PROGRESS_INTERVAL_USEC (50 * USEC_PER_MSEC)   /* <= 20 signals/s */

typedef struct LastResult {
        bool valid;
        JobOp op;
        int error;
        char error_name[128];
        char message[256];
        FlasherResult result;
        uint64_t duration_usec;
        uint64_t timestamp_usec;        /* CLOCK_REALTIME */
        uint64_t bytes_read;
        unsigned baudrate;              /* the job's last sync ran at; 0: none tried */
} LastResult;

struct Port {
        Manager *manager;
        char *name, *device, *syspath, *path;
        LinkTransport transport;
        uint16_t vendor_id, product_id;
        char *serial, *manufacturer, *product, *physical_path;

        Worker *worker;
        sd_event_source *worker_source;
        sd_event_source *progress_timer;        /* sends a held-back value when the flasher goes quiet */
        sd_bus_slot *slot;

        /* The running job. */
        bool busy;
        JobOp op;
        sd_bus_message *pending;
        bool unplugged;

        const char *state;
        uint64_t progress_done, progress_total;
        FlasherStage stage;
        bool have_stage;
        uint64_t last_progress_usec;
        bool progress_unsent;

        bool have_chip;
        FlasherChip chip;
        LastResult last;
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

const char *port_syspath(const Port *p) {
        return p->syspath;
}

bool port_is_busy(const Port *p) {
        return p->busy;
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

static const char *stage_to_state(FlasherStage s) {
        switch (s) {
        case FLASHER_STAGE_CONNECTING:
                return "probing";
        case FLASHER_STAGE_UNPROTECTING:
                return "unprotecting";
        case FLASHER_STAGE_ERASING:
                return "erasing";
        case FLASHER_STAGE_WRITING:
        case FLASHER_STAGE_OPTIONS:
                return "writing";
        case FLASHER_STAGE_VERIFYING:
                return "verifying";
        case FLASHER_STAGE_READING:
                return "reading";
        case FLASHER_STAGE_PROTECTING:
                return "protecting";
        case FLASHER_STAGE_STARTING:
                return "starting";
        default:
                return "probing";
        }
}

static const char *op_to_state(JobOp op) {
        switch (op) {
        case JOB_ERASE:
                return "erasing";
        case JOB_READ:
                return "reading";
        case JOB_LOCK:
                return "protecting";
        case JOB_UNLOCK:
                return "unprotecting";
        case JOB_GO:
                return "starting";
        default:
                return "probing";
        }
}

static void port_set_state(Port *p, const char *state) {
        if (p->state && streq_ptr(p->state, state))
                return;
        p->state = state;
        (void) sd_bus_emit_properties_changed(manager_bus(p->manager), p->path, STM32ISP_PORT_INTERFACE,
                                              "State", NULL);
}

static void port_emit_progress(Port *p) {
        sd_bus *bus = manager_bus(p->manager);

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
                r = sd_event_add_time(manager_event(p->manager), &p->progress_timer, CLOCK_MONOTONIC, when,
                                      10 * USEC_PER_MSEC, on_progress_timer, p);
        if (r < 0)
                log_debug(p->name, "Cannot arm the progress timer: %s", strerror(-r));
}

static void port_on_progress(Port *p, const WorkerEvent *e) {
        bool stage_changed = !p->have_stage || p->stage != e->stage;
        uint64_t now = now_usec();

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

/* ---- a{sv} builders ---- */

static int append_chip(sd_bus_message *m, const FlasherChip *c) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}",
                                  "pid", "q", c->pid,
                                  "name", "s", c->info ? c->info->name : "",
                                  "protocol_version", "y", c->protocol_version,
                                  "flash_size", "u", c->flash_size);
        if (r < 0)
                return r;
        if (c->info) {
                r = sd_bus_message_append(m, "{sv}{sv}{sv}",
                                          "family", "s", chip_family_to_string(c->info->family),
                                          "flash_base", "u", c->info->flash_base,
                                          "page_size", "u", c->info->page_size);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append(m, "{sv}", "rdp_level", "i", (int32_t) c->rdp_level);
        if (r < 0)
                return r;
        if (c->have_uid) {
                char hex[sizeof c->uid * 2 + 1];

                for (size_t i = 0; i < sizeof c->uid; i++)
                        snprintf(hex + 2 * i, 3, "%02x", c->uid[i]);
                r = sd_bus_message_append(m, "{sv}", "uid", "s", hex);
                if (r < 0)
                        return r;
        }
        if (c->have_option_bytes) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "option_bytes");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "ay");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', c->option_bytes,
                                                        MIN(c->option_bytes_size, sizeof c->option_bytes));
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sv}", "optr", "u", c->optr);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "commands");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', c->commands, MIN(c->n_commands, sizeof c->commands));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_result(sd_bus_message *m, const LastResult *l) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (!l->valid)
                return sd_bus_message_close_container(m);
        r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}",
                                  "operation", "s", job_op_to_string(l->op),
                                  "error", "s", l->error_name,
                                  "message", "s", l->message,
                                  "duration_usec", "t", l->duration_usec,
                                  "timestamp_usec", "t", l->timestamp_usec);
        if (r < 0)
                return r;
        if (l->baudrate > 0) {
                r = sd_bus_message_append(m, "{sv}", "baudrate", "u", (uint32_t) l->baudrate);
                if (r < 0)
                        return r;
        }
        if (l->op == JOB_FLASH && l->error == 0) {
                const FlasherResult *f = &l->result;

                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                          "bytes_written", "t", f->bytes_written,
                                          "bytes_verified", "t", f->bytes_verified,
                                          "pages_erased", "u", f->pages_erased,
                                          "mass_erased", "b", (int) f->mass_erased,
                                          "unprotected", "b", (int) f->unprotected,
                                          "protected", "b", (int) f->protected_,
                                          "boot0_changed", "b", (int) f->boot0_changed,
                                          "started", "b", (int) f->started,
                                          "write_retries", "u", f->write_retries);
                if (r < 0)
                        return r;
        }
        if (l->op == JOB_READ && l->error == 0) {
                r = sd_bus_message_append(m, "{sv}", "bytes_read", "t", l->bytes_read);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
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
        return append_chip(reply, &p->chip);
}

static int prop_last_result(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        return append_result(reply, &p->last);
}

/* ---- options ---- */

typedef struct Options {
        bool have_address, have_length;
        uint64_t address, length;
        ImageFormat format;
        FlasherErase erase;
        bool have_erase;
        bool verify, unprotect, protect, boot0, go;
        unsigned baudrate;
        const char *entry;              /* points into the message */
        const char *image_name;         /* points into the message */
} Options;

/* One key of a Port method's options (options_parse() checked key and type). */
static int port_option(const OptionValue *v, void *userdata, sd_bus_error *error) {
        Options *o = userdata;
        int r = 0;

        switch ((PortOptionId) v->spec->id) {
        case PORT_OPTION_ADDRESS:
        case PORT_OPTION_LENGTH:
                if (v->t > UINT32_MAX)
                        return options_error(error, v, "is out of range");
                if (v->spec->id == PORT_OPTION_ADDRESS) {
                        o->address = v->t;
                        o->have_address = true;
                } else {
                        o->length = v->t;
                        o->have_length = true;
                }
                return 0;
        case PORT_OPTION_FORMAT:
                r = image_format_from_string(v->s, &o->format);
                break;
        case PORT_OPTION_ENTRY:
                r = entry_validate(v->s);
                o->entry = v->s;
                break;
        case PORT_OPTION_IMAGE_NAME:
                /* One line in the log and the journal. */
                r = strlen(v->s) > 0 && strlen(v->s) <= 255 && !strpbrk(v->s, "\n\r") ? 0 : -EINVAL;
                o->image_name = v->s;
                break;
        case PORT_OPTION_ERASE:
        case PORT_OPTION_MODE:
                r = erase_mode_from_string(v->s, &o->erase);
                o->have_erase = true;
                break;
        case PORT_OPTION_BAUDRATE:
                /* Above 115200 the worker tries the rate first and falls back to 115200. */
                if (v->u < STM32ISP_BAUDRATE_MIN || v->u > STM32ISP_BAUDRATE_MAX)
                        return options_error(error, v, "must be %u..%u", STM32ISP_BAUDRATE_MIN, STM32ISP_BAUDRATE_MAX);
                o->baudrate = v->u;
                return 0;
        case PORT_OPTION_VERIFY:
                o->verify = v->b;
                return 0;
        case PORT_OPTION_UNPROTECT:
                o->unprotect = v->b;
                return 0;
        case PORT_OPTION_PROTECT:
                o->protect = v->b;
                return 0;
        case PORT_OPTION_BOOT0:
                o->boot0 = v->b;
                return 0;
        case PORT_OPTION_GO:
                o->go = v->b;
                return 0;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return options_error_invalid(error, v);
        return 0;
}

/* Reads a Port method's a{sv}: keys this method does not take, wrong types and bad
 * values are InvalidArgs naming the key. */
static int parse_options(sd_bus_message *m, uint64_t allowed, Options *o, sd_bus_error *error) {
        int r;

        *o = (Options) {
                .format = IMAGE_FORMAT_AUTO,
                .erase = FLASHER_ERASE_AUTO,
                .verify = true,
                .boot0 = true,
        };
        r = options_parse(m, &port_option_table, allowed, port_option, o, error);
        return r < 0 ? r : 0;
}

/* ---- jobs ---- */

static int port_check_idle(Port *p, sd_bus_error *error) {
        if (p->unplugged)
                return sd_bus_error_setf(error, STM32ISP_ERROR_DISCONNECTED, "%s is gone", p->device);
        if (manager_exiting(p->manager))
                return sd_bus_error_setf(error, STM32ISP_ERROR_CANCELLED, "The daemon is shutting down");
        if (p->busy)
                return sd_bus_error_setf(error, STM32ISP_ERROR_BUSY, "%s is busy with %s",
                                         p->device, job_op_to_string(p->op));
        return 0;
}

static int port_start_job(Port *p, sd_bus_message *m, Job *j, const Options *o, sd_bus_error *error) {
        int r;

        j->baudrate = o->baudrate;
        if (o->entry) {
                j->entry = strdup(o->entry);
                if (!j->entry) {
                        job_free(j);
                        return -ENOMEM;
                }
        }
        r = worker_submit(p->worker, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        p->busy = true;
        p->op = j->op;
        p->pending = sd_bus_message_ref(m);
        p->have_stage = false;
        p->progress_unsent = false;
        p->progress_done = p->progress_total = 0;
        port_set_state(p, op_to_state(j->op));
        (void) sd_bus_emit_properties_changed(manager_bus(p->manager), p->path, STM32ISP_PORT_INTERFACE,
                                              "Progress", NULL);
        manager_update_status(p->manager);
        log_debug(p->name, "%s started", job_op_to_string(j->op));
        return 1;
}

static int method_simple(sd_bus_message *m, Port *p, JobOp op, sd_bus_error *error) {
        Options o;
        Job *j;
        int r;

        r = parse_options(m, op == JOB_ERASE ? PORT_OPTIONS_ERASE : PORT_OPTIONS_LINK, &o, error);
        if (r < 0)
                return r;
        if (op == JOB_ERASE) {
                if (!o.have_erase)
                        o.erase = FLASHER_ERASE_MASS;
                if (o.erase == FLASHER_ERASE_NONE)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'mode' must be 'mass' or 'auto'");
                if (o.erase == FLASHER_ERASE_AUTO && (!o.have_address || !o.have_length || o.length == 0))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option 'mode' 'auto' needs 'address' and 'length'");
        }
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        j = job_new(op);
        if (!j)
                return -ENOMEM;
        j->erase_mode = o.erase;
        j->address = (uint32_t) o.address;
        j->length = (uint32_t) o.length;
        return port_start_job(p, m, j, &o, error);
}

static int method_probe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_simple(m, userdata, JOB_PROBE, error);
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
        uint64_t address;
        Options o = {};
        Job *j;
        int r;

        r = sd_bus_message_read(m, "t", &address);
        if (r < 0)
                return r;
        if (address > UINT32_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Address is out of range");
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        j = job_new(JOB_GO);
        if (!j)
                return -ENOMEM;
        j->address = (uint32_t) address;
        return port_start_job(p, m, j, &o, error);
}

static int method_read(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        uint64_t address, length;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int in_fd, flags, r;
        Options o;
        Job *j;

        r = sd_bus_message_read(m, "htt", &in_fd, &address, &length);
        if (r < 0)
                return r;
        r = parse_options(m, PORT_OPTIONS_LINK, &o, error);
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
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        j = job_new(JOB_READ);
        if (!j)
                return -ENOMEM;
        j->address = (uint32_t) address;
        j->length = (uint32_t) length;
        j->out_fd = TAKE_FD(fd);
        return port_start_job(p, m, j, &o, error);
}

/* Reads the caller's image once, from offset 0, into memory. */
static int read_image(int fd, uint8_t **ret, size_t *ret_size, sd_bus_error *error) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;
        int r;

        r = read_regular_fd(fd, IMAGE_SIZE_MAX, &buf, &n);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE,
                                         "The image must be a regular file");
        if (r == -EFBIG)
                return sd_bus_error_setf(error, STM32ISP_ERROR_IMAGE_TOO_LARGE,
                                         "The image file has %zu bytes, more than the %u allowed",
                                         n, IMAGE_SIZE_MAX);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot read the image: %s", strerror(-r));
        if (n == 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image is empty");
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int method_flash(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        ImageError ierr = {};
        size_t size = 0;
        int in_fd, r;
        Options o;
        Job *j;

        r = sd_bus_message_read(m, "h", &in_fd);
        if (r < 0)
                return r;
        r = parse_options(m, PORT_OPTIONS_FLASH, &o, error);
        if (r < 0)
                return r;
        r = port_check_idle(p, error);
        if (r < 0)
                return r;
        r = read_image(in_fd, &data, &size, error);
        if (r < 0)
                return r;
        r = image_parse(data, size, o.format, o.have_address ? (uint32_t) o.address : STM32ISP_FLASH_ADDRESS_DEFAULT,
                        &img, &ierr);
        if (r == -EFBIG)
                return sd_bus_error_setf(error, STM32ISP_ERROR_IMAGE_TOO_LARGE, "%s",
                                         ierr.message[0] ? ierr.message : "The image is too large");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "%s",
                                         ierr.message[0] ? ierr.message : "The image cannot be parsed");
        if (image_size(img) == 0)
                return sd_bus_error_setf(error, STM32ISP_ERROR_INVALID_IMAGE, "The image holds no data");

        j = job_new(JOB_FLASH);
        if (!j)
                return -ENOMEM;
        j->image = TAKE_PTR(img);
        j->image_name = strdup(o.image_name ?: "fd");
        if (!j->image_name) {
                job_free(j);
                return -ENOMEM;
        }
        sha256_hex(data, size, j->image_sha256);
        j->flash.erase = o.erase;
        j->flash.verify = o.verify;
        j->flash.unprotect = o.unprotect;
        j->flash.protect = o.protect;
        j->flash.boot0 = o.boot0;
        j->flash.go = o.go;
        return port_start_job(p, m, j, &o, error);
}

int port_start_auto(Port *p, const AutoFlash *a) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Options o = { .baudrate = a->baudrate, .entry = a->entry };
        Job *j;
        int r;

        if (p->busy || p->unplugged || manager_exiting(p->manager))
                return -EBUSY;
        j = job_new(JOB_FLASH);
        if (!j)
                return -ENOMEM;
        r = autoflash_make_image(a, &j->image);
        if (r >= 0) {
                j->image_name = strdup(a->image_name ?: "image");
                if (!j->image_name)
                        r = -ENOMEM;
        }
        if (r < 0) {
                job_free(j);
                return r;
        }
        memcpy(j->image_sha256, a->sha256, sizeof j->image_sha256);
        j->flash = a->flash;
        j->expect_pid = a->expect_chip;
        j->automatic = true;
        log_info(p->name, "Auto-flashing %s", j->image_name);
        r = port_start_job(p, NULL, j, &o, &error);
        return r < 0 ? r : 0;
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Port *p = userdata;

        if (p->busy) {
                log_info(p->name, "Cancelling %s", job_op_to_string(p->op));
                worker_cancel(p->worker);
        }
        return sd_bus_reply_method_return(m, NULL);
}

void port_cancel(Port *p) {
        if (p->busy)
                worker_cancel(p->worker);
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

static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* The options the job ran with, as the caller would pass them. */
static json_object *job_options_json(const Job *j) {
        json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return NULL;
        if (j->baudrate)
                r |= json_add(o, "baudrate", json_object_new_int64(j->baudrate));
        if (j->entry)
                r |= json_add(o, "entry", json_object_new_string(j->entry));
        switch (j->op) {
        case JOB_FLASH:
                r |= json_add(o, "address", json_object_new_int64(j->image && j->image->n_segments ? j->image->segments[0].address : 0));
                r |= json_add(o, "erase", json_object_new_string(erase_mode_to_string(j->flash.erase)));
                r |= json_add(o, "verify", json_object_new_boolean(j->flash.verify));
                r |= json_add(o, "unprotect", json_object_new_boolean(j->flash.unprotect));
                r |= json_add(o, "protect", json_object_new_boolean(j->flash.protect));
                r |= json_add(o, "boot0", json_object_new_boolean(j->flash.boot0));
                r |= json_add(o, "go", json_object_new_boolean(j->flash.go));
                if (j->expect_pid)
                        r |= json_add(o, "expect_chip", json_object_new_int(j->expect_pid));
                break;
        case JOB_ERASE:
                r |= json_add(o, "mode", json_object_new_string(erase_mode_to_string(j->erase_mode)));
                if (j->erase_mode == FLASHER_ERASE_AUTO) {
                        r |= json_add(o, "address", json_object_new_int64(j->address));
                        r |= json_add(o, "length", json_object_new_int64(j->length));
                }
                break;
        case JOB_READ:
                r |= json_add(o, "address", json_object_new_int64(j->address));
                r |= json_add(o, "length", json_object_new_int64(j->length));
                break;
        case JOB_GO:
                r |= json_add(o, "address", json_object_new_int64(j->address));
                break;
        default:
                break;
        }
        if (r < 0)
                return json_object_put(o), NULL;
        return o;
}

/* One results log entry per operation: what ran, where, on which chip, with what. */
static json_object *port_result_json(Port *p, const Job *j, uint64_t timestamp_usec, int error,
                                     const char *error_name, const char *message) {
        char ts[RESULTS_TIMESTAMP_MAX], uid[25] = "";
        json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return NULL;
        if (j->have_chip && j->chip.have_uid)
                for (size_t i = 0; i < sizeof j->chip.uid; i++)
                        snprintf(uid + 2 * i, 3, "%02x", j->chip.uid[i]);
        results_format_timestamp(timestamp_usec, ts);

        r |= json_add(o, "timestamp", json_object_new_string(ts));
        r |= json_add(o, "timestamp_usec", json_object_new_uint64(timestamp_usec));
        r |= json_add(o, "operation", json_object_new_string(job_op_to_string(j->op)));
        r |= json_add(o, "auto", json_object_new_boolean(j->automatic));
        r |= json_add(o, "port", json_object_new_string(p->device));
        r |= json_add(o, "adapter_serial", json_object_new_string(p->serial ?: ""));
        r |= json_add(o, "physical_path", json_object_new_string(p->physical_path ?: ""));
        r |= json_add(o, "vendor_id", json_object_new_int(p->vendor_id));
        r |= json_add(o, "product_id", json_object_new_int(p->product_id));
        /* Only what this job saw: a stale chip would be another board's. */
        r |= json_add(o, "chip_pid", json_object_new_int(j->have_chip ? j->chip.pid : 0));
        r |= json_add(o, "chip_name", json_object_new_string(j->have_chip && j->chip.info ? j->chip.info->name : ""));
        r |= json_add(o, "uid", json_object_new_string(uid));
        r |= json_add(o, "flash_size", json_object_new_int64(j->have_chip ? j->chip.flash_size : 0));
        /* The rate the job ran at (options.baudrate is the one asked for). */
        if (j->baudrate_used > 0)
                r |= json_add(o, "baudrate", json_object_new_int64(j->baudrate_used));
        if (j->op == JOB_FLASH) {
                r |= json_add(o, "image_name", json_object_new_string(j->image_name ?: "fd"));
                r |= json_add(o, "image_sha256", json_object_new_string(j->image_sha256));
                r |= json_add(o, "image_size", json_object_new_int64((int64_t) image_size(j->image)));
        }
        r |= json_add(o, "options", job_options_json(j));
        r |= json_add(o, "result", json_object_new_string(error < 0 ? "fail" : "pass"));
        r |= json_add(o, "error", json_object_new_string(error_name));
        r |= json_add(o, "message", json_object_new_string(message));
        r |= json_add(o, "duration_usec", json_object_new_uint64(j->duration_usec));
        if (j->op == JOB_FLASH && error == 0) {
                r |= json_add(o, "bytes_written", json_object_new_uint64(j->result.bytes_written));
                r |= json_add(o, "bytes_verified", json_object_new_uint64(j->result.bytes_verified));
                r |= json_add(o, "started", json_object_new_boolean(j->result.started));
        }
        if (r < 0)
                return json_object_put(o), NULL;
        return o;
}

/* The journal gets the entry's fields as STM32ISP_<KEY>= (options as JSON). */
static void port_journal_result(Port *p, const Job *j, json_object *entry, int error, const char *message) {
        struct iovec iov[40];
        char *fields[40] = {};
        size_t n = 0;

        if (asprintf(&fields[n++], "MESSAGE=%s: %s %s%s", p->name, job_op_to_string(j->op),
                     error < 0 ? "failed: " : "passed", error < 0 ? message : "") < 0 ||
            asprintf(&fields[n++], "PRIORITY=%i", error < 0 ? LOG_WARNING : LOG_INFO) < 0)
                goto finish;
        json_object_object_foreach(entry, key, v) {
                char upper[64];
                size_t k;

                if (n >= ELEMENTSOF(fields))
                        break;
                for (k = 0; key[k] && k < sizeof upper - 1; k++)
                        upper[k] = (char) (key[k] >= 'a' && key[k] <= 'z' ? key[k] - 'a' + 'A' : key[k]);
                upper[k] = 0;
                if (asprintf(&fields[n], "STM32ISP_%s=%s", upper,
                             json_object_is_type(v, json_type_object) ?
                             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : json_object_get_string(v)) < 0) {
                        fields[n] = NULL;
                        goto finish;
                }
                n++;
        }
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = fields[i], .iov_len = strlen(fields[i]) };
        (void) sd_journal_sendv(iov, (int) n);
finish:
        for (size_t i = 0; i < n; i++)
                free(fields[i]);
}

static void port_log_job(Port *p, const Job *j, uint64_t timestamp_usec, int error,
                         const char *error_name, const char *message) {
        json_object *entry = port_result_json(p, j, timestamp_usec, error, error_name, message);

        if (!entry) {
                log_error(p->name, "Cannot build the result entry: out of memory");
                return;
        }
        if (log_to_journal())
                port_journal_result(p, j, entry, error, message);
        else
                log_msg(error < 0 ? LOG_WARNING : LOG_INFO, p->name, "%s %s%s: %s",
                        job_op_to_string(j->op), error < 0 ? "failed: " : "passed",
                        error < 0 ? error_name : "",
                        json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        manager_record_result(p->manager, entry);
        json_object_put(entry);
        if (j->automatic)
                manager_autoflash_done(p->manager, error == 0);
}

static void port_on_done(Port *p, Job *j) {
        sd_bus *bus = manager_bus(p->manager);
        const char *error_name = "";
        const char *message = "";
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
        }

        if (p->progress_unsent)
                port_emit_progress(p);

        if (j->have_chip) {
                p->have_chip = true;
                p->chip = j->chip;
        }
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
        };
        snprintf(p->last.error_name, sizeof p->last.error_name, "%s", error_name);
        snprintf(p->last.message, sizeof p->last.message, "%s", message);

        p->busy = false;
        p->state = "idle";
        manager_update_status(p->manager);
        (void) sd_bus_emit_properties_changed(bus, p->path, STM32ISP_PORT_INTERFACE,
                                              "State", "Progress", "LastResult",
                                              j->have_chip ? "Chip" : NULL, NULL);
        (void) sd_bus_emit_signal(bus, p->path, STM32ISP_PORT_INTERFACE, "Finished", "sss",
                                  job_op_to_string(j->op), error_name, message);
        port_log_job(p, j, p->last.timestamp_usec, error, error_name, message);

        if (p->pending) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int r;

                if (error < 0)
                        r = sd_bus_reply_method_errorf(p->pending, error_name, "%s", message);
                else {
                        r = sd_bus_message_new_method_return(p->pending, &reply);
                        if (r >= 0 && j->op == JOB_PROBE)
                                r = append_chip(reply, &j->chip);
                        else if (r >= 0 && j->op == JOB_FLASH)
                                r = append_result(reply, &p->last);
                        if (r >= 0)
                                r = sd_bus_send(NULL, reply, NULL);
                }
                if (r < 0)
                        log_warning(p->name, "Cannot send the reply: %s", strerror(-r));
                p->pending = sd_bus_message_unref(p->pending);
        }
}

static int port_on_worker(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Port *p = userdata;
        WorkerEvent *e;

        while ((e = worker_pop_event(p->worker))) {
                if (e->type == WORKER_EVENT_PROGRESS)
                        port_on_progress(p, e);
                else {
                        bool drop;

                        port_on_done(p, e->job);
                        /* Gone for good when the device node went with it (a TCP server
                         * may come back: those ports stay until RemovePort). */
                        drop = p->unplugged ||
                               (e->job->error == -ENODEV && (link_transport_caps(p->transport) & LINK_CAP_DEVICE_NODE) &&
                                access(p->device, F_OK) < 0);
                        worker_event_free(e);
                        /* May free p: nothing after this. */
                        manager_port_idle(p->manager, p, drop);
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
        SD_BUS_METHOD_WITH_NAMES("Probe", "a{sv}", SD_BUS_PARAM(options), "a{sv}", SD_BUS_PARAM(chip),
                                 method_probe, SD_BUS_VTABLE_UNPRIVILEGED),
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

int port_new(Manager *m, const PortInfo *info, Port **ret) {
        _cleanup_(port_freep) Port *p = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        p = calloc(1, sizeof(Port));
        if (!p)
                return -ENOMEM;
        p->manager = m;
        p->state = "idle";
        p->transport = info->transport;
        p->vendor_id = info->vendor_id;
        p->product_id = info->product_id;
        if (strdup_or_empty(info->name, &p->name) < 0 ||
            strdup_or_empty(info->device, &p->device) < 0 ||
            strdup_or_empty(info->serial, &p->serial) < 0 ||
            strdup_or_empty(info->manufacturer, &p->manufacturer) < 0 ||
            strdup_or_empty(info->product, &p->product) < 0 ||
            strdup_or_empty(info->physical_path, &p->physical_path) < 0)
                return -ENOMEM;
        if (info->syspath) {
                p->syspath = strdup(info->syspath);
                if (!p->syspath)
                        return -ENOMEM;
        }
        r = sd_bus_path_encode(STM32ISP_PORT_PATH_PREFIX, p->name, &p->path);
        if (r < 0)
                return r;

        r = worker_new(p->device, manager_verbose(m), &p->worker);
        if (r < 0)
                return r;
        r = sd_event_add_io(manager_event(m), &p->worker_source, worker_get_fd(p->worker), EPOLLIN,
                            port_on_worker, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->worker_source, "port-worker");

        r = sd_bus_add_object_vtable(manager_bus(m), &p->slot, p->path, STM32ISP_PORT_INTERFACE, port_vtable, p);
        if (r < 0)
                return r;
        (void) sd_bus_emit_object_added(manager_bus(m), p->path);

        *ret = TAKE_PTR(p);
        return 0;
}

Port *port_free(Port *p) {
        if (!p)
                return NULL;
        if (p->slot) {
                (void) sd_bus_emit_object_removed(manager_bus(p->manager), p->path);
                p->slot = sd_bus_slot_unref(p->slot);
        }
        p->worker_source = sd_event_source_disable_unref(p->worker_source);
        p->progress_timer = sd_event_source_disable_unref(p->progress_timer);
        /* Joins the thread; a job still running sees the cancel flag. */
        p->worker = worker_free(p->worker);
        if (p->pending) {
                (void) sd_bus_reply_method_errorf(p->pending, STM32ISP_ERROR_DISCONNECTED, "%s was removed", p->device);
                p->pending = sd_bus_message_unref(p->pending);
        }
        free(p->name);
        free(p->device);
        free(p->syspath);
        free(p->path);
        free(p->serial);
        free(p->manufacturer);
        free(p->product);
        free(p->physical_path);
        free(p);
        return NULL;
}
