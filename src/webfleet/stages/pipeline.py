"""The pipeline: bake → deploy (following its rolling refresh under traffic) → verify.

Each stage works on the previous one's artifacts and the first failure stops it; what each
stage produced is kept for the report, also when the rollout fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webfleet.config import EnvironmentStack
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths
from webfleet.reporting import Reporter
from webfleet.stages import bake as bake_stage
from webfleet.stages import rollout
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.verify import run as verify_stage


class PipelineFailed(WebfleetError):
    """A stage failed after earlier ones succeeded; `stages` holds what they produced."""

    def __init__(self, message: str, stages: dict[str, Any]) -> None:
        super().__init__(message)
        self.stages = stages


@dataclass(frozen=True)
class PipelineResult:
    stages: dict[str, Any]  # what bake, deploy and the rollout produced
    verify: verify_stage.VerifyResult


def pipeline(
    stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter, *, failover: bool
) -> PipelineResult:
    reporter.stage("pipeline", f"bake → deploy → verify ({stack.env_name})")
    baked = bake_stage.bake(stack, paths, reporter)
    reporter.note(f"baked {baked.ami_id} ({baked.name})", "bold")
    deployed = deploy_stage.deploy(stack, paths, reporter)
    changes = deployed.changes
    reporter.note(
        f"deployed: {changes.add} added, {changes.change} changed, "
        f"{changes.destroy} destroyed; ALB {deployed.outputs.get('alb_dns_name')}",
        "bold",
    )
    stages: dict[str, Any] = {
        "bake": {"ami_id": baked.ami_id, "name": baked.name, "manifest": str(baked.manifest_path)},
        "deploy": {"changes": vars(deployed.changes), "outputs": deployed.outputs},
    }
    try:
        rolled, traffic = rollout.follow_deployed(stack, deployed, reporter, with_traffic=True)
    except rollout.RolloutFailed as failure:
        raise PipelineFailed(str(failure), stages) from None
    stages["rollout"] = {
        **(rolled.as_dict() if rolled else {}),
        "traffic": traffic.as_dict() if traffic else None,
    }
    return PipelineResult(stages, verify_stage.verify(stack, paths, reporter, failover=failover))
