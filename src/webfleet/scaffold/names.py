"""An app.name made of a directory's name: lowercase, [a-z][a-z0-9-]{0,19}."""

from __future__ import annotations

import re

MAX_LENGTH = 20
FALLBACK_PREFIX = "app"


def app_name(directory_name: str) -> str:
    """directory_name made valid for app.name: "My_Shop.v2" → "my-shop-v2", "2048" → "app-2048"."""
    name = re.sub(r"[^a-z0-9]+", "-", directory_name.lower()).strip("-")
    if not re.match(r"[a-z]", name):
        name = f"{FALLBACK_PREFIX}-{name}".rstrip("-")
    return name[:MAX_LENGTH].rstrip("-")
