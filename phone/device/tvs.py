"""The phone's TVS client: one request, one TLS connection, pinned server (docs/tvs.md).

The phone accepts a TVS server only when the certificate it presents is, byte
for byte, one of the TVS-role (21) certificates of its ITL; no host name
check, no CA. A server that is not pinned is refused before a single byte of
the request is written. Members of the configuration's ``<TVS>`` list are
tried in priority order (lower first); each attempt is recorded with a
``ConnectionOutcome`` that tells apart what the phone state machine needs to decide its
strategy (docs/tvs.md: fall back from QUERY to CERT_VERIFICATION when a server
drops the connection or answers nothing useful):

- ``dropped``: the server closed the connection without a byte of answer
  (usecallmanager's ``tvsd`` does this with a type 3 request);
- ``no_answer``: the connection stayed open but no complete answer arrived
  within ``response_timeout``;
- ``malformed``: an answer arrived but is truncated, does not decode, or
  answers another type or request id.

``ask_tvs`` is blocking: a fleet runs one boot per thread, so each phone's
client is as simple as the phone's own.
"""

from __future__ import annotations

import enum
import socket
import ssl
import time
from collections.abc import Collection, Iterable

import attrs

from phone.errors import TransportError, TvsProtocolError, UsageError
from phone.wire.addresses import host_problem
from phone.wire.config import TvsMember
from phone.wire.tvs import HEADER_SIZE, MAX_PAYLOAD, RESPONSE_TO, TvsHeader, TvsMessage
from phone.tls import ClientIdentity, client_context, error_reason



class ConnectionOutcome(str, enum.Enum):
    """How one attempt ended."""

    ANSWERED = "answered"
    REFUSED = "refused"                      # TCP connection refused, unreachable, unknown host
    CONNECT_TIMEOUT = "connect_timeout"
    TLS_FAILED = "tls_failed"                # handshake failed: versions, alert, not TLS
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    UNTRUSTED_SERVER = "untrusted_server"    # certificate not pinned: nothing was sent
    DROPPED = "dropped"                      # closed without a byte of answer
    NO_ANSWER = "no_answer"                  # no complete answer in time
    MALFORMED = "malformed"                  # truncated, undecodable or mismatched answer


#: Outcomes after which the next member is tried. OPEN (docs/tvs.md says only
#: "fail over to the next"): by default every failure, answers never.
DEFAULT_FAILOVER = frozenset(outcome for outcome in ConnectionOutcome if outcome is not ConnectionOutcome.ANSWERED)


@attrs.frozen
class TvsClientSettings:
    """Per-model and per-lab settings of the client."""

    #: TLS versions the phone model speaks (docs/models.md), e.g. ("1.0",) for a 7965.
    tls_versions: tuple[str, ...] = attrs.field(default=("1.2",), converter=tuple)
    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0
    #: From sending the request to the last byte of the answer.
    response_timeout: float = 5.0
    #: The phone's LSC or MIC, presented when the server asks for one.
    identity: ClientIdentity | None = None
    seclevel: int = 0
    max_payload: int = MAX_PAYLOAD
    failover_on: frozenset[ConnectionOutcome] = DEFAULT_FAILOVER


@attrs.frozen
class TvsConnectionAttempt:
    """One connection to one member (the ``tvs_requests`` rows of ``phone boot --json``, docs/phone.md)."""

    server: str
    type: int
    outcome: ConnectionOutcome
    status: int | None = None
    roles: tuple[int, ...] | None = None
    error: str | None = None
    #: Negotiated TLS version ("TLSv1", "TLSv1.2", …) once a handshake completed.
    tls_version: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"server": self.server, "type": self.type, "status": self.status,
                "roles": None if self.roles is None else list(self.roles), "error": self.error,
                "outcome": self.outcome.value, "tls_version": self.tls_version}


@attrs.frozen
class TvsResult:
    """Every attempt in order, and the decoded response of the one that answered (or None)."""

    request: TvsMessage
    attempts: tuple[TvsConnectionAttempt, ...]
    response: TvsMessage | None

    @property
    def outcome(self) -> ConnectionOutcome | None:
        """The last attempt's outcome (None when no member was tried)."""
        return self.attempts[-1].outcome if self.attempts else None


class _Failed(Exception):
    def __init__(self, outcome: ConnectionOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _ordered(members: Iterable[TvsMember]) -> list[TvsMember]:
    ordered = sorted(members, key=lambda member: member.priority)
    if not ordered:
        raise UsageError("no TVS server to ask (the configuration lists no TVS member)")
    return ordered


def _prepare(request: TvsMessage, pinned: Collection[bytes]) -> tuple[bytes, frozenset[bytes]]:
    if not request.is_request:
        raise UsageError(f"{request.type.name} is not a request")
    pins = frozenset(bytes(der) for der in pinned)
    if not pins:
        raise UsageError("no TVS certificate to pin: TVS is used only when the ITL holds a TVS record"
                         " (docs/phone.md)")
    return request.encode(), pins


def _check_pin(der: bytes | None, pins: frozenset[bytes]) -> None:
    if der is None or der not in pins:
        raise _Failed(ConnectionOutcome.UNTRUSTED_SERVER,
                      "server certificate is not a TVS certificate of the ITL; request not sent")


def _header(head: bytes, settings: TvsClientSettings) -> TvsHeader:
    if not head:
        raise _Failed(ConnectionOutcome.DROPPED, "server closed the connection without answering")
    if len(head) < HEADER_SIZE:
        raise _Failed(ConnectionOutcome.MALFORMED, f"answer truncated after {len(head)} bytes")
    try:
        return TvsHeader.decode(head, settings.max_payload)
    except TvsProtocolError as error:
        raise _Failed(ConnectionOutcome.MALFORMED, str(error)) from None


def _response(request: TvsMessage, frame: bytes, header: TvsHeader, server: str,
              tls_version: str | None) -> tuple[TvsConnectionAttempt, TvsMessage]:
    """Decode the answer and check that it answers this request."""
    if len(frame) < HEADER_SIZE + header.length:
        raise _Failed(ConnectionOutcome.MALFORMED, f"answer truncated after {len(frame)} of "
                                         f"{HEADER_SIZE + header.length} bytes")
    try:
        response = TvsMessage.decode(frame, len(frame))
    except TvsProtocolError as error:
        raise _Failed(ConnectionOutcome.MALFORMED, str(error)) from None
    expected = RESPONSE_TO[request.type]
    if response.type != expected:
        raise _Failed(ConnectionOutcome.MALFORMED, f"expected {expected.name}, got {response.type.name}")
    if response.request_id != request.request_id:
        raise _Failed(ConnectionOutcome.MALFORMED, f"expected request id {request.request_id}, "
                                         f"got {response.request_id}")
    if response.status is None:
        raise _Failed(ConnectionOutcome.MALFORMED, f"{response.type.name} without STATUS")
    return TvsConnectionAttempt(server, int(request.type), ConnectionOutcome.ANSWERED, response.status, response.roles,
                      tls_version=tls_version), response


def _failure(step: str, error: BaseException, settings: TvsClientSettings) -> _Failed:
    """The outcome of a socket or TLS error at ``step`` ("connect", "handshake", "exchange")."""
    timed_out = isinstance(error, TimeoutError)
    if step == "connect":
        if timed_out:
            return _Failed(ConnectionOutcome.CONNECT_TIMEOUT, f"no TCP connection within {settings.connect_timeout} s")
        return _Failed(ConnectionOutcome.REFUSED, f"cannot connect: {error_reason(error)}")
    if step == "handshake":
        if timed_out:
            return _Failed(ConnectionOutcome.HANDSHAKE_TIMEOUT, f"no TLS handshake within {settings.handshake_timeout} s")
        return _Failed(ConnectionOutcome.TLS_FAILED, f"TLS handshake failed: {error_reason(error)}")
    if timed_out:
        return _Failed(ConnectionOutcome.NO_ANSWER, f"no complete answer within {settings.response_timeout} s")
    return _Failed(ConnectionOutcome.DROPPED, f"connection lost: {error_reason(error)}")


#: What connecting can raise besides OSError: the IDNA codec's UnicodeError for a name it
#: cannot encode ("a..b"), ValueError for a NUL in the name or a port out of range, and our
#: own TransportError for a member ``_check_address`` refuses. A member comes from a stored
#: configuration, i.e. from a file a server sent.
_UNCONNECTABLE = (OSError, UnicodeError, ValueError, OverflowError, TransportError)


def _check_address(member: TvsMember) -> None:
    problem = host_problem(member.address)
    if problem is not None:
        raise TransportError(f"address {member.address[:80]!r}: {problem}")
    if not 0 < member.port < 65536:
        raise TransportError(f"port {member.port} is not 1-65535")


def _failed(member: TvsMember, request: TvsMessage, failure: _Failed,
            tls_version: str | None = None) -> TvsConnectionAttempt:
    return TvsConnectionAttempt(member.server, int(request.type), failure.outcome, error=str(failure),
                      tls_version=tls_version)


# -- blocking ------------------------------------------------------------------

def _recv_exactly(sock: ssl.SSLSocket, size: int, deadline: float) -> bytes:
    """Up to ``size`` bytes; fewer only at end of stream; TimeoutError at the deadline."""
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _attempt(member: TvsMember, request: TvsMessage, frame: bytes, pins: frozenset[bytes],
             settings: TvsClientSettings, context: ssl.SSLContext) -> tuple[TvsConnectionAttempt, TvsMessage | None]:
    try:
        _check_address(member)
        sock = socket.create_connection((member.address, member.port), timeout=settings.connect_timeout)
    except _UNCONNECTABLE as error:
        return _failed(member, request, _failure("connect", error, settings)), None
    version = None
    try:
        sock.settimeout(settings.handshake_timeout)
        try:
            tls = context.wrap_socket(sock, server_side=False, do_handshake_on_connect=False)
            sock = tls
            tls.do_handshake()
        except OSError as error:  # ssl.SSLError and TimeoutError are OSErrors
            raise _failure("handshake", error, settings) from None
        version = tls.version()
        _check_pin(tls.getpeercert(binary_form=True), pins)
        deadline = time.monotonic() + settings.response_timeout
        try:
            tls.settimeout(settings.response_timeout)
            tls.sendall(frame)
            head = _recv_exactly(tls, HEADER_SIZE, deadline)
            header = _header(head, settings)
            frame_in = head + _recv_exactly(tls, header.length, deadline)
        except OSError as error:
            raise _failure("exchange", error, settings) from None
        return _response(request, frame_in, header, member.server, version)
    except _Failed as failure:
        return _failed(member, request, failure, version), None
    finally:
        sock.close()


def ask_tvs(members: Iterable[TvsMember], request: TvsMessage, pinned: Collection[bytes],
            settings: TvsClientSettings = TvsClientSettings()) -> TvsResult:
    """Send ``request`` to the members in priority order until one answers (blocking)."""
    frame, pins = _prepare(request, pinned)
    context = client_context(settings.tls_versions, settings.identity, settings.seclevel)
    attempts: list[TvsConnectionAttempt] = []
    for member in _ordered(members):
        attempt, response = _attempt(member, request, frame, pins, settings, context)
        attempts.append(attempt)
        if attempt.outcome not in settings.failover_on:
            return TvsResult(request, tuple(attempts), response)
    return TvsResult(request, tuple(attempts), None)
