"""Serving a lab: one TFTP node and every node's TVS, in background threads (docs/tvs.md, docs/phone.md).

``serving(lab)`` is a context manager yielding ``LabServers``: the TFTP server
of one node (``phone.lab.servers.tftp.TftpFileServer``: that node's TFTP folder plus the
per-device files made by name, ``Lab.device_file``) and one TVS server per
node (``phone.lab.servers.tvs.running_tvs_server``), each presenting its node's TVS
certificate, answering from the lab's TVS store and from that node's
CTLFile.tlv. The configurations it hands out list every node's TVS server,
publisher first, at the address and port it actually listens on (all on the
serving host; a fixed ``tvs_port`` N puts node i on N + i, port 0 lets the
OS pick a free one per node).

Each node also runs its CallManager signalling (``phone.lab.servers.signalling``:
SIP over TCP and TLS, SCCP and SCCP over TLS), presenting the node's CallManager
certificate and trusting CallManager-trust (``callmanager_trust``); the
configurations list every node's CallManager at the ports it listens on. Fixed
ports serve the publisher; the other nodes get free ports. A listener given
None is off; when all are off, configurations name no CallManager and phones
do not register.

``stop_tvs()`` / ``start_tvs()`` take TVS down and up again on the same ports
(the "TVS down" failure case), for every node or one. Changes made to the lab
while it is served (by this process or another) are picked up at the next
TFTP request, or by ``sync()``: files are read per request, and a TVS server
whose certificate or minimum TLS version changed is restarted on its port.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import attrs

from cryptography import x509

from phone.device.identity import default_mic_ca
from phone.errors import UsageError
from phone.lab.lab import Lab
from phone.lab.state import Node
from phone.lab.servers.signalling import DEFAULT_PORTS, CallManagerServer, SignallingSettings
from phone.lab.servers.tftp import TftpFileServer
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.wire.certs import load_certificate
from phone.wire.config import CallManager

_WILDCARDS = ("", "0.0.0.0")


@attrs.define
class _Tvs:
    """One node's TVS server: its port (kept across restarts) and what it was started with."""

    node: Node
    port: int
    stack: contextlib.ExitStack | None = None
    certificate: bytes = b""
    min_tls: str = ""

    @property
    def running(self) -> bool:
        return self.stack is not None


def callmanager_trust(lab: Lab) -> list[x509.Certificate]:
    """CallManager-trust as CUCM fills it: every CAPF certificate, the certificates uploaded to it,
    and the (emulated) Cisco Manufacturing CA that issues MICs (Cisco TAC 200860)."""
    if hasattr(lab, "trusted_certificates"):  # the lab's own reading of its trust stores, where it has one
        return list(lab.trusted_certificates("CallManager-trust"))
    with lab._reading():
        state = lab.state
        found = {lab.identity("CAPF", node.name).der: lab.identity("CAPF", node.name).certificate
                 for node in state.nodes}
        for upload in state.uploads:
            if upload.store == "CallManager-trust":
                data = (lab.path / "trust" / upload.store / upload.file).read_bytes()
                certificate = load_certificate(data, source=upload.file)
                found.setdefault(certificate.tbs_certificate_bytes, certificate)
    return [*found.values(), default_mic_ca().certificate]


class LabServers:
    """The running servers of ``serving()``: ports, addresses, TVS on/off, CallManagers."""

    def __init__(self, lab: Lab, *, host: str, tftp_node: Node, advertise: str, tvs_ports: list[int],
                 trace: Callable[[str], None] | None,
                 signalling_ports: dict[str, int | None] | None = None,
                 signalling_trace: Callable[[str], None] | None = None) -> None:
        self.lab = lab
        self.host = host
        self.tftp_node = tftp_node
        self.advertise = advertise
        self.tftp_port = 0
        self._trace = trace
        self._lock = threading.RLock()
        self._tvs = {node.name: _Tvs(node, port) for node, port in zip(lab.nodes, tvs_ports, strict=True)}
        #: Publisher's listener ports (None: off); the other nodes take free ports for the same listeners.
        self._signalling_ports = dict(signalling_ports or {name: None for name in DEFAULT_PORTS})
        self._signalling_trace = signalling_trace
        self._callmanagers: dict[str, CallManagerServer] = {}

    @property
    def tvs_port(self) -> int:
        """The publisher's TVS port (the first TVS member of every configuration)."""
        return self.tvs_ports[self.lab.nodes[0].name]

    @property
    def tvs_ports(self) -> dict[str, int]:
        """Each node's TVS port, by host name."""
        with self._lock:
            return {name: tvs.port for name, tvs in self._tvs.items()}

    @property
    def tvs_addresses(self) -> list[tuple[str, int]]:
        """(address, port) of each node's TVS as configurations list them, publisher first."""
        return [(self.advertise, port) for port in self.tvs_ports.values()]

    def tvs_running(self, node: str | int | None = None) -> bool:
        with self._lock:
            return self._tvs[self.lab.node(node).name].running

    def stop_tvs(self, node: str | int | None = None) -> None:
        """Stop every node's TVS (None) or one node's; TFTP keeps serving. Idempotent."""
        with self._lock:
            for tvs in self._select(node):
                if tvs.stack is not None:
                    stack, tvs.stack = tvs.stack, None
                    stack.close()

    def start_tvs(self, node: str | int | None = None) -> None:
        """Start TVS again on the same port(s), with the lab's current certificate and settings."""
        with self._lock:
            for tvs in self._select(node):
                if tvs.stack is None:
                    self._start(tvs)

    def sync(self) -> None:
        """Restart running TVS servers whose certificate or minimum TLS version changed in the lab."""
        with self._lock:
            state = self.lab.state
            for tvs in self._tvs.values():
                if tvs.stack is None:
                    continue
                if (self.lab.identity("TVS", tvs.node.name).der != tvs.certificate
                        or state.params.tls_min_version != tvs.min_tls):
                    self.stop_tvs(tvs.node.name)
                    self._start(tvs)

    def close(self) -> None:
        self.stop_signalling()
        self.stop_tvs()

    # -- CallManager signalling (docs/registration.md) -------------------------------------

    def start_signalling(self) -> None:
        """Start every node's CallManager listeners that are on (idempotent)."""
        if not any(port is not None for port in self._signalling_ports.values()):
            return
        with self._lock:
            for index, node in enumerate(self.lab.nodes):
                if node.name in self._callmanagers:
                    continue
                ports = {name: (port if index == 0 else 0) if port is not None else None
                         for name, port in self._signalling_ports.items()}
                certificate, key = self.lab.certificate_paths("CallManager", node.name)
                # SDL lines stay whole (``logs parse`` reads them as CUCM SDL traces): each
                # CallManager names its node in its lines instead of a prefix.
                server = CallManagerServer(
                    certificate, key, trusted=lambda: callmanager_trust(self.lab),
                    security_mode=self.lab.device_security_mode,
                    settings=SignallingSettings(host=self.host, ports=ports,
                                                min_tls=self.lab.state.params.tls_min_version),
                    trace=self._signalling_trace, clock=_clock_of(self.lab), node=node.name)
                server.start()
                self._callmanagers[node.name] = server

    def stop_signalling(self) -> None:
        with self._lock:
            for server in self._callmanagers.values():
                server.close()
            self._callmanagers.clear()

    @property
    def signalling_ports(self) -> dict[str, dict[str, int]]:
        """Each node's listener ports, by host name."""
        with self._lock:
            return {name: server.ports for name, server in self._callmanagers.items()}

    @property
    def call_managers(self) -> tuple[CallManager, ...]:
        """The CallManager group configurations list: every node at the ports it serves, publisher first.

        Empty when signalling is off (phones then do not register). A listener that is off keeps the
        standard port in the record: a phone asked to use it finds nothing there."""
        with self._lock:
            return tuple(
                CallManager(self.advertise, sccp_port=ports.get("sccp", DEFAULT_PORTS["sccp"]),
                            sip_port=ports.get("sip", DEFAULT_PORTS["sip"]),
                            secure_sip_port=ports.get("sip-tls", DEFAULT_PORTS["sip-tls"]))
                for ports in (server.ports for server in self._callmanagers.values()))

    def file(self, name: str, client: tuple[str, int]) -> bytes | None:
        """The TFTP server's callback: per-device files made by name (after a ``sync()``)."""
        self.sync()
        return self.lab.device_file(name, self.tftp_node.name, self.tvs_addresses, self.call_managers)

    def _select(self, node: str | int | None) -> list[_Tvs]:
        if node is None:
            return list(self._tvs.values())
        return [self._tvs[self.lab.node(node).name]]

    def _start(self, tvs: _Tvs) -> None:
        lab = self.lab
        certificate, key = lab.certificate_paths("TVS", tvs.node.name)
        settings = TvsServerSettings(host=self.host, port=tvs.port, min_tls=lab.state.params.tls_min_version)
        stack = contextlib.ExitStack()
        trace = None
        if self._trace is not None:
            name, sink = tvs.node.name, self._trace
            trace = lambda line: sink(f"[{name}] {line}")  # noqa: E731
        with lab._reading():  # certificate files and settings of one consistent lab state
            running = stack.enter_context(running_tvs_server(
                certificate, key, db=lab.tvs_db, ctl=lab.ctl_path(tvs.node.name), settings=settings,
                trace=trace, clock=_clock_of(lab)))
            tvs.certificate = lab.identity("TVS", tvs.node.name).der
            tvs.min_tls = lab.state.params.tls_min_version
        tvs.port, tvs.stack = running.port, stack


def _clock_of(lab: Lab) -> Callable[[], datetime]:
    """The TVS trace shows local wall time as CUCM's does; the lab's clock gives it."""
    return lambda: lab.clock().astimezone()


@contextlib.contextmanager
def serving(
    lab: Lab,
    *,
    host: str = "127.0.0.1",
    tftp_port: int = 0,
    tvs_port: int = 0,
    tftp_node: str | int | None = None,
    advertise: str | None = None,
    tvs: bool = True,
    trace: Callable[[str], None] | None = None,
    sip_port: int | None = 0,
    sip_tls_port: int | None = 0,
    sccp_port: int | None = 0,
    signalling_trace: Callable[[str], None] | None = None,
) -> Iterator[LabServers]:
    """Serve ``lab`` in background threads until the block ends.

    ``tftp_node`` (index or host name, default the publisher) is the node whose
    files TFTP serves. ``tvs_port`` 0 gives each node's TVS a free port; N puts
    node i on N + i. ``advertise`` is the address configurations give phones for
    TVS (default ``host``; required when ``host`` is a wildcard). ``tvs=False``
    starts with TVS down. ``trace`` receives the TVS servers' CUCM trace lines,
    each prefixed with its node's name. ``sip_port``, ``sip_tls_port`` and
    ``sccp_port`` are the publisher's CallManager listeners (None: off, 0: any
    free port; SCCP over TLS listens 443 above SCCP); ``signalling_trace``
    receives their SDL trace lines (each names its node).
    """
    if advertise is None:
        if host in _WILDCARDS:
            raise UsageError("serving on every address: give the address phones reach the lab at (advertise)")
        advertise = host
    nodes = lab.nodes
    if tvs_port and tvs_port + len(nodes) - 1 > 65535:
        raise UsageError(f"TVS ports {tvs_port}..{tvs_port + len(nodes) - 1} do not fit below 65536")
    ports = [tvs_port + index if tvs_port else 0 for index in range(len(nodes))]
    servers = LabServers(lab, host=host, tftp_node=lab.node(tftp_node), advertise=advertise, tvs_ports=ports,
                         trace=trace, signalling_ports={"sip": sip_port, "sip-tls": sip_tls_port, "sccp": sccp_port},
                         signalling_trace=signalling_trace)
    try:
        servers.start_signalling()
        # Started even with tvs=False, so that free ports are chosen now and every
        # configuration lists the ports TVS will come back on.
        servers.start_tvs()
        if not tvs:
            servers.stop_tvs()
        with TftpFileServer(lab.tftp_folder(servers.tftp_node.name), servers.file, host=host,
                            port=tftp_port) as port:
            servers.tftp_port = port
            yield servers
    finally:
        servers.close()
