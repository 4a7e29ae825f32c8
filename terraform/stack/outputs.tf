output "alb_dns_name" {
  description = "DNS name of the ALB: the app's address."
  value       = module.alb.alb_dns_name
}

output "alb_arn" {
  description = "ARN of the ALB."
  value       = module.alb.alb_arn
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the ALB (for alias records)."
  value       = module.alb.alb_zone_id
}

output "target_group_arn" {
  description = "ARN of the target group of the app instances."
  value       = module.alb.target_group_arn
}

output "asg_name" {
  description = "Name of the Auto Scaling Group."
  value       = module.asg.asg_name
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = module.asg.launch_template_id
}

output "launch_template_latest_version" {
  description = "Launch template version the group runs (a new one starts an instance refresh)."
  value       = module.asg.launch_template_latest_version
}

output "ami_id" {
  description = "AMI the instances boot from (var.ami_id, or the newest match of var.base_ami)."
  value       = local.ami_id
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in the order of var.public_subnets."
  value       = module.network.public_subnet_ids
}

output "alb_security_group_id" {
  description = "ID of the ALB's security group."
  value       = module.alb.alb_security_group_id
}

output "app_security_group_id" {
  description = "ID of the app instances' security group."
  value       = module.asg.app_security_group_id
}

output "http_listener_arn" {
  description = "ARN of the HTTP listener."
  value       = module.alb.http_listener_arn
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener, or null when there is none."
  value       = module.alb.https_listener_arn
}

output "key_name" {
  description = "EC2 key pair of the instances (var.key_name, or the one made from var.ssh_public_key), or null."
  value       = local.key_name
}

output "log_bucket" {
  description = "Name of the stack's log bucket (ALB access logs under alb/, VPC flow logs under vpc-flow-logs/), or null when both are off."
  value       = one(module.logs[*].bucket_name)
}
