"""Requests per second through a local ALB (HAProxy) vs straight to one instance, same run.

Bakes the app, boots 2 instances of it behind an ALB (the API calls Terraform makes), then for
each target runs C concurrent keep-alive clients for D seconds against /healthz and prints the
rates and their ratio (the ALB spreads over 2 instances, so > 1 means it adds less than it gains).

Run on demand: .venv/bin/python bench/load_balancer.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from typing import Any

from sandbox import local_region, quiet

from webfleet.stages.bake import bake
from webfleet.stages.render import render
from webfleet.targets import cloud_target

READY_SECONDS = 180.0


def requests_per_second(host: str, port: int, seconds: float, clients: int) -> tuple[float, int]:
    """(successful requests per second, failed requests) for `clients` keep-alive clients."""
    counts = [0] * clients
    failures = [0] * clients
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=5)
        while time.monotonic() < deadline:
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    counts[index] += 1
                else:
                    failures[index] += 1
            except (OSError, http.client.HTTPException):
                failures[index] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(failures)


def wait_healthy(elbv2: Any, group_arn: str, count: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        states = [
            d["TargetHealth"]["State"]
            for d in elbv2.describe_target_health(TargetGroupArn=group_arn)[
                "TargetHealthDescriptions"
            ]
        ]
        if states.count("healthy") == count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"targets not healthy after {READY_SECONDS:.0f} s: {states}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with local_region() as (stack, paths, _settings):
        ami_id = bake(stack, paths, quiet()).ami_id
        target = cloud_target(stack)
        ec2, elbv2 = target.ec2(), target.elbv2()
        user_data = render(stack, paths).user_data.read_text()
        instances = ec2.run_instances(ImageId=ami_id, MinCount=2, MaxCount=2, UserData=user_data)[
            "Instances"
        ]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["DefaultForAz"]]
        vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0][
            "VpcId"
        ]
        group_arn = elbv2.create_target_group(
            Name="bench",
            Protocol="HTTP",
            Port=stack.app.port,
            VpcId=vpc_id,
            HealthCheckPath=stack.app.health_check_path,
            HealthCheckIntervalSeconds=5,
            HealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        alb = elbv2.create_load_balancer(Name="bench", Subnets=subnets[:2])["LoadBalancers"][0]
        elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
        )
        elbv2.register_targets(
            TargetGroupArn=group_arn, Targets=[{"Id": i["InstanceId"]} for i in instances]
        )
        wait_healthy(elbv2, group_arn, 2)
        direct, direct_failed = requests_per_second(
            instances[0]["PrivateIpAddress"], stack.app.port, args.seconds, args.clients
        )
        through, through_failed = requests_per_second(
            alb["DNSName"], 80, args.seconds, args.clients
        )
    print(f"\n{args.clients} keep-alive clients, {args.seconds:.0f} s each, GET /healthz:")
    print(f"  one instance directly   {direct:8.0f} req/s ({direct_failed} failed)")
    print(f"  through the ALB (2)     {through:8.0f} req/s ({through_failed} failed)")
    print(f"  ratio ALB / direct      {through / direct:8.2f}")


if __name__ == "__main__":
    main()
