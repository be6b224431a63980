"""The lab's CallManager signalling: SIP on 5060 (TCP) and 5061 (TLS), SCCP on 2000 and 2443 (docs/registration.md).

What CUCM checks when a phone registers (Cisco TAC notes 200860 and 211304; CUCM
Security Guide, "Phone Security Profile"):

- Over TLS the server presents the node's CallManager certificate and asks
  for the phone's. The chain must end in a certificate of CallManager-trust
  (``trusted()``: the CAPF certificate for LSCs, Cisco's manufacturing CAs for
  MICs); otherwise the handshake ends with OpenSSL's fatal "unknown CA" alert.
- Then the name (docs/registration.md): the certificate's CN is the device
  name or ends in ``-<device name>`` (``CP-7965-SEP…``), else a subject
  alternative name (DNS name or URI) is the device name. A mismatch is traced
  as Cisco TAC 211304 shows it (``InvalidX509NameInCertificate``, then the
  ``ConnectionFailure`` alarm with reason 2) and the connection is closed.
- A device whose profile is authenticated or encrypted (``security_mode``)
  registering over TCP is refused (SIP 403, Skinny RegisterRejectMessage).
- Everything else is answered 200 OK / RegisterAckMessage (a REGISTER naming no
  device: 400 Bad Request).

Refusals and registrations are written as CUCM SDL trace lines
(``phone.console.sdl_trace``). Requests are read through the wire codecs'
bounded framing with a deadline, so garbage, silence or an endless line cost
one connection and one trace line, never the server.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from phone.console.sdl_trace import SdlTraceWriter
from phone.errors import SignallingFormatError, TransportError, UsageError
from phone.tls import error_reason, server_context
from phone.wire import sip, skinny
from phone.wire.certs import names_device

#: Listener names and what they speak: (protocol, TLS).
LISTENERS: Mapping[str, tuple[str, bool]] = {
    "sip": ("SIP", False), "sip-tls": ("SIP", True), "sccp": ("SCCP", False), "sccp-tls": ("SCCP", True)}
#: Port usage guide for CUCM.
DEFAULT_PORTS: Mapping[str, int] = {"sip": 5060, "sip-tls": 5061, "sccp": 2000}
#: SCCP over TLS listens 443 above SCCP (2000 -> 2443): a configuration names only the SCCP port
#: (``ethernetPhonePort``), so the phone finds the secure one the same way (docs/registration.md).
SECURE_SCCP_OFFSET = 443
_PAIR_TRIES = 20
_READ_BYTES = 4096
#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME (x509_vfy.h), which Python's ssl module does not name.
_X509_V_FLAG_NO_CHECK_TIME = 0x200000


@attrs.frozen
class SignallingSettings:
    """Where and how the CallManager listens; a port of None is off, 0 lets the OS choose."""

    host: str = "127.0.0.1"
    ports: Mapping[str, int | None] = attrs.field(
        factory=lambda: {"sip": 0, "sip-tls": 0, "sccp": None},
        converter=lambda ports: dict(ports))
    min_tls: str = "1.0"
    #: TLS 1.2 at most (the emulator's choice): the phone's certificate is then checked inside
    #: the handshake and a refusal reaches the phone as the "unknown CA" alert. Under TLS 1.3
    #: the check follows the phone's Finished, and the alert races the phone's first request.
    max_tls: str = "1.2"
    #: Seconds for the TLS handshake and for the whole request.
    timeout: float = 10.0
    #: How long a reading of CallManager-trust is kept (changes are seen after at most this long).
    trust_refresh_seconds: float = 1.0
    #: Connections served at once; more are closed at once (a flood cannot exhaust threads).
    max_connections: int = 256

    def __attrs_post_init__(self) -> None:
        unknown = set(self.ports) - set(DEFAULT_PORTS)
        if unknown:
            raise UsageError(f"unknown listeners {sorted(unknown)}: expected {', '.join(DEFAULT_PORTS)} "
                             "(SCCP over TLS follows SCCP)")


@attrs.frozen
class _Request:
    device: str | None
    answer_ok: Callable[[], bytes]
    answer_refused: Callable[[str], bytes]
    answer_bad: Callable[[str], bytes] | None = None


class CallManagerServer:
    """One node's CallManager signalling listeners (see the module docstring).

    Blocking sockets, a thread per connection (at most ``max_connections`` at once):
    OpenSSL sends its fatal alert, "unknown CA" among them, before a blocking
    handshake returns, where asyncio's TLS transport drops the connection unsent.
    """

    def __init__(self, certificate: str | Path, key: str | Path, *,
                 trusted: Callable[[], Sequence[x509.Certificate]],
                 security_mode: Callable[[str], int] = lambda device: 1,
                 settings: SignallingSettings = SignallingSettings(),
                 trace: Callable[[str], object] | None = None,
                 clock: Callable[[], datetime] = datetime.now,
                 node: str = "cucm") -> None:
        self.settings = settings
        self.trace = SdlTraceWriter(trace, clock)
        self._clock = clock
        self._certificate, self._key = Path(certificate), Path(key)
        self._trusted = trusted
        self._security_mode = security_mode
        self._node = node
        self._contexts: dict[tuple[bytes, ...], ssl.SSLContext] = {}
        self._trust_read: tuple[float, tuple[bytes, ...]] | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_connections)
        self._listeners: dict[str, socketserver.ThreadingTCPServer] = {}
        self._threads: list[threading.Thread] = []
        self.counts = {"registered": 0, "refused": 0}
        server_context(self._certificate, self._key, min_version=settings.min_tls,
                       max_version=settings.max_tls)  # a bad certificate or key fails now, not per phone

    @property
    def ports(self) -> dict[str, int]:
        """The bound port of each listener that is on."""
        return {name: listener.server_address[1] for name, listener in self._listeners.items()}

    def start(self) -> dict[str, int]:
        """Listen on every port that is on; returns the bound ports. TransportError when a port is taken."""
        try:
            for name, port in self.settings.ports.items():
                if port is None:
                    continue
                if name == "sccp":
                    self._listen_sccp_pair(port)
                else:
                    self._listen(name, port)
        except OSError as error:
            self.close()
            raise TransportError(f"cannot listen on {self.settings.host}: {error.strerror or error}") from None
        for name, listener in self._listeners.items():
            thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"callmanager-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.ports

    def _listen(self, name: str, port: int) -> None:
        protocol, tls = LISTENERS[name]
        try:
            self._listeners[name] = _Listener((self.settings.host, port), self, protocol, tls)
        except OSError as error:
            raise OSError(error.errno, f"port {port} for {name}: {error.strerror or error}") from None

    def _listen_sccp_pair(self, port: int) -> None:
        """SCCP on ``port`` and SCCP over TLS 443 above it; port 0 looks for a free pair."""
        if port:
            self._listen("sccp", port)
            self._listen("sccp-tls", port + SECURE_SCCP_OFFSET)
            return
        for _ in range(_PAIR_TRIES):
            self._listen("sccp", 0)
            try:
                self._listen("sccp-tls", self._listeners["sccp"].server_address[1] + SECURE_SCCP_OFFSET)
                return
            except OSError:
                self._listeners.pop("sccp").server_close()
        raise OSError(0, f"no free SCCP port pair (N, N+{SECURE_SCCP_OFFSET}) in {_PAIR_TRIES} tries")

    def close(self) -> None:
        for name, listener in self._listeners.items():
            if any(thread.name == f"callmanager-{name}" for thread in self._threads):
                listener.shutdown()
            listener.server_close()
        for thread in self._threads:
            thread.join(5)
        self._listeners.clear()
        self._threads.clear()

    def __enter__(self) -> CallManagerServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- TLS ----------------------------------------------------------------------------

    def _trust(self) -> tuple[bytes, ...]:
        now = time.monotonic()
        if self._trust_read is None or now - self._trust_read[0] > self.settings.trust_refresh_seconds:
            ders = tuple(sorted(certificate.public_bytes(serialization.Encoding.DER)
                                for certificate in self._trusted()))
            self._trust_read = (now, ders)
        return self._trust_read[1]

    def refresh(self) -> None:
        """Read the certificate and CallManager-trust again at the next connection, as the CallManager
        service does when it is restarted after a regeneration (Cisco TAC 214231)."""
        with self._lock:
            self._contexts = {}
            self._trust_read = None

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            trust = self._trust()
            context = self._contexts.get(trust)
            if context is None:
                context = server_context(self._certificate, self._key, min_version=self.settings.min_tls,
                                         max_version=self.settings.max_tls)
                context.verify_mode = ssl.CERT_REQUIRED
                # A lab's time may be virtual (scenarios replay 2015): the phone's certificate is checked
                # against the lab's clock in ``_session``, not against this machine's.
                context.verify_flags |= _X509_V_FLAG_NO_CHECK_TIME
                if trust:
                    context.load_verify_locations(cadata=b"".join(trust))
                self._contexts = {trust: context}  # only the current trust store is kept
            return context

    # -- one connection -----------------------------------------------------------------

    def connection(self, sock: socket.socket, peer: str, protocol: str, tls: bool) -> None:
        """Serve one connection to its end (called in its own thread by the listener)."""
        if not self._slots.acquire(blocking=False):
            self.trace.info(f"{protocol} connection from {peer}: too many connections, refused")
            return
        try:
            sock.settimeout(self.settings.timeout)
            self._session(sock, peer, protocol, tls, time.monotonic() + self.settings.timeout)
        except TimeoutError:
            self.trace.info(f"{protocol} connection from {peer}: nothing whole received within "
                            f"{self.settings.timeout:g} s, closing connection")
        except Exception as error:  # noqa: BLE001 - one bad connection never stops the server
            self.trace.info(f"{protocol} connection from {peer}: closing connection: {error_reason(error)}")
        finally:
            self._slots.release()

    def _session(self, sock: socket.socket, peer: str, protocol: str, tls: bool, ends: float) -> None:
        certificate = None
        connection: socket.socket = sock
        if tls:
            try:
                connection = self._context().wrap_socket(sock, server_side=True)
            except ssl.SSLError as error:
                self._handshake_alarm(peer, error)
                _linger(sock)
                return
            certificate = x509.load_der_x509_certificate(connection.getpeercert(binary_form=True))
            if not self._valid_now(certificate):
                self._count("refused")
                self.trace.alarm(f"AuthenticationFailed - TLS handshake with {peer} failed: the phone's certificate "
                                 f"is not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                                 f"{certificate.not_valid_after_utc:%Y-%m-%d})")
                _linger(connection)
                return
        try:
            request = _read_request(connection, protocol, ends)
        except SignallingFormatError as error:
            self.trace.info(f"{protocol} connection from {peer}: not a register message ({error}), "
                            "closing connection")
            return
        if request is None:
            self.trace.info(f"{protocol} connection from {peer}: closed before a whole register message")
            return
        device = request.device
        if device is None:
            self.trace.info(f"{protocol} REGISTER from {peer} names no device "
                            f"({sip.DEVICE_NAME_PARAMETER} missing from Contact)")
            if request.answer_bad is not None:
                connection.sendall(request.answer_bad("the Contact header names no device"))
            return
        if certificate is not None and not names_device(certificate, device, sip_uri=True):
            self._count("refused")
            self._name_mismatch(protocol, certificate, device, peer)
            return
        mode = self._security_mode(device)
        if not tls and mode in (2, 3):
            self._count("refused")
            self.trace.info(f"{protocol} registration of {device} from {peer} rejected: its security profile "
                            f"(deviceSecurityMode {mode}) requires TLS, it came over TCP Node ID:{self._node}")
            connection.sendall(request.answer_refused("Registration Rejected: Security"))
            return
        self._count("registered")
        self.trace.info(f"{protocol} device {device} registered over {'TLS' if tls else 'TCP'} from {peer}"
                        + (f" with {certificate.subject.rfc4514_string()}" if certificate is not None else "")
                        + f" Node ID:{self._node}")
        connection.sendall(request.answer_ok())

    def _name_mismatch(self, protocol: str, certificate: x509.Certificate, device: str, peer: str) -> None:
        """CUCM's lines for a certificate that does not name the device, as Cisco TAC 211304 publishes them
        (the process id and the device type, which the lab does not know, are the emulator's: 0)."""
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        received = str(names[0].value) if names else certificate.subject.rfc4514_string()
        station = "SIPStationD(0)" if protocol == "SIP" else "StationD(0)"
        address = peer.rsplit(":", 1)[0]
        self.trace.info(f"{station} - validTLSConnection:TLS InvalidX509NameInCertificate, Rcvd={received} , "
                        f"Expected={device}. Will check SAN the next")
        self.trace.info(f"{station} - validTLSConnection:TLS InvalidX509NameInCertificate Error , did not find "
                        f"matching SAN either, Rcvd={received}, Expected={device}")
        self.trace.info(f"ConnectionFailure - Unified CM failed to open a TLS connection for the indicated device "
                        f"Device Name:{device} IP Address:{address} IPV6Address: Device type:0 Reason code:2 "
                        f"App ID:Cisco CallManager Cluster ID:StandAloneCluster Node ID:{self._node}")
        self.trace.alarm(f"AlarmClass: CallManager, AlarmName: ConnectionFailure, AlarmSeverity: Error, "
                         f"AlarmMessage: , AlarmDescription: Unified CM failed to open a TLS connection for the "
                         f"indicated device, AlarmParameters: DeviceName:{device}, IPAddress:{address}, "
                         f"IPV6Address:, DeviceType:0, Reason:2, AppID:Cisco CallManager, "
                         f"ClusterID:StandAloneCluster, NodeID:{self._node},")

    def _valid_now(self, certificate: x509.Certificate) -> bool:
        now = self._clock()
        now = now if now.tzinfo is not None else now.astimezone()
        return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def _handshake_alarm(self, peer: str, error: ssl.SSLError) -> None:
        reason = error_reason(error)
        if "CERTIFICATE" in reason.upper():
            self.trace.alarm(f"AuthenticationFailed - TLS handshake with {peer} failed: the phone's certificate "
                             f"does not chain to CallManager-trust ({reason}) Node ID:{self._node}")
        else:
            self.trace.alarm(f"InvalidTLSCipher - TLS handshake with {peer} failed: no common TLS version or "
                             f"cipher ({reason}) Node ID:{self._node}")


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: CallManagerServer, protocol: str, tls: bool) -> None:
        self.owner, self.protocol, self.tls = owner, protocol, tls
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Listener

    def handle(self) -> None:
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        self.server.owner.connection(self.request, peer, self.server.protocol, self.server.tls)


def _linger(sock: socket.socket, seconds: float = 1.0) -> None:
    """After a refused handshake: stop sending, read what the phone still sends, then close.

    With TLS 1.3 the phone's first request may already be on its way when the alert is
    sent; closing with it unread would reset the connection and the phone would lose the
    alert that tells it why (OpenSSL's "unknown CA")."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(_READ_BYTES):
                return


def _read_request(connection: socket.socket, protocol: str, ends: float) -> _Request | None:
    buffer = b""
    while True:
        request = _parse(protocol, buffer)
        if request is not None:
            return request
        left = ends - time.monotonic()
        if left <= 0:
            raise TimeoutError
        connection.settimeout(left)
        chunk = connection.recv(_READ_BYTES)
        if not chunk:
            return None
        buffer += chunk


def _parse(protocol: str, buffer: bytes) -> _Request | None:
    if protocol == "SCCP":
        frame, _ = skinny.read_frame(buffer)
        if frame is None:
            return None
        message = skinny.RegisterMessage.from_frame(frame)
        return _Request(message.device_name or None, lambda: skinny.RegisterAck().frame().encode(),
                        lambda text: skinny.RegisterReject(text).frame().encode())
    message, _ = sip.read_message(buffer)
    if message is None:
        return None
    if message.method != "REGISTER":
        raise SignallingFormatError(f"a SIP {message.method or 'response'} where a REGISTER was due")
    tag = f"cm{abs(hash(message.header('call-id'))) % 10**8:08d}"
    return _Request(
        message.device_name,
        lambda: sip.response_to(message, 200, to_tag=tag).encode(),
        lambda text: sip.response_to(message, 403, to_tag=tag, warning=text).encode(),
        lambda text: sip.response_to(message, 400, to_tag=tag, warning=text).encode())


@attrs.frozen
class RunningCallManager:
    """A running CallManager: where to reach it, and the server (its counts)."""

    host: str
    ports: Mapping[str, int]
    server: CallManagerServer = attrs.field(repr=False)


@contextlib.contextmanager
def running_callmanager(certificate: str | Path, key: str | Path, *,
                        trusted: Callable[[], Sequence[x509.Certificate]],
                        security_mode: Callable[[str], int] = lambda device: 1,
                        settings: SignallingSettings = SignallingSettings(),
                        trace: Callable[[str], object] | None = None,
                        clock: Callable[[], datetime] = datetime.now,
                        node: str = "cucm") -> Iterator[RunningCallManager]:
    """Run a ``CallManagerServer`` in background threads; stop it on exit."""
    with CallManagerServer(certificate, key, trusted=trusted, security_mode=security_mode, settings=settings,
                           trace=trace, clock=clock, node=node) as server:
        yield RunningCallManager(settings.host, server.ports, server)
