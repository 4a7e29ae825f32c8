output "asg_name" {
  description = "Name of the Auto Scaling Group."
  value       = aws_autoscaling_group.this.name
}

output "asg_arn" {
  description = "ARN of the Auto Scaling Group."
  value       = aws_autoscaling_group.this.arn
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "launch_template_latest_version" {
  description = "Latest version of the launch template (the one the group runs)."
  value       = aws_launch_template.this.latest_version
}

output "app_security_group_id" {
  description = "ID of the app instances' security group."
  value       = aws_security_group.app.id
}

output "instance_role_name" {
  description = "Name of the instances' IAM role."
  value       = aws_iam_role.instance.name
}

output "instance_profile_name" {
  description = "Name of the instances' IAM instance profile."
  value       = aws_iam_instance_profile.instance.name
}

output "scaling_policy_arns" {
  description = "ARNs of the target tracking scaling policies."
  value       = concat([aws_autoscaling_policy.cpu.arn], aws_autoscaling_policy.requests[*].arn)
}
