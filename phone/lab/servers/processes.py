"""Serving emulated labs to a fleet from child processes (TFTP in one, TVS and CAPF in another).

The lab's own ``Lab.serving()`` runs the TFTP and TVS servers as threads of
the calling process; a fleet run would then share one GIL between them and the
collection of its results (docs/fleet.md). Here the labs are
served from two child processes: one runs the TVS and CallManager servers (``LabServers``),
the other the lab's per-device files (``Lab.device_file``) behind
``phone.lab.servers.tftp``, listing the TVS servers where the first one put them.

Lab operations stay in the parent (``Lab.run`` on the lab folders); the child picks them up at
the next request, and ``sync()`` restarts TVS servers whose certificate
changed, as ``LabServers.sync`` does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from phone.errors import TransportError
from phone.lab.servers.profiling import profiled


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Start child processes with SIGINT blocked (they inherit the mask through fork and exec).

    A Ctrl-C at a terminal goes to the whole foreground process group; a
    spawned child still importing its modules would die of it with a
    traceback. The parent stops its children itself (``quiet_child``).
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def quiet_child() -> None:  # pragma: no cover - runs in child processes
    """First thing in a child process: ignore SIGINT (a pending one is dropped); the parent stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class LabsServer:
    """The serving processes: TFTP ports per lab, TVS up/down, sync after lab operations."""

    def __init__(self, tvs: _Child, tftp: _Child) -> None:
        self._tvs = tvs
        self._tftp = tftp
        self.tftp_ports: dict[str, int] = tftp.value

    def sync(self) -> None:
        """After lab operations: TVS servers whose certificate changed restart, TFTP re-reads the lists."""
        self._tvs.call(("sync",))
        self._tftp.call(("sync",))

    def tvs(self, lab: str | None, up: bool) -> None:
        """Start (``up``) or stop every TVS server of ``lab`` (None: of every lab)."""
        self._tvs.call(("tvs", lab, up))

    def cpu_seconds(self) -> float:
        return self._tvs.call(("cpu",)) + self._tftp.call(("cpu",))

    def stats(self) -> dict[str, dict[str, int]]:
        return self._tftp.call(("stats",))


@contextlib.contextmanager
def serving_labs(labs: Mapping[str, Path], *, host: str = "127.0.0.1",
                 start_timeout: float = 120.0) -> Iterator[LabsServer]:
    """Serve every lab folder of ``labs`` (key -> folder) until the block ends.

    Two child processes: one runs every node's TVS server and each publisher's CAPF
    (``LabServers``), the other the TFTP servers (``phone.lab.servers.tftp`` answering from
    ``Lab.device_file``). TLS handshakes and signing configurations are the two
    largest costs of serving a fleet; in two processes they use two cores.
    """
    context = multiprocessing.get_context("spawn")
    folders = {k: str(v) for k, v in labs.items()}
    with contextlib.ExitStack() as stack:
        tvs = stack.enter_context(_child(context, _tvs_main, (folders, host), "fleet-lab-tvs", start_timeout))
        tftp = stack.enter_context(_child(context, _tftp_main, (folders, host, tvs.value), "fleet-lab-tftp",
                                          start_timeout))
        yield LabsServer(tvs, tftp)


class _Child:
    """One serving process and its pipe."""

    def __init__(self, process, connection, value) -> None:
        self.process = process
        self.connection = connection
        self.value = value
        self._lock = threading.Lock()

    def call(self, message: tuple):
        with self._lock:
            try:
                self.connection.send(message)
                if not self.connection.poll(120):
                    raise TransportError(f"{self.process.name} did not answer within 120 s")
                status, value = self.connection.recv()
            except (EOFError, OSError) as error:
                raise TransportError(f"{self.process.name} is gone ({error or type(error).__name__})") from None
        if status != "ok":
            raise TransportError(f"{self.process.name}: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.send(("stop",))
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


@contextlib.contextmanager
def _child(context, target, args: tuple, name: str, start_timeout: float) -> Iterator[_Child]:
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
    with sigint_blocked():
        process.start()
    child.close()
    if not parent.poll(start_timeout):
        process.kill()
        raise TransportError(f"{name} did not start in time")
    try:
        status, value = parent.recv()
    except EOFError:
        process.join(5)
        status, value = "error", f"the process ended (exit code {process.exitcode})"
    if status != "ok":
        process.join(5)
        raise TransportError(f"{name}: {value}")
    running = _Child(process, parent, value)
    try:
        yield running
    finally:
        running.close()


def _loop(connection, handle) -> None:  # pragma: no cover - child processes
    """Answer the parent's messages with ``handle(message) -> value`` until "stop" or the pipe closes."""
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        try:
            if message[0] == "cpu":
                times = os.times()
                value = times.user + times.system
            else:
                value = handle(message)
            connection.send(("ok", value))
        except Exception as error:  # noqa: BLE001 - reported to the parent
            connection.send(("error", f"{type(error).__name__}: {error}"))


def _tvs_main(connection, labs: dict[str, str], host: str) -> None:  # pragma: no cover - child process
    quiet_child()
    with profiled("fleet-lab-tvs"):
        _serve_tvs(connection, labs, host)


def _serve_tvs(connection, labs: dict[str, str], host: str) -> None:  # pragma: no cover - child process
    import attrs

    from phone.lab import Lab
    from phone.lab.servers.serving import LabServers

    try:
        with contextlib.ExitStack() as stack:
            served: dict[str, LabServers] = {}
            for key, folder in labs.items():
                lab = Lab.open(folder)
                servers = LabServers(lab, host=host, tftp_node=lab.node(None), advertise=host,
                                     tvs_ports=[0] * len(lab.nodes), trace=None, capf_port=0,
                                     signalling_ports={"sip": 0, "sip-tls": 0, "sccp": 0})
                stack.callback(servers.close)
                servers.start_tvs()
                servers.start_capf()
                servers.start_signalling()
                served[key] = servers
            connection.send(("ok", {key: {"tvs": servers.tvs_addresses, "capf": servers.capf_address,
                                          "call_managers": [attrs.astuple(manager)
                                                            for manager in servers.call_managers]}
                                    for key, servers in served.items()}))

            def handle(message: tuple):
                if message[0] == "sync":
                    for servers in served.values():
                        servers.sync()
                    return None
                if message[0] == "tvs":
                    _, which, up = message
                    for key, servers in served.items():
                        if which is None or which == key:
                            servers.start_tvs() if up else servers.stop_tvs()
                    return None
                raise ValueError(f"unknown message {message[0]!r}")  # never escapes: reported to the parent below

            _loop(connection, handle)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        with contextlib.suppress(Exception):
            connection.send(("error", f"{type(error).__name__}: {error}"))


#: Per-device trust lists: every device of a node gets the node's CTL or ITL (``Lab.device_file``).
_DEVICE_LIST = re.compile(r"^(CTL|ITL)(?:SEP[0-9A-Fa-f]{12}|CSF[A-Za-z0-9_-]{1,32})\.tlv$")
_MISSING = object()


def _tftp_main(connection, labs: dict[str, str], host: str,  # pragma: no cover - child process
               served_addresses: dict[str, dict]) -> None:
    quiet_child()
    with profiled("fleet-lab-tftp"):
        _serve_tftp(connection, labs, host, served_addresses)


def _serve_tftp(connection, labs: dict[str, str], host: str,  # pragma: no cover - child process
                served_addresses: dict[str, dict]) -> None:
    import attrs

    from phone.lab import Lab
    from phone.lab.build import ServiceAddresses
    from phone.lab.servers.tftp import TftpFileServer
    from phone.wire.config import CallManager

    try:
        with contextlib.ExitStack() as stack:
            served: dict[str, TftpFileServer] = {}
            caches: list[dict] = []
            for key, folder in labs.items():
                lab = Lab.open(folder)
                node = lab.node(None).name
                addresses = [tuple(address) for address in served_addresses[key]["tvs"]]
                capf = served_addresses[key]["capf"]
                managers = tuple(CallManager(*manager) for manager in served_addresses[key]["call_managers"])
                service = ServiceAddresses.of_cluster(lab.state, addresses)
                service = attrs.evolve(service, capf=tuple(capf) if capf is not None else service.capf,
                                       call_managers=managers)
                cache: dict[str, object] = {}
                caches.append(cache)

                def files(name: str, _client, lab=lab, node=node, addresses=addresses, service=service,
                          cache=cache):
                    # The lab reads its state under a lock per request (about 0.3 ms); a node's CTL
                    # and ITL are the same for every device, so they are read once per step.
                    match = _DEVICE_LIST.match(name)
                    if match is None:
                        return lab.device_file(name, node, addresses=service)
                    data = cache.get(match.group(1), _MISSING)
                    if data is _MISSING:
                        data = cache[match.group(1)] = lab.device_file(name, node, addresses)
                    return data

                tftp = TftpFileServer(lab.tftp_folder(node), files, host=host)
                tftp.start_in_thread()
                stack.callback(tftp.stop)
                served[key] = tftp
            connection.send(("ok", {key: tftp.port for key, tftp in served.items()}))

            def handle(message: tuple):
                if message[0] == "sync":  # the lab changed: read its lists again
                    for cache in caches:
                        cache.clear()
                    return None
                if message[0] == "stats":
                    return {key: {**attrs.asdict(tftp.stats()), **tftp.counts} for key, tftp in served.items()}
                raise ValueError(f"unknown message {message[0]!r}")  # never escapes: reported to the parent below

            _loop(connection, handle)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        with contextlib.suppress(Exception):
            connection.send(("error", f"{type(error).__name__}: {error}"))
