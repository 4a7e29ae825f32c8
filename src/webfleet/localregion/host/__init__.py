"""The host's process, mount and cgroup tables, shared by everything that cleans up after itself."""
