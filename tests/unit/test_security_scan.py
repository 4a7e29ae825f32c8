"""The security baseline (scripts/security-scan, checkov): the repository passes it, and a new
finding fails it (every exception is a `#checkov:skip` with its reason, in the resource)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SCAN = ROOT / "scripts" / "security-scan"


def scan(*directories: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCAN, *map(str, directories)], capture_output=True, text=True, check=False, timeout=600
    )


def test_the_modules_and_workflows_pass() -> None:
    result = scan()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_finding_fails_the_scan(tmp_path: Path) -> None:
    terraform = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", terraform, ignore=shutil.ignore_patterns(".terraform*"))
    with (terraform / "modules" / "network" / "main.tf").open("a") as main:
        main.write(
            '\nresource "aws_security_group" "open" {\n'
            "  vpc_id = aws_vpc.this.id\n"
            '  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = "tcp"\n'
            '    cidr_blocks = ["0.0.0.0/0"]\n  }\n}\n'
        )
    result = scan(terraform, ROOT / ".github" / "workflows")
    assert result.returncode != 0
    assert "CKV_AWS_24" in result.stdout, result.stdout  # SSH open to the world
