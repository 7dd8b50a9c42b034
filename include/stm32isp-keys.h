/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The keys callers pass in the methods' a{sv} options, defined once: the daemon's
 * option tables (daemon/service/options.c), the client and the introspection XML
 * (tests/daemon/test-dbus-doc.sh checks the XML documents each) use these. Keys passed
 * in are kebab-case; every key the daemon and the client give out is snake_case. A key
 * renamed stays accepted under its former name (STM32ISP_KEY_*_ALIAS) for one release. */

/* Port methods (Flash, Erase, Probe, Read, Lock, Unlock). */
#define STM32ISP_KEY_ADDRESS     "address"
#define STM32ISP_KEY_FORMAT      "format"
#define STM32ISP_KEY_ERASE       "erase"
#define STM32ISP_KEY_VERIFY      "verify"
#define STM32ISP_KEY_UNPROTECT   "unprotect"
#define STM32ISP_KEY_PROTECT     "protect"
#define STM32ISP_KEY_BOOT0       "boot0"
#define STM32ISP_KEY_GO          "go"
#define STM32ISP_KEY_BAUDRATE    "baudrate"
#define STM32ISP_KEY_ENTRY       "entry"
#define STM32ISP_KEY_MODE        "mode"
#define STM32ISP_KEY_LENGTH      "length"
#define STM32ISP_KEY_IMAGE_NAME  "image-name"
#define STM32ISP_KEY_FORCE       "force"
#define STM32ISP_KEY_DETACH      "detach"
#define STM32ISP_KEY_TRACE_FD    "trace-fd"
#define STM32ISP_KEY_TRACE_FORMAT "trace-format"
#define STM32ISP_KEY_SN_ADDRESS  "sn-address"
#define STM32ISP_KEY_SN_FIRST    "sn-first"
#define STM32ISP_KEY_SN_STEP     "sn-step"
#define STM32ISP_KEY_SN_FORMAT   "sn-format"
#define STM32ISP_KEY_SN_COUNTER  "sn-counter"

/* Manager.SetAutoFlash's match and check (besides the Flash keys above). */
#define STM32ISP_KEY_VID         "vid"
#define STM32ISP_KEY_PID         "pid"
#define STM32ISP_KEY_SERIAL      "serial"
#define STM32ISP_KEY_ID_PATH     "id-path"
#define STM32ISP_KEY_EXPECT_CHIP "expect-chip"
#define STM32ISP_KEY_EXPECT_CHIP_ALIAS "chip"   /* until 2027-12 */
/* and STM32ISP_KEY_PORT below: a glob on the port's name (tcp://, rfc2217:// ports
 * are flashed only when it names them) */

/* SetAutoFlash: how the station detects a board (and the sn-* keys above). */
#define STM32ISP_KEY_DETECT      "detect"
#define STM32ISP_KEY_POLL_MS     "poll-ms"

/* Manager.GetResults's filter. */
#define STM32ISP_KEY_RESULT      "result"
#define STM32ISP_KEY_UID         "uid"
#define STM32ISP_KEY_PORT        "port"
#define STM32ISP_KEY_SINCE       "since"
#define STM32ISP_KEY_UNTIL       "until"
#define STM32ISP_KEY_LIMIT       "limit"
#define STM32ISP_KEY_SERIAL_NUMBER "serial-number"
