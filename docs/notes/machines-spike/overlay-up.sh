#!/bin/bash
# usage: overlay-up.sh NAME LOWERDIRS
set -euo pipefail
N=$1 LOWER=$2 D=/var/tmp/spike/m/$N
mkdir -p $D/upper $D/work $D/merged
mount -t overlay overlay -o lowerdir=$LOWER,upperdir=$D/upper,workdir=$D/work $D/merged
