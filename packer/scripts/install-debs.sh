#!/bin/sh
# Installs Debian packages from a bundle's flat repository (debs/), offline. Runs ON THE
# INSTANCE, as root, during the bake (install-app.sh calls it).
#
#   install-debs.sh REPO_DIR PACKAGE...
#
# Private lists: only the repository's packages are candidates, and the image's own apt state
# (lists, pkgcache) stays as it was. Packages install but do not start (policy-rc.d).
set -eu

[ "$#" -ge 2 ] || {
    echo "usage: $0 REPO_DIR PACKAGE..." >&2
    exit 2
}
repo=$1
shift
[ -f "$repo/Packages" ] || {
    echo "install-debs: $repo/Packages missing: not a bundle's repository" >&2
    exit 1
}

apt_tmp=$(mktemp -d)
chmod 0755 "$apt_tmp" # apt's sandbox user (_apt) reads the lists it writes here
mkdir -p "$apt_tmp/lists/partial"
echo "deb [trusted=yes] file:$repo ./" >"$apt_tmp/sources.list"
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
trap 'rm -rf "$apt_tmp" /usr/sbin/policy-rc.d' EXIT

apt_repo() {
    # The lock timeout waits out unattended-upgrades, which Debian's AMIs run at boot.
    apt-get -q -o Dir::Etc::SourceList="$apt_tmp/sources.list" -o Dir::Etc::SourceParts=- \
        -o Dir::State::Lists="$apt_tmp/lists" -o Dir::Cache::pkgcache= \
        -o Dir::Cache::srcpkgcache= -o DPkg::Lock::Timeout=300 "$@"
}
export DEBIAN_FRONTEND=noninteractive
apt_repo update --error-on=any >/dev/null
apt_repo install -y --no-install-recommends "$@"
