variable "name" {
  description = "Name prefix of the bucket: the bucket is <name>-logs-<account id>."
  type        = string
}

variable "retention_days" {
  description = "Days a log object is kept before S3 deletes it (1-3650)."
  type        = number
  default     = 90

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650
    error_message = "retention_days must be between 1 and 3650."
  }
}

variable "access_logs_prefix" {
  description = "Key prefix of the ALB access logs (what the ALB's access_logs block names)."
  type        = string
  default     = "alb"
}

variable "flow_logs_prefix" {
  description = "Key prefix of the VPC flow logs."
  type        = string
  default     = "vpc-flow-logs"
}

variable "tags" {
  description = "Extra tags for the bucket (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}
