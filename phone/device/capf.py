"""The phone's CAPF client: one certificate operation over TLS, blocking (docs/capf.md).

``enrol`` carries out the machine's ``EnrolCapf`` effect. For each CAPF server
of the configuration, in order: a TCP connection, a TLS handshake with the
model's TLS versions (a 79xx speaks TLS 1.0), then the server's certificate is
checked before a byte is read or written: byte for byte a CAPF record of the
installed CTL or ITL, or else vouched for by TVS with role CAPF
(``phone.firmware.capf_plan``). A server that cannot be reached, fails the
handshake, stays silent or is not trusted is recorded and the next one is
tried (connect failure or timeout: next server, as Cisco's softphone stack
does). Once a trusted server has spoken, its session decides the outcome.

The session (``phone.firmware.capf_session``) decides every answer; this
module only moves frames: reads may arrive split anywhere (``FrameBuffer``),
each message must arrive within the timeout, a frame may not announce more
than ``MAX_BODY`` bytes and a session may not send more than ``max_bytes`` in
all. Each answer goes out in one write, header and body together (the
usecallmanager.nz CAPF server notes that phones stall otherwise).

Failures are ``CapfClientError`` subclasses (remote errors: the server or the
network is at fault), each with one line saying what happened.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import attrs

from phone.errors import RemoteError, TransportError
from phone.firmware.capf_plan import EnrolCapf, tvs_question, vouch_problem
from phone.firmware.capf_session import (
    CapfCredentials,
    CapfOutcome,
    CapfSession,
    KeySource,
    blocked_reason,
    generate_key,
)
from phone.firmware.machine import (
    CERT_VERIFICATION_REQ,
    QUERY_CERT_REQ,
    AskTvs,
    CapfFinished,
    TvsAnswered,
    TvsFailed,
)
from phone.tls import client_context, error_reason
from phone.wire.addresses import host_problem
from phone.wire.capf import MAX_BODY, CapfProtocolError, FrameBuffer
from phone.wire.config import CapfServer

#: Most bytes one session may receive: a handful of frames of at most ``MAX_BODY`` each.
MAX_SESSION_BYTES = 8 * MAX_BODY
_READ_SIZE = 4096

AskTvsServer = Callable[[AskTvs], "TvsAnswered | TvsFailed"]


class CapfClientError(RemoteError):
    """A CAPF server that could not be used, or a session that broke off (one line)."""


class CapfUnreachable(CapfClientError):
    """No TCP connection to the server (refused, unreachable, timed out, a bad address)."""


class CapfHandshakeFailed(CapfClientError):
    """The TLS handshake failed or timed out (versions, alert, not TLS)."""


class CapfUntrusted(CapfClientError):
    """The server's certificate is neither a CAPF record of the CTL/ITL nor vouched for by TVS."""


class CapfTimeout(CapfClientError):
    """The server sent nothing (more) within the timeout."""


class CapfClosed(CapfClientError):
    """The server closed the connection before ending the session."""


class CapfTooLarge(CapfClientError):
    """The server sent more than a session may hold."""


@attrs.frozen
class CapfClientSettings:
    """How the client speaks: the model's TLS versions, the timeout, the size caps."""

    tls_versions: tuple[str, ...] = ("1.2",)
    timeout: float = 30.0
    seclevel: int = 0
    max_body: int = MAX_BODY
    max_bytes: int = MAX_SESSION_BYTES


def _check_address(server: CapfServer) -> None:
    problem = host_problem(server.address)
    if problem is not None:
        raise CapfUnreachable(f"CAPF {server.address[:80]!r}: {problem}")
    if not 0 < server.port < 65536:
        raise CapfUnreachable(f"CAPF {server.address}: port {server.port} is not 1-65535")


def connect(server: CapfServer, settings: CapfClientSettings) -> ssl.SSLSocket:
    """A TLS connection to ``server`` (the phone is the client and shows no certificate)."""
    name = f"{server.address}:{server.port}"
    _check_address(server)
    try:
        sock = socket.create_connection((server.address, server.port), timeout=settings.timeout)
    except TimeoutError:
        raise CapfUnreachable(f"CAPF {name}: no TCP connection within {settings.timeout:g} s") from None
    except (OSError, UnicodeError, ValueError, OverflowError, TransportError) as error:
        raise CapfUnreachable(f"CAPF {name}: cannot connect: {error_reason(error)}") from None
    context = client_context(tuple(settings.tls_versions), None, settings.seclevel)
    try:
        tls = context.wrap_socket(sock, server_side=False, do_handshake_on_connect=False)
        tls.settimeout(settings.timeout)
        tls.do_handshake()
    except TimeoutError:
        sock.close()
        raise CapfHandshakeFailed(f"CAPF {name}: no TLS handshake within {settings.timeout:g} s") from None
    except OSError as error:
        sock.close()
        raise CapfHandshakeFailed(f"CAPF {name}: TLS handshake failed: {error_reason(error)}") from None
    return tls


def run_session(tls: ssl.SSLSocket, session: CapfSession, settings: CapfClientSettings,
                *, name: str = "CAPF") -> CapfOutcome:
    """Carry ``session`` over the connection until the server ends it; raise on any break.

    Raises CapfTimeout, CapfClosed, CapfTooLarge or CapfProtocolError (a frame or
    message out of place); the session's outcome is returned only when it is done.
    """
    frames = FrameBuffer(settings.max_body)
    received = 0
    while not session.done:
        message = frames.next_frame()
        if message is None:
            deadline = time.monotonic() + settings.timeout
            while message is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CapfTimeout(f"{name}: nothing from the server within {settings.timeout:g} s "
                                      f"({'no AUTH_REQUEST' if session.session_id is None else 'mid-session'})")
                tls.settimeout(remaining)
                try:
                    chunk = tls.recv(_READ_SIZE)
                except TimeoutError:
                    continue
                except OSError as error:
                    raise CapfClosed(f"{name}: connection lost: {error_reason(error)}") from None
                if not chunk:
                    pending = f" ({frames.pending} bytes of an unfinished frame)" if frames.pending else ""
                    raise CapfClosed(f"{name}: the server closed the connection before END_SESSION{pending}")
                received += len(chunk)
                if received > settings.max_bytes:
                    raise CapfTooLarge(f"{name}: the server sent over {settings.max_bytes} bytes")
                frames.feed(chunk)
                message = frames.next_frame()
        for answer in session.receive(message):
            try:
                tls.settimeout(settings.timeout)
                tls.sendall(answer.encode())
            except OSError as error:
                raise CapfClosed(f"{name}: cannot send {answer.command.name}: {error_reason(error)}") from None
    assert session.outcome is not None  # a done session always has one
    return session.outcome


def _tvs_ask(plan: EnrolCapf, der: bytes, message_type: int) -> AskTvs | None:
    question = tvs_question(plan, der)
    if question is None:
        return None
    query = message_type == QUERY_CERT_REQ
    return AskTvs(message_type=message_type, device_name=plan.tvs_device_name or plan.device_name,
                  members=plan.tvs_members, pinned=plan.tvs_pinned,
                  tls_versions=plan.tvs_tls_versions or plan.tls_versions, timeout=plan.tvs_timeout,
                  subject=question.subject if query else None, issuer=question.issuer if query else None,
                  serial=question.serial if query else None,
                  certificate=None if query else question.certificate)


def check_server(plan: EnrolCapf, der: bytes | None, ask_tvs: AskTvsServer | None, name: str) -> None:
    """Raise CapfUntrusted unless ``der`` is a pinned CAPF certificate or TVS vouches for it
    (QUERY_CERT_REQ first, then CERT_VERIFICATION_REQ when the query got no useful answer)."""
    if der is None:
        raise CapfUntrusted(f"{name}: the server presented no certificate")
    if der in plan.pinned:
        return
    ask = _tvs_ask(plan, der, QUERY_CERT_REQ)
    if ask is None or ask_tvs is None:
        raise CapfUntrusted(f"{name}: the server's certificate is not a CAPF record of the CTL or ITL, "
                            "and there is no TVS to ask")
    answer = ask_tvs(ask)
    nothing_useful = ((isinstance(answer, TvsFailed) and answer.kind.worth_a_fallback)
                      or (isinstance(answer, TvsAnswered) and answer.status != 0 and answer.certificate is None))
    if nothing_useful:
        retry = _tvs_ask(plan, der, CERT_VERIFICATION_REQ)
        answer = ask_tvs(retry) if retry is not None else answer
    if isinstance(answer, TvsFailed):
        raise CapfUntrusted(f"{name}: the server's certificate is not in the CTL or ITL and TVS failed: "
                            f"{answer.error}")
    problem = vouch_problem(answer.status, tuple(answer.roles))
    if problem is not None:
        raise CapfUntrusted(f"{name}: {problem}")


def enrol(plan: EnrolCapf, credentials: CapfCredentials, *, keys: KeySource = generate_key,
          ask_tvs: AskTvsServer | None = None, settings: CapfClientSettings | None = None) -> CapfFinished:
    """Carry out ``plan`` (see the module docstring); the machine's ``CapfFinished``."""
    settings = settings or CapfClientSettings(tls_versions=plan.tls_versions, timeout=plan.timeout)
    blocked = blocked_reason(plan.auth_mode, credentials)
    if blocked is not None:
        return CapfFinished(CapfOutcome("failed", blocked))
    failures: list[tuple[str, str]] = []
    for server in plan.servers:
        name = f"{server.address}:{server.port}"
        session = CapfSession(plan.device_name, plan.auth_mode, credentials, phone_version=plan.phone_version,
                              ec_capable=plan.ec_capable, send_request_in_progress=plan.request_in_progress,
                              keys=keys)
        try:
            tls = connect(server, settings)
        except CapfClientError as error:
            failures.append((name, str(error)))
            continue
        try:
            check_server(plan, tls.getpeercert(binary_form=True), ask_tvs, f"CAPF {name}")
            return CapfFinished(run_session(tls, session, settings, name=f"CAPF {name}"), name, tuple(failures))
        except CapfTimeout as error:
            if session.session_id is not None:
                return CapfFinished(CapfOutcome("failed", str(error), session.operation), name, tuple(failures))
            failures.append((name, str(error)))  # silent from the start: as unreachable, next server
        except CapfUntrusted as error:
            failures.append((name, str(error)))
        except (CapfClientError, CapfProtocolError) as error:
            return CapfFinished(CapfOutcome("failed", str(error), session.operation), name, tuple(failures))
        finally:
            tls.close()
    tried = "; ".join(reason for _, reason in failures) or "the configuration lists no CAPF server"
    return CapfFinished(CapfOutcome("failed", f"no CAPF server could be used: {tried}"), None, tuple(failures))


class CapfTransport:
    """The phone's ``EnrolCapf`` transport: what the user typed, where keys come from, TVS to ask."""

    def __init__(self, *, auth_string: str | None = None, keys: KeySource = generate_key,
                 ask_tvs: AskTvsServer | None = None, timeout: float | None = None) -> None:
        self.auth_string = auth_string
        self.keys = keys
        self.ask_tvs = ask_tvs
        self.timeout = timeout

    def __call__(self, plan: EnrolCapf, credentials: CapfCredentials) -> CapfFinished:
        if self.auth_string is not None:
            credentials = attrs.evolve(credentials, auth_string=self.auth_string)
        settings = CapfClientSettings(tls_versions=plan.tls_versions,
                                      timeout=self.timeout if self.timeout is not None else plan.timeout)
        return enrol(plan, credentials, keys=self.keys, ask_tvs=self.ask_tvs, settings=settings)
