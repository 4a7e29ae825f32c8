#!/bin/bash
B=/tmp/spike/bin; t0=$(date +%s.%N)
for i in 1 2 3; do kill -TERM $(cat /var/tmp/spike/m/c$i/nspawn.pid); done
for i in 1 2 3; do P=$(cat /var/tmp/spike/m/c$i/nspawn.pid); while kill -0 $P 2>/dev/null; do sleep 0.05; done; done
echo "all 3 stopped in $(echo "$(date +%s.%N) - $t0" | bc) s"
for i in 1 2 3; do umount /var/tmp/spike/m/c$i/merged; ip netns del wf-c$i; rm -rf /var/tmp/spike/m/c$i; done
for h in unified systemd; do find /sys/fs/cgroup/$h/webfleet-spike -depth -type d -exec rmdir {} \; ; done
