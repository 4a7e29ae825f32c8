"""AWS itself: a named profile, or the default credential chain (e.g. OIDC in CI)."""

from __future__ import annotations

import os

import boto3

from webfleet.config import EnvironmentStack
from webfleet.reporting import Reporter
from webfleet.targets.base import CloudTarget


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

    # An AWS region is always there; credentials are checked by the first call that needs them.
    def ensure_running(self, reporter: Reporter) -> None:
        return None

    def require_running(self, why: str) -> None:
        return None
