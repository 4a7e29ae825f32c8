#!/bin/bash
# print the container's PID 1 (host PID): the systemd child of the nspawn process
P=$(cat /var/tmp/spike/m/$1/nspawn.pid)
for c in $(pgrep -P $P); do [ "$(cat /proc/$c/comm)" = systemd ] && echo $c && exit 0; done; exit 1
