/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-flasher: one flash + verify with the project's flasher (libstm32core), timed.
 * The benchmark's fallback column when the daemon is not in the loop, and a quick way
 * to see where the time goes:
 *
 *   bench-flasher --device /dev/ttyUSB0 [--baud 115200] IMAGE.bin
 *   bench-flasher --sim 0x466 [--flash-kb 32] [--latency-us 1000] [--no-timing] IMAGE.bin
 *   bench-flasher (--device ... | --sim ...) --bound-sequence IMAGE.bin
 *
 * --device goes through link-serial (run it under tests/umockdev-sim for a simulated
 * board); --sim runs the simulator in-process over a socketpair with its timing model
 * and also prints the simulator's counters. Prints "seconds=S" and the result.
 *
 * --bound-sequence sends exactly the commands the benchmark's bound counts and nothing
 * else (sync, Get ID, one mass erase or, on L0, every page in one Extended Erase, then
 * 256-byte Write Memory blocks and 256-byte Read Memory blocks compared with the image):
 * no probe of option bytes, flash size or UID, no nBOOT_SEL step. Through a rig it
 * measures the least time any host gets there: the rig's floor. (The sync here is
 * followed by one Get, which the bound does not count: 2.5 ms.) */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "an3155.h"
#include "chips.h"
#include "fileio.h"
#include "flasher.h"
#include "macro.h"
#include "sim.h"

/* The image file, whole (bench-flasher's images are small). */
static int read_all(const char *path, uint8_t **ret, size_t *ret_n) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        return read_regular_fd(fd, SIZE_MAX, ret, ret_n);
}

/* The bound's command sequence (see the comment at the top). */
static int bound_sequence(Link *link, const uint8_t *data, size_t size) {
        _cleanup_(an3155_freep) An3155 *p = NULL;
        _cleanup_free_ uint16_t *pages = NULL;
        _cleanup_free_ uint8_t *back = NULL;
        const ChipInfo *info;
        uint16_t pid;
        size_t n_pages;
        int r;

        r = an3155_new(link, &p);
        if (r < 0)
                return r;
        r = an3155_sync(p, 3);
        if (r < 0)
                return r;
        r = an3155_get_id(p, &pid);
        if (r < 0)
                return r;
        info = chip_lookup(pid);
        if (!info)
                return -EOPNOTSUPP;
        if (info->mass_erase)
                r = an3155_erase_mass(p);
        else {
                n_pages = (size + info->page_size - 1) / info->page_size;
                pages = calloc(n_pages, sizeof(uint16_t));
                if (!pages)
                        return -ENOMEM;
                for (size_t i = 0; i < n_pages; i++)
                        pages[i] = (uint16_t) i;
                r = an3155_erase_pages(p, pages, n_pages);
        }
        if (r < 0)
                return r;
        for (size_t off = 0; off < size; off += 256) {
                r = an3155_write_memory(p, info->flash_base + (uint32_t) off, data + off, MIN(size - off, (size_t) 256));
                if (r < 0)
                        return r;
        }
        back = malloc(256);
        if (!back)
                return -ENOMEM;
        for (size_t off = 0; off < size; off += 256) {
                size_t n = MIN(size - off, (size_t) 256);

                r = an3155_read_memory(p, info->flash_base + (uint32_t) off, back, n);
                if (r < 0)
                        return r;
                if (memcmp(back, data + off, n) != 0)
                        return -EIO;
        }
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "device",     required_argument, NULL, 'd' },
                { "baud",       required_argument, NULL, 'b' },
                { "sim",        required_argument, NULL, 's' },
                { "flash-kb",   required_argument, NULL, 'k' },
                { "latency-us", required_argument, NULL, 'l' },
                { "no-timing",  no_argument,       NULL, 'n' },
                { "no-verify",  no_argument,       NULL, 'V' },
                { "bound-sequence", no_argument,   NULL, 'B' },
                {}
        };
        const char *device = NULL;
        unsigned long baud = 115200, pid = 0, flash_kb = 0, latency = 1000;
        bool timing = true, verify = true, bound_only = false;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        Sim *sim = NULL;
        int fds[2] = { -1, -1 }, c, r;
        Link *link = NULL;
        Flasher *f = NULL;
        FlasherFlashOptions o;
        FlasherResult res;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'd': device = optarg; break;
                case 'b': baud = strtoul(optarg, NULL, 0); break;
                case 's': pid = strtoul(optarg, NULL, 0); break;
                case 'k': flash_kb = strtoul(optarg, NULL, 0); break;
                case 'l': latency = strtoul(optarg, NULL, 0); break;
                case 'n': timing = false; break;
                case 'V': verify = false; break;
                case 'B': bound_only = true; break;
                default: return 2;
                }
        if (optind + 1 != argc || (!device == !pid)) {
                fprintf(stderr, "usage: bench-flasher (--device DEV [--baud B] | --sim PID [--flash-kb N]) [--bound-sequence] IMAGE.bin\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        r = read_all(argv[optind], &data, &size);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[optind], strerror(-r));
                return 1;
        }

        if (device) {
                r = link_open_serial(device, (unsigned) baud, &link);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", device, strerror(-r));
                        return 1;
                }
        } else {
                r = sim_new((uint16_t) pid, (uint32_t) flash_kb * 1024, &sim);
                if (r < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
                        fprintf(stderr, "simulator: %s\n", strerror(r < 0 ? -r : errno));
                        return 1;
                }
                sim_set_timing(sim, &(SimTiming) { .enabled = timing, .latency_usec = (unsigned) latency, .speed = 1.0 });
                if (sim_start(sim, fds[1]) < 0 || link_open_fd(fds[0], "sim", &link) < 0)
                        return 1;
                link_set_baud(link, (unsigned) baud);
        }
        if (bound_only) {
                uint64_t t0 = now_usec();

                r = bound_sequence(link, data, size);
                if (r < 0) {
                        fprintf(stderr, "bound sequence: %s\n", strerror(-r));
                        return 1;
                }
                printf("seconds=%.3f\n", (double) (now_usec() - t0) / 1e6);
                goto done;
        }
        if (flasher_new(link, &f) < 0)
                return 1;

        const ChipInfo *info;
        FlasherChip chip;
        uint64_t t0 = now_usec();
        /* the probe is part of the flash: time it */
        r = flasher_probe(f, &chip);
        if (r < 0) {
                fprintf(stderr, "probe: %s\n", flasher_error_message(f));
                return 1;
        }
        uint64_t t_probe = now_usec() - t0;
        info = chip.info;
        ImageSegment seg = { .address = info->flash_base, .size = size, .data = data };
        Image img = { .format = IMAGE_FORMAT_BIN, .segments = &seg, .n_segments = 1 };
        flasher_flash_options_init(&o);
        o.verify = verify;
        r = flasher_flash(f, &img, &o, &res);
        uint64_t t = now_usec() - t0;
        if (r < 0) {
                fprintf(stderr, "flash: %s\n", flasher_error_message(f));
                return 1;
        }
        printf("seconds=%.3f probe=%.3f written=%" PRIu64 " verified=%" PRIu64 " pages_erased=%d mass=%d\n",
               (double) t / 1e6, (double) t_probe / 1e6, res.bytes_written, res.bytes_verified,
               res.pages_erased == UINT32_MAX ? -1 : (int) res.pages_erased, res.mass_erased);
        if (sim) {
                SimCounters cnt;

                sim_counters(sim, &cnt);
                printf("sim: commands=%u reads=%u writes=%u page_erases=%u mass_erases=%u syncs=%u resets=%u bytes_in=%" PRIu64 " bytes_out=%" PRIu64 "\n",
                       cnt.commands, cnt.reads, cnt.writes, cnt.page_erases, cnt.mass_erases, cnt.syncs,
                       cnt.resets, cnt.bytes_in, cnt.bytes_out);
        }
done:
        flasher_free(f);
        if (sim)
                sim_stop(sim);
        link_free(link);
        if (sim) {
                close(fds[1]);
                sim_free(sim);
        }
        return 0;
}
