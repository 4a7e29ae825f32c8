#!/bin/bash
# boot c1..c3 concurrently from the base; time until all answer on :8000 from the host
B=/tmp/spike/bin
for i in 1 2 3; do $B/net-up.sh c$i 10.42.1.1$((i-1)); $B/overlay-up.sh c$i /var/tmp/spike/base; done
t0=$(date +%s.%N)
for i in 1 2 3; do $B/boot.sh c$i; done
declare -A up
while [ ${#up[@]} -lt 3 ]; do
  for i in 1 2 3; do
    [ -n "${up[$i]:-}" ] && continue
    if curl -s -m1 -o /dev/null http://10.42.1.1$((i-1)):8000/; then up[$i]=$(echo "$(date +%s.%N) - $t0" | bc); fi
  done
  sleep 0.1
  [ $(echo "$(date +%s.%N) - $t0 > 120" | bc) = 1 ] && { echo TIMEOUT; break; }
done
echo "port 8000 up: c1=${up[1]:-} c2=${up[2]:-} c3=${up[3]:-}"
for i in 1 2 3; do echo "c$i: $($B/in.sh c$i systemctl is-system-running) $($B/in.sh c$i cloud-init status) $(curl -s -m1 http://10.42.1.1$((i-1)):8000/)"; done
