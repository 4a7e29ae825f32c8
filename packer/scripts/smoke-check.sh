#!/bin/sh
# Starts the baked service once and waits for its health check, before the AMI is made. Runs ON
# THE BUILDER, as root, after install-app.sh. A failure ends the bake: no AMI is registered.
#
#   smoke-check.sh APP_NAME APP_PORT HEALTH_CHECK_PATH MATCHER ENV_FILE [SECONDS]
#
# ENV_FILE is the rendered env file (the instances get theirs from user data at boot).
set -eu

usage() {
    echo "usage: $0 APP_NAME APP_PORT HEALTH_CHECK_PATH MATCHER ENV_FILE [SECONDS]" >&2
    exit 2
}
[ "$#" -ge 5 ] && [ "$#" -le 6 ] || usage
app=$1
port=$2
path=$3
matcher=$4
env_source=$5
seconds=${6:-60}
env_file=/etc/$app/app.env

# The target group's matcher: "200", "200,302" or "200-299".
matches() {
    for code in $(echo "$matcher" | tr ',' ' '); do
        case "$code" in
            *-*) [ "$1" -ge "${code%-*}" ] && [ "$1" -le "${code#*-}" ] && return 0 ;;
            *) [ "$1" = "$code" ] && return 0 ;;
        esac
    done
    return 1
}

cleanup() {
    systemctl stop "$app.service" 2>/dev/null || true
    systemctl reset-failed "$app.service" 2>/dev/null || true
    rm -f "$env_file"
}
trap cleanup EXIT

install -m 0600 -o "$app" -g "$app" "$env_source" "$env_file"
echo "smoke-check: starting $app.service, waiting up to ${seconds}s for GET $path on port $port ($matcher)"
systemctl start "$app.service"
deadline=$(($(date +%s) + seconds))
code=none
while [ "$(date +%s)" -lt "$deadline" ]; do
    code=$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://127.0.0.1:$port$path" || true)
    if [ "$code" != "000" ] && matches "$code"; then
        echo "smoke-check: $app answered $path with $code"
        exit 0
    fi
    # A start command that exits at once only restarts (Restart=on-failure): no use waiting.
    restarts=$(systemctl show -p NRestarts --value "$app.service" 2>/dev/null || echo 0)
    if [ "${restarts:-0}" -ge 3 ]; then
        echo "smoke-check: $app.service exited $restarts times: app.start does not keep running." >&2
        break
    fi
    sleep 1
done
echo "smoke-check: $app did not answer GET $path on port $port with $matcher within ${seconds}s (last: $code)." >&2
echo "smoke-check: check app.start binds 0.0.0.0:\$PORT ($port) and serves app.health_check_path. Its last journal lines:" >&2
journalctl -u "$app.service" -n 30 --no-pager -o cat >&2 || true
exit 1
