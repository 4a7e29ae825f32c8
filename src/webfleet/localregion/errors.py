"""The one error type the local region raises; its message always says what to do next."""

from __future__ import annotations

from webfleet.errors import WebfleetError


class LocalRegionError(WebfleetError):
    """The local region could not do what was asked; str(error) tells the user how to fix it."""
