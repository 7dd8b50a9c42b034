/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The simulator against raw AN3155 byte sequences (no host library): exact replies for
 * every command and family, the NACK paths, the family quirks, resets and the boot
 * decision, faults and the line model. */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "sim.h"
#include "test-util.h"

#define ACK 0x79
#define NACK 0x1F

typedef struct T {
        Sim *sim;
        int host;       /* our end */
        int dev;        /* the simulator's end */
} T;

static T t_new_unstarted(uint16_t pid, uint32_t flash) {
        T t;
        int sv[2];
        ASSERT_OK(sim_new(pid, flash, &t.sim));
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        t.host = sv[0];
        t.dev = sv[1];
        return t;
}

static T t_new(uint16_t pid) {
        T t = t_new_unstarted(pid, 0);
        ASSERT_OK(sim_start(t.sim, t.dev));
        return t;
}

static void t_free(T *t) {
        t->sim = sim_free(t->sim);
        close(t->host);
        close(t->dev);
}

static void tx(T *t, const uint8_t *p, size_t n) {
        ASSERT_EQ(write(t->host, p, n), (ssize_t) n);
}
#define TX(t, ...) do { const uint8_t _b[] = { __VA_ARGS__ }; tx(t, _b, sizeof _b); } while (0)

/* Reads exactly n bytes; each must come within 3 s. */
static void rx(T *t, uint8_t *p, size_t n) {
        for (size_t got = 0; got < n;) {
                struct pollfd pfd = { .fd = t->host, .events = POLLIN };
                ASSERT_EQ(poll(&pfd, 1, 3000), 1);
                ssize_t k = read(t->host, p + got, n - got);
                ASSERT_TRUE(k > 0);
                got += (size_t) k;
        }
}

static uint8_t rx1(T *t) {
        uint8_t b;
        rx(t, &b, 1);
        return b;
}

static void expect(T *t, const uint8_t *exp, size_t n) {
        uint8_t buf[300];
        ASSERT_TRUE(n <= sizeof buf);
        rx(t, buf, n);
        ASSERT_MEMEQ(buf, exp, n);
}
#define EXPECT(t, ...) do { const uint8_t _e[] = { __VA_ARGS__ }; expect(t, _e, sizeof _e); } while (0)

/* Nothing arrives: a silent chip has no event to wait for, so this one waits. */
static void expect_silence(T *t) {
        struct pollfd pfd = { .fd = t->host, .events = POLLIN };
        ASSERT_EQ(poll(&pfd, 1, 150), 0);
}

static void sync_(T *t) {
        TX(t, 0x7F);
        EXPECT(t, ACK);
}

static void cmd(T *t, uint8_t c) {
        TX(t, c, (uint8_t) ~c);
}

static void addr(T *t, uint32_t a) {
        TX(t, a >> 24, a >> 16, a >> 8, a, (a >> 24) ^ (a >> 16) ^ (a >> 8) ^ a);
}

static void read_mem(T *t, uint32_t a, uint8_t *buf, size_t n) {
        cmd(t, 0x11);
        EXPECT(t, ACK);
        addr(t, a);
        EXPECT(t, ACK);
        TX(t, n - 1, ~(n - 1));
        EXPECT(t, ACK);
        rx(t, buf, n);
}

/* Returns the reply to the data block; ASSERTs the ACKs before it. */
static uint8_t write_mem(T *t, uint32_t a, const uint8_t *data, size_t n) {
        uint8_t buf[300], x = (uint8_t) (n - 1);
        cmd(t, 0x31);
        EXPECT(t, ACK);
        addr(t, a);
        EXPECT(t, ACK);
        buf[0] = x;
        for (size_t i = 0; i < n; i++) {
                buf[1 + i] = data[i];
                x ^= data[i];
        }
        buf[n + 1] = x;
        tx(t, buf, n + 2);
        return rx1(t);
}

/* A Write Memory of n bytes at the C0/G0 option base, up to its frame; the reply is the
 * caller's to read (or to find missing). */
static void send_ob_write(T *t, const uint8_t *data, size_t n) {
        uint8_t frame[2 + 256], x = (uint8_t) (n - 1);

        cmd(t, 0x31);
        EXPECT(t, ACK);
        addr(t, 0x1FFF7800);
        EXPECT(t, ACK);
        frame[0] = x;
        for (size_t i = 0; i < n; i++)
                x ^= frame[1 + i] = data[i];
        frame[n + 1] = x;
        tx(t, frame, n + 2);
}

/* The same, and its reply, or -1 when none came (a locked chip). */
static int write_ob_raw(T *t, const uint8_t *data, size_t n) {
        struct pollfd pfd = { .fd = t->host, .events = POLLIN };

        send_ob_write(t, data, n);
        if (poll(&pfd, 1, 500) != 1)
                return -1;
        return rx1(t);
}

static void optr_form(uint8_t *form, uint32_t optr) {
        for (int i = 0; i < 4; i++) {
                form[i] = (uint8_t) (optr >> (8 * i));
                form[4 + i] = (uint8_t) ~form[i];
        }
}

static uint8_t erase_pages(T *t, const uint16_t *pages, size_t n) {
        uint8_t buf[600];
        size_t k = 0;
        uint8_t x;
        cmd(t, 0x44);
        EXPECT(t, ACK);
        buf[k++] = (n - 1) >> 8;
        buf[k++] = (n - 1) & 0xFF;
        for (size_t i = 0; i < n; i++) {
                buf[k++] = pages[i] >> 8;
                buf[k++] = pages[i] & 0xFF;
        }
        x = 0;
        for (size_t i = 0; i < k; i++)
                x ^= buf[i];
        buf[k++] = x;
        tx(t, buf, k);
        return rx1(t);
}

static uint8_t mass_erase(T *t) {
        cmd(t, 0x44);
        EXPECT(t, ACK);
        TX(t, 0xFF, 0xFF, 0x00);
        return rx1(t);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* ---- per family: identity, factory bytes, the info registers ---- */

typedef struct Family {
        uint16_t pid;
        uint32_t bl_id_addr;
        uint8_t bl_id;
        uint32_t flash_size_reg;
        uint16_t flash_kb;
        uint32_t ob_base;
        uint8_t ob_head[8];
        uint32_t uid[3];
        uint8_t erased;
        uint32_t ram;           /* first host RAM address, 0: none */
        uint32_t bl_ram;        /* RAM the bootloader keeps */
        uint32_t sysmem;
} Family;

static const Family families[] = {
        { 0x443, 0x1FFF17FE, 0x51, 0x1FFF75A0, 32, 0x1FFF7800, { 0xAA, 0xFF, 0xFF, 0xFF, 0x55, 0x00, 0x00, 0x00 },
          { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 }, 0xFF, 0x20001000, 0x20000000, 0x1FFF0000 },
        { 0x453, 0x1FFF17FE, 0x52, 0x1FFF75A0, 32, 0x1FFF7800, { 0xAA, 0xFF, 0xFF, 0xFF, 0x55, 0x00, 0x00, 0x00 },
          { 0x1FFF7550, 0x1FFF7554, 0x1FFF7558 }, 0xFF, 0x20002000, 0x20001000, 0x1FFF0000 },
        { 0x444, 0x1FFFF7A6, 0x10, 0x1FFFF7CC, 32, 0x1FFFF800, { 0xAA, 0x55, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00 },
          { 0x1FFFF7AC, 0x1FFFF7B0, 0x1FFFF7B4 }, 0xFF, 0x20000800, 0x20000000, 0x1FFFEC00 },
        { 0x466, 0x1FFF1FFE, 0x53, 0x1FFF75E0, 64, 0x1FFF7800, { 0xAA, 0xFE, 0xFF, 0xFF, 0x55, 0x01, 0x00, 0x00 },
          { 0x1FFF7590, 0x1FFF7594, 0x1FFF7598 }, 0xFF, 0x20001000, 0x20000000, 0x1FFF0000 },
        { 0x457, 0x1FF00FFE, 0xC3, 0x1FF8007C, 16, 0x1FF80000, { 0xAA, 0x00, 0x55, 0xFF, 0x70, 0x80, 0x8F, 0x7F },
          { 0x1FF80050, 0x1FF80054, 0x1FF80064 }, 0x00, 0, 0x20000000, 0x1FF00000 },
};

static void test_identity(void) {
        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                const Family *f = &families[i];
                T t = t_new(f->pid);
                uint8_t buf[256], uid1[12], uid2[12];

                fprintf(stderr, "   pid 0x%03x\n", f->pid);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
                /* noise before the sync byte sets a wrong baud: deaf until a reset */
                TX(&t, 0x00, 0x55);
                expect_silence(&t);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
                TX(&t, 0x7F);
                expect_silence(&t);
                sim_reset(t.sim);
                sync_(&t);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_BOOTLOADER);

                cmd(&t, 0x00);
                EXPECT(&t, 0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, 0x79);
                cmd(&t, 0x01);
                EXPECT(&t, 0x79, 0x31, 0x00, 0x00, 0x79);
                cmd(&t, 0x02);
                EXPECT(&t, 0x79, 0x01, 0x04, f->pid & 0xFF, 0x79);

                read_mem(&t, f->bl_id_addr, buf, 1);
                ASSERT_EQ(buf[0], f->bl_id);
                read_mem(&t, f->flash_size_reg, buf, 2);
                ASSERT_EQ(buf[0] | buf[1] << 8, f->flash_kb);
                read_mem(&t, f->ob_base, buf, 8);
                ASSERT_MEMEQ(buf, f->ob_head, 8);
                size_t obsz;
                sim_lock(t.sim);
                ASSERT_MEMEQ(sim_option_bytes(t.sim, &obsz), f->ob_head, 8);
                sim_unlock(t.sim);
                read_mem(&t, 0x08000000, buf, 256);
                for (size_t k = 0; k < 256; k++)
                        ASSERT_EQ(buf[k], f->erased);
                ASSERT_EQ(sim_erased_value(t.sim), f->erased);

                for (size_t w = 0; w < 3; w++)
                        read_mem(&t, f->uid[w], uid1 + 4 * w, 4);
                sim_set_uid_seed(t.sim, 1234);
                for (size_t w = 0; w < 3; w++)
                        read_mem(&t, f->uid[w], uid2 + 4 * w, 4);
                ASSERT_TRUE(memcmp(uid1, uid2, 12) != 0);
                if (f->pid == 0x457) {
                        /* not contiguous: 12 bytes from w0 are not the UID */
                        read_mem(&t, f->uid[0], buf, 12);
                        ASSERT_TRUE(memcmp(buf, uid2, 12) != 0);
                        /* the workaround read of 128 bytes from 0x1FF80000 works */
                        read_mem(&t, 0x1FF80000, buf, 128);
                        ASSERT_MEMEQ(buf + 0x50, uid2, 8);
                        ASSERT_EQ(buf[0x7C], 16);
                }

                /* the bootloader's own RAM: NACK on the address, for read, write and go */
                cmd(&t, 0x11);
                EXPECT(&t, ACK);
                addr(&t, f->bl_ram);
                EXPECT(&t, NACK);
                cmd(&t, 0x31);
                EXPECT(&t, ACK);
                addr(&t, f->bl_ram);
                EXPECT(&t, NACK);
                cmd(&t, 0x21);
                EXPECT(&t, ACK);
                addr(&t, f->bl_ram);
                EXPECT(&t, NACK);
                /* system memory: readable, not writable, no Go */
                read_mem(&t, f->sysmem, buf, 4);
                cmd(&t, 0x31);
                EXPECT(&t, ACK);
                addr(&t, f->sysmem);
                EXPECT(&t, NACK);
                cmd(&t, 0x21);
                EXPECT(&t, ACK);
                addr(&t, f->sysmem);
                EXPECT(&t, NACK);
                /* option bytes: no Go */
                cmd(&t, 0x21);
                EXPECT(&t, ACK);
                addr(&t, f->ob_base);
                EXPECT(&t, NACK);

                if (f->ram) {
                        const uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
                        ASSERT_EQ(write_mem(&t, f->ram, d, 8), ACK);
                        read_mem(&t, f->ram, buf, 8);
                        ASSERT_MEMEQ(buf, d, 8);
                        /* RAM takes any value twice */
                        ASSERT_EQ(write_mem(&t, f->ram, d, 8), ACK);
                }

                SimCounters c;
                sim_counters(t.sim, &c);
                ASSERT_EQ(c.syncs, 1);
                ASSERT_EQ(c.nacks, 6);
                ASSERT_TRUE(c.bytes_in > 0 && c.bytes_out > 0);
                t_free(&t);
        }
}

static void test_sync_and_framing(void) {
        T t = t_new(0x466);
        uint8_t buf[8];

        sync_(&t);
        /* a 0x7F after sync is a command byte: nothing, then 7F 7F is a bad pair */
        TX(&t, 0x7F);
        expect_silence(&t);
        TX(&t, 0x7F);
        EXPECT(&t, NACK);
        /* bad complement, unknown commands, and the legacy Erase these parts do not offer */
        TX(&t, 0x00, 0x00);
        EXPECT(&t, NACK);
        cmd(&t, 0x43);
        EXPECT(&t, NACK);
        cmd(&t, 0x50);
        EXPECT(&t, NACK);
        cmd(&t, 0xA1);
        EXPECT(&t, NACK);

        /* Read Memory: bad address checksum, unmapped address, bad N complement,
         * a read over the end of flash */
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        TX(&t, 0x08, 0x00, 0x00, 0x00, 0x00);
        EXPECT(&t, NACK);
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        addr(&t, 0x30000000);
        EXPECT(&t, NACK);
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        addr(&t, 0x08000000);
        EXPECT(&t, ACK);
        TX(&t, 0x03, 0x03);
        EXPECT(&t, NACK);
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        addr(&t, 0x08010000 - 4);
        EXPECT(&t, ACK);
        TX(&t, 0x07, 0xF8);
        EXPECT(&t, NACK);
        read_mem(&t, 0x08010000 - 4, buf, 4);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);

        /* Go: bad checksum */
        cmd(&t, 0x21);
        EXPECT(&t, ACK);
        TX(&t, 0x08, 0x00, 0x00, 0x00, 0x01);
        EXPECT(&t, NACK);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_BOOTLOADER);
        t_free(&t);
}

static void test_write_g0(void) {
        T t = t_new(0x466);
        uint8_t d[256], buf[256];
        size_t size;
        SimCounters c;

        for (size_t i = 0; i < sizeof d; i++)
                d[i] = (uint8_t) (i * 7 + 1);
        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 256), ACK);
        read_mem(&t, 0x08000000, buf, 256);
        ASSERT_MEMEQ(buf, d, 256);
        /* programmed cells cannot be programmed again */
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), NACK);
        /* 4- but not 8-aligned: ACK, nothing programmed */
        ASSERT_EQ(write_mem(&t, 0x08000104, d, 8), ACK);
        read_mem(&t, 0x08000100, buf, 16);
        for (size_t i = 0; i < 16; i++)
                ASSERT_EQ(buf[i], 0xFF);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.misaligned_writes, 1);
        /* a trailing half double word is not programmed (our documented choice) */
        ASSERT_EQ(write_mem(&t, 0x08000200, d, 12), ACK);
        read_mem(&t, 0x08000200, buf, 12);
        ASSERT_MEMEQ(buf, d, 8);
        ASSERT_EQ(le32(buf + 8), 0xFFFFFFFF);
        /* N+1 not a multiple of 4, bad checksum, over the end of flash */
        ASSERT_EQ(write_mem(&t, 0x08000300, d, 6), NACK);
        cmd(&t, 0x31);
        EXPECT(&t, ACK);
        addr(&t, 0x08000300);
        EXPECT(&t, ACK);
        TX(&t, 0x03, 1, 2, 3, 4, 0x00);
        EXPECT(&t, NACK);
        ASSERT_EQ(write_mem(&t, 0x08010000 - 8, d, 16), NACK);
        /* OB not at the base: NACK on the address */
        cmd(&t, 0x31);
        EXPECT(&t, ACK);
        addr(&t, 0x1FFF7808);
        EXPECT(&t, NACK);

        sim_lock(t.sim);
        uint8_t *fl = sim_flash(t.sim, &size);
        ASSERT_EQ(size, 64 * 1024);
        ASSERT_MEMEQ(fl, d, 256);
        ASSERT_EQ(fl[0x300], 0xFF);
        sim_unlock(t.sim);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.writes, 3);
        t_free(&t);
}

static void test_erase(void) {
        T t = t_new(0x466);
        uint8_t d[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }, buf[8];
        const uint16_t p02[] = { 0, 2 }, bad[] = { 32 };
        SimCounters c;

        sync_(&t);
        for (uint32_t pg = 0; pg < 3; pg++)
                ASSERT_EQ(write_mem(&t, 0x08000000 + pg * 2048, d, 8), ACK);
        ASSERT_EQ(erase_pages(&t, p02, 2), ACK);
        read_mem(&t, 0x08000000, buf, 8);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);
        read_mem(&t, 0x08000800, buf, 8);
        ASSERT_MEMEQ(buf, d, 8);
        read_mem(&t, 0x08001000, buf, 8);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);

        /* bad checksum: NACK, nothing erased */
        cmd(&t, 0x44);
        EXPECT(&t, ACK);
        TX(&t, 0x00, 0x00, 0x00, 0x01, 0x00);
        EXPECT(&t, NACK);
        read_mem(&t, 0x08000800, buf, 8);
        ASSERT_MEMEQ(buf, d, 8);
        /* page out of range */
        ASSERT_EQ(erase_pages(&t, bad, 1), NACK);
        /* bank erases are not supported on these single-bank parts; mass erase checksum */
        cmd(&t, 0x44);
        EXPECT(&t, ACK);
        TX(&t, 0xFF, 0xFE, 0x01);
        EXPECT(&t, NACK);
        cmd(&t, 0x44);
        EXPECT(&t, ACK);
        TX(&t, 0xFF, 0xFD, 0x02);
        EXPECT(&t, NACK);
        cmd(&t, 0x44);
        EXPECT(&t, ACK);
        TX(&t, 0xFF, 0xFF, 0xFF);
        EXPECT(&t, NACK);
        ASSERT_EQ(mass_erase(&t), ACK);
        read_mem(&t, 0x08000800, buf, 8);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.page_erases, 2);
        ASSERT_EQ(c.mass_erases, 1);
        t_free(&t);
}

static void test_f0(void) {
        T t = t_new(0x444);
        const uint8_t d[4] = { 0x34, 0x12, 0xFF, 0xFF }, z[4] = { 0, 0, 0, 0 }, o[4] = { 1, 0, 0, 0 };
        const uint16_t p1[] = { 1 };
        uint8_t buf[4];

        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000400, d, 4), ACK);
        read_mem(&t, 0x08000400, buf, 4);
        ASSERT_MEMEQ(buf, d, 4);
        /* F0: 0x0000 may be written over anything, other values only onto 0xFFFF */
        ASSERT_EQ(write_mem(&t, 0x08000400, z, 4), ACK);
        read_mem(&t, 0x08000400, buf, 4);
        ASSERT_MEMEQ(buf, z, 4);
        ASSERT_EQ(write_mem(&t, 0x08000400, o, 4), NACK);
        ASSERT_EQ(erase_pages(&t, p1, 1), ACK);
        ASSERT_EQ(write_mem(&t, 0x08000400, o, 4), ACK);

        /* nBOOT1 = 0 in USER: the BOOT0 pin no longer selects the bootloader */
        uint8_t ob[16];
        read_mem(&t, 0x1FFFF800, ob, 16);
        ob[2] &= ~0x10;
        ob[3] = (uint8_t) ~ob[2];
        ASSERT_EQ(write_mem(&t, 0x1FFFF800, ob, 16), ACK);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        TX(&t, 0x7F);
        expect_silence(&t);
        t_free(&t);

        /* F0 boots the bootloader with the BOOT0 pin high only */
        t = t_new_unstarted(0x444, 16 * 1024);
        sim_set_boot0(t.sim, false);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        sim_set_boot0(t.sim, true);
        sim_reset(t.sim);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        read_mem(&t, 0x1FFFF7CC, buf, 4);
        ASSERT_EQ(le32(buf), 0xFFFF0010);
        /* 16 KiB: 0x08004000 is not flash */
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        addr(&t, 0x08004000);
        EXPECT(&t, NACK);
        t_free(&t);
}

static void test_write_protect(void) {
        T t = t_new(0x444);
        const uint8_t d[4] = { 1, 2, 3, 4 };
        uint8_t buf[4];

        sync_(&t);
        /* protect sector 0 (pages 0-3): ACK, then the chip resets */
        cmd(&t, 0x63);
        EXPECT(&t, ACK);
        TX(&t, 0x00, 0x00, 0x00);
        EXPECT(&t, ACK);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        read_mem(&t, 0x1FFFF808, buf, 2);
        ASSERT_EQ(buf[0], 0xFE);
        ASSERT_EQ(buf[1], 0x01);
        /* no error for a protected sector, and nothing programmed */
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 4), ACK);
        read_mem(&t, 0x08000000, buf, 4);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);
        ASSERT_EQ(write_mem(&t, 0x08001000, d, 4), ACK);
        read_mem(&t, 0x08001000, buf, 4);
        ASSERT_MEMEQ(buf, d, 4);

        cmd(&t, 0x73);
        EXPECT(&t, ACK, ACK);
        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 4), ACK);
        read_mem(&t, 0x08000000, buf, 4);
        ASSERT_MEMEQ(buf, d, 4);
        SimCounters c;
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.resets, 2);
        t_free(&t);
}

static void test_l0(void) {
        T t = t_new(0x457);
        const uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, z[4] = { 0, 0, 0, 0 };
        const uint16_t p1[] = { 1 };
        uint8_t buf[8];

        sync_(&t);
        /* no mass erase through the bootloader */
        ASSERT_EQ(mass_erase(&t), NACK);
        ASSERT_EQ(write_mem(&t, 0x08000080, d, 8), ACK);
        read_mem(&t, 0x08000080, buf, 8);
        ASSERT_MEMEQ(buf, d, 8);
        /* words: zero is erased, so writing zeros is fine, anything else is not */
        ASSERT_EQ(write_mem(&t, 0x08000084, z, 4), NACK);
        ASSERT_EQ(write_mem(&t, 0x08000088, z, 4), ACK);
        ASSERT_EQ(erase_pages(&t, p1, 1), ACK);
        read_mem(&t, 0x08000080, buf, 8);
        ASSERT_EQ(le32(buf) | le32(buf + 4), 0);
        /* no RAM for the host, so no Go to RAM */
        cmd(&t, 0x31);
        EXPECT(&t, ACK);
        addr(&t, 0x20000800);
        EXPECT(&t, NACK);
        cmd(&t, 0x21);
        EXPECT(&t, ACK);
        addr(&t, 0x20000000);
        EXPECT(&t, NACK);
        /* data EEPROM */
        ASSERT_EQ(write_mem(&t, 0x08080000, d, 8), ACK);
        read_mem(&t, 0x08080000, buf, 8);
        ASSERT_MEMEQ(buf, d, 8);

        /* lock and unlock: the flash comes back erased to 0x00 */
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), ACK);
        cmd(&t, 0x82);
        EXPECT(&t, ACK, ACK);
        sync_(&t);
        ASSERT_EQ(sim_rdp_level(t.sim), 1);
        cmd(&t, 0x11);
        EXPECT(&t, NACK);
        cmd(&t, 0x92);
        EXPECT(&t, ACK, ACK);
        sync_(&t);
        ASSERT_EQ(sim_rdp_level(t.sim), 0);
        read_mem(&t, 0x08000000, buf, 8);
        ASSERT_EQ(le32(buf) | le32(buf + 4), 0);
        read_mem(&t, 0x1FF80000, buf, 4);
        ASSERT_EQ(le32(buf), 0xFF5500AA);
        t_free(&t);
}

static void test_rdp(void) {
        T t = t_new(0x466);
        const uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        uint8_t buf[8];
        SimCounters c;

        sync_(&t);
        /* a blank G0 with factory option bytes: Readout Protect resets into the
         * bootloader because EMPTY is still set */
        cmd(&t, 0x82);
        EXPECT(&t, ACK, ACK);
        ASSERT_EQ(sim_rdp_level(t.sim), 1);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        cmd(&t, 0x00);
        EXPECT(&t, 0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, 0x79);
        cmd(&t, 0x02);
        EXPECT(&t, 0x79, 0x01, 0x04, 0x66, 0x79);
        static const uint8_t blocked[] = { 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x43 };
        for (size_t i = 0; i < sizeof blocked; i++) {
                cmd(&t, blocked[i]);
                EXPECT(&t, NACK);
        }
        sim_lock(t.sim);
        memcpy(sim_flash(t.sim, NULL), d, 8);
        sim_unlock(t.sim);
        cmd(&t, 0x92);
        EXPECT(&t, ACK, ACK);
        /* flash erased, EMPTY set again: back in the bootloader */
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        ASSERT_TRUE(sim_empty_flag(t.sim));
        sync_(&t);
        ASSERT_EQ(sim_rdp_level(t.sim), 0);
        read_mem(&t, 0x08000000, buf, 8);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);

        /* programmed flash and factory option bytes: after Readout Protect the chip
         * runs user code and answers nothing */
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), ACK);
        cmd(&t, 0x82);
        EXPECT(&t, ACK, ACK);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        ASSERT_TRUE(!sim_empty_flag(t.sim));
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.resets, 3);
        t_free(&t);

        /* level 2 (CC): no bootloader at all */
        t = t_new_unstarted(0x466, 0);
        sim_set_rdp(t.sim, 2);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        t_free(&t);

        /* level 1 set by a programmer before power-up, on a blank part */
        t = t_new_unstarted(0x453, 0);
        sim_set_rdp(t.sim, 1);
        ASSERT_OK(sim_start(t.sim, t.dev));
        sync_(&t);
        cmd(&t, 0x11);
        EXPECT(&t, NACK);
        t_free(&t);
}

static void test_option_bytes_boot(void) {
        T t = t_new(0x466);
        const uint8_t d[8] = { 0x00, 0x20, 0x00, 0x20, 0xC1, 0x00, 0x00, 0x08 };
        uint8_t ob[128], buf[8];
        SimCounters c;

        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), ACK);
        /* a plain reset keeps EMPTY as latched at power-on: still the bootloader */
        sim_reset(t.sim);
        ASSERT_TRUE(sim_empty_flag(t.sim));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);

        /* clear nBOOT_SEL (stm32isp's byte-3 edit), written as stm32isp does: OPTR and
         * its complement, 8 bytes; the other option registers stay */
        read_mem(&t, 0x1FFF7800, ob, 128);
        ob[3] = (ob[3] & 0xF8) | 0x06;
        for (int i = 0; i < 4; i++)
                ob[4 + i] = (uint8_t) ~ob[i];
        ASSERT_EQ(write_mem(&t, 0x1FFF7800, ob, 8), ACK);
        /* OBL reset: EMPTY relatched (flash programmed), BOOT0 pin high -> bootloader */
        ASSERT_TRUE(!sim_empty_flag(t.sim));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        cmd(&t, 0x00);          /* not synced: a wrong baud measured, deaf */
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
        sim_reset(t.sim);
        sync_(&t);
        read_mem(&t, 0x1FFF7800, buf, 8);
        ASSERT_EQ(le32(buf), 0xFEFFFEAA);
        ASSERT_EQ(le32(buf + 4), 0x01000155);
        uint8_t all[128];
        read_mem(&t, 0x1FFF7800, all, 128);
        ASSERT_MEMEQ(all + 8, ob + 8, 120);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.ob_writes, 1);

        /* BOOT0 low: main flash */
        sim_set_boot0(t.sim, false);
        sim_reset(t.sim);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        sim_set_boot0(t.sim, true);
        sim_reset(t.sim);
        sync_(&t);

        /* a broken OPTR complement: the worst RM0444 allows, locked for good */
        ob[4] ^= 0x01;
        send_ob_write(&t, ob, 8);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
        t_free(&t);

        /* C0 factory option bytes: BOOT0 ignored once the flash holds data */
        t = t_new_unstarted(0x443, 0);
        ASSERT_OK(sim_load(t.sim, 0x08000000, d, 8));
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        sim_power_cycle(t.sim);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        t_free(&t);
}

static void test_c0_misaligned(void) {
        T t = t_new(0x443);
        const uint8_t d[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        uint8_t buf[16];
        SimCounters c;

        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000004, d, 16), ACK);
        read_mem(&t, 0x08000000, buf, 16);
        for (size_t i = 0; i < 16; i++)
                ASSERT_EQ(buf[i], 0xFF);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 16), ACK);
        read_mem(&t, 0x08000000, buf, 16);
        ASSERT_MEMEQ(buf, d, 16);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.misaligned_writes, 1);
        /* 32 KiB flash ends at 0x08008000 */
        cmd(&t, 0x11);
        EXPECT(&t, ACK);
        addr(&t, 0x08008000);
        EXPECT(&t, NACK);
        t_free(&t);
}

static void test_go(void) {
        T t = t_new(0x466);

        sync_(&t);
        cmd(&t, 0x21);
        EXPECT(&t, ACK);
        addr(&t, 0x20001000);
        EXPECT(&t, ACK);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        ASSERT_EQ(sim_go_address(t.sim), 0x20001000);
        TX(&t, 0x7F);
        expect_silence(&t);
        /* the board's reset button: blank flash, so the bootloader again */
        sim_reset(t.sim);
        sync_(&t);
        cmd(&t, 0x21);
        EXPECT(&t, ACK);
        addr(&t, 0x08000000);
        EXPECT(&t, ACK);
        ASSERT_EQ(sim_go_address(t.sim), 0x08000000);
        SimCounters c;
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.gos, 2);
        t_free(&t);
}

static void test_faults(void) {
        const uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        uint8_t buf[16], ref[16];

        /* stale bytes in the host's buffer before anything is sent */
        T t = t_new_unstarted(0x466, 0);
        sim_inject(t.sim, SIM_FAULT_STALE_BYTES, 3);
        ASSERT_OK(sim_start(t.sim, t.dev));
        EXPECT(&t, ACK, NACK, 0x00);
        sync_(&t);

        sim_inject(t.sim, SIM_FAULT_NACK_WRITE, 1);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), NACK);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 8), ACK);

        read_mem(&t, 0x08000000, ref, 16);
        /* a glitch: once */
        sim_inject(t.sim, SIM_FAULT_GLITCH_READ, 1);
        read_mem(&t, 0x08000000, buf, 16);
        ASSERT_TRUE(memcmp(buf, ref, 16) != 0);
        read_mem(&t, 0x08000000, buf, 16);
        ASSERT_MEMEQ(buf, ref, 16);
        /* a cell that reads wrong: every read that holds it, and only that byte */
        sim_inject(t.sim, SIM_FAULT_CORRUPT_READ, 1);
        read_mem(&t, 0x08000000, buf, 16);
        ASSERT_TRUE(memcmp(buf, ref, 16) != 0);
        read_mem(&t, 0x08000000, buf, 16);
        ASSERT_EQ(buf[7], ref[7] ^ 0x10);
        ASSERT_MEMEQ(buf, ref, 7);
        read_mem(&t, 0x08000000, buf, 7);
        ASSERT_MEMEQ(buf, ref, 7);

        sim_inject(t.sim, SIM_FAULT_DROP_REPLY, 1);
        cmd(&t, 0x01);
        expect_silence(&t);
        cmd(&t, 0x01);
        EXPECT(&t, 0x79, 0x31, 0x00, 0x00, 0x79);

        sim_inject(t.sim, SIM_FAULT_STRAY_BYTE, 1);
        cmd(&t, 0x02);
        EXPECT(&t, 0x00, 0x79, 0x01, 0x04, 0x66, 0x79);

        sim_inject(t.sim, SIM_FAULT_NACK_ALL_WRITES, 0);
        ASSERT_EQ(write_mem(&t, 0x08000100, d, 8), NACK);
        ASSERT_EQ(write_mem(&t, 0x08000100, d, 8), NACK);

        /* reset before the answer: no reply, the chip waits for a sync again */
        t_free(&t);
        t = t_new(0x466);
        sync_(&t);
        sim_inject(t.sim, SIM_FAULT_RESET_AT_WRITE, 1);
        cmd(&t, 0x31);
        EXPECT(&t, ACK);
        addr(&t, 0x08000000);
        EXPECT(&t, ACK);
        TX(&t, 0x03, 1, 2, 3, 4, 0x03 ^ 1 ^ 2 ^ 3 ^ 4);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        read_mem(&t, 0x08000000, buf, 4);
        ASSERT_EQ(le32(buf), 0xFFFFFFFF);

        /* hang-up before a write: the host reads end of file */
        sim_inject(t.sim, SIM_FAULT_HANGUP_AT_WRITE, 1);
        cmd(&t, 0x31);
        struct pollfd pfd = { .fd = t.host, .events = POLLIN };
        ASSERT_EQ(poll(&pfd, 1, 3000), 1);
        ASSERT_EQ(read(t.host, buf, 1), 0);
        t_free(&t);

        /* an earlier session synced: 0x7F is a command byte now */
        t = t_new_unstarted(0x466, 0);
        sim_inject(t.sim, SIM_FAULT_ALREADY_SYNCED, 0);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_BOOTLOADER);
        TX(&t, 0x7F);
        expect_silence(&t);
        TX(&t, 0x7F);
        EXPECT(&t, NACK);
        t_free(&t);
}

static void test_line(void) {
        T t = t_new(0x466);

        /* 8N1: the parity bit is missing, the chip hears nothing */
        sim_line_message(t.sim, "CFG=115200-8N1");
        TX(&t, 0x7F);
        expect_silence(&t);
        /* beyond the autobaud range: measured wrong, deaf until a reset */
        sim_line_message(t.sim, "CFG=230400-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
        sim_line_message(t.sim, "CFG=57600-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_reset(t.sim);
        sync_(&t);
        cmd(&t, 0x01);
        EXPECT(&t, 0x79, 0x31, 0x00, 0x00, 0x79);
        /* a different baud after the measurement: garbage, ignored */
        sim_line_message(t.sim, "CFG=115200-8E1");
        cmd(&t, 0x01);
        expect_silence(&t);
        sim_line_message(t.sim, "CFG=57600-8E1");
        cmd(&t, 0x01);
        EXPECT(&t, 0x79, 0x31, 0x00, 0x00, 0x79);
        t_free(&t);

        /* DTR drives nRST, RTS drives BOOT0 */
        ASSERT_EQ(sim_wiring_from_string("dtr-nrst,rts-boot0"), SIM_WIRING_DTR_NRST_RTS_BOOT0);
        ASSERT_EQ(sim_wiring_from_string("none"), SIM_WIRING_NONE);
        ASSERT_ERR(sim_wiring_from_string("dtr"), EINVAL);
        t = t_new_unstarted(0x444, 0);
        sim_set_boot0(t.sim, false);
        sim_set_wiring(t.sim, SIM_WIRING_DTR_NRST_RTS_BOOT0);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        sim_line_message(t.sim, "DTR=1 RTS=1");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_OFF);
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_line_message(t.sim, "DTR=0 RTS=1");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        sim_line_message(t.sim, "RTS=0");
        sim_line_message(t.sim, "DTR=1");
        sim_line_message(t.sim, "DTR=0");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        t_free(&t);
}

/* The autobaud's upper limit: a 0x7F above it is measured wrong and the chip is deaf
 * until the next reset (a G031, ST's forum), so a host can fall back to a lower baud only after
 * resetting it. */
static void test_max_baud(void) {
        T t = t_new(0x466);
        SimCounters c;

        /* default 115200: a host at 460800 gets nothing, nor at 115200 until a reset */
        sim_line_message(t.sim, "CFG=460800-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
        ASSERT_EQ(sim_measured_baud(t.sim), 0);
        sim_line_message(t.sim, "CFG=115200-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_reset(t.sim);
        sync_(&t);
        ASSERT_EQ(sim_measured_baud(t.sim), 115200);
        sim_counters(t.sim, &c);
        ASSERT_EQ(c.deafened, 1);
        t_free(&t);

        /* max 921600: 460800 is measured; the 2.5 % rule still holds after it */
        t = t_new_unstarted(0x466, 0);
        sim_set_max_baud(t.sim, 921600);
        ASSERT_OK(sim_start(t.sim, t.dev));
        sim_line_message(t.sim, "CFG=1000000-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
        sim_reset(t.sim);
        sim_line_message(t.sim, "CFG=460800-8N1");      /* parity still required: not heard */
        TX(&t, 0x7F);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sim_line_message(t.sim, "CFG=460800-8E1");
        sync_(&t);
        ASSERT_EQ(sim_measured_baud(t.sim), 460800);
        cmd(&t, 0x02);
        EXPECT(&t, ACK, 0x01, 0x04, 0x66, ACK);
        sim_line_message(t.sim, "CFG=115200-8E1");
        cmd(&t, 0x02);
        expect_silence(&t);
        sim_line_message(t.sim, "CFG=460800-8E1");
        cmd(&t, 0x01);
        EXPECT(&t, ACK, 0x31, 0x00, 0x00, ACK);
        /* a reset forgets the measurement; 3000000 is the most a max-baud allows */
        sim_reset(t.sim);
        ASSERT_EQ(sim_measured_baud(t.sim), 0);
        sim_set_max_baud(t.sim, 4000000);
        sim_line_message(t.sim, "CFG=3500000-8E1");
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_reset(t.sim);
        sim_line_message(t.sim, "CFG=3000000-8E1");
        sync_(&t);
        ASSERT_EQ(sim_measured_baud(t.sim), 3000000);
        /* 0 restores the default */
        sim_reset(t.sim);
        sim_set_max_baud(t.sim, 0);
        TX(&t, 0x7F);
        expect_silence(&t);
        sim_reset(t.sim);
        sim_line_message(t.sim, "CFG=115200-8E1");
        sync_(&t);
        t_free(&t);
}

/* Wall time of a 256-byte Read Memory at the host's baud with the timing model on, no
 * latency: the best of three (a loaded machine only adds time). */
static uint64_t timed_read_usec(unsigned baud) {
        T t = t_new_unstarted(0x466, 0);
        SimTiming tm = { .enabled = true, .latency_usec = 0, .speed = 1.0 };
        uint64_t best = UINT64_MAX;
        uint8_t buf[256];
        char line[64];

        sim_set_max_baud(t.sim, 921600);
        sim_set_timing(t.sim, &tm);
        ASSERT_OK(sim_start(t.sim, t.dev));
        snprintf(line, sizeof line, "CFG=%u-8E1", baud);
        sim_line_message(t.sim, line);
        sync_(&t);
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = now_usec();
                read_mem(&t, 0x08000000, buf, sizeof buf);
                best = MIN(best, now_usec() - t0);
        }
        t_free(&t);
        return best;
}

static void test_timing_baud(void) {
        /* 2+5+2 bytes in, 3 ACKs + 256 bytes out: 268 frames of 11 bits */
        uint64_t fast = timed_read_usec(460800), slow = timed_read_usec(115200);
        uint64_t model_fast = 268ULL * 11 * 1000000 / 460800, model_slow = 268ULL * 11 * 1000000 / 115200;

        ASSERT_TRUE(fast >= model_fast);
        ASSERT_TRUE(slow >= model_slow);
        /* 6.4 ms against 25.6 ms: the wire time follows the host's baud */
        ASSERT_TRUE(fast < model_slow / 2);
}

/* id=: Get ID answers another PID, the rest is the base device. */
static void test_id_override(void) {
        T t = t_new_unstarted(0x466, 0);
        uint8_t buf[4];

        sim_set_id(t.sim, 0x4A1);
        ASSERT_OK(sim_start(t.sim, t.dev));
        sync_(&t);
        cmd(&t, 0x02);
        EXPECT(&t, ACK, 0x01, 0x04, 0xA1, ACK);
        ASSERT_EQ(sim_pid(t.sim), 0x466);
        /* still a G0: its flash-size register and bootloader ID */
        read_mem(&t, 0x1FFF75E0, buf, 2);
        ASSERT_EQ(buf[0], 64);
        ASSERT_EQ(buf[1], 0);
        read_mem(&t, 0x1FFF1FFE, buf, 1);
        ASSERT_EQ(buf[0], 0x53);
        sim_set_id(t.sim, 0);
        cmd(&t, 0x02);
        EXPECT(&t, ACK, 0x01, 0x04, 0x66, ACK);
        t_free(&t);
}

static void *run_thread(void *userdata) {
        T *t = userdata;
        return (void *) (intptr_t) sim_run(t->sim, t->dev);
}

static void test_hangup(void) {
        T t = t_new_unstarted(0x466, 0);
        pthread_t th;
        void *ret;

        ASSERT_EQ(pthread_create(&th, NULL, run_thread, &t), 0);
        sync_(&t);
        close(t.host);
        ASSERT_EQ(pthread_join(th, &ret), 0);
        ASSERT_EQ((intptr_t) ret, 0);
        t.host = -1;
        t.sim = sim_free(t.sim);
        close(t.dev);

        /* sim_stop ends a sim_start()ed thread waiting for bytes */
        t = t_new(0x457);
        sim_stop(t.sim);
        t_free(&t);
}

static void test_timing(void) {
        T t = t_new(0x466);
        SimTiming tm = { .enabled = true, .latency_usec = 1000, .speed = 1.0 };
        uint64_t t0;

        sim_set_timing(t.sim, &tm);
        t0 = now_usec();
        sync_(&t);
        /* 15 bytes out at 115200: 1.4 ms, plus latency */
        cmd(&t, 0x00);
        EXPECT(&t, 0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, 0x79);
        ASSERT_TRUE(now_usec() - t0 >= 2000);
        t0 = now_usec();
        ASSERT_EQ(mass_erase(&t), ACK);
        ASSERT_TRUE(now_usec() - t0 >= 22100);
        t_free(&t);
}

static void test_api(void) {
        Sim *s;
        uint32_t base;

        ASSERT_ERR(sim_new(0x410, 0, &s), EOPNOTSUPP);
        ASSERT_ERR(sim_new(0x466, 128 * 1024, &s), EINVAL);
        ASSERT_ERR(sim_new(0x466, 1000, &s), EINVAL);
        ASSERT_OK(sim_new(0x466, 32 * 1024, &s));
        ASSERT_EQ(sim_pid(s), 0x466);
        ASSERT_EQ(sim_flash_base(s), 0x08000000);
        ASSERT_EQ(sim_host_ram(s, &base), 0x1000);
        ASSERT_EQ(base, 0x20001000);
        ASSERT_EQ(sim_state(s), SIM_STATE_OFF);
        ASSERT_ERR(sim_load(s, 0x08008000, "x", 1), ERANGE);
        ASSERT_ERR(sim_load(s, 0x1FFF0000, "x", 1), ERANGE);
        ASSERT_OK(sim_load(s, 0x08007FFF, "x", 1));
        sim_power_cycle(s);
        ASSERT_EQ(sim_state(s), SIM_STATE_WAIT_SYNC);
        ASSERT_TRUE(sim_free(s) == NULL);
        ASSERT_TRUE(sim_free(NULL) == NULL);
}

/* The autobaud locks on the first byte after a reset (a G031, ST's forum): a 0x7F it can
 * measure syncs; any other byte, a 0x7F above max-baud, or a break leaves the chip deaf
 * until the next reset or power cycle. A synced chip is not made deaf by garbage. */
static void test_autobaud(void) {
        static const uint8_t firsts[] = { 0x00, 0x01, 0x02, 0x55, 0x79, 0x7E, 0xFF };
        SimCounters c;
        T t;

        for (size_t i = 0; i < ELEMENTSOF(firsts); i++) {
                t = t_new(0x466);
                TX(&t, firsts[i]);
                TX(&t, 0x7F);
                expect_silence(&t);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
                /* a reset, or a power cycle, ends it */
                if (i % 2)
                        sim_reset(t.sim);
                else
                        sim_power_cycle(t.sim);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
                sync_(&t);
                sim_counters(t.sim, &c);
                ASSERT_EQ(c.deafened, 1);
                ASSERT_EQ(c.syncs, 1);
                t_free(&t);
        }

        /* a break on a chip waiting for its sync (nothing wired to nRST): deaf */
        t = t_new(0x453);
        sim_line_message(t.sim, "BRK=1");
        sim_line_message(t.sim, "BRK=0");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_DEAF);
        sim_reset(t.sim);
        sync_(&t);
        /* once synced, garbage is just bad command pairs */
        TX(&t, 0x00, 0x00);
        EXPECT(&t, NACK);
        sim_line_message(t.sim, "BRK=1");
        sim_line_message(t.sim, "BRK=0");
        cmd(&t, 0x01);
        EXPECT(&t, 0x79, 0x31, 0x00, 0x00, 0x79);
        t_free(&t);

        /* with a break wired to nRST the chip is in reset during it: not deaf */
        t = t_new_unstarted(0x444, 0);
        sim_set_wiring(t.sim, SIM_WIRING_BRK_NRST);
        ASSERT_OK(sim_start(t.sim, t.dev));
        sim_line_message(t.sim, "BRK=1");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_OFF);
        sim_line_message(t.sim, "BRK=0");
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        t_free(&t);
}

/* C0/G0 option bytes as strict as the evidence: only the 8-byte OPTR + complement form
 * is taken (OPTR set, the rest kept); any other write, a complement mismatch, or a
 * reset or power loss during the programming locks the chip for good. */
static void test_ob_strict(void) {
        static const uint16_t pids[] = { 0x443, 0x453, 0x466 };
        uint8_t ob[128], back[128], form[8];
        SimCounters c;

        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                T t = t_new(pids[i]);

                fprintf(stderr, "   pid 0x%03x\n", pids[i]);
                sync_(&t);
                read_mem(&t, 0x1FFF7800, ob, 128);
                optr_form(form, le32(ob) & ~(UINT32_C(1) << 24));
                ASSERT_EQ(write_ob_raw(&t, form, 8), ACK);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
                sync_(&t);
                read_mem(&t, 0x1FFF7800, back, 128);
                ASSERT_MEMEQ(back, form, 8);
                ASSERT_MEMEQ(back + 8, ob + 8, 120);
                t_free(&t);

                /* the whole area (what this host wrote before), 16 bytes, 4 bytes */
                static const size_t bad_len[] = { 128, 16, 4 };
                for (size_t k = 0; k < ELEMENTSOF(bad_len); k++) {
                        t = t_new(pids[i]);
                        sync_(&t);
                        memcpy(back, ob, 128);
                        memcpy(back, form, 8);
                        ASSERT_EQ(write_ob_raw(&t, back, bad_len[k]), -1);
                        ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                        /* for good: a reset and a power cycle change nothing */
                        sim_reset(t.sim);
                        ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                        sim_power_cycle(t.sim);
                        ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                        TX(&t, 0x7F);
                        expect_silence(&t);
                        t_free(&t);
                }

                /* a complement that does not match */
                t = t_new(pids[i]);
                sync_(&t);
                form[6] ^= 0x40;
                ASSERT_EQ(write_ob_raw(&t, form, 8), -1);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                form[6] ^= 0x40;
                t_free(&t);

                /* a reset in the middle of the programming (a button, a brown-out) */
                t = t_new(pids[i]);
                sync_(&t);
                sim_inject(t.sim, SIM_FAULT_RESET_DURING_OB, 0);
                ASSERT_EQ(write_ob_raw(&t, form, 8), -1);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                sim_counters(t.sim, &c);
                ASSERT_EQ(c.ob_interrupted, 1);
                t_free(&t);

                /* the same by sim_reset() from outside while the window is open: the window
                 * lasts its real time with the timing model off */
                t = t_new(pids[i]);
                sim_set_ob_program_usec(t.sim, 300 * 1000);
                sync_(&t);
                send_ob_write(&t, form, 8);
                for (unsigned k = 0; k < 1000 && !sim_ob_programming(t.sim); k++)
                        usleep(1000);
                ASSERT_TRUE(sim_ob_programming(t.sim));
                sim_reset(t.sim);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
                expect_silence(&t);
                t_free(&t);

                /* a reset right before the write and right after it: nothing happens */
                t = t_new(pids[i]);
                sync_(&t);
                sim_reset(t.sim);
                sync_(&t);
                ASSERT_EQ(write_ob_raw(&t, form, 8), ACK);
                sim_reset(t.sim);
                sync_(&t);
                read_mem(&t, 0x1FFF7800, back, 8);
                ASSERT_MEMEQ(back, form, 8);
                t_free(&t);

                /* the line goes away during it: the board has power, finishes and reloads */
                t = t_new(pids[i]);
                sync_(&t);
                sim_inject(t.sim, SIM_FAULT_HANGUP_DURING_OB, 0);
                send_ob_write(&t, form, 8);
                uint8_t b;
                ASSERT_TRUE(read(t.host, &b, 1) <= 0);
                sim_stop(t.sim);
                ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
                sim_lock(t.sim);
                ASSERT_MEMEQ(sim_option_bytes(t.sim, NULL), form, 8);
                sim_unlock(t.sim);
                t_free(&t);

                /* the final ACK lost or garbled: programmed and reset all the same */
                for (int k = 0; k < 2; k++) {
                        t = t_new(pids[i]);
                        sync_(&t);
                        sim_inject(t.sim, k ? SIM_FAULT_GARBLE_OB_ACK : SIM_FAULT_DROP_OB_ACK, 0);
                        ASSERT_EQ(write_ob_raw(&t, form, 8), k ? 0x7B : -1);
                        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
                        sync_(&t);
                        read_mem(&t, 0x1FFF7800, back, 8);
                        ASSERT_MEMEQ(back, form, 8);
                        t_free(&t);
                }
        }

        /* Readout Protect and Write Unprotect program option bytes too: a reset during
         * them locks a C0/G0 */
        T t = t_new(0x466);
        sync_(&t);
        sim_inject(t.sim, SIM_FAULT_RESET_DURING_OB, 0);
        cmd(&t, 0x82);
        EXPECT(&t, ACK);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_LOCKED);
        t_free(&t);
        /* an F0 is not said to lock: its option bytes are left erased, read protection 1 */
        t = t_new(0x444);
        sync_(&t);
        sim_inject(t.sim, SIM_FAULT_RESET_DURING_OB, 0);
        cmd(&t, 0x73);
        EXPECT(&t, ACK);
        expect_silence(&t);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sim_power_cycle(t.sim);         /* the next option-byte load */
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        ASSERT_EQ(sim_rdp_level(t.sim), 1);
        t_free(&t);
}

/* Write protection on every family, as AN3155 says: program and page erase skip the
 * protected pages without an error; a mass erase is refused. */
static void test_wrp_families(void) {
        static const struct { uint16_t pid; uint32_t page, prot_last, free_page; } cases[] = {
                { 0x443, 2048, 1, 2 },          /* pages 0-1 */
                { 0x466, 2048, 1, 2 },
                { 0x444, 1024, 3, 4 },          /* sector 0: pages 0-3 */
                { 0x457, 128, 31, 32 },         /* sector 0: pages 0-31 */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                T t = t_new_unstarted(cases[i].pid, 0);
                uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, buf[8], ob[16];
                uint16_t pg[1];
                uint8_t erased = sim_erased_value(t.sim);

                fprintf(stderr, "   pid 0x%03x\n", cases[i].pid);
                /* old code in the first and the free page; a C0/G0 with nBOOT_SEL cleared
                 * (as a flash by this host leaves it), so that BOOT0 brings it back */
                ASSERT_OK(sim_load(t.sim, 0x08000000, d, 8));
                ASSERT_OK(sim_load(t.sim, 0x08000000 + cases[i].free_page * cases[i].page, d, 8));
                if (cases[i].page == 2048) {
                        uint8_t form[8];

                        sim_lock(t.sim);
                        optr_form(form, le32(sim_option_bytes(t.sim, NULL)) & ~(UINT32_C(1) << 24));
                        sim_unlock(t.sim);
                        ASSERT_OK(sim_load(t.sim, 0x1FFF7800, form, 8));
                }
                sim_set_wrp(t.sim, 0, cases[i].prot_last);
                ASSERT_OK(sim_start(t.sim, t.dev));
                sync_(&t);
                /* the option bytes say so */
                if (cases[i].pid == 0x444) {
                        read_mem(&t, 0x1FFFF808, ob, 2);
                        ASSERT_EQ(ob[0], 0xFE);
                } else if (cases[i].pid == 0x457) {
                        read_mem(&t, 0x1FF80008, ob, 4);
                        ASSERT_EQ(le32(ob), 0xFFFE0001);
                } else {
                        read_mem(&t, 0x1FFF7818, ob, 8);
                        ASSERT_EQ(le32(ob), 0x00010000);        /* STRT 0, END 1 */
                        ASSERT_EQ(le32(ob + 4), 0xFFFEFFFF);
                }
                /* page erase: ACK, the protected page keeps its bytes, the free one is erased */
                pg[0] = (uint16_t) cases[i].prot_last;
                ASSERT_EQ(erase_pages(&t, (const uint16_t[]) { 0 }, 1), ACK);
                read_mem(&t, 0x08000000, buf, 8);
                ASSERT_MEMEQ(buf, d, 8);
                pg[0] = (uint16_t) cases[i].free_page;
                ASSERT_EQ(erase_pages(&t, pg, 1), ACK);
                read_mem(&t, 0x08000000 + cases[i].free_page * cases[i].page, buf, 8);
                for (int k = 0; k < 8; k++)
                        ASSERT_EQ(buf[k], erased);
                /* program into the last protected page: ACK, nothing programmed */
                uint32_t a = 0x08000000 + cases[i].prot_last * cases[i].page + 8;
                ASSERT_EQ(write_mem(&t, a, d, 8), ACK);
                read_mem(&t, a, buf, 8);
                for (int k = 0; k < 8; k++)
                        ASSERT_EQ(buf[k], erased);
                /* mass erase: refused (L0 has none at all) */
                ASSERT_EQ(mass_erase(&t), NACK);
                read_mem(&t, 0x08000000, buf, 8);
                ASSERT_MEMEQ(buf, d, 8);
                /* Write Unprotect lifts it */
                cmd(&t, 0x73);
                EXPECT(&t, ACK, ACK);
                sync_(&t);
                if (cases[i].pid != 0x457)
                        ASSERT_EQ(mass_erase(&t), ACK);
                else
                        ASSERT_EQ(erase_pages(&t, (const uint16_t[]) { 0 }, 1), ACK);
                read_mem(&t, 0x08000000, buf, 8);
                for (int k = 0; k < 8; k++)
                        ASSERT_EQ(buf[k], erased);
                t_free(&t);
        }
}

/* The L0 empty check, as an option (sources disagree: ST's knowledge base lists the
 * L01x/L02x, CMSIS defines no flag). */
static void test_l0_empty_check(void) {
        const uint8_t d[4] = { 1, 2, 3, 4 };
        T t = t_new_unstarted(0x457, 0);

        /* without: BOOT0 low runs the (blank) flash */
        sim_set_boot0(t.sim, false);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        ASSERT_TRUE(!sim_empty_flag(t.sim));
        /* with: blank flash starts the bootloader at the next power-up */
        sim_set_l0_empty_check(t.sim, true);
        sim_power_cycle(t.sim);
        ASSERT_TRUE(sim_empty_flag(t.sim));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sync_(&t);
        ASSERT_EQ(write_mem(&t, 0x08000000, d, 4), ACK);
        /* a reset keeps the flag as latched; a power cycle sees the code */
        sim_reset(t.sim);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_WAIT_SYNC);
        sim_power_cycle(t.sim);
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        /* other families ignore the option */
        t_free(&t);
        t = t_new_unstarted(0x444, 0);
        sim_set_boot0(t.sim, false);
        sim_set_l0_empty_check(t.sim, true);
        ASSERT_OK(sim_start(t.sim, t.dev));
        ASSERT_EQ(sim_state(t.sim), SIM_STATE_USER_CODE);
        t_free(&t);
}

int main(void) {
        TEST(test_api);
        TEST(test_identity);
        TEST(test_sync_and_framing);
        TEST(test_write_g0);
        TEST(test_erase);
        TEST(test_f0);
        TEST(test_write_protect);
        TEST(test_l0);
        TEST(test_rdp);
        TEST(test_option_bytes_boot);
        TEST(test_c0_misaligned);
        TEST(test_go);
        TEST(test_faults);
        TEST(test_line);
        TEST(test_hangup);
        TEST(test_timing);
        TEST(test_max_baud);
        TEST(test_timing_baud);
        TEST(test_id_override);
        TEST(test_autobaud);
        TEST(test_ob_strict);
        TEST(test_wrp_families);
        TEST(test_l0_empty_check);
        return 0;
}
