/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LD_PRELOAD shim that makes a pty slave behave like a USB-serial adapter for the
 * program under test (the daemon, libserialport, stm32flash). Preload it BEFORE
 * libumockdev-preload.so.0: umockdev's preload calls libc directly, so a wrapper
 * after it would never see ioctl().
 *
 * On pty slaves opened through open*():
 *  - TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC are emulated (a pty has no modem lines; DTR
 *    and RTS start raised, as Linux raises them on open, and drop on the last close
 *    when HUPCL is set); they fail with EIO once the pty has hung up (unplugged);
 *  - tcsetattr()/TCSETS* give the kernel CS8 without parity (the pty driver forces
 *    that anyway) and keep the requested PARENB/PARODD/CMSPAR/CSIZE/CSTOPB in a shadow
 *    that tcgetattr()/TCGETS* report back, so 8E1 "takes"; the input checks INPCK,
 *    PARMRK and IGNPAR likewise (the kernel would double every 0xFF under PARMRK and a
 *    pty has no parity errors to mark: the simulator, told them, delivers what such a
 *    tty would, "INPCK=1 PARMRK=1 IGNPAR=0" after the CFG=);
 *  - breaks (TIOCSBRK/TIOCCBRK, TCSBRK 0, TCSBRKP, tcsendbreak()) go to the kernel (a pty
 *    accepts and ignores them; a hung-up one answers EIO) and are reported;
 *  - every other ioctl goes straight to the kernel (umockdev answers ENOTTY to ioctls
 *    it does not know, FIONREAD included);
 *  - isatty() returns 1 (umockdev says 0 for its emulated nodes);
 *  - realpath() of an emulated /dev node is the node (umockdev's own corrupts memory).
 * Each line change is reported as a datagram "<device> DTR=1 RTS=0",
 * "<device> CFG=115200-8E1" or "<device> BRK=1" / "BRK=0" (a timed break: both, one
 * after the other) to the Unix datagram socket named by $STM32SIM_SHIM_SOCKET,
 * where <device> is the path the program opened. The report is synchronous: the shim
 * waits (up to 500 ms) for a 1-byte ack sent back to the sender's address, so the
 * simulator knows the line state before the next byte reaches it (a listener that never
 * acks is then given only 10 ms a report). Without the variable nothing is reported.
 *
 * With $STM32SIM_SHIM_IOCTL_LOG naming a file, every call that sets a tracked port's
 * modem lines, breaks or termios is appended to it as one line, so a test can count
 * calls: "<device> TIOCMSET DTR=1 RTS=1", "<device> TIOCMBIS DTR", "<device> TIOCMBIC
 * RTS", "<device> TIOCSBRK", "<device> TCSETS HUPCL=0", "<device> close DTR=1 RTS=0"
 * (the lines the last close leaves, after any HUPCL drop). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

/* The kernel's termios layouts (glibc's struct termios differs); c_cflag sits at the
 * same offset in both, which is all the shadowing needs. */
struct kernel_termios {
        tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
        cc_t c_line;
        cc_t c_cc[19];
};
struct termios2 {
        tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
        cc_t c_line;
        cc_t c_cc[19];
        speed_t c_ispeed, c_ospeed;
};

#ifndef BOTHER
#define BOTHER 0010000
#endif
#define SHADOW_MASK ((tcflag_t) (PARENB | PARODD | CMSPAR | CSIZE | CSTOPB))
#define ISHADOW_MASK ((tcflag_t) (INPCK | PARMRK | IGNPAR))
#define MAX_FDS 1024
#define ACK_TIMEOUT_MS 500
#define ACK_GRACE_MS 10

/* Reporting never changes the errno the wrapped call leaves behind. */
static inline void restore_errno(int *e) {
        errno = *e;
}
#define _cleanup_errno_ __attribute__((cleanup(restore_errno)))

typedef struct Tracked {
        char *path;
        bool shadow_valid;
        tcflag_t shadow;        /* the requested SHADOW_MASK bits */
        tcflag_t ishadow;       /* the requested ISHADOW_MASK bits of c_iflag */
        bool dtr, rts;
        bool brk;               /* TX held in break (TIOCSBRK) */
        char last_cfg[96];      /* last CFG= reported for this port */
} Tracked;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Tracked *tracked[MAX_FDS];
static int report_fd = -1;
static pid_t report_pid;
static bool acks_missing;

static void child_after_fork(void) {
        pthread_mutex_init(&lock, NULL);
}

__attribute__((constructor)) static void shim_init(void) {
        pthread_atfork(NULL, NULL, child_after_fork);
}

/* libc's own symbols, bypassing umockdev's (and anyone else's) wrappers. */
static void *libc_sym(const char *name) {
        static void *libc;
        void *p;

        if (!libc)
                libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        p = libc ? dlsym(libc, name) : NULL;
        return p ? p : dlsym(RTLD_NEXT, name);
}

#define NEXT(ret, name, ...)                                            \
        static ret (*next_##name)(__VA_ARGS__);                         \
        if (!next_##name)                                               \
                next_##name = dlsym(RTLD_NEXT, #name)

static int kernel_ioctl(int fd, unsigned long req, void *arg) {
        return (int) syscall(SYS_ioctl, fd, req, arg);
}

static bool is_pty_slave(int fd) {
        struct stat st;

        if (fd < 0 || syscall(SYS_fstat, fd, &st) < 0 || !S_ISCHR(st.st_mode))
                return false;
        /* UNIX98 pty slaves: majors 136..143. */
        return major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143;
}

/* Caller holds the lock. */
static Tracked *get_tracked(int fd) {
        return fd >= 0 && fd < MAX_FDS ? tracked[fd] : NULL;
}

static void report_locked(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_locked(const char *path, const char *fmt, ...) {
        _cleanup_errno_ int saved_errno = errno;
        const char *sock = getenv("STM32SIM_SHIM_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char msg[512], ack;
        struct pollfd p;
        va_list ap;
        int n, k;

        if (!sock || !*sock || strlen(sock) >= sizeof(sa.sun_path))
                return;

        if (report_fd < 0 || report_pid != getpid()) {
                /* After fork() the parent's socket is shared: take our own. */
                report_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (report_fd < 0)
                        return;
                report_pid = getpid();
                /* Autobind, so the harness has an address to send the ack to. */
                if (bind(report_fd, (struct sockaddr *) &sa, sizeof(sa_family_t)) < 0) {
                        syscall(SYS_close, report_fd);
                        report_fd = -1;
                        return;
                }
        }

        n = snprintf(msg, sizeof(msg), "%s ", path);
        if (n < 0 || (size_t) n >= sizeof(msg))
                return;
        va_start(ap, fmt);
        k = vsnprintf(msg + n, sizeof(msg) - (size_t) n, fmt, ap);
        va_end(ap);
        if (n < 0 || k < 0 || (size_t) (n + k) >= sizeof(msg))
                return;

        /* Drop acks that arrived after an earlier report timed out: the listener does
         * ack, it was just slow. */
        while (recv(report_fd, &ack, 1, MSG_DONTWAIT) >= 0)
                acks_missing = false;

        strcpy(sa.sun_path, sock);
        if (sendto(report_fd, msg, (size_t) (n + k), MSG_NOSIGNAL, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return;

        /* A listener that never acks (a plain datagram reader) costs one full timeout,
         * then only a short grace per report. */
        p = (struct pollfd) { .fd = report_fd, .events = POLLIN };
        do
                n = poll(&p, 1, acks_missing ? ACK_GRACE_MS : ACK_TIMEOUT_MS);
        while (n < 0 && errno == EINTR);
        if (n > 0 && recv(report_fd, &ack, 1, MSG_DONTWAIT) >= 0)
                acks_missing = false;
        else
                acks_missing = true;
}

/* One line to $STM32SIM_SHIM_IOCTL_LOG (opened per call: a test may truncate it). */
static void log_call_locked(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_call_locked(const char *path, const char *fmt, ...) {
        _cleanup_errno_ int saved_errno = errno;
        const char *log = getenv("STM32SIM_SHIM_IOCTL_LOG");
        char msg[512];
        va_list ap;
        int n, k, fd;

        if (!log || !*log)
                return;
        n = snprintf(msg, sizeof(msg), "%s ", path);
        if (n < 0 || (size_t) n >= sizeof(msg))
                return;
        va_start(ap, fmt);
        k = vsnprintf(msg + n, sizeof(msg) - (size_t) n - 1, fmt, ap);
        va_end(ap);
        if (k < 0 || (size_t) (n + k) >= sizeof(msg) - 1)
                return;
        msg[n + k] = '\n';
        fd = (int) syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        (void) syscall(SYS_write, fd, msg, (size_t) (n + k + 1));
        syscall(SYS_close, fd);
}

static void log_modem_locked(Tracked *t, unsigned long req, int arg) {
        const char *lines = (arg & TIOCM_DTR) && (arg & TIOCM_RTS) ? "DTR RTS" : arg & TIOCM_DTR ? "DTR" :
                            arg & TIOCM_RTS ? "RTS" : "";

        switch (req) {
        case TIOCMSET:
                log_call_locked(t->path, "TIOCMSET DTR=%d RTS=%d", !!(arg & TIOCM_DTR), !!(arg & TIOCM_RTS));
                break;
        case TIOCMBIS:
                log_call_locked(t->path, "TIOCMBIS %s", lines);
                break;
        case TIOCMBIC:
                log_call_locked(t->path, "TIOCMBIC %s", lines);
                break;
        }
}

static void report_lines_locked(Tracked *t) {
        report_locked(t->path, "DTR=%d RTS=%d", t->dtr, t->rts);
}

static unsigned speed_to_baud(speed_t s) {
        static const struct { speed_t s; unsigned baud; } table[] = {
                { B0, 0 }, { B50, 50 }, { B75, 75 }, { B110, 110 }, { B134, 134 }, { B150, 150 },
                { B200, 200 }, { B300, 300 }, { B600, 600 }, { B1200, 1200 }, { B1800, 1800 },
                { B2400, 2400 }, { B4800, 4800 }, { B9600, 9600 }, { B19200, 19200 },
                { B38400, 38400 }, { B57600, 57600 }, { B115200, 115200 }, { B230400, 230400 },
                { B460800, 460800 }, { B500000, 500000 }, { B576000, 576000 }, { B921600, 921600 },
                { B1000000, 1000000 }, { B1152000, 1152000 }, { B1500000, 1500000 },
                { B2000000, 2000000 }, { B2500000, 2500000 }, { B3000000, 3000000 },
                { B3500000, 3500000 }, { B4000000, 4000000 },
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (table[i].s == s)
                        return table[i].baud;
        return 0;
}

/* Records the requested line settings and reports them if they changed. */
static void set_shadow_locked(Tracked *t, tcflag_t iflag, tcflag_t cflag, unsigned baud) {
        char cfg[96], parity;
        unsigned bits;

        for (int i = 0; i < MAX_FDS; i++)
                if (tracked[i] && strcmp(tracked[i]->path, t->path) == 0) {
                        tracked[i]->shadow = cflag & SHADOW_MASK;
                        tracked[i]->ishadow = iflag & ISHADOW_MASK;
                        tracked[i]->shadow_valid = true;
                }

        switch (cflag & CSIZE) {
        case CS5: bits = 5; break;
        case CS6: bits = 6; break;
        case CS7: bits = 7; break;
        default:  bits = 8; break;
        }
        if (!(cflag & PARENB))
                parity = 'N';
        else if (cflag & CMSPAR)
                parity = cflag & PARODD ? 'M' : 'S';
        else
                parity = cflag & PARODD ? 'O' : 'E';

        snprintf(cfg, sizeof(cfg), "%u-%u%c%u INPCK=%d PARMRK=%d IGNPAR=%d", baud, bits, parity,
                 cflag & CSTOPB ? 2u : 1u, !!(iflag & INPCK), !!(iflag & PARMRK), !!(iflag & IGNPAR));
        if (strcmp(cfg, t->last_cfg) == 0)
                return;
        for (int i = 0; i < MAX_FDS; i++)
                if (tracked[i] && strcmp(tracked[i]->path, t->path) == 0)
                        strcpy(tracked[i]->last_cfg, cfg);
        report_locked(t->path, "CFG=%s", cfg);
}

static void untrack_locked(int fd) {
        if (fd < 0 || fd >= MAX_FDS || !tracked[fd])
                return;
        free(tracked[fd]->path);
        free(tracked[fd]);
        tracked[fd] = NULL;
}

static void track(int fd, const char *path) {
        Tracked *t;

        if (fd < 0 || fd >= MAX_FDS || !path || !is_pty_slave(fd))
                return;
        t = calloc(1, sizeof(*t));
        if (!t)
                return;
        t->path = strdup(path);
        if (!t->path) {
                free(t);
                return;
        }

        pthread_mutex_lock(&lock);
        untrack_locked(fd);
        tracked[fd] = t;

        /* Lines and settings belong to the port: another fd on it shares them. A first
         * open raises DTR and RTS. */
        t->dtr = t->rts = true;
        for (int i = 0; i < MAX_FDS; i++)
                if (i != fd && tracked[i] && strcmp(tracked[i]->path, path) == 0) {
                        t->dtr = tracked[i]->dtr;
                        t->rts = tracked[i]->rts;
                        t->shadow_valid = tracked[i]->shadow_valid;
                        t->shadow = tracked[i]->shadow;
                        t->ishadow = tracked[i]->ishadow;
                        strcpy(t->last_cfg, tracked[i]->last_cfg);
                        pthread_mutex_unlock(&lock);
                        return;
                }
        report_lines_locked(t);
        pthread_mutex_unlock(&lock);
}

/* --- open ---
 * umockdev's preload keeps every emulated /dev node a process opens in a fixed table of
 * 50 fds (libumockdev-preload's fd_map; one more aborts the process with "fd_map_add():
 * overflow"), so a daemon could not open 64 simulated ports at once. Its tty nodes are
 * symlinks to pty slaves: the shim opens the slave itself, by the syscall, and umockdev
 * never sees the fd. Nothing is lost: every ioctl on a tracked fd is the shim's anyway,
 * and stat() of the path still goes through umockdev. */

/* The fd, -1 with errno, or -2 when path is not a testbed tty node. */
static int open_testbed_tty(int dirfd, const char *path, int flags, mode_t mode) {
        const char *root = getenv("UMOCKDEV_DIR");
        char node[PATH_MAX], target[PATH_MAX];
        ssize_t k;
        int n;

        if (!root || !path || strncmp(path, "/dev/", 5) != 0 || strstr(path, "/.") || strstr(path, "//"))
                return -2;
        (void) dirfd;   /* the path is absolute */
        n = snprintf(node, sizeof(node), "%s%s", root, path);
        if (n < 0 || (size_t) n >= sizeof(node))
                return -2;
        k = syscall(SYS_readlinkat, AT_FDCWD, node, target, sizeof(target) - 1);
        if (k <= 0)
                return -2;
        target[k] = 0;
        if (strncmp(target, "/dev/pts/", 9) != 0)
                return -2;
        return (int) syscall(SYS_openat, AT_FDCWD, target, flags, mode);
}

static mode_t get_mode(int flags, va_list ap) {
        return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t) va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
        NEXT(int, open, const char *, int, ...);
        va_list ap;
        mode_t mode;
        int fd;

        va_start(ap, flags);
        mode = get_mode(flags, ap);
        va_end(ap);
        fd = open_testbed_tty(AT_FDCWD, path, flags, mode);
        if (fd == -2)
                fd = next_open(path, flags, mode);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

int open64(const char *path, int flags, ...) {
        NEXT(int, open64, const char *, int, ...);
        va_list ap;
        mode_t mode;
        int fd;

        va_start(ap, flags);
        mode = get_mode(flags, ap);
        va_end(ap);
        fd = open_testbed_tty(AT_FDCWD, path, flags, mode);
        if (fd == -2)
                fd = next_open64(path, flags, mode);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
        NEXT(int, openat, int, const char *, int, ...);
        va_list ap;
        mode_t mode;
        int fd;

        va_start(ap, flags);
        mode = get_mode(flags, ap);
        va_end(ap);
        fd = open_testbed_tty(dirfd, path, flags, mode);
        if (fd == -2)
                fd = next_openat(dirfd, path, flags, mode);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
        NEXT(int, openat64, int, const char *, int, ...);
        va_list ap;
        mode_t mode;
        int fd;

        va_start(ap, flags);
        mode = get_mode(flags, ap);
        va_end(ap);
        fd = open_testbed_tty(dirfd, path, flags, mode);
        if (fd == -2)
                fd = next_openat64(dirfd, path, flags, mode);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

/* Fortified variants (_FORTIFY_SOURCE with flags not known at compile time). */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags) {
        NEXT(int, __open_2, const char *, int);
        int fd = open_testbed_tty(AT_FDCWD, path, flags, 0);
        if (fd == -2)
                fd = next___open_2(path, flags);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags) {
        NEXT(int, __open64_2, const char *, int);
        int fd = open_testbed_tty(AT_FDCWD, path, flags, 0);
        if (fd == -2)
                fd = next___open64_2(path, flags);
        if (fd >= 0)
                track(fd, path);
        return fd;
}

int close(int fd) {
        NEXT(int, close, int);

        if (fd >= 0 && fd < MAX_FDS) {
                pthread_mutex_lock(&lock);
                Tracked *t = tracked[fd];
                if (t) {
                        struct kernel_termios kt;
                        bool last = true;

                        for (int i = 0; i < MAX_FDS; i++)
                                if (i != fd && tracked[i] && strcmp(tracked[i]->path, t->path) == 0)
                                        last = false;
                        /* The last close drops DTR/RTS when HUPCL is set (and the port still exists). */
                        if (last && (t->dtr || t->rts) &&
                            kernel_ioctl(fd, TCGETS, &kt) >= 0 && (kt.c_cflag & HUPCL)) {
                                t->dtr = t->rts = false;
                                report_lines_locked(t);
                        }
                        /* Nobody is left to end a break: the driver does on close. */
                        if (last && t->brk)
                                report_locked(t->path, "BRK=0");
                        if (last)
                                log_call_locked(t->path, "close DTR=%d RTS=%d", t->dtr, t->rts);
                        untrack_locked(fd);
                }
                pthread_mutex_unlock(&lock);
        }
        return next_close(fd);
}

/* --- termios --- */

int tcsetattr(int fd, int action, const struct termios *tio) {
        static int (*real)(int, int, const struct termios *);
        struct termios copy;
        Tracked *t;
        int r;

        if (!real)
                real = libc_sym("tcsetattr");

        pthread_mutex_lock(&lock);
        t = get_tracked(fd);
        if (!t || !tio) {
                pthread_mutex_unlock(&lock);
                return real(fd, action, tio);
        }
        copy = *tio;
        copy.c_cflag = (copy.c_cflag & ~SHADOW_MASK) | CS8 | (tio->c_cflag & CSTOPB);
        copy.c_iflag &= ~ISHADOW_MASK;
        r = real(fd, action, &copy);
        if (r >= 0) {
                set_shadow_locked(t, tio->c_iflag, tio->c_cflag, speed_to_baud(cfgetospeed(tio)));
                log_call_locked(t->path, "TCSETS HUPCL=%d", !!(tio->c_cflag & HUPCL));
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int tcgetattr(int fd, struct termios *tio) {
        static int (*real)(int, struct termios *);
        Tracked *t;
        int r;

        if (!real)
                real = libc_sym("tcgetattr");

        r = real(fd, tio);
        if (r < 0)
                return r;
        pthread_mutex_lock(&lock);
        t = get_tracked(fd);
        if (t && t->shadow_valid) {
                tio->c_cflag = (tio->c_cflag & ~SHADOW_MASK) | t->shadow;
                tio->c_iflag = (tio->c_iflag & ~ISHADOW_MASK) | t->ishadow;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

int isatty(int fd) {
        NEXT(int, isatty, int);
        bool yes;

        pthread_mutex_lock(&lock);
        yes = get_tracked(fd);
        pthread_mutex_unlock(&lock);
        if (yes) {
                struct kernel_termios kt;
                if (kernel_ioctl(fd, TCGETS, &kt) >= 0)
                        return 1;
        }
        return next_isatty(fd);
}

/* --- realpath ---
 * umockdev 0.17's realpath() breaks on its emulated /dev nodes: they are symlinks to
 * /dev/pts/N, outside the testbed, and stripping the testbed prefix from that result
 * runs past the string (heap corruption with a NULL buffer). On a real system such a
 * path is the device node itself, so that is the answer. */

/* True when path names a /dev node the testbed emulates. */
static bool testbed_dev_node(const char *path) {
        const char *root = getenv("UMOCKDEV_DIR");
        char tb[PATH_MAX];
        struct stat st;
        int n;

        if (!root || !path || strncmp(path, "/dev/", 5) != 0 || strstr(path, "/.") || strstr(path, "//"))
                return false;
        n = snprintf(tb, sizeof(tb), "%s%s", root, path);
        if (n < 0 || (size_t) n >= sizeof(tb) || strlen(path) >= PATH_MAX)
                return false;
        return syscall(SYS_newfstatat, AT_FDCWD, tb, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

char *realpath(const char *path, char *resolved) {
        NEXT(char *, realpath, const char *, char *);

        if (testbed_dev_node(path))
                return resolved ? strcpy(resolved, path) : strdup(path);
        return next_realpath(path, resolved);
}

char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen);
char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen) {
        NEXT(char *, __realpath_chk, const char *, char *, size_t);

        if (testbed_dev_node(path) && (!resolved || strlen(path) < resolvedlen))
                return resolved ? strcpy(resolved, path) : strdup(path);
        return next___realpath_chk(path, resolved, resolvedlen);
}

char *canonicalize_file_name(const char *path) {
        NEXT(char *, canonicalize_file_name, const char *);

        if (testbed_dev_node(path))
                return strdup(path);
        return next_canonicalize_file_name(path);
}

/* --- ioctl --- */

static int modem_ioctl_locked(Tracked *t, int fd, unsigned long req, int *arg) {
        struct kernel_termios kt;
        bool dtr = t->dtr, rts = t->rts;

        /* A hung-up tty answers EIO, like an unplugged adapter. */
        if (kernel_ioctl(fd, TCGETS, &kt) < 0)
                return -1;
        if (!arg) {
                errno = EFAULT;
                return -1;
        }

        if (req != TIOCMGET)
                log_modem_locked(t, req, *arg);
        switch (req) {
        case TIOCMGET:
                *arg = (dtr ? TIOCM_DTR : 0) | (rts ? TIOCM_RTS : 0) | TIOCM_CTS | TIOCM_DSR | TIOCM_CAR;
                return 0;
        case TIOCMSET:
                dtr = *arg & TIOCM_DTR;
                rts = *arg & TIOCM_RTS;
                break;
        case TIOCMBIS:
                if (*arg & TIOCM_DTR)
                        dtr = true;
                if (*arg & TIOCM_RTS)
                        rts = true;
                break;
        case TIOCMBIC:
                if (*arg & TIOCM_DTR)
                        dtr = false;
                if (*arg & TIOCM_RTS)
                        rts = false;
                break;
        }

        if (dtr != t->dtr || rts != t->rts) {
                for (int i = 0; i < MAX_FDS; i++)
                        if (tracked[i] && strcmp(tracked[i]->path, t->path) == 0) {
                                tracked[i]->dtr = dtr;
                                tracked[i]->rts = rts;
                        }
                report_lines_locked(t);
        }
        return 0;
}

/* Records the port's break state (shared by its fds) and reports a change. */
static void set_break_locked(Tracked *t, bool on) {
        if (t->brk == on)
                return;
        for (int i = 0; i < MAX_FDS; i++)
                if (tracked[i] && strcmp(tracked[i]->path, t->path) == 0)
                        tracked[i]->brk = on;
        report_locked(t->path, "BRK=%d", on);
}

/* A timed break (TCSBRK 0, TCSBRKP, tcsendbreak): the kernel's call first (it drains,
 * and fails on a hung-up port), then the break as the peer sees it, on and off. */
static int break_pulse_locked(Tracked *t, int fd, unsigned long req, void *arg) {
        int r = kernel_ioctl(fd, req, arg);

        if (r >= 0 && !t->brk) {
                set_break_locked(t, true);
                set_break_locked(t, false);
        }
        return r;
}

static unsigned cflag_baud(const struct termios2 *k, bool has_speed) {
        if ((k->c_cflag & CBAUD) == BOTHER && has_speed)
                return k->c_ospeed;
        return speed_to_baud(k->c_cflag & CBAUD);
}

static int tty_ioctl_locked(Tracked *t, int fd, unsigned long req, void *arg) {
        switch (req) {
        case TIOCMGET: case TIOCMSET: case TIOCMBIS: case TIOCMBIC:
                return modem_ioctl_locked(t, fd, req, arg);

        case TIOCSBRK: case TIOCCBRK: {
                int r = kernel_ioctl(fd, req, arg);

                if (r >= 0) {
                        set_break_locked(t, req == TIOCSBRK);
                        log_call_locked(t->path, "%s", req == TIOCSBRK ? "TIOCSBRK" : "TIOCCBRK");
                }
                return r;
        }
        case TCSBRK:
                /* a non-zero argument only drains (tcdrain) */
                if ((uintptr_t) arg != 0)
                        return kernel_ioctl(fd, req, arg);
                return break_pulse_locked(t, fd, req, arg);
        case TCSBRKP:
                return break_pulse_locked(t, fd, req, arg);

        case TCGETS: case TCGETS2: {
                int r = kernel_ioctl(fd, req, arg);
                if (r >= 0 && arg && t->shadow_valid) {
                        struct kernel_termios *k = arg;
                        k->c_cflag = (k->c_cflag & ~SHADOW_MASK) | t->shadow;
                        k->c_iflag = (k->c_iflag & ~ISHADOW_MASK) | t->ishadow;
                }
                return r;
        }

        case TCSETS: case TCSETSW: case TCSETSF:
        case TCSETS2: case TCSETSW2: case TCSETSF2: {
                bool two = req == TCSETS2 || req == TCSETSW2 || req == TCSETSF2;
                struct termios2 k = {};
                tcflag_t want, iwant;
                int r;

                if (!arg) {
                        errno = EFAULT;
                        return -1;
                }
                memcpy(&k, arg, two ? sizeof(struct termios2) : sizeof(struct kernel_termios));
                want = k.c_cflag;
                iwant = k.c_iflag;
                k.c_cflag = (k.c_cflag & ~SHADOW_MASK) | CS8 | (want & CSTOPB);
                k.c_iflag &= ~ISHADOW_MASK;
                r = kernel_ioctl(fd, req, &k);
                if (r >= 0) {
                        k.c_cflag = want;
                        set_shadow_locked(t, iwant, want, cflag_baud(&k, two));
                        log_call_locked(t->path, "TCSETS HUPCL=%d", !!(want & HUPCL));
                }
                return r;
        }

        default:
                return kernel_ioctl(fd, req, arg);
        }
}

int ioctl(int fd, unsigned long req, ...) {
        NEXT(int, ioctl, int, unsigned long, ...);
        va_list ap;
        void *arg;
        Tracked *t;
        int r;

        va_start(ap, req);
        arg = va_arg(ap, void *);
        va_end(ap);

        pthread_mutex_lock(&lock);
        t = get_tracked(fd);
        if (t) {
                r = tty_ioctl_locked(t, fd, req, arg);
                pthread_mutex_unlock(&lock);
                return r;
        }
        pthread_mutex_unlock(&lock);
        return next_ioctl(fd, req, arg);
}

/* glibc's tcsendbreak() calls its internal ioctl, which the wrapper below never sees. */
int tcsendbreak(int fd, int duration) {
        static int (*real)(int, int);
        Tracked *t;
        int r;

        if (!real)
                real = libc_sym("tcsendbreak");

        pthread_mutex_lock(&lock);
        t = get_tracked(fd);
        if (!t) {
                pthread_mutex_unlock(&lock);
                return real(fd, duration);
        }
        /* As glibc: TCSBRK 0 for the default length, TCSBRKP in tenths of a second. */
        if (duration <= 0)
                r = break_pulse_locked(t, fd, TCSBRK, NULL);
        else
                r = break_pulse_locked(t, fd, TCSBRKP, (void *) (uintptr_t) ((duration + 99) / 100));
        pthread_mutex_unlock(&lock);
        return r;
}
