/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's pure parts: number parsing, D-Bus values -> JSON -> text, the progress
 * renderer's plain and bar output, and the exit-code mapping. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exit-codes.h"
#include "output.h"
#include "progress.h"
#include "stm32isp.h"
#include "test-util.h"
#include "util.h"

static void test_parse(void) {
        uint64_t v;

        ASSERT_OK(parse_size("4096", &v));
        ASSERT_EQ(v, 4096);
        ASSERT_OK(parse_size("0x1000", &v));
        ASSERT_EQ(v, 4096);
        ASSERT_OK(parse_size("32K", &v));
        ASSERT_EQ(v, 32768);
        ASSERT_OK(parse_size("1MiB", &v));
        ASSERT_EQ(v, 1048576);
        ASSERT_ERR(parse_size("12Q", &v), EINVAL);
        ASSERT_ERR(parse_size("-1", &v), EINVAL);
        ASSERT_ERR(parse_size("", &v), EINVAL);
        ASSERT_OK(parse_address("0x08000000", &v));
        ASSERT_EQ(v, 0x08000000);
        ASSERT_ERR(parse_address("4K", &v), EINVAL);
        ASSERT_ERR(parse_address("99999999999999999999999", &v), ERANGE);
}

static void test_json_from_message(void) {
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL;
        json_object *o = NULL;
        const uint8_t uid[] = { 0x12, 0xab, 0x00 };

        int pair[2];

        /* A bus object that has started (messages need one), with nobody at the other end. */
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
        ASSERT_OK(sd_bus_new(&bus));
        ASSERT_OK(sd_bus_set_fd(bus, pair[0], pair[0]));
        ASSERT_OK(sd_bus_start(bus));
        ASSERT_OK(sd_bus_message_new_method_call(bus, &m, "a.b", "/a", "a.b", "M"));
        ASSERT_OK(sd_bus_message_open_container(m, 'a', "{sv}"));
        ASSERT_OK(sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}", "pid", "q", 0x466, "name", "s", "STM32G03x/04x",
                                        "flash_size", "u", 65536, "ok", "b", 1, "big", "t", UINT64_MAX));
        ASSERT_OK(sd_bus_message_open_container(m, 'e', "sv"));
        ASSERT_OK(sd_bus_message_append(m, "s", "uid"));
        ASSERT_OK(sd_bus_message_open_container(m, 'v', "ay"));
        ASSERT_OK(sd_bus_message_append_array(m, 'y', uid, sizeof uid));
        ASSERT_OK(sd_bus_message_close_container(m));
        ASSERT_OK(sd_bus_message_close_container(m));
        ASSERT_OK(sd_bus_message_append(m, "{sv}", "progress", "(tt)", (uint64_t) 5, (uint64_t) 10));
        ASSERT_OK(sd_bus_message_close_container(m));
        ASSERT_OK(sd_bus_message_seal(m, 1, 0));
        ASSERT_OK(sd_bus_message_rewind(m, true));

        ASSERT_OK(json_from_bus_message(m, &o));
        ASSERT_EQ(json_get_int(o, "pid"), 0x466);
        ASSERT_EQ(json_get_int(o, "PID"), 0x466);      /* case-insensitive lookup */
        ASSERT_STREQ(json_get_string(o, "name"), "STM32G03x/04x");
        ASSERT_STREQ(json_get_string(o, "uid"), "12ab00");
        ASSERT_EQ(json_object_get_uint64(json_get(o, "big")), UINT64_MAX);
        ASSERT_TRUE(json_object_get_boolean(json_get(o, "ok")));
        ASSERT_EQ(json_object_array_length(json_get(o, "progress")), 2);
        ASSERT_STREQ(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                     "{\"pid\":1126,\"name\":\"STM32G03x\\/04x\",\"flash_size\":65536,\"ok\":true,"
                     "\"big\":18446744073709551615,\"uid\":\"12ab00\",\"progress\":[5,10]}");

        char *s;
        ASSERT_STREQ(s = text_format_value("pid", json_get(o, "pid")), "0x466");
        free(s);
        ASSERT_STREQ(s = text_format_value("flash_size", json_get(o, "flash_size")), "65536 (64.0 KiB)");
        free(s);
        ASSERT_STREQ(s = text_format_value("ok", json_get(o, "ok")), "yes");
        free(s);
        ASSERT_STREQ(s = text_format_value("Progress", json_get(o, "progress")), "5/10");
        free(s);

        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        text_print_object(f, o, 2, 0);
        fclose(f);
        ASSERT_TRUE(strstr(buf, "  Product ID: 0x466\n"));
        ASSERT_TRUE(strstr(buf, "  Chip:       STM32G03x/04x\n"));
        ASSERT_TRUE(strstr(buf, "  progress:   5/10\n"));
        free(buf);

        json_object_put(o);
        sd_bus_message_unref(m);
        sd_bus_close_unref(bus);
        close(pair[1]);
}

static char *capture_progress(ProgressMode mode, void (*fn)(Progress *p)) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        Progress *p;

        ASSERT_TRUE(f);
        ASSERT_OK(progress_new(f, mode, &p));
        fn(p);
        progress_free(p);
        fclose(f);
        return buf;
}

static void run_stages(Progress *p) {
        /* 100 updates in a burst: plain mode prints the start, each 10 % step and the end
         * of each stage, not every update. */
        for (unsigned i = 0; i <= 100; i++)
                progress_update(p, NULL, "writing", i * 1024, 100 * 1024);
        progress_update(p, NULL, "verifying", 0, 4096);
        progress_update(p, NULL, "verifying", 4096, 4096);
        progress_update(p, NULL, "verifying", 4096, 4096);     /* repeated final: once */
}

static void test_progress_plain(void) {
        char *out = capture_progress(PROGRESS_PLAIN, run_stages);
        unsigned lines = 0;

        for (char *c = out; *c; c++)
                lines += *c == '\n';
        ASSERT_TRUE(strstr(out, "writing: 0/102400 bytes (0%)\n"));
        ASSERT_TRUE(strstr(out, "writing: 51200/102400 bytes (50%)\n"));
        ASSERT_TRUE(strstr(out, "writing: 102400/102400 bytes (100%)\n"));
        ASSERT_TRUE(strstr(out, "verifying: 0/4096 bytes (0%)\n"));
        ASSERT_TRUE(strstr(out, "verifying: 4096/4096 bytes (100%)\n"));
        ASSERT_TRUE(!strchr(out, '\r'));
        ASSERT_EQ(lines, 11 + 2);
        free(out);
}

static void test_progress_bar(void) {
        char *out = capture_progress(PROGRESS_BAR, run_stages);

        /* Redrawn in place with \r, rate-limited (not 100 redraws), the final state of
         * each stage kept on its own line. */
        unsigned draws = 0;
        for (char *c = out; *c; c++)
                draws += *c == '\r';
        ASSERT_TRUE(draws >= 4 && draws < 20);
        ASSERT_TRUE(strstr(out, "writing    ["));
        ASSERT_TRUE(strstr(out, "100%  100.0 KiB/100.0 KiB"));
        ASSERT_TRUE(strstr(out, "ETA "));
        ASSERT_TRUE(strstr(out, "\033[K\n\rverifying"));
        free(out);
}

static void quiet_fn(Progress *p) {
        progress_update(p, NULL, "writing", 1, 2);
        progress_clear(p);
        progress_end(p);
}

static void test_progress_quiet(void) {
        char *out = capture_progress(PROGRESS_QUIET, quiet_fn);
        ASSERT_STREQ(out, "");
        free(out);
}

static void test_eta(void) {
        char b[16];

        ASSERT_STREQ(progress_format_eta(b, sizeof b, 65), "1:05");
        ASSERT_STREQ(progress_format_eta(b, sizeof b, 3725), "1:02:05");
        ASSERT_STREQ(progress_format_eta(b, sizeof b, -1), "--:--");
}

static void test_exit_codes(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        size_t n;
        const ExitCodeEntry *t = exit_code_table(&n);

        /* Distinct codes, and each D-Bus error maps back to its own. */
        for (size_t i = 0; i < n; i++) {
                for (size_t k = i + 1; k < n; k++)
                        ASSERT_TRUE(t[i].code != t[k].code);
                if (!t[i].error)
                        continue;
                sd_bus_error_set(&e, t[i].error, "x");
                ASSERT_EQ(exit_code_from_bus_error(&e, -EIO), t[i].code);
                sd_bus_error_free(&e);
        }
        sd_bus_error_set(&e, STM32ISP_ERROR_NO_BOOTLOADER, "x");
        ASSERT_EQ(exit_code_from_bus_error(&e, -EIO), EXIT_NO_BOOTLOADER);
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, "org.freedesktop.DBus.Error.NameHasNoOwner", "x");
        ASSERT_EQ(exit_code_from_bus_error(&e, -EIO), EXIT_DAEMON_UNAVAILABLE);
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, "com.example.Other", "x");
        ASSERT_EQ(exit_code_from_bus_error(&e, -EIO), EXIT_FAILURE_GENERIC);
        sd_bus_error_free(&e);
        ASSERT_EQ(exit_code_from_bus_error(NULL, -ECONNREFUSED), EXIT_DAEMON_UNAVAILABLE);
        ASSERT_EQ(exit_code_from_bus_error(NULL, -ENOENT), EXIT_DAEMON_UNAVAILABLE);
        ASSERT_EQ(exit_code_from_bus_error(NULL, -EACCES), EXIT_ACCESS_DENIED);
}

int main(void) {
        TEST(test_parse);
        TEST(test_json_from_message);
        TEST(test_progress_plain);
        TEST(test_progress_bar);
        TEST(test_progress_quiet);
        TEST(test_eta);
        TEST(test_exit_codes);
        return 0;
}
