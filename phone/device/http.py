"""Fetching one file over HTTP or HTTPS into memory, as a phone provisioning over HTTP does (docs/http.md).

``HttpFetcher(host, port).fetch(name)`` makes one ``GET /<name>`` and always
returns an ``HttpResult``; nothing the network or the server does makes it raise:

- ``found``: status 200 and the whole body is in ``data``;
- ``status``: the server answered with another status (CUCM answers 503 for a
  CTL it does not have, Cisco TAC 214535); ``http_status`` holds it;
- ``refused``, ``timed_out``: nothing accepted the connection, or nothing came
  back in time (``connect_timeout`` for the connection, ``read_timeout`` for each
  read, ``deadline`` for the whole exchange: a server that drips its answer is
  cut off there, headers included);
- ``untrusted_server``: over HTTPS, the server's certificate is not one of the
  pinned certificates (the TFTP records of the phone's trust lists); the request
  is never sent;
- ``failed``: anything else, with a one-line ``reason``: a body larger than the
  size cap (announced or not), a garbled status line or headers, a TLS failure.

The machine (``phone.firmware.machine``) turns every outcome but ``found`` into
one TFTP try of the same name. urllib3 reads and writes HTTP; this module adds
the phone's limits: the size cap, the overall deadline and the certificate pin.
Like the TFTP client, an HttpFetcher holds only settings and can serve many threads.
"""

from __future__ import annotations

import enum
import functools
import http.client
import socket
import ssl
import threading
import time

import attrs
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from phone.errors import UsageError
from phone.tls import client_context, error_reason
from phone.wire.http import HTTP_PORT, url_path

#: What urllib3 and http.client raise for a peer that breaks the protocol or the connection.
_BROKEN = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError)

_READ_SIZE = 64 * 1024


class HttpOutcome(enum.StrEnum):
    """How a fetch ended; the values are the strings used in reasons and JSON."""

    FOUND = "found"
    STATUS = "status"
    REFUSED = "refused"
    TIMED_OUT = "timed_out"
    UNTRUSTED_SERVER = "untrusted_server"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class HttpResult:
    """The outcome of one GET: ``data`` when found, else a one-line ``reason``."""

    name: str
    outcome: HttpOutcome
    data: bytes | None = None
    reason: str = ""
    http_status: int | None = None
    elapsed: float = 0.0
    server: tuple[str, int]

    @property
    def found(self) -> bool:
        return self.outcome is HttpOutcome.FOUND


class _Stop(Exception):
    """Ends a fetch early with its outcome."""

    def __init__(self, outcome: HttpOutcome, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.http_status = outcome, reason, http_status


@attrs.frozen
class HttpFetcher:
    """Settings for HTTP(S) downloads from one server; ``fetch`` does the work.

    ``https`` with ``tls_versions`` makes it speak TLS; the server's certificate is
    then checked against the ``pinned`` certificates given to ``fetch`` (no CA, no
    host name: the phone's trust lists are its only anchors).
    """

    host: str
    port: int = HTTP_PORT
    https: bool = attrs.field(default=False, kw_only=True)
    tls_versions: tuple[str, ...] = attrs.field(default=("1.2",), kw_only=True, converter=tuple)
    connect_timeout: float = attrs.field(default=5.0, kw_only=True)
    read_timeout: float = attrs.field(default=5.0, kw_only=True)
    deadline: float = attrs.field(default=30.0, kw_only=True)
    max_bytes: int = attrs.field(default=1 << 20, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise UsageError(f"HTTP port must be 1-65535, not {self.port}")
        if not (self.connect_timeout > 0 and self.read_timeout > 0 and self.deadline > 0):
            raise UsageError("HTTP timeouts and deadline must be positive")
        if self.max_bytes < 0:
            raise UsageError(f"HTTP size cap must be >= 0, not {self.max_bytes}")

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    def fetch(self, name: str, *, max_bytes: int | None = None, pinned: tuple[bytes, ...] = ()) -> HttpResult:
        """GET ``name``; never raises for what the network or the server does (UsageError for a bad name)."""
        path = url_path(name)
        cap = self.max_bytes if max_bytes is None else max_bytes
        started = time.monotonic()
        try:
            data, status = self._get(path, cap, frozenset(pinned), started + self.deadline)
            outcome, reason = HttpOutcome.FOUND, ""
        except _Stop as stop:
            data, status, outcome, reason = None, stop.http_status, stop.outcome, stop.reason
        return HttpResult(name=name, outcome=outcome, data=data, reason=reason, http_status=status,
                          elapsed=time.monotonic() - started, server=(self.host, self.port))

    def _connection(self, left: float) -> HTTPConnection:
        timeout = max(0.001, min(self.connect_timeout, left))
        if not self.https:
            return HTTPConnection(self.host, self.port, timeout=timeout)
        return HTTPSConnection(self.host, self.port, timeout=timeout, ssl_context=_https_context(self.tls_versions),
                               cert_reqs="CERT_NONE", assert_hostname=False)

    def _get(self, path: str, cap: int, pins: frozenset[bytes], deadline: float) -> tuple[bytes, int]:
        connection = self._connection(deadline - time.monotonic())
        # The per-read timeout bounds each wait, not a server that drips: at the deadline the
        # watchdog shuts the socket down, which ends any read in progress.
        expired = threading.Event()
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (connection, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                self._connect(connection, pins)
            except _Stop:
                _check_deadline(expired)  # a TLS handshake cut off at the deadline timed out
                raise
            try:
                connection.request("GET", path, headers={"Accept": "*/*", "Connection": "close",
                                                         "User-Agent": "phonetrust"},
                                   preload_content=False, decode_content=False)
                response = connection.getresponse()
                _check_deadline(expired)
                if response.status != 200:
                    raise _Stop(HttpOutcome.STATUS, f"HTTP {response.status} {response.reason}".rstrip(),
                                response.status)
                body = _body(response, cap, deadline)
                # A socket shut down by the watchdog reads as the end of the answer: never take it as the whole.
                _check_deadline(expired)
                return body, 200
            except _Stop:
                raise
            except _BROKEN as error:
                if expired.is_set():
                    raise _Stop(HttpOutcome.TIMED_OUT, "the answer was not complete by the deadline") from None
                if isinstance(error, (TimeoutError, socket.timeout, urllib3.exceptions.ReadTimeoutError)):
                    raise _Stop(HttpOutcome.TIMED_OUT, "no answer in time") from None
                raise _Stop(HttpOutcome.FAILED, _broken(error)) from None
        finally:
            watchdog.cancel()
            connection.close()

    def _connect(self, connection: HTTPConnection, pins: frozenset[bytes]) -> None:
        try:
            connection.connect()
        except urllib3.exceptions.NewConnectionError as error:  # (a subclass of ConnectTimeoutError)
            cause = error.__cause__ or error.__context__
            if isinstance(cause, ConnectionRefusedError):
                raise _Stop(HttpOutcome.REFUSED, "connection refused") from None
            if isinstance(cause, TimeoutError):
                raise _Stop(HttpOutcome.TIMED_OUT, "connection timed out") from None
            raise _Stop(HttpOutcome.REFUSED, f"unreachable: {error_reason(cause) if cause else error}") from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise _Stop(HttpOutcome.TIMED_OUT, "connection timed out") from None
        except (ssl.SSLError, urllib3.exceptions.SSLError) as error:
            raise _Stop(HttpOutcome.FAILED, f"TLS handshake failed: {_tls_reason(error)}") from None
        except _BROKEN as error:
            if isinstance(error, TimeoutError):
                raise _Stop(HttpOutcome.TIMED_OUT, "connection timed out") from None
            raise _Stop(HttpOutcome.FAILED, _broken(error)) from None
        # From now on every wait is a read (urllib3 sets the connection's timeout again before reading).
        connection.timeout = self.read_timeout
        if connection.sock is not None:
            connection.sock.settimeout(self.read_timeout)
        if self.https:
            peer = connection.sock.getpeercert(binary_form=True) if connection.sock is not None else None
            if peer is None or peer not in pins:
                raise _Stop(HttpOutcome.UNTRUSTED_SERVER,
                            "the server's certificate is not a TFTP record of the installed trust lists")


@functools.lru_cache(maxsize=16)
def _https_context(versions: tuple[str, ...]) -> ssl.SSLContext:
    """A client context of its own (urllib3 sets ALPN on the context it is given, and the
    cached ``client_context`` is shared with the TVS client): verifies nothing, the pin decides."""
    return client_context.__wrapped__(versions)


def _body(response: urllib3.response.HTTPResponse, cap: int, deadline: float) -> bytes:
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.strip().isdigit() and int(announced) > cap:
        raise _Stop(HttpOutcome.FAILED, f"the server announces {int(announced)} bytes, over the {cap}-byte cap")
    parts, size = [], 0
    while True:
        chunk = response.read1(_READ_SIZE, decode_content=False)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > cap:
            raise _Stop(HttpOutcome.FAILED, f"the body passes the {cap}-byte cap")
        if time.monotonic() > deadline:
            raise _Stop(HttpOutcome.TIMED_OUT, "the answer was not complete by the deadline")
        parts.append(chunk)


def _check_deadline(expired: threading.Event) -> None:
    if expired.is_set():
        raise _Stop(HttpOutcome.TIMED_OUT, "the answer was not complete by the deadline")


def _cut(connection: HTTPConnection, expired: threading.Event) -> None:
    """The deadline passed: shut the socket down so that a blocked read returns."""
    expired.set()
    sock = connection.sock
    if sock is not None:
        try:
            # The plain socket's shutdown: the TLS layer of the reading thread is left alone.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _tls_reason(error: BaseException) -> str:
    inner = error.args[0] if isinstance(error, urllib3.exceptions.SSLError) and error.args else error
    return error_reason(inner) if isinstance(inner, BaseException) else str(inner)


def _broken(error: BaseException) -> str:
    """One line for a peer that broke HTTP: http.client's own words where it has them."""
    while isinstance(error, urllib3.exceptions.ProtocolError) and error.args and isinstance(error.args[-1],
                                                                                            BaseException):
        error = error.args[-1]
    if isinstance(error, http.client.BadStatusLine):
        return f"not an HTTP status line: {str(error)[:60]!r}"
    if isinstance(error, http.client.IncompleteRead):
        got = error.partial if isinstance(error.partial, int) else len(error.partial)  # urllib3 keeps a count
        return f"the connection closed after {got} bytes of the body"
    if isinstance(error, http.client.HTTPException):
        return f"malformed HTTP answer: {type(error).__name__} {str(error)[:60]}".rstrip()
    return error_reason(error)
