variable "name" {
  description = "Name prefix for every resource of the network (VPC, subnets, gateway, route table)."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC, e.g. \"10.20.0.0/16\"."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block, e.g. \"10.20.0.0/16\"."
  }
}

variable "public_subnets" {
  description = "Public subnets to create: each with its CIDR (inside vpc_cidr) and availability zone. At least two, in distinct availability zones (an ALB needs two)."
  type = list(object({
    cidr              = string
    availability_zone = string
  }))

  validation {
    condition     = length(var.public_subnets) >= 2
    error_message = "public_subnets needs at least two subnets: an Application Load Balancer spans at least two availability zones."
  }

  validation {
    condition     = length(distinct([for s in var.public_subnets : s.availability_zone])) == length(var.public_subnets)
    error_message = "Each entry of public_subnets must use a different availability_zone."
  }

  validation {
    condition     = alltrue([for s in var.public_subnets : can(cidrhost(s.cidr, 0))])
    error_message = "Each public_subnets[*].cidr must be a valid IPv4 CIDR block, e.g. \"10.20.1.0/24\"."
  }
}

variable "flow_logs" {
  description = "VPC flow logs: on or off, and the S3 destination ARN (bucket and prefix, e.g. module logs' flow_logs_destination)."
  type = object({
    enabled     = bool
    destination = optional(string)
  })
  default = { enabled = false }

  validation {
    condition     = !var.flow_logs.enabled || var.flow_logs.destination != null
    error_message = "flow_logs.enabled needs flow_logs.destination, an S3 ARN such as arn:aws:s3:::bucket/prefix/."
  }
}

variable "tags" {
  description = "Extra tags for the network resources (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}
