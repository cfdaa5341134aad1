"""Ports on 127.0.0.1 for the servers that the template tests start.

A server gets a port that is free now rather than its usual one (Kafka's 9092, the
game's 5000), which a developer's own server or a parallel run may hold; the test
then waits until the server listens there.
"""

import shlex
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest


def free_ports(count: int) -> list[int]:
    """Distinct ports of 127.0.0.1 that nothing listens on now.

    For a server that must be told its port before it starts (a Kafka controller's
    goes into its configuration). All are bound at once, so they differ; a program
    may still take one before the server does, which the server then reports.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def accepts_connections(address: str) -> bool:
    """Whether something listens at a host:port address."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def wait_until_listening(
    address: str, server: subprocess.Popen, timeout: float, log: Path | None = None
) -> None:
    """Return once `server` listens at a host:port address; fail the test if it
    exits first or does not listen within `timeout` seconds, with its log if given.
    """
    deadline = time.monotonic() + timeout
    while not accepts_connections(address):
        if server.poll() is not None:
            problem = f"exited with {server.returncode} before it listened on {address}"
        elif time.monotonic() > deadline:
            problem = f"did not listen on {address} within {timeout:.0f} s"
        else:
            time.sleep(0.1)
            continue
        command = shlex.join(str(part) for part in server.args)
        said = "" if log is None else f"; its log says:\n{_read(log)}"
        pytest.fail(f"`{command}` {problem}{said}")


def _read(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace").strip() or "(nothing)"
