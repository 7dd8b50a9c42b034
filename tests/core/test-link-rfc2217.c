/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* link_open_rfc2217() against a scripted RFC 2217 server on 127.0.0.1 (a thread with its
 * own Telnet parser, so the bytes on the wire are checked independently of libtelnet):
 * the negotiation and 8E1 at open, data with 0xFF both ways among notifications and
 * Telnet commands, DTR/RTS and break commands, PURGE-DATA dropping stale bytes, and the
 * servers that go wrong: parity refused, commands never answered, the option refused,
 * the connection closed. The real servers (ser2net, pyserial) are
 * tests/system/test-integration-rfc2217.sh. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link-rfc2217.h"
#include "link.h"
#include "test-util.h"

#define IAC 255
#define SB 250
#define SE 240
#define WILL 251
#define WONT 252
#define DO 253
#define DONT 254
#define NOP 241
#define CPO 44

typedef enum Mode {
        MODE_GOOD,              /* answers everything, as asked */
        MODE_NO_PARITY,         /* answers SET-PARITY with NONE: leaves parity unset */
        MODE_SILENT,            /* agrees to the option, answers no command */
        MODE_NO_CONTROL,        /* answers the framing, ignores SET-CONTROL and PURGE */
        MODE_REFUSE_OPTION,     /* DONT COM-PORT-OPTION, no answers: a plain Telnet server */
} Mode;

typedef struct Server {
        Mode mode;
        int listen_fd, fd;
        pthread_t thread;
        char url[64];
        /* what the client sent, decoded */
        uint8_t data[4096];
        size_t n_data;
        uint8_t cmds[256][2];   /* COM-PORT-OPTION command, its last value byte */
        uint32_t baud;
        size_t n_cmds;
        unsigned segments_with_two_controls;
        bool will_binary, do_binary;
} Server;

static void send_all(int fd, const void *p, size_t n) {
        const uint8_t *b = p;

        while (n > 0) {
                ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return;
                b += k;
                n -= (size_t) k;
        }
}

/* IAC SB 44 code value... IAC SE, 0xFF in the value doubled. */
static void send_sb(int fd, uint8_t code, const uint8_t *v, size_t n) {
        uint8_t b[32];
        size_t k = 0;

        b[k++] = IAC;
        b[k++] = SB;
        b[k++] = CPO;
        b[k++] = code;
        for (size_t i = 0; i < n; i++) {
                b[k++] = v[i];
                if (v[i] == IAC)
                        b[k++] = IAC;
        }
        b[k++] = IAC;
        b[k++] = SE;
        send_all(fd, b, k);
}

/* A client's command: answer as the mode says. */
static void on_command(Server *s, const uint8_t *sb, size_t n) {
        uint8_t cmd = sb[0], v[4];
        size_t vn = n - 1;

        ASSERT_TRUE(n >= 2 && n <= 5);
        memcpy(v, sb + 1, vn);
        if (s->n_cmds < ELEMENTSOF(s->cmds)) {
                s->cmds[s->n_cmds][0] = cmd;
                s->cmds[s->n_cmds][1] = v[vn - 1];
                s->n_cmds++;
        }
        if (cmd == 1)
                s->baud = (uint32_t) v[0] << 24 | (uint32_t) v[1] << 16 | (uint32_t) v[2] << 8 | v[3];

        switch (s->mode) {
        case MODE_SILENT:
        case MODE_REFUSE_OPTION:
                return;
        case MODE_NO_CONTROL:
                if (cmd == 5 || cmd == 12)
                        return;
                break;
        case MODE_NO_PARITY:
                if (cmd == 3)
                        v[0] = 1;       /* NONE */
                break;
        default:
                break;
        }
        if (cmd == 12) {
                /* bytes the UART delivered before the purge: the client must drop them */
                static const uint8_t stale[] = { 0x79, IAC, IAC, 0x1F };
                send_all(s->fd, stale, sizeof stale);
        }
        send_sb(s->fd, (uint8_t) (cmd + 100), v, vn);
}

/* A data byte from the client: echoed, with Telnet noise before it (a NOP, a
 * NOTIFY-MODEMSTATE), 0xFF doubled. */
static void on_data(Server *s, uint8_t c) {
        uint8_t b[] = { IAC, NOP, c, IAC };

        if (s->n_data < sizeof s->data)
                s->data[s->n_data++] = c;
        send_sb(s->fd, 107, (const uint8_t[]) { 0x30 }, 1);
        send_all(s->fd, b, c == IAC ? 4 : 3);
}

static void *server_thread(void *userdata) {
        enum { S_DATA, S_IAC, S_OPT, S_SB, S_SB_IAC } st = S_DATA;
        Server *s = userdata;
        uint8_t verb = 0, sb[16], buf[512];
        size_t n_sb = 0;

        s->fd = accept(s->listen_fd, NULL, NULL);
        if (s->fd < 0)
                return NULL;
        /* Servers offer first (ser2net, pyserial): binary, and ask for the option. */
        send_all(s->fd, (const uint8_t[]) { IAC, WILL, 0, IAC, DO, 0 }, 6);

        for (;;) {
                ssize_t k = recv(s->fd, buf, sizeof buf, 0);
                unsigned controls = 0;

                if (k <= 0)
                        break;
                for (ssize_t i = 0; i < k; i++) {
                        uint8_t c = buf[i];

                        switch (st) {
                        case S_DATA:
                                if (c == IAC)
                                        st = S_IAC;
                                else
                                        on_data(s, c);
                                break;
                        case S_IAC:
                                st = S_DATA;
                                if (c == IAC)
                                        on_data(s, c);
                                else if (c >= WILL && c <= DONT) {
                                        verb = c;
                                        st = S_OPT;
                                } else if (c == SB) {
                                        n_sb = 0;
                                        st = S_SB;
                                }
                                break;
                        case S_OPT:
                                st = S_DATA;
                                if (verb == WILL && c == 0)
                                        s->will_binary = true;
                                if (verb == DO && c == 0)
                                        s->do_binary = true;
                                if (verb == WILL && c == CPO) {
                                        uint8_t a[] = { IAC, s->mode == MODE_REFUSE_OPTION ? DONT : DO, CPO };
                                        send_all(s->fd, a, 3);
                                } else if (verb == WILL && c != 0)
                                        send_all(s->fd, (const uint8_t[]) { IAC, DONT, c }, 3);
                                else if (verb == DO && c != 0)
                                        send_all(s->fd, (const uint8_t[]) { IAC, WONT, c }, 3);
                                break;
                        case S_SB:
                                if (c == IAC)
                                        st = S_SB_IAC;
                                else if (n_sb < sizeof sb)
                                        sb[n_sb++] = c;
                                break;
                        case S_SB_IAC:
                                if (c == IAC) {
                                        if (n_sb < sizeof sb)
                                                sb[n_sb++] = c;
                                        st = S_SB;
                                } else {
                                        ASSERT_EQ(c, SE);
                                        st = S_DATA;
                                        ASSERT_TRUE(n_sb >= 2 && sb[0] == CPO);
                                        if (sb[1] == 5 && sb[2] >= 8 && sb[2] <= 12)
                                                controls++;
                                        on_command(s, sb + 1, n_sb - 1);
                                }
                                break;
                        }
                }
                if (controls == 2)
                        s->segments_with_two_controls++;
        }
        close(s->fd);
        return NULL;
}

static void server_start(Server *s, Mode mode) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;

        memset(s, 0, sizeof *s);
        s->mode = mode;
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(s->listen_fd >= 0);
        ASSERT_OK(bind(s->listen_fd, (struct sockaddr *) &sa, sizeof sa));
        ASSERT_OK(listen(s->listen_fd, 1));
        ASSERT_OK(getsockname(s->listen_fd, (struct sockaddr *) &sa, &len));
        snprintf(s->url, sizeof s->url, "rfc2217://127.0.0.1:%u", ntohs(sa.sin_port));
        ASSERT_EQ(pthread_create(&s->thread, NULL, server_thread, s), 0);
}

static void server_join(Server *s) {
        ASSERT_EQ(pthread_join(s->thread, NULL), 0);
        close(s->listen_fd);
}

/* The index of the first command cmd with value v at or after from, or -1. */
static int find_cmd(const Server *s, size_t from, uint8_t cmd, uint8_t v) {
        for (size_t i = from; i < s->n_cmds; i++)
                if (s->cmds[i][0] == cmd && s->cmds[i][1] == v)
                        return (int) i;
        return -1;
}

static void test_urls(void) {
        ASSERT_EQ(link_transport_from_url("rfc2217://host:4001"), LINK_TRANSPORT_RFC2217);
        ASSERT_EQ(link_transport_from_url("tcp://host:4001"), LINK_TRANSPORT_TCP);
        ASSERT_EQ(link_transport_from_url("/dev/rfc2217://x"), LINK_TRANSPORT_SERIAL);
        ASSERT_STREQ(link_transport_to_string(LINK_TRANSPORT_RFC2217), "rfc2217");
        ASSERT_STREQ(link_transport_scheme(LINK_TRANSPORT_RFC2217), "rfc2217://");
        ASSERT_TRUE(link_transport_caps(LINK_TRANSPORT_RFC2217) & LINK_CAP_LINE_SETTINGS);
        ASSERT_TRUE(!(link_transport_caps(LINK_TRANSPORT_RFC2217) & LINK_CAP_DEVICE_NODE));
        ASSERT_OK(link_url_check("rfc2217://192.0.2.1:2217"));
        ASSERT_OK(link_url_check("rfc2217://[::1]:2217"));
        ASSERT_ERR(link_url_check("rfc2217://host"), EINVAL);
        ASSERT_ERR(link_url_check("rfc2217://:2217"), EINVAL);
        ASSERT_ERR(link_url_check("rfc2217://host:99999"), EINVAL);
        ASSERT_ERR(link_url_check("rfc2217://host:22/x"), EINVAL);
}

static void test_good_server(void) {
        static const uint8_t out[] = { 0x7F, 0xFF, 0x00, 0xFF, 0xFF, 0x11, 0xF0 };
        _cleanup_(link_freep) Link *l = NULL;
        uint8_t in[sizeof out];
        Server s;
        int i;

        server_start(&s, MODE_GOOD);
        /* 65535 = 00 00 FF FF: the value's 0xFF must be escaped both ways */
        ASSERT_OK(link_open_url(s.url, 65535, &l));
        ASSERT_EQ(l->baud, 65535);
        ASSERT_TRUE(l->caps & LINK_CAP_LINE_SETTINGS);

        /* data both ways, 0xFF included, among notifications and NOPs */
        ASSERT_OK(link_write(l, out, sizeof out));
        ASSERT_OK(link_read_exact(l, in, sizeof in, now_usec() + 5 * USEC_PER_SEC));
        ASSERT_MEMEQ(in, out, sizeof out);
        ASSERT_ERR(link_read(l, in, 1, now_usec() + 50 * USEC_PER_MSEC), ETIMEDOUT);

        ASSERT_OK(link_set_baud(l, 115200));
        ASSERT_EQ(l->baud, 115200);
        ASSERT_OK(link_set_lines(l, 1, 0));
        ASSERT_OK(link_set_lines(l, -1, 1));
        ASSERT_OK(link_set_lines(l, 0, 0));
        ASSERT_OK(link_set_break(l, true));
        ASSERT_OK(link_set_break(l, false));

        /* the server sends stale bytes before answering PURGE-DATA: all dropped */
        ASSERT_OK(link_flush_input(l));
        ASSERT_ERR(link_read(l, in, 1, now_usec() + 100 * USEC_PER_MSEC), ETIMEDOUT);
        ASSERT_OK(link_write(l, (const uint8_t[]) { 0x42 }, 1));
        ASSERT_OK(link_read_exact(l, in, 1, now_usec() + 5 * USEC_PER_SEC));
        ASSERT_EQ(in[0], 0x42);

        l = link_free(l);
        server_join(&s);

        ASSERT_TRUE(s.will_binary && s.do_binary);
        ASSERT_EQ(s.n_data, sizeof out + 1);
        ASSERT_MEMEQ(s.data, out, sizeof out);
        /* the framing, in order, then the line commands as asked */
        ASSERT_EQ(s.cmds[0][0], 1);
        ASSERT_EQ(find_cmd(&s, 0, 2, 8), 1);
        ASSERT_EQ(find_cmd(&s, 0, 3, 3), 2);
        ASSERT_EQ(find_cmd(&s, 0, 4, 1), 3);
        ASSERT_EQ(s.baud, 115200);
        i = find_cmd(&s, 0, 5, 8);              /* DTR on */
        ASSERT_TRUE(i > 0);
        ASSERT_EQ(find_cmd(&s, 0, 5, 12), i + 1);       /* RTS off, right after */
        ASSERT_EQ(find_cmd(&s, 0, 5, 11), i + 2);       /* RTS on alone */
        ASSERT_EQ(find_cmd(&s, 0, 5, 9), i + 3);
        ASSERT_EQ(find_cmd(&s, (size_t) i + 4, 5, 12), i + 4);
        ASSERT_EQ(find_cmd(&s, 0, 5, 5), i + 5);        /* break on, off */
        ASSERT_EQ(find_cmd(&s, 0, 5, 6), i + 6);
        ASSERT_EQ(find_cmd(&s, 0, 12, 1), i + 7);       /* purge the server's receive buffer */
        /* a DTR+RTS step is one write: both commands in one segment (loopback keeps it) */
        ASSERT_TRUE(s.segments_with_two_controls >= 2);
}

/* Servers that do not set 8E1, or do not speak the option: the open fails, saying which. */
static void test_refused(void) {
        static const struct {
                Mode mode;
                int error;
        } cases[] = {
                { MODE_NO_PARITY,     LINK_ENOPARITY },   /* answers NONE to SET-PARITY EVEN */
                { MODE_SILENT,        LINK_ENOPARITY },   /* agreed to the option, confirms nothing */
                { MODE_REFUSE_OPTION, EPROTONOSUPPORT },  /* DONT COM-PORT-OPTION */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Link *l = NULL;
                Server s;

                server_start(&s, cases[i].mode);
                ASSERT_ERR(link_open_url(s.url, 115200, &l), cases[i].error);
                ASSERT_TRUE(!l);
                server_join(&s);
                ASSERT_TRUE(find_cmd(&s, 0, 3, 3) >= 0);        /* even parity was asked for */
        }
}

static void test_control_ignored(void) {
        _cleanup_(link_freep) Link *l = NULL;
        uint64_t t0;
        uint8_t b;
        Server s;

        /* framing answered, line commands and purges ignored: tolerated, waited for once */
        server_start(&s, MODE_NO_CONTROL);
        ASSERT_OK(link_open_url(s.url, 115200, &l));
        ASSERT_OK(link_set_lines(l, 1, 1));
        t0 = now_usec();
        ASSERT_OK(link_set_lines(l, 0, 0));
        ASSERT_OK(link_set_break(l, true));
        ASSERT_OK(link_flush_input(l));
        ASSERT_TRUE(now_usec() - t0 < USEC_PER_SEC);
        ASSERT_OK(link_write(l, (const uint8_t[]) { 0x7F }, 1));
        ASSERT_OK(link_read_exact(l, &b, 1, now_usec() + 5 * USEC_PER_SEC));
        ASSERT_EQ(b, 0x7F);
        l = link_free(l);
        server_join(&s);
}

static void test_server_closes(void) {
        _cleanup_(link_freep) Link *l = NULL;
        uint8_t b;
        Server s;

        server_start(&s, MODE_GOOD);
        ASSERT_OK(link_open_url(s.url, 115200, &l));
        shutdown(s.fd, SHUT_RDWR);
        ASSERT_ERR(link_read(l, &b, 1, now_usec() + 5 * USEC_PER_SEC), ENODEV);
        l = link_free(l);
        server_join(&s);
}

static void test_connection_refused(void) {
        Link *l = NULL;
        Server s;

        /* a port nobody listens on any more */
        server_start(&s, MODE_GOOD);
        shutdown(s.listen_fd, SHUT_RDWR);
        server_join(&s);
        ASSERT_ERR(link_open_url(s.url, 115200, &l), ECONNREFUSED);
}

int main(void) {
        TEST(test_urls);
        TEST(test_good_server);
        TEST(test_refused);
        TEST(test_control_ignored);
        TEST(test_server_closes);
        TEST(test_connection_refused);
        return 0;
}
