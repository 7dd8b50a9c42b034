/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* umockdev-sim: runs a command against simulated USB-serial adapters with a simulated
 * STM32 bootloader behind each (no hardware, no root, no udevd).
 *
 *   umockdev-sim [--board ttyUSB0=0x466[,OPTION]...]... [--control SOCKET]
 *                [--dump ttyUSB0=FILE]... [--shim PATH] [--verbose] -- COMMAND ARGS...
 *   umockdev-sim --send SOCKET 'LINE'        (a client for the control socket)
 *
 * Board options: flash-kb=N, rdp=0|1, boot0=0|1 (the BOOT0 pin), image=FILE@ADDR
 * (repeatable; ADDR defaults to the flash base; any simulated memory), uid=N (UID seed),
 * nboot-sel=0|1 (C0/G0 option bit; 0 = the BOOT0 pin decides, as on a jig),
 * wiring=dtr-nrst,rts-boot0 (or dtr-nrst+rts-boot0: DTR drives nRST, RTS drives BOOT0),
 * wiring=brk-nrst (a break on TX holds nRST low; BOOT0 is the pin),
 * adapter=ftdi|ch340|cp2102 (USB IDs, names, driver; default ftdi), usb=VVVV:PPPP,
 * serial=S, timing=1 (the simulator's timing model: wire time at the host's baud,
 * program/erase times) with latency-us=N (adapter latency per reply, default 1000),
 * corrupt-read=N (a bit flipped in the N-th Read Memory reply: a verify failure),
 * max-baud=N (the highest baud the chip's autobaud measures, default 115200, at most
 * 3000000: a host above it gets no answer to its sync), parity=dropped (an adapter that
 * sends 8N1 whatever the host asks: the chip never hears bytes with an even number of
 * ones, sim_set_adapter_drops_parity()), id=0xNNN (Get ID answers this
 * PID; the board otherwise behaves as its own PID: a chip the host does not know),
 * ob-ack=drop|garble (the first option-byte programming's final ACK is lost, or arrives
 * as 0x7B), ob-program-ms=N (how long option-byte programming lasts: a reset then locks
 * a C0/G0; default 20), wrp=FIRST-LAST (pages write-protected, per family),
 * l0-empty-check=0|1 (an L0 with an empty check),
 * usb-port=N (1..127: the adapter sits in USB port N, the station's slot: sysfs
 * .../usb1/1-N, devpath N, ID_PATH=pci-0000:00:14.0-usb-0:N:1.0, ID_PATH_TAG and the
 * by-path link follow; the tty keeps the NAME given, a different counter, and devnum
 * still grows per plug, as the kernel's do).
 * Without usb-port=, a board sits in port 1 + its plug order (the first board plugged,
 * at startup or later, in 1-1), or the next free port above when a board placed with
 * usb-port= holds that one. One board per port at a time: usb-port=N while another
 * present board holds N (hung up counts; removed does not) is refused, so plug into a
 * slot again with "remove OLD" then "add NEW=PID,usb-port=N".
 * FTDI adapters have a writable latency_timer attribute (16) on their usb-serial port.
 * USB serial numbers default to STSIM000, STSIM001... in plug order (none on
 * a CH340). A shim reports DTR=1 RTS=1 when a port is first opened (Linux raises both
 * on open) and DTR=0 RTS=0 on the last close when HUPCL is set.
 *
 * It builds a umockdev testbed in a private folder under $TMPDIR (one USB device,
 * interface, usb-serial port and tty per board, with the sysfs attributes libserialport
 * reads and the E: properties udev would have added), serves each tty's pty master with
 * a Sim, and runs COMMAND with
 *   LD_PRELOAD=<existing entries>:<serial-shim.so>:libumockdev-preload.so.0
 *   UMOCKDEV_DIR=<testbed>  STM32SIM_SHIM_SOCKET=<socket>  UMOCKDEV_SIM_CONTROL=<control>
 * It forwards the shim's line reports ("/dev/ttyUSB0 CFG=115200-8E1") to the board's
 * Sim and acks each with one byte. When COMMAND exits it writes the --dump files (the
 * whole flash) and exits with COMMAND's status (128+N for a signal).
 *
 * The control channel is a Unix STREAM socket created at SOCKET before COMMAND starts.
 * One command per line; each is answered with one line, "ok[ DETAILS]" or "error MESSAGE":
 *   add NAME=PID[,OPTION]...   plug a new adapter (sends the "add" uevent)
 *   remove NAME                unplug: "remove" uevent, then the devices go
 *   swap NAME PID[,OPTION]...  another chip behind the same adapter (a fixture's slot:
 *                              the tty and an open port stay, no uevent; the options
 *                              as add's); swap NAME none: the slot empty, nothing answers
 *   hangup NAME                unplug an open port: the pty master closes (reads hang up,
 *                              TIOCM* fail with EIO); the board stays for dumps
 *   dump NAME FILE             write the flash;  dump-ob NAME FILE: the option bytes
 *   info NAME                  "ok pid=0x466 state=bootloader rdp=0 syncs=N ... baud=N breaks=N
 *                              deafened=N ob-interrupted=N usb-port=N" (state also deaf,
 *                              locked; baud: as measured at the sync, 0 when not
 *                              synced; breaks: the breaks the host started on TX, reported
 *                              by the shim; usb-port: the port it sits in)
 *   boot0 NAME 0|1, reset NAME, power-cycle NAME, list
 *   glitch NAME N              the last byte of the board's N-th reply burst from now
 *                              meets a parity error (SIM_FAULT_PARITY_ERROR): the host's
 *                              tty delivers it as its input checks make it
 * A name once used cannot be added again (umockdev aborts on a re-added /dev node): plug
 * the board back as ttyUSB1 (with usb-port=N to put it in the same slot; the kernel
 * would hand out the lowest free ttyUSB number, which may or may not be the old one).
 * The shell can use --send as its client. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <glib.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <umockdev.h>
#include <unistd.h>

/* glib has its own MIN/MAX */
#undef MIN
#undef MAX
#include "fileio.h"
#include "macro.h"
#include "sim.h"

#define _fallthrough_ __attribute__((fallthrough))
#define MAX_BOARDS 128         /* a full station and then some (the scale bench uses 64) */
#define MAX_IMAGES 8
#define MAX_CLIENTS 8

typedef struct Adapter {
        const char *name;
        uint16_t vid, pid;
        const char *manufacturer, *product, *driver, *revision;
        bool has_serial;
} Adapter;

static const Adapter adapters[] = {
        { "ftdi",   0x0403, 0x6001, "FTDI", "FT232R USB UART", "ftdi_sio", "0600", true },
        { "ch340",  0x1a86, 0x7523, NULL, "USB Serial", "ch341", "0264", false },
        { "cp2102", 0x10c4, 0xea60, "Silicon Labs", "CP2102 USB to UART Bridge Controller", "cp210x", "0100", true },
};

typedef struct Board {
        char *name;             /* ttyUSB0 */
        char *devnode;          /* /dev/ttyUSB0 */
        char *pts;              /* the pty slave behind it */
        char *syspaths[4];      /* tty, port (or NULL), interface, usb device: removal order */
        char *props[4];         /* their udev properties, "KEY=VALUE\n"... */
        unsigned index;
        unsigned port;          /* the USB port it sits in: usb1/1-PORT */
        Sim *sim;
        int master;             /* owned by the testbed */
        int slave;              /* held open: a host's close must not make the master read EIO */
        bool running, hung_up, removed;
        char line_cfg[64];      /* the host's last "CFG=..." and modem lines, for a swapped-in chip */
        char line_modem[32];
} Board;

typedef struct BoardSpec {
        char name[64];
        uint16_t pid;
        uint32_t flash_kb;
        int rdp, boot0, wiring, nboot_sel;
        bool timing;                    /* the simulator's timing model (benchmarks) */
        uint32_t latency_us;
        bool have_uid;
        uint32_t uid;
        const Adapter *adapter;
        uint16_t vid, usb_pid;
        bool have_serial;
        char serial[64];
        uint32_t corrupt_read;          /* flip a bit in this Read Memory reply (1-based; 0: never) */
        uint32_t max_baud;              /* 0: the simulator's default */
        bool parity_dropped;            /* the adapter sends 8N1 whatever is asked */
        int ob_ack;                     /* 0: as it is, 1: dropped, 2: garbled */
        uint32_t ob_program_ms;         /* 0: the simulator's default */
        bool have_wrp;
        uint32_t wrp_first, wrp_last;
        int l0_empty_check;             /* -1: the simulator's default */
        uint16_t id;                    /* Get ID answer, 0: the board's PID */
        unsigned usb_port;              /* the hub port (slot), 0: the next in plug order */
        size_t n_images;
        char *image_files[MAX_IMAGES];
        uint32_t image_addrs[MAX_IMAGES];
        bool image_has_addr[MAX_IMAGES];
} BoardSpec;

typedef struct Client {
        int fd;
        char buf[1024];
        size_t len;
} Client;

static UMockdevTestbed *testbed;
static Board *boards[MAX_BOARDS];
static unsigned n_boards, next_index;
static char *used_names[2 * MAX_BOARDS];
static unsigned n_used_names;
static bool verbose;

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_msg(const char *fmt, ...) {
        va_list ap;

        if (!verbose)
                return;
        fputs("umockdev-sim: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* --- uevents ---
 * umockdev_testbed_uevent() reads the device back through libudev, which only sees the
 * testbed's /sys from inside its preload; the harness runs outside it. So the harness
 * builds libudev's monitor message itself (the same wire format: a "libudev" header,
 * then NUL-separated properties) and sends it to every monitor the preloaded program
 * opened ($UMOCKDEV_DIR/event<N> sockets). */

#define UDEV_MONITOR_MAGIC 0xfeedcafeu

struct monitor_header {
        char prefix[8];                 /* "libudev" */
        uint32_t magic;                 /* network order */
        uint32_t header_size;
        uint32_t properties_off;
        uint32_t properties_len;
        uint32_t filter_subsystem_hash; /* network order; monitors filter on it in BPF */
        uint32_t filter_devtype_hash;
        uint32_t filter_tag_bloom_hi;
        uint32_t filter_tag_bloom_lo;
};

/* MurmurHash2 (32 bit) seeded with the length, as libudev's filters expect. */
static uint32_t murmur2(const char *str) {
        const uint32_t m = 0x5bd1e995;
        size_t len = strlen(str);
        const uint8_t *d = (const uint8_t *) str;
        uint32_t h = (uint32_t) len;

        for (; len >= 4; len -= 4, d += 4) {
                uint32_t k = (uint32_t) d[0] | (uint32_t) d[1] << 8 | (uint32_t) d[2] << 16 | (uint32_t) d[3] << 24;
                k *= m;
                k ^= k >> 24;
                k *= m;
                h *= m;
                h ^= k;
        }
        switch (len) {
        case 3:
                h ^= (uint32_t) d[2] << 16;
                _fallthrough_;
        case 2:
                h ^= (uint32_t) d[1] << 8;
                _fallthrough_;
        case 1:
                h ^= d[0];
                h *= m;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return h;
}

static void send_uevent(const char *root, const char *syspath, const char *action, const char *props) {
        static unsigned long long seqnum = 1000;
        char buf[4096], pattern[PATH_MAX], subsystem[64] = "", devtype[64] = "";
        struct monitor_header h = { .prefix = "libudev" };
        size_t len = 0;
        glob_t gl;
        int n;

        n = snprintf(buf, sizeof(buf), "ACTION=%s%cDEVPATH=%s%cSEQNUM=%llu%c",
                     action, 0, syspath + strlen("/sys"), 0, seqnum++, 0);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return;
        len = (size_t) n;
        for (const char *p = props; p && *p; ) {
                size_t l = strcspn(p, "\n");

                if (len + l + 1 > sizeof(buf))
                        return;
                memcpy(buf + len, p, l);
                buf[len + l] = 0;
                if (strncmp(p, "SUBSYSTEM=", 10) == 0)
                        snprintf(subsystem, sizeof(subsystem), "%.*s", (int) (l - 10), p + 10);
                else if (strncmp(p, "DEVTYPE=", 8) == 0)
                        snprintf(devtype, sizeof(devtype), "%.*s", (int) (l - 8), p + 8);
                len += l + 1;
                p += l;
                if (*p == '\n')
                        p++;
        }

        h.magic = htonl(UDEV_MONITOR_MAGIC);
        h.header_size = sizeof(h);
        h.properties_off = sizeof(h);
        h.properties_len = (uint32_t) len;
        h.filter_subsystem_hash = htonl(murmur2(subsystem));
        if (devtype[0])
                h.filter_devtype_hash = htonl(murmur2(devtype));

        snprintf(pattern, sizeof(pattern), "%s/event[0-9]*", root);
        if (glob(pattern, GLOB_NOSORT, NULL, &gl) != 0)
                return;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                struct iovec iov[2] = { { &h, sizeof(h) }, { buf, len } };
                struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
                _cleanup_close_ int fd = -1;

                if (strlen(gl.gl_pathv[i]) >= sizeof(sa.sun_path))
                        continue;
                strcpy(sa.sun_path, gl.gl_pathv[i]);
                fd = socket(AF_UNIX, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        continue;
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        /* a monitor that went away leaves its socket behind */
                        if (errno == ECONNREFUSED)
                                (void) unlink(sa.sun_path);
                        continue;
                }
                (void) sendmsg(fd, &msg, MSG_NOSIGNAL);
        }
        globfree(&gl);
}

/* add: parents first, as the kernel announces them; remove: children first. */
static void board_uevent(const Board *b, const char *action) {
        g_autofree char *root = umockdev_testbed_get_root_dir(testbed);
        bool add = strcmp(action, "add") == 0;

        for (size_t k = 0; k < 4; k++) {
                size_t i = add ? 3 - k : k;
                if (b->syspaths[i])
                        send_uevent(root, b->syspaths[i], action, b->props[i]);
        }
}

static void spec_clear(BoardSpec *spec) {
        for (size_t i = 0; i < spec->n_images; i++)
                free(spec->image_files[i]);
        *spec = (BoardSpec) {};
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret) {
        char *end;
        unsigned long v;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 0);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "ttyUSB0=0x466,flash-kb=64,rdp=1,..." */
static int spec_parse(const char *text, BoardSpec *spec, char *err, size_t errlen) {
        _cleanup_free_ char *copy = strdup(text);
        char *eq, *tok, *save = NULL;
        unsigned long v;
        bool wiring_open = false;
        char wiring[64] = "";

        *spec = (BoardSpec) { .rdp = -1, .boot0 = -1, .wiring = -1, .nboot_sel = -1, .l0_empty_check = -1,
                              .adapter = &adapters[0],
                              .latency_us = 1000 };
        if (!copy)
                return -ENOMEM;
        eq = strchr(copy, '=');
        if (eq)
                *eq = 0;
        /* Only the name must be a bare kernel name; option values (image=) may be paths. */
        if (!eq || eq == copy || (size_t) (eq - copy) >= sizeof(spec->name) || strchr(copy, '/')) {
                snprintf(err, errlen, "expected NAME=PID[,OPTION]...: %s", text);
                return -EINVAL;
        }
        strcpy(spec->name, copy);

        for (tok = strtok_r(eq + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *val = strchr(tok, '=');

                if (val)
                        *val++ = 0;
                if (!val && wiring_open) {
                        /* "wiring=dtr-nrst,rts-boot0": the value itself has a comma */
                        strncat(wiring, ",", sizeof(wiring) - strlen(wiring) - 1);
                        strncat(wiring, tok, sizeof(wiring) - strlen(wiring) - 1);
                        continue;
                }
                wiring_open = false;

                if (spec->pid == 0 && !val) {
                        if (parse_uint(tok, 0xffff, &v) < 0 || v == 0)
                                goto bad;
                        spec->pid = (uint16_t) v;
                } else if (!val)
                        goto bad;
                else if (strcmp(tok, "flash-kb") == 0) {
                        if (parse_uint(val, 4096, &v) < 0)
                                goto bad;
                        spec->flash_kb = (uint32_t) v;
                } else if (strcmp(tok, "rdp") == 0) {
                        if (parse_uint(val, 1, &v) < 0)
                                goto bad;
                        spec->rdp = (int) v;
                } else if (strcmp(tok, "boot0") == 0) {
                        if (parse_uint(val, 1, &v) < 0)
                                goto bad;
                        spec->boot0 = (int) v;
                } else if (strcmp(tok, "nboot-sel") == 0) {
                        if (parse_uint(val, 1, &v) < 0)
                                goto bad;
                        spec->nboot_sel = (int) v;
                } else if (strcmp(tok, "timing") == 0) {
                        if (parse_uint(val, 1, &v) < 0)
                                goto bad;
                        spec->timing = v;
                } else if (strcmp(tok, "corrupt-read") == 0) {
                        if (parse_uint(val, UINT32_MAX, &v) < 0 || v == 0)
                                goto bad;
                        spec->corrupt_read = (uint32_t) v;
                } else if (strcmp(tok, "max-baud") == 0) {
                        if (parse_uint(val, SIM_MAX_BAUD_LIMIT, &v) < 0 || v < 1200)
                                goto bad;
                        spec->max_baud = (uint32_t) v;
                } else if (strcmp(tok, "parity") == 0) {
                        if (strcmp(val, "dropped") != 0)
                                goto bad;
                        spec->parity_dropped = true;
                } else if (strcmp(tok, "ob-ack") == 0) {
                        if (strcmp(val, "drop") == 0)
                                spec->ob_ack = 1;
                        else if (strcmp(val, "garble") == 0)
                                spec->ob_ack = 2;
                        else
                                goto bad;
                } else if (strcmp(tok, "ob-program-ms") == 0) {
                        if (parse_uint(val, 10000, &v) < 0 || v == 0)
                                goto bad;
                        spec->ob_program_ms = (uint32_t) v;
                } else if (strcmp(tok, "wrp") == 0) {
                        unsigned a, b;
                        int n = 0;
                        if (sscanf(val, "%u-%u%n", &a, &b, &n) != 2 || val[n] || a > b || b > 1023)
                                goto bad;
                        spec->have_wrp = true;
                        spec->wrp_first = a;
                        spec->wrp_last = b;
                } else if (strcmp(tok, "l0-empty-check") == 0) {
                        if (parse_uint(val, 1, &v) < 0)
                                goto bad;
                        spec->l0_empty_check = (int) v;
                } else if (strcmp(tok, "id") == 0) {
                        if (parse_uint(val, 0xffff, &v) < 0 || v == 0)
                                goto bad;
                        spec->id = (uint16_t) v;
                } else if (strcmp(tok, "usb-port") == 0) {
                        /* a hub has at most 127 ports (devpath 1-N) */
                        if (parse_uint(val, 127, &v) < 0 || v == 0)
                                goto bad;
                        spec->usb_port = (unsigned) v;
                } else if (strcmp(tok, "latency-us") == 0) {
                        if (parse_uint(val, 10000000, &v) < 0)
                                goto bad;
                        spec->latency_us = (uint32_t) v;
                } else if (strcmp(tok, "uid") == 0) {
                        if (parse_uint(val, UINT32_MAX, &v) < 0)
                                goto bad;
                        spec->have_uid = true;
                        spec->uid = (uint32_t) v;
                } else if (strcmp(tok, "wiring") == 0) {
                        snprintf(wiring, sizeof(wiring), "%s", val);
                        for (char *p = wiring; *p; p++)
                                if (*p == '+')
                                        *p = ',';
                        wiring_open = true;
                } else if (strcmp(tok, "adapter") == 0) {
                        spec->adapter = NULL;
                        for (size_t i = 0; i < ELEMENTSOF(adapters); i++)
                                if (strcmp(adapters[i].name, val) == 0)
                                        spec->adapter = &adapters[i];
                        if (!spec->adapter)
                                goto bad;
                } else if (strcmp(tok, "usb") == 0) {
                        unsigned a, b;
                        if (sscanf(val, "%4x:%4x", &a, &b) != 2)
                                goto bad;
                        spec->vid = (uint16_t) a;
                        spec->usb_pid = (uint16_t) b;
                } else if (strcmp(tok, "serial") == 0) {
                        if (strlen(val) >= sizeof(spec->serial) || strpbrk(val, " \n/"))
                                goto bad;
                        spec->have_serial = true;
                        strcpy(spec->serial, val);
                } else if (strcmp(tok, "image") == 0) {
                        char *at = strrchr(val, '@');
                        size_t i = spec->n_images;

                        if (i >= MAX_IMAGES)
                                goto bad;
                        if (at) {
                                *at++ = 0;
                                if (parse_uint(at, UINT32_MAX, &v) < 0)
                                        goto bad;
                                spec->image_addrs[i] = (uint32_t) v;
                                spec->image_has_addr[i] = true;
                        }
                        spec->image_files[i] = strdup(val);
                        if (!spec->image_files[i])
                                return -ENOMEM;
                        spec->n_images++;
                } else
                        goto bad;
        }
        if (spec->pid == 0) {
                snprintf(err, errlen, "%s: no product ID", text);
                return -EINVAL;
        }
        if (wiring[0]) {
                spec->wiring = sim_wiring_from_string(wiring);
                if (spec->wiring < 0) {
                        snprintf(err, errlen, "unknown wiring: %s", wiring);
                        return -EINVAL;
                }
        }
        return 0;

bad:
        snprintf(err, errlen, "bad board option '%s' in %s", tok, text);
        return -EINVAL;
}

static Board *board_find(const char *name) {
        for (unsigned i = 0; i < n_boards; i++) {
                Board *b = boards[i];
                const char *base = strrchr(name, '/');

                if (b->removed)
                        continue;
                if (strcmp(name, b->name) == 0 || strcmp(name, b->devnode) == 0 ||
                    (b->pts && strcmp(name, b->pts) == 0) || (base && strcmp(base + 1, b->name) == 0 &&
                                                              strncmp(name, "/dev/", 5) == 0))
                        return b;
        }
        return NULL;
}

/* The board present in USB port PORT (one adapter per port), or NULL. */
static Board *board_in_port(unsigned port) {
        for (unsigned i = 0; i < n_boards; i++)
                if (!boards[i]->removed && boards[i]->port == port)
                        return boards[i];
        return NULL;
}

static bool name_used(const char *name) {
        for (unsigned i = 0; i < n_used_names; i++)
                if (strcmp(used_names[i], name) == 0)
                        return true;
        return false;
}

/* Appends "E: KEY=VALUE" to the record and "KEY=VALUE\n" to the device's property list
 * (what a uevent carries, as udevd's messages carry every property). */
static void prop(GString *record, GString *props, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void prop(GString *record, GString *props, const char *fmt, ...) {
        g_autofree char *kv = NULL;
        va_list ap;

        va_start(ap, fmt);
        kv = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_string_append_printf(record, "E: %s\n", kv);
        g_string_append_printf(props, "%s\n", kv);
}

/* The sysfs/udev description of one adapter, in umockdev's record format: the tty
 * first, then its parents, as umockdev-record writes it. paths[] and props[] get
 * tty, usb-serial port (NULL for ttyACM), interface, USB device. The tty name is the
 * driver's own counter (the spec's NAME); the port is where the adapter sits. */
static char *board_record(const BoardSpec *spec, unsigned index, unsigned port, char *paths[4], char *props[4]) {
        const Adapter *a = spec->adapter;
        /* a new device number per plug, as the kernel hands out, whichever port */
        unsigned devnum = index + 2;
        uint16_t vid = spec->vid ? spec->vid : a->vid, pid = spec->usb_pid ? spec->usb_pid : a->pid;
        bool acm = strncmp(spec->name, "ttyACM", 6) == 0;
        const char *driver = acm ? "cdc_acm" : a->driver, *suffix = acm ? "" : "-port0";
        char serial[64] = "", model[128], vendor[64], idserial[256], minor_s[16];
        const char *digits = spec->name + strcspn(spec->name, "0123456789");
        GString *r = g_string_new(NULL), *pr[4];
        /* from any of these devices up to /sys: only the link's last component counts */
        const char *up = "../../../../../../..";

        if (spec->have_serial)
                snprintf(serial, sizeof(serial), "%s", spec->serial);
        else if (a->has_serial)
                snprintf(serial, sizeof(serial), "STSIM%03u", index);
        snprintf(minor_s, sizeof(minor_s), "%s", *digits ? digits : "0");

        /* udev's ID_MODEL/ID_VENDOR: spaces become underscores */
        snprintf(model, sizeof(model), "%s", a->product);
        snprintf(vendor, sizeof(vendor), "%s", a->manufacturer ? a->manufacturer : "1a86");
        for (char *p = model; *p; p++)
                if (*p == ' ')
                        *p = '_';
        for (char *p = vendor; *p; p++)
                if (*p == ' ')
                        *p = '_';
        if (serial[0])
                snprintf(idserial, sizeof(idserial), "%s_%s_%s", vendor, model, serial);
        else
                snprintf(idserial, sizeof(idserial), "%s_%s", vendor, model);

        paths[3] = g_strdup_printf("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%u", port);
        paths[2] = g_strdup_printf("%s/1-%u:1.0", paths[3], port);
        if (acm) {
                paths[1] = NULL;
                paths[0] = g_strdup_printf("%s/tty/%s", paths[2], spec->name);
        } else {
                paths[1] = g_strdup_printf("%s/%s", paths[2], spec->name);
                paths[0] = g_strdup_printf("%s/tty/%s", paths[1], spec->name);
        }
        for (size_t i = 0; i < 4; i++)
                pr[i] = g_string_new(NULL);

        /* the tty */
        g_string_append_printf(r, "P: %s\nN: %s\n", paths[0] + strlen("/sys"), spec->name);
        /* libserialport finds the USB device through tty/NAME/device */
        g_string_append_printf(r, "L: device=../../../%s\n", acm ? g_strrstr(paths[2], "/") + 1 : spec->name);
        g_string_append_printf(r, "A: dev=%u:%s\n", acm ? 166 : 188, minor_s);
        prop(r, pr[0], "DEVNAME=/dev/%s", spec->name);
        prop(r, pr[0], "SUBSYSTEM=tty");
        prop(r, pr[0], "MAJOR=%u", acm ? 166 : 188);
        prop(r, pr[0], "MINOR=%s", minor_s);
        prop(r, pr[0], "ID_BUS=usb");
        prop(r, pr[0], "ID_VENDOR_ID=%04x", vid);
        prop(r, pr[0], "ID_MODEL_ID=%04x", pid);
        prop(r, pr[0], "ID_VENDOR=%s", vendor);
        prop(r, pr[0], "ID_MODEL=%s", model);
        prop(r, pr[0], "ID_REVISION=%s", a->revision);
        prop(r, pr[0], "ID_SERIAL=%s", idserial);
        if (serial[0])
                prop(r, pr[0], "ID_SERIAL_SHORT=%s", serial);
        prop(r, pr[0], "ID_TYPE=generic");
        prop(r, pr[0], "ID_USB_INTERFACES=:%s:", acm ? "020201" : "ffffff");
        prop(r, pr[0], "ID_USB_INTERFACE_NUM=00");
        prop(r, pr[0], "ID_USB_DRIVER=%s", driver);
        prop(r, pr[0], "ID_PATH=pci-0000:00:14.0-usb-0:%u:1.0", port);
        prop(r, pr[0], "ID_PATH_TAG=pci-0000_00_14_0-usb-0_%u_1_0", port);
        prop(r, pr[0], "DEVLINKS=/dev/serial/by-id/usb-%s-if00%s /dev/serial/by-path/pci-0000:00:14.0-usb-0:%u:1.0%s",
             idserial, suffix, port, suffix);
        prop(r, pr[0], "TAGS=:systemd:");
        g_string_append(r, "\n");

        /* the usb-serial port */
        if (!acm) {
                g_string_append_printf(r, "P: %s\nA: port_number=0\nL: driver=%s/bus/usb-serial/drivers/%s\n",
                                       paths[1] + strlen("/sys"), up, driver);
                /* ftdi_sio's per-port attribute, in ms (16 by default); writable */
                if (strcmp(driver, "ftdi_sio") == 0)
                        g_string_append(r, "A: latency_timer=16\n");
                prop(r, pr[1], "DRIVER=%s", driver);
                prop(r, pr[1], "SUBSYSTEM=usb-serial");
                g_string_append(r, "\n");
        }

        /* the interface */
        g_string_append_printf(r, "P: %s\nA: bInterfaceNumber=00\nA: bInterfaceClass=%s\nA: bNumEndpoints=02\n"
                               "L: driver=%s/bus/usb/drivers/%s\n",
                               paths[2] + strlen("/sys"), acm ? "02" : "ff", up, driver);
        prop(r, pr[2], "DEVTYPE=usb_interface");
        prop(r, pr[2], "DRIVER=%s", driver);
        prop(r, pr[2], "SUBSYSTEM=usb");
        prop(r, pr[2], "INTERFACE=%s", acm ? "2/2/1" : "255/255/255");
        prop(r, pr[2], "PRODUCT=%x/%x/%x", vid, pid, (unsigned) strtoul(a->revision, NULL, 16));
        g_string_append(r, "\n");

        /* the USB device: libserialport needs busnum, devnum, idVendor, idProduct */
        /* udev_device_get_driver() reads the driver link */
        g_string_append_printf(r, "P: %s\nL: driver=%s/bus/usb/drivers/usb\n", paths[3] + strlen("/sys"), up);
        g_string_append_printf(r, "A: idVendor=%04x\nA: idProduct=%04x\nA: busnum=1\nA: devnum=%u\n"
                               "A: bcdDevice=%s\nA: speed=12\nA: devpath=%u\n",
                               vid, pid, devnum, a->revision, port);
        if (a->manufacturer)
                g_string_append_printf(r, "A: manufacturer=%s\n", a->manufacturer);
        g_string_append_printf(r, "A: product=%s\n", a->product);
        if (serial[0])
                g_string_append_printf(r, "A: serial=%s\n", serial);
        prop(r, pr[3], "DEVTYPE=usb_device");
        prop(r, pr[3], "DRIVER=usb");
        prop(r, pr[3], "SUBSYSTEM=usb");
        prop(r, pr[3], "BUSNUM=001");
        prop(r, pr[3], "DEVNUM=%03u", devnum);
        prop(r, pr[3], "PRODUCT=%x/%x/%x", vid, pid, (unsigned) strtoul(a->revision, NULL, 16));
        prop(r, pr[3], "ID_BUS=usb");
        prop(r, pr[3], "ID_VENDOR_ID=%04x", vid);
        prop(r, pr[3], "ID_MODEL_ID=%04x", pid);
        prop(r, pr[3], "ID_SERIAL=%s", idserial);
        if (serial[0])
                prop(r, pr[3], "ID_SERIAL_SHORT=%s", serial);
        g_string_append(r, "\n");

        for (size_t i = 0; i < 4; i++)
                props[i] = g_string_free(pr[i], FALSE);
        return g_string_free(r, FALSE);
}

/* C0/G0 FLASH_OPTR bit 24, nBOOT_SEL: 0 lets the BOOT0 pin choose (a programming jig).
 * OPTR is the first option word, stored as value then complement. Before sim_start(),
 * which loads the option bytes. */
static int set_nboot_sel(Sim *sim, int value) {
        uint16_t pid = sim_pid(sim);
        uint32_t optr;
        uint8_t *ob;
        size_t n = 0;

        if (pid != 0x466 && pid != 0x443 && pid != 0x453)
                return -EOPNOTSUPP;
        sim_lock(sim);
        ob = sim_option_bytes(sim, &n);
        if (!ob || n < 8) {
                sim_unlock(sim);
                return -EOPNOTSUPP;
        }
        optr = (uint32_t) ob[0] | (uint32_t) ob[1] << 8 | (uint32_t) ob[2] << 16 | (uint32_t) ob[3] << 24;
        optr = value ? optr | UINT32_C(1) << 24 : optr & ~(UINT32_C(1) << 24);
        for (size_t i = 0; i < 4; i++) {
                ob[i] = (uint8_t) (optr >> (8 * i));
                ob[4 + i] = (uint8_t) ~(optr >> (8 * i));
        }
        sim_unlock(sim);
        return 0;
}

static int board_make_sim(const BoardSpec *spec, unsigned index, Sim **ret, char *err, size_t errlen);

/* Remembers the line as the host set it: a chip swapped in while the port is open
 * sees the same line. */
static void board_note_line(Board *b, const char *msg) {
        char buf[256], *save = NULL;
        int dtr = 0, rts = 0;
        bool modem = false;

        snprintf(buf, sizeof buf, "%s", msg);
        if (b->line_modem[0])
                (void) sscanf(b->line_modem, "DTR=%d RTS=%d", &dtr, &rts);
        for (char *t = strtok_r(buf, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
                if (strncmp(t, "CFG=", 4) == 0)
                        snprintf(b->line_cfg, sizeof b->line_cfg, "%s", t);
                else if (strncmp(t, "DTR=", 4) == 0) {
                        dtr = t[4] == '1';
                        modem = true;
                } else if (strncmp(t, "RTS=", 4) == 0) {
                        rts = t[4] == '1';
                        modem = true;
                }
        }
        if (modem)
                snprintf(b->line_modem, sizeof b->line_modem, "DTR=%d RTS=%d", dtr, rts);
}

/* Another chip behind the same adapter (a fixture's slot, boards swapped by hand): the
 * tty, its udev devices and the host's open port stay; the old chip goes, no uevent.
 * spec NULL: the slot is empty (nothing answers; bytes are taken and dropped). */
static int board_swap(Board *b, const BoardSpec *spec, char *err, size_t errlen) {
        Sim *sim = NULL;
        int r;

        if (spec)
                r = board_make_sim(spec, b->index, &sim, err, errlen);
        else
                /* an empty slot: a chip without power stands in for the open line */
                r = sim_new(sim_pid(b->sim), 0, &sim);
        if (r < 0)
                return r;
        if (b->running)
                sim_stop(b->sim);
        sim_free(b->sim);
        b->sim = sim;
        if (b->line_cfg[0])
                sim_line_message(sim, b->line_cfg);
        if (b->line_modem[0])
                sim_line_message(sim, b->line_modem);
        if (b->running) {
                r = sim_start(sim, b->master);
                if (r < 0) {
                        snprintf(err, errlen, "sim_start: %s", strerror(-r));
                        b->running = false;
                        return r;
                }
        }
        if (!spec)
                sim_power_off(sim);
        log_msg("%s: %s swapped in", b->name, spec ? "a new chip" : "nothing");
        return 0;
}

static void board_free(Board *b) {
        if (!b)
                return;
        if (b->sim) {
                sim_stop(b->sim);
                sim_free(b->sim);
        }
        if (b->slave >= 0)
                close(b->slave);
        for (size_t i = 0; i < 4; i++) {
                g_free(b->syspaths[i]);
                g_free(b->props[i]);
        }
        free(b->name);
        free(b->devnode);
        free(b->pts);
        free(b);
}

/* A simulated chip as spec describes it (the board's index seeds its UID). */
static int board_make_sim(const BoardSpec *spec, unsigned index, Sim **ret, char *err, size_t errlen) {
        Sim *sim = NULL;
        int r;

        r = sim_new(spec->pid, spec->flash_kb * 1024, &sim);
        if (r < 0) {
                snprintf(err, errlen, "simulator for 0x%03x: %s", spec->pid, strerror(-r));
                return r;
        }
        sim_set_uid_seed(sim, spec->have_uid ? spec->uid : 0x5100u + index);
        if (spec->rdp >= 0)
                sim_set_rdp(sim, spec->rdp);
        if (spec->boot0 >= 0)
                sim_set_boot0(sim, spec->boot0);
        if (spec->wiring >= 0)
                sim_set_wiring(sim, (SimWiring) spec->wiring);
        if (spec->corrupt_read)
                sim_inject(sim, SIM_FAULT_CORRUPT_READ, spec->corrupt_read);
        if (spec->max_baud)
                sim_set_max_baud(sim, spec->max_baud);
        if (spec->parity_dropped)
                sim_set_adapter_drops_parity(sim, true);
        if (spec->ob_ack)
                sim_inject(sim, spec->ob_ack == 1 ? SIM_FAULT_DROP_OB_ACK : SIM_FAULT_GARBLE_OB_ACK, 0);
        if (spec->ob_program_ms)
                sim_set_ob_program_usec(sim, spec->ob_program_ms * 1000);
        if (spec->l0_empty_check >= 0)
                sim_set_l0_empty_check(sim, spec->l0_empty_check);
        if (spec->id)
                sim_set_id(sim, spec->id);
        if (spec->timing)
                sim_set_timing(sim, &(SimTiming) { .enabled = true, .latency_usec = spec->latency_us, .speed = 1.0 });
        if (spec->nboot_sel >= 0) {
                r = set_nboot_sel(sim, spec->nboot_sel);
                if (r < 0) {
                        snprintf(err, errlen, "nboot-sel is a C0/G0 option byte");
                        sim_free(sim);
                        return r;
                }
        }
        for (size_t i = 0; i < spec->n_images; i++) {
                _cleanup_free_ uint8_t *data = NULL;
                size_t size = 0;

                r = read_file(spec->image_files[i], SIZE_MAX, &data, &size);
                if (r < 0) {
                        snprintf(err, errlen, "%s: %s", spec->image_files[i], strerror(-r));
                        sim_free(sim);
                        return r;
                }
                r = sim_load(sim, spec->image_has_addr[i] ? spec->image_addrs[i] : sim_flash_base(sim), data, size);
                if (r < 0) {
                        snprintf(err, errlen, "%s does not fit the simulated memory: %s", spec->image_files[i], strerror(-r));
                        sim_free(sim);
                        return r;
                }
        }
        /* after the images and option bytes: sim_set_wrp() reloads them */
        if (spec->have_wrp)
                sim_set_wrp(sim, spec->wrp_first, spec->wrp_last);
        *ret = sim;
        return 0;
}

static int board_add(const BoardSpec *spec, bool uevent, char *err, size_t errlen) {
        g_autoptr(GError) error = NULL;
        g_autofree char *record = NULL;
        Board *b;
        unsigned port;
        int r;

        if (n_boards >= MAX_BOARDS || n_used_names >= ELEMENTSOF(used_names)) {
                snprintf(err, errlen, "too many boards");
                return -E2BIG;
        }
        if (name_used(spec->name)) {
                snprintf(err, errlen, "%s was used before in this testbed; plug the board back under a new name", spec->name);
                return -EEXIST;
        }
        /* One adapter per port; a hung-up board still sits in its port, only "remove"
         * frees it. */
        if (spec->usb_port) {
                Board *other = board_in_port(spec->usb_port);

                if (other) {
                        snprintf(err, errlen, "USB port %u is taken by %s; remove it first", spec->usb_port, other->name);
                        return -EBUSY;
                }
                port = spec->usb_port;
        } else
                /* the plug order, as before usb-port= existed, skipping the ports that
                 * boards placed with usb-port= hold */
                for (port = next_index + 1; board_in_port(port); port++)
                        ;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->slave = -1;
        b->master = -1;
        b->index = next_index++;
        b->port = port;
        b->name = strdup(spec->name);
        b->devnode = g_strdup_printf("/dev/%s", spec->name);
        if (!b->name || !b->devnode) {
                board_free(b);
                return -ENOMEM;
        }

        r = board_make_sim(spec, b->index, &b->sim, err, errlen);
        if (r < 0) {
                board_free(b);
                return r;
        }

        record = board_record(spec, b->index, b->port, b->syspaths, b->props);
        if (!umockdev_testbed_add_from_string(testbed, record, &error)) {
                snprintf(err, errlen, "umockdev: %s", error->message);
                board_free(b);
                return -EINVAL;
        }
        used_names[n_used_names++] = strdup(spec->name);

        b->master = umockdev_testbed_get_dev_fd(testbed, b->devnode);
        if (b->master < 0) {
                snprintf(err, errlen, "umockdev made no pty for %s", b->devnode);
                board_free(b);
                return -ENODEV;
        }
        /* A child that inherits the master would keep the port alive after a hang-up. */
        (void) fcntl(b->master, F_SETFD, FD_CLOEXEC);

        if (ptsname(b->master)) {
                struct termios t;

                b->pts = strdup(ptsname(b->master));
                b->slave = open(b->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
                /* What a usb-serial tty starts with: 9600 8N1, HUPCL, CLOCAL, and raw, so
                 * nothing the simulator sends is echoed before a host opens the port. */
                if (b->slave >= 0 && tcgetattr(b->slave, &t) == 0) {
                        cfmakeraw(&t);
                        t.c_cflag |= CREAD | HUPCL | CLOCAL;
                        cfsetspeed(&t, B9600);
                        (void) tcsetattr(b->slave, TCSANOW, &t);
                }
        }

        r = sim_start(b->sim, b->master);
        if (r < 0) {
                snprintf(err, errlen, "sim_start: %s", strerror(-r));
                board_free(b);
                return r;
        }
        b->running = true;
        boards[n_boards++] = b;

        if (uevent)
                board_uevent(b, "add");
        log_msg("%s: 0x%03x on %s (%s), USB port %u", b->name, spec->pid, b->devnode, b->pts ? b->pts : "?", b->port);
        return 0;
}

static void board_stop(Board *b) {
        if (b->running) {
                sim_stop(b->sim);
                b->running = false;
        }
}

/* Unplug an open port: with the simulator stopped (its thread no longer holds the
 * master), /dev/null replaces the master, so the last reference to it goes. */
static int board_hangup(Board *b) {
        _cleanup_close_ int null = -1;

        if (b->hung_up)
                return 0;
        board_stop(b);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
                return -errno;
        if (dup3(null, b->master, O_CLOEXEC) < 0)
                return -errno;
        b->hung_up = true;
        return 0;
}

static int board_remove(Board *b) {
        board_uevent(b, "remove");
        (void) board_hangup(b);
        for (size_t i = 0; i < 4; i++)
                if (b->syspaths[i])
                        umockdev_testbed_remove_device(testbed, b->syspaths[i]);
        b->removed = true;
        return 0;
}

static int board_dump(Board *b, const char *path, bool option_bytes) {
        uint8_t *p;
        size_t size;
        int r;

        sim_lock(b->sim);
        p = option_bytes ? sim_option_bytes(b->sim, &size) : sim_flash(b->sim, &size);
        r = p ? write_file(path, p, size) : -ENODATA;
        sim_unlock(b->sim);
        return r;
}

static const char *state_name(SimState s) {
        switch (s) {
        case SIM_STATE_WAIT_SYNC:  return "wait-sync";
        case SIM_STATE_BOOTLOADER: return "bootloader";
        case SIM_STATE_USER_CODE:  return "user-code";
        case SIM_STATE_OFF:        return "off";
        case SIM_STATE_DEAF:       return "deaf";
        case SIM_STATE_LOCKED:     return "locked";
        default:                   return "?";
        }
}

/* One control line -> one answer line (without the newline). */
static void control_command(char *line, char *answer, size_t len) {
        char *argv[4] = {}, *save = NULL;
        size_t argc = 0;
        Board *b = NULL;
        int r;

        for (char *t = strtok_r(line, " \t\r", &save); t && argc < ELEMENTSOF(argv); t = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = t;
        if (argc == 0) {
                snprintf(answer, len, "error empty command");
                return;
        }

        if (strcmp(argv[0], "list") == 0) {
                size_t n = (size_t) snprintf(answer, len, "ok");
                for (unsigned i = 0; i < n_boards && n < len; i++)
                        if (!boards[i]->removed)
                                n += (size_t) snprintf(answer + n, len - n, " %s", boards[i]->name);
                return;
        }

        if (strcmp(argv[0], "add") == 0) {
                BoardSpec spec;
                char err[256] = "";

                if (argc != 2) {
                        snprintf(answer, len, "error usage: add NAME=PID[,OPTION]...");
                        return;
                }
                r = spec_parse(argv[1], &spec, err, sizeof(err));
                if (r >= 0)
                        r = board_add(&spec, true, err, sizeof(err));
                spec_clear(&spec);
                if (r < 0)
                        snprintf(answer, len, "error %s", err[0] ? err : strerror(-r));
                else
                        snprintf(answer, len, "ok");
                return;
        }

        if (argc < 2 || !(b = board_find(argv[1]))) {
                snprintf(answer, len, "error %s", argc < 2 ? "missing board name" : "no such board");
                return;
        }

        if (strcmp(argv[0], "swap") == 0 && argc == 3 && strcmp(argv[2], "none") == 0) {
                char err[256] = "";

                r = board_swap(b, NULL, err, sizeof err);
                if (r < 0) {
                        snprintf(answer, len, "error %s", err[0] ? err : strerror(-r));
                        return;
                }
        } else if (strcmp(argv[0], "swap") == 0 && argc == 3) {
                _cleanup_free_ char *text = NULL;
                BoardSpec spec;
                char err[256] = "";

                /* "swap NAME PID[,OPTION]...": the spec without the name */
                if (asprintf(&text, "%s=%s", b->name, argv[2]) < 0) {
                        snprintf(answer, len, "error out of memory");
                        return;
                }
                r = spec_parse(text, &spec, err, sizeof err);
                if (r >= 0)
                        r = board_swap(b, &spec, err, sizeof err);
                spec_clear(&spec);
                if (r < 0) {
                        snprintf(answer, len, "error %s", err[0] ? err : strerror(-r));
                        return;
                }
        } else if (strcmp(argv[0], "remove") == 0 && argc == 2)
                r = board_remove(b);
        else if (strcmp(argv[0], "hangup") == 0 && argc == 2)
                r = board_hangup(b);
        else if ((strcmp(argv[0], "dump") == 0 || strcmp(argv[0], "dump-ob") == 0) && argc == 3)
                r = board_dump(b, argv[2], strcmp(argv[0], "dump-ob") == 0);
        else if (strcmp(argv[0], "boot0") == 0 && argc == 3 && (strcmp(argv[2], "0") == 0 || strcmp(argv[2], "1") == 0)) {
                sim_set_boot0(b->sim, argv[2][0] == '1');
                r = 0;
        } else if (strcmp(argv[0], "reset") == 0 && argc == 2) {
                sim_reset(b->sim);
                r = 0;
        } else if (strcmp(argv[0], "glitch") == 0 && argc == 3 && atoi(argv[2]) > 0) {
                sim_inject(b->sim, SIM_FAULT_PARITY_ERROR, (unsigned) atoi(argv[2]));
                r = 0;
        } else if (strcmp(argv[0], "power-cycle") == 0 && argc == 2) {
                sim_power_cycle(b->sim);
                r = 0;
        } else if (strcmp(argv[0], "info") == 0 && argc == 2) {
                SimCounters c;
                sim_counters(b->sim, &c);
                snprintf(answer, len,
                         "ok pid=0x%03x state=%s rdp=%d running=%d hung-up=%d syncs=%u commands=%u nacks=%u "
                         "reads=%u writes=%u page-erases=%u mass-erases=%u resets=%u gos=%u ob-writes=%u baud=%u breaks=%u "
                         "deafened=%u ob-interrupted=%u usb-port=%u",
                         sim_pid(b->sim), state_name(sim_state(b->sim)), sim_rdp_level(b->sim), b->running,
                         b->hung_up, c.syncs, c.commands, c.nacks, c.reads, c.writes, c.page_erases,
                         c.mass_erases, c.resets, c.gos, c.ob_writes, sim_measured_baud(b->sim), c.breaks,
                         c.deafened, c.ob_interrupted, b->port);
                return;
        } else {
                snprintf(answer, len, "error unknown command or wrong arguments: %s", argv[0]);
                return;
        }
        if (r < 0)
                snprintf(answer, len, "error %s", strerror(-r));
        else
                snprintf(answer, len, "ok");
}

/* Handles a shim datagram "<device> <payload>" and acks it. */
static void shim_message(int fd) {
        struct sockaddr_un from = {};
        socklen_t fromlen = sizeof(from);
        char msg[512], *sp;
        ssize_t k;
        Board *b;

        k = recvfrom(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT, (struct sockaddr *) &from, &fromlen);
        if (k <= 0)
                return;
        msg[k] = 0;

        sp = strchr(msg, ' ');
        if (sp) {
                *sp = 0;
                b = board_find(msg);
                if (b && b->running)
                        sim_line_message(b->sim, sp + 1);
                if (b)
                        board_note_line(b, sp + 1);
                log_msg("%s: %s%s", msg, sp + 1, b ? "" : " (no such board)");
        }
        if (fromlen > sizeof(sa_family_t))
                (void) sendto(fd, "A", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &from, fromlen);
}

static int unix_socket(const char *path, int type) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            (type == SOCK_STREAM && listen(fd, MAX_CLIENTS) < 0)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* --send SOCKET LINE: prints the answer, exits 0 for "ok". */
static int send_command(const char *path, const char *line) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        char answer[1024];
        size_t n = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return 2;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "umockdev-sim: %s: %m\n", path);
                return 2;
        }
        if (dprintf(fd, "%s\n", line) < 0)
                return 2;
        while (n < sizeof(answer) - 1) {
                ssize_t k = read(fd, answer + n, 1);
                if (k <= 0 || answer[n] == '\n')
                        break;
                n++;
        }
        answer[n] = 0;
        printf("%s\n", answer);
        return strncmp(answer, "ok", 2) == 0 ? 0 : 1;
}

/* The shim next to the harness, unless STM32SIM_SHIM names one; g_free() it. */
static char *find_shim(void) {
        const char *env = getenv("STM32SIM_SHIM");
        char exe[PATH_MAX], *dir, *p;
        ssize_t k;

        if (env && *env)
                return g_strdup(env);
        env = getenv("TOP_BUILDDIR");
        if (env && *env) {
                p = g_strdup_printf("%s/tests/rig/shim/.libs/serial-shim.so", env);
                if (access(p, R_OK) == 0)
                        return p;
                g_free(p);
        }
        k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (k <= 0)
                return NULL;
        exe[k] = 0;
        dir = dirname(exe);
        for (int up = 0; up < 2; up++) {
                p = g_strdup_printf("%s/%sshim/.libs/serial-shim.so", dir, up ? "../" : "");
                if (access(p, R_OK) == 0)
                        return p;
                g_free(p);
        }
        return NULL;
}

static void rm_rf(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *e;

        if (d)
                while ((e = g_dir_read_name(d))) {
                        g_autofree char *p = g_build_filename(path, e, NULL);
                        struct stat st;
                        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                                rm_rf(p);
                        else
                                (void) unlink(p);
                }
        (void) rmdir(path);
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: umockdev-sim [--board NAME=PID[,OPTION]...]... [--control SOCKET]\n"
                "                    [--dump NAME=FILE]... [--shim PATH] [--verbose] -- COMMAND ARGS...\n"
                "       umockdev-sim --send SOCKET LINE\n"
                "Board options include usb-port=N (1..127: the USB port, i.e. the slot, it sits in;\n"
                "default: 1 + plug order). The full list is at the top of tests/rig/umockdev-sim.c.\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "board",   required_argument, NULL, 'b' },
                { "control", required_argument, NULL, 'c' },
                { "dump",    required_argument, NULL, 'd' },
                { "shim",    required_argument, NULL, 's' },
                { "send",    required_argument, NULL, 'S' },
                { "verbose", no_argument,       NULL, 'v' },
                { "help",    no_argument,       NULL, 'h' },
                {}
        };
        const char *boards_arg[MAX_BOARDS], *dumps[MAX_BOARDS], *control_path = NULL, *send_path = NULL;
        size_t n_boards_arg = 0, n_dumps = 0;
        g_autofree char *shim = NULL, *privdir = NULL, *shim_sock = NULL, *root = NULL, *preload = NULL;
        const char *old_tmpdir;
        int c, r, status = 0, exit_code = EXIT_FAILURE;
        int shim_fd = -1, control_fd = -1, sig_fd = -1;
        Client clients[MAX_CLIENTS];
        char err[512];
        sigset_t mask;
        pid_t child;

        for (size_t i = 0; i < MAX_CLIENTS; i++)
                clients[i].fd = -1;

        while ((c = getopt_long(argc, argv, "+hv", options, NULL)) >= 0)
                switch (c) {
                case 'b':
                        if (n_boards_arg >= MAX_BOARDS)
                                return 2;
                        boards_arg[n_boards_arg++] = optarg;
                        break;
                case 'c':
                        control_path = optarg;
                        break;
                case 'd':
                        if (n_dumps >= MAX_BOARDS || !strchr(optarg, '='))
                                return 2;
                        dumps[n_dumps++] = optarg;
                        break;
                case 's':
                        g_free(shim);
                        shim = g_strdup(optarg);
                        break;
                case 'S':
                        send_path = optarg;
                        break;
                case 'v':
                        verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }

        if (send_path) {
                if (optind != argc - 1) {
                        usage(stderr);
                        return 2;
                }
                return send_command(send_path, argv[optind]);
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }

        if (!shim)
                shim = find_shim();
        if (!shim || access(shim, R_OK) < 0) {
                fprintf(stderr, "umockdev-sim: serial-shim.so not found (set STM32SIM_SHIM)\n");
                return 77;
        }

        /* The testbed goes into a private folder; the command keeps the caller's TMPDIR. */
        old_tmpdir = getenv("TMPDIR");
        /* umockdev's sockets live in there: keep clear of sun_path's 108 bytes */
        privdir = g_strdup_printf("%s/umockdev-sim.XXXXXX",
                                  old_tmpdir && *old_tmpdir && strlen(old_tmpdir) <= 48 ? old_tmpdir : "/tmp");
        if (!mkdtemp(privdir)) {
                fprintf(stderr, "umockdev-sim: mkdtemp: %m\n");
                return EXIT_FAILURE;
        }
        old_tmpdir = old_tmpdir ? strdup(old_tmpdir) : NULL;
        setenv("TMPDIR", privdir, 1);

        /* Signals for the command are forwarded; block them before any thread starts. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        testbed = umockdev_testbed_new();
        root = umockdev_testbed_get_root_dir(testbed);

        for (size_t i = 0; i < n_boards_arg; i++) {
                BoardSpec spec;

                err[0] = 0;
                r = spec_parse(boards_arg[i], &spec, err, sizeof(err));
                if (r >= 0)
                        r = board_add(&spec, false, err, sizeof(err));
                spec_clear(&spec);
                if (r < 0) {
                        fprintf(stderr, "umockdev-sim: --board %s: %s\n", boards_arg[i], err[0] ? err : strerror(-r));
                        goto finish;
                }
        }

        shim_sock = g_strdup_printf("%s/shim.sock", privdir);
        shim_fd = unix_socket(shim_sock, SOCK_DGRAM);
        if (shim_fd < 0) {
                fprintf(stderr, "umockdev-sim: %s: %s\n", shim_sock, strerror(-shim_fd));
                goto finish;
        }
        if (control_path) {
                control_fd = unix_socket(control_path, SOCK_STREAM);
                if (control_fd < 0) {
                        fprintf(stderr, "umockdev-sim: --control %s: %s\n", control_path, strerror(-control_fd));
                        goto finish;
                }
        }
        /* SIGCHLD and the signals forwarded to the command */
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sig_fd < 0) {
                fprintf(stderr, "umockdev-sim: signalfd: %m\n");
                goto finish;
        }

        {
                const char *old = getenv("LD_PRELOAD");
                const char *umockdev_preload = getenv("UMOCKDEV_PRELOAD");
                const char *asan = getenv("ASAN_OPTIONS");
                g_autofree char *asan_opts = NULL;

                if (!umockdev_preload || !*umockdev_preload)
                        umockdev_preload = "libumockdev-preload.so.0";
                preload = g_strdup_printf("%s%s%s:%s", old && *old ? old : "", old && *old ? ":" : "",
                                          shim, umockdev_preload);
                /* An ASan-built command would refuse to run with libasan not first. */
                asan_opts = g_strdup_printf("%s%sverify_asan_link_order=0", asan && *asan ? asan : "",
                                            asan && *asan ? ":" : "");
                setenv("ASAN_OPTIONS", asan_opts, 1);
                setenv("UMOCKDEV_DIR", root, 1);
                setenv("STM32SIM_SHIM_SOCKET", shim_sock, 1);
                if (control_path)
                        setenv("UMOCKDEV_SIM_CONTROL", control_path, 1);
                if (old_tmpdir)
                        setenv("TMPDIR", old_tmpdir, 1);
                else
                        unsetenv("TMPDIR");
        }

        child = fork();
        if (child < 0) {
                fprintf(stderr, "umockdev-sim: fork: %m\n");
                goto finish;
        }
        if (child == 0) {
                sigprocmask(SIG_UNBLOCK, &mask, NULL);
                signal(SIGPIPE, SIG_DFL);
                setenv("LD_PRELOAD", preload, 1);
                execvp(argv[optind], argv + optind);
                fprintf(stderr, "umockdev-sim: %s: %m\n", argv[optind]);
                _exit(127);
        }
        log_msg("running %s (pid %d)", argv[optind], (int) child);

        for (;;) {
                struct pollfd p[3 + MAX_CLIENTS];
                size_t n = 0;

                p[n++] = (struct pollfd) { .fd = shim_fd, .events = POLLIN };
                p[n++] = (struct pollfd) { .fd = sig_fd, .events = POLLIN };
                p[n++] = (struct pollfd) { .fd = control_fd, .events = POLLIN };
                for (size_t i = 0; i < MAX_CLIENTS; i++)
                        p[n++] = (struct pollfd) { .fd = clients[i].fd, .events = POLLIN };

                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "umockdev-sim: poll: %m\n");
                        break;
                }

                if (p[0].revents & POLLIN)
                        shim_message(shim_fd);

                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sig_fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
                                (void) kill(child, (int) si.ssi_signo);
                }

                if (p[2].revents & POLLIN) {
                        int fd = accept4(control_fd, NULL, NULL, SOCK_CLOEXEC);
                        size_t i;
                        for (i = 0; fd >= 0 && i < MAX_CLIENTS; i++)
                                if (clients[i].fd < 0) {
                                        clients[i] = (Client) { .fd = fd };
                                        break;
                                }
                        if (fd >= 0 && i == MAX_CLIENTS)
                                close(fd);
                }

                for (size_t i = 0; i < MAX_CLIENTS; i++) {
                        Client *cl = &clients[i];
                        ssize_t k;
                        char *nl;

                        if (cl->fd < 0 || !(p[3 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        k = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
                        if (k <= 0) {
                                close(cl->fd);
                                cl->fd = -1;
                                continue;
                        }
                        cl->len += (size_t) k;
                        while ((nl = memchr(cl->buf, '\n', cl->len))) {
                                char answer[1024];
                                size_t used = (size_t) (nl - cl->buf) + 1;

                                *nl = 0;
                                log_msg("control: %s", cl->buf);
                                control_command(cl->buf, answer, sizeof(answer));
                                log_msg("control: -> %s", answer);
                                (void) dprintf(cl->fd, "%s\n", answer);
                                memmove(cl->buf, cl->buf + used, cl->len - used);
                                cl->len -= used;
                        }
                        if (cl->len >= sizeof(cl->buf) - 1) {
                                (void) dprintf(cl->fd, "error line too long\n");
                                close(cl->fd);
                                cl->fd = -1;
                        }
                }

                /* SIGCHLD coalesces and may come for a grandchild: just ask. */
                {
                        siginfo_t si = {};
                        if (waitid(P_PID, (id_t) child, &si, WEXITED | WNOHANG) == 0 && si.si_pid == child) {
                                status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
                                break;
                        }
                }
        }
        exit_code = status;

        for (size_t i = 0; i < n_dumps; i++) {
                _cleanup_free_ char *name = strdup(dumps[i]);
                char *file = name ? strchr(name, '=') : NULL;
                Board *b;

                if (!file)
                        continue;
                *file++ = 0;
                b = board_find(name);
                if (!b) {
                        for (unsigned j = 0; j < n_boards && !b; j++)
                                if (strcmp(boards[j]->name, name) == 0)
                                        b = boards[j];
                }
                r = b ? board_dump(b, file, false) : -ENOENT;
                if (r < 0) {
                        fprintf(stderr, "umockdev-sim: --dump %s=%s: %s\n", name, file, strerror(-r));
                        if (exit_code == 0)
                                exit_code = EXIT_FAILURE;
                }
        }

finish:
        for (size_t i = 0; i < MAX_CLIENTS; i++)
                if (clients[i].fd >= 0)
                        close(clients[i].fd);
        if (control_fd >= 0) {
                close(control_fd);
                (void) unlink(control_path);
        }
        if (shim_fd >= 0)
                close(shim_fd);
        if (sig_fd >= 0)
                close(sig_fd);
        for (unsigned i = 0; i < n_boards; i++)
                board_stop(boards[i]);
        for (unsigned i = 0; i < n_boards; i++)
                board_free(boards[i]);
        for (unsigned i = 0; i < n_used_names; i++)
                free(used_names[i]);
        g_clear_object(&testbed);
        if (privdir)
                rm_rf(privdir);
        free((char *) old_tmpdir);
        return exit_code;
}
