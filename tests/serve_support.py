"""`phonetrust lab serve` in its own process, as a user runs it, for the command-line tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator


def free_tcp_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on loopback now (held together while chosen, then released)."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [held.getsockname()[1] for held in sockets]
    for held in sockets:
        held.close()
    return ports


@contextlib.contextmanager
def lab_serve_process(lab: str, *options: str,
                      env: dict[str, str] | None = None) -> Iterator[tuple[dict, subprocess.Popen]]:
    """`phonetrust lab serve --lab LAB --json OPTIONS` in its own process.

    Yields the ports it announced (its first line) and the process. SIGTERM ends it when
    the block ends, and it must then exit with status 0 (a failure inside the block is
    reported as it is). Its stderr stays readable afterwards.
    """
    process = subprocess.Popen([sys.executable, "-m", "phone", "lab", "serve", "--lab", lab, "--json", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield json.loads(line), process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        finally:
            process.kill()
            process.stdout.close()
    assert code == 0, f"lab serve exited with {code}"
