"""The phone's transports: the machine's Fetch and AskTvs effects carried over real sockets.

``TftpTransport`` fetches with ``phone.tftp.TftpFetcher`` (tftpy) and turns its
result into the machine's FileFetched / FileMissing / FileFailed events;
``TvsTransport`` sends one TVS request with ``phone.device.tvs`` and turns the
result into TvsAnswered / TvsFailed, mapping each client outcome to the
failure kinds the machine's fall-back decision needs (docs/tvs.md).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from phone.errors import UsageError
from phone.device.boot import FetchFile
from phone.wire.http import HTTP_PORT, HTTPS_PORT
from phone.firmware.machine import (
    HTTPS,
    QUERY_CERT_REQ,
    TFTP,
    AskTvs,
    Fetch,
    FileFailed,
    FileFetched,
    FileMissing,
    TvsAnswered,
    TvsAttempt,
    TvsFailed,
    TvsFailure,
)
from phone.firmware.models import PhoneModel
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.wire.tvs import TvsMessage
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsResult, ask_tvs
from phone.tls import ClientIdentity

if TYPE_CHECKING:
    from phone.device.http import HttpResult

#: Largest file a phone downloads when the machine sets no limit (configs, CTLs).
DEFAULT_MAX_BYTES = 1024 * 1024


class TftpTransport:
    """Fetch effects over TFTP from one server, with the model's timeouts and retries."""

    def __init__(self, host: str, port: int, model: PhoneModel, *, blksize: int | None = None,
                 deadline: float = 30.0) -> None:
        settings = model.settings
        self.server = host
        self._fetcher = TftpFetcher(host, port, timeout=settings.tftp_timeout_seconds,
                                    retries=settings.tftp_retries, deadline=deadline, blksize=blksize,
                                    max_bytes=DEFAULT_MAX_BYTES)

    def __call__(self, request: Fetch) -> FileFetched | FileMissing | FileFailed:
        result = self._fetcher.fetch(request.name, max_bytes=request.max_bytes or DEFAULT_MAX_BYTES)
        if result.status is FetchStatus.FOUND:
            return FileFetched(request.name, result.data or b"", server=self.server)
        if result.status is FetchStatus.NOT_FOUND:
            return FileMissing(request.name)
        return FileFailed(request.name, f"{result.status.value}: {result.reason}")


class HttpTransport:
    """Fetch effects over HTTP (and HTTPS, pinned) from the TFTP server's host, docs/http.md.

    ``http_port`` / ``https_port`` None: that service is off (a request for it fails at once,
    and the machine turns to TFTP). Size cap and deadline as the TFTP transport's.
    """

    def __init__(self, host: str, model: PhoneModel, *, http_port: int | None = HTTP_PORT,
                 https_port: int | None = HTTPS_PORT, deadline: float = 30.0) -> None:
        # urllib3 is imported by the phones that use HTTP, not by every command that imports transports.
        from phone.device.http import HttpFetcher

        settings = model.settings
        common = dict(connect_timeout=settings.http_connect_timeout_seconds,
                      read_timeout=settings.tftp_timeout_seconds, deadline=deadline, max_bytes=DEFAULT_MAX_BYTES)
        self.http = HttpFetcher(host, http_port, **common) if http_port else None
        self.https = (HttpFetcher(host, https_port, https=True, tls_versions=model.tls_versions, **common)
                      if https_port else None)

    def __call__(self, request: Fetch, *, deadline: float | None = None) -> FileFetched | FileMissing | FileFailed:
        """Fetch over the request's transport; ``deadline`` (seconds) shortens this one download's."""
        fetcher = self.https if request.transport == HTTPS else self.http
        if fetcher is None:
            return FileFailed(request.name, f"{request.transport.upper()} is off", transport=request.transport)
        if deadline is not None:
            fetcher = attrs.evolve(fetcher, deadline=max(0.1, min(deadline, fetcher.deadline)))
        result = fetcher.fetch(request.name, max_bytes=request.max_bytes or DEFAULT_MAX_BYTES, pinned=request.pinned)
        return http_event(request, result)


def http_event(request: Fetch, result: HttpResult) -> FileFetched | FileMissing | FileFailed:
    """The machine's event for an HTTP result: the file, or why not (a 404 reads as "not found")."""
    server = f"{result.server[0]}:{result.server[1]}"
    if result.found:
        return FileFetched(request.name, result.data or b"", server=server, transport=request.transport)
    if result.http_status == 404:
        return FileMissing(request.name, transport=request.transport)
    return FileFailed(request.name, f"{result.outcome.value}: {result.reason}", transport=request.transport)


class FetchRouter:
    """Fetch effects to the transport they name: TFTP to ``tftp``, HTTP and HTTPS to ``http``."""

    def __init__(self, tftp: FetchFile, http: FetchFile | None = None) -> None:
        self.tftp, self.http = tftp, http

    def __call__(self, request: Fetch) -> FileFetched | FileMissing | FileFailed:
        if request.transport == TFTP:
            return self.tftp(request)
        if self.http is None:
            return FileFailed(request.name, "this phone has no HTTP service to ask", transport=request.transport)
        return self.http(request)


#: The TVS client's outcomes as the machine's failure kinds (docs/tvs.md: only a server
#: that drops the request or answers nothing useful is worth the type-1 fall-back).
_FAILURES = {
    ConnectionOutcome.REFUSED: TvsFailure.UNREACHABLE,
    ConnectionOutcome.CONNECT_TIMEOUT: TvsFailure.UNREACHABLE,
    ConnectionOutcome.TLS_FAILED: TvsFailure.UNREACHABLE,
    ConnectionOutcome.HANDSHAKE_TIMEOUT: TvsFailure.UNREACHABLE,
    ConnectionOutcome.UNTRUSTED_SERVER: TvsFailure.UNTRUSTED_SERVER,
    ConnectionOutcome.DROPPED: TvsFailure.DROPPED,
    ConnectionOutcome.NO_ANSWER: TvsFailure.TIMEOUT,
    ConnectionOutcome.MALFORMED: TvsFailure.MALFORMED,
}


def tvs_request(ask: AskTvs, request_id: int) -> TvsMessage:
    """The TVS message an AskTvs effect stands for (docs/tvs.md)."""
    if ask.message_type == QUERY_CERT_REQ:
        return TvsMessage.query_request(request_id, ask.device_name, ask.subject or "", ask.issuer or "",
                                        ask.serial or b"")
    if ask.certificate is None:
        raise UsageError("a CERT_VERIFICATION request needs the certificate to verify")
    return TvsMessage.verification_request(request_id, ask.device_name, ask.certificate)


def tvs_event(result: TvsResult) -> TvsAnswered | TvsFailed:
    """The machine's event for a client result: the answer, or how the request failed."""
    answered = result.attempts[-1] if result.response is not None and result.attempts else None
    attempts = tuple(
        TvsAttempt(a.server, a.type, a.status, tuple(a.roles or ()), a.error)
        if a is not answered else
        TvsAttempt(a.server, a.type, a.status, tuple(a.roles or ()), a.error,
                   bytes_sent=len(result.request.encode()), bytes_received=len(result.response.encode()))
        for a in result.attempts
    )
    response, last = result.response, (result.attempts[-1] if result.attempts else None)
    if response is None or last is None:
        kind = _FAILURES.get(last.outcome, TvsFailure.UNREACHABLE) if last else TvsFailure.UNREACHABLE
        error = f"{last.outcome.value}: {last.error}" if last else "no TVS server to ask"
        return TvsFailed(kind, error, attempts)
    return TvsAnswered(
        last.server, status=response.status if response.status is not None else 1,
        roles=tuple(response.roles or ()), ttl=response.ttl, certificate=response.certificate,
        attempts=attempts,
    )


class TvsTransport:
    """AskTvs effects over TLS with the model's TLS versions (and the phone's LSC when given)."""

    #: Real phones number their requests 1001, 1002, … (the request id of the exchange in Cisco TAC 213407).
    FIRST_REQUEST_ID = 1001

    def __init__(self, model: PhoneModel, *, client_cert: Path | None = None, client_key: Path | None = None,
                 timeout: float | None = None) -> None:
        wait = timeout if timeout is not None else model.settings.tvs_timeout_seconds
        identity = ClientIdentity(client_cert, client_key) if client_cert and client_key else None
        self.settings = TvsClientSettings(tls_versions=model.tls_versions, connect_timeout=wait,
                                          handshake_timeout=wait, response_timeout=wait, identity=identity)
        self._request_ids = itertools.count(self.FIRST_REQUEST_ID)

    def __call__(self, ask: AskTvs) -> TvsAnswered | TvsFailed:
        request = tvs_request(ask, next(self._request_ids))
        return tvs_event(ask_tvs(ask.members, request, ask.pinned, self.settings))
