/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The flasher against the bootloader simulator, over a socketpair, for every family:
 * what ends up in the simulated flash and option bytes, and the error paths. */

#include <errno.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include "flasher.h"
#include "macro.h"
#include "sim.h"
#include "test-util.h"

static const uint16_t pids[] = { 0x443, 0x453, 0x444, 0x466, 0x457 };

typedef struct Rig {
        Sim *sim;
        int sim_fd;
        int host_fd;    /* owned by link */
        Link *link;
        Flasher *f;
        const ChipInfo *info;
} Rig;

static void rig_start_size(Rig *r, uint16_t pid, uint32_t flash_size) {
        An3155Timeouts t;
        int fds[2];

        memset(r, 0, sizeof(*r));
        r->info = chip_lookup(pid);
        ASSERT_TRUE(r->info);
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        ASSERT_OK(sim_new(pid, flash_size, &r->sim));
        r->sim_fd = fds[1];
        r->host_fd = fds[0];
        ASSERT_OK(sim_start(r->sim, r->sim_fd));
        ASSERT_OK(link_open_fd(fds[0], "sim", &r->link));
        ASSERT_OK(flasher_new(r->link, &r->f));

        /* the simulator answers at once: short timeouts keep fault tests fast */
        an3155_get_timeouts(flasher_protocol(r->f), &t);
        t.reply_usec = 200 * USEC_PER_MSEC;
        t.write_usec = 500 * USEC_PER_MSEC;
        t.page_erase_usec = 100 * USEC_PER_MSEC;
        t.mass_erase_usec = 2 * USEC_PER_SEC;
        t.option_usec = 1 * USEC_PER_SEC;
        t.reset_usec = 5 * USEC_PER_MSEC;
        an3155_set_timeouts(flasher_protocol(r->f), &t);
}

static void rig_start(Rig *r, uint16_t pid) {
        rig_start_size(r, pid, 0);
}

static void rig_stop(Rig *r) {
        SimCounters c;

        /* no host path ever locks a chip or resets it while it programs option bytes */
        sim_counters(r->sim, &c);
        ASSERT_TRUE(sim_state(r->sim) != SIM_STATE_LOCKED);
        ASSERT_EQ(c.ob_interrupted, 0);
        r->f = flasher_free(r->f);
        sim_stop(r->sim);
        r->link = link_free(r->link);
        close(r->sim_fd);
        r->sim = sim_free(r->sim);
}

static uint32_t rng_state = 0x2545F491;
static uint8_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        return (uint8_t) rng_state;
}
static void fill_random(uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = rnd();
}

/* size random bytes (the caller frees them) as a one-segment image at c's flash base. */
static uint8_t *random_image(const ChipInfo *c, uint32_t size, ImageSegment *seg, Image *img) {
        uint8_t *d = malloc(size);

        ASSERT_TRUE(d);
        fill_random(d, size);
        *seg = (ImageSegment) { .address = c->flash_base, .size = size, .data = d };
        *img = (Image) { .segments = seg, .n_segments = 1 };
        return d;
}

/* A copy of the simulated flash. */
static uint8_t *sim_flash_copy(Sim *s, size_t *ret_n) {
        size_t n;
        uint8_t *copy;

        sim_lock(s);
        uint8_t *m = sim_flash(s, &n);
        copy = malloc(n);
        ASSERT_TRUE(copy);
        memcpy(copy, m, n);
        sim_unlock(s);
        if (ret_n)
                *ret_n = n;
        return copy;
}

static void sim_option_copy(Sim *s, uint8_t *buf, size_t n) {
        size_t have;

        sim_lock(s);
        uint8_t *m = sim_option_bytes(s, &have);
        ASSERT_TRUE(have >= n);
        memcpy(buf, m, n);
        sim_unlock(s);
}

/* Progress recorder: per stage, done never goes down and the last report is (total, total). */
typedef struct Progress {
        unsigned n;
        FlasherStage stage[4096];
        uint64_t done[4096], total[4096];
        const ChipInfo *info;
        atomic_bool *cancel;
        FlasherStage cancel_stage;
        uint64_t cancel_after;
} Progress;

static void on_progress(void *userdata, FlasherStage stage, uint64_t done, uint64_t total) {
        Progress *p = userdata;

        ASSERT_TRUE(done <= total);
        if (p->n < ELEMENTSOF(p->stage)) {
                p->stage[p->n] = stage;
                p->done[p->n] = done;
                p->total[p->n] = total;
                p->n++;
        }
        if (p->cancel && stage == p->cancel_stage && done >= p->cancel_after)
                atomic_store(p->cancel, true);
}

static void check_progress(const Progress *p, FlasherStage stage, uint64_t expect_total) {
        bool seen = false;
        uint64_t last_done = 0, last_total = 0;

        for (unsigned i = 0; i < p->n; i++) {
                if (p->stage[i] != stage)
                        continue;
                if (seen) {
                        ASSERT_TRUE(p->done[i] >= last_done);
                        ASSERT_EQ(p->total[i], last_total);
                }
                seen = true;
                last_done = p->done[i];
                last_total = p->total[i];
        }
        ASSERT_TRUE(seen);
        ASSERT_EQ(last_done, last_total);
        ASSERT_EQ(last_total, expect_total);
}

static void test_probe(uint16_t pid) {
        Rig r;
        FlasherChip c;

        rig_start(&r, pid);
        sim_set_uid_seed(r.sim, 42);
        ASSERT_TRUE(!flasher_chip(r.f));
        ASSERT_OK(flasher_probe(r.f, &c));
        ASSERT_STREQ(flasher_error_message(r.f), "");
        ASSERT_EQ(c.pid, pid);
        ASSERT_TRUE(c.info == r.info);
        ASSERT_EQ(c.protocol_version, 0x31);
        ASSERT_TRUE(c.n_commands >= 10);
        ASSERT_EQ(c.flash_size, r.info->flash_size);
        ASSERT_EQ(c.rdp_level, 0);
        ASSERT_TRUE(c.have_option_bytes);
        ASSERT_EQ(c.option_bytes_size, r.info->ob_size);
        /* two independent tables agree on the factory option bytes */
        ASSERT_MEMEQ(c.option_bytes, r.info->ob_factory, r.info->ob_size);
        ASSERT_EQ(c.optr, chip_optr(r.info, r.info->ob_factory));
        ASSERT_TRUE(c.have_uid);
        bool blank = true;
        for (size_t i = 0; i < 12; i++)
                blank = blank && c.uid[i] == c.uid[0];
        ASSERT_TRUE(!blank);
        ASSERT_TRUE(flasher_chip(r.f));
        ASSERT_EQ(flasher_chip(r.f)->pid, pid);
        rig_stop(&r);

        /* the UID (reads 3.. of a probe: option bytes, flash size, UID) meets a glitch:
         * read again, the right one is taken */
        FlasherChip g;
        rig_start(&r, pid);
        sim_set_uid_seed(r.sim, 42);
        sim_inject(r.sim, SIM_FAULT_GLITCH_READ, 3);
        ASSERT_OK(flasher_probe(r.f, &g));
        ASSERT_MEMEQ(g.uid, c.uid, 12);
        rig_stop(&r);
        /* a line where no two reads agree: no UID is taken, the probe fails */
        rig_start(&r, pid);
        sim_set_uid_seed(r.sim, 42);
        sim_inject(r.sim, SIM_FAULT_GLITCH_READS, 3);
        ASSERT_ERR(flasher_probe(r.f, &g), EILSEQ);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "the UID at 0x"));
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "no UID was taken"));
        ASSERT_TRUE(!flasher_chip(r.f));
        rig_stop(&r);

        /* another board, another UID */
        FlasherChip c2;
        rig_start(&r, pid);
        sim_set_uid_seed(r.sim, 43);
        ASSERT_OK(flasher_probe(r.f, &c2));
        ASSERT_TRUE(memcmp(c.uid, c2.uid, 12) != 0);
        rig_stop(&r);
}

/* Full-flash random image with default options: flash == image, verified, the G0
 * alignment quirk never hit, C0/G0 end with nBOOT_SEL cleared and back in the
 * bootloader. */
static void test_full_flash(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        SimCounters cnt;
        Progress *p = calloc(1, sizeof(Progress));
        size_t n;

        ASSERT_TRUE(p);
        rig_start(&r, pid);
        uint32_t size = r.info->flash_size;
        _cleanup_free_ uint8_t *data = malloc(size);
        ASSERT_TRUE(data);
        fill_random(data, size);
        ImageSegment seg = { .address = r.info->flash_base, .size = size, .data = data };
        Image img = { .format = IMAGE_FORMAT_BIN, .segments = &seg, .n_segments = 1 };

        flasher_set_progress(r.f, on_progress, p);
        flasher_flash_options_init(&o);
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_STREQ(flasher_error_message(r.f), "");

        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        ASSERT_EQ(n, size);
        ASSERT_MEMEQ(flash, data, size);
        ASSERT_EQ(res.bytes_written, size);
        ASSERT_EQ(res.bytes_verified, size);
        ASSERT_EQ(res.write_retries, 0);
        ASSERT_TRUE(!res.unprotected && !res.protected_ && !res.started);
        ASSERT_TRUE(res.duration_usec > 0);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.misaligned_writes, 0);
        /* the image touches every page: one mass erase where the chip has one */
        if (r.info->mass_erase) {
                ASSERT_EQ(res.pages_erased, UINT32_MAX);
                ASSERT_TRUE(res.mass_erased);
                ASSERT_EQ(cnt.page_erases, 0);
                ASSERT_EQ(cnt.mass_erases, 1);
        } else {
                ASSERT_EQ(res.pages_erased, size / r.info->page_size);
                ASSERT_EQ(cnt.page_erases, size / r.info->page_size);
                ASSERT_EQ(cnt.mass_erases, 0);
        }
        /* 256-byte blocks on every family (L0 too), 256-byte verify reads, and nothing
         * else but the probe's few reads and, on C0/G0, the option bytes read back */
        ASSERT_EQ(cnt.writes, size / 256 + (r.info->boot_rule == CHIP_BOOT_NBOOT_SEL));
        ASSERT_TRUE(cnt.reads >= size / 256 && cnt.reads <= size / 256 + 9);  /* the UID twice: L0 six reads */

        check_progress(p, FLASHER_STAGE_ERASING, size / r.info->page_size);
        check_progress(p, FLASHER_STAGE_WRITING, size);
        check_progress(p, FLASHER_STAGE_VERIFYING, size);
        /* one report per block at least, and the stages in order */
        unsigned writes = 0;
        for (unsigned i = 0; i < p->n; i++) {
                writes += p->stage[i] == FLASHER_STAGE_WRITING;
                if (i > 0)
                        ASSERT_TRUE(p->stage[i] >= p->stage[i - 1]);
        }
        ASSERT_TRUE(writes >= size / 256);

        if (r.info->boot_rule == CHIP_BOOT_NBOOT_SEL) {
                uint8_t ob[128];

                ASSERT_TRUE(res.boot0_changed);
                check_progress(p, FLASHER_STAGE_OPTIONS, 1);
                sim_option_copy(r.sim, ob, r.info->ob_size);
                ASSERT_EQ(ob[3] & 0x07, 0x06);          /* nBOOT_SEL 0, nBOOT1 1, nBOOT0 1 */
                ASSERT_EQ(ob[0], 0xAA);
                for (size_t i = 0; i < 4; i++)
                        ASSERT_EQ(ob[4 + i], (uint8_t) ~ob[i]);
                /* the rest of the area was written back as it was */
                ASSERT_MEMEQ(ob + 8, r.info->ob_factory + 8, r.info->ob_size - 8);
                ASSERT_EQ(sim_state(r.sim), SIM_STATE_BOOTLOADER);
                ASSERT_TRUE(!sim_empty_flag(r.sim));
                /* and the chip answers again after a reset, flash not empty */
                sim_reset(r.sim);
                FlasherChip c;
                ASSERT_OK(flasher_probe(r.f, &c));
                ASSERT_EQ(c.optr & (7u << 24), 6u << 24);
                ASSERT_EQ(c.rdp_level, 0);
        } else {
                ASSERT_TRUE(!res.boot0_changed);
                sim_counters(r.sim, &cnt);
                ASSERT_EQ(cnt.ob_writes, 0);
        }
        rig_stop(&r);
        free(p);
}

/* The erase plan: an image touching every page but the last erases page by page and
 * keeps the last page; one touching every page (even by a single byte) mass-erases where
 * the chip can, and so does an AUTO erase of the whole flash. */
static void test_erase_plan(uint16_t pid) {
        Rig r;
        FlasherResult res;
        FlasherFlashOptions o;
        SimCounters cnt;
        size_t n;

        rig_start_size(&r, pid, 16 * 1024);
        const ChipInfo *c = r.info;
        uint32_t size = 16 * 1024, ps = c->page_size, pages = size / ps;
        _cleanup_free_ uint8_t *data = malloc(size), *last = malloc(ps);
        ASSERT_TRUE(data && last);
        fill_random(data, size);
        fill_random(last, ps);
        ASSERT_OK(sim_load(r.sim, c->flash_base + size - ps, last, ps));

        ImageSegment seg = { .address = c->flash_base, .size = size - ps, .data = data };
        Image img = { .format = IMAGE_FORMAT_BIN, .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.pages_erased, pages - 1);
        ASSERT_TRUE(!res.mass_erased);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.mass_erases, 0);
        ASSERT_EQ(cnt.page_erases, pages - 1);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        ASSERT_EQ(n, size);
        ASSERT_MEMEQ(flash, data, size - ps);
        ASSERT_MEMEQ(flash + size - ps, last, ps);

        /* plus one word in the last page: every page is touched */
        ImageSegment segs[2] = { seg, { .address = c->flash_base + size - 8, .size = 8, .data = data + size - 8 } };
        img.segments = segs;
        img.n_segments = 2;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        sim_counters(r.sim, &cnt);
        if (c->mass_erase) {
                ASSERT_TRUE(res.mass_erased);
                ASSERT_EQ(res.pages_erased, UINT32_MAX);
                ASSERT_EQ(cnt.mass_erases, 1);
                ASSERT_EQ(cnt.page_erases, pages - 1);
        } else {
                ASSERT_TRUE(!res.mass_erased);
                ASSERT_EQ(res.pages_erased, pages);
                ASSERT_EQ(cnt.page_erases, 2 * pages - 1);
        }
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, data, size - ps);
        ASSERT_MEMEQ(flash + size - 8, data + size - 8, 8);
        /* the gap in the last page keeps its old content, through the mass erase too */
        ASSERT_MEMEQ(flash + size - ps, last, ps - 8);
        uint64_t held = 0;
        for (uint32_t i = 0; i < ps - 8; i++)
                held += last[i] != c->erased;
        ASSERT_EQ(res.preserved_bytes, held);

        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_AUTO, c->flash_base, size));
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.mass_erases, c->mass_erase ? 2u : 0u);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        for (uint32_t i = 0; i < size; i++)
                ASSERT_EQ(flash[i], c->erased);
        rig_stop(&r);
}

/* Two small unaligned segments: only their page is erased, the bytes around them keep
 * their old content (read before the erase, written back), the neighbouring pages too. */
static void test_partial(uint16_t pid) {
        Rig r;
        FlasherResult res;
        FlasherFlashOptions o;
        uint8_t a[13], b[3], cc[2];
        size_t n;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        uint32_t base = c->flash_base, ps = c->page_size;
        uint8_t er = c->erased;

        /* old content in the first four pages, except the first word (the C0/G0 empty
         * check decides the boot; a debugger write does not re-latch it anyway) */
        _cleanup_free_ uint8_t *old = malloc(4 * ps);
        ASSERT_TRUE(old);
        fill_random(old, 4 * ps);
        for (size_t i = 0; i < 4 * ps; i++)
                if (old[i] == er)
                        old[i] ^= 0x5A;
        ASSERT_OK(sim_load(r.sim, base + 8, old + 8, 4 * ps - 8));

        fill_random(a, sizeof(a));
        fill_random(b, sizeof(b));
        fill_random(cc, sizeof(cc));
        /* page 2 on L0 (128 B pages), page 0 elsewhere; b and cc share a write unit
         * (one byte apart), so they must go out in one block */
        uint32_t at = base + 0x105, bt = base + 0x131, ct = base + 0x135;
        ImageSegment segs[] = {
                { .address = at, .size = sizeof(a), .data = a },
                { .address = bt, .size = sizeof(b), .data = b },
                { .address = ct, .size = sizeof(cc), .data = cc },
        };
        Image img = { .segments = segs, .n_segments = 3 };

        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.pages_erased, 1);
        ASSERT_TRUE(!res.mass_erased);

        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        uint32_t page = (at - base) / ps, p0 = page * ps;
        for (uint32_t i = 0; i < 4 * ps; i++) {
                uint32_t addr = base + i;
                uint8_t want;

                if (addr >= at && addr < at + sizeof(a))
                        want = a[addr - at];
                else if (addr >= bt && addr < bt + sizeof(b))
                        want = b[addr - bt];
                else if (addr >= ct && addr < ct + sizeof(cc))
                        want = cc[addr - ct];
                else if (i < 8)
                        want = er;
                else
                        want = old[i];
                if (flash[i] != want) {
                        fprintf(stderr, "0x%08X: 0x%02X, want 0x%02X\n", addr, flash[i], want);
                        ASSERT_TRUE(false);
                }
        }
        /* the padded units: 0x100..0x117 (8-byte units) and 0x130..0x137 hold erased
         * bytes around the image; sent bytes were 8-aligned, padding within units */
        SimCounters cnt;
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.misaligned_writes, 0);
        ASSERT_EQ(cnt.page_erases, 1);
        /* the image's own bytes and padding; the kept ones counted apart */
        ASSERT_EQ(res.bytes_written, ALIGN_UP(0x105 + sizeof(a), c->write_unit) - 0x100 + 8);
        /* the rest of the page held data, but for the erased first word on page 0 */
        ASSERT_EQ(res.preserved_bytes, ps - sizeof(a) - sizeof(b) - sizeof(cc) - (p0 == 0 ? 8 : 0));
        rig_stop(&r);

        /* erase NONE over old data just outside the image's units: padding must not
         * touch it (the simulator refuses to program a non-erased cell) */
        rig_start(&r, pid);
        uint8_t keep[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        ASSERT_OK(sim_load(r.sim, base + 0x118, keep, 8));
        ASSERT_OK(sim_load(r.sim, base + 0x128, keep, 8));
        flasher_flash_options_init(&o);
        o.erase = FLASHER_ERASE_NONE;
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.pages_erased, 0);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash + 0x118, keep, 8);
        ASSERT_MEMEQ(flash + 0x128, keep, 8);
        ASSERT_MEMEQ(flash + 0x105, a, sizeof(a));
        ASSERT_MEMEQ(flash + 0x131, b, sizeof(b));
        ASSERT_MEMEQ(flash + 0x135, cc, sizeof(cc));
        ASSERT_EQ(flash[0x134], er);
        rig_stop(&r);
}

/* A raw image that starts inside one page and ends inside the next (the case found: a
 * vector table at the flash base lost to an image at base + half a page): erase=auto
 * keeps every byte of both pages the image does not cover, erased runs among them
 * included, at no misaligned write; the third page is never erased. A chip that refuses
 * to read the rest is refused before anything is erased. */
static void test_keep_neighbours(uint16_t pid) {
        Rig r;
        FlasherResult res;
        FlasherFlashOptions o;
        SimCounters cnt;
        size_t n;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        uint32_t base = c->flash_base, ps = c->page_size;
        _cleanup_free_ uint8_t *old = malloc(3 * ps), *d = malloc(ps);
        ASSERT_TRUE(old && d);
        fill_random(old, 3 * ps);
        for (size_t i = 0; i < 3 * ps; i++)
                if (old[i] == c->erased)
                        old[i] ^= 0x5A;
        /* an erased run in the kept part of page 1: nothing to write there */
        memset(old + ps + ps / 2 + 16, c->erased, 24);
        ASSERT_OK(sim_load(r.sim, base, old, 3 * ps));

        /* odd start and odd end: not 8-aligned (G0/C0 drop 4-aligned writes) */
        uint32_t at = base + ps / 2 + 3, len = ps / 2 + ps / 4 + 2;
        fill_random(d, len);
        ImageSegment seg = { .address = at, .size = len, .data = d };
        Image img = { .format = IMAGE_FORMAT_BIN, .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        /* the first read of the rest (after the first word's, for the way-back check)
         * comes back with a bit flipped: read again, the right bytes go back */
        ASSERT_OK(flasher_probe(r.f, NULL));
        sim_inject(r.sim, SIM_FAULT_GLITCH_READ, 2);
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.pages_erased, 2);
        ASSERT_EQ(res.preserved_bytes, 2 * ps - len - 24);     /* the erased run is not counted */
        ASSERT_EQ(res.bytes_written, ALIGN_UP(at + len, c->write_unit) - ALIGN_DOWN(at, 8));
        ASSERT_EQ(res.bytes_verified, res.bytes_written);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.misaligned_writes, 0);
        ASSERT_EQ(cnt.page_erases, 2);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        for (uint32_t i = 0; i < 3 * ps; i++) {
                uint8_t want = base + i >= at && base + i < at + len ? d[base + i - at] : old[i];

                if (flash[i] != want) {
                        fprintf(stderr, "0x%08X: 0x%02X, want 0x%02X\n", base + i, flash[i], want);
                        ASSERT_TRUE(false);
                }
        }
        for (uint32_t i = 3 * ps; i < n; i++)
                ASSERT_EQ(flash[i], c->erased);

        /* erase=none keeps its meaning: nothing read, nothing kept */
        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_AUTO, at, len));
        o.erase = FLASHER_ERASE_NONE;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.preserved_bytes, 0);
        rig_stop(&r);

        /* read protection set behind the probe's back: the rest of page 1 cannot be
         * read, so nothing is erased (the image covers the first word: no other read) */
        rig_start(&r, pid);
        /* page 0 blank: a C0/G0 comes back into the bootloader (empty check) */
        ASSERT_OK(sim_load(r.sim, base + ps, old + ps, 2 * ps));
        ASSERT_OK(flasher_probe(r.f, NULL));
        sim_set_rdp(r.sim, 1);
        /* the reset is not the flasher's business here: synced again behind its back */
        ASSERT_OK(an3155_sync(flasher_protocol(r.f), 3));
        seg = (ImageSegment) { .address = base, .size = ps + 8, .data = old };
        o.erase = FLASHER_ERASE_AUTO;
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EACCES);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "covers only part of page 1"));
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "nothing was erased"));
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.page_erases, 0);
        ASSERT_EQ(cnt.mass_erases, 0);
        ASSERT_EQ(cnt.writes, 0);
        sim_set_rdp(r.sim, 0);  /* for rig_stop (a mass erase, as on silicon) */
        rig_stop(&r);
}

/* Mass erase mode (L0: every page by list) and a whole-flash erase/read. */
static void test_mass_erase_and_read(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        uint8_t d[64];
        size_t n;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        _cleanup_free_ uint8_t *junk = malloc(c->flash_size);
        ASSERT_TRUE(junk);
        memset(junk, c->erased ^ 0x33, c->flash_size);
        ASSERT_OK(sim_load(r.sim, c->flash_base + c->page_size, junk, c->flash_size - c->page_size));

        fill_random(d, sizeof(d));
        ImageSegment seg = { .address = c->flash_base + 0x40, .size = sizeof(d), .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.erase = FLASHER_ERASE_MASS;
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_TRUE(res.mass_erased);
        SimCounters cnt;
        sim_counters(r.sim, &cnt);
        if (c->mass_erase) {
                ASSERT_EQ(res.pages_erased, UINT32_MAX);
                ASSERT_EQ(cnt.mass_erases, 1);
        } else {
                ASSERT_EQ(res.pages_erased, c->flash_size / c->page_size);
                ASSERT_EQ(cnt.mass_erases, 0);
                ASSERT_EQ(cnt.page_erases, c->flash_size / c->page_size);
        }
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        for (size_t i = 0; i < n; i++)
                ASSERT_EQ(flash[i], i >= 0x40 && i < 0x40 + sizeof(d) ? d[i - 0x40] : c->erased);

        /* read it all back through the bootloader, with progress */
        Progress *p = calloc(1, sizeof(Progress));
        ASSERT_TRUE(p);
        flasher_set_progress(r.f, on_progress, p);
        _cleanup_free_ uint8_t *back = malloc(n);
        ASSERT_TRUE(back);
        ASSERT_OK(flasher_read(r.f, c->flash_base, back, n));
        ASSERT_MEMEQ(back, flash, n);
        check_progress(p, FLASHER_STAGE_READING, n);
        /* past the end of the flash: refused before any Read Memory */
        sim_counters(r.sim, &cnt);
        unsigned reads = cnt.reads;
        ASSERT_ERR(flasher_read(r.f, c->flash_base + (uint32_t) n - 16, back, 32), EINVAL);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "runs past the end"));
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.reads, reads);
        /* ... the last bytes are fine */
        ASSERT_OK(flasher_read(r.f, c->flash_base + (uint32_t) n - 16, back, 16));
        /* an odd range */
        ASSERT_OK(flasher_read(r.f, c->flash_base + 0x3F, back, 3));
        ASSERT_EQ(back[0], c->erased);
        ASSERT_EQ(back[1], d[0]);
        ASSERT_EQ(back[2], d[1]);

        /* flasher_erase: pages covering a range, then everything */
        p->n = 0;
        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_AUTO, c->flash_base + 0x40, 1));
        check_progress(p, FLASHER_STAGE_ERASING, 1);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_EQ(flash[0x40], c->erased);
        ASSERT_ERR(flasher_erase(r.f, FLASHER_ERASE_AUTO, c->flash_base + c->flash_size - 4, 8), ERANGE);
        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_MASS, 0, 0));
        free(p);
        rig_stop(&r);
}

/* Images that do not fit never reach the chip beyond the probe. */
static void test_out_of_range(uint16_t pid) {
        Rig r;
        FlasherResult res;
        SimCounters cnt;
        char expect[128];

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        _cleanup_free_ uint8_t *before = sim_flash_copy(r.sim, NULL);
        _cleanup_free_ uint8_t *data = calloc(1, c->flash_size + 1024);
        ASSERT_TRUE(data);

        ImageSegment seg = { .address = c->flash_base + c->flash_size, .size = 16, .data = data };
        Image img = { .segments = &seg, .n_segments = 1 };
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), ERANGE);
        snprintf(expect, sizeof(expect), "image at 0x%08X lies outside the flash 0x%08X..0x%08X",
                 c->flash_base + c->flash_size, c->flash_base, c->flash_base + c->flash_size - 1);
        ASSERT_STREQ(flasher_error_message(r.f), expect);

        seg.address = 0x20000000;
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), ERANGE);
        seg.address = c->flash_base - 16;
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), ERANGE);

        seg.address = c->flash_base;
        seg.size = c->flash_size + 1024;
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), EFBIG);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "does not fit"));
        seg.address = c->flash_base + 0x100;
        seg.size = c->flash_size;
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), EFBIG);
        ASSERT_EQ(res.bytes_written, 0);

        /* empty image, protect + go */
        Image empty = { .n_segments = 0 };
        ASSERT_ERR(flasher_flash(r.f, &empty, NULL, &res), EINVAL);

        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.writes, 0);
        ASSERT_EQ(cnt.page_erases, 0);
        ASSERT_EQ(cnt.mass_erases, 0);
        _cleanup_free_ uint8_t *after = sim_flash_copy(r.sim, NULL);
        ASSERT_MEMEQ(before, after, c->flash_size);
        rig_stop(&r);

        /* protect and go together are refused before anything is sent */
        rig_start(&r, pid);
        FlasherFlashOptions o;
        flasher_flash_options_init(&o);
        o.protect = o.go = true;
        seg.address = c->flash_base;
        seg.size = 16;
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EINVAL);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "Go"));
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.syncs, 0);
        ASSERT_EQ(cnt.commands, 0);
        rig_stop(&r);
}

/* A read-protected chip: refused without unprotect, flashed with it. */
static void test_locked(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        FlasherChip chip;
        size_t n;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        sim_set_rdp(r.sim, 1);
        _cleanup_free_ uint8_t *old = malloc(c->flash_size);
        ASSERT_TRUE(old);
        fill_random(old, c->flash_size);
        ASSERT_OK(sim_load(r.sim, c->flash_base, old, c->flash_size));

        ASSERT_OK(flasher_probe(r.f, &chip));
        ASSERT_EQ(chip.rdp_level, 1);
        ASSERT_TRUE(!chip.have_option_bytes);
        ASSERT_TRUE(!chip.have_uid);

        uint8_t d[300];
        fill_random(d, sizeof(d));
        ImageSegment seg = { .address = c->flash_base + 0x200, .size = sizeof(d), .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EACCES);
        ASSERT_STREQ(flasher_error_message(r.f), "chip is read-protected; flash with unprotect to erase it and continue");
        ASSERT_EQ(sim_rdp_level(r.sim), 1);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, old, n);
        uint8_t buf[4];
        ASSERT_ERR(flasher_read(r.f, c->flash_base, buf, 4), EACCES);
        ASSERT_ERR(flasher_erase(r.f, FLASHER_ERASE_MASS, 0, 0), EACCES);
        ASSERT_ERR(flasher_go(r.f, 0), EACCES);

        Progress *p = calloc(1, sizeof(Progress));
        ASSERT_TRUE(p);
        flasher_set_progress(r.f, on_progress, p);
        o.unprotect = true;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_TRUE(res.unprotected);
        ASSERT_TRUE(res.mass_erased);
        ASSERT_EQ(sim_rdp_level(r.sim), 0);
        check_progress(p, FLASHER_STAGE_UNPROTECTING, 1);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        for (size_t i = 0; i < n; i++)
                ASSERT_EQ(flash[i], i >= 0x200 && i < 0x200 + sizeof(d) ? d[i - 0x200] : c->erased);
        ASSERT_EQ(res.bytes_verified, sizeof(d) + (c->write_unit == 8 ? 4 : 0));
        ASSERT_TRUE(flasher_chip(r.f) || c->boot_rule == CHIP_BOOT_NBOOT_SEL);
        free(p);
        rig_stop(&r);

        /* flasher_lock / flasher_unlock */
        rig_start(&r, pid);
        {
                SimCounters before, after;
                uint8_t ud[256];

                /* Unlock on a chip that is not protected: nothing sent, the flash kept;
                 * with force, Readout Unprotect (and its mass erase) all the same. */
                fill_random(ud, sizeof ud);
                ImageSegment useg = { .address = c->flash_base, .size = sizeof ud, .data = ud };
                Image uimg = { .segments = &useg, .n_segments = 1 };
                FlasherFlashOptions fo;

                flasher_flash_options_init(&fo);
                fo.boot0 = false;
                fo.force = true;
                ASSERT_OK(flasher_flash(r.f, &uimg, &fo, NULL));
                ASSERT_OK(flasher_probe(r.f, &chip));
                sim_counters(r.sim, &before);
                ASSERT_EQ(flasher_unlock(r.f, false), 1);
                sim_counters(r.sim, &after);
                ASSERT_EQ(after.commands, before.commands);
                {
                        _cleanup_free_ uint8_t *fl = sim_flash_copy(r.sim, &n);

                        ASSERT_MEMEQ(fl, ud, sizeof ud);
                }
                ASSERT_EQ(flasher_unlock(r.f, true), 0);
                ASSERT_EQ(sim_rdp_level(r.sim), 0);
                {
                        _cleanup_free_ uint8_t *fl = sim_flash_copy(r.sim, &n);

                        for (size_t i = 0; i < sizeof ud; i++)
                                ASSERT_EQ(fl[i], c->erased);
                }
        }
        ASSERT_EQ(flasher_lock(r.f, false), 0);
        ASSERT_EQ(sim_rdp_level(r.sim), 1);
        /* blank flash: C0/G0 come back through the empty check, F0/L0 through BOOT0 */
        ASSERT_OK(flasher_probe(r.f, &chip));
        ASSERT_EQ(chip.rdp_level, 1);
        ASSERT_EQ(flasher_lock(r.f, false), 1);  /* already: nothing sent */
        ASSERT_EQ(flasher_unlock(r.f, false), 0);
        ASSERT_EQ(sim_rdp_level(r.sim), 0);
        ASSERT_TRUE(flasher_chip(r.f));
        ASSERT_EQ(flasher_chip(r.f)->rdp_level, 0);
        rig_stop(&r);
}

/* Protect after flashing: RDP 1 in the simulator. A factory C0/G0 without the boot0
 * option would then run the user code at every reset, BOOT0 ignored: no way back over
 * UART, so that is refused (NeedsForce) before anything is written, and done only with
 * force; then the chip runs its code, which is not an error. */
static void test_protect(uint16_t pid, bool boot0) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        SimCounters cnt;
        uint8_t d[256];

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        fill_random(d, sizeof(d));
        ImageSegment seg = { .address = c->flash_base, .size = sizeof(d), .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.protect = true;
        o.boot0 = boot0;
        if (c->boot_rule == CHIP_BOOT_NBOOT_SEL && !boot0) {
                size_t n;
                ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), ENOLINK);
                const char *m = flasher_error_message(r.f);
                ASSERT_TRUE(strstr(m, "nBOOT_SEL=1 nBOOT0=1") && strstr(m, "read protection level 1") &&
                            strstr(m, "force") && strstr(m, "nothing was written"));
                sim_counters(r.sim, &cnt);
                ASSERT_EQ(cnt.writes + cnt.page_erases + cnt.mass_erases + cnt.ob_writes, 0);
                _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
                for (size_t i = 0; i < n; i++)
                        ASSERT_EQ(flash[i], c->erased);
                ASSERT_EQ(sim_rdp_level(r.sim), 0);
                o.force = true;
        }
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_STREQ(flasher_error_message(r.f), "");
        ASSERT_TRUE(res.protected_);
        ASSERT_EQ(sim_rdp_level(r.sim), 1);
        if (c->boot_rule == CHIP_BOOT_NBOOT_SEL && !boot0) {
                ASSERT_EQ(sim_state(r.sim), SIM_STATE_USER_CODE);
                ASSERT_TRUE(!flasher_chip(r.f));
        } else {
                /* back in the bootloader, and the flasher saw the protection */
                ASSERT_TRUE(sim_state(r.sim) != SIM_STATE_USER_CODE);
                ASSERT_TRUE(flasher_chip(r.f));
                ASSERT_EQ(flasher_chip(r.f)->rdp_level, 1);
        }
        rig_stop(&r);
}

static void test_go(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        uint8_t d[64];

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        fill_random(d, sizeof(d));
        ImageSegment seg = { .address = c->flash_base, .size = sizeof(d), .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.go = true;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_TRUE(res.started);
        ASSERT_EQ(sim_state(r.sim), SIM_STATE_USER_CODE);
        ASSERT_EQ(sim_go_address(r.sim), c->flash_base);
        ASSERT_TRUE(!flasher_chip(r.f));
        rig_stop(&r);

        rig_start(&r, pid);
        ASSERT_OK(flasher_go(r.f, c->flash_base + 0x400));
        ASSERT_EQ(sim_state(r.sim), SIM_STATE_USER_CODE);
        ASSERT_EQ(sim_go_address(r.sim), c->flash_base + 0x400);
        rig_stop(&r);
}

/* Faults: one NACKed block, a NACK storm, a lost reply, a corrupted read-back, cancel. */
static void test_faults(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        size_t n;
        char expect[128];

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        uint32_t size = 4 * c->write_block;
        ImageSegment seg;
        Image img;
        _cleanup_free_ uint8_t *d = random_image(c, size, &seg, &img);
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */

        /* the second block is NACKed once */
        sim_inject(r.sim, SIM_FAULT_NACK_WRITE, 2);
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.write_retries, 1);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, d, size);

        /* a lost reply: the flasher recovers once, finds the block erased and writes it again */
        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_MASS, 0, 0));
        o.erase = FLASHER_ERASE_NONE;
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 1);      /* the first Write Memory's ACK */
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_EQ(res.write_retries, 1);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, d, size);

        /* every block NACKed */
        o.erase = FLASHER_ERASE_AUTO;
        sim_inject(r.sim, SIM_FAULT_NACK_ALL_WRITES, 0);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EREMOTEIO);
        snprintf(expect, sizeof(expect), "chip answered NACK to Write Memory at 0x%08X (3 tries)", c->flash_base);
        ASSERT_STREQ(flasher_error_message(r.f), expect);
        ASSERT_EQ(res.bytes_written, 0);
        rig_stop(&r);

        /* a glitch in the read-back: that block is read again, and passes (a mass
         * erase: no page rest to read first) */
        rig_start(&r, pid);
        ASSERT_OK(flasher_probe(r.f, NULL));
        o.erase = FLASHER_ERASE_MASS;
        sim_inject(r.sim, SIM_FAULT_GLITCH_READ, 2);
        SimCounters before, after;
        sim_counters(r.sim, &before);
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        sim_counters(r.sim, &after);
        ASSERT_EQ(after.reads - before.reads, size / 256 + 1);  /* one block read twice */
        ASSERT_EQ(res.bytes_verified, size);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, d, size);

        /* a byte that reads wrong every time: VerifyFailed after the second read */
        sim_inject(r.sim, SIM_FAULT_CORRUPT_READ, 2);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EILSEQ);
        const char *m = flasher_error_message(r.f);
        ASSERT_TRUE(strncmp(m, "verify failed at 0x0800", 23) == 0);
        ASSERT_TRUE(strstr(m, ": read 0x") && strstr(m, ", expected 0x") && strstr(m, "(read twice)"));
        /* the flash itself is right; only the reply was corrupted */
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, d, size);
        /* the address names a byte of the second read chunk */
        unsigned long at = strtoul(m + strlen("verify failed at "), NULL, 16);
        ASSERT_TRUE(at >= c->flash_base + 256 && at < c->flash_base + 512);
        rig_stop(&r);

        /* cancel from the progress callback after the first block */
        rig_start(&r, pid);
        atomic_bool flag = false;
        Progress *p = calloc(1, sizeof(Progress));
        ASSERT_TRUE(p);
        p->cancel = &flag;
        p->cancel_stage = FLASHER_STAGE_WRITING;
        p->cancel_after = 1;
        flasher_set_progress(r.f, on_progress, p);
        flasher_set_cancel(r.f, &flag);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), ECANCELED);
        ASSERT_EQ(res.bytes_written, 256);       /* one block, every family */
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "cancelled"));
        SimCounters cnt;
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.writes, 1);
        free(p);
        rig_stop(&r);
}

/* A smaller part of the line: the flash-size register wins over the table. */
static void test_small_part(uint16_t pid) {
        Rig r;
        FlasherChip c;
        FlasherResult res;

        rig_start_size(&r, pid, 16 * 1024 / (pid == 0x457 ? 2 : 1));
        uint32_t size = pid == 0x457 ? 8 * 1024 : 16 * 1024;
        ASSERT_OK(flasher_probe(r.f, &c));
        ASSERT_EQ(c.flash_size, size);

        _cleanup_free_ uint8_t *d = malloc(size + 8);
        ASSERT_TRUE(d);
        fill_random(d, size + 8);
        ImageSegment seg = { .address = r.info->flash_base, .size = size + 8, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), EFBIG);
        seg.size = size;
        ASSERT_OK(flasher_flash(r.f, &img, NULL, &res));
        ASSERT_EQ(res.bytes_verified, size);
        rig_stop(&r);
}

/* Leftovers of an earlier session: bytes in the buffer, a chip that is already synced. */
static void test_dirty_start(void) {
        Rig r;
        FlasherChip c;

        rig_start(&r, 0x466);
        sim_inject(r.sim, SIM_FAULT_STALE_BYTES, 5);
        /* they must be waiting before the host starts (they include an ACK) */
        struct pollfd pfd = { .fd = r.host_fd, .events = POLLIN };
        ASSERT_EQ(poll(&pfd, 1, 5000), 1);
        ASSERT_OK(flasher_probe(r.f, &c));
        ASSERT_EQ(c.pid, 0x466);
        rig_stop(&r);

        rig_start(&r, 0x457);
        sim_inject(r.sim, SIM_FAULT_ALREADY_SYNCED, 0);
        ASSERT_OK(flasher_probe(r.f, &c));
        ASSERT_EQ(c.pid, 0x457);
        ASSERT_EQ(c.rdp_level, 0);
        rig_stop(&r);
}

/* The adapter goes away in the middle of a write. */
static void test_hangup(void) {
        Rig r;
        FlasherResult res;
        uint8_t d[1024];

        rig_start(&r, 0x466);
        fill_random(d, sizeof(d));
        ImageSegment seg = { .address = 0x08000000, .size = sizeof(d), .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        sim_inject(r.sim, SIM_FAULT_HANGUP_AT_WRITE, 2);
        ASSERT_ERR(flasher_flash(r.f, &img, NULL, &res), ENODEV);
        ASSERT_STREQ(flasher_error_message(r.f), "sim went away during Write Memory at 0x08000100");
        ASSERT_EQ(res.bytes_written, 256);
        rig_stop(&r);
}

static void test_no_bootloader(void) {
        Rig r;
        FlasherChip c;

        rig_start(&r, 0x466);
        sim_set_boot0(r.sim, false);
        sim_power_cycle(r.sim);
        /* G0 blank flash: the empty check still brings the bootloader */
        ASSERT_OK(flasher_probe(r.f, &c));
        rig_stop(&r);

        rig_start(&r, 0x444);
        sim_set_boot0(r.sim, false);
        sim_power_cycle(r.sim);
        ASSERT_ERR(flasher_probe(r.f, &c), EHOSTDOWN);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "no bootloader answered the sync on sim"));
        ASSERT_TRUE(!flasher_chip(r.f));
        /* the family's traps where the chip is believed known, briefly for all otherwise */
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "C0/G0 heeds BOOT0 only once nBOOT_SEL is cleared"));
        flasher_set_chip_hint(r.f, 0x443);
        ASSERT_ERR(flasher_probe(r.f, &c), EHOSTDOWN);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "STM32C0 keeps BOOT0 forced low after a debugger session"));
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "PA14-BOOT0 high at reset only once nBOOT_SEL is cleared"));
        flasher_set_chip_hint(r.f, 0x466);
        ASSERT_ERR(flasher_probe(r.f, &c), EHOSTDOWN);
        ASSERT_TRUE(!strstr(flasher_error_message(r.f), "debugger") && strstr(flasher_error_message(r.f), "STM32G0"));
        flasher_set_chip_hint(r.f, 0x444);
        ASSERT_ERR(flasher_probe(r.f, &c), EHOSTDOWN);
        ASSERT_TRUE(!strstr(flasher_error_message(r.f), "nBOOT_SEL"));
        rig_stop(&r);
}

/* ---- recovery from a lost or garbled reply inside Write/Read Memory ---- */

typedef struct LineCase {
        const char *name;
        SimFault fault;
        unsigned arg;           /* counted from the first Write Memory of the flash */
        bool write;             /* in the write phase: the block is retried */
} LineCase;

/* A 3-block image: blocks 1-3 take ACKs (and reply bursts) 1-9, the verify's reads
 * 10-18; each Read Memory's last reply is its ACK with the data. Faults hit block 2 or
 * the second read, so a good block lies before them. */
static const LineCase line_cases[] = {
        { "stray byte before the command ACK of Write Memory", SIM_FAULT_STRAY_BYTE, 4, true },
        { "stray byte before the address ACK of Write Memory", SIM_FAULT_STRAY_BYTE, 5, true },
        { "stray byte before the final ACK of Write Memory",   SIM_FAULT_STRAY_BYTE, 6, true },
        { "dropped command ACK of Write Memory",               SIM_FAULT_DROP_REPLY, 4, true },
        { "dropped address ACK of Write Memory",               SIM_FAULT_DROP_REPLY, 5, true },
        { "dropped final ACK of Write Memory",                 SIM_FAULT_DROP_REPLY, 6, true },
        { "stray byte before the command ACK of Read Memory",  SIM_FAULT_STRAY_BYTE, 13, false },
        { "stray byte before the address ACK of Read Memory",  SIM_FAULT_STRAY_BYTE, 14, false },
        { "stray byte before the data of Read Memory",         SIM_FAULT_STRAY_BYTE, 15, false },
        { "dropped command ACK of Read Memory",                SIM_FAULT_DROP_REPLY, 13, false },
        { "dropped address ACK of Read Memory",                SIM_FAULT_DROP_REPLY, 14, false },
        { "dropped data of Read Memory",                       SIM_FAULT_DROP_REPLY, 15, false },
        { "chip reset before it programs block 2",             SIM_FAULT_RESET_AT_WRITE, 2, true },
};

#define LINE_BLOCKS 3u

/* The flash holds the image and, after it, only the erased value (a filler write
 * would show, on L0 too, whose erased value is 0x00). */
static void check_flash_is(Rig *r, const uint8_t *d, size_t size) {
        size_t n;
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r->sim, &n);
        uint8_t erased = sim_erased_value(r->sim);

        ASSERT_MEMEQ(flash, d, size);
        for (size_t i = size; i < n; i++)
                ASSERT_EQ(flash[i], erased);
}

static void test_line_recovery(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        uint8_t d[LINE_BLOCKS * 256];

        rig_start(&r, pid);
        ImageSegment seg = { .address = r.info->flash_base, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        o.erase = FLASHER_ERASE_NONE;   /* the first reply after the injection is block 1's */
        ASSERT_OK(flasher_probe(r.f, NULL));

        for (size_t i = 0; i < ELEMENTSOF(line_cases); i++) {
                const LineCase *lc = &line_cases[i];
                SimCounters c0, c1;

                /* reads do not depend on the family: G0 only, to keep the test short */
                if (!lc->write && pid != 0x466)
                        continue;

                fprintf(stderr, "   %s\n", lc->name);
                ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_MASS, 0, 0));
                fill_random(d, sizeof d);
                sim_counters(r.sim, &c0);
                sim_inject(r.sim, lc->fault, lc->arg);
                uint64_t t0 = now_usec();
                ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
                /* one recovery: well under the 2 s it may take at worst */
                ASSERT_TRUE(now_usec() - t0 < 3 * USEC_PER_SEC);
                sim_counters(r.sim, &c1);

                check_flash_is(&r, d, sizeof d);
                /* every block programmed exactly once: no extra write */
                ASSERT_EQ(c1.writes - c0.writes, LINE_BLOCKS);
                ASSERT_EQ(c1.ob_writes - c0.ob_writes, 0);
                ASSERT_EQ(res.write_retries, lc->write ? 1 : 0);
                ASSERT_EQ(res.bytes_written, sizeof d);
                ASSERT_EQ(res.bytes_verified, sizeof d);
                ASSERT_STREQ(flasher_error_message(r.f), "");
        }
        rig_stop(&r);
}

/* Hooks on the bytes the host sends: after the recovery's filler, arm a second fault or
 * change the flash behind the host's back. */
typedef struct Hook {
        Sim *sim;
        bool filler_seen;
        bool armed;
        /* a second loss: drop the reply burst after next once the read-back asks for data */
        bool drop_again;
        /* the block as the chip holds it after the filler (a frame the filler completed) */
        const uint8_t *poke;
        size_t poke_size;
        uint32_t poke_address;
} Hook;

static void on_tx(void *userdata, bool tx, const uint8_t *buf, size_t n) {
        Hook *h = userdata;

        if (!tx || h->armed)
                return;
        if (n == AN3155_RECOVER_FILLER_LEN && buf[0] == AN3155_RECOVER_FILLER_LEAD) {
                h->filler_seen = true;
                if (h->poke) {
                        ASSERT_OK(sim_load(h->sim, h->poke_address, h->poke, h->poke_size));
                        h->armed = true;
                }
                return;
        }
        /* the read-back's count: its data is the next reply burst, the block's new
         * command ACK the one after */
        if (h->filler_seen && h->drop_again && n == 2 && buf[0] == 0xFF && buf[1] == 0x00) {
                sim_inject(h->sim, SIM_FAULT_DROP_REPLY, 2);
                h->armed = true;
        }
}

/* One recovery per block: a second loss on the same block fails, in bounded time, with
 * Timeout and the block's address; nothing was reported as written that is not. */
static void test_line_second_loss(void) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        uint8_t d[LINE_BLOCKS * 256];
        Hook h = {};

        rig_start(&r, 0x466);
        fill_random(d, sizeof d);
        ImageSegment seg = { .address = 0x08000000, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        o.erase = FLASHER_ERASE_NONE;
        ASSERT_OK(flasher_probe(r.f, NULL));

        h.sim = r.sim;
        h.drop_again = true;
        an3155_set_trace(flasher_protocol(r.f), on_tx, &h);
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 4);     /* block 2's command ACK */
        uint64_t t0 = now_usec();
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 < 3 * USEC_PER_SEC);
        ASSERT_TRUE(h.armed);
        ASSERT_STREQ(flasher_error_message(r.f),
                     "chip stopped answering during Write Memory at 0x08000100, again after a recovery (no reply at the command step)");
        ASSERT_EQ(res.bytes_written, 256);
        SimCounters c;
        sim_counters(r.sim, &c);
        ASSERT_EQ(c.writes, 1);
        /* the chip is left inside the command, not lost for good: a recovery gets it out */
        an3155_set_trace(flasher_protocol(r.f), NULL, NULL);
        ASSERT_OK(an3155_recover(flasher_protocol(r.f)));
        o.erase = FLASHER_ERASE_AUTO;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        check_flash_is(&r, d, sizeof d);
        rig_stop(&r);
}

/* If something other than our data ever landed in the block (a frame completed by bytes
 * nobody foresaw, a reset in the middle of programming), the read-back before the retry
 * sees it: the flash fails with VerifyFailed instead of programming over it. */
static void test_line_block_changed(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        uint8_t d[LINE_BLOCKS * 256], junk[8];
        char expect[160];
        Hook h = {};

        rig_start(&r, pid);
        uint32_t base = r.info->flash_base;
        fill_random(d, sizeof d);
        ImageSegment seg = { .address = base, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */
        o.erase = FLASHER_ERASE_NONE;
        ASSERT_OK(flasher_probe(r.f, NULL));

        /* 8 bytes of filler where block 2 starts */
        memset(junk, AN3155_RECOVER_FILLER, sizeof junk);
        h.sim = r.sim;
        h.poke = junk;
        h.poke_size = sizeof junk;
        h.poke_address = base + 256;
        an3155_set_trace(flasher_protocol(r.f), on_tx, &h);
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 4);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EILSEQ);
        ASSERT_TRUE(h.armed);
        snprintf(expect, sizeof expect,
                 "after a lost reply, Write Memory at 0x%08X left 0x02 at 0x%08X (expected 0x%02X or erased): erase and flash again",
                 base + 256, base + 256, d[256]);
        if (d[256] == AN3155_RECOVER_FILLER)
                ASSERT_TRUE(strstr(flasher_error_message(r.f), "after a lost reply, Write Memory at"));
        else
                ASSERT_STREQ(flasher_error_message(r.f), expect);
        ASSERT_EQ(res.bytes_written, 256);
        rig_stop(&r);

        /* the right bytes in the first 8, the rest erased: half programmed */
        rig_start(&r, pid);
        ASSERT_OK(flasher_probe(r.f, NULL));
        h = (Hook) { .sim = r.sim, .poke = d + 256, .poke_size = 8, .poke_address = base + 256 };
        an3155_set_trace(flasher_protocol(r.f), on_tx, &h);
        sim_inject(r.sim, SIM_FAULT_DROP_REPLY, 4);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EILSEQ);
        snprintf(expect, sizeof expect,
                 "after a lost reply, Write Memory at 0x%08X left the block partly programmed: erase and flash again",
                 base + 256);
        ASSERT_STREQ(flasher_error_message(r.f), expect);
        rig_stop(&r);
}

/* ---- a chip an earlier host left inside a command ---- */

/* The earlier host (unplugged, killed, or gone on a Timeout) sent cmd and its
 * complement, then perhaps the address and, after N = 0xFF, n_data bytes of a Write
 * Memory frame, and stopped. */
typedef struct StuckCase {
        const char *name;
        uint8_t cmd;
        bool address;
        size_t n_data;
        bool recovers;          /* false: the Extended Erase list (see flasher_probe) */
} StuckCase;

static const StuckCase stuck_cases[] = {
        { "(a) Write Memory waiting for the address",        0x31, false, 0,   true },
        { "(b) Write Memory waiting for N and the data",     0x31, true,  0,   true },
        { "(c) Write Memory in the middle of a data frame",  0x31, true,  100, true },
        { "(d) Extended Erase waiting for its page list",    0x44, false, 0,   false },
        { "(e) Read Memory waiting for N",                   0x11, true,  0,   true },
};

/* A fresh Flasher on the rig's link, with the rig's short timeouts. */
static void rig_new_flasher(Rig *r) {
        An3155Timeouts t;

        an3155_get_timeouts(flasher_protocol(r->f), &t);
        r->f = flasher_free(r->f);
        ASSERT_OK(flasher_new(r->link, &r->f));
        an3155_set_timeouts(flasher_protocol(r->f), &t);
}

static void expect_ack(Rig *r) {
        uint8_t b = 0;

        ASSERT_OK(link_read_exact(r->link, &b, 1, now_usec() + 5 * USEC_PER_SEC));
        ASSERT_EQ(b, AN3155_ACK);
}

/* Whether the bytes a probe sends into a data frame that wants `left` more data bytes
 * and a checksum complete it validly, when the frame's XOR so far is x: the silent
 * sync's and the recovery's 0x7F (m of them), then the filler. The recovery cannot
 * prevent that for one x in 256 (an3155.c); the test picks a frame it does not
 * complete, for any plausible m, so that it checks the recovery, not luck. */
static bool probe_completes(uint8_t x, size_t left) {
        for (size_t m = 1; m <= 8; m++) {
                uint8_t s[8 + AN3155_RECOVER_FILLER_LEN];

                memset(s, 0x7F, m);
                s[m] = AN3155_RECOVER_FILLER_LEAD;
                memset(s + m + 1, AN3155_RECOVER_FILLER, AN3155_RECOVER_FILLER_LEN - 1);
                uint8_t y = x;
                for (size_t i = 0; i < left; i++)
                        y ^= s[i];
                if (y == s[left])
                        return true;
        }
        return false;
}

static void test_stuck(uint16_t pid, const StuckCase *sc) {
        Rig r;
        FlasherChip c;
        FlasherFlashOptions o;
        FlasherResult res;
        SimCounters c0, c1;
        uint8_t d[1024], buf[2 + 5 + 1 + 256];
        size_t n = 0;

        rig_start(&r, pid);
        uint32_t base = r.info->flash_base, page = r.info->page_size;
        /* the earlier host wrote to a page the image does not touch: a write there shows */
        uint32_t stuck_addr = base + ALIGN_UP((uint32_t) sizeof d, page) + 2 * page;
        fill_random(d, sizeof d);
        ImageSegment seg = { .address = base, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        o.force = true;         /* C0/G0: no way back over UART, accepted */

        /* the earlier host: synced, then into the command with raw bytes, and gone */
        ASSERT_OK(flasher_probe(r.f, NULL));
        buf[0] = sc->cmd;
        buf[1] = (uint8_t) (sc->cmd ^ 0xFF);
        ASSERT_OK(link_write(r.link, buf, 2));
        expect_ack(&r);
        if (sc->address) {
                uint8_t a[5] = { (uint8_t) (stuck_addr >> 24), (uint8_t) (stuck_addr >> 16),
                                 (uint8_t) (stuck_addr >> 8), (uint8_t) stuck_addr, 0 };
                a[4] = a[0] ^ a[1] ^ a[2] ^ a[3];
                ASSERT_OK(link_write(r.link, a, sizeof a));
                expect_ack(&r);
        }
        if (sc->n_data > 0) {
                uint8_t x;

                buf[n++] = 0xFF;        /* N: 256 bytes */
                fill_random(buf + n, sc->n_data);
                n += sc->n_data;
                for (;;) {
                        x = 0;
                        for (size_t i = 0; i < n; i++)
                                x ^= buf[i];
                        if (!probe_completes(x, 256 - sc->n_data))
                                break;
                        buf[n - 1]++;
                }
                ASSERT_OK(link_write(r.link, buf, n));
        }

        /* the next job: a fresh Flasher on the same line */
        rig_new_flasher(&r);
        sim_counters(r.sim, &c0);
        uint64_t t0 = now_usec();
        if (sc->recovers)
                ASSERT_OK(flasher_probe(r.f, &c));
        else {
                /* 0x7F 0x7F is a list of 0x7F80 pages: 64 KiB to go. It stays NoBootloader,
                 * erases nothing, and a power cycle clears it. */
                ASSERT_ERR(flasher_probe(r.f, &c), EHOSTDOWN);
                ASSERT_TRUE(strstr(flasher_error_message(r.f), "no bootloader answered the sync on sim"));
                sim_counters(r.sim, &c1);
                ASSERT_EQ(c1.page_erases + c1.mass_erases + c1.writes, c0.page_erases + c0.mass_erases + c0.writes);
                sim_power_cycle(r.sim);
                ASSERT_OK(flasher_probe(r.f, &c));
        }
        /* one silent sync and one recovery, with these short timeouts */
        ASSERT_TRUE(now_usec() - t0 < 3 * USEC_PER_SEC);
        ASSERT_EQ(c.pid, pid);
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        sim_counters(r.sim, &c1);

        /* the image and nothing else: every block written once, only the image's pages
         * erased, the stuck frame's page still erased */
        check_flash_is(&r, d, sizeof d);
        ASSERT_EQ(c1.writes - c0.writes, sizeof d / 256);
        ASSERT_EQ(c1.page_erases - c0.page_erases, ALIGN_UP((uint32_t) sizeof d, page) / page);
        ASSERT_EQ(c1.mass_erases - c0.mass_erases, 0);
        ASSERT_EQ(c1.ob_writes + c1.gos, 0);
        ASSERT_EQ(res.write_retries, 0);
        ASSERT_EQ(res.bytes_verified, sizeof d);
        rig_stop(&r);
}


/* ---- silicon safety (issue 13): what the sources prove, and the path that cannot lock ---- */

/* Watches the host's bytes: the Write Memory frames sent to the option-byte base. */
typedef struct ObWatch {
        uint32_t ob_base;
        bool in_write;                  /* the last command sent was Write Memory */
        bool after_address;             /* ... and the last frame the option base's address */
        unsigned ob_frames;
        size_t ob_frame_len;            /* N + data + checksum of the last one */
        uint8_t ob_data[256];
        /* poke: once the option frame is sent, put these 8 bytes at ob_base + poke_off
         * (what a ROM that changed more than it was sent would leave) */
        Sim *sim;
        uint32_t poke_off;
        const uint8_t *poke;
} ObWatch;

static void on_ob_tx(void *userdata, bool tx, const uint8_t *buf, size_t n) {
        ObWatch *w = userdata;
        uint32_t a = w->ob_base;

        if (!tx)
                return;
        if (w->after_address && n >= 2) {
                w->ob_frames++;
                w->ob_frame_len = n;
                memcpy(w->ob_data, buf + 1, MIN(n - 2, sizeof w->ob_data));
                if (w->poke)
                        ASSERT_OK(sim_load(w->sim, a + w->poke_off, w->poke, 8));
        }
        if (n == 2 && (buf[0] ^ buf[1]) == 0xFF)
                w->in_write = buf[0] == AN3155_CMD_WRITE_MEMORY;
        w->after_address = w->in_write && n == 5 && buf[0] == (uint8_t) (a >> 24) && buf[1] == (uint8_t) (a >> 16) &&
                           buf[2] == (uint8_t) (a >> 8) && buf[3] == (uint8_t) a;
}

/* A default flash of a factory C011, C031 and G031: the option area is written once,
 * as OPTR + complement (8 bytes), and no other option word changes; a second flash
 * finds nBOOT_SEL cleared and writes no option byte at all. */
static void test_option_form(uint16_t pid) {
        Rig r;
        FlasherResult res;
        SimCounters cnt;
        uint8_t d[512], ob[128];
        ObWatch w = {};

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        w.ob_base = c->ob_base;
        an3155_set_trace(flasher_protocol(r.f), on_ob_tx, &w);
        fill_random(d, sizeof d);
        ImageSegment seg = { .address = c->flash_base, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        ASSERT_OK(flasher_flash(r.f, &img, NULL, &res));
        ASSERT_TRUE(res.boot0_changed);
        ASSERT_EQ(w.ob_frames, 1);
        ASSERT_EQ(w.ob_frame_len, 1 + 8 + 1);
        sim_option_copy(r.sim, ob, c->ob_size);
        ASSERT_MEMEQ(ob, w.ob_data, 8);
        ASSERT_EQ(ob[3], (uint8_t) ((c->ob_factory[3] & 0xF8) | 0x06));
        ASSERT_MEMEQ(ob + 8, c->ob_factory + 8, c->ob_size - 8);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.ob_writes, 1);
        ASSERT_EQ(cnt.ob_interrupted, 0);
        ASSERT_TRUE(sim_state(r.sim) == SIM_STATE_BOOTLOADER);

        /* again: nBOOT_SEL is 0 already, no option-byte programming */
        fill_random(d, sizeof d);
        ASSERT_OK(flasher_flash(r.f, &img, NULL, &res));
        ASSERT_TRUE(!res.boot0_changed);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.ob_writes, 1);
        ASSERT_EQ(w.ob_frames, 1);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, NULL);
        ASSERT_MEMEQ(flash, d, sizeof d);
        rig_stop(&r);
}

/* The option bytes read back after the write differ beyond OPTR (a ROM that took more
 * than it was sent): OptionBytesMismatch naming the register, and nothing more is
 * written in that job (no protect). */
static void test_option_mismatch(void) {
        static const uint8_t wrp[8] = { 0x00, 0x00, 0x03, 0x00, 0xFF, 0xFF, 0xFC, 0xFF };
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        SimCounters cnt;
        uint8_t d[256];
        ObWatch w = {};

        rig_start(&r, 0x466);
        w = (ObWatch) { .ob_base = 0x1FFF7800, .sim = r.sim, .poke_off = 0x18, .poke = wrp };
        an3155_set_trace(flasher_protocol(r.f), on_ob_tx, &w);
        fill_random(d, sizeof d);
        ImageSegment seg = { .address = 0x08000000, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.protect = true;
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), ENOTRECOVERABLE);
        const char *m = flasher_error_message(r.f);
        ASSERT_TRUE(strstr(m, "WRP1AR (+0x18) reads 0x00030000/0xFFFCFFFF, expected 0x000000FF/0xFFFFFF00"));
        ASSERT_TRUE(strstr(m, "debugger") && strstr(m, "nothing more was written"));
        ASSERT_TRUE(!res.protected_);
        ASSERT_EQ(sim_rdp_level(r.sim), 0);
        sim_counters(r.sim, &cnt);
        ASSERT_EQ(cnt.ob_writes, 1);
        rig_stop(&r);
}

/* The reply to the option-byte write is lost or garbled, or the chip resets before it
 * programs: the host sends nothing and does not return until the programming is
 * certainly over (a reset right after it returns must not land in it), then finds out
 * by a sync and a read. The simulated programming lasts 300 ms here, so a host that
 * returned early would leave the chip locked by the test's reset. */
static void test_option_lost_reply(void) {
        static const struct {
                const char *name;
                SimFault fault;
                bool boot0_low;         /* the chip then runs its code: no sync after it */
                int error;
        } cases[] = {
                { "final ACK lost",                    SIM_FAULT_DROP_OB_ACK,    false, 0 },
                { "final ACK garbled",                 SIM_FAULT_GARBLE_OB_ACK,  false, 0 },
                { "garbled, then the code runs",       SIM_FAULT_GARBLE_OB_ACK,  true,  EPROTO },
                { "reset before it programs",          SIM_FAULT_RESET_AT_WRITE, false, ETIMEDOUT },
                { "line gone while it programs",       SIM_FAULT_HANGUP_DURING_OB, false, ENODEV },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Rig r;
                FlasherResult res;
                SimCounters cnt;
                uint8_t d[256], ob[128];

                fprintf(stderr, "   %s\n", cases[i].name);
                rig_start(&r, 0x453);
                sim_set_ob_program_usec(r.sim, 300 * 1000);
                if (cases[i].boot0_low) {
                        /* blank: the empty check brings the bootloader with BOOT0 low */
                        sim_set_boot0(r.sim, false);
                        sim_power_cycle(r.sim);
                }
                fill_random(d, sizeof d);
                ImageSegment seg = { .address = 0x08000000, .size = sizeof d, .data = d };
                Image img = { .segments = &seg, .n_segments = 1 };
                ASSERT_OK(flasher_probe(r.f, NULL));
                if (cases[i].fault == SIM_FAULT_RESET_AT_WRITE)
                        sim_inject(r.sim, SIM_FAULT_RESET_AT_WRITE, 2);    /* the image, then the options */
                else
                        sim_inject(r.sim, cases[i].fault, 0);
                uint64_t t0 = now_usec();
                int k = flasher_flash(r.f, &img, NULL, &res);
                uint64_t took = now_usec() - t0;
                /* the reset a next job's entry sequence would give, right away */
                sim_reset(r.sim);
                ASSERT_TRUE(sim_state(r.sim) != SIM_STATE_LOCKED);
                sim_counters(r.sim, &cnt);
                ASSERT_EQ(cnt.ob_interrupted, 0);
                ASSERT_TRUE(took >= 300 * USEC_PER_MSEC);
                if (cases[i].error == 0) {
                        ASSERT_OK(k);
                        ASSERT_TRUE(res.boot0_changed);
                } else {
                        ASSERT_ERR(k, cases[i].error);
                        fprintf(stderr, "     %s\n", flasher_error_message(r.f));
                }
                if (cases[i].fault == SIM_FAULT_RESET_AT_WRITE)
                        ASSERT_TRUE(strstr(flasher_error_message(r.f), "read back unchanged: nothing was programmed"));
                if (cases[i].boot0_low)
                        ASSERT_TRUE(strstr(flasher_error_message(r.f), "whether they changed is unknown"));
                /* whatever the outcome, the option area holds the old or the new OPTR form,
                 * and nothing else changed */
                sim_option_copy(r.sim, ob, r.info->ob_size);
                ASSERT_MEMEQ(ob + 8, r.info->ob_factory + 8, r.info->ob_size - 8);
                ASSERT_EQ(ob[3] | 0x01, 0xFF);
                rig_stop(&r);
        }
}

/* Write protection on each family: a flash or erase that touches protected pages gets
 * WriteProtected naming them before anything is erased; with unprotect, Write Unprotect
 * (two ACKs, a reset), a resync and a probe, then the flash; pages it does not touch
 * are no obstacle. */
static void test_wrp(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        FlasherChip chip;
        SimCounters c0, c1;
        size_t n;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        uint32_t ps = c->page_size, pps = c->pages_per_sector;
        /* protect the second sector (C0/G0: pages 1-2) */
        uint32_t first = pps, last = pps == 1 ? 2 : 2 * pps - 1;
        sim_set_wrp(r.sim, first, last);
        ASSERT_OK(flasher_probe(r.f, &chip));
        ASSERT_EQ(chip.n_wrp_pages, last - first + 1);
        ASSERT_TRUE(flasher_chip_page_protected(&chip, first) && flasher_chip_page_protected(&chip, last));
        ASSERT_TRUE(!flasher_chip_page_protected(&chip, first - 1) && !flasher_chip_page_protected(&chip, last + 1));

        /* an image over the first three sectors */
        uint32_t size = 3 * pps * ps;
        ImageSegment seg;
        Image img;
        _cleanup_free_ uint8_t *d = random_image(c, size, &seg, &img);
        flasher_flash_options_init(&o);
        sim_counters(r.sim, &c0);
        ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), EROFS);
        char expect[64];
        snprintf(expect, sizeof expect, "pages %u-%u of the %s are write-protected", first, last, c->name);
        ASSERT_TRUE(strstr(flasher_error_message(r.f), expect));
        ASSERT_TRUE(strstr(flasher_error_message(r.f), "unprotect"));
        sim_counters(r.sim, &c1);
        ASSERT_EQ(c1.page_erases + c1.mass_erases + c1.writes + c1.ob_writes,
                  c0.page_erases + c0.mass_erases + c0.writes + c0.ob_writes);
        _cleanup_free_ uint8_t *flash = sim_flash_copy(r.sim, &n);
        for (size_t i = 0; i < n; i++)
                ASSERT_EQ(flash[i], c->erased);

        /* the erase methods too: mass, and a range over a protected page */
        ASSERT_ERR(flasher_erase(r.f, FLASHER_ERASE_MASS, 0, 0), EROFS);
        ASSERT_ERR(flasher_erase(r.f, FLASHER_ERASE_AUTO, c->flash_base + last * ps, ps), EROFS);
        ASSERT_OK(flasher_erase(r.f, FLASHER_ERASE_AUTO, c->flash_base, ps));
        /* an image beside the protected pages goes through */
        seg.size = ps;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_TRUE(!res.write_unprotected);

        /* with unprotect: lifted, then flashed; the image ends in flash */
        seg.size = size;
        o.unprotect = true;
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
        ASSERT_TRUE(res.write_unprotected);
        ASSERT_TRUE(!res.unprotected);
        free(flash);
        flash = sim_flash_copy(r.sim, &n);
        ASSERT_MEMEQ(flash, d, size);
        ASSERT_TRUE(flasher_chip(r.f));
        ASSERT_EQ(flasher_chip(r.f)->n_wrp_pages, 0);
        ASSERT_TRUE(sim_state(r.sim) != SIM_STATE_LOCKED);
        rig_stop(&r);
}

/* An end state with no way back into the bootloader over UART is refused before anything
 * is written, unless force: a C0/G0 with nBOOT_SEL = 1 and code at the flash base. */
static void test_way_back(uint16_t pid) {
        Rig r;
        FlasherFlashOptions o;
        FlasherResult res;
        SimCounters c0, c1;
        uint8_t d[256];
        bool nboot_sel = pid == 0x443 || pid == 0x453 || pid == 0x466;

        rig_start(&r, pid);
        const ChipInfo *c = r.info;
        fill_random(d, sizeof d);
        d[0] = 0x00;                    /* code: the first word is not erased */
        ImageSegment seg = { .address = c->flash_base, .size = sizeof d, .data = d };
        Image img = { .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.boot0 = false;
        sim_counters(r.sim, &c0);
        if (nboot_sel) {
                ASSERT_ERR(flasher_flash(r.f, &img, &o, &res), ENOLINK);
                ASSERT_TRUE(strstr(flasher_error_message(r.f), "Flash with boot0"));
                sim_counters(r.sim, &c1);
                ASSERT_EQ(c1.writes + c1.page_erases + c1.mass_erases, c0.writes + c0.page_erases + c0.mass_erases);
                /* an image that leaves the first word erased keeps the empty check */
                seg.address = c->flash_base + 8;
                ASSERT_OK(flasher_flash(r.f, &img, &o, &res));
                seg.address = c->flash_base;
                o.force = true;
        }
        ASSERT_OK(flasher_flash(r.f, &img, &o, &res));

        /* Lock on that chip: the same refusal; a blank one comes back by the empty check */
        if (nboot_sel) {
                ASSERT_ERR(flasher_lock(r.f, false), ENOLINK);
                ASSERT_TRUE(strstr(flasher_error_message(r.f), "read protection level 1"));
                ASSERT_EQ(sim_rdp_level(r.sim), 0);
        }
        ASSERT_OK(flasher_lock(r.f, true));
        ASSERT_EQ(sim_rdp_level(r.sim), 1);
        ASSERT_EQ(sim_state(r.sim), (nboot_sel ? SIM_STATE_USER_CODE : SIM_STATE_BOOTLOADER));
        rig_stop(&r);
}

/* A chip that comes out of reset between the recovery's unanswered 0x7F and its filler
 * (it was in its code, then reset): the first byte it hears is a 0x7F, never filler, so
 * it syncs and the probe succeeds. The chip is reset from the trace hook, once the
 * simulator has taken every byte sent so far, right before the host's next write after
 * the fourth lone 0x7F (three sync attempts, then the recovery's). */
typedef struct BootHook {
        Sim *sim;
        unsigned lone_7f;
        uint64_t sent;
        bool done;
} BootHook;

static void on_boot_tx(void *userdata, bool tx, const uint8_t *buf, size_t n) {
        BootHook *h = userdata;

        if (!tx)
                return;
        if (h->lone_7f == 4 && !h->done) {
                SimCounters c;

                for (unsigned i = 0; i < 5000; i++) {
                        sim_counters(h->sim, &c);
                        if (c.bytes_in >= h->sent)
                                break;
                        usleep(1000);
                }
                sim_set_boot0(h->sim, true);
                sim_reset(h->sim);
                h->done = true;
        }
        if (n == 1 && buf[0] == 0x7F)
                h->lone_7f++;
        h->sent += n;
}

static void test_recover_booting_chip(void) {
        Rig r;
        FlasherChip chip;
        BootHook h = {};
        SimCounters c;

        rig_start(&r, 0x444);
        sim_set_boot0(r.sim, false);
        sim_power_cycle(r.sim);
        ASSERT_EQ(sim_state(r.sim), SIM_STATE_USER_CODE);
        h.sim = r.sim;
        an3155_set_trace(flasher_protocol(r.f), on_boot_tx, &h);
        ASSERT_OK(flasher_probe(r.f, &chip));
        ASSERT_TRUE(h.done);
        ASSERT_EQ(chip.pid, 0x444);
        sim_counters(r.sim, &c);
        ASSERT_EQ(c.deafened, 0);
        rig_stop(&r);
}

/* The L0 empty check is disputed (ST's knowledge base against CMSIS): the host works with either behaviour. */
static void test_l0_empty_check(void) {
        for (int on = 0; on <= 1; on++) {
                Rig r;
                FlasherResult res;
                FlasherChip chip;
                uint8_t d[512];

                rig_start(&r, 0x457);
                sim_set_l0_empty_check(r.sim, on);
                sim_power_cycle(r.sim);
                fill_random(d, sizeof d);
                ImageSegment seg = { .address = 0x08000000, .size = sizeof d, .data = d };
                Image img = { .segments = &seg, .n_segments = 1 };
                ASSERT_OK(flasher_flash(r.f, &img, NULL, &res));
                check_flash_is(&r, d, sizeof d);
                /* lock and unlock come back by BOOT0, empty check or not */
                ASSERT_OK(flasher_lock(r.f, false));
                ASSERT_EQ(sim_rdp_level(r.sim), 1);
                ASSERT_OK(flasher_unlock(r.f, false));
                ASSERT_EQ(sim_rdp_level(r.sim), 0);
                /* BOOT0 low: a blank part answers only with the check */
                sim_set_boot0(r.sim, false);
                sim_power_cycle(r.sim);
                if (on)
                        ASSERT_OK(flasher_probe(r.f, &chip));
                else
                        ASSERT_ERR(flasher_probe(r.f, &chip), EHOSTDOWN);
                rig_stop(&r);
        }
}

#define RUN(call)                                                                       \
        do {                                                                            \
                uint64_t _t = now_usec();                                               \
                call;                                                                   \
                fprintf(stderr, "   %-40s %4" PRIu64 " ms\n", #call, (now_usec() - _t) / 1000); \
        } while (0)

int main(void) {
        /* a write to a hung-up socket must fail, not kill the test */
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                uint16_t pid = pids[i];

                fprintf(stderr, "=== PID 0x%03x\n", pid);
                RUN(test_probe(pid));
                RUN(test_full_flash(pid));
                RUN(test_partial(pid));
                RUN(test_erase_plan(pid));
                RUN(test_keep_neighbours(pid));
                RUN(test_mass_erase_and_read(pid));
                RUN(test_out_of_range(pid));
                RUN(test_locked(pid));
                RUN(test_protect(pid, true));
                RUN(test_protect(pid, false));
                RUN(test_go(pid));
                RUN(test_faults(pid));
                RUN(test_small_part(pid));
                RUN(test_wrp(pid));
                RUN(test_way_back(pid));
                if (IN_SET(pid, 0x443, 0x453, 0x466))
                        RUN(test_option_form(pid));
                /* G0, F0 and L0 (erased 0x00) */
                if (IN_SET(pid, 0x466, 0x444, 0x457)) {
                        RUN(test_line_recovery(pid));
                        RUN(test_line_block_changed(pid));
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(stuck_cases); i++) {
                fprintf(stderr, "   %s\n", stuck_cases[i].name);
                /* L0: erased 0x00, and 128-byte pages */
                RUN(test_stuck(0x466, &stuck_cases[i]));
                RUN(test_stuck(0x457, &stuck_cases[i]));
        }
        RUN(test_line_second_loss());
        RUN(test_dirty_start());
        RUN(test_hangup());
        RUN(test_no_bootloader());
        RUN(test_option_mismatch());
        RUN(test_option_lost_reply());
        RUN(test_recover_booting_chip());
        RUN(test_l0_empty_check());
        return 0;
}
