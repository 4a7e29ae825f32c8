variable "name" {
  description = "Name prefix: the ALB is \"<name>-alb\", its target group \"<name>-tg\" (both at most 32 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,27}$", var.name))
    error_message = "name must match ^[a-z][a-z0-9-]{0,27}$ (ALB and target group names are at most 32 characters including the suffix)."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the ALB, its security group and the target group live in."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnet IDs the internet-facing ALB spans (at least two, in distinct availability zones)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets (in distinct availability zones) for an Application Load Balancer."
  }
}

variable "app_port" {
  description = "Port the application listens on, on the instances: the target group port and the only port the ALB may send to."
  type        = number

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "app_port must be an integer between 1 and 65535."
  }
}

variable "app_security_group_id" {
  description = "Security group of the application instances: the ALB's only egress goes there, on app_port."
  type        = string
}

variable "http_port" {
  description = "Port of the HTTP listener."
  type        = number
  default     = 80

  validation {
    condition     = var.http_port >= 1 && var.http_port <= 65535 && floor(var.http_port) == var.http_port
    error_message = "http_port must be an integer between 1 and 65535."
  }
}

variable "http_action" {
  description = "What the HTTP listener does: \"forward\" to the target group, or \"redirect_https\" (301 to the HTTPS listener)."
  type        = string
  default     = "forward"

  validation {
    condition     = contains(["forward", "redirect_https"], var.http_action)
    error_message = "http_action must be \"forward\" or \"redirect_https\"."
  }

  validation {
    condition     = var.http_action != "redirect_https" || var.https != null
    error_message = "http_action = \"redirect_https\" needs an HTTPS listener: set https."
  }
}

variable "https" {
  description = "The HTTPS listener, or null for none: port, TLS policy and the ARN of the certificate (ACM or IAM)."
  type = object({
    port            = number
    ssl_policy      = optional(string, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    certificate_arn = string
  })
  default = null

  validation {
    condition     = var.https == null || try(var.https.port >= 1 && var.https.port <= 65535 && floor(var.https.port) == var.https.port, false)
    error_message = "https.port must be an integer between 1 and 65535."
  }

  validation {
    condition     = var.https == null || try(var.https.port != var.http_port, false)
    error_message = "https.port must differ from http_port."
  }
}

variable "ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the listener ports."
  type        = list(string)

  validation {
    condition     = length(var.ingress_cidrs) > 0 && alltrue([for c in var.ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "ingress_cidrs must be a non-empty list of valid IPv4 CIDR blocks, e.g. [\"0.0.0.0/0\"]."
  }
}

variable "algorithm" {
  description = "Target group load balancing algorithm: \"round_robin\" or \"least_outstanding_requests\"."
  type        = string
  default     = "round_robin"

  validation {
    condition     = contains(["round_robin", "least_outstanding_requests"], var.algorithm)
    error_message = "algorithm must be \"round_robin\" or \"least_outstanding_requests\"."
  }
}

variable "deregistration_delay" {
  description = "Seconds the target group keeps draining connections of a deregistering target (0-3600)."
  type        = number
  default     = 300

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "deregistration_delay must be between 0 and 3600 seconds."
  }
}

variable "deletion_protection" {
  description = "Refuse deletion of the ALB (a console, CLI or Terraform delete fails until it is turned off)."
  type        = bool
  default     = true
}

variable "access_logs" {
  description = "Access logs: on or off, and the S3 bucket and key prefix they go to (the bucket's policy must admit ELB log delivery, as module logs' does)."
  type = object({
    enabled = bool
    bucket  = optional(string)
    prefix  = optional(string)
  })
  default = { enabled = false }

  validation {
    condition     = !var.access_logs.enabled || var.access_logs.bucket != null
    error_message = "access_logs.enabled needs access_logs.bucket."
  }
}

variable "stickiness" {
  description = "Load-balancer-generated cookie stickiness (lb_cookie): on/off and the cookie duration in seconds (1-604800)."
  type = object({
    enabled  = bool
    duration = number
  })
  default = { enabled = false, duration = 86400 }

  validation {
    condition     = var.stickiness.duration >= 1 && var.stickiness.duration <= 604800
    error_message = "stickiness.duration must be between 1 and 604800 seconds."
  }
}

variable "health_check" {
  description = "Target group health check: HTTP path, matcher (e.g. \"200\" or \"200-299\"), interval and timeout in seconds, healthy and unhealthy thresholds."
  type = object({
    path                = string
    matcher             = string
    interval            = number
    timeout             = number
    healthy_threshold   = number
    unhealthy_threshold = number
  })

  validation {
    condition     = startswith(var.health_check.path, "/")
    error_message = "health_check.path must start with \"/\"."
  }

  validation {
    condition     = can(regex("^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$", var.health_check.matcher))
    error_message = "health_check.matcher must be HTTP codes like \"200\", \"200,302\" or \"200-299\"."
  }

  validation {
    condition     = var.health_check.interval >= 5 && var.health_check.interval <= 300 && var.health_check.timeout >= 2 && var.health_check.timeout <= 120 && var.health_check.timeout < var.health_check.interval
    error_message = "health_check needs 5 <= interval <= 300, 2 <= timeout <= 120 and timeout < interval."
  }

  validation {
    condition     = var.health_check.healthy_threshold >= 2 && var.health_check.healthy_threshold <= 10 && var.health_check.unhealthy_threshold >= 2 && var.health_check.unhealthy_threshold <= 10
    error_message = "health_check.healthy_threshold and unhealthy_threshold must be between 2 and 10."
  }
}

variable "rules" {
  description = "Listener rules: priority (unique, 1-50000), path patterns and/or host headers to match (at least one condition), action \"forward\" (to the target group) or \"fixed_response\" (with fixed_response set)."
  type = list(object({
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
  default = []

  validation {
    condition     = alltrue([for r in var.rules : r.priority >= 1 && r.priority <= 50000 && floor(r.priority) == r.priority])
    error_message = "Each rules[*].priority must be an integer between 1 and 50000."
  }

  validation {
    condition     = length(distinct([for r in var.rules : r.priority])) == length(var.rules)
    error_message = "rules[*].priority values must be unique."
  }

  validation {
    condition     = alltrue([for r in var.rules : contains(["forward", "fixed_response"], r.action)])
    error_message = "Each rules[*].action must be \"forward\" or \"fixed_response\"."
  }

  validation {
    condition     = alltrue([for r in var.rules : length(r.path_patterns) + length(r.host_headers) > 0])
    error_message = "Each rule needs at least one condition: a path pattern or a host header."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.action != "fixed_response" || r.fixed_response != null])
    error_message = "A rule with action \"fixed_response\" needs fixed_response { status_code, content_type, message_body }."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.fixed_response == null ? true : can(regex("^[2-5][0-9][0-9]$", r.fixed_response.status_code))])
    error_message = "rules[*].fixed_response.status_code must be a 2XX, 3XX, 4XX or 5XX code, e.g. \"404\"."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.fixed_response == null ? true : contains(["text/plain", "text/css", "text/html", "application/javascript", "application/json"], r.fixed_response.content_type)])
    error_message = "rules[*].fixed_response.content_type must be one of text/plain, text/css, text/html, application/javascript, application/json."
  }
}

variable "tags" {
  description = "Extra tags for the ALB resources (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}
