/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The a{sv} dictionaries the objects send: a chip (Probe's reply, the Chip property), a
 * job's outcome (Flash's reply, the LastResult property), a results entry (GetResults).
 * Each key is documented in the introspection XML (dbus/). */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "flasher.h"
#include "job.h"

/* A port's last job, as LastResult shows it. */
typedef struct LastResult {
        bool valid;
        JobOp op;
        int error;
        char error_name[128];
        char message[1024];
        FlasherResult result;
        bool started_by_reset;          /* the exit sequence started the code */
        uint64_t duration_usec;
        uint64_t timestamp_usec;        /* CLOCK_REALTIME */
        uint64_t bytes_read;
        unsigned baudrate;              /* the job's last sync ran at; 0: none tried */
        bool have_chip;                 /* the chip this job saw (the results log's keys) */
        uint16_t chip_pid;
        char chip_name[64];
        char uid[32];                   /* hex, "" when not read */
        bool baudrate_remembered;       /* baudrate is the port's remembered rate, tried
                                         * after the asked one met silence */
        char trace_file[256];           /* a failed job's kept wire trace; "": none */
        bool have_serial_number;        /* Flash: the number the board got */
        uint64_t serial_number;
} LastResult;

/* Opens the entry key of an a{sv} with a variant of type contents; the caller appends the
 * value, then bus_close_entry() closes both. */
int bus_open_entry(sd_bus_message *m, const char *key, const char *contents);
int bus_close_entry(sd_bus_message *m);

int bus_append_chip(sd_bus_message *m, const FlasherChip *c);
/* The adapter a Diagnose ran on, as the port knows it (udev). */
typedef struct BusAdapter {
        const char *device, *transport, *driver, *serial, *manufacturer, *product;
        uint16_t vendor_id, product_id;
} BusAdapter;

/* Diagnose's reply: adapter, chip, options, boot, checks, warnings (the XML documents
 * each key). j is a finished Diagnose job. */
int bus_append_diagnosis(sd_bus_message *m, const Job *j, const BusAdapter *a);

/* An empty dictionary before the first job. */
int bus_append_last_result(sd_bus_message *m, const LastResult *l);
/* JSON values as variants: strings s, booleans b, non-negative integers t, negative x,
 * numbers d, objects a{sv}; anything else as its JSON text. */
int bus_append_json_dict(sd_bus_message *m, json_object *o);
