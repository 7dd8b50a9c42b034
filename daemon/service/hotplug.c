/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* USB-serial ttys from libudev: enumeration and a monitor on sd-event. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <libudev.h>

#include "hotplug.h"
#include "string-util.h"

struct Hotplug {
        struct udev *udev;
        struct udev_monitor *monitor;
        sd_event_source *source;
        hotplug_added_t added;
        hotplug_removed_t removed;
        void *userdata;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev_enumerate *, udev_enumerate_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev_device *, udev_device_unref);

static bool is_usb_serial(struct udev_device *d) {
        for (struct udev_device *p = udev_device_get_parent(d); p; p = udev_device_get_parent(p)) {
                if (streq_ptr(udev_device_get_subsystem(p), "usb-serial") ||
                    streq_ptr(udev_device_get_driver(p), "cdc_acm"))
                        return true;
                if (streq_ptr(udev_device_get_subsystem(p), "usb") && udev_device_get_sysattr_value(p, "idVendor"))
                        break;  /* reached the USB device without passing a serial driver */
        }
        return false;
}

static struct udev_device *usb_device_of(struct udev_device *d) {
        for (struct udev_device *p = udev_device_get_parent(d); p; p = udev_device_get_parent(p))
                if (udev_device_get_sysattr_value(p, "idVendor"))
                        return p;
        return NULL;
}

static uint16_t hex16(const char *s) {
        char *end;
        unsigned long v;

        if (!s)
                return 0;
        errno = 0;
        v = strtoul(s, &end, 16);
        if (errno || end == s || v > 0xFFFF)
                return 0;
        return (uint16_t) v;
}

static const char *first_of(const char *a, const char *b) {
        return a && *a ? a : b;
}

static void device_added(Hotplug *h, struct udev_device *d) {
        struct udev_device *usb;
        const char *devnode = udev_device_get_devnode(d);
        PortInfo info = {};

        if (!devnode || !is_usb_serial(d))
                return;
        usb = usb_device_of(d);

        info.name = udev_device_get_sysname(d);
        info.device = devnode;
        info.transport = LINK_TRANSPORT_SERIAL;
        info.vendor_id = hex16(first_of(udev_device_get_property_value(d, "ID_VENDOR_ID"),
                                        usb ? udev_device_get_sysattr_value(usb, "idVendor") : NULL));
        info.product_id = hex16(first_of(udev_device_get_property_value(d, "ID_MODEL_ID"),
                                         usb ? udev_device_get_sysattr_value(usb, "idProduct") : NULL));
        info.serial = first_of(udev_device_get_property_value(d, "ID_SERIAL_SHORT"),
                               usb ? udev_device_get_sysattr_value(usb, "serial") : NULL);
        info.manufacturer = first_of(usb ? udev_device_get_sysattr_value(usb, "manufacturer") : NULL,
                                     udev_device_get_property_value(d, "ID_VENDOR"));
        info.product = first_of(usb ? udev_device_get_sysattr_value(usb, "product") : NULL,
                                udev_device_get_property_value(d, "ID_MODEL"));
        info.physical_path = udev_device_get_property_value(d, "ID_PATH");
        info.mm_ignored = streq_ptr(udev_device_get_property_value(d, "ID_MM_DEVICE_IGNORE"), "1");
        h->added(h->userdata, &info);
}

static int on_monitor(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Hotplug *h = userdata;

        for (;;) {
                _cleanup_(udev_device_unrefp) struct udev_device *d = udev_monitor_receive_device(h->monitor);
                const char *action;

                if (!d)
                        break;
                action = udev_device_get_action(d);
                if (streq_ptr(action, "add"))
                        device_added(h, d);
                else if (streq_ptr(action, "remove") && udev_device_get_sysname(d))
                        h->removed(h->userdata, udev_device_get_sysname(d));
        }
        return 0;
}

static int enumerate(Hotplug *h) {
        _cleanup_(udev_enumerate_unrefp) struct udev_enumerate *e = NULL;
        struct udev_list_entry *entry;
        int r;

        e = udev_enumerate_new(h->udev);
        if (!e)
                return -ENOMEM;
        r = udev_enumerate_add_match_subsystem(e, "tty");
        if (r < 0)
                return r;
        r = udev_enumerate_scan_devices(e);
        if (r < 0)
                return r;
        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                _cleanup_(udev_device_unrefp) struct udev_device *d =
                        udev_device_new_from_syspath(h->udev, udev_list_entry_get_name(entry));

                if (d)
                        device_added(h, d);
        }
        return 0;
}

int hotplug_new(sd_event *event, hotplug_added_t added, hotplug_removed_t removed, void *userdata,
                Hotplug **ret) {
        _cleanup_(hotplug_freep) Hotplug *h = NULL;
        int r;

        h = calloc(1, sizeof(Hotplug));
        if (!h)
                return -ENOMEM;
        h->added = added;
        h->removed = removed;
        h->userdata = userdata;
        h->udev = udev_new();
        if (!h->udev)
                return -ENOMEM;

        h->monitor = udev_monitor_new_from_netlink(h->udev, "udev");
        if (h->monitor) {
                r = udev_monitor_filter_add_match_subsystem_devtype(h->monitor, "tty", NULL);
                if (r >= 0)
                        r = udev_monitor_enable_receiving(h->monitor);
                if (r >= 0)
                        r = sd_event_add_io(event, &h->source, udev_monitor_get_fd(h->monitor), EPOLLIN,
                                            on_monitor, h);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(h->source, "udev-monitor");
        }
        /* No monitor (no netlink in a sandbox): run with the enumerated ports only. */

        r = enumerate(h);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

Hotplug *hotplug_free(Hotplug *h) {
        if (!h)
                return NULL;
        sd_event_source_disable_unref(h->source);
        udev_monitor_unref(h->monitor);
        udev_unref(h->udev);
        free(h);
        return NULL;
}
