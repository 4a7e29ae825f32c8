"""Auto Scaling in the local region: group health, members leaving, refreshes, target tracking."""
