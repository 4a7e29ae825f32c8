"""The verify stage: prove that what `deploy` made works, on AWS and in the local region alike.

Inputs: the stack, deploy's outputs (.webfleet/<env>/deploy-outputs.json), the newest bake's
manifest (the expected app version) and the SSH key (webfleet's own under .webfleet/<env>/ssh/,
or the stack's environments.<env>.ssh.private_key_file). Outputs under .webfleet/<env>/verify/:
junit.xml (every check), the instance specs' own JUnit XML and the ssh_config used.

Order: wait (bounded) for the fleet to settle, run the testinfra specs on every InService
instance over SSH, check HTTP through the ALB's DNS name, then optionally fail one instance over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webfleet import traffic
from webfleet.config import EnvironmentStack
from webfleet.drivers.packer import MANIFEST_FILE, ManifestBuild, read_manifest
from webfleet.errors import WebfleetError
from webfleet.fleet import FleetView, Instance
from webfleet.paths import ProjectPaths
from webfleet.reporting import Reporter
from webfleet.stages.deploy.outputs import read_deployment
from webfleet.stages.render import InstanceLayout
from webfleet.stages.verify import failover as failover_stage
from webfleet.stages.verify import http as http_checks
from webfleet.stages.verify.checks import Check, Summary, failures, summarize
from webfleet.stages.verify.junit import write_junit
from webfleet.stages.verify.settle import wait_for_fleet
from webfleet.stages.verify.specs import (
    SpecContext,
    SpecReport,
    run_instance_specs,
    ssh_run,
)
from webfleet.stages.verify.ssh import SshAccess, ssh_access
from webfleet.targets import cloud_target

SPECS_DIR = Path("specs")
JUNIT_FILE = "junit.xml"
SUITE = "webfleet.verify"


@dataclass(frozen=True)
class ExpectedVersion:
    version: str
    ami_id: str | None
    # Why the deployed fleet may not run it (the deployed AMI is not the newest bake's).
    note: str = ""


def expected_app_version(
    build: ManifestBuild | None, region: str, deployed_ami: str | None
) -> ExpectedVersion | None:
    """The app version the fleet must serve: the newest bake's (manifest custom_data)."""
    if build is None:
        return None
    version = build.custom_data.get("app_version")
    if not version:
        return None
    baked_ami = build.amis().get(region)
    note = ""
    if deployed_ami is not None and baked_ami is not None and deployed_ami != baked_ami:
        note = (
            f"the deployed AMI {deployed_ami} is not the newest bake's {baked_ami}: "
            "run `invoke deploy`"
        )
    return ExpectedVersion(version, baked_ami, note)


@dataclass(frozen=True)
class VerifyResult:
    env_name: str
    alb_dns_name: str
    checks: tuple[Check, ...]
    junit_path: Path
    expected_version: str | None
    failover: failover_stage.FailoverReport | None
    seconds: float

    @property
    def summary(self) -> Summary:
        return summarize(self.checks)

    @property
    def passed(self) -> bool:
        return self.summary.ok

    def failures(self) -> list[Check]:
        return failures(self.checks)

    def as_dict(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "environment": self.env_name,
            "passed": self.passed,
            "alb_dns_name": self.alb_dns_name,
            "expected_version": self.expected_version,
            "summary": {
                "total": summary.total,
                "passed": summary.passed,
                "failed": summary.failed,
                "skipped": summary.skipped,
            },
            "seconds": self.seconds,
            "junit": str(self.junit_path),
            "checks": [check.as_dict() for check in self.checks],
            "failover": None if self.failover is None else vars(self.failover),
        }


def settle_timeout(stack: EnvironmentStack) -> float:
    """How long the fleet gets to settle: a boot, the grace period and the healthy threshold."""
    health = stack.load_balancer.health_check
    healthy = health.interval * (health.healthy_threshold + 1)
    return float(max(300, stack.asg.health_check_grace_period + healthy + 180))


def failover_timeouts(stack: EnvironmentStack) -> failover_stage.FailoverTimeouts:
    health = stack.load_balancer.health_check
    return failover_stage.FailoverTimeouts(
        unhealthy=float(health.interval * (health.unhealthy_threshold + 1) + health.timeout + 60),
        # ELB health checks of the group run every ~10-30 s on AWS; a boot takes minutes.
        replaced=float(600 + stack.asg.health_check_grace_period),
        healthy=float(health.interval * (health.healthy_threshold + 1) + 300),
    )


def verify(
    stack: EnvironmentStack,
    paths: ProjectPaths,
    reporter: Reporter,
    *,
    failover: bool = False,
) -> VerifyResult:
    """Every check against the deployed environment; the report is written even on failures."""
    started = time.monotonic()
    env_name = stack.env_name
    deployment = read_deployment(paths, env_name)
    target = cloud_target(stack)
    target.require_running("nothing deployed there exists any more")
    work_dir = paths.verify_dir(env_name)
    work_dir.mkdir(parents=True, exist_ok=True)
    ssh = ssh_access(stack, paths, work_dir)
    expected = expected_app_version(
        read_manifest(paths.build_dir(env_name) / MANIFEST_FILE), target.region, deployment.ami_id
    )
    fleet = FleetView(target, deployment)
    checks: list[Check] = []
    report: failover_stage.FailoverReport | None = None

    def record(new: list[Check]) -> None:
        for check in new:
            checks.append(check)
            reporter.note(_progress_line(check), "green" if check.passed else "bold red")

    reporter.stage("settle", f"group {deployment.asg_name}, target group, instance refresh")
    settled, instances = wait_for_fleet(fleet, stack.asg.desired_capacity, settle_timeout(stack))
    record([settled])
    if not instances:
        record(
            [Check("InService instances", deployment.asg_name, False, "none", 0.0, group="fleet")]
        )
    else:
        reporter.stage("instance specs", f"{SPECS_DIR}/ over SSH on {len(instances)} instances")
        record(run_specs(stack, paths, ssh, instances, work_dir, deployment.alb_dns_name))

        alb = traffic.alb_target(stack, deployment)
        reporter.stage("http", f"through {alb.dns_name}")
        record(run_http_checks(alb, fleet, instances, expected))

        if failover and failures(checks):
            skipped = (
                "not run: earlier checks failed (it would only take down more of a broken fleet)"
            )
            record([Check("failover", deployment.asg_name, True, skipped, 0.0, True, "failover")])
        elif failover:
            reporter.stage("failover", "stop the app on one instance under a request stream")
            outcome = run_failover_check(stack, fleet, alb, ssh, instances, reporter)
            if isinstance(outcome, Check):
                record([outcome])
            else:
                report = outcome
                record(report.checks())
    junit = write_junit(work_dir / JUNIT_FILE, SUITE, checks)
    return VerifyResult(
        env_name=env_name,
        alb_dns_name=deployment.alb_dns_name,
        checks=tuple(checks),
        junit_path=junit,
        expected_version=expected.version if expected else None,
        failover=report,
        seconds=round(time.monotonic() - started, 3),
    )


def _progress_line(check: Check) -> str:
    mark = "skip" if check.skipped else ("✓" if check.passed else "✗")
    line = f"{mark} {check.name} [{check.target}]"
    return f"{line}: {check.detail}" if check.detail else line


def run_specs(
    stack: EnvironmentStack,
    paths: ProjectPaths,
    ssh: SshAccess,
    instances: list[Instance],
    work_dir: Path,
    load_balancer_dns_name: str | None,
) -> list[Check]:
    """The testinfra specs on every instance; one check per spec and instance."""
    by_address: dict[str, Instance] = {}
    for instance in instances:
        address = instance.address(ssh.address)
        if address is not None:
            by_address[address] = instance
    checks = [
        Check(
            "SSH address",
            instance.label,
            False,
            f"the instance has no {ssh.address} (environments.{stack.env_name}.ssh.address)",
            0.0,
            group="specs",
        )
        for instance in instances
        if instance.address(ssh.address) is None
    ]
    if not by_address:
        return checks
    started = time.monotonic()
    try:
        report: SpecReport = run_instance_specs(
            paths.root / SPECS_DIR,
            sorted(by_address),
            ssh_user=ssh.user,
            private_key=ssh.private_key,
            context=SpecContext.of_stack(stack, load_balancer_dns_name),
            work_dir=work_dir / "specs",
            proxy_command=ssh.proxy_command,
        )
    except WebfleetError as error:
        detail = str(error)
        return [
            *checks,
            Check("instance specs", "all instances", False, detail, _since(started), group="specs"),
        ]
    for result in report.results:
        member = by_address.get(result.host)
        checks.append(
            Check(
                name=result.name,
                target=member.label if member else result.host,
                passed=result.outcome in ("passed", "skipped"),
                detail=_first_line(result.message),
                seconds=result.seconds,
                skipped=result.outcome == "skipped",
                group="specs",
            )
        )
    return checks


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def run_http_checks(
    alb: traffic.AlbTarget,
    fleet: FleetView,
    instances: list[Instance],
    expected: ExpectedVersion | None,
) -> list[Check]:
    known: dict[str, str] = {}
    for instance in instances:
        known.update(traffic.hostnames(instance.instance_id, instance.private_ip))

    def fetch(listener: traffic.Listener, path: str) -> traffic.Answer:
        return traffic.instance_named(traffic.fetch(alb.dns_name, listener, path), known)

    ids = [instance.instance_id for instance in instances]
    checks = http_checks.check_listeners(alb, fetch)
    distribution, answers = http_checks.check_distribution(alb, ids, fetch)
    checks.append(distribution)
    version = http_checks.check_version(alb, answers, expected.version if expected else None)
    if expected is not None and expected.note and not version.passed:
        version = Check(
            version.name,
            version.target,
            False,
            f"{version.detail}; {expected.note}",
            version.seconds,
            group=version.group,
        )
    checks.append(version)
    checks.append(
        http_checks.check_target_health(
            fleet.target_health(), ids, fleet.deployment.target_group_name
        )
    )
    return checks


def run_failover_check(
    stack: EnvironmentStack,
    fleet: FleetView,
    alb: traffic.AlbTarget,
    ssh: SshAccess,
    instances: list[Instance],
    reporter: Reporter,
) -> failover_stage.FailoverReport | Check:
    """Fail one instance over, or a failed check saying why it could not start."""
    healthy = fleet.target_states()
    candidates = [i for i in instances if healthy.get(i.instance_id) == "healthy"]
    if len(candidates) < 2:
        return Check(
            "failover",
            fleet.deployment.asg_name,
            False,
            f"needs at least 2 healthy instances to stop one, has {len(candidates)}",
            0.0,
            group=failover_stage.GROUP,
        )
    victim = candidates[0]
    service = InstanceLayout(stack.app.name).service_name
    listener = alb.serving

    def stop_service(instance_id: str) -> str:
        address = victim.address(ssh.address)
        if address is None:
            return f"failed: {instance_id} has no {ssh.address}"
        result = ssh_run(ssh.config_file, address, f"sudo systemctl stop {service}")
        if result.returncode != 0:
            return f"failed: ssh exit {result.returncode}: {result.stderr.strip()[:300]}"
        return f"sudo systemctl stop {service} over SSH ({address})"

    probe = failover_stage.FleetProbe(
        in_service=fleet.in_service_ids,
        target_states=fleet.target_states,
        stop_service=stop_service,
        fetch=lambda: traffic.fetch(alb.dns_name, listener, alb.health_check_path),
    )
    return failover_stage.run_failover(
        victim.instance_id, probe, failover_timeouts(stack), on_step=reporter.note
    )


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
