"""deploy's artifact: its Terraform outputs (.webfleet/<env>/deploy-outputs.json), which the later
stages (rollout, verify, load) read to find the fleet."""

from __future__ import annotations

import json
from typing import Any

from webfleet.errors import WebfleetError
from webfleet.fleet import Deployment
from webfleet.paths import ProjectPaths


def write_outputs(paths: ProjectPaths, env_name: str, outputs: dict[str, Any]) -> None:
    path = paths.deploy_outputs(env_name)
    path.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")


def read_deployment(paths: ProjectPaths, env_name: str) -> Deployment:
    source = paths.deploy_outputs(env_name)
    try:
        outputs = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WebfleetError(
            f"nothing deployed in environment {env_name} ({source} is missing): "
            "run `invoke deploy` first"
        ) from None
    except json.JSONDecodeError as error:
        raise WebfleetError(f"{source}: not JSON ({error}); run `invoke deploy` again") from None
    return Deployment.from_outputs(outputs, source)
