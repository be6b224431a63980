"""Serving a lab: one TFTP node, every node's TVS and the publisher's CAPF, in background threads
(docs/tvs.md, docs/phone.md, docs/capf.md).

``serving(lab)`` is a context manager yielding ``LabServers``: the TFTP server
of one node (``phone.lab.servers.tftp.TftpFileServer``: that node's TFTP folder plus the
per-device files made by name, ``Lab.device_file``) and one TVS server per
node (``phone.lab.servers.tvs.running_tvs_server``), each presenting its node's TVS
certificate, answering from the lab's TVS store and from that node's
CTLFile.tlv. The configurations it hands out list every node's TVS server,
publisher first, at the address and port it actually listens on (all on the
serving host; a fixed ``tvs_port`` N puts node i on N + i, port 0 lets the
OS pick a free one per node).

The CAPF server (``phone.lab.servers.capf``) runs on the publisher only, as from
CUCM 14 (Cisco TAC note 214231), presenting the publisher's CAPF certificate and
working from the lab's device store; configurations list it at the address and
port it listens on (``capf_port`` 0: a free port; None: no CAPF, and
configurations keep CUCM's default of the publisher on 3804).
With ``http_port`` / ``https_port`` (None: off; 0: a free port) the same node's files are
also served over HTTP and over HTTPS presenting the node's CallManager-ECDSA certificate
where the lab has one, else its CallManager certificate (``phone.lab.servers.http``,
docs/http.md); a regenerated certificate is presented from the next connection on.
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
TFTP request, or by ``sync()``: files are read per request, and a TVS or CAPF
server whose certificate or minimum TLS version changed is restarted on its port.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import attrs

from cryptography import x509
from cryptography.x509.oid import NameOID

from phone.device.identity import default_mic_ca
from phone.errors import PhonetrustError, UsageError
from phone.lab.build import ServiceAddresses
from phone.lab.devices import DeviceStore
from phone.lab.lab import Lab
from phone.lab.state import Node
from phone.lab.servers.capf import CapfServerSettings, running_capf_server
from phone.lab.servers.http import HttpFileServer
from phone.lab.servers.signalling import DEFAULT_PORTS, CallManagerServer, SignallingSettings
from phone.lab.servers.tftp import TftpFileServer
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.tls import identity_server_context
from phone.wire.certs import Identity, load_certificate
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


#: Names of the Cisco Manufacturing CAs that issue MICs (Cisco TAC note 200860).
_MANUFACTURING_CA_NAMES = ("Cisco Manufacturing CA", "CAP-RTP-")


def is_manufacturing_ca(certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` is named as a Cisco Manufacturing CA (SHA2 or not) or CAP-RTP-001/002."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return any(str(name.value).startswith(_MANUFACTURING_CA_NAMES) for name in names)


def capf_trust(lab: Lab) -> tuple[Callable[[], list[x509.Certificate]], Callable[[], list[x509.Certificate]]]:
    """What the lab's CAPF checks presented certificates against: (CAPF-trust, its manufacturing CAs).

    CUCM checks an existing LSC or MIC against CAPF-trust, which holds the CAPF
    certificates and the Cisco Manufacturing CAs (Cisco TAC note 200860). A lab
    without trust stores trusts its own CAPF certificate and this installation's
    emulated manufacturing CA, the one emulated phones' MICs come from.
    """
    listed = getattr(lab, "trusted_certificates", None)
    if listed is not None:
        def store() -> list[x509.Certificate]:
            return list(listed("CAPF-trust"))

        return store, lambda: [c for c in store() if is_manufacturing_ca(c)]

    made: list[x509.Certificate] = []

    def manufacturing() -> list[x509.Certificate]:
        if not made:  # read once: loading the CA's key costs a fifth of a second
            from phone.device.identity import default_mic_ca  # made on first use: only when a MIC is presented

            made.append(default_mic_ca().certificate)
        return list(made)

    return (lambda: [lab.identity("CAPF").certificate]), manufacturing


@attrs.define
class _Capf:
    """The publisher's CAPF server: the port asked for (None: off), the one it got, what it started with."""

    wanted: int | None
    port: int = 0
    stack: contextlib.ExitStack | None = None
    certificate: bytes = b""
    min_tls: str = ""
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
                 trace: Callable[[str], None] | None, capf_port: int | None = None,
                 signalling_ports: dict[str, int | None] | None = None,
                 signalling_trace: Callable[[str], None] | None = None) -> None:
        self.lab = lab
        self.host = host
        self.tftp_node = tftp_node
        self.advertise = advertise
        self.tftp_port = 0
        #: The HTTP and HTTPS provisioning ports (None: not served).
        self.http_port: int | None = None
        self.https_port: int | None = None
        #: The Tomcat HTTPS port (6972 on CUCM; None: not served).
        self.tomcat_port: int | None = None
        self._trace = trace
        self._lock = threading.RLock()
        self._tvs = {node.name: _Tvs(node, port) for node, port in zip(lab.nodes, tvs_ports, strict=True)}
        self._capf = _Capf(capf_port)
        #: Publisher's listener ports (None: off); the other nodes take free ports for the same listeners.
        self._signalling_ports = dict(signalling_ports or {name: None for name in DEFAULT_PORTS})
        self._signalling_trace = signalling_trace
        self._callmanagers: dict[str, CallManagerServer] = {}

    @property
    def capf_port(self) -> int:
        """The CAPF server's port (0: off)."""
        with self._lock:
            return self._capf.port if self._capf.stack is not None else 0

    @property
    def capf_address(self) -> tuple[str, int] | None:
        """(address, port) of CAPF as configurations list it; None when the lab serves no CAPF."""
        port = self.capf_port
        return (self.advertise, port) if port else None

    def start_capf(self) -> None:
        """Start the publisher's CAPF (on the port it had, if it ran before); nothing when it is off."""
        with self._lock:
            capf = self._capf
            if capf.wanted is None or capf.stack is not None:
                return
            lab = self.lab
            trusted, manufacturing = capf_trust(lab)
            with lab._reading():  # certificate and settings of one consistent lab state
                identity = lab.identity("CAPF")
                min_tls = lab.state.params.tls_min_version
            settings = CapfServerSettings(host=self.host, port=capf.port or capf.wanted, min_tls=min_tls)
            trace = None
            if self._trace is not None:
                sink = self._trace
                trace = lambda line: sink(f"[CAPF] {line}")  # noqa: E731
            stack = contextlib.ExitStack()
            running = stack.enter_context(running_capf_server(
                identity, DeviceStore.for_lab(lab.path), trusted_capf=trusted, trusted_manufacturing=manufacturing,
                settings=settings, clock=lambda: lab.clock(), trace=trace))
            capf.port, capf.stack, capf.certificate, capf.min_tls = running.port, stack, identity.der, min_tls

    def stop_capf(self) -> None:
        with self._lock:
            if self._capf.stack is not None:
                stack, self._capf.stack = self._capf.stack, None
                stack.close()

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

    @property
    def service_addresses(self) -> ServiceAddresses:
        """What configurations tell phones: the services as served, at the advertised address (a service
        whose port is 0 is off and left out, but for CAPF, which configurations name on the publisher
        at 3804 as a real cluster's do, so that a CAPF server run beside the lab on that port is found);
        the CallManager group as served (``call_managers``: empty when signalling is off, and phones
        then do not register). Every address is the advertised one: a phone cannot resolve the lab's
        node names."""
        def served(port: int) -> tuple[str, int] | None:
            return (self.advertise, port) if port else None

        cluster = ServiceAddresses.of_cluster(self.lab.state, self.tvs_addresses)
        publisher_capf = (self.advertise, cluster.capf[1]) if cluster.capf is not None else None
        return attrs.evolve(cluster, capf=served(self.capf_port) or publisher_capf, http=served(self.http_port),
                            https=served(self.https_port), call_managers=self.call_managers)

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
        """Restart running TVS and CAPF servers whose certificate or minimum TLS version changed in the lab;
        CallManagers read their certificate and trust store again."""
        with self._lock:
            for callmanager in self._callmanagers.values():
                callmanager.refresh()
            state = self.lab.state
            capf = self._capf
            if capf.stack is not None and (self.lab.identity("CAPF").der != capf.certificate
                                           or state.params.tls_min_version != capf.min_tls):
                self.stop_capf()
                self.start_capf()
            for tvs in self._tvs.values():
                if tvs.stack is None:
                    continue
                if (self.lab.identity("TVS", tvs.node.name).der != tvs.certificate
                        or state.params.tls_min_version != tvs.min_tls):
                    self.stop_tvs(tvs.node.name)
                    self._start(tvs)

    def close(self) -> None:
        self.stop_capf()
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
        return self.lab.device_file(name, self.tftp_node.name, addresses=self.service_addresses)

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


#: The certificates HTTPS port 6971 may present, preferred first (docs/http.md).
HTTPS_IDENTITIES = ("CallManager-ECDSA", "CallManager")


def https_identity(lab: Lab, node: str) -> Identity:
    """The certificate the node's HTTPS provisioning presents: CallManager-ECDSA where the lab has it."""
    for service in HTTPS_IDENTITIES:
        try:
            return lab.identity(service, node)
        except PhonetrustError:
            continue
    raise UsageError(f"node {node} has no certificate to present over HTTPS")


def https_contexts(lab: Lab, node: str) -> Callable[[], ssl.SSLContext]:
    """A TLS context presenting the node's current HTTPS certificate, rebuilt when it changes."""
    cache: dict[bytes, ssl.SSLContext] = {}

    def current() -> ssl.SSLContext:
        identity = https_identity(lab, node)
        if identity.der not in cache:
            cache.clear()
            cache[identity.der] = identity_server_context(identity)
        return cache[identity.der]

    return current


def tomcat_contexts(lab: Lab, node: str) -> Callable[[], ssl.SSLContext]:
    """Port 6972: a TLS context presenting the node's tomcat certificate and asking for the client's,
    checked against CallManager-trust (the lab keeps no separate Tomcat-trust; setting
    ``https_6972.client_trust``, docs/http.md). Rebuilt when the certificate or the store changes."""
    lab.identity("tomcat", node)  # made on first use: outside any read lock (docs/lab.md)
    cache: dict[tuple[bytes, ...], ssl.SSLContext] = {}

    def current() -> ssl.SSLContext:
        identity = lab.identity("tomcat", node)
        trust = callmanager_trust(lab)
        key = (identity.der, *sorted(certificate.tbs_certificate_bytes for certificate in trust))
        if key not in cache:
            cache.clear()
            cache[key] = identity_server_context(identity, client_trust=trust)
        return cache[key]

    return current


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
    capf_port: int | None = 0,
    http_port: int | None = None,
    https_port: int | None = None,
    tomcat_port: int | None = None,
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
    each prefixed with its node's name, and the CAPF server's, prefixed ``[CAPF]``.
    ``capf_port`` is the publisher's CAPF port (0: any free port; None: no CAPF).
    ``http_port`` / ``https_port``: the node's HTTP and HTTPS provisioning (None: off; 0: a free port);
    ``tomcat_port``: the same files over HTTPS presenting the node's tomcat certificate and requiring a
    client certificate that CallManager-trust vouches for (CUCM's 6972; None: off; 0: a free port).
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
    if capf_port is not None and not 0 <= capf_port < 65536:
        raise UsageError(f"CAPF port {capf_port} is not a TCP port")
    servers = LabServers(lab, host=host, tftp_node=lab.node(tftp_node), advertise=advertise, tvs_ports=ports,
                         trace=trace, capf_port=capf_port,
                         signalling_ports={"sip": sip_port, "sip-tls": sip_tls_port, "sccp": sccp_port},
                         signalling_trace=signalling_trace)
    try:
        servers.start_capf()
        servers.start_signalling()
        # Started even with tvs=False, so that free ports are chosen now and every
        # configuration lists the ports TVS will come back on.
        servers.start_tvs()
        if not tvs:
            servers.stop_tvs()
        with contextlib.ExitStack() as stack:
            folder = lab.tftp_folder(servers.tftp_node.name)
            servers.tftp_port = stack.enter_context(TftpFileServer(folder, servers.file, host=host, port=tftp_port))
            if http_port is not None:
                servers.http_port = stack.enter_context(HttpFileServer(folder, servers.file, host=host,
                                                                       port=http_port))
            if https_port is not None:
                contexts = https_contexts(lab, servers.tftp_node.name)
                servers.https_port = stack.enter_context(HttpFileServer(
                    folder, servers.file, host=host, port=https_port, ssl_context=contexts(), contexts=contexts,
                    unsigned_configs=True))
            if tomcat_port is not None:
                tomcat = tomcat_contexts(lab, servers.tftp_node.name)
                servers.tomcat_port = stack.enter_context(HttpFileServer(
                    folder, servers.file, host=host, port=tomcat_port, ssl_context=tomcat(), contexts=tomcat,
                    unsigned_configs=True))
            yield servers
    finally:
        servers.close()
