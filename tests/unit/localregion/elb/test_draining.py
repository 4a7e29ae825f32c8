"""How long a deregistered target drains (LoadBalancerRuntime's drain tracking, no HAProxy
started): for its group's deregistration delay while a balancer forwards to the group, and not
a moment longer once none does (a DetachTrafficSources waits for its drains to end)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.unit.localregion.elb.test_haproxy_config import WEB
from webfleet.localregion.elb.haproxy_config import TargetGroup
from webfleet.localregion.elb.load_balancers import LoadBalancerRuntime
from webfleet.localregion.elb.snapshot import BalancerRecord

# Two targets; the test follows the first.
GROUP = WEB
INSTANCE = WEB.targets[0].instance_id


def balancer(group: TargetGroup) -> BalancerRecord:
    return BalancerRecord(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789",
        "web",
        "web-1.us-east-1.elb.localhost",
        (),
        (group,),
        60,
    )


def runtime(tmp_path: Path) -> LoadBalancerRuntime:
    return LoadBalancerRuntime(tmp_path / "region", hosts_file=tmp_path / "hosts")


def state(lbs: LoadBalancerRuntime) -> str:
    return lbs.target_health(GROUP.arn, INSTANCE).state


def test_a_deregistered_target_drains_while_a_balancer_forwards_to_its_group(
    tmp_path: Path,
) -> None:
    lbs = runtime(tmp_path)
    lbs._track_draining([balancer(GROUP)])
    assert state(lbs) != "draining"
    lbs._track_draining([balancer(replace(GROUP, targets=()))])
    assert state(lbs) == "draining"
    lbs._track_draining([balancer(replace(GROUP, targets=()))])
    assert state(lbs) == "draining"  # 300 s have not passed


def test_a_drain_ends_after_the_deregistration_delay(tmp_path: Path) -> None:
    lbs = runtime(tmp_path)
    quick = replace(GROUP, deregistration_delay_seconds=0)
    lbs._track_draining([balancer(quick)])
    lbs._track_draining([balancer(replace(quick, targets=()))])
    lbs._track_draining([balancer(replace(quick, targets=()))])
    assert state(lbs) != "draining"


def test_a_drain_ends_at_once_when_no_balancer_forwards_to_the_group_any_more(
    tmp_path: Path,
) -> None:
    # terraform destroy deletes the listener beside the group's attachment: the drain the
    # detach started must not outlive it (it did: DescribeTrafficSources said Removing forever).
    lbs = runtime(tmp_path)
    lbs._track_draining([balancer(GROUP)])
    lbs._track_draining([balancer(replace(GROUP, targets=()))])
    assert state(lbs) == "draining"
    lbs._track_draining([])
    assert state(lbs) != "draining"
    assert not lbs._draining


def test_a_target_registered_again_stops_draining(tmp_path: Path) -> None:
    lbs = runtime(tmp_path)
    lbs._track_draining([balancer(GROUP)])
    lbs._track_draining([balancer(replace(GROUP, targets=()))])
    lbs._track_draining([balancer(GROUP)])
    assert state(lbs) != "draining"
