"""Typed drivers over the installed Packer and Terraform CLIs."""
