#!/bin/bash
# usage: in.sh NAME CMD...   run a command inside the machine
N=$1; shift; L=$(/tmp/spike/bin/leader.sh $N) || { echo "no leader" >&2; exit 1; }
exec nsenter -t $L -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "$@"
