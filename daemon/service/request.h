/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a caller asks of a port, in the daemon's words: the option values of the D-Bus
 * contract (include/stm32isp.h) as the protocol core takes them. */

#include "flasher.h"

/* "auto", "mass" (also "all", an older spelling), "none"; -EINVAL otherwise. */
int erase_mode_from_string(const char *s, FlasherErase *ret);
const char *erase_mode_to_string(FlasherErase e);
