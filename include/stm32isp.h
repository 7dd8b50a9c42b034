/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Names of the D-Bus contract, shared by the daemon, the client and the tests.
 * Versioned per the D-Bus API design guidelines: add, never break. The errors, with
 * their errnos and the client's exit codes: stm32isp-errors.h. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STM32ISP_BUS_NAME          "io.github.Stm32Isp1"
#define STM32ISP_MANAGER_PATH      "/io/github/Stm32Isp1"
#define STM32ISP_PORT_PATH_PREFIX  "/io/github/Stm32Isp1/port"
#define STM32ISP_MANAGER_INTERFACE "io.github.Stm32Isp1.Manager"
#define STM32ISP_PORT_INTERFACE    "io.github.Stm32Isp1.Port"

#define STM32ISP_ERROR_PREFIX      "io.github.Stm32Isp1.Error."
#define STM32ISP_ERROR_BUSY            STM32ISP_ERROR_PREFIX "Busy"
#define STM32ISP_ERROR_NO_BOOTLOADER   STM32ISP_ERROR_PREFIX "NoBootloader"
#define STM32ISP_ERROR_TIMEOUT         STM32ISP_ERROR_PREFIX "Timeout"
#define STM32ISP_ERROR_NACK            STM32ISP_ERROR_PREFIX "Nack"
#define STM32ISP_ERROR_VERIFY_FAILED   STM32ISP_ERROR_PREFIX "VerifyFailed"
#define STM32ISP_ERROR_READ_PROTECTED  STM32ISP_ERROR_PREFIX "ReadProtected"
#define STM32ISP_ERROR_UNSUPPORTED_CHIP STM32ISP_ERROR_PREFIX "UnsupportedChip"
#define STM32ISP_ERROR_INVALID_IMAGE   STM32ISP_ERROR_PREFIX "InvalidImage"
#define STM32ISP_ERROR_IMAGE_TOO_LARGE STM32ISP_ERROR_PREFIX "ImageTooLarge"
#define STM32ISP_ERROR_CANCELLED       STM32ISP_ERROR_PREFIX "Cancelled"
#define STM32ISP_ERROR_DISCONNECTED    STM32ISP_ERROR_PREFIX "Disconnected"
#define STM32ISP_ERROR_NOT_FOUND       STM32ISP_ERROR_PREFIX "NotFound"
#define STM32ISP_ERROR_WRITE_PROTECTED STM32ISP_ERROR_PREFIX "WriteProtected"
#define STM32ISP_ERROR_OPTION_BYTES_MISMATCH STM32ISP_ERROR_PREFIX "OptionBytesMismatch"
#define STM32ISP_ERROR_NEEDS_FORCE     STM32ISP_ERROR_PREFIX "NeedsForce"
#define STM32ISP_ERROR_PORT_IN_USE     STM32ISP_ERROR_PREFIX "PortInUse"
#define STM32ISP_ERROR_ADAPTER_PARITY  STM32ISP_ERROR_PREFIX "AdapterParity"

/* Values of the Port methods' options (dbus/io.github.Stm32Isp1.Port.xml). */

/* "baudrate": the bootloader measures 1200..115200 from the first 0x7F (AN3155); faster
 * rates are for chips and adapters that manage them: the daemon tries the rate first,
 * then 115200. */
#define STM32ISP_BAUDRATE_MIN 1200u
#define STM32ISP_BAUDRATE_MAX 3000000u

/* Auto-flash detect=poll: how often an idle port is asked for a bootloader (ms). */
#define STM32ISP_POLL_MS_DEFAULT 500u
#define STM32ISP_POLL_MS_MIN 100u
#define STM32ISP_POLL_MS_MAX 10000u

/* Flash "address": where a raw binary goes unless the caller says otherwise, the flash
 * base of every supported chip. */
#define STM32ISP_FLASH_ADDRESS_DEFAULT 0x08000000u

/* Flash "erase" and Erase "mode": only the pages the image (Erase: address and length)
 * touches, the whole flash, nothing (Flash only). */
enum {
        STM32ISP_ERASE_AUTO,
        STM32ISP_ERASE_MASS,
        STM32ISP_ERASE_NONE,
};
static const char *const stm32isp_erase_modes[] = {
        [STM32ISP_ERASE_AUTO] = "auto",
        [STM32ISP_ERASE_MASS] = "mass",
        [STM32ISP_ERASE_NONE] = "none",
};

/* The index in stm32isp_erase_modes[], or -EINVAL. */
static inline int stm32isp_erase_mode_from_string(const char *s) {
        for (int i = 0; i < (int) (sizeof stm32isp_erase_modes / sizeof stm32isp_erase_modes[0]); i++)
                if (strcmp(stm32isp_erase_modes[i], s) == 0)
                        return i;
        return -EINVAL;
}

/* "trace-fd" (h): the job's wire trace is written to this fd when the job ends, in
 * "trace-format": text (the default, for a bug report) or json (for tools). A failed
 * job's trace is also kept in the state directory (the daemon's TRACES_KEPT newest) and
 * its path is the result's "trace_file". */
#define STM32ISP_TRACE_FORMAT_TEXT "text"
#define STM32ISP_TRACE_FORMAT_JSON "json"

/* Strings that reach the results log and the journal (Flash "image-name", a profile's
 * "entry", "serial", "id-path"): one line of at most 255 bytes. */
#define STM32ISP_TEXT_MAX 255
static inline bool stm32isp_text_valid(const char *s) {
        return strlen(s) <= STM32ISP_TEXT_MAX && !strpbrk(s, "\n\r");
}

/* The one form of a "timestamp" in every JSON output and dictionary the daemon and the
 * client give out (the results log, LastResult, monitor events): ISO 8601 UTC with
 * microseconds, "2026-12-06T02:31:55.009870Z". Next to it, "timestamp_usec" carries the
 * same instant as a number. */
#define STM32ISP_TIMESTAMP_MAX 32
static inline void stm32isp_format_timestamp(uint64_t usec, char buf[static STM32ISP_TIMESTAMP_MAX]) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;
        size_t n;

        if (!gmtime_r(&t, &tm)) {
                buf[0] = 0;
                return;
        }
        n = strftime(buf, STM32ISP_TIMESTAMP_MAX - 9, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, STM32ISP_TIMESTAMP_MAX - n, ".%06uZ", (unsigned) (usec % 1000000));
}

/* The group that owns the serial ttys (root:dialout 0660; the unit and the sysusers file put
 * the service user in it): its members may use the daemon without polkit asking
 * (dbus/60-stm32ispd.rules names it too, checked by tests/system/test-integration-polkit.sh;
 * also the fallback without polkitd). */
#define STM32ISP_GROUP "dialout"

/* polkit actions (dbus/io.github.stm32isp.policy): what a method call needs. */
#define STM32ISP_ACTION_PREFIX     "io.github.stm32isp."
#define STM32ISP_ACTION_FLASH      STM32ISP_ACTION_PREFIX "flash"      /* Flash, Go */
#define STM32ISP_ACTION_READ       STM32ISP_ACTION_PREFIX "read"       /* Read, Probe, Diagnose, GetResults */
#define STM32ISP_ACTION_ERASE      STM32ISP_ACTION_PREFIX "erase"
#define STM32ISP_ACTION_PROTECT    STM32ISP_ACTION_PREFIX "protect"    /* Lock, Unlock, Flash with unprotect/protect */
#define STM32ISP_ACTION_CONFIGURE  STM32ISP_ACTION_PREFIX "configure"  /* Add/RemovePort, Set/ClearAutoFlash */
