"""The local region API's fixes to moto, tested through boto3 against the real served app."""

from __future__ import annotations

import base64
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import BaseWSGIServer, make_server

from webfleet.localregion.api import create_api_app
from webfleet.localregion.api_fixes import UnhandledErrorMiddleware, instance_refreshes

REGION = "eu-west-1"
DEBIAN_OWNER = "136693071363"
DEBIAN_NAME = "debian-12-amd64-20250520-2118"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The API app served on an ephemeral loopback port for the module's tests."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, create_api_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture(autouse=True)
def fresh_region(endpoint: str) -> None:
    """Every test starts from empty backends (moto's state is process-wide)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def client(endpoint: str, service: str, region: str = REGION) -> Any:
    # boto3-stubs types clients per literal service name; this helper takes any name.
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a test sees exactly what the server answered, and retries would hide it.
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def create_group(
    endpoint: str,
    *,
    name: str = "web",
    capacity: int = 2,
    user_data: str = "#cloud-config\n",
    target_group_arn: str | None = None,
) -> str:
    """A launch template (version 1) and a group running `capacity` instances of it."""
    ec2 = client(endpoint, "ec2")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id: str = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "UserData": base64.b64encode(user_data.encode()).decode(),
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    arguments: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "1"},
        "MinSize": capacity,
        "MaxSize": capacity + 2,
        "DesiredCapacity": capacity,
        "AvailabilityZones": [f"{REGION}a"],
    }
    if target_group_arn:
        arguments["TargetGroupARNs"] = [target_group_arn]
    client(endpoint, "autoscaling").create_auto_scaling_group(**arguments)
    return template_id


def new_template_version(endpoint: str, template_id: str, user_data: str) -> str:
    """A new version with other user data, made the group's (as Terraform does), returned."""
    version = client(endpoint, "ec2").create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion="1",
        LaunchTemplateData={"UserData": base64.b64encode(user_data.encode()).decode()},
    )["LaunchTemplateVersion"]["VersionNumber"]
    return str(version)


def group_instances(endpoint: str, name: str = "web") -> list[dict[str, Any]]:
    groups = client(endpoint, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name]
    )["AutoScalingGroups"]
    instances: list[dict[str, Any]] = groups[0]["Instances"]
    return instances


# --- EC2 -----------------------------------------------------------------------------------


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


# --- Auto Scaling: scaling policies ---------------------------------------------------------


def test_target_tracking_policy_reads_back_as_written(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="cpu",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 60.0,
        },
    )
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


def test_instance_refresh_replaces_instances_with_the_new_version(endpoint: str) -> None:
    elbv2 = client(endpoint, "elbv2")
    ec2 = client(endpoint, "ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    target_group_arn = elbv2.create_target_group(
        Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    template_id = create_group(endpoint, capacity=2, target_group_arn=target_group_arn)
    old_ids = {i["InstanceId"] for i in group_instances(endpoint)}
    version = new_template_version(endpoint, template_id, "#cloud-config\n# v2\n")
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
    )

    # What Terraform sends when a new launch template version is applied.
    refresh_id = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web",
        Strategy="Rolling",
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 30, "AutoRollback": True},
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": version}
        },
    )["InstanceRefreshId"]

    refreshes = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="web", InstanceRefreshIds=[refresh_id]
    )["InstanceRefreshes"]
    assert len(refreshes) == 1
    refresh = refreshes[0]
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
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=sorted(old_ids | new_ids))["Reservations"]
        for i in r["Instances"]
    }
    assert {states[i] for i in old_ids} == {"terminated"}
    assert {states[i] for i in new_ids} == {"running"}
    targets = elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    assert {t["Target"]["Id"] for t in targets["TargetHealthDescriptions"]} == new_ids


def test_instance_refresh_skip_matching_keeps_current_instances(endpoint: str) -> None:
    create_group(endpoint, capacity=2)
    before = {i["InstanceId"] for i in group_instances(endpoint)}
    autoscaling = client(endpoint, "autoscaling")

    refresh_id = autoscaling.start_instance_refresh(
        AutoScalingGroupName="web", Preferences={"SkipMatching": True}
    )["InstanceRefreshId"]

    refresh = autoscaling.describe_instance_refreshes(AutoScalingGroupName="web")[
        "InstanceRefreshes"
    ][0]
    assert (refresh["InstanceRefreshId"], refresh["Status"]) == (refresh_id, "Successful")
    assert {i["InstanceId"] for i in group_instances(endpoint)} == before


def test_cancel_without_an_active_refresh_is_the_aws_error(endpoint: str) -> None:
    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    autoscaling.start_instance_refresh(AutoScalingGroupName="web")

    with pytest.raises(ClientError) as raised:
        autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")

    assert raised.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"


def test_active_refresh_blocks_a_new_one_until_cancelled(endpoint: str) -> None:
    """The provider's path when a refresh is running: start fails, cancel, wait, start again."""
    from moto.autoscaling.models import autoscaling_backends

    create_group(endpoint, capacity=1)
    autoscaling = client(endpoint, "autoscaling")
    first = autoscaling.start_instance_refresh(AutoScalingGroupName="web")["InstanceRefreshId"]
    # Stand-in for a rolling refresh still under way (this one completed at once).
    backend = autoscaling_backends["123456789012"][REGION]
    for runs in instance_refreshes(backend).values():
        runs[0].status = "InProgress"

    with pytest.raises(ClientError) as raised:
        autoscaling.start_instance_refresh(AutoScalingGroupName="web")
    assert raised.value.response["Error"]["Code"] == "InstanceRefreshInProgress"

    cancelled = autoscaling.cancel_instance_refresh(AutoScalingGroupName="web")
    assert cancelled["InstanceRefreshId"] == first
    status = autoscaling.describe_instance_refreshes(
        AutoScalingGroupName="web", InstanceRefreshIds=[first]
    )["InstanceRefreshes"][0]["Status"]
    assert status == "Cancelled"
    second = autoscaling.start_instance_refresh(AutoScalingGroupName="web")["InstanceRefreshId"]
    assert second != first


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

    with pytest.raises(ClientError) as raised:
        autoscaling.rollback_instance_refresh(AutoScalingGroupName="web")

    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["Error"]["Code"] == "NotImplemented"
    assert "autoscaling:RollbackInstanceRefresh" in response["Error"]["Message"]


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
