/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-internal.h"

#include <stddef.h>

/* Values from ST's documents (AN3155, CMSIS headers, datasheets) and the tools that
 * program these parts on silicon (stm32flash, stm32loader, stm32isp, Black Magic Probe).
 * Where they disagree, the narrower choice is taken (passing here should mean passing
 * on silicon). */
static const SimDevice devices[] = {
        {
                .pid = 0x443, .name = "STM32C011xx", .family = SIM_FAMILY_C0,
                .flash_base = 0x08000000, .flash_max = 32 * 1024, .page_size = 2048,
                .erased = 0xFF, .write_unit = 8, .pages_per_sector = 1,
                /* 6 KiB SRAM; the tools' end 0x20003000 exceeds it */
                .host_ram_start = 0x20001000, .host_ram_end = 0x20001800,
                .sys_base = 0x1FFF0000, .sys_size = 0x1800,
                .bl_id_addr = 0x1FFF17FE, .bl_id = 0x51,
                .ob_base = 0x1FFF7800, .ob_size = 0x80,
                .info_base = 0x1FFF7500, .info_size = 0x300,
                .uid_addr = { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 },
                .flash_size_reg = 0x1FFF75A0, .package_reg = 0x1FFF7500,
                .otp_base = 0x1FFF7000, .otp_size = 0x400,
                /* C0x1: 0xFFFFFFAA (Black Magic Probe's current FLASH_OPTR_C0x1_DEF; an
                 * older value was 0x3FFFFFAA) */
                .factory_optr = 0xFFFFFFAA,
                /* no C0 datasheet figures: G0-like */
                .program_nsec = 85000, .page_erase_nsec = 22000000, .mass_erase_nsec = 22100000,
        },
        {
                .pid = 0x453, .name = "STM32C031xx", .family = SIM_FAMILY_C0,
                .flash_base = 0x08000000, .flash_max = 32 * 1024, .page_size = 2048,
                .erased = 0xFF, .write_unit = 8, .pages_per_sector = 1,
                /* stm32flash says from 0x20001000, stm32loader 0x20002000: take the intersection */
                .host_ram_start = 0x20002000, .host_ram_end = 0x20003000,
                .sys_base = 0x1FFF0000, .sys_size = 0x1800,
                .bl_id_addr = 0x1FFF17FE, .bl_id = 0x52,
                .ob_base = 0x1FFF7800, .ob_size = 0x80,
                .info_base = 0x1FFF7500, .info_size = 0x300,
                .uid_addr = { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 },
                .flash_size_reg = 0x1FFF75A0, .package_reg = 0x1FFF7500,
                .otp_base = 0x1FFF7000, .otp_size = 0x400,
                .factory_optr = 0xFFFFFFAA,
                .program_nsec = 85000, .page_erase_nsec = 22000000, .mass_erase_nsec = 22100000,
        },
        {
                .pid = 0x444, .name = "STM32F03xx4/6", .family = SIM_FAMILY_F0,
                .flash_base = 0x08000000, .flash_max = 32 * 1024, .page_size = 1024,
                .erased = 0xFF, .write_unit = 2, .pages_per_sector = 4,
                .host_ram_start = 0x20000800, .host_ram_end = 0x20001000,
                /* UID (0x1FFFF7AC) and flash size (0x1FFFF7CC) lie inside system memory */
                .sys_base = 0x1FFFEC00, .sys_size = 0xC00,
                .bl_id_addr = 0x1FFFF7A6, .bl_id = 0x10,
                .ob_base = 0x1FFFF800, .ob_size = 0x10,
                .uid_addr = { 0x1FFFF7AC, 0x1FFFF7B0, 0x1FFFF7B4 },
                .flash_size_reg = 0x1FFFF7CC,
                .program_nsec = 53500, .page_erase_nsec = 30000000, .mass_erase_nsec = 30000000,
        },
        {
                .pid = 0x466, .name = "STM32G03xxx/04xxx", .family = SIM_FAMILY_G0,
                .flash_base = 0x08000000, .flash_max = 64 * 1024, .page_size = 2048,
                .erased = 0xFF, .write_unit = 8, .pages_per_sector = 1,
                .host_ram_start = 0x20001000, .host_ram_end = 0x20002000,
                .sys_base = 0x1FFF0000, .sys_size = 0x2000,
                .bl_id_addr = 0x1FFF1FFE, .bl_id = 0x53,
                .ob_base = 0x1FFF7800, .ob_size = 0x80,
                .info_base = 0x1FFF7500, .info_size = 0x300,
                .uid_addr = { 0x1FFF7590, 0x1FFF7594, 0x1FFF7598 },
                .flash_size_reg = 0x1FFF75E0, .package_reg = 0x1FFF7500,
                .otp_base = 0x1FFF7000, .otp_size = 0x400,
                .factory_optr = 0xFFFFFEAA,     /* G0x1 (G031/G041) */
                .program_nsec = 85000, .page_erase_nsec = 22000000, .mass_erase_nsec = 22100000,
        },
        {
                .pid = 0x457, .name = "STM32L01xxx/02xxx", .family = SIM_FAMILY_L0,
                .flash_base = 0x08000000, .flash_max = 16 * 1024, .page_size = 128,
                .erased = 0x00, .write_unit = 4, .pages_per_sector = 32,
                /* all 2 KiB of SRAM belong to the bootloader */
                .host_ram_start = 0, .host_ram_end = 0,
                .sys_base = 0x1FF00000, .sys_size = 0x1000,
                .bl_id_addr = 0x1FF00FFE, .bl_id = 0xC3,
                .ob_base = 0x1FF80000, .ob_size = 0x20,
                /* factory bytes after the option bytes, up to the flash-size register */
                .info_base = 0x1FF80020, .info_size = 0x60,
                .uid_addr = { 0x1FF80050, 0x1FF80054, 0x1FF80064 },
                .flash_size_reg = 0x1FF8007C,
                .eeprom_base = 0x08080000, .eeprom_size = 512,
                /* 3.2 ms per word or 64-byte half-page: charged per 64-byte chunk */
                .program_nsec = 3200000, .page_erase_nsec = 3200000, .mass_erase_nsec = 0,
        },
};

const SimDevice *sim_device_find(uint16_t pid) {
        for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
                if (devices[i].pid == pid)
                        return &devices[i];
        return NULL;
}
