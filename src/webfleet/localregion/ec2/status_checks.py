"""EC2's status checks in the local region: a running instance whose machine died under it.

On AWS an instance whose host fails keeps the state `running` and its status checks turn
`impaired` (DescribeInstanceStatus); EC2 Auto Scaling's EC2 health check counts that as
unhealthy and replaces it. Here the same happens to an instance whose systemd-nspawn process
exited without EC2 asking (killed, crashed, halted from inside) or whose network interface (the
host end of its veth) went away. An impaired instance stays impaired until it is stopped or
terminated, as a failed host does not come back by itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from webfleet.localregion.api.patches import moto_patch
from webfleet.localregion.ec2.machine_records import Machine, MachineState
from webfleet.localregion.ec2.network import instance_link, link_exists

log = logging.getLogger(__name__)

STATUS_CHECK_SECONDS = 2.0
# Set on moto's Instance record: (what failed, since when).
IMPAIRED_ATTRIBUTE = "webfleet_impaired"


def impairment(record: Any) -> str | None:
    """Why the instance's status checks fail, or None while they pass."""
    found = getattr(record, IMPAIRED_ATTRIBUTE, None)
    return str(found[0]) if found else None


class MachineLister(Protocol):
    """What the checks read of the machine runtime (ec2/machines.py's MachineRuntime)."""

    def list(self) -> list[Machine]: ...


def check_machines(
    runtime: MachineLister, state_dir: Path, running: Callable[[], Iterable[Any]]
) -> None:
    """One pass over the running instances (moto's records) that have machines."""
    machines = {m.instance_id: m for m in runtime.list()}
    for record in running():
        if impairment(record) is not None or record.state != "running":
            continue
        machine = machines.get(record.id)
        if machine is None:
            continue
        if machine.pid is None or machine.state is not MachineState.RUNNING:
            problem = "its machine's process exited"
        elif not link_exists(instance_link(state_dir, record.id)):
            problem = "its network interface is gone"
        else:
            continue
        log.warning("%s is impaired: %s", record.id, problem)
        setattr(record, IMPAIRED_ATTRIBUTE, (problem, dt.datetime.now(dt.UTC)))


def clear(record: Any) -> None:
    """A stopped or started instance is on a new host: its old impairment is gone."""
    if hasattr(record, IMPAIRED_ATTRIBUTE):
        delattr(record, IMPAIRED_ATTRIBUTE)


@moto_patch("ec2.status_checks")
def report_impaired_instances() -> None:
    """DescribeInstanceStatus says `impaired` for an impaired instance (moto: always `ok`)."""
    from moto.ec2.models.instances import Instance

    original_instance, original_system = Instance.instance_status, Instance.system_status

    def status(original: Any) -> property:
        def read(self: Instance) -> dict[str, Any]:
            found = getattr(self, IMPAIRED_ATTRIBUTE, None)
            if not found or self.state_code != 16:
                return dict(original.fget(self))
            return {
                "Status": "impaired",
                "Details": [
                    {"Name": "reachability", "Status": "failed", "ImpairedSince": found[1]}
                ],
            }

        return property(read)

    Instance.instance_status = status(original_instance)  # type: ignore[assignment,method-assign]
    Instance.system_status = status(original_system)  # type: ignore[assignment,method-assign]
