# The stack's log bucket: ALB access logs under alb/, VPC flow logs under vpc-flow-logs/. Private,
# encrypted, TLS only, versioned, and emptied by age (retention_days).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The ELB account that writes access logs in regions opened before August 2022; newer regions
# use the log delivery service principal. The policy admits both, as AWS's documentation does.
data "aws_elb_service_account" "current" {}

locals {
  account_id       = data.aws_caller_identity.current.account_id
  access_logs_path = "${aws_s3_bucket.logs.arn}/${var.access_logs_prefix}/AWSLogs/${local.account_id}/*"
  flow_logs_path   = "${aws_s3_bucket.logs.arn}/${var.flow_logs_prefix}/AWSLogs/${local.account_id}/*"
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the stack's log bucket; logging its own access would log into itself (S3 server access logs go to a separate account-wide bucket, outside the stack)
  #checkov:skip=CKV_AWS_144:log retention is days (retention_days); cross-region replication of access and flow logs is an account-level choice, priced per GB
  #checkov:skip=CKV_AWS_145:ALB access logs can only be delivered to a bucket encrypted with SSE-S3 (AES256), not SSE-KMS
  #checkov:skip=CKV2_AWS_62:nothing consumes events of log deliveries; readers list the prefixes
  bucket = "${var.name}-logs-${local.account_id}"
  # destroy removes the stack entirely, its logs included: copy them out first to keep them.
  force_destroy = true

  tags = merge(var.tags, { Name = "${var.name}-logs" })
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket = aws_s3_bucket.logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    # ACLs off: every object, whoever delivered it, belongs to the bucket's account.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    # Log objects are never overwritten: versions cost nothing and keep a deleted log for a day.
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "AlbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = [local.access_logs_path]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "FlowLogsWrite"
    actions   = ["s3:PutObject"]
    resources = [local.flow_logs_path]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "FlowLogsCheckTheBucket"
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  # S3 refuses a policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
