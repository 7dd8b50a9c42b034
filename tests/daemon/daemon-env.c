/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The environment of the daemon integration tests (see daemon-env.h). */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <limits.h>

#include "daemon-env.h"
#include "stm32isp.h"
#include "macro.h"
#include "test-util.h"

static const char *tmpdir(void) {
        const char *t = getenv("TMPDIR");
        return t && *t ? t : "/tmp";
}

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int start_bus(DaemonEnv *e) {
        char conf[512], dir[256];
        int pfd[2];
        FILE *f;
        pid_t pid;
        size_t n = 0;

        if (access("/usr/bin/dbus-daemon", X_OK) < 0)
                return -EOPNOTSUPP;
        snprintf(dir, sizeof dir, "%s/bus.XXXXXX", tmpdir());
        if (!mkdtemp(dir))
                return -errno;
        snprintf(conf, sizeof conf, "%s/bus.conf", dir);
        f = fopen(conf, "we");
        if (!f)
                return -errno;
        fprintf(f,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>session</type>\n"
                "  <listen>unix:dir=%s</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n"
                "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                "    <allow eavesdrop=\"true\"/>\n"
                "    <allow own=\"*\"/>\n"
                "  </policy>\n"
                "</busconfig>\n", dir);
        fclose(f);

        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char cf[600], pa[32];

                dup2(pfd[1], 3);
                snprintf(cf, sizeof cf, "--config-file=%s", conf);
                snprintf(pa, sizeof pa, "--print-address=3");
                execl("/usr/bin/dbus-daemon", "dbus-daemon", cf, "--nofork", "--nopidfile", pa, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        e->bus_pid = pid;
        for (;;) {
                ssize_t k = read(pfd[0], e->address + n, sizeof e->address - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (memchr(e->address, '\n', n))
                        break;
        }
        close(pfd[0]);
        e->address[n] = '\0';
        e->address[strcspn(e->address, "\n")] = '\0';
        return n > 0 ? 0 : -EIO;
}

/* Reads the daemon's sd_notify datagrams until READY=1 (or timeout). */
static int notify_wait(DaemonEnv *e, const char *what, uint64_t timeout_usec) {
        uint64_t deadline = now_us() + timeout_usec;

        for (;;) {
                struct pollfd p = { .fd = e->notify_fd, .events = POLLIN };
                char buf[1024];
                uint64_t now = now_us();
                ssize_t k;
                int r;

                if (now >= deadline)
                        return 0;
                r = poll(&p, 1, (int) ((deadline - now) / 1000 + 1));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : 0;
                k = recv(e->notify_fd, buf, sizeof buf - 1, 0);
                if (k <= 0)
                        continue;
                buf[k] = '\0';
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                        if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(e->status, sizeof e->status, "%s", line + 7);
                        if (strncmp(line, what, strlen(what)) == 0)
                                return 1;
                }
        }
}

/* systemd always reads the notify socket; so must we, or sd_notify() blocks the daemon. */
static void *notify_drain(void *userdata) {
        DaemonEnv *e = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = e->notify_fd, .events = POLLIN },
                        { .fd = e->notify_stop[0], .events = POLLIN },
                };
                char buf[1024];
                ssize_t k;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                k = recv(e->notify_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
                if (k <= 0)
                        continue;
                buf[k] = '\0';
                pthread_mutex_lock(&e->notify_mutex);
                for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(e->status, sizeof e->status, "%s", line + 7);
                pthread_cond_broadcast(&e->notify_cond);
                pthread_mutex_unlock(&e->notify_mutex);
        }
        return NULL;
}

bool daemon_env_wait_status(DaemonEnv *e, const char *want, uint64_t timeout_usec) {
        struct timespec ts;
        bool ok;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t) (timeout_usec / 1000000ULL);
        pthread_mutex_lock(&e->notify_mutex);
        while (!(ok = strcmp(e->status, want) == 0))
                if (pthread_cond_timedwait(&e->notify_cond, &e->notify_mutex, &ts) != 0)
                        break;
        ok = strcmp(e->status, want) == 0;
        if (!ok)
                fprintf(stderr, "STATUS is \"%s\", expected \"%s\"\n", e->status, want);
        pthread_mutex_unlock(&e->notify_mutex);
        return ok;
}

void daemon_env_status(DaemonEnv *e, char *buf, size_t size) {
        pthread_mutex_lock(&e->notify_mutex);
        snprintf(buf, size, "%s", e->status);
        pthread_mutex_unlock(&e->notify_mutex);
}

int daemon_env_start(DaemonEnv *e, char *const *extra_args) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *builddir = getenv("TOP_BUILDDIR");
        char daemon_path[512], addr_arg[600];
        char *argv[32];
        size_t n = 0;
        pid_t pid;
        int r;

        *e = (DaemonEnv) { .notify_fd = -1, .notify_stop = { -1, -1 } };
        pthread_mutex_init(&e->notify_mutex, NULL);
        pthread_cond_init(&e->notify_cond, NULL);
        r = start_bus(e);
        if (r < 0)
                return r;

        snprintf(e->notify_path, sizeof e->notify_path, "%s/notify.%d", tmpdir(), (int) getpid());
        unlink(e->notify_path);
        e->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (e->notify_fd < 0)
                return -errno;
        if (strlen(e->notify_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, e->notify_path, strlen(e->notify_path) + 1);
        if (bind(e->notify_fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;

        snprintf(daemon_path, sizeof daemon_path, "%s/daemon/stm32ispd", builddir ?: ".");
        snprintf(addr_arg, sizeof addr_arg, "--bus-address=%s", e->address);
        argv[n++] = daemon_path;
        argv[n++] = addr_arg;
        for (size_t i = 0; extra_args && extra_args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                setenv("NOTIFY_SOCKET", e->notify_path, 1);
                unsetenv("JOURNAL_STREAM");
                execv(daemon_path, argv);
                _exit(127);
        }
        e->daemon_pid = pid;

        r = notify_wait(e, "READY=1", 20 * 1000000ULL);
        if (r <= 0) {
                fprintf(stderr, "daemon did not become ready\n");
                return -ETIMEDOUT;
        }
        if (pipe2(e->notify_stop, O_CLOEXEC) < 0)
                return -errno;
        r = -pthread_create(&e->notify_thread, NULL, notify_drain, e);
        if (r < 0)
                return r;
        e->notify_thread_started = true;

        r = sd_bus_new(&e->bus);
        if (r >= 0)
                r = sd_bus_set_address(e->bus, e->address);
        if (r >= 0)
                r = sd_bus_set_bus_client(e->bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(e->bus, true);
        if (r >= 0)
                r = sd_bus_start(e->bus);
        return r;
}

int daemon_env_stop_daemon(DaemonEnv *e, uint64_t *ret_usec) {
        uint64_t start = now_us();
        int status = 0;

        if (e->daemon_pid <= 0)
                return -1;
        kill(e->daemon_pid, SIGTERM);
        for (;;) {
                pid_t p = waitpid(e->daemon_pid, &status, WNOHANG);
                if (p == e->daemon_pid)
                        break;
                if (now_us() - start > 10 * 1000000ULL) {
                        kill(e->daemon_pid, SIGKILL);
                        waitpid(e->daemon_pid, &status, 0);
                        e->daemon_pid = 0;
                        return -1;
                }
                /* Polling a child's exit: there is no fd to wait on without pidfd support. */
                usleep(5000);
        }
        e->daemon_pid = 0;
        if (ret_usec)
                *ret_usec = now_us() - start;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void daemon_env_stop(DaemonEnv *e) {
        if (e->bus)
                e->bus = sd_bus_flush_close_unref(e->bus);
        /* A clean exit: also what the sanitizers' leak check reports through. */
        if (e->daemon_pid > 0)
                ASSERT_EQ(daemon_env_stop_daemon(e, NULL), 0);
        if (e->bus_pid > 0) {
                kill(e->bus_pid, SIGTERM);
                waitpid(e->bus_pid, NULL, 0);
                e->bus_pid = 0;
        }
        if (e->notify_thread_started) {
                (void) !write(e->notify_stop[1], "x", 1);
                pthread_join(e->notify_thread, NULL);
                e->notify_thread_started = false;
                close(e->notify_stop[0]);
                close(e->notify_stop[1]);
        }
        if (e->notify_fd >= 0) {
                close(e->notify_fd);
                e->notify_fd = -1;
                unlink(e->notify_path);
        }
}

void daemon_env_run_until(DaemonEnv *e, const bool *flag, uint64_t timeout_usec) {
        uint64_t deadline = now_us() + timeout_usec;

        while (!*flag) {
                int r = sd_bus_process(e->bus, NULL);

                ASSERT_OK(r);
                if (r > 0)
                        continue;
                ASSERT_TRUE(now_us() < deadline);
                ASSERT_OK(sd_bus_wait(e->bus, deadline - now_us()));
        }
}

/* ---- simulated boards on TCP ---- */

static void relay(SimTcp *t, int conn) {
        uint8_t buf[4096];

        atomic_store(&t->host_bytes, 0);
        for (;;) {
                struct pollfd p[4] = {
                        { .fd = conn, .events = POLLIN },
                        { .fd = t->sp[0], .events = POLLIN },
                        { .fd = t->stop_pipe[0], .events = POLLIN },
                        { .fd = t->cut_pipe[0], .events = POLLIN },
                };
                ssize_t k;

                if (poll(p, 4, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[2].revents)
                        break;
                if (p[3].revents) {
                        char c;

                        (void) !read(t->cut_pipe[0], &c, 1);
                        break;
                }
                if (p[0].revents) {
                        unsigned long cut = atomic_load(&t->cut_after);

                        k = read(conn, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        if (write(t->sp[0], buf, (size_t) k) != k)
                                break;
                        if (cut > 0 && atomic_fetch_add(&t->host_bytes, (unsigned long) k) + (unsigned long) k >= cut) {
                                /* The adapter goes away mid-job. */
                                atomic_store(&t->cut_after, 0);
                                break;
                        }
                }
                if (p[1].revents) {
                        k = read(t->sp[0], buf, sizeof buf);
                        if (k <= 0)
                                break;
                        if (write(conn, buf, (size_t) k) != k)
                                break;
                }
        }
        close(conn);
}

static void *relay_main(void *userdata) {
        SimTcp *t = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = t->listen_fd, .events = POLLIN },
                        { .fd = t->stop_pipe[0], .events = POLLIN },
                };
                int conn;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                conn = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0)
                        continue;
                atomic_fetch_add(&t->connections, 1);
                relay(t, conn);
        }
        return NULL;
}

int sim_tcp_new(uint16_t pid, uint32_t uid_seed, SimTcp **ret) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        SimTcp *t;
        int r;

        t = calloc(1, sizeof(SimTcp));
        if (!t)
                return -ENOMEM;
        r = sim_new(pid, 0, &t->sim);
        if (r < 0) {
                free(t);
                return r;
        }
        sim_set_uid_seed(t->sim, uid_seed);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t->sp) < 0 ||
            pipe2(t->stop_pipe, O_CLOEXEC) < 0 || pipe2(t->cut_pipe, O_CLOEXEC) < 0)
                return -errno;
        t->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t->listen_fd < 0 ||
            bind(t->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(t->listen_fd, 4) < 0 ||
            getsockname(t->listen_fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        t->port = ntohs(sa.sin_port);
        snprintf(t->url, sizeof t->url, "tcp://127.0.0.1:%u", t->port);
        r = sim_start(t->sim, t->sp[1]);
        if (r < 0)
                return r;
        r = -pthread_create(&t->thread, NULL, relay_main, t);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}

SimTcp *sim_tcp_free(SimTcp *t) {
        if (!t)
                return NULL;
        (void) !write(t->stop_pipe[1], "x", 1);
        pthread_join(t->thread, NULL);
        sim_stop(t->sim);
        sim_free(t->sim);
        close(t->sp[0]);
        close(t->sp[1]);
        close(t->listen_fd);
        close(t->stop_pipe[0]);
        close(t->stop_pipe[1]);
        close(t->cut_pipe[0]);
        close(t->cut_pipe[1]);
        free(t);
        return NULL;
}

void sim_tcp_cut(SimTcp *t) {
        (void) !write(t->cut_pipe[1], "x", 1);
}

void sim_tcp_flash(SimTcp *t, uint8_t **ret, size_t *ret_size) {
        size_t size;
        uint8_t *copy;

        sim_lock(t->sim);
        const uint8_t *f = sim_flash(t->sim, &size);
        copy = malloc(size);
        ASSERT_TRUE(copy);
        memcpy(copy, f, size);
        sim_unlock(t->sim);
        *ret = copy;
        *ret_size = size;
}

int daemon_env_memfd(const void *data, size_t size) {
        int fd = memfd_create("image", MFD_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (size > 0 && write(fd, data, size) != (ssize_t) size) {
                close(fd);
                return -EIO;
        }
        return fd;
}

void daemon_env_random(void *buf, size_t n, uint32_t seed) {
        uint8_t *p = buf;
        uint32_t x = seed * 2654435761u + 1;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                p[i] = (uint8_t) x;
        }
}

int daemon_call_on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DaemonCall *c = userdata;

        c->done = true;
        if (sd_bus_message_is_method_error(m, NULL))
                (void) sd_bus_error_copy(&c->error, sd_bus_message_get_error(m));  /* returns the errno */
        else
                c->reply = sd_bus_message_ref(m);
        return 0;
}

void daemon_call_clear(DaemonCall *c) {
        sd_bus_error_free(&c->error);
        c->reply = sd_bus_message_unref(c->reply);
        c->done = false;
}

const char *daemon_call_outcome(const DaemonCall *c) {
        return sd_bus_error_is_set(&c->error) ? c->error.name : "ok";
}

char *daemon_env_port_path(const char *name) {
        char *p = NULL;

        ASSERT_OK(sd_bus_path_encode(STM32ISP_PORT_PATH_PREFIX, name, &p));
        return p;
}

char *daemon_env_get_port(DaemonEnv *e, const char *device, char *ret_error, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path;
        char *copy;

        if (sd_bus_call_method(e->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                               "GetPort", &error, &reply, "s", device) < 0) {
                snprintf(ret_error, size, "%s", error.name);
                sd_bus_error_free(&error);
                return NULL;
        }
        ASSERT_OK(sd_bus_message_read(reply, "o", &path));
        copy = strdup(path);
        ASSERT_TRUE(copy);
        return copy;
}

char *daemon_env_get_string(DaemonEnv *e, const char *path, const char *property) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *v = NULL;

        ASSERT_OK(sd_bus_get_property_string(e->bus, STM32ISP_BUS_NAME, path, STM32ISP_PORT_INTERFACE,
                                             property, &error, &v));
        return v;
}

int daemon_env_dict_seek(sd_bus_message *m, const char *key) {
        int r;

        ASSERT_OK(sd_bus_message_rewind(m, true));
        ASSERT_OK(sd_bus_message_enter_container(m, 'a', "{sv}"));
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *k;

                ASSERT_OK(sd_bus_message_read(m, "s", &k));
                if (strcmp(k, key) == 0)
                        return 1;
                ASSERT_OK(sd_bus_message_skip(m, "v"));
                ASSERT_OK(sd_bus_message_exit_container(m));
        }
        ASSERT_OK(r);
        return 0;
}

uint16_t daemon_env_chip_pid(sd_bus_message *m) {
        uint16_t pid;

        if (!daemon_env_dict_seek(m, "pid"))
                return 0;
        ASSERT_OK(sd_bus_message_read(m, "v", "q", &pid));
        return pid;
}

static DaemonEnv *abort_env;

static void on_abort(int sig) {
        if (abort_env && abort_env->daemon_pid > 0)
                kill(abort_env->daemon_pid, SIGKILL);
        if (abort_env && abort_env->bus_pid > 0)
                kill(abort_env->bus_pid, SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

void daemon_env_kill_on_abort(DaemonEnv *e) {
        abort_env = e;
        signal(SIGABRT, on_abort);
}

static int on_objects(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        DaemonObjects *o = userdata;
        const char *path;

        ASSERT_OK(sd_bus_message_read(m, "o", &path));
        if (strcmp(sd_bus_message_get_member(m), "InterfacesAdded") == 0) {
                ASSERT_TRUE(o->n_added < DAEMON_OBJECTS_MAX);
                snprintf(o->added[o->n_added++], sizeof o->added[0], "%s", path);
        } else {
                ASSERT_TRUE(o->n_removed < DAEMON_OBJECTS_MAX);
                snprintf(o->removed[o->n_removed++], sizeof o->removed[0], "%s", path);
        }
        return 0;
}

void daemon_env_watch_objects(DaemonEnv *e, DaemonObjects *o) {
        daemon_objects_unwatch(o);
        ASSERT_OK(sd_bus_match_signal(e->bus, &o->slot_added, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                      "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_objects, o));
        ASSERT_OK(sd_bus_match_signal(e->bus, &o->slot_removed, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                      "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", on_objects, o));
}

void daemon_objects_unwatch(DaemonObjects *o) {
        o->slot_added = sd_bus_slot_unref(o->slot_added);
        o->slot_removed = sd_bus_slot_unref(o->slot_removed);
}
