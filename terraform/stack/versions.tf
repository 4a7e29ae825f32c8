terraform {
  # 1.9+: variable validations that refer to other variables.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }

  # The path is given at init: terraform init -backend-config=path=.webfleet/<env>/terraform.tfstate
  backend "local" {}
}
