"""deploy/destroy end to end: the installed Terraform against the real local region's API.

Order matters in this module: the fixture deploys once and the tests inspect what it made through
boto3; then the stack changes in place to HTTP→HTTPS with an imported ACM certificate (a
redirecting HTTP listener, an HTTPS listener), new user data rolls a new launch template version
through an instance refresh that completes instead of hanging, and the last test destroys it all
and checks nothing is left.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mypy_boto3_ec2.type_defs import FilterTypeDef

from tests.conftest import Sandbox, quiet_progress
from webfleet.fleet import Deployment, FleetView
from webfleet.stages import rollout
from webfleet.stages.deploy import apply as deploy_stage
from webfleet.stages.deploy.apply import DeployResult
from webfleet.stages.render import LOAD_BALANCER_DNS_NAME_PLACEHOLDER

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(4)]

HTTPS_SECTION = """
[load_balancer.https]
port = 443
ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
certificate_file = "tls/cert.pem"
private_key_file = "tls/key.pem"
"""

LOGS_SECTION = """
[logs]
access_logs = true
flow_logs = true
retention_days = 30
"""


@pytest.fixture(scope="module")
def deployed(sandbox: Sandbox) -> Iterator[DeployResult]:
    result = deploy_stage.deploy(sandbox.stack(), sandbox.paths, quiet_progress())
    try:
        yield result
    finally:
        deploy_stage.destroy(sandbox.stack(), sandbox.paths, quiet_progress())


def test_first_deploy_creates_the_stack_and_writes_outputs(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    assert deployed.changes.add >= 20
    assert (deployed.changes.change, deployed.changes.destroy) == (0, 0)
    outputs = deployed.outputs
    assert outputs["alb_dns_name"]
    assert outputs["asg_name"].startswith("webfleet-demo-local")
    assert outputs["target_group_arn"].startswith("arn:aws:elasticloadbalancing:")
    assert sandbox.paths.deploy_outputs("local").is_file()


def test_second_deploy_changes_nothing(sandbox: Sandbox, deployed: DeployResult) -> None:
    again = deploy_stage.deploy(sandbox.stack(), sandbox.paths, quiet_progress())
    assert not again.changes.any
    assert again.outputs == deployed.outputs


def test_alb_is_internet_facing_in_two_azs_with_its_security_group(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    elbv2 = sandbox.target().elbv2()
    (alb,) = elbv2.describe_load_balancers(LoadBalancerArns=[deployed.outputs["alb_arn"]])[
        "LoadBalancers"
    ]
    assert alb["Scheme"] == "internet-facing"
    assert alb["Type"] == "application"
    assert {zone["ZoneName"] for zone in alb["AvailabilityZones"]} == {"us-east-1a", "us-east-1b"}
    assert alb["SecurityGroups"] == [deployed.outputs["alb_security_group_id"]]


def test_listeners_and_rules_follow_the_stack_file(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    elbv2 = sandbox.target().elbv2()
    listeners = elbv2.describe_listeners(LoadBalancerArn=deployed.outputs["alb_arn"])["Listeners"]
    assert [(item["Port"], item["Protocol"]) for item in listeners] == [(80, "HTTP")]
    (action,) = listeners[0]["DefaultActions"]
    assert action["Type"] == "forward"
    assert action["TargetGroupArn"] == deployed.outputs["target_group_arn"]
    rules = elbv2.describe_rules(ListenerArn=listeners[0]["ListenerArn"])["Rules"]
    by_priority = {rule["Priority"]: rule for rule in rules}
    api = by_priority["10"]
    assert api["Conditions"][0]["Field"] == "path-pattern"
    assert api["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    assert api["Actions"][0]["Type"] == "forward"
    admin = by_priority["20"]["Actions"][0]
    assert admin["Type"] == "fixed-response"
    assert admin["FixedResponseConfig"]["StatusCode"] == "403"


def test_target_group_health_check_and_attributes(sandbox: Sandbox, deployed: DeployResult) -> None:
    elbv2 = sandbox.target().elbv2()
    arn = deployed.outputs["target_group_arn"]
    (group,) = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
    assert (group["Port"], group["Protocol"], group["TargetType"]) == (8000, "HTTP", "instance")
    assert group["HealthCheckPath"] == "/healthz"
    assert group["Matcher"]["HttpCode"] == "200"
    assert group["HealthCheckIntervalSeconds"] == 10
    assert group["HealthCheckTimeoutSeconds"] == 5
    assert (group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (2, 2)
    attributes = {
        item["Key"]: item["Value"]
        for item in elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    }
    assert attributes["deregistration_delay.timeout_seconds"] == "10"
    assert attributes["load_balancing.algorithm.type"] == "round_robin"
    assert attributes["stickiness.enabled"] == "false"


def test_asg_spans_both_subnets_with_elb_health_checks(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    autoscaling = sandbox.target().autoscaling()
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[deployed.outputs["asg_name"]]
    )["AutoScalingGroups"]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (2, 2, 4)
    assert group["HealthCheckType"] == "ELB"
    assert group["HealthCheckGracePeriod"] == 120
    assert group["TargetGroupARNs"] == [deployed.outputs["target_group_arn"]]
    assert set(group["VPCZoneIdentifier"].split(",")) == set(deployed.outputs["public_subnet_ids"])
    template = group["LaunchTemplate"]
    assert template["LaunchTemplateId"] == deployed.outputs["launch_template_id"]
    policies = autoscaling.describe_policies(AutoScalingGroupName=group["AutoScalingGroupName"])
    metrics = {
        policy["TargetTrackingConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: policy["TargetTrackingConfiguration"]["TargetValue"]
        for policy in policies["ScalingPolicies"]
    }
    assert metrics == {"ASGAverageCPUUtilization": 50.0, "ALBRequestCountPerTarget": 1000.0}


def test_launch_template_requires_imdsv2_encrypts_the_root_volume_and_carries_the_user_data(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    ec2 = sandbox.target().ec2()
    versions = ec2.describe_launch_template_versions(
        LaunchTemplateId=deployed.outputs["launch_template_id"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    data = versions[0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert data["InstanceType"] == "t3.micro"
    assert data["ImageId"] == deployed.outputs["ami_id"]
    assert data["IamInstanceProfile"]
    (image,) = ec2.describe_images(ImageIds=[data["ImageId"]])["Images"]
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == image["RootDeviceName"]
    assert (root["Ebs"]["Encrypted"], root["Ebs"]["VolumeType"]) == (True, "gp3")
    user_data = base64.b64decode(data["UserData"]).decode()
    rendered = sandbox.paths.rendered_dir("local") / "user-data.yaml"
    # As rendered, with the ALB's DNS name where the env file had its placeholder.
    dns_name = deployed.outputs["alb_dns_name"]
    assert user_data == rendered.read_text().replace(LOAD_BALANCER_DNS_NAME_PLACEHOLDER, dns_name)
    assert f"APP_LOAD_BALANCER_DNS_NAME={dns_name}\n" in user_data
    assert f"APP_URL=http://{dns_name}\n" in user_data
    assert yaml.safe_load(user_data)["runcmd"]
    assert data["SecurityGroupIds"] == [deployed.outputs["app_security_group_id"]]


def test_base_ami_is_debian_12_from_the_official_owner(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    ec2 = sandbox.target().ec2()
    (image,) = ec2.describe_images(ImageIds=[deployed.outputs["ami_id"]])["Images"]
    assert image["OwnerId"] == "136693071363"
    assert image["Name"].startswith("debian-12-amd64-")


def test_the_vpcs_default_security_group_has_no_rules(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    ec2 = sandbox.target().ec2()
    (default,) = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [deployed.outputs["vpc_id"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    assert (default["IpPermissions"], default["IpPermissionsEgress"]) == ([], [])


def test_app_port_is_open_only_to_the_alb_security_group(
    sandbox: Sandbox, deployed: DeployResult
) -> None:
    ec2 = sandbox.target().ec2()
    outputs = deployed.outputs
    (app_group,) = ec2.describe_security_groups(GroupIds=[outputs["app_security_group_id"]])[
        "SecurityGroups"
    ]
    ingress = app_group["IpPermissions"]
    assert len(ingress) == 1
    assert (ingress[0]["FromPort"], ingress[0]["ToPort"]) == (8000, 8000)
    assert ingress[0]["IpRanges"] == []
    assert [pair["GroupId"] for pair in ingress[0]["UserIdGroupPairs"]] == [
        outputs["alb_security_group_id"]
    ]
    (alb_group,) = ec2.describe_security_groups(GroupIds=[outputs["alb_security_group_id"]])[
        "SecurityGroups"
    ]
    open_ports = {
        (rule["FromPort"], tuple(r["CidrIp"] for r in rule["IpRanges"]))
        for rule in alb_group["IpPermissions"]
    }
    assert open_ports == {(80, ("0.0.0.0/0",))}


def test_instance_profile_has_ssm_managed_policy(sandbox: Sandbox, deployed: DeployResult) -> None:
    iam = sandbox.target().iam()
    roles = [
        role for role in iam.list_roles()["Roles"] if role["RoleName"].startswith("webfleet-demo")
    ]
    assert len(roles) == 1
    attached = iam.list_attached_role_policies(RoleName=roles[0]["RoleName"])
    names = [policy["PolicyName"] for policy in attached["AttachedPolicies"]]
    assert names == ["AmazonSSMManagedInstanceCore"]


@pytest.fixture(scope="module")
def https_deployed(sandbox: Sandbox, deployed: DeployResult) -> DeployResult:
    """The deployed stack changed in place to HTTP→HTTPS with an imported certificate, and the
    ALB's deletion protection, access logs and VPC flow logs on (as an AWS environment has
    them). The instances boot the base image (no bake here), so nothing answers the ALB's health
    check: the group switches to EC2 health checks and no warmup, so a refresh replaces instances
    once they run."""
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
        'http = { port = 80, action = "redirect_https" }\ndeletion_protection = true',
    )
    text = text.replace(
        "[load_balancer.health_check]", HTTPS_SECTION + "\n[load_balancer.health_check]"
    )
    text = text.replace("[network]", LOGS_SECTION + "\n[network]", 1)
    text = text.replace('health_check_type = "ELB"', 'health_check_type = "EC2"')
    text = text.replace("instance_warmup = 60", "instance_warmup = 0")
    sandbox.stack_file.write_text(text)
    changed = deploy_stage.deploy(sandbox.stack(), sandbox.paths, quiet_progress())
    # APP_URL in the env file is https:// now: a new launch template version, rolled out.
    assert changed.refresh_id is not None
    follow(sandbox, changed)
    return changed


def follow(sandbox: Sandbox, changed: DeployResult) -> None:
    """Follow the instance refresh the deploy started to its end, which must be a success."""
    assert changed.refresh_id is not None
    fleet = FleetView(sandbox.target(), Deployment.from_outputs(changed.outputs, Path(".")))
    rolled = rollout.follow_refresh(fleet, changed.refresh_id, lambda _: None, timeout=300)
    assert rolled.status == "Successful", rolled


def test_http_redirects_to_https_which_forwards_with_the_imported_certificate(
    sandbox: Sandbox, https_deployed: DeployResult
) -> None:
    target = sandbox.target()
    elbv2 = target.elbv2()
    listeners = {
        item["Port"]: item
        for item in elbv2.describe_listeners(LoadBalancerArn=https_deployed.outputs["alb_arn"])[
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
    assert (
        https["DefaultActions"][0]["TargetGroupArn"] == https_deployed.outputs["target_group_arn"]
    )
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
    assert https_deployed.outputs["https_listener_arn"] == https["ListenerArn"]


def test_a_protected_alb_refuses_deletion(sandbox: Sandbox, https_deployed: DeployResult) -> None:
    # The destroy test below then has to turn the protection off first, as on AWS.
    elbv2 = sandbox.target().elbv2()
    arn = https_deployed.outputs["alb_arn"]
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in attributes
    with pytest.raises(elbv2.exceptions.ClientError, match="OperationNotPermitted"):
        elbv2.delete_load_balancer(LoadBalancerArn=arn)


def test_access_and_flow_logs_go_to_the_stacks_private_log_bucket(
    sandbox: Sandbox, https_deployed: DeployResult
) -> None:
    target = sandbox.target()
    bucket = https_deployed.outputs["log_bucket"]
    assert bucket.startswith("webfleet-demo-local-logs-")
    arn = https_deployed.outputs["alb_arn"]
    attributes = {
        item["Key"]: item["Value"]
        for item in target.elbv2().describe_load_balancer_attributes(LoadBalancerArn=arn)[
            "Attributes"
        ]
    }
    assert attributes["access_logs.s3.enabled"] == "true"
    assert (attributes["access_logs.s3.bucket"], attributes["access_logs.s3.prefix"]) == (
        bucket,
        "alb",
    )
    ec2 = target.ec2()
    (flow_log,) = ec2.describe_flow_logs(
        Filters=[{"Name": "resource-id", "Values": [https_deployed.outputs["vpc_id"]]}]
    )["FlowLogs"]
    assert flow_log["LogDestinationType"] == "s3"
    assert flow_log["LogDestination"] == f"arn:aws:s3:::{bucket}/vpc-flow-logs/"
    assert flow_log["TrafficType"] == "ALL"
    s3 = target.s3()
    blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocked.values()) and len(blocked) == 4
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (expiry,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert expiry["Expiration"]["Days"] == 30
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert by_sid["TlsOnly"]["Effect"] == "Deny"
    account = bucket.rsplit("-", 1)[1]
    assert by_sid["FlowLogsWrite"]["Resource"] == (
        f"arn:aws:s3:::{bucket}/vpc-flow-logs/AWSLogs/{account}/*"
    )
    assert by_sid["AlbAccessLogs"]["Resource"] == (f"arn:aws:s3:::{bucket}/alb/AWSLogs/{account}/*")
    # A request through the ALB (the HTTP listener redirects) ends up in an access log object.
    connection = http.client.HTTPConnection(https_deployed.outputs["alb_dns_name"], 80, timeout=10)
    connection.request("GET", "/logged?x=1", headers={"User-Agent": "webfleet-test"})
    assert connection.getresponse().status == 301
    connection.close()
    logs_prefix = f"alb/AWSLogs/{account}/elasticloadbalancing/us-east-1/"
    deadline = time.monotonic() + 30
    while not (listed := s3.list_objects_v2(Bucket=bucket, Prefix=logs_prefix)).get("Contents"):
        assert time.monotonic() < deadline, "no access log object was published"
        time.sleep(1)
    entries = [
        line
        for item in listed["Contents"]
        for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        .decode()
        .splitlines()
    ]
    (entry,) = [line for line in entries if "/logged?x=1" in line]
    assert entry.startswith("http ") and " 301 - " in entry and '"webfleet-test"' in entry
    assert '"redirect"' in entry


def test_alb_security_group_opens_both_listener_ports(
    sandbox: Sandbox, https_deployed: DeployResult
) -> None:
    ec2 = sandbox.target().ec2()
    (group,) = ec2.describe_security_groups(
        GroupIds=[https_deployed.outputs["alb_security_group_id"]]
    )["SecurityGroups"]
    assert sorted(rule["FromPort"] for rule in group["IpPermissions"]) == [80, 443]


def test_new_user_data_rolls_a_new_template_version_through_a_refresh(
    sandbox: Sandbox, https_deployed: DeployResult
) -> None:
    stack_file = sandbox.stack_file
    stack_file.write_text(stack_file.read_text().replace("Hello from webfleet", "Hello again"))
    started = time.monotonic()
    changed = deploy_stage.deploy(sandbox.stack(), sandbox.paths, quiet_progress())
    elapsed = time.monotonic() - started
    # Generous bound: the point is that no provider retry loop (minutes) is hit.
    assert elapsed < 120, f"deploy after a user data change took {elapsed:.0f}s"
    assert (changed.changes.add, changed.changes.destroy) == (0, 0)
    assert changed.changes.change >= 2
    # Version 2 was the switch to HTTPS (its APP_URL).
    assert changed.outputs["launch_template_latest_version"] == 3
    autoscaling = sandbox.target().autoscaling()
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[changed.outputs["asg_name"]]
    )["AutoScalingGroups"]
    assert group["LaunchTemplate"]["Version"] == "3"
    follow(sandbox, changed)
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[changed.outputs["asg_name"]]
    )["AutoScalingGroups"]
    # The replaced instances may still be listed as Terminating while they drain.
    in_service = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert len(in_service) == 2
    assert {instance["LaunchTemplate"]["Version"] for instance in in_service} == {"3"}
    refreshes = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName=changed.outputs["asg_name"]
    )["InstanceRefreshes"]
    assert [refresh["Status"] for refresh in refreshes] == ["Successful", "Successful"]
    again = deploy_stage.deploy(sandbox.stack(), sandbox.paths, quiet_progress())
    assert not again.changes.any


def test_destroy_leaves_nothing(sandbox: Sandbox, deployed: DeployResult) -> None:
    result = deploy_stage.destroy(sandbox.stack(), sandbox.paths, quiet_progress())
    assert result.changes.destroy >= 20
    target = sandbox.target()
    ec2 = target.ec2()
    assert target.elbv2().describe_load_balancers()["LoadBalancers"] == []
    assert target.elbv2().describe_target_groups()["TargetGroups"] == []
    assert target.autoscaling().describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    ours: list[FilterTypeDef] = [{"Name": "tag:ManagedBy", "Values": ["webfleet"]}]
    assert ec2.describe_vpcs(Filters=ours)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=ours)["Subnets"] == []
    assert ec2.describe_security_groups(Filters=ours)["SecurityGroups"] == []
    assert ec2.describe_internet_gateways(Filters=ours)["InternetGateways"] == []
    assert ec2.describe_flow_logs()["FlowLogs"] == []
    assert target.s3().list_buckets()["Buckets"] == []  # the log bucket, its logs included
    running = ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )["Reservations"]
    assert running == []
    iam = target.iam()
    assert [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("webfleet")] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    # A second destroy finds nothing to do.
    assert (
        deploy_stage.destroy(sandbox.stack(), sandbox.paths, quiet_progress()).changes.destroy == 0
    )
