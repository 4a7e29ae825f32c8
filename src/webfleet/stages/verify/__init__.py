"""The verify stage: instance specs over SSH, HTTP through the ALB, failover, and their report."""
