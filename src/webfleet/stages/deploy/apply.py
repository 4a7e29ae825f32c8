"""The deploy and destroy stages: the rendered stack applied with Terraform, or taken away."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from webfleet.config import EnvironmentStack
from webfleet.drivers.packer import MANIFEST_FILE, read_manifest
from webfleet.drivers.terraform import ChangeCounts, Terraform, Workspace, check_terraform
from webfleet.drivers.tfconfig import check_cli_config
from webfleet.errors import WebfleetError
from webfleet.fleet import Deployment, FleetView
from webfleet.paths import ProjectPaths
from webfleet.reporting import Reporter
from webfleet.stages.deploy.adopt import Adoption, find_orphans
from webfleet.stages.deploy.outputs import write_outputs
from webfleet.stages.deploy.root_module import link_root_module, remove_adoptions, write_adoptions
from webfleet.stages.deploy.ssh_keys import GeneratedKey, ensure_key, key_pair_name
from webfleet.stages.deploy.stack_vars import terraform_variables, write_variables
from webfleet.stages.render import render
from webfleet.targets import CloudTarget, cloud_target

# An adopted load balancer makes its listeners' keys known, which may reveal orphaned listeners,
# whose rules the next round finds: LB → listener → rule is the longest chain.
ADOPTION_ROUNDS = 3


# The ALB: with deletion protection, AWS refuses to delete it until the protection is off.
LOAD_BALANCER_ADDRESS = "module.alb.aws_lb.this"

# Clock difference allowed between this machine and the API when matching a refresh to an apply.
REFRESH_CLOCK_SLACK = dt.timedelta(seconds=5)


@dataclass(frozen=True)
class DeployResult:
    env_name: str
    changes: ChangeCounts
    outputs: dict[str, Any]
    # The instance refresh this apply started (a new launch template version), if any.
    refresh_id: str | None = None


@dataclass(frozen=True)
class DestroyResult:
    env_name: str
    changes: ChangeCounts


def deploy(stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter) -> DeployResult:
    """Render, then plan and apply the whole stack; a stack already in shape is left untouched."""
    terraform = _prepare(stack, paths, reporter)
    config = terraform.workspace.config_dir
    # Left by a run killed before it applied: found again below if still needed.
    remove_adoptions(config)
    try:
        return _plan_and_apply(terraform, stack, paths, reporter)
    finally:
        remove_adoptions(config)


def _plan_and_apply(
    terraform: Terraform, stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter
) -> DeployResult:
    plan_file = paths.build_dir(stack.env_name) / "deploy.tfplan"
    var_file = paths.terraform_vars(stack.env_name)
    reporter.stage("plan")
    plan = terraform.plan(var_file, plan_file)
    adopted: list[Adoption] = []
    for _ in range(ADOPTION_ROUNDS):
        if plan.exit_code == 0:
            break
        # One import block per address: an orphan adopted already and still planned as a create
        # is not imported twice (Terraform refuses the configuration).
        adopted_addresses = {adoption.address for adoption in adopted}
        found = [
            orphan
            for orphan in find_orphans(cloud_target(stack), terraform.show_plan(plan_file))
            if orphan.address not in adopted_addresses
        ]
        if not found:
            break
        for orphan in found:
            reporter.note(
                f"adopting {orphan.address} ({orphan.import_id}): created by an interrupted run",
                "yellow",
            )
        adopted.extend(found)
        write_adoptions(terraform.workspace.config_dir, adopted)
        reporter.stage("plan", "again, importing the adopted resources")
        plan = terraform.plan(var_file, plan_file)
    changes = plan.changes
    if plan.exit_code == 0:
        reporter.note("no changes: the deployed stack already matches the stack file", "green")
    else:
        reporter.stage(
            "apply",
            f"{changes.add} to add, {changes.change} to change, {changes.destroy} to destroy",
        )
        apply_started = dt.datetime.now(dt.UTC)
        changes = terraform.apply(plan_file).changes
    plan_file.unlink(missing_ok=True)
    outputs = terraform.outputs()
    write_outputs(paths, stack.env_name, outputs)
    refresh_id = None
    if plan.exit_code != 0 and outputs.get("asg_name"):
        fleet = FleetView(cloud_target(stack), Deployment.from_outputs(outputs, Path("outputs")))
        refresh_id = fleet.refresh_started_since(apply_started - REFRESH_CLOCK_SLACK)
    return DeployResult(stack.env_name, changes, outputs, refresh_id)


def destroy(stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter) -> DestroyResult:
    """Destroy every resource of the stack in this environment; nothing deployed is fine."""
    terraform = _prepare(stack, paths, reporter, start_region=False)
    if not terraform.has_state():
        reporter.note("nothing deployed in this environment", "green")
        paths.deploy_outputs(stack.env_name).unlink(missing_ok=True)
        return DestroyResult(stack.env_name, ChangeCounts())
    cloud_target(stack).ensure_running(reporter)
    plan_file = paths.build_dir(stack.env_name) / "destroy.tfplan"
    var_file = _lift_deletion_protection(terraform, paths, stack.env_name, reporter)
    reporter.stage("plan", "destroy")
    plan = terraform.plan(var_file, plan_file, destroy=True)
    reporter.stage("destroy", f"{plan.changes.destroy} to destroy")
    # Applied even when empty: that records in the state what the refresh found already gone
    # (e.g. a local region that was restarted), so the next destroy does not look again.
    changes = terraform.apply(plan_file).changes
    plan_file.unlink(missing_ok=True)
    if var_file != paths.terraform_vars(stack.env_name):
        var_file.unlink(missing_ok=True)
    paths.deploy_outputs(stack.env_name).unlink(missing_ok=True)
    return DestroyResult(stack.env_name, changes)


def _lift_deletion_protection(
    terraform: Terraform, paths: ProjectPaths, env_name: str, reporter: Reporter
) -> Path:
    """Turn the ALB's deletion protection off (an apply of the ALB alone) when the state says it
    is on, as destroying it by hand on AWS needs; returns the variables to destroy with."""
    var_file = paths.terraform_vars(env_name)
    attributes = terraform.state_attributes(LOAD_BALANCER_ADDRESS) or {}
    if not attributes.get("enable_deletion_protection"):
        return var_file
    variables = json.loads(var_file.read_text(encoding="utf-8"))
    variables["load_balancer"]["deletion_protection"] = False
    unprotected = paths.build_dir(env_name) / "destroy.tfvars.json"
    write_variables(unprotected, variables)
    plan_file = paths.build_dir(env_name) / "unprotect.tfplan"
    reporter.stage("unprotect", f"turning off the deletion protection of {attributes.get('name')}")
    terraform.plan(unprotected, plan_file, targets=[LOAD_BALANCER_ADDRESS])
    terraform.apply(plan_file)
    plan_file.unlink(missing_ok=True)
    return unprotected


def _prepare(
    stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter, *, start_region: bool = True
) -> Terraform:
    """Check tools, render, write variables and init Terraform: all before touching the cloud."""
    check_terraform()
    check_cli_config(paths.terraform_cli_config)
    reporter.stage("render", f"environment {stack.env_name}")
    if stack.environment.kind == "aws" and stack.load_balancer.https is None:
        reporter.note(
            f"plain HTTP on AWS (environments.{stack.env_name}.plain_http = true): the ALB serves "
            f"unencrypted traffic; set environments.{stack.env_name}.certificate_arn for HTTPS",
            "yellow",
        )
    rendered = render(stack, paths)
    user_data = rendered.user_data.read_text(encoding="utf-8")
    ami_id = baked_ami(paths, stack.env_name, region=stack.environment.region)
    if ami_id is None:
        reporter.note("no baked AMI (run `invoke bake`): instances boot the base image")
    else:
        reporter.note(f"AMI {ami_id}: the newest bake ({MANIFEST_FILE})")
    ssh_public_key = None
    if stack.image.key_name is None:
        key = ensure_ssh_key(stack, paths)
        if key.created:
            reporter.note(f"SSH key for the instances: {key.private_key} (new)")
        ssh_public_key = key.public_key
    write_variables(
        paths.terraform_vars(stack.env_name),
        terraform_variables(stack, user_data, ami_id, ssh_public_key),
    )
    target = cloud_target(stack)
    if start_region:
        target.ensure_running(reporter)
        if ami_id is not None:
            _check_image_exists(target, ami_id)
    terraform = Terraform(workspace(paths, stack, target), reporter.terraform_event)
    reporter.stage("init", "providers from the filesystem mirror")
    terraform.init()
    return terraform


def ensure_ssh_key(stack: EnvironmentStack, paths: ProjectPaths) -> GeneratedKey:
    """webfleet's SSH key of the environment (for stacks without image.key_name)."""
    return ensure_key(paths.ssh_dir(stack.env_name), key_pair_name(stack.stack_name))


def baked_ami(paths: ProjectPaths, env_name: str, *, region: str | None = None) -> str | None:
    """The AMI of the newest bake in the environment (from its Packer manifest), or None.

    region picks that region's AMI when a bake copied it to several; None takes the first.
    """
    build = read_manifest(paths.build_dir(env_name) / MANIFEST_FILE)
    if build is None:
        return None
    amis = build.amis()
    if region is None:
        return next(iter(amis.values()))
    return amis.get(region)


def _check_image_exists(target: CloudTarget, ami_id: str) -> None:
    """Fail before Terraform if the baked AMI is gone (deregistered, or the region restarted)."""
    try:
        images = target.ec2().describe_images(ImageIds=[ami_id]).get("Images", [])
    except ClientError as error:
        if "NotFound" not in error.response.get("Error", {}).get("Code", ""):
            raise
        images = []
    if not images:
        raise WebfleetError(
            f"AMI {ami_id} of the newest bake ({MANIFEST_FILE}) does not exist in "
            f"{target.region}: run `invoke bake` again"
        )


def workspace(paths: ProjectPaths, stack: EnvironmentStack, target: CloudTarget) -> Workspace:
    config = link_root_module(paths.terraform_stack, paths.terraform_root(stack.env_name))
    return Workspace(
        config_dir=config,
        data_dir=paths.terraform_data_dir(stack.env_name),
        state_path=paths.terraform_state(stack.env_name),
        cli_config=paths.terraform_cli_config,
        environment=target.tool_environment(),
        log_dir=paths.build_dir(stack.env_name) / "logs",
    )
