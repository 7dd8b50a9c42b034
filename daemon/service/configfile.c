/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration file: ini syntax (inih). */

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "configfile.h"
#include "log.h"
#include "string-util.h"

bool config_adapter_allowed(const Config *c, uint16_t vid, uint16_t pid) {
        bool allowed = c->n_allow == 0;

        for (size_t i = 0; i < c->n_allow; i++)
                if (c->allow[i].vid == vid && (c->allow[i].any_pid || c->allow[i].pid == pid))
                        allowed = true;
        for (size_t i = 0; i < c->n_deny; i++)
                if (c->deny[i].vid == vid && (c->deny[i].any_pid || c->deny[i].pid == pid))
                        allowed = false;
        return allowed;
}

static int parse_rules(const char *value, AdapterRule *rules, size_t *n) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " \t,;", &save); tok; tok = strtok_r(NULL, " \t,;", &save)) {
                AdapterRule rule = {};
                char *colon = strchr(tok, ':'), *end;
                unsigned long v;

                if (!colon || colon == tok || *n >= ADAPTER_RULES_MAX)
                        return -EINVAL;
                *colon = '\0';
                v = strtoul(tok, &end, 16);
                if (*end || v > 0xFFFF)
                        return -EINVAL;
                rule.vid = (uint16_t) v;
                if (streq(colon + 1, "*"))
                        rule.any_pid = true;
                else {
                        v = strtoul(colon + 1, &end, 16);
                        if (!colon[1] || *end || v > 0xFFFF)
                                return -EINVAL;
                        rule.pid = (uint16_t) v;
                }
                rules[(*n)++] = rule;
        }
        return 0;
}

static int config_autoflash(Config *c, const char *name, const char *value) {
        int r;

        if (!c->config_autoflash) {
                r = autoflash_new("config", &c->config_autoflash);
                if (r < 0)
                        return r;
        }
        if (strcasecmp(name, "Image") == 0) {
                char *s = strdup(value);

                if (!s)
                        return -ENOMEM;
                free(c->config_image);
                c->config_image = s;
                return 0;
        }
        return autoflash_set(c->config_autoflash, name, value);
}

/* The lines as inih reads them: it calls the handler for a line before it reads the
 * next one, so the count is the handler's line (inih is built without its own). */
typedef struct LineReader {
        FILE *f;
        unsigned line;
        bool in_line;           /* the last read ended inside a line longer than inih's buffer */
        Config *c;
} LineReader;

static char *read_line(char *buf, int size, void *stream) {
        LineReader *lr = stream;
        char *s = fgets(buf, size, lr->f);

        if (!s)
                return NULL;
        if (!lr->in_line)
                lr->line++;
        lr->in_line = !strchr(s, '\n');
        return s;
}

static int config_handler(void *userdata, const char *section, const char *name, const char *value) {
        LineReader *lr = userdata;
        Config *c = lr->c;
        int r;

        if (strcasecmp(section, "AutoFlash") == 0) {
                r = config_autoflash(c, name, value);
                if (r == -ENOENT) {
                        /* A misspelt match (MatchVendor=) would widen the profile to every
                         * board: the profile is refused, the daemon runs on. */
                        if (!c->autoflash_error &&
                            asprintf(&c->autoflash_error, "line %u: unknown key %s=", lr->line, name) < 0) {
                                c->autoflash_error = NULL;
                                return 0;
                        }
                        log_error(NULL, "%s:%u: unknown key [AutoFlash] %s=, the auto-flash profile is not armed",
                                  c->path, lr->line, name);
                        return 1;
                }
                if (r < 0) {
                        log_error(NULL, "Invalid [AutoFlash] %s=%s", name, value);
                        return 0;
                }
                return 1;
        }
        if (strcasecmp(section, "Adapters") != 0) {
                log_warning(NULL, "Unknown configuration section [%s], ignoring", section);
                return 1;
        }
        if (strcasecmp(name, "Allow") == 0)
                r = parse_rules(value, c->allow, &c->n_allow);
        else if (strcasecmp(name, "Deny") == 0)
                r = parse_rules(value, c->deny, &c->n_deny);
        else {
                log_warning(NULL, "Unknown configuration key %s=, ignoring", name);
                return 1;
        }
        if (r < 0) {
                log_error(NULL, "Invalid %s=%s: expected VID:PID in hex (PID may be *)", name, value);
                return 0;
        }
        return 1;
}

int config_load(Config *c, const char *path) {
        FILE *f = fopen(path, "re");
        LineReader lr = { .f = f, .c = c };
        int r;

        if (!f)
                return -errno;
        c->path = path;
        r = ini_parse_stream(read_line, &lr, config_handler, &lr);
        c->path = NULL;
        fclose(f);
        if (r != 0) {
                log_error(NULL, "%s:%d: configuration error", path, r);
                return -EINVAL;
        }
        if (c->config_autoflash && c->autoflash_error) {
                c->config_autoflash = autoflash_free(c->config_autoflash);
                c->config_image = mfree(c->config_image);
        }
        if (c->config_autoflash) {
                if (!c->config_image) {
                        log_error(NULL, "%s: [AutoFlash] needs Image=", path);
                        return -EINVAL;
                }
                r = autoflash_load_image(c->config_autoflash, c->config_image);
                if (r < 0) {
                        log_error(NULL, "%s: [AutoFlash] Image=%s: %s", path, c->config_image,
                                  r == -ERANGE ? "not a valid image" :
                                  r == -EDOM ? "Address= is for raw binaries, this file carries its own addresses" :
                                  strerror(-r));
                        return r;
                }
                autoflash_free(c->autoflash);
                c->autoflash = TAKE_PTR(c->config_autoflash);
        }
        return 0;
}

void config_done(Config *c) {
        c->autoflash = autoflash_free(c->autoflash);
        c->config_autoflash = autoflash_free(c->config_autoflash);
        c->config_image = mfree(c->config_image);
        c->autoflash_error = mfree(c->autoflash_error);
}

