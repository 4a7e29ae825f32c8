#!/bin/sh
# Installs the app from an unpacked webfleet app bundle. Runs ON THE INSTANCE, as root, during
# the bake. Offline: pip reads only the bundle's wheelhouse, never an index.
#
#   install-app.sh BUNDLE_DIR APP_NAME APP_PORT UNIT_FILE
#
# The service is enabled, not started: its env file is written at boot by cloud-init user data.
set -eu

usage() {
    echo "usage: $0 BUNDLE_DIR APP_NAME APP_PORT UNIT_FILE" >&2
    exit 2
}
fail() {
    echo "install-app: $*" >&2
    exit 1
}

[ "$#" -eq 4 ] || usage
bundle_dir=$1
app=$2
port=$3
unit_file=$4

# Same rule as webfleet's app.name, so the name is safe as a user, a path and a unit name.
case "$app" in
    "" | [!a-z]* | *[!a-z0-9-]*) fail "app name '$app' must be a lowercase letter, then lowercase letters, digits or '-'" ;;
esac
case "$port" in
    "" | *[!0-9]*) fail "app port '$port' must be a number" ;;
esac
[ "$(id -u)" -eq 0 ] || fail "must run as root"
[ -f "$bundle_dir/bundle.json" ] || fail "$bundle_dir/bundle.json missing: not an unpacked bundle"
[ -d "$bundle_dir/wheelhouse" ] || fail "$bundle_dir/wheelhouse missing: not an unpacked bundle"
[ -f "$unit_file" ] || fail "unit file $unit_file missing"
# The unit tells the app its port ($PORT); a mismatch would fail every target group health check.
grep -qx "Environment=PORT=$port" "$unit_file" || fail "unit file $unit_file does not set PORT=$port"

app_home=/opt/$app
venv=$app_home/venv
# The distribution to install (e.g. webfleet-app) differs from the app name: bundle.json says.
package=$(python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print(b["name"] + "==" + b["version"])' \
    "$bundle_dir/bundle.json")

echo "install-app: installing $package as $app (port $port)"

if ! getent passwd "$app" >/dev/null; then
    useradd --system --user-group --home-dir "$app_home" --no-create-home \
        --shell /usr/sbin/nologin "$app"
fi

# Code owned by root, readable by the app's group: the service cannot rewrite itself.
install -d -m 0750 -o root -g "$app" "$app_home"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --no-index --find-links "$bundle_dir/wheelhouse" \
    --disable-pip-version-check --no-cache-dir --quiet "$package"
chmod -R go-w "$venv"

# The env file goes here at boot (cloud-init user data); it may hold settings, so not world-readable.
install -d -m 0750 -o root -g "$app" "/etc/$app"

install -m 0644 -o root -g root "$unit_file" "/etc/systemd/system/$app.service"
systemctl daemon-reload 2>/dev/null || true # no running systemd in a chroot: enable still works
systemctl enable "$app.service"

echo "install-app: $app installed in $venv, $app.service enabled"
