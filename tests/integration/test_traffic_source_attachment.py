"""A Terraform root module that attaches its group's target group with
aws_autoscaling_traffic_source_attachment (as terraform-aws-modules/autoscaling does by default),
applied with the installed Terraform and the mirrored provider against a local region of the
test's own: the apply waits for the source to be Added, the member is registered, the second
plan is clean; a source detached while its member drains is Removing, and destroy (which deletes
the listener beside it) ends the drain and leaves nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy_boto3_autoscaling import AutoScalingClient

from tests.conftest import ROOT, Sandbox
from webfleet.localregion.images.baseimage import ensure_base_image
from webfleet.localregion.images.catalogue import debian_image
from webfleet.localregion.runtime.processes import wait_until
from webfleet.localregion.runtime.settings import RegionSettings

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(1.5)]

ROOT_MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

provider "aws" {
  region = "us-east-1"
}

variable "ami_id" {
  type = string
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

resource "aws_lb_target_group" "web" {
  name     = "traffic-source-tg"
  port     = 8000
  protocol = "HTTP"
  vpc_id   = data.aws_vpc.default.id
}

resource "aws_lb" "web" {
  name    = "traffic-source"
  subnets = data.aws_subnets.default.ids
}

resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_launch_template" "web" {
  name          = "traffic-source"
  image_id      = var.ami_id
  instance_type = "t3.micro"
}

resource "aws_autoscaling_group" "web" {
  name                = "traffic-source"
  min_size            = 1
  max_size            = 2
  desired_capacity    = 1
  vpc_zone_identifier = data.aws_subnets.default.ids
  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }
  lifecycle {
    ignore_changes = [load_balancers, target_group_arns, traffic_source]
  }
}

resource "aws_autoscaling_traffic_source_attachment" "web" {
  autoscaling_group_name = aws_autoscaling_group.web.id
  traffic_source {
    identifier = aws_lb_target_group.web.arn
    type       = "elbv2"
  }
}
"""


@pytest.fixture(scope="module")
def region(sandbox: Sandbox) -> Iterator[RegionSettings]:
    with sandbox.running_region() as settings:
        yield settings


def terraform(
    sandbox: Sandbox, directory: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = {
        **sandbox.target().tool_environment(),
        "TF_CLI_CONFIG_FILE": str(ROOT / ".venv" / "terraform.rc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    result = subprocess.run(
        ["terraform", f"-chdir={directory}", *args],
        env={k: v for k, v in environment.items() if k != "TF_DATA_DIR"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def source_states(autoscaling: AutoScalingClient) -> list[str]:
    try:
        sources = autoscaling.describe_traffic_sources(AutoScalingGroupName="traffic-source")
    except autoscaling.exceptions.ClientError:
        return []  # the group is gone
    return [s["State"] for s in sources["TrafficSources"]]


def test_traffic_source_attachment_applies_registers_plans_clean_and_destroys(
    sandbox: Sandbox, region: RegionSettings, tmp_path: Path
) -> None:
    (tmp_path / "main.tf").write_text(ROOT_MODULE)
    ami = debian_image(ensure_base_image(region.image_cache, print)).ami_id
    terraform(sandbox, tmp_path, "init", "-input=false")
    terraform(sandbox, tmp_path, "apply", "-input=false", "-auto-approve", f"-var=ami_id={ami}")

    autoscaling, elbv2 = sandbox.target().autoscaling(), sandbox.target().elbv2()
    (source,) = autoscaling.describe_traffic_sources(AutoScalingGroupName="traffic-source")[
        "TrafficSources"
    ]
    assert source["Type"] == "elbv2" and source["State"] in ("Added", "InService"), source
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["traffic-source"])[
        "AutoScalingGroups"
    ]
    members = {i["InstanceId"] for i in group["Instances"]}
    targets = elbv2.describe_target_health(TargetGroupArn=source["Identifier"])
    assert {t["Target"]["Id"] for t in targets["TargetHealthDescriptions"]} == members

    plan = terraform(
        sandbox, tmp_path, "plan", "-input=false", "-detailed-exitcode", f"-var=ami_id={ami}",
        check=False,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]

    # Detached while the listener forwards to the group: its member drains (the group's default
    # 300 s deregistration delay), and the source is Removing meanwhile, as on AWS.
    autoscaling.detach_traffic_sources(
        AutoScalingGroupName="traffic-source",
        TrafficSources=[{"Identifier": source["Identifier"], "Type": "elbv2"}],
    )
    assert wait_until(lambda: source_states(autoscaling) == ["Removing"], 10)
    # terraform destroy then deletes the listener beside the attachment (terraform-aws-modules
    # do the same): the drain ends with the listener, and the provider's wait with it. It
    # waited forever when a drain outlived every balancer forwarding to its group.
    terraform(sandbox, tmp_path, "destroy", "-input=false", "-auto-approve", f"-var=ami_id={ami}")
    assert source_states(autoscaling) == []
    state = json.loads(terraform(sandbox, tmp_path, "show", "-json").stdout)
    assert not state.get("values", {}).get("root_module", {}).get("resources"), state
    assert not autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["traffic-source"])[
        "AutoScalingGroups"
    ]
    assert not [
        g
        for g in elbv2.describe_target_groups()["TargetGroups"]
        if g["TargetGroupName"] == "traffic-source-tg"
    ]
