#!/bin/sh
# Installs the Debian packages stm32ispd needs to build and test, when missing.
# Idempotent: does nothing (and needs no network) when everything is there.
set -eu

PACKAGES="build-essential autoconf automake autoconf-archive libtool pkg-config
libsystemd-dev libudev-dev libserialport-dev libelf-dev libjson-c-dev libinih-dev nettle-dev
libtelnet-dev ser2net python3-serial
libumockdev-dev umockdev dbus-daemon python3 python3-gi gir1.2-glib-2.0
stm32flash systemd clang libclang-rt-14-dev valgrind
udev libdbus-1-dev util-linux libglib2.0-bin man-db
systemd-container debootstrap"

missing=""
for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
        echo "Missing Debian packages:$missing" >&2
        echo "Run as root, or: sudo apt-get install$missing" >&2
        exit 1
fi
echo "Installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
