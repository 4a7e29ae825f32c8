"""What each `invoke` task does for its user: run a stage, show its result, explain failures.

tasks.py only declares the tasks and their options; everything they do is here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from webfleet import traffic
from webfleet.cli.progress import Progress
from webfleet.config import DEFAULT_ENVIRONMENT, DEFAULT_STACK_FILE, EnvironmentStack, load_stack
from webfleet.errors import WebfleetError
from webfleet.fleet import FleetView
from webfleet.localregion.runtime import daemon
from webfleet.localregion.runtime.settings import RegionSettings
from webfleet.paths import ProjectPaths
from webfleet.stages import bake as bake_stage
from webfleet.stages import load as load_stage
from webfleet.stages import pipeline as pipeline_stage
from webfleet.stages import rollout
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.outputs import read_deployment
from webfleet.stages.render import render as render_files
from webfleet.stages.verify import run as verify_stage
from webfleet.stages.verify.specs import ssh_run
from webfleet.stages.verify.ssh import ssh_access
from webfleet.targets import cloud_target


class CommandFailed(Exception):
    """Raised after a failure was explained to the user; tasks turn it into a non-zero exit."""


console = Console()
errors = Console(stderr=True, soft_wrap=True)


@contextmanager
def _explained() -> Iterator[None]:
    try:
        yield
    except WebfleetError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        raise CommandFailed(str(error)) from None
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]: re-run the same command to converge")
        raise CommandFailed("interrupted") from None


def _load(stack_file: str | None, env_name: str | None) -> tuple[EnvironmentStack, ProjectPaths]:
    path = Path(stack_file) if stack_file else DEFAULT_STACK_FILE
    stack = load_stack(path, env_name or DEFAULT_ENVIRONMENT)
    paths = ProjectPaths.of_checkout(path)
    paths.private_build_dir(stack.env_name)
    return stack, paths


def _emit_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def render(stack_file: str | None, env_name: str | None, as_json: bool) -> None:
    with _explained():
        stack, paths = _load(stack_file, env_name)
        files = render_files(stack, paths)
    if as_json:
        _emit_json({"environment": stack.env_name, "files": [str(p) for p in files.all()]})
        return
    console.print(f"rendered for environment [bold]{stack.env_name}[/]:")
    for path in files.all():
        console.print(f"  {_shown(path)}")


def bake(stack_file: str | None, env_name: str | None, as_json: bool) -> None:
    with _explained():
        stack, paths = _load(stack_file, env_name)
        with Progress(live=False if as_json else None) as progress:
            result = bake_stage.bake(stack, paths, progress)
    if as_json:
        _emit_json(
            {
                "environment": result.env_name,
                "ami_id": result.ami_id,
                "name": result.name,
                "tags": result.tags,
                "region": result.region,
                "manifest": str(result.manifest_path),
                "log": str(result.log_path),
            }
        )
        return
    table = Table(title=f"bake: {result.env_name}", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("AMI", f"{result.ami_id} ({result.region})")
    table.add_row("name", result.name)
    table.add_row("tags", ", ".join(f"{key}={value}" for key, value in result.tags.items()))
    table.add_row("manifest", _shown(result.manifest_path))
    table.add_row("log", _shown(result.log_path))
    console.print(table)


def _shown(path: Path) -> str:
    """A path as the user can use it: relative to where they are, if it is below."""
    here = Path.cwd()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def deploy(stack_file: str | None, env_name: str | None, as_json: bool, wait: bool = True) -> None:
    with _explained():
        stack, paths = _load(stack_file, env_name)
        with Progress(live=False if as_json else None) as progress:
            result = deploy_stage.deploy(stack, paths, progress)
            rolled = (
                rollout.follow_deployed(stack, result, progress, with_traffic=False)[0]
                if wait
                else None
            )
    outputs = result.outputs
    if as_json:
        _emit_json(
            {
                "environment": result.env_name,
                "changes": vars(result.changes),
                "outputs": outputs,
                "rollout": rolled.as_dict() if rolled else None,
            }
        )
        return
    table = Table(title=f"deploy: {result.env_name}", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    changes = result.changes
    table.add_row(
        "changes", f"{changes.add} added, {changes.change} changed, {changes.destroy} destroyed"
    )
    table.add_row("ALB DNS name", str(outputs.get("alb_dns_name")))
    table.add_row("ASG", str(outputs.get("asg_name")))
    table.add_row("target group", str(outputs.get("target_group_arn")))
    table.add_row("AMI", str(outputs.get("ami_id")))
    if rolled is not None:
        table.add_row("rollout", f"instance refresh {rolled.status} in {rolled.seconds:.0f} s")
    console.print(table)


def destroy(stack_file: str | None, env_name: str | None, as_json: bool) -> None:
    with _explained():
        stack, paths = _load(stack_file, env_name)
        with Progress(live=False if as_json else None) as progress:
            result = deploy_stage.destroy(stack, paths, progress)
    if as_json:
        _emit_json({"environment": result.env_name, "destroyed": result.changes.destroy})
        return
    console.print(f"destroy: {result.env_name}: {result.changes.destroy} resources destroyed")


def verify(stack_file: str | None, env_name: str | None, as_json: bool, failover: bool) -> None:
    """Check the deployed environment; exit non-zero with the failed checks named."""
    with _explained():
        stack, paths = _load(stack_file, env_name)
        with Progress(live=False if as_json else None) as progress:
            result = verify_stage.verify(stack, paths, progress, failover=failover)
    _report_verify(result, paths, as_json, {})


def pipeline(stack_file: str | None, env_name: str | None, as_json: bool, failover: bool) -> None:
    """bake → deploy → verify, each stage on the previous one's artifacts; stops at a failure."""
    with _explained():
        stack, paths = _load(stack_file, env_name)
        with Progress(live=False if as_json else None) as progress:
            try:
                result = pipeline_stage.pipeline(stack, paths, progress, failover=failover)
            except pipeline_stage.PipelineFailed as failure:
                if as_json:
                    _emit_json({"passed": False, "stages": failure.stages, "error": str(failure)})
                raise
    _report_verify(result.verify, paths, as_json, result.stages, title="pipeline")


def _burn_cpu(
    stack: EnvironmentStack, paths: ProjectPaths, fleet: FleetView, plan: load_stage.LoadPlan
) -> list[str]:
    """Start the CPU burn on every InService instance over SSH; what happened, a line each."""
    work_dir = paths.verify_dir(stack.env_name)
    work_dir.mkdir(parents=True, exist_ok=True)
    ssh = ssh_access(stack, paths, work_dir)
    command = load_stage.cpu_burn_command(plan.cpu, plan.duration)
    lines = []
    for instance in fleet.instances(fleet.in_service_ids()):
        address = instance.address(ssh.address)
        if address is None:
            raise WebfleetError(f"{instance.instance_id} has no {ssh.address} to burn CPU on")
        result = ssh_run(ssh.config_file, address, command)
        if result.returncode != 0:
            raise WebfleetError(
                f"starting the CPU burn on {instance.instance_id} ({address}) failed: ssh exit "
                f"{result.returncode}: {result.stderr.strip()[:300]}"
            )
        lines.append(
            f"burning {plan.cpu} CPU(s) on {instance.instance_id} ({address}) for "
            f"{plan.duration:g} s"
        )
    return lines


def load(
    stack_file: str | None,
    env_name: str | None,
    as_json: bool,
    plan: load_stage.LoadPlan,
) -> None:
    with _explained():
        plan.check()
        stack, paths = _load(stack_file, env_name)
        target = cloud_target(stack)
        target.local_region("`invoke load`")
        target.require_running("nothing deployed there exists any more")
        deployment = read_deployment(paths, stack.env_name)
        alb = traffic.alb_target(stack, deployment)
        listener = alb.serving
        load_stage.check_loopback(alb.dns_name)
        fleet = FleetView(target, deployment)
        with Progress(live=False if as_json else None) as progress:
            if plan.cpu:
                for line in _burn_cpu(stack, paths, fleet, plan):
                    progress.note(line)
            progress.stage(
                "load",
                f"{plan.rps} requests/s for {plan.duration:g} s to "
                f"{listener.protocol.lower()}://{alb.dns_name}:{listener.port}{plan.path}",
            )
            report = load_stage.run_load(
                plan,
                lambda: traffic.fetch(alb.dns_name, listener, plan.path),
                fleet,
                progress.note,
            )
    if as_json:
        _emit_json(report.as_dict())
        return
    table = Table(title=f"load: {stack.env_name}", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("requests", f"{report.sent} sent, {report.failed} failed")
    table.add_row("capacity", f"peak desired {report.peak_desired}, now {report.final_desired}")
    if report.settled_seconds is not None:
        table.add_row("back to min", f"{report.settled_seconds:.0f} s after the load")
    for activity in report.activities:
        table.add_row("activity", activity)
    console.print(table)


def _report_verify(
    result: verify_stage.VerifyResult,
    paths: ProjectPaths,
    as_json: bool,
    stages: dict[str, Any],
    *,
    title: str = "verify",
) -> None:
    summary = result.summary
    if as_json:
        _emit_json({**result.as_dict(), **({"stages": stages} if stages else {})})
    else:
        table = Table(
            title=f"{title}: {result.env_name} ({result.alb_dns_name})", title_justify="left"
        )
        table.add_column("check", style="bold", overflow="fold")
        table.add_column("target", overflow="fold")
        table.add_column("result", no_wrap=True)
        table.add_column("detail", overflow="fold")
        table.add_column("s", justify="right", no_wrap=True)
        for check in result.checks:
            outcome = {"passed": "[green]pass[/]", "failed": "[bold red]FAIL[/]"}.get(
                check.outcome, "[yellow]skip[/]"
            )
            table.add_row(check.name, check.target, outcome, check.detail, f"{check.seconds:.1f}")
        console.print(table)
        console.print(
            f"{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped "
            f"in {result.seconds:.1f} s; JUnit XML: {_shown(result.junit_path)}"
        )
    if not result.passed:
        failed = result.failures()
        lines = "\n".join(f"  - {check.describe()}" for check in failed)
        errors.print(
            f"[bold red]{title} failed:[/] {len(failed) or 'no'} check(s) failed"
            + (f"\n{lines}" if lines else " (nothing was checked)"),
            highlight=False,
        )
        raise CommandFailed(f"{title} failed")


def _region(stack_file: str | None, env_name: str | None) -> RegionSettings:
    stack, _ = _load(stack_file, env_name)
    return cloud_target(stack).local_region("`invoke local.up|down|status`")


def _region_command(action: Callable[[RegionSettings], Any]) -> Callable[..., Any]:
    def run(stack_file: str | None, env_name: str | None, as_json: bool) -> None:
        with _explained():
            outcome = action(_region(stack_file, env_name))
        if as_json:
            _emit_json(_as_document(outcome))
        else:
            console.print(outcome.describe() if hasattr(outcome, "describe") else outcome)

    return run


def _as_document(outcome: Any) -> dict[str, Any]:
    if hasattr(outcome, "as_dict"):
        document: dict[str, Any] = outcome.as_dict()
        return document
    return {"result": str(outcome)}


def _up(settings: RegionSettings) -> daemon.RegionStatus:
    # Progress (a first base image build takes minutes) on stderr: --json keeps stdout clean.
    return daemon.up(settings, on_progress=lambda line: errors.print(f"  {line}"))


local_up = _region_command(_up)
local_down = _region_command(daemon.down)
local_status = _region_command(daemon.status)
