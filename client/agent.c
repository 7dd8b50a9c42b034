/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

/* Registering takes a round trip to polkitd; a hung one must not hold the command. */
#define AGENT_REGISTER_TIMEOUT_MS 5000

pid_t agent_open(void) {
        char fd_arg[16];
        int notify[2];
        pid_t pid;

        /* root passes every check without a password; no terminal, no one to ask. */
        if (geteuid() == 0 || !isatty(STDIN_FILENO))
                return 0;
        if (pipe2(notify, O_CLOEXEC) < 0)
                return 0;
        pid = fork();
        if (pid < 0) {
                safe_close(notify[0]);
                safe_close(notify[1]);
                return 0;
        }
        if (pid == 0) {
                /* The notify end stays open across exec; pkttyagent closes it once it
                 * registered. */
                if (fcntl(notify[1], F_SETFD, 0) < 0)
                        _exit(EXIT_FAILURE);
                snprintf(fd_arg, sizeof fd_arg, "%d", notify[1]);
                execlp("pkttyagent", "pkttyagent", "--notify-fd", fd_arg, "--fallback", (char *) NULL);
                _exit(EXIT_FAILURE);
        }
        safe_close(notify[1]);
        /* EOF: registered, or it could not start (then it has exited). */
        struct pollfd p = { .fd = notify[0], .events = POLLIN };
        while (poll(&p, 1, AGENT_REGISTER_TIMEOUT_MS) < 0 && errno == EINTR)
                ;
        safe_close(notify[0]);
        if (waitpid(pid, NULL, WNOHANG) == pid)
                return 0;
        return pid;
}

void agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
