/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Names of the D-Bus contract, shared by the daemon, the client and the tests.
 * Versioned per the D-Bus API design guidelines: add, never break. */

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
