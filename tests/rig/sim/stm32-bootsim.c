/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32-bootsim: a simulated STM32 ROM bootloader on a pty (or an inherited fd), the
 * demo's board and a peer for third-party hosts such as stm32flash.
 *
 *   stm32-bootsim --pid 0x466 [--flash-kb 64] [--pty | --fd N] [--timing]
 *                 [--latency-us 1000] [--speed 1.0] [--image FILE@ADDR]... [--dump FILE]
 *                 [--rdp 1] [--boot0 0|1] [--wiring none|dtr-nrst,rts-boot0|brk-nrst]
 *                 [--line-socket PATH] [--max-baud N] [--id PID] [--tcp PORT]
 *
 * With --pty the slave's path is printed on the first line of stdout; the simulator keeps
 * the slave open itself, so a host may open and close it many times. It serves until
 * SIGTERM/SIGINT (or, with --fd, until the fd hangs up), then writes --dump: the whole
 * flash. --line-socket binds a Unix datagram socket for the test shim's line reports
 * ("CFG=115200-8E1", "DTR=1 RTS=0"), each acknowledged once applied: a program opening
 * the pty with the shim preloaded (a serial server: ser2net, pyserial's RFC 2217 server)
 * then sets the board's lines and framing. --max-baud: the highest baud the autobaud measures
 * (default 115200, at most 3000000). --id: Get ID answers this PID instead of --pid's.
 * --tcp: a raw TCP serial server on 127.0.0.1:PORT (0: any; the port is printed on the first
 * line), one connection at a time to the same board, which stays powered between them as
 * behind a ser2net; --dump is written at SIGTERM/SIGINT. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "sim.h"

static Sim *sim_freep_helper(Sim *s) {
        return sim_free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Sim *, sim_freep_helper);

static int parse_uint(const char *s, unsigned long max, unsigned long *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (errno || end == s || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int load_image(Sim *s, const char *spec) {
        _cleanup_free_ char *path = strdup(spec);
        _cleanup_free_ uint8_t *buf = NULL;
        unsigned long addr;
        size_t size = 0;
        int r;

        if (!path)
                return -ENOMEM;
        char *at = strrchr(path, '@');
        if (!at || parse_uint(at + 1, UINT32_MAX, &addr) < 0)
                return -EINVAL;
        *at = 0;

        r = read_file(path, SIZE_MAX, &buf, &size);
        if (r < 0)
                return r;
        return sim_load(s, (uint32_t) addr, buf, size);
}

static int dump_flash(Sim *s, const char *path) {
        const uint8_t *flash;
        size_t size;
        int r;

        sim_lock(s);
        /* Apart: the arguments of one call are evaluated in no set order. */
        flash = sim_flash(s, &size);
        r = write_file(path, flash, size);
        sim_unlock(s);
        return r;
}

static int open_pty(int *ret_master, int *ret_slave, char **ret_name) {
        _cleanup_close_ int master = -1, slave = -1;
        struct termios t;
        char *name;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return -errno;
        if (grantpt(master) < 0 || unlockpt(master) < 0)
                return -errno;
        name = ptsname(master);
        if (!name)
                return -errno;
        name = strdup(name);
        if (!name)
                return -ENOMEM;
        /* held open so the master does not read EIO whenever a host closes its end */
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) {
                int r = -errno;
                free(name);
                return r;
        }
        if (tcgetattr(slave, &t) == 0) {
                cfmakeraw(&t);
                (void) tcsetattr(slave, TCSANOW, &t);
        }
        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        *ret_name = name;
        return 0;
}

static int open_line_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

typedef struct SignalWaiter {
        Sim *sim;
        sigset_t mask;
} SignalWaiter;

/* --fd mode: sim_run() blocks the main thread, this one turns a signal into sim_stop(). */
static void *signal_thread(void *userdata) {
        SignalWaiter *w = userdata;
        int sig;
        if (sigwait(&w->mask, &sig) == 0)
                sim_stop(w->sim);
        return NULL;
}

static volatile bool tcp_stopping;

typedef struct TcpWaiter {
        Sim *sim;
        sigset_t mask;
        int listen_fd;
} TcpWaiter;

/* --tcp: a signal ends the connection being served and the accept() loop. */
static void *tcp_signal_thread(void *userdata) {
        TcpWaiter *w = userdata;
        int sig;
        if (sigwait(&w->mask, &sig) == 0) {
                tcp_stopping = true;
                (void) shutdown(w->listen_fd, SHUT_RDWR);
                sim_stop(w->sim);
        }
        return NULL;
}

static int serve_tcp(Sim *s, unsigned long port, const sigset_t *mask) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        _cleanup_close_ int fd = -1;
        int one = 1, r = 0;
        pthread_t t;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 1) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        printf("%u\n", ntohs(sa.sin_port));
        fflush(stdout);

        TcpWaiter w = { .sim = s, .mask = *mask, .listen_fd = fd };
        r = -pthread_create(&t, NULL, tcp_signal_thread, &w);
        if (r < 0)
                return r;
        while (!tcp_stopping) {
                _cleanup_close_ int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        r = tcp_stopping ? 0 : -errno;
                        break;
                }
                (void) setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (tcp_stopping)
                        break;
                r = sim_run(s, c);
                if (r < 0)
                        break;
        }
        if (!tcp_stopping)
                pthread_cancel(t);
        pthread_join(t, NULL);
        return r;
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: stm32-bootsim --pid PID [--flash-kb KB] [--pty | --fd N] [--timing]\n"
                "                     [--latency-us US] [--speed X] [--image FILE@ADDR]...\n"
                "                     [--dump FILE] [--rdp 0|1|2] [--boot0 0|1]\n"
                "                     [--wiring none|dtr-nrst,rts-boot0|brk-nrst] [--line-socket PATH]\n"
                "                     [--max-baud N] [--id PID] [--tcp PORT]\n"
                "PIDs: 0x443 (C011) 0x453 (C031) 0x444 (F03xx4/6) 0x466 (G03x/04x) 0x457 (L01x/02x)\n");
}

int main(int argc, char **argv) {
        enum { ARG_FLASH_KB = 0x100, ARG_LATENCY, ARG_SPEED, ARG_IMAGE, ARG_DUMP, ARG_RDP,
               ARG_BOOT0, ARG_WIRING, ARG_LINE_SOCKET, ARG_FD, ARG_TIMING, ARG_PTY, ARG_PID,
               ARG_MAX_BAUD, ARG_ID, ARG_TCP };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "pid",         required_argument, NULL, ARG_PID },
                { "flash-kb",    required_argument, NULL, ARG_FLASH_KB },
                { "pty",         no_argument,       NULL, ARG_PTY },
                { "fd",          required_argument, NULL, ARG_FD },
                { "timing",      no_argument,       NULL, ARG_TIMING },
                { "latency-us",  required_argument, NULL, ARG_LATENCY },
                { "speed",       required_argument, NULL, ARG_SPEED },
                { "image",       required_argument, NULL, ARG_IMAGE },
                { "dump",        required_argument, NULL, ARG_DUMP },
                { "rdp",         required_argument, NULL, ARG_RDP },
                { "boot0",       required_argument, NULL, ARG_BOOT0 },
                { "wiring",      required_argument, NULL, ARG_WIRING },
                { "line-socket", required_argument, NULL, ARG_LINE_SOCKET },
                { "max-baud",    required_argument, NULL, ARG_MAX_BAUD },
                { "id",          required_argument, NULL, ARG_ID },
                { "tcp",         required_argument, NULL, ARG_TCP },
                {}
        };
        _cleanup_(sim_freep_helperp) Sim *sim = NULL;
        _cleanup_close_ int master = -1, slave = -1, lsock = -1, sigfd = -1;
        _cleanup_free_ char *pty_name = NULL;
        const char *images[32], *dump = NULL, *line_socket = NULL;
        size_t n_images = 0;
        unsigned long pid = 0, flash_kb = 0, fd = 0, latency = 1000, max_baud = 0, id = 0, tcp = 0, v;
        long rdp = -1, boot0 = -1, wiring = SIM_WIRING_NONE;
        bool pty = false, have_fd = false, have_tcp = false, timing = false;
        double speed = 1.0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                case ARG_PID:
                        if (parse_uint(optarg, 0xFFFF, &pid) < 0)
                                goto bad;
                        break;
                case ARG_FLASH_KB:
                        if (parse_uint(optarg, 1024, &flash_kb) < 0)
                                goto bad;
                        break;
                case ARG_PTY:
                        pty = true;
                        break;
                case ARG_FD:
                        if (parse_uint(optarg, 65535, &fd) < 0)
                                goto bad;
                        have_fd = true;
                        break;
                case ARG_TIMING:
                        timing = true;
                        break;
                case ARG_LATENCY:
                        if (parse_uint(optarg, 10000000, &latency) < 0)
                                goto bad;
                        break;
                case ARG_SPEED: {
                        char *end;
                        speed = strtod(optarg, &end);
                        if (end == optarg || *end || !(speed > 0))
                                goto bad;
                        break;
                }
                case ARG_IMAGE:
                        if (n_images == ELEMENTSOF(images))
                                goto bad;
                        images[n_images++] = optarg;
                        break;
                case ARG_DUMP:
                        dump = optarg;
                        break;
                case ARG_RDP:
                        if (parse_uint(optarg, 2, &v) < 0)
                                goto bad;
                        rdp = (long) v;
                        break;
                case ARG_BOOT0:
                        if (parse_uint(optarg, 1, &v) < 0)
                                goto bad;
                        boot0 = (long) v;
                        break;
                case ARG_WIRING:
                        wiring = sim_wiring_from_string(optarg);
                        if (wiring < 0)
                                goto bad;
                        break;
                case ARG_LINE_SOCKET:
                        line_socket = optarg;
                        break;
                case ARG_MAX_BAUD:
                        if (parse_uint(optarg, SIM_MAX_BAUD_LIMIT, &max_baud) < 0 || max_baud < 1200)
                                goto bad;
                        break;
                case ARG_ID:
                        if (parse_uint(optarg, 0xFFFF, &id) < 0 || id == 0)
                                goto bad;
                        break;
                case ARG_TCP:
                        if (parse_uint(optarg, 65535, &tcp) < 0)
                                goto bad;
                        have_tcp = true;
                        break;
                default:
                        goto bad;
                }
        }
        if (optind < argc || pid == 0 || pty + have_fd + have_tcp > 1)
                goto bad;

        r = sim_new((uint16_t) pid, (uint32_t) flash_kb * 1024, &sim);
        if (r < 0) {
                fprintf(stderr, "stm32-bootsim: cannot simulate PID 0x%lx with %lu KiB: %s\n",
                        pid, flash_kb, strerror(-r));
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < n_images; i++) {
                r = load_image(sim, images[i]);
                if (r < 0) {
                        fprintf(stderr, "stm32-bootsim: --image %s: %s\n", images[i], strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (rdp >= 0)
                sim_set_rdp(sim, (int) rdp);
        if (boot0 >= 0)
                sim_set_boot0(sim, boot0 == 1);
        sim_set_wiring(sim, (SimWiring) wiring);
        if (max_baud)
                sim_set_max_baud(sim, (unsigned) max_baud);
        if (id)
                sim_set_id(sim, (uint16_t) id);
        if (timing)
                sim_set_timing(sim, &(SimTiming) { .enabled = true, .latency_usec = (unsigned) latency, .speed = speed });

        if (line_socket) {
                lsock = open_line_socket(line_socket);
                if (lsock < 0) {
                        fprintf(stderr, "stm32-bootsim: --line-socket %s: %s\n", line_socket, strerror(-lsock));
                        return EXIT_FAILURE;
                }
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);        /* before any thread starts */

        if (have_tcp) {
                r = serve_tcp(sim, tcp, &mask);
                if (r < 0)
                        fprintf(stderr, "stm32-bootsim: --tcp: %s\n", strerror(-r));
                if (dump && dump_flash(sim, dump) < 0)
                        return EXIT_FAILURE;
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        if (!pty) {
                /* serve an inherited fd (default stdin) until it hangs up or a signal */
                SignalWaiter w = { .sim = sim, .mask = mask };
                pthread_t t;
                (void) fcntl((int) fd, F_SETFD, FD_CLOEXEC);
                if (lsock >= 0)
                        fprintf(stderr, "stm32-bootsim: --line-socket is served with --pty only\n");
                r = -pthread_create(&t, NULL, signal_thread, &w);
                if (r < 0)
                        return EXIT_FAILURE;
                r = sim_run(sim, (int) fd);
                pthread_cancel(t);      /* sigwait() is a cancellation point */
                pthread_join(t, NULL);
                if (r < 0)
                        fprintf(stderr, "stm32-bootsim: %s\n", strerror(-r));
                if (dump && dump_flash(sim, dump) < 0)
                        return EXIT_FAILURE;
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        r = open_pty(&master, &slave, &pty_name);
        if (r < 0) {
                fprintf(stderr, "stm32-bootsim: pty: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sigfd < 0)
                return EXIT_FAILURE;
        r = sim_start(sim, master);
        if (r < 0) {
                fprintf(stderr, "stm32-bootsim: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        printf("%s\n", pty_name);
        fflush(stdout);

        for (;;) {
                struct pollfd p[2] = { { .fd = sigfd, .events = POLLIN }, { .fd = lsock, .events = POLLIN } };
                if (poll(p, lsock >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents)
                        break;
                if (lsock >= 0 && p[1].revents & POLLIN) {
                        struct sockaddr_un from;
                        socklen_t fromlen = sizeof from;
                        char msg[256];
                        ssize_t k = recvfrom(lsock, msg, sizeof msg - 1, 0, (struct sockaddr *) &from, &fromlen);
                        if (k > 0) {
                                msg[k] = 0;
                                sim_line_message(sim, msg);
                                /* the shim waits for this: the line is set before its
                                 * next byte reaches the board */
                                (void) sendto(lsock, "A", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                                              (struct sockaddr *) &from, fromlen);
                        }
                }
        }
        sim_stop(sim);
        if (line_socket)
                (void) unlink(line_socket);
        if (dump) {
                r = dump_flash(sim, dump);
                if (r < 0) {
                        fprintf(stderr, "stm32-bootsim: --dump %s: %s\n", dump, strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        return EXIT_SUCCESS;

bad:
        usage(stderr);
        return 2;
}
