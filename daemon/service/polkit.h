/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Authorization of bus callers, as systemd's and fwupd's daemons do it: polkit's
 * CheckAuthorization for an action (io.github.stm32isp.*), asked asynchronously on the
 * daemon's bus, interactive when the caller's message allows it. Where no polkitd answers
 * (an embedded station, a session or test bus), the caller's credentials from the bus
 * decide: root, the daemon's own user, or a member of dialout. Main thread only. */

#include <systemd/sd-bus.h>

#include "macro.h"
#include "stm32isp.h"

typedef struct Polkit Polkit;

int polkit_new(sd_bus *bus, Polkit **ret);
/* Drops the queries under way (their calls get no reply: the bus is going away). */
Polkit *polkit_free(Polkit *pk);
DEFINE_TRIVIAL_CLEANUP_FUNC(Polkit *, polkit_free);

/* A NULL-terminated list of actions for polkit_authorize(). */
#define POLKIT_ACTIONS(...) ((const char *const[]) { __VA_ARGS__, NULL })

/* May the sender of the method call m do every one of actions (on device, a detail polkit
 * rules can read; NULL: none)? Call it from the method handler once the arguments are read
 * and checked, before anything happens, and once per handler; the result is what an sd-bus
 * handler returns, so `if (r != 0) return r;` follows the call:
 *   0   allowed: go on;
 *   1   polkit was asked: the handler returns 1 (the call is taken care of); m is
 *       dispatched again when the answer is in, and this call then returns 0 or the refusal;
 *   <0  refused or failed, error set when refused (AccessDenied, or
 *       InteractiveAuthorizationRequired when an interactive call would be asked for a
 *       password). */
int polkit_authorize(Polkit *pk, sd_bus_message *m, const char *const *actions, const char *device,
                     sd_bus_error *error);
