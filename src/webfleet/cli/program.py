"""The `webfleet` command: webfleet's Invoke tasks as a program of their own, run from any
directory (the stack file defaults to ./webfleet.toml, as with `invoke` in the checkout)."""

from __future__ import annotations

from importlib.metadata import version

from invoke.program import Program

from webfleet.cli.tasks import namespace

program = Program(
    namespace=namespace, name="webfleet", binary="webfleet", version=version("webfleet")
)


def main() -> None:
    program.run()
