#!/bin/bash
# IMDS endpoint of the VPC: its own netns on the VPC bridge holding 169.254.169.254 (host routing untouched)
set -euo pipefail
BR=wfbr-test NS=wf-imds-test
ip netns add $NS
ip link add wfv-imds type veth peer name eth0 netns $NS
ip link set wfv-imds master $BR up
ip -n $NS addr add 169.254.169.254/32 dev eth0
ip -n $NS link set eth0 up
ip -n $NS link set lo up
ip -n $NS route add 10.42.1.0/24 dev eth0      # VPC subnet on-link
setsid ip netns exec $NS python3 /tmp/spike/bin/imds.py /tmp/spike/imds.json </dev/null >>/tmp/spike/imds.log 2>&1 &
echo $! > /tmp/spike/imds.pid
