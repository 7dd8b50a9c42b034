/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The generic link wrappers (against a fake backend that hands out data in small
 * chunks) and the fd backend (socketpair, pty): deadlines, exact reads, write-all,
 * hang-up, flush, signals. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include "link.h"
#include "test-util.h"

/* ---- a fake backend: serves a buffer at most `chunk` bytes a read ---- */

typedef struct FakeLink {
        Link link;
        const uint8_t *data;
        size_t size, pos, chunk;
        unsigned reads, writes, frees, bauds;
        unsigned breaks_on, breaks_off;
        int break_error;        /* set_break's answer */
        bool zero_reads;        /* answer 0 (no error, no data) when empty */
        bool *freed;
} FakeLink;

static int fake_read(Link *l, void *buf, size_t n, uint64_t deadline_usec) {
        FakeLink *f = (FakeLink *) l;
        size_t k;

        f->reads++;
        if (f->pos == f->size) {
                if (f->zero_reads)
                        return 0;
                sleep_usec(deadline_usec > now_usec() ? deadline_usec - now_usec() : 0);
                return -ETIMEDOUT;
        }
        k = MIN(MIN(n, f->chunk), f->size - f->pos);
        memcpy(buf, f->data + f->pos, k);
        f->pos += k;
        return (int) k;
}

static int fake_write(Link *l, const void *buf, size_t n) {
        ((FakeLink *) l)->writes++;
        return 0;
}

static int fake_set_baud(Link *l, unsigned baud) {
        ((FakeLink *) l)->bauds++;
        return 0;
}

static int fake_set_break(Link *l, bool on) {
        FakeLink *f = (FakeLink *) l;

        if (f->break_error < 0)
                return f->break_error;
        if (on)
                f->breaks_on++;
        else
                f->breaks_off++;
        return 0;
}

static void fake_free(Link *l) {
        FakeLink *f = (FakeLink *) l;

        *f->freed = true;
        free(f);
}

/* No drain, flush_input, set_lines or set_break: the wrappers must cope with missing ops. */
static const LinkOps fake_ops = {
        .read = fake_read,
        .write = fake_write,
        .set_baud = fake_set_baud,
        .free = fake_free,
};

static FakeLink *fake_new(const uint8_t *data, size_t size, size_t chunk, bool *freed) {
        FakeLink *f = calloc(1, sizeof(*f));

        ASSERT_TRUE(f);
        f->link.ops = &fake_ops;
        f->data = data;
        f->size = size;
        f->chunk = chunk;
        f->freed = freed;
        *freed = false;
        return f;
}

static void test_generic_read_exact(void) {
        static const uint8_t data[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
        uint8_t buf[16] = {};
        bool freed;
        FakeLink *f = fake_new(data, sizeof(data), 3, &freed);

        /* 7 bytes in chunks of 3: three backend reads. */
        ASSERT_OK(link_read_exact(&f->link, buf, 7, now_usec() + USEC_PER_SEC));
        ASSERT_MEMEQ(buf, data, 7);
        ASSERT_EQ(f->reads, 3);

        /* link_read hands back what one backend read gave. */
        ASSERT_EQ(link_read(&f->link, buf, 16, now_usec() + USEC_PER_SEC), 3);
        ASSERT_MEMEQ(buf, data + 7, 3);

        /* Empty: the deadline passes. */
        uint64_t t0 = now_usec();
        ASSERT_ERR(link_read_exact(&f->link, buf, 2, t0 + 20 * USEC_PER_MSEC), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 >= 20 * USEC_PER_MSEC);

        /* A backend that says "0 bytes" must not make read_exact spin past the deadline. */
        f->zero_reads = true;
        t0 = now_usec();
        ASSERT_ERR(link_read_exact(&f->link, buf, 1, t0 + 10 * USEC_PER_MSEC), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 < USEC_PER_SEC);

        /* Zero-length calls succeed without touching the backend. */
        unsigned reads = f->reads;
        ASSERT_EQ(link_read(&f->link, buf, 0, 0), 0);
        ASSERT_OK(link_read_exact(&f->link, buf, 0, 0));
        ASSERT_EQ(f->reads, reads);

        ASSERT_TRUE(!freed);
        ASSERT_TRUE(link_free(&f->link) == NULL);
        ASSERT_TRUE(freed);
        ASSERT_TRUE(link_free(NULL) == NULL);
}

static void test_generic_dispatch(void) {
        bool freed;
        FakeLink *f = fake_new(NULL, 0, 1, &freed);
        uint8_t b = 0;

        ASSERT_OK(link_write(&f->link, &b, 1));
        ASSERT_EQ(f->writes, 1);
        ASSERT_OK(link_write(&f->link, &b, 0));
        ASSERT_EQ(f->writes, 1);

        ASSERT_OK(link_set_baud(&f->link, 57600));
        ASSERT_EQ(f->bauds, 1);
        ASSERT_EQ(f->link.baud, 57600);
        ASSERT_ERR(link_set_baud(&f->link, 0), EINVAL);

        /* Missing ops: drain is a no-op, the others say so. */
        ASSERT_OK(link_drain(&f->link));
        ASSERT_ERR(link_flush_input(&f->link), EOPNOTSUPP);
        ASSERT_ERR(link_set_lines(&f->link, 1, 0), EOPNOTSUPP);
        ASSERT_OK(link_set_lines(&f->link, -1, -1));
        /* No set_break: a break is a hint to a reset circuit, so it succeeds as nothing. */
        ASSERT_OK(link_set_break(&f->link, true));
        ASSERT_OK(link_set_break(&f->link, false));
        ASSERT_ERR(link_set_break(NULL, true), EINVAL);

        /* With the op: dispatched, its result passed through. */
        {
                LinkOps ops = fake_ops;

                ops.set_break = fake_set_break;
                f->link.ops = &ops;
                ASSERT_OK(link_set_break(&f->link, true));
                ASSERT_EQ(f->breaks_on, 1);
                ASSERT_OK(link_set_break(&f->link, false));
                ASSERT_EQ(f->breaks_off, 1);
                f->break_error = -EIO;
                ASSERT_ERR(link_set_break(&f->link, true), EIO);
                f->link.ops = &fake_ops;
        }

        ASSERT_ERR(link_read(NULL, &b, 1, 0), EINVAL);
        ASSERT_ERR(link_write(&f->link, NULL, 1), EINVAL);
        link_free(&f->link);
        ASSERT_TRUE(freed);
}

static void test_wire_usec(void) {
        bool freed;
        FakeLink *f = fake_new(NULL, 0, 1, &freed);

        /* Unknown rate: instant. */
        ASSERT_EQ(link_wire_usec(&f->link, 100), 0);
        f->link.baud = 110000;
        ASSERT_EQ(link_wire_usec(&f->link, 1000), 100000);     /* 11000 bits */
        ASSERT_EQ(link_wire_usec(&f->link, 0), 0);
        f->link.baud = 115200;
        ASSERT_EQ(link_wire_usec(&f->link, 1), 96);             /* 95.49 rounded up */
        ASSERT_EQ(link_wire_usec(&f->link, 256), 24445);        /* 24444.4 rounded up */
        link_free(&f->link);
}

/* ---- the fd backend ---- */

static void socketpair_link(Link **ret, int *ret_peer) {
        int sv[2];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(link_open_fd(sv[0], "test", ret));
        *ret_peer = sv[1];
}

static void test_fd_open(void) {
        Link *l;
        int sv[2], fd;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        fd = sv[0];
        ASSERT_OK(link_open_fd(fd, NULL, &l));
        char expect[32];
        snprintf(expect, sizeof(expect), "fd:%i", fd);
        ASSERT_STREQ(l->name, expect);
        ASSERT_EQ(l->baud, 0);
        ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);

        /* set_baud records, set_lines and set_break do nothing, drain is trivial on a socket. */
        ASSERT_OK(link_set_baud(l, 115200));
        ASSERT_EQ(l->baud, 115200);
        ASSERT_OK(link_set_lines(l, 1, 0));
        ASSERT_OK(link_set_break(l, true));
        ASSERT_OK(link_set_break(l, false));
        ASSERT_OK(link_drain(l));

        link_free(l);
        /* The link owned the fd: it is closed now. */
        ASSERT_TRUE(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
        close(sv[1]);

        ASSERT_ERR(link_open_fd(-1, "x", &l), EINVAL);
}

static void test_fd_read_deadline(void) {
        Link *l;
        int peer;
        uint8_t buf[4];
        uint64_t t0, dt;

        socketpair_link(&l, &peer);

        t0 = now_usec();
        ASSERT_ERR(link_read(l, buf, sizeof(buf), t0 + 50 * USEC_PER_MSEC), ETIMEDOUT);
        dt = now_usec() - t0;
        ASSERT_TRUE(dt >= 50 * USEC_PER_MSEC);
        ASSERT_TRUE(dt < 1000 * USEC_PER_MSEC);

        /* Data already waiting is returned even when the deadline is past. */
        ASSERT_EQ(write(peer, "\x79\x1f", 2), 2);
        ASSERT_EQ(link_read(l, buf, sizeof(buf), 0), 2);
        ASSERT_EQ(buf[0], 0x79);
        ASSERT_EQ(buf[1], 0x1f);

        /* A past deadline with nothing waiting fails at once. */
        t0 = now_usec();
        ASSERT_ERR(link_read(l, buf, 1, 0), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 < 100 * USEC_PER_MSEC);

        link_free(l);
        close(peer);
}

typedef struct Chunks {
        int fd;
        bool close_only;
} Chunks;

/* Writes four chunks with short pauses. The pauses only make split arrivals likely
 * (read_exact must be right either way; the fake backend above proves the split
 * case deterministically). */
static void *chunk_writer(void *arg) {
        Chunks *c = arg;
        static const char *chunks[] = { "ab", "cde", "f", "ghij" };

        if (c->close_only) {
                close(c->fd);
                return NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(chunks); i++) {
                ASSERT_EQ(write(c->fd, chunks[i], strlen(chunks[i])), (ssize_t) strlen(chunks[i]));
                sleep_usec(3 * USEC_PER_MSEC);
        }
        return NULL;
}

static void test_fd_read_exact_chunks(void) {
        Link *l;
        int peer;
        pthread_t t;
        uint8_t buf[10];

        socketpair_link(&l, &peer);
        Chunks c = { .fd = peer };
        ASSERT_EQ(pthread_create(&t, NULL, chunk_writer, &c), 0);
        ASSERT_OK(link_read_exact(l, buf, 10, now_usec() + 5 * USEC_PER_SEC));
        ASSERT_MEMEQ(buf, "abcdefghij", 10);
        ASSERT_EQ(pthread_join(t, NULL), 0);

        /* Not enough bytes: times out. */
        ASSERT_EQ(write(peer, "xy", 2), 2);
        ASSERT_ERR(link_read_exact(l, buf, 3, now_usec() + 30 * USEC_PER_MSEC), ETIMEDOUT);

        link_free(l);
        close(peer);
}

static void test_fd_hangup(void) {
        Link *l;
        int peer;
        uint8_t buf[4];

        socketpair_link(&l, &peer);
        ASSERT_EQ(write(peer, "z", 1), 1);
        close(peer);
        /* Bytes sent before the close are still delivered, then the hang-up. */
        ASSERT_EQ(link_read(l, buf, sizeof(buf), now_usec() + USEC_PER_SEC), 1);
        ASSERT_EQ(buf[0], 'z');
        ASSERT_ERR(link_read(l, buf, sizeof(buf), now_usec() + USEC_PER_SEC), ENODEV);
        ASSERT_ERR(link_read_exact(l, buf, 2, now_usec() + USEC_PER_SEC), ENODEV);
        /* Writing to a closed peer: -ENODEV, and no SIGPIPE kills us. */
        ASSERT_ERR(link_write(l, "abc", 3), ENODEV);
        ASSERT_ERR(link_flush_input(l), ENODEV);
        link_free(l);
}

static void test_fd_hangup_during_wait(void) {
        Link *l;
        int peer;
        pthread_t t;
        uint8_t buf[4];
        uint64_t t0;

        /* The peer closes while (or before) we wait: the wait ends at once either way. */
        socketpair_link(&l, &peer);
        Chunks c = { .fd = peer, .close_only = true };
        t0 = now_usec();
        ASSERT_EQ(pthread_create(&t, NULL, chunk_writer, &c), 0);
        ASSERT_ERR(link_read(l, buf, 1, t0 + 5 * USEC_PER_SEC), ENODEV);
        ASSERT_TRUE(now_usec() - t0 < USEC_PER_SEC);
        ASSERT_EQ(pthread_join(t, NULL), 0);
        link_free(l);
}

static void test_fd_flush_input(void) {
        Link *l;
        int peer;
        uint8_t big[3000], buf[4];

        socketpair_link(&l, &peer);
        memset(big, 0x55, sizeof(big));
        ASSERT_EQ(write(peer, big, sizeof(big)), (ssize_t) sizeof(big));

        uint64_t t0 = now_usec();
        ASSERT_OK(link_flush_input(l));
        ASSERT_TRUE(now_usec() - t0 < 100 * USEC_PER_MSEC);    /* never blocks */
        ASSERT_ERR(link_read(l, buf, 1, now_usec() + 20 * USEC_PER_MSEC), ETIMEDOUT);

        /* Nothing to flush: fine, and new bytes after the flush are kept. */
        ASSERT_OK(link_flush_input(l));
        ASSERT_EQ(write(peer, "\x79", 1), 1);
        ASSERT_EQ(link_read(l, buf, 1, now_usec() + USEC_PER_SEC), 1);
        ASSERT_EQ(buf[0], 0x79);

        link_free(l);
        close(peer);
}

typedef struct Sink {
        int fd;
        uint8_t *buf;
        size_t size, got;
} Sink;

static void *sink_reader(void *arg) {
        Sink *s = arg;

        while (s->got < s->size) {
                ssize_t k = read(s->fd, s->buf + s->got, s->size - s->got);
                if (k <= 0)
                        break;
                s->got += (size_t) k;
        }
        return NULL;
}

static void test_fd_write_all(void) {
        const size_t size = 1024 * 1024;        /* far beyond the socket buffer */
        _cleanup_free_ uint8_t *src = malloc(size), *dst = malloc(size);
        Link *l;
        int peer;
        pthread_t t;

        ASSERT_TRUE(src && dst);
        for (size_t i = 0; i < size; i++)
                src[i] = (uint8_t) (i * 7 + (i >> 9));
        socketpair_link(&l, &peer);
        Sink s = { .fd = peer, .buf = dst, .size = size };
        ASSERT_EQ(pthread_create(&t, NULL, sink_reader, &s), 0);
        ASSERT_OK(link_write(l, src, size));
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_EQ(s.got, size);
        ASSERT_TRUE(memcmp(src, dst, size) == 0);
        link_free(l);
        close(peer);
}

/* A peer that stops reading: the write gives up (a second without progress). */
static void test_fd_write_stall(void) {
        const size_t size = 4 * 1024 * 1024;
        _cleanup_free_ uint8_t *src = calloc(1, size);
        Link *l;
        int peer;
        uint64_t t0, dt;

        ASSERT_TRUE(src);
        socketpair_link(&l, &peer);
        t0 = now_usec();
        ASSERT_ERR(link_write(l, src, size), ETIMEDOUT);
        dt = now_usec() - t0;
        ASSERT_TRUE(dt >= USEC_PER_SEC);
        ASSERT_TRUE(dt < 5 * USEC_PER_SEC);
        link_free(l);
        close(peer);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
        alarms++;
}

static void test_fd_eintr(void) {
        struct sigaction sa = { .sa_handler = on_alarm }, old;
        struct itimerval it = { .it_interval = { 0, 5000 }, .it_value = { 0, 5000 } }, off = {};
        Link *l;
        int peer;
        uint8_t b;
        uint64_t t0;

        /* No SA_RESTART: every tick interrupts the wait. */
        ASSERT_OK(sigaction(SIGALRM, &sa, &old));
        socketpair_link(&l, &peer);
        alarms = 0;
        ASSERT_OK(setitimer(ITIMER_REAL, &it, NULL));
        t0 = now_usec();
        ASSERT_ERR(link_read(l, &b, 1, t0 + 80 * USEC_PER_MSEC), ETIMEDOUT);
        ASSERT_TRUE(now_usec() - t0 >= 80 * USEC_PER_MSEC);
        ASSERT_OK(setitimer(ITIMER_REAL, &off, NULL));
        ASSERT_TRUE(alarms >= 2);
        ASSERT_OK(sigaction(SIGALRM, &old, NULL));
        link_free(l);
        close(peer);
}

static void test_pty(void) {
        Link *l;
        int master, slave;
        struct termios tio;
        uint8_t buf[8];

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
                fprintf(stderr, "no pty, skipping the pty checks\n");
                if (master >= 0)
                        close(master);
                return;
        }
        slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(slave >= 0);
        ASSERT_OK(tcgetattr(slave, &tio));
        cfmakeraw(&tio);
        ASSERT_OK(tcsetattr(slave, TCSANOW, &tio));
        ASSERT_OK(link_open_fd(master, "pty", &l));

        /* Both directions. */
        ASSERT_OK(link_write(l, "\x7f", 1));
        ASSERT_EQ(read(slave, buf, 1), 1);
        ASSERT_EQ(buf[0], 0x7f);
        ASSERT_EQ(write(slave, "\x79", 1), 1);
        ASSERT_OK(link_read_exact(l, buf, 1, now_usec() + USEC_PER_SEC));
        ASSERT_EQ(buf[0], 0x79);
        ASSERT_OK(link_drain(l));

        /* flush_input on a tty: wait until the bytes have reached the master, flush,
         * and nothing is left. */
        ASSERT_EQ(write(slave, "stale", 5), 5);
        struct pollfd p = { .fd = master, .events = POLLIN };
        ASSERT_EQ(poll(&p, 1, 5000), 1);
        ASSERT_OK(link_flush_input(l));
        ASSERT_ERR(link_read(l, buf, 1, now_usec() + 20 * USEC_PER_MSEC), ETIMEDOUT);

        /* The other side goes away: -ENODEV, not a timeout. */
        close(slave);
        uint64_t t0 = now_usec();
        ASSERT_ERR(link_read(l, buf, 1, t0 + 5 * USEC_PER_SEC), ENODEV);
        ASSERT_TRUE(now_usec() - t0 < USEC_PER_SEC);
        link_free(l);
}

int main(void) {
        TEST(test_generic_read_exact);
        TEST(test_generic_dispatch);
        TEST(test_wire_usec);
        TEST(test_fd_open);
        TEST(test_fd_read_deadline);
        TEST(test_fd_read_exact_chunks);
        TEST(test_fd_hangup);
        TEST(test_fd_hangup_during_wait);
        TEST(test_fd_flush_input);
        TEST(test_fd_write_all);
        TEST(test_fd_write_stall);
        TEST(test_fd_eintr);
        TEST(test_pty);
        return 0;
}
