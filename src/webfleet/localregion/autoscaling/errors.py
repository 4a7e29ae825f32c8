"""Auto Scaling's client errors, as the local region raises them (moto serializes them)."""

from __future__ import annotations


def client_error(code: str, message: str) -> Exception:
    """An error the caller sees as AWS's: `code` (e.g. ValidationError) and its message."""
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)
