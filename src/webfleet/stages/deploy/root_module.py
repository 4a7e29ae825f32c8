"""The Terraform root module one environment is planned from: terraform/stack, linked per
environment, plus the import blocks of the resources deploy adopts.

Terraform reads every .tf file of its root module. Adoption needs a file of `import` blocks
(planned with everything else, so values a resource depends on may still be unknown, which the
`terraform import` command cannot handle); a directory per environment keeps those blocks out of
every other environment's plans. Links, not copies: the checkout's files stay the only ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from webfleet.stages.deploy.adopt import Adoption

ADOPTIONS_FILE = "webfleet_adoptions.tf"
LOCK_FILE = ".terraform.lock.hcl"


def link_root_module(stack_dir: Path, root: Path) -> Path:
    """root/stack: links to stack_dir's .tf files and root/modules to its sibling modules,
    so the stack's `../modules/...` sources resolve as in the checkout. Returns root/stack."""
    config = root / "stack"
    config.mkdir(parents=True, exist_ok=True)
    wanted = {path.name for path in stack_dir.glob("*.tf")}
    for existing in config.iterdir():
        if existing.is_symlink() and existing.name not in wanted:
            existing.unlink()  # a file the stack no longer has
    for name in wanted:
        _link(config / name, stack_dir / name)
    _link(root / "modules", stack_dir.parent / "modules")
    # Terraform may rewrite the lock file at init: a copy keeps the checkout's untouched.
    lock = stack_dir / LOCK_FILE
    if lock.is_file() and not (config / LOCK_FILE).is_file():
        shutil.copyfile(lock, config / LOCK_FILE)
    return config


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and link.readlink() == target:
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def write_adoptions(config: Path, adoptions: Sequence[Adoption]) -> None:
    """Import blocks for the adoptions (JSON strings are valid HCL strings)."""
    blocks = [
        f"import {{\n  to = {a.address}\n  id = {json.dumps(a.import_id)}\n}}\n" for a in adoptions
    ]
    (config / ADOPTIONS_FILE).write_text(
        "# Written by webfleet deploy while it adopts resources; removed once applied.\n\n"
        + "\n".join(blocks)
    )


def remove_adoptions(config: Path) -> None:
    (config / ADOPTIONS_FILE).unlink(missing_ok=True)
