"""The local region API's fixes to moto, tested through boto3 against the real served app."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.unit.localregion.served_api import (
    REGION,
    client,
    create_group,
    group_instances,
    group_with_target_group,
    instance_states,
)
from webfleet import refresh_status
from webfleet.localregion.api.error_middleware import UnhandledErrorMiddleware

DEBIAN_OWNER = "136693071363"
DEBIAN_NAME = "debian-12-amd64-20250520-2118"

pytestmark = pytest.mark.usefixtures("fresh_region")


def new_template_version(endpoint: str, template_id: str, user_data: str) -> str:
    """A new version with other user data, made the group's (as Terraform does), returned."""
    version = client(endpoint, "ec2").create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={"UserData": base64.b64encode(user_data.encode()).decode()},
    )["LaunchTemplateVersion"]["VersionNumber"]
    return str(version)


def test_amis_with_creation_date_load_in_every_region(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.ec2.models import amis

    debian = {
        "ami_id": "ami-0d2e4a6b8c1f3a5e7",
        "name": DEBIAN_NAME,
        "owner_id": DEBIAN_OWNER,
        "public": True,
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "root_device_type": "ebs",
        "creation_date": "2025-05-20T21:18:00.000Z",
    }
    monkeypatch.setattr(amis, "AMIS", [debian])
    # Rebuild the backends from the patched list: each region's backend loads it in turn.
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()

    for region in ("eu-west-1", "us-east-1", "eu-central-1"):
        images = client(endpoint, "ec2", region).describe_images(Owners=[DEBIAN_OWNER])["Images"]
        assert [(i["Name"], i["CreationDate"][:16]) for i in images] == [
            (DEBIAN_NAME, "2025-05-20T21:18")
        ]


def test_launch_template_own_tags_stay_out_of_launch_data(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    ec2.create_launch_template(
        LaunchTemplateName="tagged",
        LaunchTemplateData={
            "ImageId": "ami-12345678",
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}
            ],
        },
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "webfleet"}]}
        ],
    )
    ec2.create_launch_template(
        LaunchTemplateName="untagged-data",
        LaunchTemplateData={"ImageId": "ami-12345678"},
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "webfleet"}]}
        ],
    )

    tagged = ec2.describe_launch_template_versions(LaunchTemplateName="tagged")
    assert tagged["LaunchTemplateVersions"][0]["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}
    ]
    untagged = ec2.describe_launch_template_versions(LaunchTemplateName="untagged-data")
    assert "TagSpecifications" not in untagged["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    # The template itself still carries its tags.
    templates = ec2.describe_launch_templates(LaunchTemplateNames=["tagged"])["LaunchTemplates"]
    assert templates[0]["Tags"] == [{"Key": "Project", "Value": "webfleet"}]


def test_a_root_device_mapping_without_a_size_changes_the_root_volume(endpoint: str) -> None:
    # How the asg module asks for an encrypted root volume: the AMI's root device, no size.
    ec2 = client(endpoint, "ec2")
    image = ec2.describe_images()["Images"][0]
    ec2.create_launch_template(
        LaunchTemplateName="encrypted",
        LaunchTemplateData={
            "ImageId": image["ImageId"],
            "BlockDeviceMappings": [
                {
                    "DeviceName": image["RootDeviceName"],
                    "Ebs": {"Encrypted": True, "VolumeType": "gp3", "DeleteOnTermination": True},
                }
            ],
        },
    )
    (instance,) = ec2.run_instances(
        MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "encrypted"}
    )["Instances"]
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    assert [
        (v["Attachments"][0]["Device"], v["Encrypted"], v["VolumeType"], v["Size"] > 0)
        for v in volumes
    ] == [(image["RootDeviceName"], True, "gp3", True)]


def test_group_launches_from_a_new_template_version(endpoint: str) -> None:
    template_id = create_group(endpoint, capacity=1)
    version = new_template_version(endpoint, template_id, "#cloud-config\n# v2\n")
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
    )

    autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)

    instances = group_instances(endpoint)
    assert sorted(i["LaunchTemplate"]["Version"] for i in instances) == ["1", "2"]


def test_rule_referencing_a_group_keeps_its_description(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    alb = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc_id)["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc_id)["GroupId"]

    ec2.authorize_security_group_ingress(
        GroupId=app,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "UserIdGroupPairs": [{"GroupId": alb, "Description": "App port from the ALB"}],
            }
        ],
    )

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [app]}])
    ingress = [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]]
    assert [(r["ReferencedGroupInfo"]["GroupId"], r["Description"]) for r in ingress] == [
        (alb, "App port from the ALB")
    ]


# --- ELBv2 ----------------------------------------------------------------------------------


def test_load_balancer_without_scheme_is_internet_facing(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = client(endpoint, "elbv2")

    # As Terraform creates an internet-facing ALB: no Scheme parameter.
    public = elbv2.create_load_balancer(Name="public", Subnets=subnets, Type="application")
    elbv2.create_load_balancer(
        Name="private", Subnets=subnets, Type="application", Scheme="internal"
    )

    assert public["LoadBalancers"][0]["Scheme"] == "internet-facing"
    described = elbv2.describe_load_balancers(Names=["public", "private"])["LoadBalancers"]
    assert {lb["LoadBalancerName"]: lb["Scheme"] for lb in described} == {
        "public": "internet-facing",
        "private": "internal",
    }


def test_load_balancer_dns_names_are_elbs_and_never_repeat(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = client(endpoint, "elbv2")

    def create(scheme: str) -> str:
        created = elbv2.create_load_balancer(
            Name="web", Subnets=subnets, Type="application", Scheme=scheme
        )["LoadBalancers"][0]
        described = elbv2.describe_load_balancers(Names=["web"])["LoadBalancers"][0]
        assert described["DNSName"] == created["DNSName"]
        elbv2.delete_load_balancer(LoadBalancerArn=created["LoadBalancerArn"])
        return str(created["DNSName"])

    first, again, internal = (
        create("internet-facing"),
        create("internet-facing"),
        create("internal"),
    )
    assert re.fullmatch(rf"web-\d{{10}}\.{REGION}\.elb\.amazonaws\.com", first), first
    assert again != first  # a re-created balancer (or another region's) is another name
    assert re.fullmatch(rf"internal-web-\d{{10}}\.{REGION}\.elb\.amazonaws\.com", internal)


def test_repeated_creates_answer_with_what_exists_and_other_settings_clash(
    endpoint: str,
) -> None:
    # As an SDK retries a create whose answer a daemon kill cut off: the same call again.
    ec2, elbv2 = client(endpoint, "ec2"), client(endpoint, "elbv2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]

    def balancer(**settings: Any) -> str:
        created = elbv2.create_load_balancer(Name="web", Subnets=subnets, **settings)
        return str(created["LoadBalancers"][0]["LoadBalancerArn"])

    def target_group(port: int) -> str:
        created = elbv2.create_target_group(Name="web-tg", Protocol="HTTP", Port=port, VpcId=vpc_id)
        return str(created["TargetGroups"][0]["TargetGroupArn"])

    balancer_arn = balancer()
    assert balancer(Tags=[{"Key": "retried", "Value": "yes"}]) == balancer_arn
    assert len(elbv2.describe_load_balancers(Names=["web"])["LoadBalancers"]) == 1
    with pytest.raises(ClientError, match="DuplicateLoadBalancerName"):
        balancer(Scheme="internal")

    target_group_arn = target_group(8080)
    assert target_group(8080) == target_group_arn
    with pytest.raises(ClientError, match="DuplicateTargetGroupName"):
        target_group(9090)

    def listener(status: str) -> str:
        return str(
            elbv2.create_listener(
                LoadBalancerArn=balancer_arn,
                Protocol="HTTP",
                Port=80,
                DefaultActions=[
                    {"Type": "forward", "TargetGroupArn": target_group_arn}
                    if status == "forward"
                    else {
                        "Type": "fixed-response",
                        "FixedResponseConfig": {"StatusCode": status},
                    }
                ],
            )["Listeners"][0]["ListenerArn"]
        )

    listener_arn = listener("forward")
    assert listener("forward") == listener_arn
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]
    assert [li["ListenerArn"] for li in listeners] == [listener_arn]
    with pytest.raises(ClientError, match="DuplicateListener"):
        listener("503")


def test_a_load_balancer_with_deletion_protection_is_not_deleted(endpoint: str) -> None:
    subnets = [s["SubnetId"] for s in client(endpoint, "ec2").describe_subnets()["Subnets"]][:2]
    elbv2 = client(endpoint, "elbv2")
    arn = elbv2.create_load_balancer(Name="kept", Subnets=subnets)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]

    def protect(enabled: str) -> None:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[{"Key": "deletion_protection.enabled", "Value": enabled}],
        )

    protect("true")
    with pytest.raises(ClientError, match=r"OperationNotPermitted.*deletion protection"):
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    assert elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
    protect("false")
    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []


# --- Auto Scaling: scaling policies ---------------------------------------------------------


def put_cpu_policy(endpoint: str, target: float) -> None:
    """A target tracking policy "cpu" on the group's average CPU, as Terraform writes one."""
    client(endpoint, "autoscaling").put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="cpu",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": target,
        },
    )


def test_target_tracking_policy_reads_back_as_written(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    put_cpu_policy(endpoint, target=60.0)
    autoscaling.put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="cpu-off",
        PolicyType="TargetTrackingScaling",
        Enabled=False,
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 80.0,
        },
    )

    policies = {
        p["PolicyName"]: p
        for p in autoscaling.describe_policies(AutoScalingGroupName="web")["ScalingPolicies"]
    }
    assert policies["cpu"]["Enabled"] is True  # AWS's default when Enabled is not given
    assert policies["cpu-off"]["Enabled"] is False
    assert "PredictiveScalingConfiguration" not in policies["cpu"]


def test_group_reports_its_capacity_reservation_preference(endpoint: str) -> None:
    create_group(endpoint, capacity=0)
    autoscaling = client(endpoint, "autoscaling")

    def preference() -> str:
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
        spec = group["AutoScalingGroups"][0]["CapacityReservationSpecification"]
        return str(spec["CapacityReservationPreference"])

    assert preference() == "default"  # what AWS reports for a group created without one
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web",
        CapacityReservationSpecification={"CapacityReservationPreference": "none"},
    )
    assert preference() == "none"


# --- Auto Scaling: instance refresh --------------------------------------------------------
# Here the refresh runs over moto's records only (no machines, no HAProxy: a registered running
# instance is a healthy target); tests/e2e/test_instance_refresh.py runs it over real machines.


def wait_for_refresh(
    endpoint: str, refresh_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """Poll DescribeInstanceRefreshes until `until` holds for the refresh; return it."""
    autoscaling = client(endpoint, "autoscaling")
    deadline = time.monotonic() + timeout
    while True:
        refresh: dict[str, Any] = autoscaling.describe_instance_refreshes(
            AutoScalingGroupName="web", InstanceRefreshIds=[refresh_id]
        )["InstanceRefreshes"][0]
        if until(refresh):
            return refresh
        assert time.monotonic() < deadline, f"refresh never got there: {refresh}"
        time.sleep(0.2)


def finished(refresh: dict[str, Any]) -> bool:
    return refresh["Status"] in refresh_status.ENDED


def roll_to_new_version(endpoint: str, template_id: str, **preferences: Any) -> tuple[str, str]:
    """What Terraform does on a new template version: update the group, start a refresh."""
    version = new_template_version(endpoint, template_id, "#cloud-config\n# v2\n")
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
    )
    refresh_id: str = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Strategy="Rolling", Preferences=preferences
    )["InstanceRefreshId"]
    return version, refresh_id


def test_instance_refresh_replaces_instances_with_the_new_version(endpoint: str) -> None:
    template_id, target_group_arn = group_with_target_group(endpoint)
    old_ids = {i["InstanceId"] for i in group_instances(endpoint)}

    version, refresh_id = roll_to_new_version(
        endpoint, template_id, MinHealthyPercentage=50, InstanceWarmup=0, AutoRollback=True
    )

    refresh = wait_for_refresh(endpoint, refresh_id, finished)
    assert (refresh["Status"], refresh["PercentageComplete"], refresh["InstancesToUpdate"]) == (
        "Successful",
        100,
        0,
    )
    assert refresh["Preferences"]["MinHealthyPercentage"] == 50
    assert refresh["StartTime"] <= refresh["EndTime"]
    instances = group_instances(endpoint)
    new_ids = {i["InstanceId"] for i in instances}
    assert len(instances) == 2
    assert not new_ids & old_ids
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {version}
    elbv2 = client(endpoint, "elbv2")
    targets = elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    assert {t["Target"]["Id"] for t in targets["TargetHealthDescriptions"]} == new_ids
    # Old instances are terminated once drained (deregistration delay 0 + the margin).
    deadline = time.monotonic() + 10
    while set(instance_states(endpoint, old_ids).values()) != {"terminated"}:
        assert time.monotonic() < deadline, instance_states(endpoint, old_ids)
        time.sleep(0.2)
    assert set(instance_states(endpoint, new_ids).values()) == {"running"}


def test_instance_refresh_skip_matching_keeps_current_instances(endpoint: str) -> None:
    create_group(endpoint, capacity=2)
    before = {i["InstanceId"] for i in group_instances(endpoint)}
    autoscaling = client(endpoint, "autoscaling")

    refresh_id = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"SkipMatching": True}
    )["InstanceRefreshId"]

    refresh = wait_for_refresh(endpoint, refresh_id, finished)
    assert refresh["Status"] == "Successful"
    assert {i["InstanceId"] for i in group_instances(endpoint)} == before


def test_cancel_without_an_active_refresh_is_the_aws_error(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    refresh_id = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"SkipMatching": True}
    )["InstanceRefreshId"]
    wait_for_refresh(endpoint, refresh_id, finished)

    with pytest.raises(ClientError) as raised:
        autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")

    assert raised.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"


def test_active_refresh_blocks_a_new_one_until_cancelled(endpoint: str) -> None:
    """The provider's path when a refresh is running: start fails, cancel, wait, start again."""
    template_id, _ = group_with_target_group(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    # A long warmup keeps the first batch, and so the refresh, in progress.
    _, first = roll_to_new_version(endpoint, template_id, InstanceWarmup=600)

    with pytest.raises(ClientError) as raised:
        autoscaling.start_instance_refresh(AutoScalingGroupName="web")
    assert raised.value.response["Error"]["Code"] == "InstanceRefreshInProgress"

    cancelled = autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")
    assert cancelled["InstanceRefreshId"] == first
    refresh = wait_for_refresh(endpoint, first, finished)
    assert refresh["Status"] == "Cancelled"
    second = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"SkipMatching": True, "InstanceWarmup": 0}
    )["InstanceRefreshId"]
    assert second != first
    assert wait_for_refresh(endpoint, second, finished)["Status"] == "Successful"


def test_checkpoint_pauses_the_refresh_after_its_percentage(endpoint: str) -> None:
    template_id, _ = group_with_target_group(endpoint)
    version, refresh_id = roll_to_new_version(
        endpoint,
        template_id,
        MinHealthyPercentage=50,
        InstanceWarmup=0,
        CheckpointPercentages=[50],
        CheckpointDelay=600,
    )

    refresh = wait_for_refresh(
        endpoint, refresh_id, lambda r: r["StatusReason"].startswith("Waiting for checkpoint")
    )

    assert (refresh["Status"], refresh["PercentageComplete"]) == ("InProgress", 50)
    versions = sorted(i["LaunchTemplate"]["Version"] for i in group_instances(endpoint))
    assert versions == sorted(["1", version])
    client(endpoint, "autoscaling").cancel_instance_refresh(AutoScalingGroupName="web")
    assert wait_for_refresh(endpoint, refresh_id, finished)["Status"] == "Cancelled"


def test_rollback_returns_the_group_to_the_previous_version(endpoint: str) -> None:
    template_id, _ = group_with_target_group(endpoint)
    autoscaling = client(endpoint, "autoscaling")
    # Half done, then held at a checkpoint: the rollback has a new instance to undo.
    _, refresh_id = roll_to_new_version(
        endpoint,
        template_id,
        MinHealthyPercentage=50,
        InstanceWarmup=0,
        CheckpointPercentages=[50],
        CheckpointDelay=600,
    )
    wait_for_refresh(endpoint, refresh_id, lambda r: r["PercentageComplete"] == 50)

    autoscaling.rollback_instance_refresh(AutoScalingGroupName="web")

    refresh = wait_for_refresh(endpoint, refresh_id, finished)
    assert refresh["Status"] == "RollbackSuccessful", refresh
    assert refresh["RollbackDetails"]["RollbackReason"].startswith("Rollback requested")
    assert {i["LaunchTemplate"]["Version"] for i in group_instances(endpoint)} == {"1"}
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["Version"] == "1"


def test_refresh_of_an_unknown_group_is_a_validation_error(endpoint: str) -> None:
    with pytest.raises(ClientError) as raised:
        client(endpoint, "autoscaling").start_instance_refresh(AutoScalingGroupName="nope")

    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "nope" in raised.value.response["Error"]["Message"]


def test_recreated_group_starts_without_the_old_refreshes(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.start_instance_refresh(AutoScalingGroupName="web")
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    client(endpoint, "ec2").delete_launch_template(LaunchTemplateName="web-lt")

    create_group(endpoint, capacity=1)

    assert (
        autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")["InstanceRefreshes"]
        == []
    )


# --- Unhandled errors ----------------------------------------------------------------------


def test_action_moto_lacks_fails_fast_and_is_not_retried(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = boto3.client(
        "autoscaling",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )

    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ClientError) as raised:
        autoscaling.get_predictive_scaling_forecast(
            AutoScalingGroupName="web", PolicyName="none", StartTime=now, EndTime=now
        )

    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["Error"]["Code"] == "NotImplemented"
    assert "autoscaling:GetPredictiveScalingForecast" in response["Error"]["Message"]


def failing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise ValueError("moto bug")


def call_middleware(headers: dict[str, str], body: bytes) -> tuple[str, dict[str, str], bytes]:
    """Run the middleware around an app that crashes; return status, headers and body."""
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **headers,
    }
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = status
        captured["headers"] = dict(response_headers)

    payload = b"".join(UnhandledErrorMiddleware(failing_app)(environ, start_response))
    return captured["status"], captured["headers"], payload


def test_crash_is_reported_in_the_query_protocol() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/elasticloadbalancing/aws4_request"
    status, headers, body = call_middleware(
        {"HTTP_AUTHORIZATION": auth, "CONTENT_TYPE": "application/x-www-form-urlencoded"},
        b"Action=DescribeLoadBalancers&Version=2015-12-01",
    )

    assert status.startswith("501")
    assert headers["Content-Type"] == "text/xml"
    assert b"<Code>LocalRegionInternalError</Code>" in body
    assert b"elasticloadbalancing:DescribeLoadBalancers: ValueError: moto bug" in body


def test_crash_is_reported_in_the_ec2_and_json_protocols() -> None:
    ec2_auth = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/ec2/aws4_request"
    _, _, ec2_body = call_middleware({"HTTP_AUTHORIZATION": ec2_auth}, b"Action=DescribeVpcs")
    assert ec2_body.startswith(b"<Response><Errors><Error><Code>LocalRegionInternalError")

    acm_auth = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/acm/aws4_request"
    _, headers, json_body = call_middleware(
        {
            "HTTP_AUTHORIZATION": acm_auth,
            "HTTP_X_AMZ_TARGET": "CertificateManager.ImportCertificate",
            "CONTENT_TYPE": "application/x-amz-json-1.1",
        },
        b"{}",
    )
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert b'"__type": "LocalRegionInternalError"' in json_body
    assert b"acm:ImportCertificate" in json_body


# --- Auto Scaling: target tracking ------------------------------------------------------------
# The decisions run over moto's records; the two metric sources (a machine's cgroup CPU time and
# HAProxy's response counters) need machines and HAProxy, so here they are counters the test
# drives, and tests/e2e/test_scaling.py runs the real ones under real load.


class Counters:
    """Stand-ins for HAProxy's response count and the machines' CPU time."""

    def __init__(self) -> None:
        self.requests = 0
        self.cpu_usec: dict[str, int] = {}

    def requests_served(self, target_group_arn: str) -> int:
        return self.requests

    def cpu_usage(self, instance_id: str) -> int | None:
        return self.cpu_usec.setdefault(instance_id, 0)


def put_request_policy(endpoint: str, target_group_arn: str, target: float) -> None:
    suffix = target_group_arn.split(":")[-1]
    client(endpoint, "autoscaling").put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="requests",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": f"app/web-alb/0123456789abcdef/{suffix}",
            },
            "TargetValue": target,
        },
    )


def last_minute_maxima(
    endpoint: str, namespace: str, metric: str, dimensions: list[dict[str, str]]
) -> list[float]:
    """The metric's one-minute Maximum datapoints of the last minute, from the region's
    CloudWatch."""
    now = dt.datetime.now(dt.UTC)
    datapoints = client(endpoint, "cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=now - dt.timedelta(minutes=1),
        EndTime=now + dt.timedelta(seconds=5),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return [float(d["Maximum"]) for d in datapoints]


def desired(endpoint: str) -> int:
    group = client(endpoint, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["web"]
    )["AutoScalingGroups"][0]
    return int(group["DesiredCapacity"])


def test_target_tracking_scales_out_on_requests_and_back_in(endpoint: str) -> None:
    from webfleet.localregion.autoscaling import scaling

    _, target_group_arn = group_with_target_group(endpoint, capacity=2)
    put_request_policy(endpoint, target_group_arn, target=1000)
    counters = Counters()
    engine = scaling.TargetTracking(counters, counters.cpu_usage, period=10.0)
    engine.tick()  # first readings: no rate yet

    # 600 responses in a 10 s period over 2 healthy targets: 1800 per target per minute,
    # so the policy wants ceil(2 * 1800 / 1000) = 4 instances (the group's max).
    for _ in range(scaling.SCALE_OUT_PERIODS):
        counters.requests += 600
        engine.tick()

    assert desired(endpoint) == 4
    activities = client(endpoint, "autoscaling").describe_scaling_activities(
        AutoScalingGroupName="web"
    )["Activities"]
    # Newest first: the policy's two launches, each saying why, then the group's first two.
    assert [a["Description"].split(": i-")[0] for a in activities] == [
        "Launching a new EC2 instance"
    ] * 4
    assert all("changing the desired capacity from 2 to 4" in a["Cause"] for a in activities[:2])
    assert "increasing the capacity from 3 to 4" in activities[0]["Cause"]
    assert not any("monitor alarm" in a["Cause"] for a in activities[2:])
    assert {a["StatusCode"] for a in activities} == {"Successful"}
    cloudwatch = client(endpoint, "cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB")
    assert [m["MetricName"] for m in metrics["Metrics"]] == ["RequestCountPerTarget"]
    # What `invoke load` shows.
    dimensions = metrics["Metrics"][0]["Dimensions"]
    assert last_minute_maxima(
        endpoint, "AWS/ApplicationELB", "RequestCountPerTarget", dimensions
    ) == [1800.0]

    # No traffic: once the scale-in periods have passed (and the cooldown), back to min.
    scaling_module_cooldown = scaling.SCALE_IN_COOLDOWN_SECONDS
    scaling.SCALE_IN_COOLDOWN_SECONDS = 0.0
    try:
        for _ in range(scaling.SCALE_IN_PERIODS - 1):
            engine.tick()
        assert desired(endpoint) == 4  # not yet: scale-in waits for a sustained low
        engine.tick()
    finally:
        scaling.SCALE_IN_COOLDOWN_SECONDS = scaling_module_cooldown
    assert desired(endpoint) == 2
    assert len(group_instances(endpoint)) == 2


def test_target_tracking_honours_max_and_a_single_spike_does_not_scale(endpoint: str) -> None:
    from webfleet.localregion.autoscaling import scaling

    _, target_group_arn = group_with_target_group(endpoint, capacity=2)
    put_request_policy(endpoint, target_group_arn, target=10)
    counters = Counters()
    engine = scaling.TargetTracking(counters, counters.cpu_usage, period=10.0)
    engine.tick()

    counters.requests += 10_000
    engine.tick()
    assert desired(endpoint) == 2  # one period above target is not an alarm

    engine.tick()  # back to nothing: the count of breaching periods starts over
    counters.requests += 10_000
    engine.tick()
    assert desired(endpoint) == 2
    counters.requests += 10_000
    engine.tick()
    assert desired(endpoint) == 4  # wants hundreds; max_size is 4


def test_cpu_is_measured_against_the_instance_types_vcpus(endpoint: str) -> None:
    from webfleet.localregion.autoscaling import scaling

    group_with_target_group(endpoint, capacity=2)
    put_cpu_policy(endpoint, target=40.0)
    counters = Counters()
    engine = scaling.TargetTracking(counters, counters.cpu_usage, period=10.0)
    engine.tick()  # first readings
    # Each t3.micro (2 vCPUs) burns one full core for the 10 s period: 50 %, whatever the host.
    for _ in range(scaling.SCALE_OUT_PERIODS):
        for instance_id in counters.cpu_usec:
            counters.cpu_usec[instance_id] += 10 * 1_000_000
        engine.tick()

    group = [{"Name": "AutoScalingGroupName", "Value": "web"}]
    assert last_minute_maxima(endpoint, "AWS/EC2", "CPUUtilization", group) == [50.0]
    assert desired(endpoint) == 3  # ceil(2 * 50 / 40)


def test_a_flow_log_goes_to_a_prefix_of_an_existing_bucket(endpoint: str) -> None:
    client(endpoint, "s3").create_bucket(
        Bucket="flow-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    ec2 = client(endpoint, "ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]

    def create(destination: str) -> dict[str, Any]:
        answer: dict[str, Any] = dict(
            ec2.create_flow_logs(
                ResourceType="VPC",
                ResourceIds=[vpc_id],
                TrafficType="ALL",
                LogDestinationType="s3",
                LogDestination=destination,
            )
        )
        return answer

    made = create("arn:aws:s3:::flow-logs/vpc-flow-logs/")
    assert made["Unsuccessful"] == []
    (flow_log,) = ec2.describe_flow_logs(FlowLogIds=made["FlowLogIds"])["FlowLogs"]
    assert flow_log["LogDestination"] == "arn:aws:s3:::flow-logs/vpc-flow-logs/"
    (refused,) = create("arn:aws:s3:::no-such-bucket/vpc-flow-logs/")["Unsuccessful"]
    assert "does not exist" in refused["Error"]["Message"]


def test_a_tls_only_bucket_policy_admits_the_regions_clients(endpoint: str) -> None:
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="tls-only", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="tls-only", Key="a.txt", Body=b"kept")
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*"}
    resources = ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"]

    def policy(*statements: dict[str, Any]) -> None:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps(document))

    policy({**deny, "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert s3.get_object(Bucket="tls-only", Key="a.txt")["Body"].read() == b"kept"
    # A Bool condition that holds still denies.
    policy({**deny, "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    with pytest.raises(ClientError, match=r"\(403\)"):
        s3.get_object(Bucket="tls-only", Key="a.txt")


def test_copy_image_encrypts_when_asked_and_keeps_the_root_device(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    # One whose root device is not moto's default for a new image (/dev/sda1).
    source = next(
        image for image in ec2.describe_images()["Images"] if image["RootDeviceName"] == "/dev/xvda"
    )
    plain = ec2.copy_image(SourceImageId=source["ImageId"], SourceRegion=REGION, Name="plain")
    (copied,) = ec2.describe_images(ImageIds=[plain["ImageId"]])["Images"]
    assert copied["RootDeviceName"] == source["RootDeviceName"]
    assert copied["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is False

    encrypted = ec2.copy_image(
        SourceImageId=plain["ImageId"], SourceRegion=REGION, Name="encrypted", Encrypted=True
    )
    (image,) = ec2.describe_images(ImageIds=[encrypted["ImageId"]])["Images"]
    ebs = image["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True
    (snapshot,) = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"]
    assert snapshot["Encrypted"] is True
    default_key = client(endpoint, "kms").describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert snapshot["KmsKeyId"] == default_key["Arn"]
    # A copy of an encrypted image stays encrypted, with its key.
    again = ec2.copy_image(SourceImageId=image["ImageId"], SourceRegion=REGION, Name="again")
    (kept,) = ec2.describe_images(ImageIds=[again["ImageId"]])["Images"]
    assert kept["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
