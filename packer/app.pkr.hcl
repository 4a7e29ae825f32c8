# The app AMI: Debian 12 + the app bundle installed offline + a systemd unit, cleaned for reuse.
#
# One template for every environment. AWS and the local region differ only in the variables
# webfleet passes (endpoint, network, ssh_interface) and the AWS_* environment: no branches here.
# Written for Packer 1.6.6 (Debian's, amazon builder built in); see packer/README.md for what
# newer Packer needs and which 1.6.6 limits shape this file.

packer {
  # 1.6.6 rejects `required_plugins` (it has no plugin installer); see packer/README.md.
  required_version = ">= 1.6.6"
}

# --- the app ---------------------------------------------------------------------------------

variable "app_name" {
  type        = string
  description = "The stack's app.name: prefix of the AMI name, the service and its user."
}

variable "app_version" {
  type        = string
  description = "The app's version (bundle.json's version)."
}

variable "git_commit" {
  type        = string
  description = "The commit the app was built from (bundle.json's commit, or \"unknown\")."
  default     = "unknown"
}

variable "app_port" {
  type        = number
  description = "The port the app listens on; install-app.sh checks the unit binds it."
  default     = 8000
}

variable "health_check_path" {
  type        = string
  description = "The path the smoke check GETs on the builder before the AMI is made (the target group's)."
  default     = "/healthz"
}

variable "health_check_matcher" {
  type        = string
  description = "The HTTP codes the smoke check accepts: \"200\", \"200,302\" or \"200-299\" (the target group's matcher)."
  default     = "200"
}

variable "smoke_check_seconds" {
  type        = number
  description = "How long the smoke check waits for the health check to answer before the bake fails."
  default     = 60
}

variable "bundle_path" {
  type        = string
  description = "Path on this machine of app-bundle.tar.gz (bundle.json, app/, install-app.sh, smoke-check.sh...)."
}

variable "env_file_path" {
  type        = string
  description = "Path on this machine of the rendered env file: the smoke check runs the service with it."
}

variable "unit_path" {
  type        = string
  description = "Path on this machine of the rendered systemd unit of the app."
}

variable "manifest_path" {
  type        = string
  description = "Where the manifest post-processor writes the build's artifact record (the AMI id)."
  default     = "packer-manifest.json"
}

variable "tags" {
  type        = map(string)
  description = "Extra tags (the stack's tags, Environment) on the AMI, its snapshots and the builder."
  default     = {}
}

# --- the base image (the stack's image.base_ami) ---------------------------------------------

variable "base_ami_owners" {
  type        = list(string)
  description = "Owners of the base AMI; 136693071363 is Debian's."
  default     = ["136693071363"]
}

variable "base_ami_name" {
  type        = string
  description = "Name filter of the base AMI; the most recent match is used."
  default     = "debian-12-amd64-*"
}

variable "base_ami_architecture" {
  type        = string
  description = "Architecture of the base AMI (x86_64 or arm64); must suit instance_type."
  default     = "x86_64"
}

variable "ssh_username" {
  type        = string
  description = "The login user of the base AMI (Debian's is admin)."
  default     = "admin"
}

# --- where and how to build ------------------------------------------------------------------

variable "region" {
  type        = string
  description = "The region to build in (the environment's region)."
}

variable "instance_type" {
  type        = string
  description = "The build instance's type (the stack's image.instance_type)."
  default     = "t3.micro"
}

variable "ec2_endpoint" {
  type        = string
  description = "EC2 API endpoint; \"\" means AWS's. Packer 1.6.6 ignores AWS_ENDPOINT_URL, so the local region is given here."
  default     = ""
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance; \"\" lets EC2 pick the default VPC's."
  default     = ""
}

variable "vpc_id" {
  type        = string
  description = "VPC of the temporary security group; \"\" means the subnet's (or the default) VPC."
  default     = ""
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the build instance a public IP (needed in a subnet that does not map one)."
  default     = false
}

variable "kms_key_id" {
  type        = string
  description = "KMS key (ID, ARN or alias) that encrypts the AMI's snapshot; empty: the account's aws/ebs key."
  default     = ""
}

variable "ssh_source_cidrs" {
  type        = list(string)
  description = "CIDRs that Packer's temporary security group admits on port 22: the build host's, never the world (webfleet passes them)."
}

variable "ssh_interface" {
  type        = string
  description = "How Packer reaches the builder: public_ip, private_ip, public_dns or private_dns."
  default     = "public_ip"
}

variable "ssh_timeout" {
  type        = string
  description = "How long Packer waits for SSH on the builder."
  default     = "10m"
}

variable "ssh_clear_authorized_keys" {
  type        = bool
  description = "Remove Packer's temporary key from the builder's authorized_keys before the AMI is made."
  default     = true
}

locals {
  # One timestamp per build: timestamp() would give a new value at every evaluation.
  build_time = timestamp()
  ami_name   = "${var.app_name}-${var.app_version}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  unit_file  = "/tmp/${var.app_name}.service"
  env_file   = "/tmp/${var.app_name}.env"

  image_tags = merge(var.tags, {
    Name      = local.ami_name
    App       = var.app_name
    Version   = var.app_version
    GitCommit = var.git_commit
    ManagedBy = "webfleet"
    BakedBy   = "packer"
  })
  builder_tags = merge(local.image_tags, {
    Name = "${var.app_name}-packer-builder"
  })
}

source "amazon-ebs" "app" {
  region              = var.region
  custom_endpoint_ec2 = var.ec2_endpoint

  source_ami_filter {
    filters = {
      name                = var.base_ami_name
      architecture        = var.base_ami_architecture
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = var.base_ami_owners
    most_recent = true
  }

  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_id                      = var.vpc_id
  associate_public_ip_address = var.associate_public_ip_address
  # If Packer dies without cleaning up, a shutdown still ends (and stops billing for) the builder.
  shutdown_behavior = "terminate"

  # The AMI's snapshot is encrypted: Packer copies the image it made with encryption on and
  # deletes the unencrypted one (the launch template encrypts the instances' volumes too).
  encrypt_boot = true
  kms_key_id   = var.kms_key_id

  # IMDSv2 on the builder (`metadata_options { http_tokens = "required" }`) and on the AMI
  # (`imds_support = "v2.0"`) do not exist in Packer 1.6.6; see packer/README.md. The
  # instances the ASG launches get http_tokens = "required" from the launch template.

  communicator              = "ssh"
  ssh_username              = var.ssh_username
  ssh_interface             = var.ssh_interface
  ssh_timeout               = var.ssh_timeout
  ssh_clear_authorized_keys = var.ssh_clear_authorized_keys
  temporary_key_pair_name   = "${var.app_name}-packer-${formatdate("YYYYMMDDhhmmss", local.build_time)}"

  # Port 22 of the builder from the build host only (Packer's own default is 0.0.0.0/0).
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  ami_name        = local.ami_name
  ami_description = "${var.app_name} ${var.app_version} (${var.git_commit}) baked by webfleet"
  tags            = local.image_tags
  snapshot_tags   = local.image_tags
  run_tags        = local.builder_tags
  run_volume_tags = local.builder_tags
}

build {
  sources = ["source.amazon-ebs.app"]

  provisioner "file" {
    source      = var.bundle_path
    destination = "/tmp/app-bundle.tar.gz"
  }

  provisioner "file" {
    source      = var.unit_path
    destination = local.unit_file
  }

  provisioner "file" {
    source      = var.env_file_path
    destination = local.env_file
  }

  provisioner "shell" {
    inline = [
      "set -eu",
      "rm -rf /tmp/bundle && mkdir -p /tmp/bundle",
      "tar -xzf /tmp/app-bundle.tar.gz -C /tmp/bundle",
      "sudo sh /tmp/bundle/install-app.sh /tmp/bundle ${var.app_name} ${var.app_port} ${local.unit_file}",
    ]
  }

  # The service must answer its health check once here, or no AMI is made.
  provisioner "shell" {
    # Packer quotes environment_vars for the shell: a path may hold any character.
    environment_vars = ["HEALTH_CHECK_PATH=${var.health_check_path}", "MATCHER=${var.health_check_matcher}"]
    inline = [
      "sudo sh /tmp/bundle/smoke-check.sh ${var.app_name} ${var.app_port} \"$HEALTH_CHECK_PATH\" \"$MATCHER\" ${local.env_file} ${var.smoke_check_seconds}",
      "rm -rf /tmp/bundle /tmp/app-bundle.tar.gz ${local.env_file}",
    ]
  }

  # Last: it removes host keys and machine identity, so nothing may run on the builder after it.
  provisioner "shell" {
    script          = "${path.root}/scripts/cleanup.sh"
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      app_name    = var.app_name
      app_version = var.app_version
      git_commit  = var.git_commit
    }
  }
}
