# A VPC with public subnets only: the ALB and the instances live in them, and instances reach
# the internet (package mirrors, SSM) through the internet gateway.

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# The VPC's default security group, emptied of its rules: nothing here uses it, so an instance
# or endpoint put in it by mistake gets no traffic at all (CIS AWS Foundations 5.4).
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-default" })
}

# Every accepted and rejected flow of the VPC, to the stack's log bucket (module logs).
resource "aws_flow_log" "this" {
  count = var.flow_logs.enabled ? 1 : 0

  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "s3"
  log_destination          = var.flow_logs.destination
  max_aggregation_interval = 600

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  #checkov:skip=CKV_AWS_130:public subnets by design (no NAT gateway): instances reach package mirrors and SSM through the internet gateway; their security group admits only the ALB
  # Keyed by availability zone (validated distinct): reordering the list does not recreate subnets.
  for_each = { for s in var.public_subnets : s.availability_zone => s }

  vpc_id                  = aws_vpc.this.id
  cidr_block              = each.value.cidr
  availability_zone       = each.key
  map_public_ip_on_launch = true

  tags = merge(var.tags, { Name = "${var.name}-public-${each.key}" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

# A separate aws_route (not an inline route block) so that routes added outside this module are
# not fought over.
resource "aws_route" "public_default" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}
