locals {
  # The ports clients may reach: the HTTP listener and, when present, the HTTPS one.
  listener_ports = var.https == null ? [var.http_port] : [var.http_port, var.https.port]

  # Rules go where requests are actually served: on the HTTPS listener when HTTP only redirects
  # to it, else on the HTTP listener.
  rules_on_https = var.https != null && var.http_action == "redirect_https"
}

# --- Security group: listener ports in from ingress_cidrs, app port out to the app instances ---

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "ALB ${var.name}: listener ports from the allowed CIDRs, app port to the app instances"
  vpc_id      = var.vpc_id

  # No inline rules: the rules below are separate resources (the app SG references this group and
  # this group references the app SG, which inline rules would turn into a cycle).
  tags = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "listener" {
  for_each = {
    for pair in setproduct(local.listener_ports, var.ingress_cidrs) :
    "${pair[0]}-${pair[1]}" => { port = pair[0], cidr = pair[1] }
  }

  security_group_id = aws_security_group.alb.id
  description       = "Listener port ${each.value.port} from ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "to_app" {
  security_group_id            = aws_security_group.alb.id
  description                  = "App port ${var.app_port} to the app instances (traffic and health checks)"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = var.app_security_group_id

  tags = var.tags
}

# --- Load balancer and target group ---

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20:http_action is redirect_https whenever the stack has a certificate, which an AWS environment must have unless its stack file says plain_http = true (and deploy warns)
  #checkov:skip=CKV2_AWS_28:a WAF web ACL is account policy, priced per request: associate one with aws_wafv2_web_acl_association outside this module
  name                       = "${var.name}-alb"
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    enabled = var.access_logs.enabled
    bucket  = var.access_logs.enabled ? var.access_logs.bucket : ""
    prefix  = var.access_logs.enabled ? var.access_logs.prefix : null
  }

  tags = merge(var.tags, { Name = "${var.name}-alb" })
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; ALB to instance stays inside the VPC, where the app port admits only the ALB's security group (module asg)
  name                          = "${var.name}-tg"
  vpc_id                        = var.vpc_id
  port                          = var.app_port
  protocol                      = "HTTP"
  target_type                   = "instance"
  load_balancing_algorithm_type = var.algorithm
  deregistration_delay          = var.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check.path
    matcher             = var.health_check.matcher
    interval            = var.health_check.interval
    timeout             = var.health_check.timeout
    healthy_threshold   = var.health_check.healthy_threshold
    unhealthy_threshold = var.health_check.unhealthy_threshold
  }

  stickiness {
    type            = "lb_cookie"
    enabled         = var.stickiness.enabled
    cookie_duration = var.stickiness.duration
  }

  tags = merge(var.tags, { Name = "${var.name}-tg" })
}

# --- Listeners ---

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:http_action is redirect_https whenever the stack has a certificate, which an AWS environment must have unless its stack file says plain_http = true (and deploy warns)
  #checkov:skip=CKV_AWS_103:no TLS on this listener: http_action is redirect_https whenever the stack has a certificate, which an AWS environment must have unless its stack file says plain_http = true (and deploy warns)
  load_balancer_arn = aws_lb.this.arn
  port              = var.http_port
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = var.http_action == "forward" ? [1] : []
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.this.arn
    }
  }

  dynamic "default_action" {
    for_each = var.http_action == "redirect_https" ? [1] : []
    content {
      type = "redirect"
      redirect {
        protocol    = "HTTPS"
        port        = tostring(var.https.port)
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count = var.https == null ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = var.https.port
  protocol          = "HTTPS"
  ssl_policy        = var.https.ssl_policy
  certificate_arn   = var.https.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# --- Listener rules ---

resource "aws_lb_listener_rule" "this" {
  for_each = { for r in var.rules : tostring(r.priority) => r }

  listener_arn = local.rules_on_https ? aws_lb_listener.https[0].arn : aws_lb_listener.http.arn
  priority     = each.value.priority

  dynamic "condition" {
    for_each = length(each.value.path_patterns) > 0 ? [each.value.path_patterns] : []
    content {
      path_pattern {
        values = condition.value
      }
    }
  }

  dynamic "condition" {
    for_each = length(each.value.host_headers) > 0 ? [each.value.host_headers] : []
    content {
      host_header {
        values = condition.value
      }
    }
  }

  dynamic "action" {
    for_each = each.value.action == "forward" ? [1] : []
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.this.arn
    }
  }

  dynamic "action" {
    for_each = each.value.action == "fixed_response" ? [each.value.fixed_response] : []
    content {
      type = "fixed-response"
      fixed_response {
        status_code  = action.value.status_code
        content_type = action.value.content_type
        message_body = action.value.message_body
      }
    }
  }

  tags = var.tags
}
