#!/bin/bash
# usage: boot.sh NAME  -> starts nspawn in background on /var/tmp/spike/m/NAME/merged, netns wf-NAME
# Each machine gets its own cgroup (unified + name=systemd), because --keep-unit makes nspawn
# carve payload/ and supervisor/ out of the cgroup it was started in (here: the root => shared).
set -euo pipefail
N=$1 D=/var/tmp/spike/m/$1
for h in unified systemd; do mkdir -p /sys/fs/cgroup/$h/webfleet-spike/$N; done
date +%s.%N > $D/t0
setsid bash -c '
  for h in unified systemd; do echo $$ > /sys/fs/cgroup/$h/webfleet-spike/'$N'/cgroup.procs; done
  exec systemd-nspawn --boot --keep-unit --register=no --quiet \
    --directory='$D'/merged --machine='$N' --hostname='$N' \
    --network-namespace-path=/run/netns/wf-'$N' \
    --console=read-only --resolv-conf=off --timezone=off --link-journal=no' \
  </dev/null >$D/console.log 2>&1 &
echo $! > $D/nspawn.pid
