variable "name" {
  description = "Resource name prefix, e.g. \"webfleet-demo-local\" (the ALB and target group get short suffixes; their names are at most 32 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name))
    error_message = "name must match ^[a-z][a-z0-9-]{0,27}$: a lower-case letter, then at most 27 lower-case letters, digits or hyphens."
  }
}

variable "region" {
  description = "AWS region, e.g. \"eu-west-1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as \"eu-west-1\"."
  }
}

variable "tags" {
  description = "Tags on every resource (provider default_tags), also propagated to the instances and their volumes."
  type        = map(string)
  default     = {}
}

variable "logs" {
  description = "The stack's log bucket (<name>-logs-<account id>): ALB access logs and VPC flow logs on or off, and the days S3 keeps a log object. No bucket when both are off."
  type = object({
    access_logs    = bool
    flow_logs      = bool
    retention_days = optional(number, 90)
  })
  default = { access_logs = false, flow_logs = false }
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
  description = "Public subnets: CIDR (inside vpc_cidr) and availability zone of each; at least two, in distinct availability zones."
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

variable "app_port" {
  description = "Port the application listens on, on the instances."
  type        = number

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "app_port must be an integer between 1 and 65535."
  }
}

variable "ami_id" {
  description = "AMI of the instances (the baked app image). null: the newest image matching base_ami."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must be an AMI ID like \"ami-0123456789abcdef0\", or null."
  }
}

variable "base_ami" {
  description = "Image to use when ami_id is null: the newest hvm image with these owners, name pattern (wildcards allowed) and architecture."
  type = object({
    owners       = list(string)
    name         = string
    architecture = string
  })

  validation {
    condition     = length(var.base_ami.owners) > 0
    error_message = "base_ami.owners needs at least one owner (account ID or alias such as \"amazon\")."
  }

  validation {
    condition     = contains(["x86_64", "arm64"], var.base_ami.architecture)
    error_message = "base_ami.architecture must be \"x86_64\" or \"arm64\"."
  }
}

variable "instance_type" {
  description = "EC2 instance type, e.g. \"t3.micro\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like \"t3.micro\"."
  }
}

variable "key_name" {
  description = "Existing EC2 key pair for SSH, or null: then the key pair made from ssh_public_key (if given) is used."
  type        = string
  default     = null
}

variable "ssh_public_key" {
  description = "OpenSSH public key to make the key pair \"<name>-webfleet\" from, used when key_name is null; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.ssh_public_key == null || can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) ", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key line (\"ssh-ed25519 AAAA... comment\"), or null."
  }
}

variable "ssh_ingress_cidrs" {
  description = "CIDR blocks allowed to reach port 22 of the instances (e.g. a bastion or CI runner); empty for none (SSM Session Manager needs none)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "Each ssh_ingress_cidrs entry must be a valid IPv4 CIDR block."
  }
}

variable "user_data" {
  description = "Rendered cloud-init user data as plain text (the asg module base64-encodes it); @@WEBFLEET_LOAD_BALANCER_DNS_NAME@@ in it becomes the ALB's DNS name."
  type        = string

  validation {
    condition     = length(var.user_data) <= 16384
    error_message = "user_data must be at most 16 KiB (the EC2 limit, before base64 encoding)."
  }
}

variable "load_balancer" {
  description = "The ALB: HTTP listener port and action (\"forward\" | \"redirect_https\"), optional HTTPS listener (certificate_arn, or PEM files to import into ACM), ingress CIDRs, algorithm (\"round_robin\" | \"least_outstanding_requests\"), deregistration delay, lb_cookie stickiness, deletion protection, health check and listener rules (action \"forward\" | \"fixed_response\")."
  type = object({
    http_port   = number
    http_action = string
    https = optional(object({
      port                       = number
      ssl_policy                 = string
      certificate_arn            = optional(string)
      certificate_pem_file       = optional(string)
      private_key_pem_file       = optional(string)
      certificate_chain_pem_file = optional(string)
    }))
    ingress_cidrs        = list(string)
    algorithm            = string
    deregistration_delay = number
    stickiness = object({
      enabled  = bool
      duration = number
    })
    deletion_protection = optional(bool, false)
    health_check = object({
      path                = string
      matcher             = string
      interval            = number
      timeout             = number
      healthy_threshold   = number
      unhealthy_threshold = number
    })
    rules = list(object({
      priority      = number
      path_patterns = list(string)
      host_headers  = list(string)
      action        = string
      fixed_response = optional(object({
        status_code  = string
        content_type = string
        message_body = string
      }))
    }))
  })

  validation {
    condition     = contains(["forward", "redirect_https"], var.load_balancer.http_action)
    error_message = "load_balancer.http_action must be \"forward\" or \"redirect_https\"."
  }

  validation {
    condition     = var.load_balancer.http_action != "redirect_https" || var.load_balancer.https != null
    error_message = "load_balancer.http_action = \"redirect_https\" needs load_balancer.https."
  }

  validation {
    condition = var.load_balancer.https == null || try(
      var.load_balancer.https.certificate_arn != null || (var.load_balancer.https.certificate_pem_file != null && var.load_balancer.https.private_key_pem_file != null),
    false)
    error_message = "load_balancer.https needs certificate_arn, or both certificate_pem_file and private_key_pem_file (imported into ACM)."
  }

  validation {
    condition = var.load_balancer.https == null || alltrue([
      for f in compact([
        try(var.load_balancer.https.certificate_pem_file, null),
        try(var.load_balancer.https.private_key_pem_file, null),
        try(var.load_balancer.https.certificate_chain_pem_file, null),
      ]) : startswith(f, "/")
    ])
    error_message = "load_balancer.https PEM file paths must be absolute."
  }

  validation {
    condition     = contains(["round_robin", "least_outstanding_requests"], var.load_balancer.algorithm)
    error_message = "load_balancer.algorithm must be \"round_robin\" or \"least_outstanding_requests\"."
  }

  validation {
    condition     = alltrue([for r in var.load_balancer.rules : contains(["forward", "fixed_response"], r.action)])
    error_message = "Each load_balancer.rules[*].action must be \"forward\" or \"fixed_response\"."
  }

  validation {
    condition     = alltrue([for r in var.load_balancer.rules : r.action != "fixed_response" || r.fixed_response != null])
    error_message = "A load_balancer rule with action \"fixed_response\" needs fixed_response { status_code, content_type, message_body }."
  }

  validation {
    condition     = length(distinct([for r in var.load_balancer.rules : r.priority])) == length(var.load_balancer.rules)
    error_message = "load_balancer.rules[*].priority values must be unique."
  }
}

variable "asg" {
  description = "The Auto Scaling Group: size, health check type (\"EC2\" | \"ELB\") and grace period, and the rolling instance refresh preferences."
  type = object({
    min_size                  = number
    max_size                  = number
    desired_capacity          = number
    health_check_type         = string
    health_check_grace_period = number
    instance_refresh = object({
      min_healthy_percentage = number
      instance_warmup        = number
      auto_rollback          = bool
    })
  })

  validation {
    condition     = var.asg.min_size >= 0 && var.asg.min_size <= var.asg.desired_capacity && var.asg.desired_capacity <= var.asg.max_size
    error_message = "asg needs 0 <= min_size <= desired_capacity <= max_size."
  }

  validation {
    condition     = contains(["EC2", "ELB"], var.asg.health_check_type)
    error_message = "asg.health_check_type must be \"EC2\" or \"ELB\"."
  }
}

variable "scaling" {
  description = "Target tracking: average CPU percent, and optionally requests per target (ALBRequestCountPerTarget)."
  type = object({
    target_cpu_percent         = number
    target_requests_per_target = optional(number)
  })

  validation {
    condition     = var.scaling.target_cpu_percent > 0 && var.scaling.target_cpu_percent <= 100
    error_message = "scaling.target_cpu_percent must be in (0, 100]."
  }

  validation {
    condition     = var.scaling.target_requests_per_target == null || try(var.scaling.target_requests_per_target > 0, false)
    error_message = "scaling.target_requests_per_target must be > 0, or omitted."
  }
}
