/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Serial-number counters on disk (serialstore.h). The file:
 *   {"counters": {"NAME": {"next": N, "free": [N...],
 *                          "chips": {"UID": {"number": N, "written": true|false}}}}} */

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "serialstore.h"

#define SERIAL_STORE_FILE_MAX (64u * 1024 * 1024)

static void json_object_putp(json_object **o) {
        json_object_put(*o);
}

struct SerialStore {
        pthread_mutex_t mutex;
        char *dir, *path, *tmp_path;
        json_object *root;
};

const char *serial_store_path(const SerialStore *s) {
        return s->path;
}

SerialStore *serial_store_free(SerialStore *s) {
        if (!s)
                return NULL;
        json_object_put(s->root);
        pthread_mutex_destroy(&s->mutex);
        free(s->dir);
        free(s->path);
        free(s->tmp_path);
        free(s);
        return NULL;
}

static bool store_valid(json_object *root) {
        json_object *counters;

        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "counters", &counters) ||
            !json_object_is_type(counters, json_type_object))
                return false;
        json_object_object_foreach(counters, name, c) {
                json_object *v;

                (void) name;
                if (!json_object_is_type(c, json_type_object) || !json_object_object_get_ex(c, "next", &v) ||
                    !json_object_is_type(v, json_type_int) || !json_object_object_get_ex(c, "free", &v) ||
                    !json_object_is_type(v, json_type_array) || !json_object_object_get_ex(c, "chips", &v) ||
                    !json_object_is_type(v, json_type_object))
                        return false;
        }
        return true;
}

int serial_store_new(const char *dir, SerialStore **ret) {
        _cleanup_free_ uint8_t *data = NULL;
        SerialStore *s;
        size_t size;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->mutex, NULL);
        if (!(s->dir = strdup(dir)) || asprintf(&s->path, "%s/" SERIAL_STORE_NAME, dir) < 0 ||
            asprintf(&s->tmp_path, "%s/." SERIAL_STORE_NAME ".tmp", dir) < 0) {
                s->path = s->tmp_path = NULL;
                serial_store_free(s);
                return -ENOMEM;
        }
        r = read_file(s->path, SERIAL_STORE_FILE_MAX, &data, &size);
        if (r == -ENOENT) {
                s->root = json_object_new_object();
                if (!s->root || json_object_object_add(s->root, "counters", json_object_new_object()) < 0) {
                        serial_store_free(s);
                        return -ENOMEM;
                }
        } else if (r < 0) {
                serial_store_free(s);
                return r;
        } else {
                json_tokener *tok = json_tokener_new();

                if (!tok) {
                        serial_store_free(s);
                        return -ENOMEM;
                }
                s->root = json_tokener_parse_ex(tok, (const char *) data, (int) size);
                if (json_tokener_get_error(tok) != json_tokener_success || !store_valid(s->root)) {
                        json_tokener_free(tok);
                        serial_store_free(s);
                        return -EBADMSG;
                }
                json_tokener_free(tok);
        }
        *ret = s;
        return 0;
}

/* write, fsync, rename, fsync the directory */
static int store_save(SerialStore *s) {
        const char *text = json_object_to_json_string_ext(s->root, JSON_C_TO_STRING_PLAIN);
        _cleanup_close_ int fd = -1, dfd = -1;
        int r;

        if (!text)
                return -ENOMEM;
        fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        r = write_all(fd, text, strlen(text));
        if (r >= 0)
                r = write_all(fd, "\n", 1);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(s->tmp_path, s->path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(s->tmp_path);
                return r;
        }
        dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return -errno;
        return 0;
}

/* The counter's object, made when create (with next = first). */
static json_object *counter_get(SerialStore *s, const char *name, bool create, uint64_t first) {
        json_object *counters, *c;

        json_object_object_get_ex(s->root, "counters", &counters);
        if (json_object_object_get_ex(counters, name, &c))
                return c;
        if (!create)
                return NULL;
        c = json_object_new_object();
        if (!c)
                return NULL;
        json_object_object_add(c, "next", json_object_new_uint64(first));
        json_object_object_add(c, "free", json_object_new_array());
        json_object_object_add(c, "chips", json_object_new_object());
        if (json_object_object_add(counters, name, c) < 0)
                return NULL;
        return c;
}

static json_object *chip_get(json_object *counter, const char *uid) {
        json_object *chips, *chip;

        if (!counter || !json_object_object_get_ex(counter, "chips", &chips) ||
            !json_object_object_get_ex(chips, uid, &chip))
                return NULL;
        return chip;
}

static uint64_t get_u64(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

int serial_store_reserve(SerialStore *s, const char *counter, const char *uid, uint64_t first, uint64_t step,
                         uint64_t *ret, bool *ret_new) {
        _cleanup_(json_object_putp) json_object *before = NULL;
        json_object *c, *chip, *free_list, *chips;
        uint64_t n;
        int r;

        if (step == 0)
                return -EINVAL;
        pthread_mutex_lock(&s->mutex);
        c = counter_get(s, counter, false, 0);
        chip = chip_get(c, uid);
        if (chip) {
                *ret = get_u64(chip, "number");
                *ret_new = false;
                pthread_mutex_unlock(&s->mutex);
                return 0;
        }
        /* Changed in a copy, saved, then taken: a failed save changes nothing. */
        r = json_object_deep_copy(s->root, &before, NULL);
        if (r < 0) {
                pthread_mutex_unlock(&s->mutex);
                return -ENOMEM;
        }
        c = counter_get(s, counter, true, first);
        if (!c) {
                pthread_mutex_unlock(&s->mutex);
                return -ENOMEM;
        }
        json_object_object_get_ex(c, "free", &free_list);
        json_object_object_get_ex(c, "chips", &chips);
        if (json_object_array_length(free_list) > 0) {
                size_t last = json_object_array_length(free_list) - 1;

                n = json_object_get_uint64(json_object_array_get_idx(free_list, last));
                json_object_array_del_idx(free_list, last, 1);
        } else {
                n = get_u64(c, "next");
                if (n > UINT64_MAX - step) {
                        json_object_put(s->root);
                        s->root = TAKE_PTR(before);
                        pthread_mutex_unlock(&s->mutex);
                        return -EOVERFLOW;
                }
                json_object_object_add(c, "next", json_object_new_uint64(n + step));
        }
        chip = json_object_new_object();
        json_object_object_add(chip, "number", json_object_new_uint64(n));
        json_object_object_add(chip, "written", json_object_new_boolean(false));
        json_object_object_add(chips, uid, chip);
        r = store_save(s);
        if (r < 0) {
                json_object_put(s->root);
                s->root = TAKE_PTR(before);
                pthread_mutex_unlock(&s->mutex);
                return r;
        }
        pthread_mutex_unlock(&s->mutex);
        *ret = n;
        *ret_new = true;
        return 0;
}

int serial_store_commit(SerialStore *s, const char *counter, const char *uid) {
        json_object *chip;
        int r = 0;

        pthread_mutex_lock(&s->mutex);
        chip = chip_get(counter_get(s, counter, false, 0), uid);
        if (!chip)
                r = -ENOENT;
        else {
                json_object *w;

                if (!json_object_object_get_ex(chip, "written", &w) || !json_object_get_boolean(w)) {
                        json_object_object_add(chip, "written", json_object_new_boolean(true));
                        r = store_save(s);
                }
        }
        pthread_mutex_unlock(&s->mutex);
        return r;
}

int serial_store_release(SerialStore *s, const char *counter, const char *uid) {
        json_object *c, *chip, *chips, *free_list, *w;
        int r;

        pthread_mutex_lock(&s->mutex);
        c = counter_get(s, counter, false, 0);
        chip = chip_get(c, uid);
        /* a number once written stays with its chip */
        if (!chip || (json_object_object_get_ex(chip, "written", &w) && json_object_get_boolean(w))) {
                pthread_mutex_unlock(&s->mutex);
                return 0;
        }
        json_object_object_get_ex(c, "free", &free_list);
        json_object_object_get_ex(c, "chips", &chips);
        json_object_array_add(free_list, json_object_new_uint64(get_u64(chip, "number")));
        json_object_object_del(chips, uid);
        /* If this save fails the number stays with the chip: a gap, never a double. */
        r = store_save(s);
        pthread_mutex_unlock(&s->mutex);
        return r;
}

int serial_store_lookup(SerialStore *s, const char *counter, const char *uid, uint64_t *ret) {
        json_object *chip;

        pthread_mutex_lock(&s->mutex);
        chip = chip_get(counter_get(s, counter, false, 0), uid);
        if (chip)
                *ret = get_u64(chip, "number");
        pthread_mutex_unlock(&s->mutex);
        return !!chip;
}
