"""The local region: an AWS API on loopback whose resources run on this machine."""
