"""HTTP→HTTPS: a redirecting HTTP listener, an HTTPS listener with an imported ACM certificate.

Also checks a changed stack rolls out: new user data makes a new launch template version that the
group is pinned to, through an instance refresh that completes instead of hanging. The instances
boot the base image (no bake here), so nothing answers the ALB's health check: the group uses EC2
health checks and no warmup, and the refresh replaces instances once they run.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Sandbox, quiet_progress
from webfleet.fleet import Deployment, FleetView
from webfleet.stages import rollout
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.apply import DeployResult

pytestmark = pytest.mark.integration

HTTPS_SECTION = """
[load_balancer.https]
port = 443
ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
certificate_file = "tls/cert.pem"
private_key_file = "tls/key.pem"
"""


@pytest.fixture(scope="module")
def https_sandbox(sandbox: Sandbox) -> Sandbox:
    tls = sandbox.stack_file.parent / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=webfleet-demo.local", "-keyout", str(tls / "key.pem"),
         "-out", str(tls / "cert.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    text = sandbox.stack_file.read_text()
    text = text.replace(
        'http = { port = 80, action = "forward" }',
        'http = { port = 80, action = "redirect_https" }',
    )
    text = text.replace(
        "[load_balancer.health_check]", HTTPS_SECTION + "\n[load_balancer.health_check]"
    )
    text = text.replace('health_check_type = "ELB"', 'health_check_type = "EC2"')
    text = text.replace("instance_warmup = 60", "instance_warmup = 0")
    sandbox.stack_file.write_text(text)
    return sandbox


@pytest.fixture(scope="module")
def deployed(https_sandbox: Sandbox) -> Iterator[DeployResult]:
    result = deploy_stage.deploy(https_sandbox.stack(), https_sandbox.paths, quiet_progress())
    try:
        yield result
    finally:
        deploy_stage.destroy(https_sandbox.stack(), https_sandbox.paths, quiet_progress())


def test_http_redirects_to_https_which_forwards_with_the_imported_certificate(
    https_sandbox: Sandbox, deployed: DeployResult
) -> None:
    target = https_sandbox.target()
    elbv2 = target.elbv2()
    listeners = {
        item["Port"]: item
        for item in elbv2.describe_listeners(LoadBalancerArn=deployed.outputs["alb_arn"])[
            "Listeners"
        ]
    }
    assert sorted(listeners) == [80, 443]
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    config = redirect["RedirectConfig"]
    assert (config["Protocol"], config["Port"], config["StatusCode"]) == (
        "HTTPS",
        "443",
        "HTTP_301",
    )
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["DefaultActions"][0]["TargetGroupArn"] == deployed.outputs["target_group_arn"]
    (certificate,) = https["Certificates"]
    described = target.acm().describe_certificate(CertificateArn=certificate["CertificateArn"])[
        "Certificate"
    ]
    assert described["Type"] == "IMPORTED"
    assert described["DomainName"] == "webfleet-demo.local"
    # Path rules serve traffic, so they sit on the HTTPS listener.
    https_rules = elbv2.describe_rules(ListenerArn=https["ListenerArn"])["Rules"]
    assert {rule["Priority"] for rule in https_rules} == {"10", "20", "default"}
    http_rules = elbv2.describe_rules(ListenerArn=listeners[80]["ListenerArn"])["Rules"]
    assert {rule["Priority"] for rule in http_rules} == {"default"}
    assert deployed.outputs["https_listener_arn"] == https["ListenerArn"]


def test_alb_security_group_opens_both_listener_ports(
    https_sandbox: Sandbox, deployed: DeployResult
) -> None:
    ec2 = https_sandbox.target().ec2()
    (group,) = ec2.describe_security_groups(GroupIds=[deployed.outputs["alb_security_group_id"]])[
        "SecurityGroups"
    ]
    assert sorted(rule["FromPort"] for rule in group["IpPermissions"]) == [80, 443]


def test_new_user_data_rolls_a_new_template_version_through_a_refresh(
    https_sandbox: Sandbox, deployed: DeployResult
) -> None:
    stack_file = https_sandbox.stack_file
    stack_file.write_text(stack_file.read_text().replace("Hello from webfleet", "Hello again"))
    started = time.monotonic()
    changed = deploy_stage.deploy(https_sandbox.stack(), https_sandbox.paths, quiet_progress())
    elapsed = time.monotonic() - started
    # Generous bound: the point is that no provider retry loop (minutes) is hit.
    assert elapsed < 120, f"deploy after a user data change took {elapsed:.0f}s"
    assert (changed.changes.add, changed.changes.destroy) == (0, 0)
    assert changed.changes.change >= 2
    assert changed.outputs["launch_template_latest_version"] == 2
    autoscaling = https_sandbox.target().autoscaling()
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[changed.outputs["asg_name"]]
    )["AutoScalingGroups"]
    assert group["LaunchTemplate"]["Version"] == "2"
    assert changed.refresh_id is not None
    fleet = FleetView(https_sandbox.target(), Deployment.from_outputs(changed.outputs, Path(".")))
    rolled = rollout.follow_refresh(
        fleet,
        changed.refresh_id,
        lambda _: None,
        timeout=300,
    )
    assert rolled.status == "Successful", rolled
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[changed.outputs["asg_name"]]
    )["AutoScalingGroups"]
    # The replaced instances may still be listed as Terminating while they drain.
    in_service = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert len(in_service) == 2
    assert {instance["LaunchTemplate"]["Version"] for instance in in_service} == {"2"}
    refreshes = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=changed.outputs["asg_name"]
    )["InstanceRefreshes"]
    assert [refresh["Status"] for refresh in refreshes] == ["Successful"]
    again = deploy_stage.deploy(https_sandbox.stack(), https_sandbox.paths, quiet_progress())
    assert not again.changes.any
