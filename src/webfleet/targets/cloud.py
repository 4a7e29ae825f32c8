"""Where an environment's AWS API is and how tools authenticate to it.

Terraform, Packer and boto3 all read the standard AWS environment variables, so an environment
differs only in these: the local region's endpoint and fixed test credentials, or a real region
with a profile (or the default credential chain, e.g. OIDC in CI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3

from webfleet.config import EnvironmentStack
from webfleet.localregion.runtime.settings import RegionSettings, default_state_dir

# The local region accepts any credentials; fixed ones keep runs reproducible.
LOCAL_ACCESS_KEY = "webfleet-local"
LOCAL_SECRET_KEY = "webfleet-local-secret"

# Variables that would point a tool somewhere else than the environment says.
_AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class CloudTarget:
    region: str
    endpoint_url: str | None = None
    profile: str | None = None

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def tool_environment(self) -> dict[str, str]:
        """The process environment for Terraform, Packer or any AWS tool aimed at this target."""
        environment = {k: v for k, v in os.environ.items() if k not in _AWS_VARIABLES}
        environment["AWS_REGION"] = self.region
        environment["AWS_DEFAULT_REGION"] = self.region
        if self.endpoint_url is not None:
            environment["AWS_ENDPOINT_URL"] = self.endpoint_url
            environment["AWS_ACCESS_KEY_ID"] = LOCAL_ACCESS_KEY
            environment["AWS_SECRET_ACCESS_KEY"] = LOCAL_SECRET_KEY
            # Nothing on the host should ask a real metadata service for credentials.
            environment["AWS_EC2_METADATA_DISABLED"] = "true"
        else:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                if name in os.environ:
                    environment[name] = os.environ[name]
            if self.profile is not None:
                environment["AWS_PROFILE"] = self.profile
        return environment

    def client(self, service: str) -> Any:
        """A boto3 client for one service of this target."""
        if self.endpoint_url is not None:
            session = boto3.Session(
                aws_access_key_id=LOCAL_ACCESS_KEY,
                aws_secret_access_key=LOCAL_SECRET_KEY,
                region_name=self.region,
            )
            return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        return session.client(service)  # type: ignore[call-overload]


def region_settings(stack: EnvironmentStack) -> RegionSettings:
    """The local region an environment of kind 'local' uses."""
    return RegionSettings(state_dir=default_state_dir(), port=stack.environment.api_port)


def cloud_target(stack: EnvironmentStack) -> CloudTarget:
    environment = stack.environment
    if environment.kind == "local":
        return CloudTarget(environment.region, endpoint_url=region_settings(stack).endpoint_url)
    return CloudTarget(environment.region, profile=environment.profile)
