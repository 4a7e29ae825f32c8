#!/bin/bash
# usage: net-up.sh NAME IP   (bridge wfbr-test 10.42.1.1/24 created if missing)
set -euo pipefail
N=$1 IP=$2 BR=wfbr-test
if ! ip link show $BR >/dev/null 2>&1; then
  ip link add $BR type bridge
  ip addr add 10.42.1.1/24 dev $BR
  ip link set $BR up
fi
ip netns add wf-$N
ip link add wfv-$N type veth peer name eth0 netns wf-$N
ip link set wfv-$N master $BR up
ip -n wf-$N addr add $IP/24 dev eth0
ip -n wf-$N link set eth0 up
ip -n wf-$N link set lo up
ip -n wf-$N route add 169.254.169.254/32 dev eth0   # IMDS on-link on the VPC bridge; still no default route
