output "alb_arn" {
  description = "ARN of the Application Load Balancer."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (app/<name>/<id>), as CloudWatch metrics and ALBRequestCountPerTarget want it."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the ALB (for alias records)."
  value       = aws_lb.this.zone_id
}

output "alb_security_group_id" {
  description = "ID of the ALB's security group (the app instances allow their port from it only)."
  value       = aws_security_group.alb.id
}

output "target_group_arn" {
  description = "ARN of the target group the Auto Scaling Group registers its instances in."
  value       = aws_lb_target_group.this.arn
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group (targetgroup/<name>/<id>)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "http_listener_arn" {
  description = "ARN of the HTTP listener."
  value       = aws_lb_listener.http.arn
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener, or null when there is none."
  value       = one(aws_lb_listener.https[*].arn)
}

output "rules_listener_arn" {
  description = "ARN of the listener the listener rules are attached to."
  value       = local.rules_on_https ? aws_lb_listener.https[0].arn : aws_lb_listener.http.arn
}
