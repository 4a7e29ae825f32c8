data "aws_partition" "current" {}

locals {
  # Tags the instances and their volumes get at launch (ASG tags and launch template tag
  # specifications are not covered by the provider's default_tags).
  instance_tags = merge(var.tags, { Name = var.name })
}

# --- Security group: app port from the ALB only, everything out ---

resource "aws_security_group" "app" {
  name        = "${var.name}-app"
  description = "App instances of ${var.name}: app port from the ALB only"
  vpc_id      = var.vpc_id

  # Rules are separate resources (see below) so the ALB and app groups can reference each other.
  tags = merge(var.tags, { Name = "${var.name}-app" })
}

resource "aws_vpc_security_group_ingress_rule" "app_from_alb" {
  security_group_id            = aws_security_group.app.id
  description                  = "App port ${var.app_port} from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = var.alb_security_group_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_ingress_cidrs)

  security_group_id = aws_security_group.app.id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.app.id
  description       = "All outbound traffic"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

# --- Instance role: Systems Manager access (Session Manager instead of SSH) ---

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-instance"
  description        = "Role of the ${var.name} app instances"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name

  tags = var.tags
}

# --- Launch template ---

# The AMI's root device, so that the launch template's block device mapping replaces the AMI's
# own (an unencrypted snapshot still gives an encrypted volume).
data "aws_ami" "app" {
  filter {
    name   = "image-id"
    values = [var.image_id]
  }
}

resource "aws_launch_template" "this" {
  name                   = var.name
  description            = "App instances of ${var.name}"
  image_id               = var.image_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  user_data              = base64encode(var.user_data)
  vpc_security_group_ids = [aws_security_group.app.id]
  # Every change makes a new version, which the group below pins and rolls out with a refresh.
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  # The root volume encrypted at rest (the account's default EBS key), whatever the AMI's is.
  block_device_mappings {
    device_name = data.aws_ami.app.root_device_name

    ebs {
      encrypted             = true
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }

  # IMDSv2 only.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_hop_limit
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.instance_tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.instance_tags
  }

  tags = var.tags

  # The role policy must be attached before an instance can use the profile.
  depends_on = [aws_iam_role_policy_attachment.ssm_core]
}

# --- Auto Scaling Group ---

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  health_check_type         = var.health_check_type
  health_check_grace_period = var.health_check_grace_period
  target_group_arns         = var.target_group_arns

  launch_template {
    id = aws_launch_template.this.id
    # A pinned version (not "$Latest"): a new version is a change of this group, which starts the
    # instance refresh below.
    version = aws_launch_template.this.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = var.instance_refresh.min_healthy_percentage
      instance_warmup        = var.instance_refresh.instance_warmup
      auto_rollback          = var.instance_refresh.auto_rollback
    }
  }

  # Target tracking owns the desired capacity once the group exists: re-applying the stack must not
  # undo a scale-out. desired_capacity only seeds the group's first size.
  lifecycle {
    ignore_changes = [desired_capacity]
  }

  dynamic "tag" {
    for_each = local.instance_tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

# --- Target tracking scaling ---

resource "aws_autoscaling_policy" "cpu" {
  name                   = "${var.name}-cpu"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
    target_value = var.target_cpu_percent
  }
}

resource "aws_autoscaling_policy" "requests" {
  count = var.target_requests_per_target == null ? 0 : 1

  name                   = "${var.name}-requests"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
    target_value = var.target_requests_per_target
  }
}
