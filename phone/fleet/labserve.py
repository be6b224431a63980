"""Serving emulated labs to a fleet from a child process, with the fast TFTP server.

The lab's own ``Lab.serving()`` runs tftpy's server and the TVS servers as
threads of the calling process; a fleet run would then share one GIL between
them and the collection of its results, and tftpy's loop spends about 1 ms per
download with a fleet's transfers in flight (docs/fleet.md). Here each lab is
served from one child process: the lab's ``LabServers`` (its TVS servers and
its per-device files, ``Lab.device_file``) behind ``phone.tftp.aioserver``.

Lab operations stay in the parent (the scenario runs them through the
``phonetrust lab`` command line on the lab folders); the child picks them up at
the next request, and ``sync()`` restarts TVS servers whose certificate
changed, as ``LabServers.sync`` does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from phone.errors import TransportError


class LabsServer:
    """The child process serving labs: TFTP ports per lab, TVS up/down, sync."""

    def __init__(self, process, connection, tftp_ports: dict[str, int]) -> None:
        self._process = process
        self._connection = connection
        self._lock = threading.Lock()
        self.tftp_ports = tftp_ports

    def sync(self) -> None:
        self._call(("sync",))

    def tvs(self, lab: str | None, up: bool) -> None:
        """Start (``up``) or stop every TVS server of ``lab`` (None: of every lab)."""
        self._call(("tvs", lab, up))

    def cpu_seconds(self) -> float:
        return self._call(("cpu",))

    def stats(self) -> dict[str, dict[str, int]]:
        return self._call(("stats",))

    def _call(self, message: tuple):
        with self._lock:
            try:
                self._connection.send(message)
                if not self._connection.poll(120):
                    raise TransportError("the lab server did not answer within 120 s")
                status, value = self._connection.recv()
            except (EOFError, OSError) as error:
                raise TransportError(f"the lab server process is gone ({error or type(error).__name__})") from None
        if status != "ok":
            raise TransportError(f"lab server: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.send(("stop",))
        self._process.join(15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


@contextlib.contextmanager
def serving_labs(labs: Mapping[str, Path], *, host: str = "127.0.0.1",
                 start_timeout: float = 120.0) -> Iterator[LabsServer]:
    """Serve every lab folder of ``labs`` (key -> folder) from one child process until the block ends."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve_main, args=(child, {k: str(v) for k, v in labs.items()}, host),
                              name="fleet-labs", daemon=True)
    process.start()
    child.close()
    if not parent.poll(start_timeout):
        process.kill()
        raise TransportError("the lab server did not start in time")
    try:
        status, value = parent.recv()
    except EOFError:
        process.join(5)
        status, value = "error", f"the lab server process ended (exit code {process.exitcode})"
    if status != "ok":
        process.join(5)
        raise TransportError(f"lab server: {value}")
    server = LabsServer(process, parent, value)
    try:
        yield server
    finally:
        server.close()


def _serve_main(connection, labs: dict[str, str], host: str) -> None:  # pragma: no cover - child process
    import attrs

    from phone.lab import Lab
    from phone.lab.serve import LabServers
    from phone.tftp.aioserver import AsyncTftpFileServer

    try:
        with contextlib.ExitStack() as stack:
            served: dict[str, tuple[LabServers, AsyncTftpFileServer]] = {}
            for key, folder in labs.items():
                lab = Lab.open(folder)
                servers = LabServers(lab, host=host, tftp_node=lab.node(None), advertise=host,
                                     tvs_ports=[0] * len(lab.nodes), trace=None)
                stack.callback(servers.close)
                servers.start_tvs()
                tftp = AsyncTftpFileServer(lab.tftp_folder(servers.tftp_node.name), servers.file, host=host)
                servers.tftp_port = tftp.start_in_thread()
                stack.callback(tftp.stop)
                served[key] = (servers, tftp)
            connection.send(("ok", {key: tftp.port for key, (_, tftp) in served.items()}))
            while True:
                message = connection.recv()
                try:
                    if message[0] == "stop":
                        return
                    if message[0] == "sync":
                        for servers, _ in served.values():
                            servers.sync()
                        connection.send(("ok", None))
                    elif message[0] == "tvs":
                        _, which, up = message
                        for key, (servers, _) in served.items():
                            if which is None or which == key:
                                servers.start_tvs() if up else servers.stop_tvs()
                        connection.send(("ok", None))
                    elif message[0] == "cpu":
                        times = os.times()
                        connection.send(("ok", times.user + times.system))
                    elif message[0] == "stats":
                        connection.send(("ok", {key: {**attrs.asdict(tftp.stats()), **tftp.counts}
                                                for key, (_, tftp) in served.items()}))
                    else:
                        connection.send(("error", f"unknown message {message[0]!r}"))
                except Exception as error:  # noqa: BLE001 - reported to the parent
                    connection.send(("error", f"{type(error).__name__}: {error}"))
    except EOFError:
        return
    except Exception as error:  # noqa: BLE001 - reported to the parent
        with contextlib.suppress(Exception):
            connection.send(("error", f"{type(error).__name__}: {error}"))
