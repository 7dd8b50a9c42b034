/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "an3155.h"
#include "bus-dict.h"
#include "chips.h"
#include "diagnosis.h"
#include "macro.h"
#include "stm32isp.h"

int bus_open_entry(sd_bus_message *m, const char *key, const char *contents) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', contents);
        return r;
}

int bus_close_entry(sd_bus_message *m) {
        int r = sd_bus_message_close_container(m);

        return r < 0 ? r : sd_bus_message_close_container(m);
}

/* One {sv} entry of an a{sv} whose value is an array of a fixed-size type ("ay", "au"). */
static int append_array_entry(sd_bus_message *m, const char *key, const char *signature, const void *data,
                              size_t size) {
        int r = bus_open_entry(m, key, signature);

        if (r >= 0)
                r = sd_bus_message_append_array(m, signature[1], data, size);
        return r < 0 ? r : bus_close_entry(m);
}

/* "write_protected_pages": the pages the option bytes write-protect (au, empty: none). */
static int append_wrp_pages(sd_bus_message *m, const FlasherChip *c) {
        uint32_t pages[CHIP_WRP_PAGES_MAX];
        size_t n = 0;

        for (uint32_t p = 0; p < CHIP_WRP_PAGES_MAX; p++)
                if (flasher_chip_page_protected(c, p))
                        pages[n++] = p;
        return append_array_entry(m, "write_protected_pages", "au", pages, n * sizeof(uint32_t));
}

/* The Chip keys, inside an open a{sv}. */
static int append_chip_entries(sd_bus_message *m, const FlasherChip *c) {
        int r;

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
                r = append_array_entry(m, "option_bytes", "ay", c->option_bytes,
                                       MIN(c->option_bytes_size, sizeof c->option_bytes));
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sv}", "optr", "u", c->optr);
                if (r >= 0)
                        r = append_wrp_pages(m, c);
                if (r < 0)
                        return r;
        }
        r = append_array_entry(m, "commands", "ay", c->commands, MIN(c->n_commands, sizeof c->commands));
        if (r < 0)
                return r;
        /* The same by name, for people (unknown bytes as 0xNN). */
        r = bus_open_entry(m, "command_names", "as");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < MIN(c->n_commands, sizeof c->commands); i++) {
                const char *name = an3155_command_name(c->commands[i]);
                char hex[8];

                snprintf(hex, sizeof hex, "0x%02X", c->commands[i]);
                r = sd_bus_message_append_basic(m, 's', name ?: hex);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : bus_close_entry(m);
}

int bus_append_chip(sd_bus_message *m, const FlasherChip *c) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0)
                r = append_chip_entries(m, c);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

static int append_adapter(sd_bus_message *m, const Job *j, const Diagnosis *d, const BusAdapter *a) {
        int r = bus_open_entry(m, "adapter", "a{sv}");

        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                          "device", "s", a->device ?: "",
                                          "transport", "s", a->transport ?: "",
                                          "driver", "s", a->driver ?: "",
                                          "vendor_id", "q", a->vendor_id,
                                          "product_id", "q", a->product_id,
                                          "serial", "s", a->serial ?: "",
                                          "manufacturer", "s", a->manufacturer ?: "",
                                          "product", "s", a->product ?: "");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}", "low_latency", "b", (int) j->diagnosis.low_latency,
                                          "latency_timer_ms", "u", j->diagnosis.latency_timer_ms);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}",
                                          "baudrate", "u", (uint32_t) j->baudrate_used,
                                          "latency_usec", "t", d->latency_usec,
                                          "latency_round_trips", "u", (uint32_t) j->diagnosis.n_latency,
                                          "flash_verify_32k_round_trips", "u", d->flash_verify_round_trips,
                                          "flash_verify_32k_latency_usec", "t", d->flash_verify_latency_usec);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : bus_close_entry(m);
}

/* The probe's chip (bus_append_chip()) with what Diagnose adds. */
static int append_diagnosed_chip(sd_bus_message *m, const DiagnosisSample *s) {
        const FlasherChip *c = &s->chip;
        char version[8];
        int r;

        r = bus_open_entry(m, "chip", "a{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = append_chip_entries(m, c);
        if (r < 0)
                return r;
        snprintf(version, sizeof version, "%u.%u", c->protocol_version >> 4, c->protocol_version & 0xF);
        r = sd_bus_message_append(m, "{sv}", "bootloader_version", "s", version);
        if (r >= 0 && c->info)
                r = sd_bus_message_append(m, "{sv}{sv}",
                                          "flash_size_table", "u", c->info->flash_size,
                                          "bootloader_id_table", "y", c->info->bootloader_id);
        if (r >= 0 && s->have_version)
                r = sd_bus_message_append(m, "{sv}", "get_version", "y", s->version);
        if (r >= 0 && s->have_size_reg)
                r = sd_bus_message_append(m, "{sv}", "flash_size_register_kib", "q", s->size_reg_kib);
        if (r >= 0 && s->have_bootloader_id)
                r = sd_bus_message_append(m, "{sv}", "bootloader_id", "y", s->bootloader_id);
        if (r >= 0 && s->have_first_word)
                r = sd_bus_message_append(m, "{sv}", "first_word", "u",
                                          (uint32_t) (s->first_word[0] | s->first_word[1] << 8 |
                                                      s->first_word[2] << 16 | (uint32_t) s->first_word[3] << 24));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : bus_close_entry(m);
}

int bus_append_diagnosis(sd_bus_message *m, const Job *j, const BusAdapter *a) {
        Diagnosis d;
        int r;

        diagnosis_build(&j->diagnosis, &d);
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = append_adapter(m, j, &d, a);
        if (r >= 0)
                r = append_diagnosed_chip(m, &j->diagnosis);

        if (r >= 0)
                r = bus_open_entry(m, "options", "aa{sv}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < d.n_options; i++)
                r = sd_bus_message_append(m, "a{sv}", 3,
                                          "name", "s", d.options[i].name,
                                          "value", "u", d.options[i].value,
                                          "meaning", "s", d.options[i].meaning);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = bus_close_entry(m);

        if (r >= 0)
                r = bus_open_entry(m, "boot", "a{sv}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}", "known", "b", (int) d.have_boot, "summary", "s", d.boot_summary);
        if (r >= 0 && d.have_boot)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}",
                                          "flash_empty", "b", (int) d.flash_empty,
                                          "power_on_boot0_low", "s", chip_boot_target_to_string(d.power_on_boot0_low),
                                          "power_on_boot0_high", "s", chip_boot_target_to_string(d.power_on_boot0_high));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = bus_close_entry(m);

        if (r >= 0)
                r = bus_open_entry(m, "checks", "aa{sv}");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < d.n_checks; i++)
                r = sd_bus_message_append(m, "a{sv}", 5,
                                          "id", "s", d.checks[i].id,
                                          "inference", "s", d.checks[i].inference,
                                          "source", "s", d.checks[i].source,
                                          "verdict", "s", diagnosis_verdict_to_string(d.checks[i].verdict),
                                          "found", "s", d.checks[i].found);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = bus_close_entry(m);

        if (r >= 0)
                r = bus_open_entry(m, "warnings", "as");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < d.n_warnings; i++)
                r = sd_bus_message_append(m, "s", d.warnings[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = bus_close_entry(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int bus_append_last_result(sd_bus_message *m, const LastResult *l) {
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
        char ts[STM32ISP_TIMESTAMP_MAX];
        stm32isp_format_timestamp(l->timestamp_usec, ts);
        r = sd_bus_message_append(m, "{sv}", "timestamp", "s", ts);
        if (r < 0)
                return r;
        if (l->baudrate > 0) {
                r = sd_bus_message_append(m, "{sv}", "baudrate", "u", (uint32_t) l->baudrate);
                if (r < 0)
                        return r;
        }
        /* Which board it was, as the results log names it. */
        if (l->have_chip) {
                r = sd_bus_message_append(m, "{sv}{sv}{sv}", "chip_pid", "q", l->chip_pid, "chip_name", "s",
                                          l->chip_name, "uid", "s", l->uid);
                if (r < 0)
                        return r;
        }
        if (l->baudrate_remembered) {
                r = sd_bus_message_append(m, "{sv}", "baudrate_remembered", "b", 1);
                if (r < 0)
                        return r;
        }
        if (l->trace_file[0]) {
                r = sd_bus_message_append(m, "{sv}", "trace_file", "s", l->trace_file);
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
                                          "started", "b", (int) (f->started || l->started_by_reset),
                                          "write_retries", "u", f->write_retries);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sv}{sv}", "write_unprotected", "b", (int) f->write_unprotected,
                                                  "preserved_bytes", "t", f->preserved_bytes);
                /* how the code was started: Go leaves the ROM's context (VTOR), a reset
                 * with BOOT0 low (the exit sequence) does not */
                if (r >= 0 && (f->started || l->started_by_reset))
                        r = sd_bus_message_append(m, "{sv}", "start_method", "s", l->started_by_reset ? "reset" : "go");
                if (r < 0)
                        return r;
        }
        if ((l->op == JOB_LOCK || l->op == JOB_UNLOCK) && l->error == 0) {
                r = sd_bus_message_append(m, "{sv}", "nothing_done", "b", (int) l->result.nothing_done);
                if (r < 0)
                        return r;
        }
        if (l->have_serial_number) {
                r = sd_bus_message_append(m, "{sv}", "serial_number", "t", l->serial_number);
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

static int append_json_variant(sd_bus_message *reply, json_object *v);

int bus_append_json_dict(sd_bus_message *reply, json_object *o) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        json_object_object_foreach(o, key, v) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", key);
                if (r >= 0)
                        r = append_json_variant(reply, v);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* JSON values as variants: strings s, booleans b, non-negative integers t, negative x,
 * numbers d, objects a{sv}; anything else as its JSON text. */
static int append_json_variant(sd_bus_message *reply, json_object *v) {
        int r;

        switch (json_object_get_type(v)) {
        case json_type_boolean:
                return sd_bus_message_append(reply, "v", "b", (int) json_object_get_boolean(v));
        case json_type_int:
                if (json_object_get_int64(v) < 0)
                        return sd_bus_message_append(reply, "v", "x", json_object_get_int64(v));
                return sd_bus_message_append(reply, "v", "t", (uint64_t) json_object_get_uint64(v));
        case json_type_double:
                return sd_bus_message_append(reply, "v", "d", json_object_get_double(v));
        case json_type_string:
                return sd_bus_message_append(reply, "v", "s", json_object_get_string(v));
        case json_type_object:
                r = sd_bus_message_open_container(reply, 'v', "a{sv}");
                if (r >= 0)
                        r = bus_append_json_dict(reply, v);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                return r;
        default:
                return sd_bus_message_append(reply, "v", "s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
}
