/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job from the link's opening to its closing: the baud policy, the entry and exit
 * sequences around the flasher's operation. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chips.h"
#include "diagnose.h"
#include "fileio.h"
#include "job.h"
#include "link.h"

/* The rate every job opens the port at, and the one a faster rate falls back to: the
 * highest AN3155 gives for the bootloader's baud detection. */
#define DEFAULT_BAUD 115200u

static const char *const op_names[_JOB_OP_MAX] = {
        [JOB_PROBE] = "probe",
        [JOB_FLASH] = "flash",
        [JOB_ERASE] = "erase",
        [JOB_READ] = "read",
        [JOB_LOCK] = "lock",
        [JOB_UNLOCK] = "unlock",
        [JOB_GO] = "go",
        [JOB_DIAGNOSE] = "diagnose",
};

const char *job_op_to_string(JobOp op) {
        return op >= 0 && op < _JOB_OP_MAX ? op_names[op] : "unknown";
}

Job *job_new(JobOp op) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->op = op;
        j->out_fd = -1;
        j->trace_fd = -1;
        flasher_flash_options_init(&j->flash);
        return j;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->board.free)
                j->board.free(j->board.userdata);
        image_free(j->image);
        free(j->image_name);
        free(j->entry);
        if (j->out_fd >= 0)
                close(j->out_fd);
        if (j->trace_fd >= 0)
                close(j->trace_fd);
        trace_free(j->trace);
        free(j);
        return NULL;
}

/* Opens the port at the job's baud. A rate the adapter (driver) refuses is the
 * caller's bad argument, so the port is opened at the default rate first and then
 * switched: a failure of the switch is then known to be about the rate. */
static int open_job_link(Job *j, const char *device, Link **ret) {
        _cleanup_(link_freep) Link *l = NULL;
        unsigned baud = j->baudrate ?: DEFAULT_BAUD;
        int r;

        r = link_open_url(device, DEFAULT_BAUD, &l);
        if (r >= 0 && j->trace)
                link_set_trace(l, trace_link_event, j->trace);
        if (r == -LINK_ENOPARITY) {
                snprintf(j->message, sizeof j->message,
                         "Cannot open %s: the server did not set even parity (8E1), which the bootloader "
                         "needs; let the server apply the client's line settings (ser2net: an "
                         "rfc2217 accepter)", device);
                return r;
        }
        if (r == -EPROTONOSUPPORT) {
                snprintf(j->message, sizeof j->message,
                         "Cannot open %s: the server does not speak RFC 2217 (COM-PORT-OPTION); "
                         "for a raw TCP server use tcp://", device);
                return r;
        }
        if (r == -EBUSY) {
                /* Our own jobs never overlap on a port (one worker each): someone else's
                 * lock or exclusive open. */
                PortHolder h[DIAGNOSE_HOLDERS_MAX];
                int n = diagnose_port_holders(device, getpid(), h, ELEMENTSOF(h));

                diagnose_port_holders_message(device, h, n > 0 ? (size_t) n : 0, j->message, sizeof j->message);
                return -EUSERS;
        }
        if (r < 0) {
                snprintf(j->message, sizeof j->message, "Cannot open %s: %s", device, strerror(-r));
                /* A port that cannot be opened any more is gone for our purposes; no
                 * permission on the node is AccessDenied, not the chip's ReadProtected. */
                return r == -ENOENT || r == -ENXIO || r == -ECONNREFUSED || r == -EHOSTUNREACH ? -ENODEV :
                       r == -EACCES ? -EPERM : r;
        }
        if (baud != DEFAULT_BAUD) {
                r = link_set_baud(l, baud);
                if (r == -ENODEV) {
                        snprintf(j->message, sizeof j->message, "%s went away", device);
                        return r;
                }
                if (r < 0) {
                        snprintf(j->message, sizeof j->message, "The adapter on %s refuses %u baud (%s)",
                                 device, baud, strerror(-r));
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
 * more try at 115200 only after the entry sequence has reset it: the autobaud locks on
 * the first byte after a reset, and a 0x7F it could not measure leaves it deaf until
 * the next one (a G031, ST's forum), so a retry without a reset could not work. Without
 * an entry sequence msg says the board needs a reset. A raw TCP server owns its line
 * settings, so there another rate would change nothing. On a failure, msg (size n) gets
 * the sentence. */
/* A chip that an earlier job left synced at another rate (--baud 9600) answers at that
 * rate only: its autobaud measured once, at the first 0x7F after its reset (AN3155 §2),
 * and it does not measure again until the next reset. So when the job's rate meets
 * silence and no entry sequence reset the chip, the rate the port last synced at is
 * tried. It cannot make things worse: a chip that was reset since heard this job's
 * first 0x7F and measured that (answered, or went deaf: facts §4, then no rate helps),
 * and one that is not in its bootloader ignores both. 1 when it answered there. */
static int probe_remembered(Job *j, Link *l, Flasher *f, const JobHooks *h, unsigned first) {
        int r;

        if (j->entry || !j->remembered_baud || j->remembered_baud == first ||
            !(l->caps & LINK_CAP_LINE_SETTINGS) || (h->cancel && atomic_load(h->cancel)))
                return 0;
        r = link_set_baud(l, j->remembered_baud);
        if (r < 0)
                return r == -ENODEV ? r : 0;
        j->baudrate_used = j->remembered_baud;
        (void) link_flush_input(l);
        r = flasher_probe(f, &j->chip);
        if (r == -EHOSTDOWN) {
                /* back to the job's rate: it is the one the messages name */
                if (link_set_baud(l, first) >= 0)
                        j->baudrate_used = first;
                return 0;
        }
        j->baudrate_remembered = true;  /* it answered there, whatever came next */
        return r < 0 ? r : 1;
}

static int probe_with_fallback(Job *j, const char *device, const JobHooks *h, Link *l, Flasher *f, char *msg,
                               size_t n) {
        unsigned first = l->baud;
        int r, k;

        j->baudrate_used = l->baud;
        r = flasher_probe(f, &j->chip);
        if (r != -EHOSTDOWN)
                return r;
        k = probe_remembered(j, l, f, h, first);
        if (k != 0)
                return k > 0 ? 0 : k;
        if (first <= DEFAULT_BAUD || !(l->caps & LINK_CAP_LINE_SETTINGS) ||
            (h->cancel && atomic_load(h->cancel)))
                return r;
        if (!j->entry) {
                snprintf(msg, n, "no answer at %u baud on %s: a chip whose autobaud could not measure that rate stays "
                         "deaf until it is reset; reset or power-cycle the board (BOOT0 high) and flash at %u baud, or "
                         "give an entry sequence that resets it",
                         first, device, DEFAULT_BAUD);
                return r;
        }

        /* A port that went away says so; another failure here leaves the sync failure
         * as the news. */
        k = link_set_baud(l, DEFAULT_BAUD);
        if (k >= 0) {
                j->baudrate_used = DEFAULT_BAUD;
                (void) link_flush_input(l);
                k = entry_run(l, j->entry, false, h->pause, h->userdata);
        }
        if (k < 0) {
                if (k == -ENODEV)
                        snprintf(msg, n, "%s went away", device);
                else if (k == -ECANCELED)
                        snprintf(msg, n, "cancelled during the entry sequence");
                return IN_SET(k, -ENODEV, -ECANCELED) ? k : r;
        }
        r = flasher_probe(f, &j->chip);
        if (r == -EHOSTDOWN)
                snprintf(msg, n, "no answer at %u baud nor at %u on %s: is BOOT0 high and the chip reset?%s",
                         first, DEFAULT_BAUD, device, chip_no_bootloader_hint(j->expect_pid ?: j->hint_pid));
        return r;
}

/* Diagnose: what a probe does not read, and the latency. Only reads and Get/Get
 * Version/Get ID are sent: nothing is written or erased. A read the chip refuses (read
 * protection, an area its bootloader does not serve) is left out of the sample; a lost
 * line ends the job. */
static int diagnose_read(Link *l, Flasher *f, Job *j) {
        An3155 *p = flasher_protocol(f);
        const ChipInfo *info = j->chip.info;
        DiagnosisSample *s = &j->diagnosis;
        uint8_t b[4];
        int r;

        s->chip = j->chip;
        s->low_latency = l->low_latency;
        s->latency_timer_ms = l->latency_timer_ms;
        r = an3155_get_version(p, &s->version);
        if (r >= 0)
                s->have_version = true;
        else if (r != -EREMOTEIO && r != -EPROTO)
                return r;
        /* the median of a few whole round trips: command out, ACK + 3 bytes + ACK back */
        for (unsigned i = 0; i < DIAGNOSIS_ROUND_TRIPS; i++) {
                uint64_t t = now_usec();
                uint16_t pid;

                r = an3155_get_id(p, &pid);
                if (r < 0)
                        return r;
                s->latency_usec[s->n_latency++] = now_usec() - t;
        }
        /* under level 1 every read is NACKed (AN3155) */
        if (!info || j->chip.rdp_level == 1)
                return 0;

        r = flasher_read_info(f, info->flash_size_reg, b, 2);
        if (r >= 0) {
                s->have_size_reg = true;
                s->size_reg_kib = (uint16_t) (b[0] | b[1] << 8);
        } else if (r != -EREMOTEIO)
                return r;
        r = an3155_read_memory(p, info->flash_base, s->first_word, sizeof s->first_word);
        if (r >= 0)
                s->have_first_word = true;
        else if (r != -EREMOTEIO)
                return r;
        r = an3155_read_memory(p, info->bootloader_id_addr, &s->bootloader_id, 1);
        if (r >= 0)
                s->have_bootloader_id = true;
        else if (r != -EREMOTEIO)
                return r;
        return 0;
}

/* The trace's last line, then the trace to the caller's fd. */
static void finish_trace(Job *j) {
        _cleanup_free_ char *text = NULL;
        char line[sizeof j->message + 64];
        int r;

        if (!j->trace)
                goto done;
        if (j->error < 0)
                snprintf(line, sizeof line, "%s failed: %s", job_op_to_string(j->op), j->message);
        else
                snprintf(line, sizeof line, "%s done", job_op_to_string(j->op));
        trace_note(j->trace, line);
        if (j->trace_fd < 0)
                return;
        r = j->trace_json ? trace_to_json(j->trace, &text) : trace_to_text(j->trace, &text);
        /* the trace is an extra: a caller's fd that fails does not fail the job */
        if (r >= 0)
                (void) write_all(j->trace_fd, text, strlen(text));
done:
        if (j->trace_fd >= 0) {
                close(j->trace_fd);
                j->trace_fd = -1;
        }
}

void job_run(Job *j, const char *device, const JobHooks *h) {
        _cleanup_(link_freep) Link *l = NULL;
        _cleanup_(flasher_freep) Flasher *f = NULL;
        uint64_t start = now_usec();
        const char *msg = NULL;
        char wrong_chip[64], no_answer[1024] = "", board_msg[256] = "";
        bool probed = false, prepared = false;
        int r, k;

        /* out of memory leaves the job without a trace, nothing more */
        trace_free(j->trace);
        j->trace = NULL;
        (void) trace_new(device, job_op_to_string(j->op), 0, &j->trace);

        r = open_job_link(j, device, &l);
        if (r < 0) {
                j->error = r;
                goto finish;
        }
        if (j->entry && !j->poll_syncs) {
                r = entry_run(l, j->entry, false, h->pause, h->userdata);
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
        if (h->progress)
                flasher_set_progress(f, h->progress, h->userdata);
        if (h->cancel)
                flasher_set_cancel(f, h->cancel);
        flasher_set_chip_hint(f, j->expect_pid ?: j->hint_pid);
        if (h->trace)
                an3155_set_trace(flasher_protocol(f), h->trace, h->userdata);

        if (j->poll_syncs) {
                j->baudrate_used = l->baud;
                r = flasher_poll(f, j->poll_syncs, &j->chip);
        } else
                r = probe_with_fallback(j, device, h, l, f, no_answer, sizeof no_answer);
        if (no_answer[0])
                msg = no_answer;
        if (r < 0 && j->trace && diagnose_parity_suspect(trace_stats(j->trace)) &&
            !(h->cancel && atomic_load(h->cancel))) {
                /* The sync was answered, Get (0x00 0xFF) was not: Get Version (0x01 0xFE,
                 * odd bytes, read-only) tells an adapter that drops parity from a chip
                 * that went quiet. */
                k = diagnose_parity_probe(l);
                if (k == -ENODEV)
                        r = k;
                else if (diagnose_parity_dropped(trace_stats(j->trace))) {
                        diagnose_parity_message(device, no_answer, sizeof no_answer);
                        msg = no_answer;
                        r = -LINK_ENOPARITY;
                }
        }
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
                if (j->board.prepare) {
                        r = j->board.prepare(j, board_msg, sizeof board_msg, j->board.userdata);
                        if (r < 0) {
                                msg = board_msg[0] ? board_msg : NULL;
                                break;
                        }
                        prepared = true;
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
        case JOB_UNLOCK:
                r = j->op == JOB_LOCK ? flasher_lock(f, j->flash.force) : flasher_unlock(f, j->flash.force);
                /* 1: the chip was as asked already, nothing was sent */
                j->result.nothing_done = r > 0;
                if (r == 0 && j->op == JOB_LOCK)
                        j->result.protected_ = true;
                else if (r == 0)
                        j->result.unprotected = true;
                break;
        case JOB_GO:
                r = flasher_go(f, j->address);
                break;
        case JOB_DIAGNOSE:
                r = diagnose_read(l, f, j);
                break;
        default:
                r = -EINVAL;
        }
done:
        j->error = r < 0 ? r : 0;
        if (r < 0)
                snprintf(j->message, sizeof j->message, "%s",
                         msg ?: (flasher_error_message(f)[0] ? flasher_error_message(f) : strerror(-r)));
        /* the board's number: kept when anything may have been written */
        if (prepared && j->board.finish)
                j->board.finish(j, j->board.userdata);
        /* A flashed board is reset into its application by the exit sequence; one that
         * failed stays in the bootloader. The flash is written and verified either way: a
         * failed reset only leaves the board in the bootloader until it is powered up.
         * For the same reason a Cancel during the exit stops its pauses but not the job's
         * success. */
        if (r >= 0 && j->op == JOB_FLASH && j->entry && entry_has_exit(j->entry))
                j->started_by_reset = entry_run(l, j->entry, true, h->pause, h->userdata) >= 0;
        /* The bootloader is still ours, synced at the link's rate, unless the code was
         * started (Go, Readout Protect, the exit sequence) or nothing answered. */
        if (flasher_chip(f) && !j->started_by_reset)
                j->baud_left = l->baud;
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
        finish_trace(j);
}
