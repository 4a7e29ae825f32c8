"""The local region: an AWS API on loopback with fixed test credentials, started on demand."""

from __future__ import annotations

import ipaddress

import boto3

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.settings import RegionSettings, default_state_dir
from webfleet.reporting import Reporter
from webfleet.targets.base import CloudTarget

# The local region accepts any credentials; fixed ones keep runs reproducible.
LOCAL_ACCESS_KEY = "webfleet-local"
LOCAL_SECRET_KEY = "webfleet-local-secret"
# States change in seconds there; Packer's default 15 s polls were ~80% of a bake.
LOCAL_POLL_DELAY_SECONDS = 1
LOCAL_MAX_POLL_ATTEMPTS = 600


def region_settings(stack: EnvironmentStack) -> RegionSettings:
    """The local region an environment of kind 'local' uses."""
    return RegionSettings(state_dir=default_state_dir(), port=stack.environment.api_port)


class LocalRegionTarget(CloudTarget):
    kind = "local"

    def __init__(self, stack: EnvironmentStack) -> None:
        super().__init__(stack.env_name, stack.environment.region)
        self.settings = region_settings(stack)

    @property
    def endpoint_url(self) -> str:
        return self.settings.endpoint_url

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY,
            aws_secret_access_key=LOCAL_SECRET_KEY,
            region_name=self.region,
        )

    def tool_environment(self) -> dict[str, str]:
        environment = super().tool_environment()
        environment["AWS_ENDPOINT_URL"] = self.endpoint_url
        environment["AWS_ACCESS_KEY_ID"] = LOCAL_ACCESS_KEY
        environment["AWS_SECRET_ACCESS_KEY"] = LOCAL_SECRET_KEY
        # Nothing on the host should ask a real metadata service for credentials.
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        return environment

    def packer_variables(self) -> dict[str, str]:
        # Packer 1.6.6 ignores AWS_ENDPOINT_URL (packer/README.md); the local region gives
        # its builders no public IP, so Packer reaches them on the VPC bridge.
        return {"ec2_endpoint": self.endpoint_url, "ssh_interface": "private_ip"}

    def packer_environment(self) -> dict[str, str]:
        environment = self.tool_environment()
        environment["AWS_POLL_DELAY_SECONDS"] = str(LOCAL_POLL_DELAY_SECONDS)
        environment["AWS_MAX_ATTEMPTS"] = str(LOCAL_MAX_POLL_ATTEMPTS)
        return environment

    def build_host_cidrs(self) -> list[str]:
        # Packer reaches its builder on the VPC bridge, from the host's address in the
        # builder's subnet: the first of each default subnet.
        subnets = self.ec2().describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}]
        )["Subnets"]
        return sorted(
            f"{next(ipaddress.ip_network(subnet['CidrBlock']).hosts())}/32" for subnet in subnets
        )

    def ensure_running(self, reporter: Reporter) -> None:
        if not daemon.status(self.settings).running:
            reporter.stage("local region", f"starting on {self.endpoint_url}")
        daemon.up(self.settings, on_progress=reporter.note)

    def require_running(self, why: str) -> None:
        if not daemon.status(self.settings).running:
            raise WebfleetError(
                f"the local region ({self.endpoint_url}) is not running, so {why}: "
                "run `invoke deploy` first"
            )

    def local_region(self, task: str) -> RegionSettings:
        return self.settings
