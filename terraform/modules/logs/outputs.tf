# Through the policy: what writes logs here (the ALB tests its access at once) waits for it.
output "bucket_name" {
  description = "Name of the log bucket, known once its policy admits the log writers."
  value       = aws_s3_bucket_policy.logs.bucket
}

output "bucket_arn" {
  description = "ARN of the log bucket."
  value       = aws_s3_bucket.logs.arn
}

output "access_logs_prefix" {
  description = "Key prefix of the ALB access logs."
  value       = var.access_logs_prefix
}

output "flow_logs_destination" {
  description = "S3 destination ARN for VPC flow logs (bucket and prefix)."
  value       = "arn:${data.aws_partition.current.partition}:s3:::${aws_s3_bucket_policy.logs.bucket}/${var.flow_logs_prefix}/"
}
