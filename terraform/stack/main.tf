# The web app stack: network, ALB + target group, Auto Scaling Group + scaling policies.

data "aws_ami" "base" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = var.base_ami.owners

  filter {
    name   = "name"
    values = [var.base_ami.name]
  }

  filter {
    name   = "architecture"
    values = [var.base_ami.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.base[0].id

  # The stack's own key pair, or the one made from webfleet's generated key, or none.
  key_name = var.key_name != null ? var.key_name : one(aws_key_pair.webfleet[*].key_name)

  https = var.load_balancer.https
  # Import the certificate into ACM only when PEM files are given and no ARN is.
  import_certificate = local.https != null && try(local.https.certificate_arn == null, false)
}

resource "aws_acm_certificate" "imported" {
  count = local.import_certificate ? 1 : 0

  certificate_body  = file(local.https.certificate_pem_file)
  private_key       = file(local.https.private_key_pem_file)
  certificate_chain = local.https.certificate_chain_pem_file == null ? null : file(local.https.certificate_chain_pem_file)

  lifecycle {
    # A listener keeps using the old certificate until the new one exists.
    create_before_destroy = true
  }
}

# webfleet's generated key (.webfleet/<env>/ssh/), for stacks that name no key pair of their own.
resource "aws_key_pair" "webfleet" {
  count = var.key_name == null && var.ssh_public_key != null ? 1 : 0

  key_name   = "${var.name}-webfleet"
  public_key = var.ssh_public_key
}

module "logs" {
  source = "../modules/logs"
  count  = var.logs.access_logs || var.logs.flow_logs ? 1 : 0

  name           = var.name
  retention_days = var.logs.retention_days
}

module "network" {
  source = "../modules/network"

  name           = var.name
  vpc_cidr       = var.vpc_cidr
  public_subnets = var.public_subnets
  flow_logs = {
    enabled     = var.logs.flow_logs
    destination = var.logs.flow_logs ? module.logs[0].flow_logs_destination : null
  }
}

module "alb" {
  source = "../modules/alb"

  name                  = var.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.public_subnet_ids
  app_port              = var.app_port
  app_security_group_id = module.asg.app_security_group_id

  http_port   = var.load_balancer.http_port
  http_action = var.load_balancer.http_action
  https = local.https == null ? null : {
    port            = local.https.port
    ssl_policy      = local.https.ssl_policy
    certificate_arn = local.import_certificate ? aws_acm_certificate.imported[0].arn : local.https.certificate_arn
  }
  ingress_cidrs        = var.load_balancer.ingress_cidrs
  algorithm            = var.load_balancer.algorithm
  deregistration_delay = var.load_balancer.deregistration_delay
  stickiness           = var.load_balancer.stickiness
  deletion_protection  = var.load_balancer.deletion_protection
  access_logs = {
    enabled = var.logs.access_logs
    bucket  = var.logs.access_logs ? module.logs[0].bucket_name : null
    prefix  = var.logs.access_logs ? module.logs[0].access_logs_prefix : null
  }
  health_check = var.load_balancer.health_check
  rules        = var.load_balancer.rules
}

module "asg" {
  source = "../modules/asg"

  name                  = var.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.public_subnet_ids
  app_port              = var.app_port
  alb_security_group_id = module.alb.alb_security_group_id
  target_group_arns     = [module.alb.target_group_arn]

  image_id      = local.ami_id
  instance_type = var.instance_type
  key_name      = local.key_name
  # The env file in the user data names the ALB (APP_LOAD_BALANCER_DNS_NAME, APP_URL), which
  # exists only from here on: webfleet renders a placeholder for its DNS name.
  user_data = replace(var.user_data, "@@WEBFLEET_LOAD_BALANCER_DNS_NAME@@", module.alb.alb_dns_name)

  ssh_ingress_cidrs = var.ssh_ingress_cidrs

  min_size                  = var.asg.min_size
  max_size                  = var.asg.max_size
  desired_capacity          = var.asg.desired_capacity
  health_check_type         = var.asg.health_check_type
  health_check_grace_period = var.asg.health_check_grace_period
  instance_refresh          = var.asg.instance_refresh

  target_cpu_percent         = var.scaling.target_cpu_percent
  target_requests_per_target = var.scaling.target_requests_per_target
  alb_arn_suffix             = module.alb.alb_arn_suffix
  target_group_arn_suffix    = module.alb.target_group_arn_suffix

  # Provider default_tags do not reach ASG tags or launch template tag specifications.
  tags = var.tags
}
