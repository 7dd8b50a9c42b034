/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "test-util.h"

#define CONTROL_ENV "UMOCKDEV_SIM_CONTROL"
#define LINE_MAX_LEN 1024

static int control_fd = -1;

int harness_active(void) {
        return getenv(CONTROL_ENV) != NULL;
}

int harness_reexec(const char *name, const char *const *harness_args) {
        char exe[PATH_MAX], dir[PATH_MAX], harness[PATH_MAX + 32], ctl[PATH_MAX];
        const char *top = getenv("TOP_BUILDDIR"), *tmp = getenv("TMPDIR");
        const char *argv[32];
        size_t n = 0;
        ssize_t k;

        k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k <= 0)
                return EXIT_FAILURE;
        exe[k] = 0;
        if (top && *top)
                snprintf(harness, sizeof harness, "%s/tests/rig/umockdev-sim", top);
        else {
                snprintf(dir, sizeof dir, "%s", exe);
                snprintf(harness, sizeof harness, "%s/../rig/umockdev-sim", dirname(dir));
        }
        if (access(harness, X_OK) < 0) {
                fprintf(stderr, "%s not built (configure found no umockdev): skipping\n", harness);
                return EXIT_TEST_SKIP;
        }
        snprintf(ctl, sizeof ctl, "%s/%s.%d.ctl", tmp && *tmp ? tmp : "/tmp", name, (int) getpid());
        argv[n++] = harness;
        for (size_t i = 0; harness_args && harness_args[i]; i++) {
                if (n + 5 >= ELEMENTSOF(argv))
                        return EXIT_FAILURE;
                argv[n++] = harness_args[i];
        }
        argv[n++] = "--control";
        argv[n++] = ctl;
        argv[n++] = "--";
        argv[n++] = exe;
        argv[n] = NULL;
        execv(harness, (char *const *) argv);
        fprintf(stderr, "%s: %m\n", harness);
        return EXIT_FAILURE;
}

static void vsend(const char *fmt, va_list ap) {
        char line[LINE_MAX_LEN];

        if (control_fd < 0) {
                const char *path = getenv(CONTROL_ENV);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                ASSERT_TRUE(path && strlen(path) < sizeof sa.sun_path);
                memcpy(sa.sun_path, path, strlen(path) + 1);
                control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ASSERT_TRUE(control_fd >= 0);
                ASSERT_EQ(connect(control_fd, (struct sockaddr *) &sa, sizeof sa), 0);
        }
        vsnprintf(line, sizeof line - 1, fmt, ap);
        strcat(line, "\n");
        ASSERT_EQ(write(control_fd, line, strlen(line)), (ssize_t) strlen(line));
}

void harness_send(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsend(fmt, ap);
        va_end(ap);
}

const char *harness_answer(void) {
        static char answer[LINE_MAX_LEN];
        size_t n = 0;

        while (n < sizeof answer - 1) {
                ASSERT_EQ(read(control_fd, answer + n, 1), 1);
                if (answer[n] == '\n')
                        break;
                n++;
        }
        answer[n] = 0;
        return answer;
}

const char *harness_control(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsend(fmt, ap);
        va_end(ap);
        return harness_answer();
}

void harness_control_ok(const char *fmt, ...) {
        char line[LINE_MAX_LEN];
        const char *a;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        a = harness_control("%s", line);
        if (strcmp(a, "ok") != 0) {
                fprintf(stderr, "control '%s': %s\n", line, a);
                abort();
        }
}
