output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "default_security_group_id" {
  description = "ID of the VPC's default security group (kept without rules)."
  value       = aws_default_security_group.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in the order of var.public_subnets."
  value       = [for s in var.public_subnets : aws_subnet.public[s.availability_zone].id]
}

output "availability_zones" {
  description = "Availability zones of the public subnets, in the order of var.public_subnets."
  value       = [for s in var.public_subnets : s.availability_zone]
}

output "internet_gateway_id" {
  description = "ID of the internet gateway."
  value       = aws_internet_gateway.this.id
}

output "public_route_table_id" {
  description = "ID of the public route table (default route to the internet gateway)."
  value       = aws_route_table.public.id
}

output "flow_log_id" {
  description = "ID of the VPC's flow log, or null when flow_logs is off."
  value       = one(aws_flow_log.this[*].id)
}
