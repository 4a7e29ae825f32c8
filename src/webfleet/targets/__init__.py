"""Where an environment's AWS API is: the local region or AWS, behind one small interface.

`cloud_target(stack)` picks the implementation once, by the environment's kind; stages ask the
target instead of checking the kind themselves.
"""

from __future__ import annotations

from webfleet.config import EnvironmentStack
from webfleet.targets.aws import AwsTarget
from webfleet.targets.base import CloudTarget
from webfleet.targets.local import LocalRegionTarget, region_settings

TARGETS: dict[str, type[AwsTarget] | type[LocalRegionTarget]] = {
    LocalRegionTarget.kind: LocalRegionTarget,
    AwsTarget.kind: AwsTarget,
}


def cloud_target(stack: EnvironmentStack) -> CloudTarget:
    return TARGETS[stack.environment.kind](stack)


__all__ = ["CloudTarget", "cloud_target", "region_settings"]
