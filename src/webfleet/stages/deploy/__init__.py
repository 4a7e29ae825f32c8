"""The deploy and destroy stages: the stack applied with Terraform, and what deploy needs."""
