/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulated ROM bootloader: memory, option bytes, resets and the AN3155 byte
 * exchange, served from one thread. The rules come from ST's AN3155, AN5096 and the
 * reference manuals, and from the tools that program these parts on silicon; comments
 * name the source of each. */

#include "sim.h"
#include "sim-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

#define ACK 0x79
#define NACK 0x1F
#define STRAY 0x00

/* The error that aborts a command because the chip was reset under it. */
#define ERESET ERESTART

typedef enum RegionKind {
        REGION_FLASH,
        REGION_RAM,             /* the part the bootloader leaves to the host */
        REGION_SYSTEM,
        REGION_OB,
        REGION_INFO,            /* UID, flash size, package: read-only */
        REGION_OTP,
        REGION_EEPROM,
} RegionKind;

typedef struct Region {
        RegionKind kind;
        uint32_t base, size;
        uint8_t *mem;
} Region;

struct Sim {
        const SimDevice *dev;
        uint32_t flash_size;
        Region regions[8];
        size_t n_regions;
        Region *flash, *ob, *ram, *eeprom;

        pthread_mutex_t mutex;

        /* what the last option-byte load latched */
        uint8_t rdp;                    /* 0xFF after an option-byte error: level 1 */
        uint32_t optr;                  /* C0/G0: OPTR; F0: USER byte; L0: USER half-word */
        uint32_t secr;                  /* C0/G0 */
        uint32_t wrp_a, wrp_b;          /* C0/G0 WRP1AR/WRP1BR */
        uint32_t wrp_bits;              /* F0: WRP bytes, 0 = protected; L0: 1 = protected */
        bool empty;                     /* C0/G0 FLASH_ACR.EMPTY (L0: see l0_empty_check) */
        bool l0_empty_check;            /* the L0 has an empty check too (sources disagree) */
        bool locked;                    /* C0/G0 SIM_STATE_LOCKED, for good */
        bool ob_busy;                   /* option bytes are being programmed */
        unsigned ob_program_usec;       /* how long that lasts (real time) */

        bool powered;
        bool boot0;
        bool nrst_low;
        SimWiring wiring;
        bool dtr, rts, modem_known;
        bool brk;                       /* the host holds TX in break */

        SimState state;
        unsigned epoch;                 /* bumped at every reset or outside state change */
        uint32_t go_address;
        SimCounters counters;
        SimTiming timing;

        bool line_known, line_ok;
        bool in_inpck, in_parmrk, in_ignpar;    /* the host tty's input checks */
        bool parity_dropped;            /* sim_set_adapter_drops_parity() */
        unsigned baud, measured_baud;
        unsigned max_baud;              /* the highest baud the autobaud measures */
        uint16_t id_override;           /* Get ID answers this PID when non-zero */

        bool fault_armed[_SIM_FAULT_MAX];
        unsigned fault_arg[_SIM_FAULT_MAX];
        unsigned nth_write, nth_ack, nth_burst, nth_read;
        bool have_bad_cell;             /* SIM_FAULT_CORRUPT_READ fired: this byte reads wrong */
        uint32_t bad_cell;
        unsigned stale_pending;

        /* serving; the fields below are the serving thread's own */
        int fd;
        bool is_socket;
        int wake_fd;
        bool stopping;                  /* under mutex */
        bool thread_started;
        pthread_t thread;
        int thread_result;
        unsigned cmd_epoch;
        uint8_t rxbuf[512];
        size_t rx_pos, rx_len;
        uint64_t rx_chunk_ns, rx_clock_ns;
        uint64_t busy_until_ns;         /* timing model: when the chip is done with all so far */
        uint8_t txbuf[600];
        size_t tx_len;
};

/* ---- small helpers ---- */

static uint32_t rd32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v) {
        p[0] = v;
        p[1] = v >> 8;
        p[2] = v >> 16;
        p[3] = v >> 24;
}

static uint64_t mono_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void sleep_until_nsec(uint64_t t) {
        struct timespec ts = { .tv_sec = t / 1000000000ULL, .tv_nsec = t % 1000000000ULL };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static void wake(Sim *s) {
        uint64_t one = 1;
        (void) !write(s->wake_fd, &one, sizeof one);
}

static Region *region_find(Sim *s, uint32_t addr) {
        for (size_t i = 0; i < s->n_regions; i++) {
                Region *r = &s->regions[i];
                if (addr >= r->base && (uint64_t) addr < (uint64_t) r->base + r->size)
                        return r;
        }
        return NULL;
}

/* Every byte of [addr, addr+n) lies in some region; adjacent regions may be crossed
 * (the L0 workaround reads 128 bytes from 0x1FF80000 over option and factory bytes). */
static bool range_readable(Sim *s, uint32_t addr, size_t n) {
        uint64_t a = addr, end = (uint64_t) addr + n;
        while (a < end) {
                if (a > UINT32_MAX)
                        return false;
                Region *r = region_find(s, (uint32_t) a);
                if (!r)
                        return false;
                a = (uint64_t) r->base + r->size;
        }
        return true;
}

static void range_copy(Sim *s, uint32_t addr, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                Region *r = region_find(s, addr + (uint32_t) i);
                out[i] = r ? r->mem[addr + i - r->base] : 0;
        }
}

static void poke(Sim *s, uint32_t addr, const void *data, size_t n) {
        const uint8_t *d = data;
        for (size_t i = 0; i < n; i++) {
                Region *r = region_find(s, addr + (uint32_t) i);
                if (r)
                        r->mem[addr + i - r->base] = d[i];
        }
}

static Region *region_add(Sim *s, RegionKind kind, uint32_t base, uint32_t size, uint8_t fill) {
        if (size == 0)
                return NULL;
        Region *r = &s->regions[s->n_regions];
        r->mem = malloc(size);
        if (!r->mem)
                return NULL;
        memset(r->mem, fill, size);
        r->kind = kind;
        r->base = base;
        r->size = size;
        s->n_regions++;
        return r;
}

static bool is_g0_like(const Sim *s) {
        return s->dev->family == SIM_FAMILY_G0 || s->dev->family == SIM_FAMILY_C0;
}

static uint8_t ob_erased(const Sim *s) {
        return s->dev->family == SIM_FAMILY_L0 ? 0x00 : 0xFF;
}

static int rdp_level_of(uint8_t rdp) {
        return rdp == 0xAA ? 0 : rdp == 0xCC ? 2 : 1;
}

/* ---- option bytes (the layouts of the CMSIS headers, stm32isp, Black Magic Probe) ---- */

static void ob_factory(Sim *s) {
        uint8_t *o = s->ob->mem;

        memset(o, ob_erased(s), s->ob->size);
        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                /* RDP AA/55, then USER, DATA0, DATA1, WRP0..3 as FF/00 */
                for (size_t i = 0; i < s->ob->size; i += 2) {
                        o[i] = i == 0 ? 0xAA : 0xFF;
                        o[i + 1] = (uint8_t) ~o[i];
                }
                break;
        case SIM_FAMILY_C0:
        case SIM_FAMILY_G0: {
                static const struct { uint32_t off, value; } regs[] = {
                        { 0x08, 0xFFFFFFFF },   /* PCROP1ASR */
                        { 0x10, 0x00000000 },   /* PCROP1AER */
                        { 0x18, 0x000000FF },   /* WRP1AR: start > end, off */
                        { 0x20, 0x000000FF },   /* WRP1BR */
                        { 0x28, 0xFFFFFFFF },   /* PCROP1BSR */
                        { 0x30, 0x00000000 },   /* PCROP1BER */
                        { 0x70, 0x00000000 },   /* SECR */
                };
                wr32(o, s->dev->factory_optr);
                wr32(o + 4, ~s->dev->factory_optr);
                for (size_t i = 0; i < ELEMENTSOF(regs); i++) {
                        wr32(o + regs[i].off, regs[i].value);
                        wr32(o + regs[i].off + 4, ~regs[i].value);
                }
                break;
        }
        case SIM_FAMILY_L0:
                wr32(o + 0, 0xFF5500AA);        /* RDP AA */
                wr32(o + 4, 0x7F8F8070);        /* USER 0x8070: BOOT1 bit set */
                wr32(o + 8, 0xFFFF0000);        /* WRP1 none */
                break;
        }
}

/* A G0/C0 register pair, or fallback when the complement does not match. */
static uint32_t ob_pair32(const uint8_t *o, uint32_t off, uint32_t fallback) {
        uint32_t v = rd32(o + off), c = rd32(o + off + 4);
        return (v ^ c) == UINT32_MAX ? v : fallback;
}

static uint32_t ob_pair16(const uint8_t *o, uint32_t off, uint32_t fallback) {
        uint32_t w = rd32(o + off);
        return ((w & 0xFFFF) ^ (w >> 16)) == 0xFFFF ? (w & 0xFFFF) : fallback;
}

static uint8_t ob_pair8(const uint8_t *o, uint32_t off, uint8_t fallback) {
        return (uint8_t) (o[off] ^ o[off + 1]) == 0xFF ? o[off] : fallback;
}

/* Option-byte load (power-on, OBL_LAUNCH). A complement mismatch in the word holding
 * RDP loads level 1, as silicon does on an option-byte error; other broken pairs load
 * as all ones (no protection, boot bits set). */
static void ob_load(Sim *s) {
        const uint8_t *o = s->ob->mem;

        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                s->rdp = ob_pair8(o, 0, 0xFF);
                s->optr = ob_pair8(o, 2, 0xFF);
                s->wrp_bits = 0;
                for (unsigned i = 0; i < 4; i++)
                        s->wrp_bits |= (uint32_t) ob_pair8(o, 8 + 2 * i, 0xFF) << (8 * i);
                break;
        case SIM_FAMILY_C0:
        case SIM_FAMILY_G0:
                s->optr = ob_pair32(o, 0x00, UINT32_MAX);
                s->rdp = s->optr & 0xFF;
                s->wrp_a = ob_pair32(o, 0x18, 0xFF);
                s->wrp_b = ob_pair32(o, 0x20, 0xFF);
                s->secr = ob_pair32(o, 0x70, 0);
                break;
        case SIM_FAMILY_L0:
                s->rdp = ob_pair16(o, 0, 0xFFFF) & 0xFF;
                s->optr = ob_pair16(o, 4, 0xFFFF);
                s->wrp_bits = ob_pair16(o, 8, 0);
                break;
        }
        /* EMPTY is latched at option-byte load (AN5096 §3). An L0 empty check, if there
         * is one (ST's knowledge base lists the L01x/L02x; CMSIS defines none), is
         * modelled the same way on its erased value 0x00000000 [U]. */
        if (is_g0_like(s))
                s->empty = rd32(s->flash->mem) == UINT32_MAX;
        else
                s->empty = s->dev->family == SIM_FAMILY_L0 && s->l0_empty_check && rd32(s->flash->mem) == 0;
}

static void ob_set_rdp(Sim *s, uint8_t v) {
        uint8_t *o = s->ob->mem;

        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                o[0] = v;
                o[1] = (uint8_t) ~v;
                break;
        case SIM_FAMILY_C0:
        case SIM_FAMILY_G0: {
                uint32_t optr = (rd32(o) & ~UINT32_C(0xFF)) | v;
                wr32(o, optr);
                wr32(o + 4, ~optr);
                break;
        }
        case SIM_FAMILY_L0: {
                uint32_t lo = (rd32(o) & 0xFF00) | v;
                wr32(o, lo | (~lo & 0xFFFF) << 16);
                break;
        }
        }
}

/* Write Protect (0x63) replaces the set; Write Unprotect passes n = 0. The sector codes
 * are not checked (AN3155 §3.9). C0/G0: how codes map onto WRP1A/WRP1B is unknown; modelled as
 * WRP1A = [lowest code, highest code] (one page per sector), WRP1B off. L0: a set WRP1
 * bit protects (polarity [U]). */
static void ob_set_wrp(Sim *s, const uint8_t *codes, size_t n) {
        uint8_t *o = s->ob->mem;

        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                for (unsigned i = 0; i < 4; i++) {
                        uint8_t b = 0xFF;
                        for (size_t k = 0; k < n; k++)
                                if (codes[k] / 8 == i)
                                        b &= (uint8_t) ~(1u << (codes[k] % 8));
                        o[8 + 2 * i] = b;
                        o[9 + 2 * i] = (uint8_t) ~b;
                }
                break;
        case SIM_FAMILY_C0:
        case SIM_FAMILY_G0: {
                uint32_t a = 0xFF;
                if (n > 0) {
                        uint8_t lo = 0xFF, hi = 0;
                        for (size_t k = 0; k < n; k++) {
                                lo = MIN(lo, codes[k]);
                                hi = MAX(hi, codes[k]);
                        }
                        a = (uint32_t) (lo & 0x3F) | (uint32_t) (hi & 0x3F) << 16;
                }
                wr32(o + 0x18, a);
                wr32(o + 0x1C, ~a);
                wr32(o + 0x20, 0xFF);
                wr32(o + 0x24, ~UINT32_C(0xFF));
                break;
        }
        case SIM_FAMILY_L0: {
                uint32_t bits = 0;
                for (size_t k = 0; k < n; k++)
                        if (codes[k] < 16)
                                bits |= 1u << codes[k];
                wr32(o + 8, bits | (~bits & 0xFFFF) << 16);
                break;
        }
        }
}

static bool wrp_area_has(uint32_t reg, uint32_t page) {
        uint32_t start = reg & 0x3F, end = (reg >> 16) & 0x3F;
        return start <= end && page >= start && page <= end;
}

static bool page_protected(Sim *s, uint32_t page) {
        uint32_t sector = page / s->dev->pages_per_sector;

        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                return sector < 32 && !(s->wrp_bits & (1u << sector));
        case SIM_FAMILY_L0:
                return sector < 16 && (s->wrp_bits & (1u << sector));
        default:
                return wrp_area_has(s->wrp_a, page) || wrp_area_has(s->wrp_b, page);
        }
}

static bool any_protected(Sim *s) {
        for (uint32_t p = 0; p < s->flash_size / s->dev->page_size; p++)
                if (page_protected(s, p))
                        return true;
        return false;
}

/* ---- resets and the boot decision (AN5096 Table 3, RM0490 Table 9; the empty check) ---- */

static SimState boot_target(Sim *s) {
        if (rdp_level_of(s->rdp) == 2)
                return SIM_STATE_USER_CODE;     /* level 2: no bootloader at all */

        switch (s->dev->family) {
        case SIM_FAMILY_F0:
                /* BOOT0 pin with nBOOT1 = 1 (USER bit 4) */
                return s->boot0 && (s->optr & 0x10) ? SIM_STATE_WAIT_SYNC : SIM_STATE_USER_CODE;
        case SIM_FAMILY_L0:
                /* BOOT0 pin with the BOOT1 bit (USER bit 15) set, as shipped; with the
                 * optional empty check, a blank part starts the bootloader too */
                if (s->boot0 && (s->optr & 0x8000))
                        return SIM_STATE_WAIT_SYNC;
                return s->empty ? SIM_STATE_WAIT_SYNC : SIM_STATE_USER_CODE;
        default: {
                enum { MAIN, SYSTEM, SRAM } t;
                bool nboot_sel = s->optr & (1u << 24), nboot1 = s->optr & (1u << 25),
                     nboot0 = s->optr & (1u << 26);

                if (s->secr & (1u << 16))
                        return SIM_STATE_USER_CODE;     /* BOOT_LOCK */
                if (!nboot_sel)
                        t = !s->boot0 ? MAIN : nboot1 ? SYSTEM : SRAM;
                else
                        t = nboot0 ? MAIN : nboot1 ? SYSTEM : SRAM;
                if (t == MAIN && s->empty)
                        t = SYSTEM;
                /* an SRAM boot runs whatever is there: code the host does not talk to */
                return t == SYSTEM ? SIM_STATE_WAIT_SYNC : SIM_STATE_USER_CODE;
        }
        }
}

/* A reset or power loss while option bytes are being programmed (called with the
 * mutex held, before the reset takes effect). RM0444: the option bytes then load
 * mismatch values that force a secure configuration which "might permanently lock the
 * device": a C0/G0 is LOCKED. F0/L0 (no such statement): the area is left erased, which
 * loads as broken pairs, read protection level 1. */
static void ob_interrupt(Sim *s) {
        if (!s->ob_busy)
                return;
        s->ob_busy = false;
        s->counters.ob_interrupted++;
        if (is_g0_like(s))
                s->locked = true;
        else
                memset(s->ob->mem, ob_erased(s), s->ob->size);
}

/* Called with the mutex held. */
static void lock_chip(Sim *s) {
        s->locked = true;
        s->state = SIM_STATE_LOCKED;
        s->epoch++;
        wake(s);
}

/* Called with the mutex held. */
static void boot(Sim *s) {
        ob_interrupt(s);
        if (s->locked)
                s->state = SIM_STATE_LOCKED;
        else if (s->nrst_low)
                s->state = SIM_STATE_OFF;       /* held in reset */
        else
                s->state = boot_target(s);
        s->measured_baud = 0;
        if (s->state == SIM_STATE_WAIT_SYNC && s->fault_armed[SIM_FAULT_ALREADY_SYNCED]) {
                s->fault_armed[SIM_FAULT_ALREADY_SYNCED] = false;
                s->state = SIM_STATE_BOOTLOADER;
        }
        s->epoch++;
        wake(s);
}

static void power_on(Sim *s) {
        s->powered = true;
        ob_load(s);
        boot(s);
}

/* A system reset keeps the EMPTY flag as latched. */
static void reset_system(Sim *s) {
        s->counters.resets++;
        boot(s);
}

/* OBL_LAUNCH: reloads the option bytes and relatches EMPTY. */
static void reset_obl(Sim *s) {
        s->counters.resets++;
        ob_load(s);
        boot(s);
}

/* ---- programming (the programming units of the HALs and reference manuals) ---- */

/* Programs flash (or OTP) cells by the family's rules. Returns the nanoseconds the
 * operation takes, or -EIO when a cell was not erased (the device stops there: earlier
 * units stay programmed). Write-protected pages are skipped silently (AN3155 §3.6). */
static int64_t program_cells(Sim *s, Region *r, uint32_t addr, const uint8_t *d, size_t n) {
        const SimDevice *dev = s->dev;
        uint32_t off = addr - r->base;
        uint8_t *m = r->mem + off;
        bool wrp = r->kind == REGION_FLASH;
        int64_t t = 0;

        switch (dev->write_unit) {
        case 8:
                /* 64-bit double words. A start that is 4- but not 8-aligned is ACKed and
                 * nothing is programmed (reported on 0x466 on ST's forum). Nothing says what
                 * a length that is not a multiple of 8 does: the trailing partial double word
                 * is modelled as not programmed, with ACK. */
                if (addr % 8 != 0) {
                        s->counters.misaligned_writes++;
                        return 0;
                }
                for (size_t i = 0; i + 8 <= n; i += 8) {
                        if (wrp && page_protected(s, (off + i) / dev->page_size))
                                continue;
                        for (size_t k = 0; k < 8; k++)
                                if (m[i + k] != dev->erased)
                                        return -EIO;
                        memcpy(m + i, d + i, 8);
                        t += dev->program_nsec;
                }
                break;
        case 2:
                /* F0 half-words: PGERR unless the cell reads 0xFFFF, except for 0x0000 */
                for (size_t i = 0; i + 2 <= n; i += 2) {
                        if (wrp && page_protected(s, (off + i) / dev->page_size))
                                continue;
                        if (!(d[i] == 0 && d[i + 1] == 0) && !(m[i] == 0xFF && m[i + 1] == 0xFF))
                                return -EIO;
                        memcpy(m + i, d + i, 2);
                        t += dev->program_nsec;
                }
                break;
        case 4:
                /* L0 words onto erased (0x00) cells; charged per 64-byte half-page chunk */
                for (size_t i = 0; i + 4 <= n; i += 4) {
                        if (wrp && page_protected(s, (off + i) / dev->page_size))
                                continue;
                        if (rd32(m + i) != 0)
                                return -EIO;
                        memcpy(m + i, d + i, 4);
                }
                t = (int64_t) ((n + 63) / 64 * dev->program_nsec);
                break;
        }
        return t;
}

static void erase_page(Sim *s, uint32_t page) {
        memset(s->flash->mem + (size_t) page * s->dev->page_size, s->dev->erased, s->dev->page_size);
}

static void mass_erase(Sim *s) {
        memset(s->flash->mem, s->dev->erased, s->flash->size);
}

/* ---- the line: bytes in and out ---- */

static uint64_t scaled(Sim *s, uint64_t nsec) {
        double speed = s->timing.speed > 0 ? s->timing.speed : 1.0;
        return (uint64_t) ((double) nsec / speed);
}

/* Time for one 11-bit frame (start, 8 data, parity, stop) at the host's baud. */
static uint64_t byte_nsec(Sim *s) {
        unsigned baud = s->line_known && s->baud > 0 ? s->baud : 115200;
        return scaled(s, 11ULL * 1000000000ULL / baud);
}

static bool timing_on(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        bool on = s->timing.enabled;
        pthread_mutex_unlock(&s->mutex);
        return on;
}

/* The timing model keeps a clock rather than sleeping per byte: the bytes the chip hears
 * and the operations it runs move busy_until_ns on, and the thread sleeps once per turn
 * of the line, before it answers, until the last byte of the answer would be complete
 * (tx_flush). The host sees the same times; a process serving 64 boards wakes up once
 * per reply instead of once per byte. */
static void delay(Sim *s, uint64_t nsec) {
        if (nsec == 0 || !timing_on(s))
                return;
        pthread_mutex_lock(&s->mutex);
        uint64_t t = scaled(s, nsec);
        pthread_mutex_unlock(&s->mutex);
        /* starts when the chip has heard the command, or now if it got to it late */
        s->busy_until_ns = MAX(s->busy_until_ns, mono_nsec()) + t;
}

static int write_all(Sim *s, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = s->is_socket ? send(s->fd, p, n, MSG_NOSIGNAL) : write(s->fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
                                (void) poll(&pfd, 1, 1000);
                                continue;
                        }
                        return -EPIPE;  /* EPIPE, EIO: the host is gone */
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Sends the reply burst collected so far. With timing on, after the adapter latency and
 * one frame time per byte, counted from when the chip is done (busy_until_ns): one sleep,
 * then the whole burst. */
/* The burst as the host's tty delivers it: a glitched byte (SIM_FAULT_PARITY_ERROR) as
 * its input checks make it, and under PARMRK a data byte 0xFF doubled (n_tty). */
static size_t tx_encode(Sim *s, size_t n, bool glitch, uint8_t *out) {
        bool inpck, parmrk, ignpar;
        size_t k = 0;

        pthread_mutex_lock(&s->mutex);
        inpck = s->in_inpck;
        parmrk = s->in_parmrk;
        ignpar = s->in_ignpar;
        pthread_mutex_unlock(&s->mutex);

        for (size_t i = 0; i < n; i++) {
                uint8_t b = s->txbuf[i];

                if (glitch && i == n - 1) {
                        b ^= 0x10;
                        if (inpck) {
                                if (ignpar)
                                        continue;
                                if (parmrk) {
                                        out[k++] = 0xFF;
                                        out[k++] = 0x00;
                                        out[k++] = b;
                                } else
                                        out[k++] = 0x00;
                                continue;
                        }
                }
                if (parmrk && b == 0xFF)
                        out[k++] = 0xFF;
                out[k++] = b;
        }
        return k;
}

static int tx_flush(Sim *s) {
        size_t n = s->tx_len, k;
        bool drop, timed, glitch;
        uint64_t lat = 0, bt = 0;
        uint8_t out[sizeof s->txbuf * 2 + 2];

        if (n == 0)
                return 0;
        s->tx_len = 0;

        pthread_mutex_lock(&s->mutex);
        s->nth_burst++;
        drop = s->fault_armed[SIM_FAULT_DROP_REPLY] &&
               s->nth_burst == MAX(s->fault_arg[SIM_FAULT_DROP_REPLY], 1u);
        if (drop)
                s->fault_armed[SIM_FAULT_DROP_REPLY] = false;
        glitch = s->fault_armed[SIM_FAULT_PARITY_ERROR] &&
                 s->nth_burst == MAX(s->fault_arg[SIM_FAULT_PARITY_ERROR], 1u);
        if (glitch)
                s->fault_armed[SIM_FAULT_PARITY_ERROR] = false;
        timed = s->timing.enabled;
        if (timed) {
                lat = scaled(s, (uint64_t) s->timing.latency_usec * 1000);
                bt = byte_nsec(s);
        }
        if (!drop)
                s->counters.bytes_out += n;
        pthread_mutex_unlock(&s->mutex);

        if (drop)
                return 0;
        k = tx_encode(s, n, glitch, out);
        if (!timed)
                return write_all(s, out, k);

        uint64_t end = MAX(s->busy_until_ns, mono_nsec()) + lat + (uint64_t) n * bt;
        sleep_until_nsec(end);
        s->busy_until_ns = end;
        return write_all(s, out, k);
}

static int tx_put(Sim *s, uint8_t b) {
        if (s->tx_len == sizeof s->txbuf) {
                int r = tx_flush(s);
                if (r < 0)
                        return r;
        }
        s->txbuf[s->tx_len++] = b;
        return 0;
}

static int tx_ack(Sim *s) {
        bool stray;

        pthread_mutex_lock(&s->mutex);
        s->nth_ack++;
        stray = s->fault_armed[SIM_FAULT_STRAY_BYTE] &&
                s->nth_ack == MAX(s->fault_arg[SIM_FAULT_STRAY_BYTE], 1u);
        if (stray)
                s->fault_armed[SIM_FAULT_STRAY_BYTE] = false;
        pthread_mutex_unlock(&s->mutex);

        if (stray)
                (void) tx_put(s, STRAY);
        return tx_put(s, ACK);
}

static int tx_nack(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        s->counters.nacks++;
        pthread_mutex_unlock(&s->mutex);
        return tx_put(s, NACK);
}

/* Bytes "already waiting in the host's buffer": a previous session's ACK, NACK, noise. */
static int send_stale(Sim *s) {
        static const uint8_t pattern[] = { ACK, NACK, 0x00, 0x55 };
        uint8_t buf[64];
        unsigned n;

        pthread_mutex_lock(&s->mutex);
        n = MIN(s->stale_pending, (unsigned) sizeof buf);
        s->stale_pending = 0;
        s->counters.bytes_out += n;
        pthread_mutex_unlock(&s->mutex);

        for (unsigned i = 0; i < n; i++)
                buf[i] = pattern[i % ELEMENTSOF(pattern)];
        return n > 0 ? write_all(s, buf, n) : 0;
}

/* Waits for input on the fd. -EPIPE: hang-up; -ECANCELED: sim_stop(); -ERESET: the
 * chip was reset (or changed state) from outside. */
static int fill(Sim *s) {
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = s->fd, .events = POLLIN },
                        { .fd = s->wake_fd, .events = POLLIN },
                };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }

                if (p[1].revents & POLLIN) {
                        uint64_t v;
                        bool stopping, reset;

                        (void) !read(s->wake_fd, &v, sizeof v);
                        pthread_mutex_lock(&s->mutex);
                        stopping = s->stopping;
                        reset = s->epoch != s->cmd_epoch;
                        pthread_mutex_unlock(&s->mutex);
                        if (stopping)
                                return -ECANCELED;
                        int r = send_stale(s);
                        if (r < 0)
                                return r;
                        if (reset)
                                return -ERESET;
                }

                if (p[0].revents & POLLIN) {
                        ssize_t k = read(s->fd, s->rxbuf, sizeof s->rxbuf);
                        if (k < 0) {
                                if (errno == EINTR || errno == EAGAIN)
                                        continue;
                                return -EPIPE;  /* EIO on a hung-up pty */
                        }
                        if (k == 0)
                                return -EPIPE;
                        s->rx_pos = 0;
                        s->rx_len = (size_t) k;
                        s->rx_chunk_ns = mono_nsec();
                        pthread_mutex_lock(&s->mutex);
                        s->counters.bytes_in += (uint64_t) k;
                        pthread_mutex_unlock(&s->mutex);
                        return 0;
                }
                if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
                        return -EPIPE;
        }
}

/* Whether the chip hears this byte: it must be running the bootloader and the host
 * must talk 8E1 and, once the baud is measured, at that baud within 2.5 %. Before any
 * line report everything is heard. A chip waiting for its sync hears a byte at any
 * baud: whether it can measure it is decided in serve(). */
static bool line_accepts(Sim *s) {
        if (s->state != SIM_STATE_WAIT_SYNC && s->state != SIM_STATE_BOOTLOADER)
                return false;
        if (!s->line_known)
                return true;
        if (!s->line_ok)
                return false;
        if (s->state == SIM_STATE_BOOTLOADER && s->measured_baud > 0) {
                unsigned d = s->baud > s->measured_baud ? s->baud - s->measured_baud : s->measured_baud - s->baud;
                if ((uint64_t) d * 1000 > (uint64_t) s->measured_baud * 25)
                        return false;
        }
        return true;
}

/* The next byte the chip hears. Pending replies go out before waiting. */
static int rx_byte(Sim *s, uint8_t *ret) {
        for (;;) {
                /* the replies so far form one burst: the chip now waits for the host */
                int r = tx_flush(s);
                if (r < 0)
                        return r;

                if (s->rx_pos == s->rx_len) {
                        r = fill(s);
                        if (r < 0)
                                return r;
                        continue;
                }

                uint8_t b = s->rxbuf[s->rx_pos++];

                pthread_mutex_lock(&s->mutex);
                if (s->timing.enabled) {
                        /* the byte is complete one frame after the previous one; no sleep
                         * here: the clock catches up before the next reply */
                        s->rx_clock_ns = MAX(s->rx_clock_ns, s->rx_chunk_ns) + byte_nsec(s);
                        s->busy_until_ns = MAX(s->busy_until_ns, s->rx_clock_ns);
                }
                if (s->epoch != s->cmd_epoch) {
                        pthread_mutex_unlock(&s->mutex);
                        s->rx_pos--;            /* belongs to what the chip runs now */
                        return -ERESET;
                }
                bool ok = line_accepts(s);
                /* An adapter that sends 8N1 although 8E1 was asked: the chip samples the
                 * stop bit (1) where the parity bit belongs, which is even parity only for
                 * a byte with an odd number of ones; a byte with an even number fails the
                 * USART's parity check and the bootloader never sees it. */
                if (s->parity_dropped && __builtin_popcount(b) % 2 == 0)
                        ok = false;
                pthread_mutex_unlock(&s->mutex);
                if (!ok)
                        continue;
                *ret = b;
                return 0;
        }
}

/* Address + XOR: 0 valid checksum, 1 bad checksum, < 0 error. */
static int rx_addr(Sim *s, uint32_t *ret) {
        uint8_t b[5];
        for (size_t i = 0; i < 5; i++) {
                int r = rx_byte(s, &b[i]);
                if (r < 0)
                        return r;
        }
        if ((b[0] ^ b[1] ^ b[2] ^ b[3]) != b[4])
                return 1;
        *ret = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
        return 0;
}

/* The last reply, then a reset through OBL_LAUNCH. The state changes before the reply
 * goes out, so a host that saw the reply sees the new state (the byte stream is the
 * same either way: input is handled in order). */
static int flush_and_reset_obl(Sim *s) {
        bool ok;
        int r;

        pthread_mutex_lock(&s->mutex);
        ok = s->epoch == s->cmd_epoch;
        if (ok) {
                s->ob_busy = false;     /* programming done: this reload is its end */
                reset_obl(s);
        }
        pthread_mutex_unlock(&s->mutex);
        if (!ok) {
                s->tx_len = 0;
                return -ERESET;
        }
        r = tx_flush(s);
        return r < 0 ? r : -ERESET;
}

static void hang_up(Sim *s);

/* Drops what the host sent while the chip was busy: a reset clears the USART, so none
 * of it is heard afterwards. */
static void discard_input(Sim *s) {
        uint8_t buf[256];

        s->rx_pos = s->rx_len;
        for (;;) {
                struct pollfd p = { .fd = s->fd, .events = POLLIN };
                ssize_t k;

                if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
                        return;
                k = read(s->fd, buf, sizeof buf);
                if (k <= 0)
                        return;
                pthread_mutex_lock(&s->mutex);
                s->counters.bytes_in += (uint64_t) k;
                pthread_mutex_unlock(&s->mutex);
        }
}

/* Option-byte programming, started once the chip has all it needs: lasts
 * ob_program_usec of real time (also with the timing model off, so that a reset during
 * it is seen; with it on, at least a page erase). A reset or power loss in the window
 * interrupts it (ob_interrupt()). The faults RESET_DURING_OB and HANGUP_DURING_OB act in
 * the middle. 0 when it ran to the end (ob_busy stays set until the reload), -ERESET
 * when it was interrupted. */
static int ob_program(Sim *s) {
        bool reset_mid, hangup_mid;
        uint64_t usec, start = mono_nsec();

        pthread_mutex_lock(&s->mutex);
        if (s->epoch != s->cmd_epoch) {
                pthread_mutex_unlock(&s->mutex);
                return -ERESET;
        }
        s->ob_busy = true;
        reset_mid = s->fault_armed[SIM_FAULT_RESET_DURING_OB];
        hangup_mid = s->fault_armed[SIM_FAULT_HANGUP_DURING_OB];
        s->fault_armed[SIM_FAULT_RESET_DURING_OB] = s->fault_armed[SIM_FAULT_HANGUP_DURING_OB] = false;
        usec = s->ob_program_usec;
        if (s->timing.enabled)
                usec = MAX(usec, scaled(s, s->dev->page_erase_nsec) / 1000);
        pthread_mutex_unlock(&s->mutex);

        if (reset_mid || hangup_mid) {
                sleep_until_nsec(start + usec * 500);
                if (hangup_mid)
                        hang_up(s);
                if (reset_mid) {
                        pthread_mutex_lock(&s->mutex);
                        reset_system(s);
                        pthread_mutex_unlock(&s->mutex);
                }
        }
        sleep_until_nsec(start + usec * 1000);
        s->busy_until_ns = MAX(s->busy_until_ns, mono_nsec());
        if (!hangup_mid)
                discard_input(s);

        pthread_mutex_lock(&s->mutex);
        bool ok = s->ob_busy && s->epoch == s->cmd_epoch;
        pthread_mutex_unlock(&s->mutex);
        if (!ok) {
                s->tx_len = 0;
                return -ERESET;
        }
        return 0;
}

/* The ACK that ends an option-byte programming, unless a fault loses or garbles it. */
static int tx_ob_ack(Sim *s) {
        bool drop, garble;

        pthread_mutex_lock(&s->mutex);
        drop = s->fault_armed[SIM_FAULT_DROP_OB_ACK];
        garble = s->fault_armed[SIM_FAULT_GARBLE_OB_ACK];
        s->fault_armed[SIM_FAULT_DROP_OB_ACK] = s->fault_armed[SIM_FAULT_GARBLE_OB_ACK] = false;
        pthread_mutex_unlock(&s->mutex);
        if (drop)
                return 0;
        if (garble)
                return tx_put(s, 0x7B);
        return tx_ack(s);
}

/* ---- commands (AN3155 §2-§3) ---- */

static const uint8_t get_reply[] = { 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92 };

static int cmd_get(Sim *s) {
        tx_ack(s);
        for (size_t i = 0; i < sizeof get_reply; i++)
                tx_put(s, get_reply[i]);
        return tx_ack(s);
}

static int cmd_get_version(Sim *s) {
        tx_ack(s);
        tx_put(s, 0x31);
        tx_put(s, 0x00);
        tx_put(s, 0x00);
        return tx_ack(s);
}

static int cmd_get_id(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        uint16_t pid = s->id_override ? s->id_override : s->dev->pid;
        pthread_mutex_unlock(&s->mutex);

        tx_ack(s);
        tx_put(s, 0x01);
        tx_put(s, pid >> 8);
        tx_put(s, pid & 0xFF);
        return tx_ack(s);
}

static int cmd_read(Sim *s) {
        uint8_t buf[256], n, c;
        uint32_t addr;
        bool ok;
        int r;

        tx_ack(s);
        r = rx_addr(s, &addr);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        ok = r == 0 && region_find(s, addr);
        pthread_mutex_unlock(&s->mutex);
        if (!ok)
                return tx_nack(s);
        tx_ack(s);

        if ((r = rx_byte(s, &n)) < 0 || (r = rx_byte(s, &c)) < 0)
                return r;
        if ((n ^ c) != 0xFF)
                return tx_nack(s);

        pthread_mutex_lock(&s->mutex);
        ok = range_readable(s, addr, (size_t) n + 1);
        if (ok) {
                range_copy(s, addr, buf, (size_t) n + 1);
                s->nth_read++;
                if (s->fault_armed[SIM_FAULT_CORRUPT_READ] &&
                    s->nth_read == MAX(s->fault_arg[SIM_FAULT_CORRUPT_READ], 1u)) {
                        s->fault_armed[SIM_FAULT_CORRUPT_READ] = false;
                        s->have_bad_cell = true;
                        s->bad_cell = addr + n / 2;
                }
                if (s->have_bad_cell && s->bad_cell >= addr && s->bad_cell - addr <= n)
                        buf[s->bad_cell - addr] ^= 0x10;
                if (s->fault_armed[SIM_FAULT_GLITCH_READ] &&
                    s->nth_read == MAX(s->fault_arg[SIM_FAULT_GLITCH_READ], 1u)) {
                        s->fault_armed[SIM_FAULT_GLITCH_READ] = false;
                        buf[n / 2] ^= 0x10;
                }
                if (s->fault_armed[SIM_FAULT_GLITCH_READS] && s->nth_read >= MAX(s->fault_arg[SIM_FAULT_GLITCH_READS], 1u))
                        buf[s->nth_read % ((unsigned) n + 1)] ^= 0x01;
                s->counters.reads++;
        }
        pthread_mutex_unlock(&s->mutex);
        if (!ok)
                return tx_nack(s);

        tx_ack(s);
        for (size_t i = 0; i <= n; i++)
                tx_put(s, buf[i]);
        return 0;
}

static int cmd_go(Sim *s) {
        uint32_t addr;
        Region *reg;
        int r;

        tx_ack(s);
        r = rx_addr(s, &addr);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        reg = r == 0 ? region_find(s, addr) : NULL;
        pthread_mutex_unlock(&s->mutex);
        /* only flash and RAM; since V2.1 option bytes and system memory get NACK (AN3155 §3.5) */
        if (!reg || (reg->kind != REGION_FLASH && reg->kind != REGION_RAM))
                return tx_nack(s);
        tx_ack(s);

        pthread_mutex_lock(&s->mutex);
        bool ok = s->epoch == s->cmd_epoch;
        if (ok) {
                s->state = SIM_STATE_USER_CODE;
                s->go_address = addr;
                s->counters.gos++;
        }
        pthread_mutex_unlock(&s->mutex);
        if (!ok)
                return -ERESET;
        return tx_flush(s);
}

static bool fault_hits(Sim *s, SimFault f, unsigned nth) {
        if (!s->fault_armed[f])
                return false;
        if (f == SIM_FAULT_NACK_ALL_WRITES)
                return true;
        if (nth != MAX(s->fault_arg[f], 1u))
                return false;
        s->fault_armed[f] = false;
        return true;
}

static void hang_up(Sim *s) {
        if (s->is_socket)
                (void) shutdown(s->fd, SHUT_RDWR);
        else {
                /* a pty master: hanging up means closing it; put /dev/null in its place */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        (void) dup3(null, s->fd, O_CLOEXEC);
                        close(null);
                }
        }
}

/* Write Memory at the option-byte base, the frame complete and its checksum good.
 * C0/G0: the only form shown working on silicon is 8 bytes, OPTR and its
 * complement (stm32isp's enablebootpin); it sets OPTR and keeps every other option register
 * (as stm32isp's use implies). Nothing shows what the ROM does with any other write, so
 * the simulator takes the worst (RM0444): a longer or shorter write, or a complement
 * that does not match, locks the chip. F0/L0 (the host never writes their option
 * bytes this way): all option bytes are erased, then rewritten (AN3155 §3.6). Then the
 * device resets and reloads them. */
static int write_option_bytes(Sim *s, const uint8_t *data, size_t len) {
        uint8_t *o = s->ob->mem;
        int r;

        pthread_mutex_lock(&s->mutex);
        s->counters.ob_writes++;
        if (is_g0_like(s) && (len != 8 || (rd32(data) ^ rd32(data + 4)) != UINT32_MAX)) {
                lock_chip(s);
                pthread_mutex_unlock(&s->mutex);
                s->tx_len = 0;
                return -ERESET;
        }
        pthread_mutex_unlock(&s->mutex);

        r = ob_program(s);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        if (is_g0_like(s))
                memcpy(o, data, 8);
        else {
                memset(o, ob_erased(s), s->ob->size);
                memcpy(o, data, len);
        }
        s->counters.writes++;
        pthread_mutex_unlock(&s->mutex);
        tx_ob_ack(s);
        return flush_and_reset_obl(s);
}

static int cmd_write(Sim *s) {
        uint8_t data[256], n, cks, x;
        uint32_t addr;
        unsigned nth;
        Region *reg;
        bool hangup;
        int r;

        pthread_mutex_lock(&s->mutex);
        nth = ++s->nth_write;
        hangup = fault_hits(s, SIM_FAULT_HANGUP_AT_WRITE, nth);
        pthread_mutex_unlock(&s->mutex);
        if (hangup) {
                hang_up(s);
                return -EPIPE;
        }

        tx_ack(s);
        r = rx_addr(s, &addr);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        reg = r == 0 ? region_find(s, addr) : NULL;
        pthread_mutex_unlock(&s->mutex);
        /* writable: flash, host RAM, OTP, EEPROM, and the option bytes from their base */
        if (!reg || reg->kind == REGION_SYSTEM || reg->kind == REGION_INFO ||
            (reg->kind == REGION_OB && addr != reg->base))
                return tx_nack(s);
        tx_ack(s);

        if ((r = rx_byte(s, &n)) < 0)
                return r;
        x = n;
        for (size_t i = 0; i <= n; i++) {
                if ((r = rx_byte(s, &data[i])) < 0)
                        return r;
                x ^= data[i];
        }
        if ((r = rx_byte(s, &cks)) < 0)
                return r;

        size_t len = (size_t) n + 1;
        if (x != cks || len % 4 != 0 || (uint64_t) addr + len > (uint64_t) reg->base + reg->size)
                return tx_nack(s);
        if ((reg->kind == REGION_FLASH || reg->kind == REGION_OTP) && addr % 4 != 0)
                return tx_nack(s);

        pthread_mutex_lock(&s->mutex);
        if (s->epoch != s->cmd_epoch) {
                pthread_mutex_unlock(&s->mutex);
                return -ERESET;
        }
        if (fault_hits(s, SIM_FAULT_RESET_AT_WRITE, nth)) {
                reset_system(s);
                pthread_mutex_unlock(&s->mutex);
                s->tx_len = 0;
                return -ERESET;
        }
        if (fault_hits(s, SIM_FAULT_NACK_WRITE, nth) || fault_hits(s, SIM_FAULT_NACK_ALL_WRITES, nth)) {
                pthread_mutex_unlock(&s->mutex);
                return tx_nack(s);
        }

        if (reg->kind == REGION_OB) {
                pthread_mutex_unlock(&s->mutex);
                return write_option_bytes(s, data, len);
        }

        int64_t t = 0;
        switch (reg->kind) {
        case REGION_FLASH:
        case REGION_OTP:
                t = program_cells(s, reg, addr, data, len);
                break;
        case REGION_EEPROM:
                memcpy(reg->mem + (addr - reg->base), data, len);
                t = (int64_t) ((len + 3) / 4 * s->dev->program_nsec);
                break;
        default:
                memcpy(reg->mem + (addr - reg->base), data, len);
                break;
        }
        if (t >= 0)
                s->counters.writes++;
        pthread_mutex_unlock(&s->mutex);

        if (t < 0)
                return tx_nack(s);
        delay(s, (uint64_t) t);
        return tx_ack(s);
}

static int cmd_extended_erase(Sim *s) {
        _cleanup_free_ uint16_t *pages = NULL;
        uint8_t hi, lo, cks, x, b[2];
        uint32_t npages = s->flash_size / s->dev->page_size;
        unsigned n;
        bool ok;
        int r;

        tx_ack(s);
        if ((r = rx_byte(s, &hi)) < 0 || (r = rx_byte(s, &lo)) < 0)
                return r;
        n = (unsigned) hi << 8 | lo;

        if (n >= 0xFFF0) {
                if ((r = rx_byte(s, &cks)) < 0)
                        return r;
                /* FFFE/FFFD (bank erase) on these single-bank parts, the reserved codes,
                 * and mass erase on L0 (AN3155 §3.8; stm32flash's F_NO_ME): "not supported" -> NACK */
                if ((hi ^ lo) != cks || n != 0xFFFF || s->dev->family == SIM_FAMILY_L0)
                        return tx_nack(s);
                pthread_mutex_lock(&s->mutex);
                ok = !any_protected(s) && s->epoch == s->cmd_epoch;
                if (ok) {
                        mass_erase(s);
                        s->counters.mass_erases++;
                }
                pthread_mutex_unlock(&s->mutex);
                if (!ok)
                        return tx_nack(s);
                delay(s, s->dev->mass_erase_nsec);
                return tx_ack(s);
        }

        pages = malloc(sizeof(uint16_t) * (n + 1));
        if (!pages)
                return -ENOMEM;
        x = hi ^ lo;
        for (unsigned i = 0; i <= n; i++) {
                if ((r = rx_byte(s, &b[0])) < 0 || (r = rx_byte(s, &b[1])) < 0)
                        return r;
                x ^= b[0] ^ b[1];
                pages[i] = (uint16_t) (b[0] << 8 | b[1]);
        }
        if ((r = rx_byte(s, &cks)) < 0)
                return r;
        if (x != cks)
                return tx_nack(s);
        for (unsigned i = 0; i <= n; i++)
                if (pages[i] >= npages)
                        return tx_nack(s);

        pthread_mutex_lock(&s->mutex);
        ok = s->epoch == s->cmd_epoch;
        if (ok)
                for (unsigned i = 0; i <= n; i++) {
                        if (page_protected(s, pages[i]))
                                continue;       /* no error for protected sectors */
                        erase_page(s, pages[i]);
                        s->counters.page_erases++;
                }
        pthread_mutex_unlock(&s->mutex);
        if (!ok)
                return -ERESET;
        delay(s, (uint64_t) (n + 1) * s->dev->page_erase_nsec);
        return tx_ack(s);
}

static int cmd_write_protect(Sim *s) {
        uint8_t codes[256], n, cks, x;
        int r;

        tx_ack(s);
        if ((r = rx_byte(s, &n)) < 0)
                return r;
        x = n;
        for (size_t i = 0; i <= n; i++) {
                if ((r = rx_byte(s, &codes[i])) < 0)
                        return r;
                x ^= codes[i];
        }
        if ((r = rx_byte(s, &cks)) < 0)
                return r;
        if (x != cks)
                return tx_nack(s);

        /* one ACK once programmed, then the reset (AN3155 §3.9) */
        if ((r = ob_program(s)) < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        ob_set_wrp(s, codes, (size_t) n + 1);
        pthread_mutex_unlock(&s->mutex);
        tx_ob_ack(s);
        return flush_and_reset_obl(s);
}

static int cmd_write_unprotect(Sim *s) {
        int r;

        tx_ack(s);
        if ((r = tx_flush(s)) < 0 || (r = ob_program(s)) < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        ob_set_wrp(s, NULL, 0);
        pthread_mutex_unlock(&s->mutex);
        tx_ob_ack(s);
        return flush_and_reset_obl(s);
}

static int cmd_readout_protect(Sim *s) {
        int r;

        tx_ack(s);
        if ((r = tx_flush(s)) < 0 || (r = ob_program(s)) < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        ob_set_rdp(s, 0xBB);
        pthread_mutex_unlock(&s->mutex);
        tx_ob_ack(s);
        return flush_and_reset_obl(s);
}

/* The erase half of a read protection regression: flash, EEPROM, and all RAM cleared. */
static void unprotect_erase_memory(Sim *s) {
        mass_erase(s);
        if (s->eeprom)
                memset(s->eeprom->mem, s->dev->erased, s->eeprom->size);
        if (s->ram)
                memset(s->ram->mem, 0, s->ram->size);   /* all RAM cleared */
        s->counters.mass_erases++;
}

static void unprotect_erase(Sim *s) {
        unprotect_erase_memory(s);
        ob_set_rdp(s, 0xAA);
}

static int cmd_readout_unprotect(Sim *s) {
        uint64_t t;
        int r;

        tx_ack(s);
        if ((r = tx_flush(s)) < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        if (s->epoch == s->cmd_epoch)
                unprotect_erase_memory(s);
        pthread_mutex_unlock(&s->mutex);
        t = s->dev->mass_erase_nsec;
        if (t == 0)
                t = (uint64_t) (s->flash_size / s->dev->page_size) * s->dev->page_erase_nsec;
        delay(s, t);
        /* then the option bytes, RDP back to level 0 */
        if ((r = ob_program(s)) < 0)
                return r;
        pthread_mutex_lock(&s->mutex);
        ob_set_rdp(s, 0xAA);
        pthread_mutex_unlock(&s->mutex);
        tx_ob_ack(s);
        return flush_and_reset_obl(s);
}

static int dispatch(Sim *s, uint8_t cmd) {
        int level;

        pthread_mutex_lock(&s->mutex);
        level = rdp_level_of(s->rdp);
        pthread_mutex_unlock(&s->mutex);

        switch (cmd) {
        case 0x00:
                return cmd_get(s);
        case 0x01:
                return cmd_get_version(s);
        case 0x02:
                return cmd_get_id(s);
        case 0x92:
                return cmd_readout_unprotect(s);
        }

        /* read protection: everything else is NACKed right after the pair (AN3155 Table 2) */
        if (level != 0)
                return tx_nack(s);

        switch (cmd) {
        case 0x11:
                return cmd_read(s);
        case 0x21:
                return cmd_go(s);
        case 0x31:
                return cmd_write(s);
        case 0x44:
                return cmd_extended_erase(s);
        case 0x63:
                return cmd_write_protect(s);
        case 0x73:
                return cmd_write_unprotect(s);
        case 0x82:
                return cmd_readout_protect(s);
        default:
                /* includes the legacy Erase 0x43: these V3.1 parts offer 0x44 */
                return tx_nack(s);
        }
}

static int serve(Sim *s) {
        int r;

        s->rx_pos = s->rx_len = 0;
        s->tx_len = 0;
        s->rx_clock_ns = 0;
        s->busy_until_ns = 0;

        r = send_stale(s);
        for (;;) {
                uint8_t b, c;
                SimState st;
                bool synced;

                if (r == -ERESET)
                        s->tx_len = 0;  /* a reset chip does not finish its reply */
                else if (r < 0)
                        break;

                pthread_mutex_lock(&s->mutex);
                s->cmd_epoch = s->epoch;
                pthread_mutex_unlock(&s->mutex);

                r = rx_byte(s, &b);
                if (r < 0)
                        continue;

                pthread_mutex_lock(&s->mutex);
                st = s->state;
                synced = false;
                if (st == SIM_STATE_WAIT_SYNC) {
                        /* The autobaud takes the first byte after a reset: a 0x7F at a rate
                         * it can measure (1200 to max_baud) syncs; anything else sets a
                         * wrong baud and the chip hears nothing more until it is reset
                         * (a G031, ST's forum). */
                        if (b == 0x7F && (!s->line_known || s->baud <= s->max_baud)) {
                                s->state = SIM_STATE_BOOTLOADER;
                                s->measured_baud = s->line_known ? s->baud : 0;
                                s->counters.syncs++;
                                synced = true;
                        } else {
                                s->state = SIM_STATE_DEAF;
                                s->counters.deafened++;
                        }
                }
                pthread_mutex_unlock(&s->mutex);

                if (st == SIM_STATE_WAIT_SYNC) {
                        r = synced ? tx_ack(s) : 0;
                        continue;
                }

                r = rx_byte(s, &c);
                if (r < 0)
                        continue;
                pthread_mutex_lock(&s->mutex);
                s->counters.commands++;
                pthread_mutex_unlock(&s->mutex);

                if ((b ^ c) != 0xFF)
                        r = tx_nack(s);         /* 7F 7F after sync lands here */
                else
                        r = dispatch(s, b);
        }
        return r == -EPIPE || r == -ECANCELED ? 0 : r;
}

/* ---- public API ---- */

static void fill_uid(Sim *s, uint32_t seed) {
        uint32_t x = seed * 2654435761u ^ 0x5EED1234u;
        for (size_t w = 0; w < 3; w++) {
                uint8_t b[4];
                /* xorshift32 */
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                wr32(b, x);
                poke(s, s->dev->uid_addr[w], b, 4);
        }
}

int sim_new(uint16_t pid, uint32_t flash_size, Sim **ret) {
        const SimDevice *dev = sim_device_find(pid);
        Sim *s;

        if (!ret)
                return -EINVAL;
        if (!dev)
                return -EOPNOTSUPP;
        if (flash_size == 0)
                flash_size = dev->flash_max;
        if (flash_size > dev->flash_max || flash_size % dev->page_size != 0)
                return -EINVAL;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->dev = dev;
        s->flash_size = flash_size;
        s->fd = -1;
        s->boot0 = true;
        s->dtr = s->rts = true;         /* Linux raises both on open */
        s->state = SIM_STATE_OFF;
        s->timing.latency_usec = 1000;
        s->timing.speed = 1.0;
        s->max_baud = SIM_MAX_BAUD_DEFAULT;
        s->ob_program_usec = SIM_OB_PROGRAM_USEC_DEFAULT;
        pthread_mutex_init(&s->mutex, NULL);

        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0) {
                int r = -errno;
                pthread_mutex_destroy(&s->mutex);
                free(s);
                return r;
        }

        s->flash = region_add(s, REGION_FLASH, dev->flash_base, flash_size, dev->erased);
        s->ram = region_add(s, REGION_RAM, dev->host_ram_start, dev->host_ram_end - dev->host_ram_start, 0x00);
        Region *sys = region_add(s, REGION_SYSTEM, dev->sys_base, dev->sys_size, 0xFF);
        s->ob = region_add(s, REGION_OB, dev->ob_base, dev->ob_size, 0xFF);
        Region *info = region_add(s, REGION_INFO, dev->info_base, dev->info_size,
                                  dev->family == SIM_FAMILY_L0 ? 0x00 : 0xFF);
        Region *otp = region_add(s, REGION_OTP, dev->otp_base, dev->otp_size, 0xFF);
        s->eeprom = region_add(s, REGION_EEPROM, dev->eeprom_base, dev->eeprom_size, dev->erased);
        if (!s->flash || !sys || !s->ob || (dev->host_ram_end > dev->host_ram_start && !s->ram) ||
            (dev->info_size && !info) || (dev->otp_size && !otp) || (dev->eeprom_size && !s->eeprom)) {
                sim_free(s);
                return -ENOMEM;
        }

        /* system memory: some deterministic "code", the bootloader ID byte, and on F0 the
         * UID and flash-size register (upper half-word 0xFFFF) that live in it */
        for (uint32_t i = 0; i < sys->size; i++)
                sys->mem[i] = (uint8_t) ((i * 151u) ^ (i >> 8) ^ 0x5A);
        poke(s, dev->bl_id_addr, &dev->bl_id, 1);
        uint8_t fs[4] = { (flash_size / 1024) & 0xFF, (flash_size / 1024) >> 8, 0xFF, 0xFF };
        poke(s, dev->flash_size_reg, fs, dev->family == SIM_FAMILY_F0 ? 4 : 2);
        if (dev->package_reg) {
                static const uint8_t pkg[2] = { 0x00, 0x00 };
                poke(s, dev->package_reg, pkg, 2);
        }
        fill_uid(s, pid);
        ob_factory(s);
        ob_load(s);

        *ret = s;
        return 0;
}

Sim *sim_free(Sim *s) {
        if (!s)
                return NULL;
        sim_stop(s);
        for (size_t i = 0; i < s->n_regions; i++)
                free(s->regions[i].mem);
        if (s->wake_fd >= 0)
                close(s->wake_fd);
        pthread_mutex_destroy(&s->mutex);
        free(s);
        return NULL;
}

static int serve_prepare(Sim *s, int fd) {
        struct stat st;
        uint64_t v;

        if (fd < 0)
                return -EBADF;
        if (fstat(fd, &st) < 0)
                return -errno;
        s->fd = fd;
        s->is_socket = S_ISSOCK(st.st_mode);
        (void) !read(s->wake_fd, &v, sizeof v);

        pthread_mutex_lock(&s->mutex);
        s->stopping = false;
        if (!s->powered)
                power_on(s);
        pthread_mutex_unlock(&s->mutex);
        return 0;
}

static void *thread_main(void *userdata) {
        Sim *s = userdata;
        s->thread_result = serve(s);
        return NULL;
}

int sim_start(Sim *s, int fd) {
        int r;

        if (!s)
                return -EINVAL;
        if (s->thread_started)
                return -EBUSY;
        r = serve_prepare(s, fd);
        if (r < 0)
                return r;
        r = -pthread_create(&s->thread, NULL, thread_main, s);
        if (r < 0)
                return r;
        s->thread_started = true;
        return 0;
}

void sim_stop(Sim *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->mutex);
        s->stopping = true;
        pthread_mutex_unlock(&s->mutex);
        wake(s);
        if (s->thread_started) {
                pthread_join(s->thread, NULL);
                s->thread_started = false;
        }
}

int sim_run(Sim *s, int fd) {
        int r;

        if (!s)
                return -EINVAL;
        if (s->thread_started)
                return -EBUSY;
        r = serve_prepare(s, fd);
        if (r < 0)
                return r;
        return serve(s);
}

void sim_set_timing(Sim *s, const SimTiming *t) {
        pthread_mutex_lock(&s->mutex);
        s->timing = *t;
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_line(Sim *s, unsigned baud, unsigned data_bits, char parity, unsigned stop_bits) {
        pthread_mutex_lock(&s->mutex);
        s->line_known = true;
        s->baud = baud;
        s->line_ok = data_bits == 8 && (parity == 'E' || parity == 'e') && stop_bits == 1 &&
                     baud >= 1200 && baud <= SIM_MAX_BAUD_LIMIT;
        /* synced before the host reported its line: that line is what was measured */
        if (s->state == SIM_STATE_BOOTLOADER && s->measured_baud == 0)
                s->measured_baud = baud;
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_input_checks(Sim *s, bool inpck, bool parmrk, bool ignpar) {
        pthread_mutex_lock(&s->mutex);
        s->in_inpck = inpck;
        s->in_parmrk = parmrk;
        s->in_ignpar = ignpar;
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_adapter_drops_parity(Sim *s, bool on) {
        pthread_mutex_lock(&s->mutex);
        s->parity_dropped = on;
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_max_baud(Sim *s, unsigned baud) {
        pthread_mutex_lock(&s->mutex);
        s->max_baud = baud == 0 ? SIM_MAX_BAUD_DEFAULT : MIN(baud, (unsigned) SIM_MAX_BAUD_LIMIT);
        pthread_mutex_unlock(&s->mutex);
}

unsigned sim_measured_baud(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        unsigned b = s->state == SIM_STATE_BOOTLOADER ? s->measured_baud : 0;
        pthread_mutex_unlock(&s->mutex);
        return b;
}

void sim_set_id(Sim *s, uint16_t pid) {
        pthread_mutex_lock(&s->mutex);
        s->id_override = pid;
        pthread_mutex_unlock(&s->mutex);
}

/* Holds nRST low (the chip stops) or releases it (the boot decision is made on
 * release). Called with the mutex held. */
static void set_nrst_low(Sim *s, bool low) {
        if (low && !s->nrst_low) {
                s->nrst_low = true;
                ob_interrupt(s);
                if (s->powered) {
                        s->state = s->locked ? SIM_STATE_LOCKED : SIM_STATE_OFF;
                        s->epoch++;
                        wake(s);
                }
        } else if (!low && s->nrst_low) {
                s->nrst_low = false;
                if (s->powered)
                        reset_system(s);
        }
}

/* Called with the mutex held. */
static void apply_wiring(Sim *s) {
        switch (s->wiring) {
        case SIM_WIRING_DTR_NRST_RTS_BOOT0:
                if (!s->modem_known)
                        return;
                s->boot0 = s->rts;
                set_nrst_low(s, s->dtr);
                break;
        case SIM_WIRING_BRK_NRST:
                set_nrst_low(s, s->brk);
                break;
        default:
                break;
        }
}

void sim_set_modem(Sim *s, bool dtr, bool rts) {
        pthread_mutex_lock(&s->mutex);
        s->dtr = dtr;
        s->rts = rts;
        s->modem_known = true;
        apply_wiring(s);
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_wiring(Sim *s, SimWiring w) {
        pthread_mutex_lock(&s->mutex);
        s->wiring = w;
        if (w == SIM_WIRING_NONE)
                set_nrst_low(s, false);
        apply_wiring(s);
        pthread_mutex_unlock(&s->mutex);
}

int sim_wiring_from_string(const char *name) {
        if (!name)
                return -EINVAL;
        if (strcmp(name, "none") == 0)
                return SIM_WIRING_NONE;
        if (strcmp(name, "dtr-nrst,rts-boot0") == 0 || strcmp(name, "dtr-nrst+rts-boot0") == 0)
                return SIM_WIRING_DTR_NRST_RTS_BOOT0;
        if (strcmp(name, "brk-nrst") == 0)
                return SIM_WIRING_BRK_NRST;
        return -EINVAL;
}

/* To the bootloader a break is one framing error (a 0x00 without its stop bit): the
 * USART drops it, so the protocol state stays as it is. Only a wiring may act on it.
 * But a chip still waiting for its sync measures its baud on the first pulse it sees:
 * a break leaves it deaf until the next reset (a G031, ST's forum). */
void sim_set_break(Sim *s, bool on) {
        pthread_mutex_lock(&s->mutex);
        if (on && !s->brk)
                s->counters.breaks++;
        s->brk = on;
        apply_wiring(s);
        if (on && s->state == SIM_STATE_WAIT_SYNC) {
                s->state = SIM_STATE_DEAF;
                s->counters.deafened++;
        }
        pthread_mutex_unlock(&s->mutex);
}

void sim_line_message(Sim *s, const char *msg) {
        char buf[256], *save = NULL;
        bool dtr, rts, modem = false, checks = false;
        bool inpck, parmrk, ignpar;

        if (!msg)
                return;
        snprintf(buf, sizeof buf, "%s", msg);

        pthread_mutex_lock(&s->mutex);
        dtr = s->dtr;
        rts = s->rts;
        inpck = s->in_inpck;
        parmrk = s->in_parmrk;
        ignpar = s->in_ignpar;
        pthread_mutex_unlock(&s->mutex);

        for (char *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
                unsigned baud, data, stop;
                char parity;

                if (strncmp(tok, "DTR=", 4) == 0) {
                        dtr = tok[4] == '1';
                        modem = true;
                } else if (strncmp(tok, "RTS=", 4) == 0) {
                        rts = tok[4] == '1';
                        modem = true;
                } else if (strncmp(tok, "BRK=", 4) == 0)
                        sim_set_break(s, tok[4] == '1');
                else if (sscanf(tok, "CFG=%u-%1u%c%1u", &baud, &data, &parity, &stop) == 4)
                        sim_set_line(s, baud, data, parity, stop);
                else if (strncmp(tok, "INPCK=", 6) == 0)
                        inpck = tok[6] == '1', checks = true;
                else if (strncmp(tok, "PARMRK=", 7) == 0)
                        parmrk = tok[7] == '1', checks = true;
                else if (strncmp(tok, "IGNPAR=", 7) == 0)
                        ignpar = tok[7] == '1', checks = true;
        }
        if (modem)
                sim_set_modem(s, dtr, rts);
        if (checks)
                sim_set_input_checks(s, inpck, parmrk, ignpar);
}

void sim_set_boot0(Sim *s, bool high) {
        pthread_mutex_lock(&s->mutex);
        s->boot0 = high;
        pthread_mutex_unlock(&s->mutex);
}

void sim_power_cycle(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        power_on(s);
        pthread_mutex_unlock(&s->mutex);
}

void sim_power_off(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        ob_interrupt(s);
        s->powered = false;
        s->state = SIM_STATE_OFF;
        s->measured_baud = 0;
        s->epoch++;
        wake(s);
        pthread_mutex_unlock(&s->mutex);
}

void sim_reset(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        if (s->powered)
                reset_system(s);
        else
                power_on(s);
        pthread_mutex_unlock(&s->mutex);
}

void sim_lock(Sim *s) {
        pthread_mutex_lock(&s->mutex);
}

void sim_unlock(Sim *s) {
        pthread_mutex_unlock(&s->mutex);
}

uint8_t *sim_flash(Sim *s, size_t *ret_size) {
        if (ret_size)
                *ret_size = s->flash->size;
        return s->flash->mem;
}

uint8_t *sim_option_bytes(Sim *s, size_t *ret_size) {
        if (ret_size)
                *ret_size = s->ob->size;
        return s->ob->mem;
}

uint32_t sim_flash_base(const Sim *s) {
        return s->dev->flash_base;
}

uint8_t sim_erased_value(const Sim *s) {
        return s->dev->erased;
}

uint16_t sim_pid(const Sim *s) {
        return s->dev->pid;
}

uint32_t sim_host_ram(const Sim *s, uint32_t *ret_base) {
        if (ret_base)
                *ret_base = s->dev->host_ram_start;
        return s->dev->host_ram_end - s->dev->host_ram_start;
}

void sim_set_rdp(Sim *s, int level) {
        pthread_mutex_lock(&s->mutex);
        /* 1 -> 0 mass-erases, as on silicon */
        if (level == 0 && rdp_level_of(s->rdp) != 0)
                unprotect_erase(s);
        ob_set_rdp(s, level == 0 ? 0xAA : level == 2 ? 0xCC : 0xBB);
        if (s->powered)
                reset_obl(s);
        else
                ob_load(s);
        pthread_mutex_unlock(&s->mutex);
}

int sim_rdp_level(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        int level = rdp_level_of(s->rdp);
        pthread_mutex_unlock(&s->mutex);
        return level;
}

void sim_set_l0_empty_check(Sim *s, bool on) {
        pthread_mutex_lock(&s->mutex);
        s->l0_empty_check = on;
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_wrp(Sim *s, uint32_t first, uint32_t last) {
        uint32_t pps = s->dev->pages_per_sector;
        uint8_t codes[128];
        size_t n = 0;

        pthread_mutex_lock(&s->mutex);
        if (first <= last) {
                if (is_g0_like(s)) {
                        /* WRP1A = [first, last] directly */
                        codes[n++] = (uint8_t) first;
                        codes[n++] = (uint8_t) last;
                } else
                        for (uint32_t sec = first / pps; sec <= last / pps && n < sizeof codes; sec++)
                                codes[n++] = (uint8_t) sec;
        }
        ob_set_wrp(s, codes, n);
        if (s->powered)
                reset_obl(s);
        else
                ob_load(s);
        pthread_mutex_unlock(&s->mutex);
}

void sim_set_ob_program_usec(Sim *s, unsigned usec) {
        pthread_mutex_lock(&s->mutex);
        s->ob_program_usec = usec ? usec : SIM_OB_PROGRAM_USEC_DEFAULT;
        pthread_mutex_unlock(&s->mutex);
}

bool sim_ob_programming(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        bool b = s->ob_busy;
        pthread_mutex_unlock(&s->mutex);
        return b;
}

bool sim_empty_flag(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        bool e = s->empty;
        pthread_mutex_unlock(&s->mutex);
        return e;
}

SimState sim_state(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        SimState st = s->state;
        pthread_mutex_unlock(&s->mutex);
        return st;
}

void sim_counters(Sim *s, SimCounters *ret) {
        pthread_mutex_lock(&s->mutex);
        *ret = s->counters;
        pthread_mutex_unlock(&s->mutex);
}

uint32_t sim_go_address(Sim *s) {
        pthread_mutex_lock(&s->mutex);
        uint32_t a = s->go_address;
        pthread_mutex_unlock(&s->mutex);
        return a;
}

void sim_set_uid_seed(Sim *s, uint32_t seed) {
        pthread_mutex_lock(&s->mutex);
        fill_uid(s, seed);
        pthread_mutex_unlock(&s->mutex);
}

int sim_load(Sim *s, uint32_t address, const void *data, size_t size) {
        int r = 0;

        pthread_mutex_lock(&s->mutex);
        Region *reg = region_find(s, address);
        if (!reg || (uint64_t) address + size > (uint64_t) reg->base + reg->size ||
            reg->kind == REGION_SYSTEM || reg->kind == REGION_INFO)
                r = -ERANGE;
        else
                memcpy(reg->mem + (address - reg->base), data, size);
        pthread_mutex_unlock(&s->mutex);
        return r;
}

void sim_inject(Sim *s, SimFault f, unsigned arg) {
        if ((unsigned) f >= _SIM_FAULT_MAX)
                return;
        pthread_mutex_lock(&s->mutex);
        switch (f) {
        case SIM_FAULT_STALE_BYTES:
                s->stale_pending = arg > 0 ? arg : 4;
                wake(s);        /* a running thread sends them now */
                break;
        case SIM_FAULT_ALREADY_SYNCED:
                if (s->state == SIM_STATE_WAIT_SYNC)
                        s->state = SIM_STATE_BOOTLOADER;
                else
                        s->fault_armed[f] = true;       /* applies at the next boot */
                break;
        default:
                s->fault_armed[f] = true;
                s->fault_arg[f] = arg;
                /* counts start from the injection */
                if (f == SIM_FAULT_NACK_WRITE || f == SIM_FAULT_RESET_AT_WRITE || f == SIM_FAULT_HANGUP_AT_WRITE)
                        s->fault_arg[f] = s->nth_write + MAX(arg, 1u);
                else if (f == SIM_FAULT_STRAY_BYTE)
                        s->fault_arg[f] = s->nth_ack + MAX(arg, 1u);
                else if (f == SIM_FAULT_DROP_REPLY || f == SIM_FAULT_PARITY_ERROR)
                        s->fault_arg[f] = s->nth_burst + MAX(arg, 1u);
                else if (f == SIM_FAULT_CORRUPT_READ || f == SIM_FAULT_GLITCH_READ || f == SIM_FAULT_GLITCH_READS)
                        s->fault_arg[f] = s->nth_read + MAX(arg, 1u);
                break;
        }
        pthread_mutex_unlock(&s->mutex);
}
