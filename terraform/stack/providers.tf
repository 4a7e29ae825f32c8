# No endpoints, credentials or skip_* settings here: the same configuration runs against AWS and
# against the local region, which the driver selects through the environment
# (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
