#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A client that is not sd-bus: GDBus from Python probes and flashes a simulated board,
# passing the image as a file descriptor. Run by test-daemon --python (which provides
# the bus, the daemon, the board and checks the board's flash afterwards).

import os
import sys

try:
    import gi
    gi.require_version('Gio', '2.0')
    from gi.repository import Gio, GLib
except (ImportError, ValueError) as e:
    print('python3-gi is missing:', e, file=sys.stderr)
    sys.exit(77)

BUS_NAME = 'io.github.Stm32Isp1'
MANAGER_PATH = '/io/github/Stm32Isp1'

address = os.environ['STM32ISP_TEST_ADDRESS']
url = os.environ['STM32ISP_TEST_URL']
image = os.environ['STM32ISP_TEST_IMAGE']

bus = Gio.DBusConnection.new_for_address_sync(
    address,
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)

manager = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, BUS_NAME, MANAGER_PATH,
                                 'io.github.Stm32Isp1.Manager', None)
assert manager.get_cached_property('Version').unpack(), 'no Version'

(path,) = manager.call_sync('AddPort', GLib.Variant('(sa{sv})', (url, {})),
                            Gio.DBusCallFlags.NONE, -1, None).unpack()
(same,) = manager.call_sync('GetPort', GLib.Variant('(s)', (url,)),
                            Gio.DBusCallFlags.NONE, -1, None).unpack()
assert same == path, (same, path)

port = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, BUS_NAME, path,
                              'io.github.Stm32Isp1.Port', None)
assert port.get_cached_property('Transport').unpack() == 'tcp'
assert port.get_cached_property('State').unpack() == 'idle'

(chip,) = port.call_sync('Probe', GLib.Variant('(a{sv})', ({},)), Gio.DBusCallFlags.NONE, -1, None).unpack()
assert chip['pid'] == 0x466, chip
assert chip['name'], chip

# A bad option is InvalidArgs, naming the key.
try:
    port.call_sync('Probe', GLib.Variant('(a{sv})', ({'speed': GLib.Variant('u', 9600)},)),
                   Gio.DBusCallFlags.NONE, -1, None)
    raise AssertionError('bad option accepted')
except GLib.Error as e:
    assert Gio.DBusError.get_remote_error(e) == 'org.freedesktop.DBus.Error.InvalidArgs', e.message
    assert 'speed' in e.message, e.message

signals = []
port.connect('g-signal', lambda proxy, sender, name, params: signals.append((name, params.unpack())))

fds = Gio.UnixFDList.new()
fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
index = fds.append(fd)
os.close(fd)

loop = GLib.MainLoop()
outcome = {}


def flashed(proxy, res):
    try:
        outcome['reply'] = proxy.call_with_unix_fd_list_finish(res)
    except GLib.Error as e:
        outcome['error'] = e
    loop.quit()


options = {'format': GLib.Variant('s', 'bin'), 'verify': GLib.Variant('b', True)}
port.call_with_unix_fd_list('Flash', GLib.Variant('(ha{sv})', (index, options)),
                            Gio.DBusCallFlags.NONE, 60000, fds, None, flashed)
GLib.timeout_add_seconds(60, loop.quit)
loop.run()

assert 'error' not in outcome, outcome.get('error')
reply, _ = outcome['reply']
(result,) = reply.unpack()
size = os.path.getsize(image)
assert result['error'] == '', result
assert result['bytes_written'] >= size, result
assert result['bytes_verified'] >= size, result

# Signals from the same sender arrive in order, before the reply (the Probe's, still
# queued when the handler was connected, come first).
assert signals[-1] == ('Finished', ('flash', '', '')), signals
progress = [args for n, args in signals if n == 'Progress']
assert ('writing', size, size) in progress, progress
assert ('verifying', size, size) in progress, progress

print('gdbus client: probed 0x%03x and flashed %d bytes' % (chip['pid'], size))
