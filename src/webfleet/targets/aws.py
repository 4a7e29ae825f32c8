"""AWS itself: a named profile, or the default credential chain (e.g. OIDC in CI)."""

from __future__ import annotations

import ipaddress
import os
import urllib.request

import boto3

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.reporting import Reporter
from webfleet.targets.base import CloudTarget

CHECKIP_URL = "https://checkip.amazonaws.com"
CHECKIP_TIMEOUT_SECONDS = 10


class AwsTarget(CloudTarget):
    kind = "aws"

    def __init__(self, stack: EnvironmentStack) -> None:
        super().__init__(stack.env_name, stack.environment.region)
        self.profile = stack.environment.profile

    def session(self) -> boto3.Session:
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def tool_environment(self) -> dict[str, str]:
        environment = super().tool_environment()
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if name in os.environ:
                environment[name] = os.environ[name]
        if self.profile is not None:
            environment["AWS_PROFILE"] = self.profile
        return environment

    def build_host_cidrs(self) -> list[str]:
        # Packer connects to its builder's public IP from this host's public IP, which only
        # something outside can see: AWS's own checkip service.
        try:
            with urllib.request.urlopen(CHECKIP_URL, timeout=CHECKIP_TIMEOUT_SECONDS) as reply:
                address = ipaddress.IPv4Address(reply.read().decode().strip())
        except (OSError, ValueError) as error:
            raise WebfleetError(
                f"cannot find this host's public IP for the builder's security group "
                f"({CHECKIP_URL}: {error}): set environments.{self.env_name}.bake_ingress_cidrs "
                "to the CIDRs Packer connects from"
            ) from None
        return [f"{address}/32"]

    # An AWS region is always there; credentials are checked by the first call that needs them.
    def ensure_running(self, reporter: Reporter) -> None:
        return None

    def require_running(self, why: str) -> None:
        return None
