"""The one base class for failures webfleet explains to its user instead of a traceback."""


class WebfleetError(Exception):
    """A failure whose message says what went wrong and what to do about it."""
