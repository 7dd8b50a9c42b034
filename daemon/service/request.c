/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "request.h"
#include "stm32isp.h"
#include "string-util.h"

/* The contract lists the modes in the flasher's order. */
_Static_assert(STM32ISP_ERASE_AUTO == (int) FLASHER_ERASE_AUTO && STM32ISP_ERASE_MASS == (int) FLASHER_ERASE_MASS &&
               STM32ISP_ERASE_NONE == (int) FLASHER_ERASE_NONE, "erase modes");

int erase_mode_from_string(const char *s, FlasherErase *ret) {
        int m = streq(s, "all") ? STM32ISP_ERASE_MASS : stm32isp_erase_mode_from_string(s);

        if (m < 0)
                return m;
        *ret = (FlasherErase) m;
        return 0;
}

const char *erase_mode_to_string(FlasherErase e) {
        return stm32isp_erase_modes[e == FLASHER_ERASE_MASS ? STM32ISP_ERASE_MASS :
                                    e == FLASHER_ERASE_NONE ? STM32ISP_ERASE_NONE : STM32ISP_ERASE_AUTO];
}
