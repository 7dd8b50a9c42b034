/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* D-Bus values -> json-c objects, and json-c objects -> text for people. Every result
 * the client prints goes through JSON first, so --json and the text output show the
 * same data. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "macro.h"

static inline void json_object_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Reads one complete value at the current position of m (a variant, a dict, a basic
 * value, ...) and converts it: integers -> numbers, "ay" -> hex string, dicts ->
 * objects, arrays and structs -> arrays, variants -> their content. */
int json_from_bus_message(sd_bus_message *m, json_object **ret);

/* Prints obj as one line (--json, monitor events) or pretty, followed by a newline. */
void json_print(FILE *f, json_object *obj, bool pretty);

/* Prints each member as "  Key: value", values formatted by key name (addresses in hex,
 * sizes with units, booleans as yes/no). indent: spaces before the key; width: the key
 * column, 0 for automatic. */
void text_print_object(FILE *f, json_object *obj, unsigned indent, unsigned width);

/* One value as text as text_print_object() would show it; returns a malloc'd string. */
char *text_format_value(const char *key, json_object *v);

/* Case-insensitive member lookup; the daemon's key spelling may vary. */
json_object *json_get(json_object *obj, const char *key);
const char *json_get_string(json_object *obj, const char *key);
/* -1 when absent or not a number. */
int64_t json_get_int(json_object *obj, const char *key);

/* A D-Bus member name as a snake_case key ("VendorId" -> "vendor_id") into buf. */
const char *snake_case(const char *name, char *buf, size_t size);

/* "12.5 KiB" etc. into buf. */
const char *format_bytes(char *buf, size_t size, uint64_t n);
