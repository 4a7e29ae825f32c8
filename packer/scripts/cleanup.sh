#!/bin/sh
# Makes the baked instance a clean image. Runs ON THE BUILDER, as root, as the last provisioner:
# every instance launched from the AMI must boot as a new machine (first-boot cloud-init, its own
# SSH host keys and machine-id) and carry nothing of the bake (bundle, caches, logs).
set -eu

say() { echo "cleanup: $*"; }
fail() {
    echo "cleanup: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root"
# Instances get their user data (env file, app start) through cloud-init: an image without it
# would boot but never configure the app.
command -v cloud-init >/dev/null || fail "cloud-init is not installed in the image"

say "removing the app bundle"
rm -rf /tmp/bundle /tmp/app-bundle.tar.gz

say "cleaning apt caches"
apt-get clean

say "resetting cloud-init (runs again, with the instance's own user data, at next boot)"
cloud-init clean --logs

say "removing SSH host keys (regenerated at first boot)"
rm -f /etc/ssh/ssh_host_*

# Empty, not removed: systemd writes a new id at boot only if the file exists and is empty.
say "emptying /etc/machine-id"
truncate -s 0 /etc/machine-id
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
    rm -f /var/lib/dbus/machine-id
fi

say "truncating logs"
if command -v journalctl >/dev/null && [ -d /var/log/journal ]; then
    journalctl --rotate >/dev/null 2>&1 || true
    journalctl --vacuum-time=1s >/dev/null 2>&1 || true
fi
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +

rm -f /root/.bash_history "/home/${SUDO_USER:-admin}/.bash_history"
sync
say "done"
