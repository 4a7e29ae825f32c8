"""webfleet's tasks: `webfleet --list` (or `invoke --list` in the checkout) shows them,
`webfleet --help TASK` explains one.

Each task is a thin shell over webfleet.cli.commands; the work lives in the webfleet package.
"""

from collections.abc import Callable
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from webfleet.cli import commands, crash_report, init_command
from webfleet.stages.load import LoadPlan

STACK_HELP = {
    "stack": "stack file (default: webfleet.toml)",
    "env": "environment from the stack file (default: local, the local region)",
    "json": "machine-readable output on stdout",
}


def _run(command: Callable[..., None], *args: Any) -> None:
    try:
        command(*args)
    except commands.CommandFailed:
        raise Exit(code=1) from None
    except Exception as error:  # a bug, or a failure no stage explains: one line, not a trace
        task_name = command.__name__.replace("_", "-")
        log = crash_report.write_crash_log(task_name, error)
        if crash_report.debugging():
            commands.errors.print_exception()
        commands.errors.print(
            f"[bold red]error:[/] {crash_report.crash_message(task_name, error, log)}",
            highlight=False,
        )
        raise Exit(code=1) from None


# Long options only: -h would be --health-check-path's, where users expect help.
@task(
    auto_shortflags=False,
    help={
        "stack": "the stack file to write (default: webfleet.toml); never overwritten",
        "runtime": "python, node, static or binary (default: detected from the directory)",
        "name": "app.name (default: the directory's name, made lowercase [a-z][a-z0-9-], "
        "at most 20)",
        "port": "app.port (default: the framework's usual port, or the one the app falls back to)",
        "health-check-path": "app.health_check_path (default: a health-like route the app "
        "declares, else /healthz; / for static)",
    },
)
def init(
    c: Context,
    stack: str | None = None,
    runtime: str | None = None,
    name: str | None = None,
    port: str | None = None,
    health_check_path: str | None = None,
) -> None:
    """Write a commented stack file for the app in this directory; never replaces a file.

    Detects the runtime (pyproject.toml or requirements.txt: python, package.json: node,
    index.html: static) and proposes app.start, app.port and app.health_check_path.
    """
    _run(init_command.init, stack, runtime, name, port, health_check_path)


@task(help=STACK_HELP)
def render(
    c: Context, stack: str | None = None, env: str | None = None, json: bool = False
) -> None:
    """Render user data, the app env file and the systemd unit under .webfleet/<env>/rendered/."""
    _run(commands.render, stack, env, json)


@task(help=STACK_HELP)
def bake(c: Context, stack: str | None = None, env: str | None = None, json: bool = False) -> None:
    """Bake the app AMI with Packer; print its id, name and tags (manifest in .webfleet/<env>/)."""
    _run(commands.bake, stack, env, json)


@task(
    help={
        **STACK_HELP,
        "wait": "follow the instance refresh a new launch template version starts (default: on)",
    }
)
def deploy(
    c: Context,
    stack: str | None = None,
    env: str | None = None,
    json: bool = False,
    wait: bool = True,
) -> None:
    """Apply network, ALB, target group, ASG and scaling with Terraform; print the ALB DNS name.

    A new AMI or user data rolls through the fleet as an instance refresh: deploy follows it
    and fails if it fails or rolls back (--no-wait: return once Terraform is done).
    """
    _run(commands.deploy, stack, env, json, wait)


VERIFY_HELP = {
    **STACK_HELP,
    "failover": "also stop the app on one instance and time its replacement (takes minutes)",
}


@task(help=VERIFY_HELP)
def verify(
    c: Context,
    stack: str | None = None,
    env: str | None = None,
    json: bool = False,
    failover: bool = False,
) -> None:
    """Check the deployed stack: instance specs over SSH, HTTP through the ALB; JUnit XML."""
    _run(commands.verify, stack, env, json, failover)


@task(help={**VERIFY_HELP, "failover": "fail one instance over during verify (default: on)"})
def pipeline(
    c: Context,
    stack: str | None = None,
    env: str | None = None,
    json: bool = False,
    failover: bool = True,
) -> None:
    """bake → deploy → verify (with failover unless --no-failover); a pass/fail table.

    A rolling deploy (instance refresh) runs under a request stream through the ALB: any failed
    request, or a refresh that fails or rolls back, fails the pipeline.
    """
    _run(commands.pipeline, stack, env, json, failover)


@task(
    help={
        **STACK_HELP,
        "rps": "requests per second (1-500; 0 with --cpu for CPU only)",
        "cpu": "also burn this many CPUs on every InService instance for the duration, over "
        "SSH, as `stress --cpu N` does (default 0)",
        "duration": "seconds of load (up to 1800)",
        "settle": "after the load, watch up to this many seconds for the group to shrink to its "
        "minimum (default 0: stop with the load)",
        "path": "request path (default /)",
    }
)
def load(
    c: Context,
    stack: str | None = None,
    env: str | None = None,
    json: bool = False,
    rps: int = 50,
    duration: int = 60,
    settle: int = 0,
    path: str = "/",
    cpu: int = 0,
) -> None:
    """Drive a bounded request load at the local ALB (and/or burn CPU on the instances); show
    desired/InService capacity and metrics.

    With the stack's target tracking policies the group scales out under the load (up to max)
    and back in afterwards (down to min): --settle watches that happen.
    """
    plan = LoadPlan(int(rps), float(duration), float(settle), path, int(cpu))
    _run(commands.load, stack, env, json, plan)


@task(help=STACK_HELP)
def destroy(
    c: Context, stack: str | None = None, env: str | None = None, json: bool = False
) -> None:
    """Destroy every resource the stack deployed in the environment."""
    _run(commands.destroy, stack, env, json)


@task(name="up", help=STACK_HELP)
def local_up(
    c: Context, stack: str | None = None, env: str | None = None, json: bool = False
) -> None:
    """Start the local region (an AWS API on loopback); does nothing if it already runs."""
    _run(commands.local_up, stack, env, json)


@task(name="down", help=STACK_HELP)
def local_down(
    c: Context, stack: str | None = None, env: str | None = None, json: bool = False
) -> None:
    """Stop the local region and remove every process and piece of state it made."""
    _run(commands.local_down, stack, env, json)


@task(name="status", help=STACK_HELP)
def local_status(
    c: Context, stack: str | None = None, env: str | None = None, json: bool = False
) -> None:
    """Say whether the local region runs, where, and since when."""
    _run(commands.local_status, stack, env, json)


namespace = Collection(init, render, bake, deploy, verify, pipeline, load, destroy)
namespace.add_collection(Collection("local", local_up, local_down, local_status))
