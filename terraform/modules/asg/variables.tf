variable "name" {
  description = "Name of the Auto Scaling Group and launch template, and prefix of its security group, IAM role and instance profile."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name))
    error_message = "name must match ^[a-z][a-z0-9-]{0,27}$."
  }
}

variable "vpc_id" {
  description = "ID of the VPC of the instances."
  type        = string
}

variable "subnet_ids" {
  description = "Subnet IDs the group spreads its instances across (one per availability zone)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids needs at least one subnet."
  }
}

variable "app_port" {
  description = "Port the application listens on: the only port open on the instances, and only to the ALB."
  type        = number

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "app_port must be an integer between 1 and 65535."
  }
}

variable "alb_security_group_id" {
  description = "Security group of the ALB: the only source allowed to reach app_port."
  type        = string
}

variable "target_group_arns" {
  description = "Target groups the group registers its instances in."
  type        = list(string)
  default     = []
}

variable "image_id" {
  description = "AMI ID the instances boot from."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]+$", var.image_id))
    error_message = "image_id must be an AMI ID like \"ami-0123456789abcdef0\"."
  }
}

variable "instance_type" {
  description = "EC2 instance type, e.g. \"t3.micro\"."
  type        = string
}

variable "key_name" {
  description = "EC2 key pair name for SSH, or null for none (SSM Session Manager works without one)."
  type        = string
  default     = null
}

variable "ssh_ingress_cidrs" {
  description = "CIDR blocks allowed to reach port 22 of the instances (a bastion, a CI runner); empty for none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "Each ssh_ingress_cidrs entry must be a valid IPv4 CIDR block."
  }
}

variable "user_data" {
  description = "Rendered cloud-init user data, as plain text; the module base64-encodes it for the launch template."
  type        = string
  default     = ""

  validation {
    condition     = length(var.user_data) <= 16384
    error_message = "user_data must be at most 16 KiB before base64 encoding (the EC2 limit)."
  }
}

variable "metadata_hop_limit" {
  description = "IMDSv2 PUT response hop limit: 1 keeps tokens on the instance; 2 lets containers on it reach the metadata service."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2], var.metadata_hop_limit)
    error_message = "metadata_hop_limit must be 1 or 2."
  }
}

variable "min_size" {
  description = "Minimum number of instances."
  type        = number

  validation {
    condition     = var.min_size >= 0 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a non-negative integer."
  }
}

variable "max_size" {
  description = "Maximum number of instances (>= min_size)."
  type        = number

  validation {
    condition     = var.max_size >= var.min_size && floor(var.max_size) == var.max_size
    error_message = "max_size must be an integer >= min_size."
  }
}

variable "desired_capacity" {
  description = "Number of instances the group starts with (between min_size and max_size)."
  type        = number

  validation {
    condition     = var.desired_capacity >= var.min_size && var.desired_capacity <= var.max_size
    error_message = "desired_capacity must be between min_size and max_size."
  }
}

variable "health_check_type" {
  description = "\"ELB\" (replace instances the target group finds unhealthy) or \"EC2\" (instance status only)."
  type        = string
  default     = "ELB"

  validation {
    condition     = contains(["EC2", "ELB"], var.health_check_type)
    error_message = "health_check_type must be \"EC2\" or \"ELB\"."
  }
}

variable "health_check_grace_period" {
  description = "Seconds after launch before health checks count against an instance."
  type        = number
  default     = 300

  validation {
    condition     = var.health_check_grace_period >= 0
    error_message = "health_check_grace_period must be >= 0 seconds."
  }
}

variable "instance_refresh" {
  description = "Rolling instance refresh, started when the launch template version changes: minimum healthy percentage, warmup seconds, and whether to roll back on failure."
  type = object({
    min_healthy_percentage = number
    instance_warmup        = number
    auto_rollback          = bool
  })
  default = { min_healthy_percentage = 50, instance_warmup = 60, auto_rollback = true }

  validation {
    condition     = var.instance_refresh.min_healthy_percentage >= 0 && var.instance_refresh.min_healthy_percentage <= 100
    error_message = "instance_refresh.min_healthy_percentage must be between 0 and 100."
  }

  validation {
    condition     = var.instance_refresh.instance_warmup >= 0
    error_message = "instance_refresh.instance_warmup must be >= 0 seconds."
  }
}

variable "target_cpu_percent" {
  description = "Target average CPU utilisation (percent) of the target-tracking policy on ASGAverageCPUUtilization."
  type        = number

  validation {
    condition     = var.target_cpu_percent > 0 && var.target_cpu_percent <= 100
    error_message = "target_cpu_percent must be in (0, 100]."
  }
}

variable "target_requests_per_target" {
  description = "Target requests per instance of the ALBRequestCountPerTarget tracking policy, or null for no such policy."
  type        = number
  default     = null

  validation {
    condition     = var.target_requests_per_target == null || try(var.target_requests_per_target > 0, false)
    error_message = "target_requests_per_target must be > 0 (or null)."
  }
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the ALB (app/<name>/<id>); needed with target_requests_per_target."
  type        = string
  default     = null
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the target group (targetgroup/<name>/<id>); needed with target_requests_per_target."
  type        = string
  default     = null

  validation {
    condition     = var.target_requests_per_target == null || (var.target_group_arn_suffix != null && var.alb_arn_suffix != null)
    error_message = "target_requests_per_target needs alb_arn_suffix and target_group_arn_suffix."
  }
}

variable "tags" {
  description = "Tags for the group's resources; also propagated to the instances and their volumes at launch (the provider's default_tags do not reach Auto Scaling Group tags)."
  type        = map(string)
  default     = {}
}
