"""Which of an app's own routes looks like a health check: what the load balancer should ask."""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_PATH = "/healthz"
# Path segments that name a health endpoint, best first.
_RANKS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"health"), 0),
    (re.compile(r"^(ping|status|readyz?|readiness|livez?|liveness|alive|up)$"), 1),
    (re.compile(r"^test$"), 2),
)
# A literal path: no parameters (<id>, :id, {id}), wildcards or regex left in it.
_LITERAL = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def pick(paths: Iterable[str]) -> str | None:
    """The most health-like of the literal paths, or None: segment words first, then shortest."""
    ranked: list[tuple[int, int, str]] = []
    for path in paths:
        if not _LITERAL.match(path):
            continue
        rank = _rank(path)
        if rank is not None:
            ranked.append((rank, len(path), path))
    return min(ranked)[2] if ranked else None


def _rank(path: str) -> int | None:
    ranks = [
        rank
        for segment in path.lower().split("/")
        if segment
        for pattern, rank in _RANKS
        if pattern.search(segment)
    ]
    return min(ranks) if ranks else None
