#!/bin/sh
# Installs the app from an unpacked webfleet app bundle. Runs ON THE INSTANCE, as root, during
# the bake. Offline: apt reads only the bundle's debs/, pip only its wheelhouse/.
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
[ -d "$bundle_dir/app" ] || fail "$bundle_dir/app missing: not an unpacked bundle"
[ -f "$unit_file" ] || fail "unit file $unit_file missing"
# The unit tells the app its port ($PORT); a mismatch would fail every target group health check.
grep -qx "Environment=PORT=$port" "$unit_file" || fail "unit file $unit_file does not set PORT=$port"

field() {
    python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(" ".join(v) if isinstance(v, list) else v)' \
        "$bundle_dir/bundle.json" "$1"
}
runtime=$(field runtime)
packages=$(field packages)
app_home=/opt/$app

echo "install-app: installing $(field name) $(field version) ($runtime) as $app (port $port)"

if [ -n "$packages" ]; then
    echo "install-app: Debian packages: $packages"
    # shellcheck disable=SC2086 # $packages is a list of package names
    sh "$bundle_dir/install-debs.sh" "$bundle_dir/debs" $packages ||
        fail "apt could not install $packages from the bundle's debs/"
fi

if ! getent passwd "$app" >/dev/null; then
    useradd --system --user-group --home-dir "$app_home" --no-create-home \
        --shell /usr/sbin/nologin "$app"
fi

# Code owned by root, readable by the app's group: the service cannot rewrite itself.
install -d -m 0750 -o root -g "$app" "$app_home"
rm -rf "$app_home/app"
cp -a "$bundle_dir/app" "$app_home/app"
chown -R -h root:"$app" "$app_home/app"
chmod -R go-w,o-rwx "$app_home/app"

case "$runtime" in
    python)
        venv=$app_home/venv
        rm -rf "$venv"
        python3 -m venv "$venv"
        # The wheelhouse is exactly what the app needs, resolved on the build host.
        "$venv/bin/python" -m pip install --no-index --no-deps --disable-pip-version-check \
            --no-cache-dir --quiet "$bundle_dir"/wheelhouse/*.whl
        chmod -R go-w "$venv"
        ;;
    node)
        command -v node >/dev/null || fail "node is not installed (the bundle's nodejs package)"
        ;;
    static)
        [ -f "$bundle_dir/config/nginx.conf" ] || fail "$bundle_dir/config/nginx.conf missing"
        install -m 0644 -o root -g root "$bundle_dir/config/nginx.conf" "$app_home/nginx.conf"
        # The package's own server would take port 80; the app's unit runs nginx instead.
        systemctl disable nginx.service 2>/dev/null || true
        ;;
    binary) ;;
    *) fail "unknown runtime '$runtime' in bundle.json" ;;
esac

# The env file goes here at boot (cloud-init user data); it may hold settings, so not world-readable.
install -d -m 0750 -o root -g "$app" "/etc/$app"

install -m 0644 -o root -g root "$unit_file" "/etc/systemd/system/$app.service"
systemctl daemon-reload 2>/dev/null || true # no running systemd in a chroot: enable still works
systemctl enable "$app.service"

echo "install-app: $app installed in $app_home, $app.service enabled"
