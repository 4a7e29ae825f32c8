"""The region daemon: starting, serving and stopping it and its helper processes."""
