"""What `webfleet init` shows its user: the stack file it wrote, what it proposes and why, and
what to check before the first bake."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from webfleet.cli.commands import CommandFailed, console, errors
from webfleet.config import DEFAULT_STACK_FILE
from webfleet.errors import WebfleetError
from webfleet.paths import ProjectPaths
from webfleet.scaffold.create import Created, InitOptions, create_stack_file


def init(
    stack_file: str | None,
    runtime: str | None,
    name: str | None,
    port: str | None,
    health_check_path: str | None,
) -> None:
    options = InitOptions(runtime, name, port, health_check_path)
    target = Path(stack_file) if stack_file else DEFAULT_STACK_FILE
    try:
        created = create_stack_file(Path.cwd(), target, options, ProjectPaths.of_checkout().root)
    except WebfleetError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        raise CommandFailed(str(error)) from None
    _show(created, target)


def _show(created: Created, shown_path: Path) -> None:
    proposal = created.draft.proposal
    app = created.stack.app
    console.print(
        f"wrote [bold]{escape(str(shown_path))}[/] for a {escape(proposal.detected)} app "
        f"(runtime {app.runtime}); it validates.",
        highlight=False,
    )
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    renamed = f" (from the directory name {created.renamed_from!r})" if created.renamed_from else ""
    table.add_row("app.name", escape(app.name + renamed))
    table.add_row("app.source", escape(app.source))
    if app.start is not None:
        table.add_row("app.start", escape(app.start))
    if app.runtime == "static":
        table.add_row("app.document_root", escape(app.document_root))
    table.add_row("app.port", str(app.port))
    table.add_row("app.health_check_path", escape(app.health_check_path))
    console.print(table, highlight=False)
    for note in sorted(proposal.notes, key=lambda note: not note.warning):
        label = "[bold yellow]check:[/]" if note.warning else "[dim]note:[/] "
        about = "" if note.about == "app" else f"app.{note.about}: "
        console.print(f"{label} {escape(about + note.text)}", highlight=False)
    console.print(
        "next: read the file (lines marked CHECK first), then `webfleet render` to see what it "
        "produces and `webfleet pipeline` to bake, deploy and verify it in the local region.",
        highlight=False,
    )
