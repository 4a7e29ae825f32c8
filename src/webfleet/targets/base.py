"""The one interface every place the pipeline can run against implements.

A target knows where its AWS API is and how tools authenticate to it (Terraform, Packer and
boto3 all read the standard AWS environment variables), hands out typed boto3 clients, and says
whether the region is there to be used. Environments differ only in these.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import boto3

from webfleet.errors import WebfleetError
from webfleet.reporting import Reporter

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

    from webfleet.localregion.runtime.settings import RegionSettings

# Variables that would point a tool somewhere else than the environment says.
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


class CloudTarget(ABC):
    """Where one environment's AWS API is: the local region or AWS itself."""

    kind: ClassVar[str]

    def __init__(self, env_name: str, region: str) -> None:
        self.env_name = env_name
        self.region = region

    @property
    def endpoint_url(self) -> str | None:
        """The API's URL when it is not AWS's own (tools that ignore AWS_ENDPOINT_URL need it)."""
        return None

    @abstractmethod
    def session(self) -> boto3.Session:
        """A boto3 session with this target's credentials and region."""

    def tool_environment(self) -> dict[str, str]:
        """The process environment for Terraform, Packer or any AWS tool aimed at this target."""
        environment = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES}
        environment["AWS_REGION"] = self.region
        environment["AWS_DEFAULT_REGION"] = self.region
        return environment

    def packer_variables(self) -> dict[str, str]:
        """Packer template variables this target needs set (the rest keep their defaults)."""
        return {}

    def packer_environment(self) -> dict[str, str]:
        return self.tool_environment()

    @abstractmethod
    def build_host_cidrs(self) -> list[str]:
        """Where Packer's SSH connections to its builder come from, as /32 CIDRs (the region is
        running): what the builder's temporary security group admits on port 22."""

    @abstractmethod
    def ensure_running(self, reporter: Reporter) -> None:
        """Make the region available before anything is created in it."""

    @abstractmethod
    def require_running(self, why: str) -> None:
        """Fail, saying why, when the region is not there; why names what would be lost."""

    def local_region(self, task: str) -> RegionSettings:
        """The local region of this environment, for tasks that only make sense there."""
        raise WebfleetError(
            f"environment {self.env_name} is kind '{self.kind}', and {task} needs the local "
            "region: pick a local environment with --env"
        )

    def ec2(self) -> EC2Client:
        return self.session().client("ec2", endpoint_url=self.endpoint_url)

    def elbv2(self) -> ElasticLoadBalancingv2Client:
        return self.session().client("elbv2", endpoint_url=self.endpoint_url)

    def autoscaling(self) -> AutoScalingClient:
        return self.session().client("autoscaling", endpoint_url=self.endpoint_url)

    def iam(self) -> IAMClient:
        return self.session().client("iam", endpoint_url=self.endpoint_url)

    def acm(self) -> ACMClient:
        return self.session().client("acm", endpoint_url=self.endpoint_url)

    def cloudwatch(self) -> CloudWatchClient:
        return self.session().client("cloudwatch", endpoint_url=self.endpoint_url)

    def s3(self) -> S3Client:
        return self.session().client("s3", endpoint_url=self.endpoint_url)
