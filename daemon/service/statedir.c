/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "statedir.h"

#define STATEDIR_NAME "stm32ispd"

/* mkdir -p, each new folder private (the spec's 0700). */
static int mkdir_parents(char *path) {
        for (char *p = path + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                int r = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
                *p = c;
                if (r < 0)
                        return r;
                if (c == '\0')
                        return 0;
        }
}

int statedir_session(char **ret) {
        const char *base = getenv("XDG_STATE_HOME");
        char *dir = NULL;
        int r;

        /* The spec: a relative value is invalid and ignored. */
        if (base && base[0] == '/')
                r = asprintf(&dir, "%s/" STATEDIR_NAME, base);
        else {
                const char *home = getenv("HOME");
                struct passwd *pw;

                if (!home || home[0] != '/') {
                        pw = getpwuid(getuid());
                        home = pw ? pw->pw_dir : NULL;
                }
                if (!home || home[0] != '/')
                        return -ENXIO;
                r = asprintf(&dir, "%s/.local/state/" STATEDIR_NAME, home);
        }
        if (r < 0)
                return -ENOMEM;
        r = mkdir_parents(dir);
        if (r < 0) {
                free(dir);
                return r;
        }
        *ret = dir;
        return 0;
}
