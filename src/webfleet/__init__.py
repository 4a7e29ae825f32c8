"""webfleet: bake an app AMI and run it behind an ALB and an Auto Scaling Group."""

__version__ = "0.1.0"
