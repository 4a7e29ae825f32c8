"""The verify stage: prove that what `deploy` made works, on AWS and in the local region alike.

Inputs: the stack, deploy's outputs (build/<env>/deploy-outputs.json), the newest bake's manifest
(the expected app version) and the SSH key (webfleet's own under build/<env>/ssh/, or the stack's
environments.<env>.ssh.private_key_file). Outputs under build/<env>/verify/: junit.xml (every
check), the instance specs' own JUnit XML and the ssh_config used.

Order: wait (bounded) for the fleet to settle, run the testinfra specs on every InService
instance over SSH, check HTTP through the ALB's DNS name, then optionally fail one instance over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webfleet.cli.progress import Progress
from webfleet.config import EnvironmentStack
from webfleet.drivers.packer import MANIFEST_FILE, ManifestBuild, read_manifest
from webfleet.errors import WebfleetError
from webfleet.localregion.runtime import daemon
from webfleet.paths import ProjectPaths
from webfleet.stages.deploy.ssh_keys import KEY_FILE
from webfleet.stages.render import InstanceLayout
from webfleet.stages.verify import failover as failover_stage
from webfleet.stages.verify import http as http_checks
from webfleet.stages.verify.checks import Check, Summary, failures, summarize
from webfleet.stages.verify.junit import write_junit
from webfleet.stages.verify.specs import (
    SpecContext,
    SpecReport,
    run_instance_specs,
    ssh_run,
    write_ssh_config,
)
from webfleet.targets.cloud import CloudTarget, cloud_target, region_settings
from webfleet.waits import wait_for

SPECS_DIR = Path("specs")
JUNIT_FILE = "junit.xml"
SUITE = "webfleet.verify"
# Instance refresh states during which the fleet is still changing.
# Every InService target unhealthy this long: the fleet will not settle by waiting (broken app).
ALL_UNHEALTHY_GIVE_UP_SECONDS = 30.0
_REFRESH_BUSY = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}


@dataclass(frozen=True)
class Instance:
    instance_id: str
    private_ip: str | None
    public_ip: str | None
    image_id: str
    availability_zone: str

    def address(self, kind: str) -> str | None:
        return {
            "private_ip": self.private_ip,
            "public_ip": self.public_ip,
            "instance_id": self.instance_id,
        }.get(kind)

    @property
    def label(self) -> str:
        return f"{self.instance_id} ({self.private_ip or self.public_ip or 'no address'})"


@dataclass(frozen=True)
class Deployment:
    """What deploy left behind (its Terraform outputs)."""

    alb_dns_name: str
    asg_name: str
    target_group_arn: str
    ami_id: str | None
    https_listener: bool

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any], source: Path) -> Deployment:
        missing = [
            k for k in ("alb_dns_name", "asg_name", "target_group_arn") if not outputs.get(k)
        ]
        if missing:
            raise WebfleetError(f"{source} lacks {', '.join(missing)}: run `invoke deploy` again")
        return cls(
            alb_dns_name=str(outputs["alb_dns_name"]),
            asg_name=str(outputs["asg_name"]),
            target_group_arn=str(outputs["target_group_arn"]),
            ami_id=str(outputs["ami_id"]) if outputs.get("ami_id") else None,
            https_listener=bool(outputs.get("https_listener_arn")),
        )


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
class SshAccess:
    config_file: Path
    address: str  # private_ip, public_ip or instance_id
    user: str
    private_key: Path
    proxy_command: str | None


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
    progress: Progress,
    *,
    failover: bool = False,
) -> VerifyResult:
    """Every check against the deployed environment; the report is written even on failures."""
    started = time.monotonic()
    env_name = stack.env_name
    deployment = read_deployment(paths, env_name)
    target = cloud_target(stack)
    _check_region_runs(stack)
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
            progress.note(_progress_line(check), "green" if check.passed else "bold red")

    progress.stage("settle", f"group {deployment.asg_name}, target group, instance refresh")
    settled, instances = wait_for_fleet(fleet, stack.asg.desired_capacity, settle_timeout(stack))
    record([settled])
    if not instances:
        record(
            [Check("InService instances", deployment.asg_name, False, "none", 0.0, group="fleet")]
        )
    else:
        progress.stage("instance specs", f"{SPECS_DIR}/ over SSH on {len(instances)} instances")
        record(run_specs(stack, paths, ssh, instances, work_dir))

        alb = alb_target(stack, deployment)
        progress.stage("http", f"through {alb.dns_name}")
        record(run_http_checks(alb, fleet, instances, expected))

        if failover and failures(checks):
            skipped = (
                "not run: earlier checks failed (it would only take down more of a broken fleet)"
            )
            record([Check("failover", deployment.asg_name, True, skipped, 0.0, True, "failover")])
        elif failover:
            progress.stage("failover", "stop the app on one instance under a request stream")
            outcome = run_failover_check(stack, fleet, alb, ssh, instances, progress)
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


def _check_region_runs(stack: EnvironmentStack) -> None:
    if stack.environment.kind != "local":
        return
    settings = region_settings(stack)
    if not daemon.status(settings).running:
        raise WebfleetError(
            f"the local region ({settings.endpoint_url}) is not running, so nothing deployed "
            "there exists any more: run `invoke deploy` first"
        )


def ssh_access(stack: EnvironmentStack, paths: ProjectPaths, work_dir: Path) -> SshAccess:
    """The key, user, address and proxy verify logs in with; fails naming the field to set."""
    ssh = stack.environment.ssh
    if stack.image.key_name is None:
        private_key = paths.ssh_dir(stack.env_name) / KEY_FILE
        if not private_key.is_file():
            raise WebfleetError(
                f"no SSH key for the instances at {private_key}: `invoke deploy` makes it "
                "(and the key pair the instances boot with)"
            )
    else:
        configured = stack.ssh_private_key_file
        if configured is None:
            raise WebfleetError(
                f"image.key_name is {stack.image.key_name!r}: set "
                f"environments.{stack.env_name}.ssh.private_key_file to its private key so "
                "verify can log in to the instances"
            )
        if not configured.is_file():
            raise WebfleetError(
                f"environments.{stack.env_name}.ssh.private_key_file: {configured} does not exist"
            )
        private_key = configured
    config = write_ssh_config(
        work_dir / "ssh_config", stack.image.ssh_user, private_key, ssh.proxy_command
    )
    return SshAccess(
        config, stack.ssh_address, stack.image.ssh_user, private_key, ssh.proxy_command
    )


class FleetView:
    """The group, its instances and the target group, as the AWS APIs report them."""

    def __init__(self, target: CloudTarget, deployment: Deployment) -> None:
        self.deployment = deployment
        self._autoscaling = target.client("autoscaling")
        self._ec2 = target.client("ec2")
        self._elbv2 = target.client("elbv2")

    def group(self) -> dict[str, Any]:
        groups = self._autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.deployment.asg_name]
        )["AutoScalingGroups"]
        if not groups:
            raise WebfleetError(
                f"the Auto Scaling Group {self.deployment.asg_name} does not exist: "
                "run `invoke deploy`"
            )
        group: dict[str, Any] = groups[0]
        return group

    def in_service_ids(self) -> list[str]:
        return sorted(
            member["InstanceId"]
            for member in self.group()["Instances"]
            if member["LifecycleState"] == "InService"
        )

    def instances(self, ids: list[str]) -> list[Instance]:
        if not ids:
            return []
        reservations = self._ec2.describe_instances(InstanceIds=ids)["Reservations"]
        found = [item for reservation in reservations for item in reservation["Instances"]]
        return sorted(
            (
                Instance(
                    instance_id=item["InstanceId"],
                    private_ip=item.get("PrivateIpAddress"),
                    public_ip=item.get("PublicIpAddress"),
                    image_id=item.get("ImageId", ""),
                    availability_zone=item.get("Placement", {}).get("AvailabilityZone", ""),
                )
                for item in found
            ),
            key=lambda instance: instance.instance_id,
        )

    def target_health(self) -> list[dict[str, Any]]:
        health: list[dict[str, Any]] = self._elbv2.describe_target_health(
            TargetGroupArn=self.deployment.target_group_arn
        )["TargetHealthDescriptions"]
        return health

    def target_states(self) -> dict[str, str]:
        return {
            entry["Target"]["Id"]: entry["TargetHealth"]["State"] for entry in self.target_health()
        }

    def refresh_status(self) -> str | None:
        refreshes = self._autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=self.deployment.asg_name, MaxRecords=1
        ).get("InstanceRefreshes", [])
        return str(refreshes[0]["Status"]) if refreshes else None


@dataclass(frozen=True)
class FleetState:
    desired: int
    in_service: list[str]
    states: dict[str, str]
    images: dict[str, str]
    refresh: str | None


def fleet_problems(state: FleetState, ami_id: str | None) -> list[str]:
    """Why the fleet is not settled yet (empty: settled)."""
    problems = []
    if len(state.in_service) < state.desired:
        problems.append(f"{len(state.in_service)} of {state.desired} instances InService")
    if state.refresh in _REFRESH_BUSY:
        problems.append(f"instance refresh {state.refresh}")
    unhealthy = [f"{i} {state.states.get(i, 'unregistered')}" for i in state.in_service
                 if state.states.get(i) != "healthy"]  # fmt: skip
    if unhealthy:
        problems.append("targets not healthy: " + ", ".join(unhealthy))
    if ami_id is not None:
        old = [f"{i} on {image}" for i, image in sorted(state.images.items()) if image != ami_id]
        if old:
            problems.append(f"not on the deployed AMI {ami_id}: " + ", ".join(old))
    return problems


def wait_for_fleet(fleet: FleetView, desired: int, timeout: float) -> tuple[Check, list[Instance]]:
    """Wait (bounded) until the group is at size, refreshed and healthy; report what was seen."""
    ami_id = fleet.deployment.ami_id

    def observe() -> FleetState:
        group = fleet.group()
        in_service = sorted(
            m["InstanceId"] for m in group["Instances"] if m["LifecycleState"] == "InService"
        )
        images = {i.instance_id: i.image_id for i in fleet.instances(in_service)}
        return FleetState(
            int(group.get("DesiredCapacity", desired)),
            in_service,
            fleet.target_states(),
            images,
            fleet.refresh_status(),
        )

    unhealthy_since: list[float] = []

    def settled_or_hopeless(state: FleetState) -> bool:
        """Settled; or every InService target has failed its health checks for a while (a
        broken app: waiting out the whole timeout would only delay the verdict)."""
        if not fleet_problems(state, ami_id):
            return True
        failing = bool(state.in_service) and all(
            state.states.get(i) == "unhealthy" for i in state.in_service
        )
        if not failing:
            unhealthy_since.clear()
            return False
        unhealthy_since[:1] = unhealthy_since[:1] or [time.monotonic()]
        return time.monotonic() - unhealthy_since[0] >= ALL_UNHEALTHY_GIVE_UP_SECONDS

    waited = wait_for(observe, settled_or_hopeless, timeout=timeout, interval=2.0)
    state = waited.last
    problems = fleet_problems(state, ami_id)
    settled = waited.ok and not problems
    if settled:
        detail = f"{len(state.in_service)} InService and healthy: {', '.join(state.in_service)}"
    elif waited.ok:
        detail = (
            f"every target unhealthy for {ALL_UNHEALTHY_GIVE_UP_SECONDS:.0f} s "
            f"(after {waited.seconds:.0f} s): " + "; ".join(problems)
        )
    else:
        detail = f"not settled after {waited.seconds:.0f} s: " + "; ".join(problems)
    check = Check(
        "fleet settled", fleet.deployment.asg_name, settled, detail, waited.seconds, group="fleet"
    )
    return check, fleet.instances(state.in_service)


def run_specs(
    stack: EnvironmentStack,
    paths: ProjectPaths,
    ssh: SshAccess,
    instances: list[Instance],
    work_dir: Path,
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
            context=SpecContext.of_stack(stack),
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


def alb_target(stack: EnvironmentStack, deployment: Deployment) -> http_checks.AlbTarget:
    lb = stack.load_balancer
    listeners = [
        http_checks.Listener(
            "HTTP",
            lb.http.port,
            lb.http.action,
            redirect_port=lb.https.port if lb.https is not None else None,
        )
    ]
    if lb.https is not None:
        listeners.append(http_checks.Listener("HTTPS", lb.https.port, "forward"))
    return http_checks.AlbTarget(
        dns_name=deployment.alb_dns_name,
        listeners=tuple(listeners),
        health_check_path=stack.health_check_path,
        matcher=lb.health_check.matcher,
    )


def run_http_checks(
    alb: http_checks.AlbTarget,
    fleet: FleetView,
    instances: list[Instance],
    expected: ExpectedVersion | None,
) -> list[Check]:
    def fetch(listener: http_checks.Listener, path: str) -> http_checks.Answer:
        return http_checks.fetch(alb.dns_name, listener, path)

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
            fleet.target_health(), ids, fleet.deployment.target_group_arn.rsplit(":", 1)[-1]
        )
    )
    return checks


def run_failover_check(
    stack: EnvironmentStack,
    fleet: FleetView,
    alb: http_checks.AlbTarget,
    ssh: SshAccess,
    instances: list[Instance],
    progress: Progress,
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
        fetch=lambda: http_checks.fetch(alb.dns_name, listener, alb.health_check_path),
    )
    return failover_stage.run_failover(
        victim.instance_id, probe, failover_timeouts(stack), on_step=progress.note
    )


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
