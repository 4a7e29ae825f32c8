"""The checkout's Invoke tasks (`.venv/bin/invoke --list`): webfleet's own, the same that the
`webfleet` command runs from any directory."""

from webfleet.cli.tasks import namespace

__all__ = ["namespace"]
