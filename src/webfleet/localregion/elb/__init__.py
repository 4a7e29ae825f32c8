"""Elastic Load Balancing in the local region: every ALB an HAProxy process, and its DNS name."""
