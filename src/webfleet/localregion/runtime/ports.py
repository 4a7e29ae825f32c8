"""Binding the region's API port, with an error that says what to do when it is taken."""

from __future__ import annotations

import errno
import socket

from webfleet.localregion.errors import LocalRegionError


def bind_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening); LocalRegionError if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As every server does, so a port left in TIME_WAIT by the last run is not "taken".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise _port_taken(host, port) from error
        raise LocalRegionError(
            f"Cannot listen on {host}:{port} for the local region ({error.strerror}): "
            f"pick another loopback address or port."
        ) from error
    return sock


def ensure_port_free(host: str, port: int) -> None:
    """Raise LocalRegionError naming the port if another program already listens on it."""
    bind_port(host, port).close()


def port_is_free(host: str, port: int) -> bool:
    try:
        ensure_port_free(host, port)
    except LocalRegionError:
        return False
    return True


def _port_taken(host: str, port: int) -> LocalRegionError:
    return LocalRegionError(
        f"Port {port} on {host} is already taken by another program, so the local region "
        f"cannot serve its API there. Stop that program (`ss -ltnp 'sport = :{port}'` names "
        f"it), or give the local region another free port (api_port in the stack file's local "
        f"environment), for example {free_port(host)}."
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for suggestions, tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
