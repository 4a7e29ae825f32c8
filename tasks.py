"""webfleet's tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

Each task is a thin shell over webfleet.commands; the work lives in the webfleet package.
"""

from invoke import Collection, Exit, task

from webfleet import commands

STACK_HELP = {
    "stack": "stack file (default: webfleet.toml)",
    "env": "environment from the stack file (default: local, the local region)",
    "json": "machine-readable output on stdout",
}


def _run(command, *args):
    try:
        command(*args)
    except commands.CommandFailed:
        raise Exit(code=1) from None


@task(help=STACK_HELP)
def render(c, stack=None, env=None, json=False):
    """Render user data, the app env file and the systemd unit under build/<env>/rendered/."""
    _run(commands.render, stack, env, json)


@task(help=STACK_HELP)
def bake(c, stack=None, env=None, json=False):
    """Bake the app AMI with Packer; print its id, name and tags (manifest in build/<env>/)."""
    _run(commands.bake, stack, env, json)


@task(help=STACK_HELP)
def deploy(c, stack=None, env=None, json=False):
    """Apply network, ALB, target group, ASG and scaling with Terraform; print the ALB DNS name."""
    _run(commands.deploy, stack, env, json)


VERIFY_HELP = {
    **STACK_HELP,
    "failover": "also stop the app on one instance and time its replacement (takes minutes)",
}


@task(help=VERIFY_HELP)
def verify(c, stack=None, env=None, json=False, failover=False):
    """Check the deployed stack: instance specs over SSH, HTTP through the ALB; JUnit XML."""
    _run(commands.verify, stack, env, json, failover)


@task(help={**VERIFY_HELP, "failover": "fail one instance over during verify (default: on)"})
def pipeline(c, stack=None, env=None, json=False, failover=True):
    """bake → deploy → verify (with failover unless --no-failover); a pass/fail table."""
    _run(commands.pipeline, stack, env, json, failover)


@task(help=STACK_HELP)
def destroy(c, stack=None, env=None, json=False):
    """Destroy every resource the stack deployed in the environment."""
    _run(commands.destroy, stack, env, json)


@task(name="up", help=STACK_HELP)
def local_up(c, stack=None, env=None, json=False):
    """Start the local region (an AWS API on loopback); does nothing if it already runs."""
    _run(commands.local_up, stack, env, json)


@task(name="down", help=STACK_HELP)
def local_down(c, stack=None, env=None, json=False):
    """Stop the local region and remove every process and piece of state it made."""
    _run(commands.local_down, stack, env, json)


@task(name="status", help=STACK_HELP)
def local_status(c, stack=None, env=None, json=False):
    """Say whether the local region runs, where, and since when."""
    _run(commands.local_status, stack, env, json)


namespace = Collection(render, bake, deploy, verify, pipeline, destroy)
namespace.add_collection(Collection("local", local_up, local_down, local_status))
