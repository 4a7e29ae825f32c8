"""Context for the instance specs: what the stack says the instance should look like.

`webfleet.stages.verify.specs` writes it as JSON and names the file in $WEBFLEET_SPEC_CONTEXT;
pytest-testinfra's `--hosts` names the instances. The same specs run on AWS and locally.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

CONTEXT_ENV = "WEBFLEET_SPEC_CONTEXT"


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        pytest.fail(f"${CONTEXT_ENV} names no spec context: run the specs through webfleet")
    context: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return context
