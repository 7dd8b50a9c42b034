/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Auto-flash profiles: settings from the config and the bus, the image, matching. */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "autoflash.h"
#include "stm32isp.h"
#include "test-util.h"

static void test_settings(void) {
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;

        ASSERT_OK(autoflash_new("config", &a));
        /* Defaults: the Flash method's. */
        ASSERT_EQ(a->flash.erase, FLASHER_ERASE_AUTO);
        ASSERT_TRUE(a->flash.verify && a->flash.boot0 && !a->flash.go && !a->flash.protect && !a->flash.force);

        ASSERT_OK(autoflash_set(a, "erase", "mass"));
        ASSERT_EQ(a->flash.erase, FLASHER_ERASE_MASS);
        ASSERT_OK(autoflash_set(a, "Verify", "no"));
        ASSERT_TRUE(!a->flash.verify);
        ASSERT_OK(autoflash_set(a, "GO", "yes"));
        ASSERT_TRUE(a->flash.go);
        ASSERT_OK(autoflash_set(a, "Force", "on"));
        ASSERT_TRUE(a->flash.force);
        ASSERT_OK(autoflash_set(a, "force", "0"));
        ASSERT_TRUE(!a->flash.force);
        ASSERT_OK(autoflash_set(a, "ExpectChip", "0x466"));
        ASSERT_EQ(a->expect_chip, 0x466);
        ASSERT_OK(autoflash_set(a, "Baudrate", "3000000"));
        ASSERT_EQ(a->baudrate, 3000000);
        ASSERT_OK(autoflash_set(a, "baudrate", "460800"));
        ASSERT_EQ(a->baudrate, 460800);
        ASSERT_OK(autoflash_set(a, "baudrate", "57600"));
        ASSERT_EQ(a->baudrate, 57600);
        ASSERT_OK(autoflash_set(a, "MatchUSB", "0403:6001"));
        ASSERT_TRUE(a->match_usb && !a->match_any_pid);
        ASSERT_EQ(a->match_vid, 0x0403);
        ASSERT_EQ(a->match_pid, 0x6001);
        ASSERT_OK(autoflash_set(a, "MatchUSB", "10c4:*"));
        ASSERT_TRUE(a->match_usb && a->match_any_pid);
        ASSERT_OK(autoflash_set(a, "MatchSerial", "ST*"));
        ASSERT_STREQ(a->match_serial, "ST*");
        ASSERT_OK(autoflash_set(a, "MatchSerial", ""));
        ASSERT_TRUE(!a->match_serial);

        ASSERT_ERR(autoflash_set(a, "Colour", "red"), ENOENT);
        ASSERT_ERR(autoflash_set(a, "erase", "some"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "verify", "maybe"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "baudrate", "3000001"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "baudrate", "1199"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "baudrate", "0"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "chip", "0x10000"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "MatchUSB", "0403"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "image-name", "a\nb"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "image-name", ""), EINVAL);

        ASSERT_EQ(autoflash_bus_type("vid"), 'q');
        ASSERT_EQ(autoflash_bus_type("serial"), 's');
        ASSERT_EQ(autoflash_bus_type("go"), 'b');
        ASSERT_EQ(autoflash_bus_type("force"), 'b');
        ASSERT_EQ(autoflash_bus_type("MatchUSB"), 0);
        ASSERT_EQ(autoflash_bus_type("colour"), 0);
}

/* A USB adapter udev reported as it appeared. */
static bool usb(const AutoFlash *a, uint16_t vid, uint16_t pid, const char *serial, const char *id_path) {
        AutoFlashCandidate c = {
                .name = "ttyUSB0", .device = "/dev/ttyUSB0", .plugged = true,
                .vid = vid, .pid = pid, .serial = serial, .id_path = id_path,
        };

        return autoflash_matches(a, &c);
}

/* A port added by name (AddPort, "stm32ispctl info NAME"). */
static bool named(const AutoFlash *a, const char *name, const char *device) {
        AutoFlashCandidate c = { .name = name, .device = device };

        return autoflash_matches(a, &c);
}

static void test_image_and_match(void) {
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;
        static const char hex[] = ":0400000001020304F2\n:00000001FF\n";
        Image *img = NULL;

        ASSERT_OK(autoflash_new("bus", &a));
        /* No image: matches nothing. */
        ASSERT_TRUE(!usb(a, 0x403, 0x6001, "A", "p"));
        ASSERT_ERR(autoflash_set_image(a, "", 0, "x"), ERANGE);
        ASSERT_OK(autoflash_set(a, "format", "hex"));
        ASSERT_ERR(autoflash_set_image(a, "garbage", 7, "x"), ERANGE);
        ASSERT_TRUE(!a->data);

        ASSERT_OK(autoflash_set_image(a, hex, sizeof hex - 1, "fw.hex"));
        ASSERT_STREQ(a->image_name, "fw.hex");
        ASSERT_EQ(strlen(a->sha256), 64);
        ASSERT_OK(autoflash_make_image(a, &img));
        ASSERT_EQ(image_size(img), 4);
        image_free(img);

        /* An empty match matches every USB adapter that appears, and no port added by
         * name. */
        ASSERT_TRUE(usb(a, 0x1a86, 0x7523, NULL, NULL));
        ASSERT_TRUE(!named(a, "tcp://10.0.0.5:2000", "tcp://10.0.0.5:2000"));
        ASSERT_TRUE(!named(a, "rfc2217://10.0.0.5:2000", "rfc2217://10.0.0.5:2000"));
        ASSERT_TRUE(!named(a, "ttyAMA0", "/dev/ttyAMA0"));
        ASSERT_OK(autoflash_set(a, "vid", "0x0403"));
        ASSERT_TRUE(usb(a, 0x403, 0x1234, "", ""));
        ASSERT_TRUE(!usb(a, 0x1a86, 0x7523, "", ""));
        ASSERT_OK(autoflash_set(a, "pid", "0x6001"));
        ASSERT_TRUE(!usb(a, 0x403, 0x1234, "", ""));
        ASSERT_TRUE(usb(a, 0x403, 0x6001, "", ""));
        ASSERT_OK(autoflash_set(a, "serial", "STATION0?"));
        ASSERT_TRUE(usb(a, 0x403, 0x6001, "STATION07", ""));
        ASSERT_TRUE(!usb(a, 0x403, 0x6001, "STATION10", ""));
        ASSERT_TRUE(!usb(a, 0x403, 0x6001, NULL, ""));
        ASSERT_OK(autoflash_set(a, "id-path", "pci-0000:00:14.0-usb-0:[1-4]:*"));
        ASSERT_TRUE(usb(a, 0x403, 0x6001, "STATION07", "pci-0000:00:14.0-usb-0:3:1.0"));
        ASSERT_TRUE(!usb(a, 0x403, 0x6001, "STATION07", "pci-0000:00:14.0-usb-0:5:1.0"));
}

static void test_match_port(void) {
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;
        _cleanup_free_ char *what = NULL;
        static const char hex[] = ":0400000001020304F2\n:00000001FF\n";

        ASSERT_OK(autoflash_new("config", &a));
        ASSERT_OK(autoflash_set_image(a, hex, sizeof hex - 1, "fw.hex"));
        ASSERT_OK(autoflash_describe_match(a, &what));
        ASSERT_STREQ(what, "every USB adapter");
        what = mfree(what);

        /* The port glob names the ports, of any transport, by device or name. */
        ASSERT_OK(autoflash_set(a, "MatchPort", "tcp://10.0.0.*:2000"));
        ASSERT_TRUE(named(a, "tcp://10.0.0.5:2000", "tcp://10.0.0.5:2000"));
        ASSERT_TRUE(!named(a, "tcp://10.0.0.5:2001", "tcp://10.0.0.5:2001"));
        ASSERT_TRUE(!named(a, "rfc2217://10.0.0.5:2000", "rfc2217://10.0.0.5:2000"));
        ASSERT_TRUE(!usb(a, 0x403, 0x6001, "", ""));
        ASSERT_OK(autoflash_describe_match(a, &what));
        ASSERT_STREQ(what, "port tcp://10.0.0.*:2000");
        what = mfree(what);
        ASSERT_OK(autoflash_set(a, "port", "ttyUSB*"));
        ASSERT_TRUE(usb(a, 0x403, 0x6001, "", ""));
        ASSERT_TRUE(named(a, "ttyUSB3", "/dev/ttyUSB3"));
        ASSERT_OK(autoflash_set(a, "MatchUSB", "0403:*"));
        ASSERT_OK(autoflash_set(a, "serial", "ST*"));
        ASSERT_TRUE(!usb(a, 0x1a86, 0x7523, "ST1", ""));
        ASSERT_TRUE(usb(a, 0x403, 0x6001, "ST1", ""));
        ASSERT_OK(autoflash_describe_match(a, &what));
        ASSERT_STREQ(what, "port ttyUSB* with USB ID 0403:* with serial ST*");
        what = mfree(what);
        /* Empty: no port glob again. */
        ASSERT_OK(autoflash_set(a, "MatchPort", ""));
        ASSERT_TRUE(!named(a, "ttyUSB3", "/dev/ttyUSB3"));
        ASSERT_OK(autoflash_describe_match(a, &what));
        ASSERT_STREQ(what, "USB adapters with USB ID 0403:* with serial ST*");

        /* Misspelt keys are unknown, never a wider profile. */
        ASSERT_ERR(autoflash_set(a, "MatchVendor", "0403"), ENOENT);
        ASSERT_ERR(autoflash_set(a, "ExpectedChip", "0x466"), ENOENT);
        ASSERT_EQ(autoflash_bus_type("port"), 's');
}

static void test_load_file(void) {
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;
        char path[] = "/tmp/test-autoflash-XXXXXX";
        uint8_t data[300];
        int fd;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 7);
        fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, data, sizeof data), (ssize_t) sizeof data);
        ASSERT_OK(autoflash_new("config", &a));
        ASSERT_OK(autoflash_set(a, "Format", "bin"));
        ASSERT_OK(autoflash_set(a, "Address", "0x08001000"));
        ASSERT_OK(autoflash_load_image(a, path));
        ASSERT_STREQ(a->image_name, strrchr(path, '/') + 1);
        ASSERT_EQ(a->size, sizeof data);
        /* The descriptor's position does not matter. */
        ASSERT_OK(autoflash_load_fd(a, fd, "other"));
        ASSERT_EQ(a->size, sizeof data);
        ASSERT_STREQ(a->image_name, strrchr(path, '/') + 1);
        close(fd);
        unlink(path);
        ASSERT_ERR(autoflash_load_image(a, path), ENOENT);
        ASSERT_ERR(autoflash_load_image(a, "/dev/null"), EINVAL);
}

/* detect=plug|poll and poll-ms: the default, the range, both spellings. */
static void test_detect(void) {
        _cleanup_(autoflash_freep) AutoFlash *a = NULL;

        ASSERT_OK(autoflash_new("config", &a));
        ASSERT_TRUE(!a->detect_poll);
        ASSERT_EQ(a->poll_ms, STM32ISP_POLL_MS_DEFAULT);
        ASSERT_OK(autoflash_set(a, "Detect", "poll"));
        ASSERT_TRUE(a->detect_poll);
        ASSERT_OK(autoflash_set(a, "detect", "plug"));
        ASSERT_TRUE(!a->detect_poll);
        ASSERT_ERR(autoflash_set(a, "Detect", "Poll"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "Detect", ""), EINVAL);
        ASSERT_OK(autoflash_set(a, "PollMs", "100"));
        ASSERT_EQ(a->poll_ms, 100);
        ASSERT_OK(autoflash_set(a, "poll-ms", "10000"));
        ASSERT_EQ(a->poll_ms, 10000);
        ASSERT_ERR(autoflash_set(a, "PollMs", "99"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "PollMs", "10001"), EINVAL);
        ASSERT_EQ(a->poll_ms, 10000);
        /* serial numbers: the file's names, checked as the bus's */
        ASSERT_TRUE(!a->serial.enabled);
        ASSERT_OK(autoflash_set(a, "SnAddress", "0x0800F800"));
        ASSERT_TRUE(a->serial.enabled);
        ASSERT_EQ(a->serial.address, 0x0800F800);
        ASSERT_OK(autoflash_set(a, "SnFirst", "100000"));
        ASSERT_EQ(a->serial.first, 100000);
        ASSERT_OK(autoflash_set(a, "SnFormat", "text:SN%06u"));
        ASSERT_EQ(a->serial.layout.format, SERIAL_FORMAT_TEXT);
        ASSERT_ERR(autoflash_set(a, "SnFormat", "text:%s"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "SnStep", "0"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "SnCounter", "a/b"), EINVAL);
        ASSERT_ERR(autoflash_set(a, "SnAddress", "0x100000000"), EINVAL);
        ASSERT_OK(autoflash_set(a, "sn-counter", "rev-b"));
        ASSERT_STREQ(a->serial.counter, "rev-b");
        ASSERT_EQ(autoflash_bus_type("sn-address"), 't');
        ASSERT_EQ(autoflash_bus_type("detect"), 's');
        ASSERT_EQ(autoflash_bus_type("poll-ms"), 'u');
}

int main(void) {
        TEST(test_settings);
        TEST(test_detect);
        TEST(test_image_and_match);
        TEST(test_match_port);
        TEST(test_load_file);
        return 0;
}
