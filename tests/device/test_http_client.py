"""The phone's HTTP(S) client against well-behaved and hostile servers over loopback (docs/http.md).

Hostile peers are raw sockets writing bytes by hand: a huge body, a slow drip, a garbage
status line. Each ends in one outcome with a one-line reason and no data, in bounded time.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from phone.device.http import HttpFetcher, HttpOutcome
from phone.errors import UsageError
from phone.lab.servers.http import HttpFileServer
from phone.tls import identity_server_context
from phone.lab.pki import node_identity
from phone.lab.state import Names
from phone.wire.certs import Identity


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None], requests: list[bytes] | None = None) -> Iterator[int]:
    """A TCP server whose every connection is handed to ``answer`` after its request is read
    (and kept in ``requests``)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                with contextlib.suppress(OSError):
                    request = connection.recv(65536)
                    if requests is not None:
                        requests.append(request)
                    answer(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def fetch(port: int, name: str = "CTLSEPB000B4BA0AEE.tlv", **settings):
    return HttpFetcher("127.0.0.1", port, **settings).fetch(name)


def test_a_200_gives_the_body() -> None:
    with raw_server(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: no-store\r\n"
                                        b"Content-Type: */*\r\n\r\nhello")) as port:
        result = fetch(port)
    assert (result.outcome, result.data, result.http_status) == (HttpOutcome.FOUND, b"hello", 200)


@pytest.mark.parametrize("status, reason", [(503, "Service Unavailable"), (404, "Not Found")])
def test_another_status_is_reported_with_no_data(status: int, reason: str) -> None:
    with raw_server(lambda c: c.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())) as port:
        result = fetch(port)
    assert (result.outcome, result.data, result.http_status) == (HttpOutcome.STATUS, None, status)
    assert result.reason == f"HTTP {status} {reason}"


def test_nothing_listening_is_refused() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    result = fetch(port)
    assert (result.outcome, result.reason) == (HttpOutcome.REFUSED, "connection refused")


def test_a_server_that_says_nothing_times_out_after_the_read_timeout() -> None:
    with raw_server(lambda c: c.recv(1)) as port:  # silent until the client hangs up
        result = fetch(port, read_timeout=0.5)
    assert (result.outcome, result.reason, result.data) == (HttpOutcome.TIMED_OUT, "no answer in time", None)
    assert result.elapsed < 2.5


def test_an_announced_body_over_the_cap_is_refused_before_it_is_read() -> None:
    with raw_server(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n")) as port:
        result = fetch(port, max_bytes=65535)
    assert (result.outcome, result.data) == (HttpOutcome.FAILED, None)
    assert result.reason == "the server announces 999999999 bytes, over the 65535-byte cap"


def test_an_unannounced_body_is_cut_off_at_the_cap() -> None:
    def flood(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(64):
            connection.sendall(b"\0" * 65536)

    with raw_server(flood) as port:
        result = fetch(port, max_bytes=100_000)
    assert (result.outcome, result.data) == (HttpOutcome.FAILED, None)
    assert result.reason == "the body passes the 100000-byte cap"


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"HTTP/1.1 200 OK\r\nX-Slow: "],
                         ids=["body", "headers"])
def test_a_slow_drip_is_cut_off_at_the_deadline(head: bytes) -> None:
    def drip(connection: socket.socket) -> None:
        connection.sendall(head)
        for _ in range(100):
            connection.sendall(b"a")
            time.sleep(0.1)

    with raw_server(drip) as port:
        result = fetch(port, read_timeout=5.0, deadline=1.0)
    assert (result.outcome, result.data) == (HttpOutcome.TIMED_OUT, None)
    assert result.reason == "the answer was not complete by the deadline"
    assert result.elapsed < 3.0


def test_a_garbage_status_line_is_one_clear_reason() -> None:
    with raw_server(lambda c: c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as port:
        result = fetch(port)
    assert (result.outcome, result.data) == (HttpOutcome.FAILED, None)
    assert result.reason.startswith("not an HTTP status line: ") and "\n" not in result.reason


def test_a_body_cut_short_is_not_taken() -> None:
    with raw_server(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")) as port:
        result = fetch(port)
    assert (result.outcome, result.data) == (HttpOutcome.FAILED, None)
    assert result.reason == "the connection closed after 10 bytes of the body"


def test_names_are_sent_as_the_url_path_and_bad_names_are_refused_locally() -> None:
    seen: list[bytes] = []
    with raw_server(lambda c: c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), seen) as port:
        fetch(port, name="sub dir/SEPB000B4BA0AEE.cnf.xml")
        with pytest.raises(UsageError, match="non-empty relative ASCII name"):
            HttpFetcher("127.0.0.1", port).fetch("/etc/passwd")
    assert [request.split(b"\r\n", 1)[0] for request in seen] == [b"GET /sub%20dir/SEPB000B4BA0AEE.cnf.xml HTTP/1.1"]


# -- HTTPS: the server's certificate against the pinned TFTP records -----------------------------


def new_identity() -> Identity:
    return node_identity("CallManager", "cucm-pub", Names(), bits=1024, now=datetime.datetime.now(datetime.UTC),
                         random_bytes=os.urandom)


@pytest.fixture(scope="module")
def callmanager() -> Identity:
    return new_identity()


@contextlib.contextmanager
def https_server(identity: Identity, files: dict[str, bytes]) -> Iterator[HttpFileServer]:
    server = HttpFileServer(None, lambda name, _client: files.get(name), ssl_context=identity_server_context(identity))
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


def test_https_from_a_pinned_server_gives_the_file(callmanager: Identity) -> None:
    with https_server(callmanager, {"SEPB000B4BA0AEE.cnf.xml": b"<device/>"}) as server:
        result = HttpFetcher("127.0.0.1", server.port, https=True).fetch(
            "SEPB000B4BA0AEE.cnf.xml", pinned=(callmanager.der,))
    assert (result.outcome, result.data) == (HttpOutcome.FOUND, b"<device/>")


def test_https_from_a_server_not_pinned_asks_nothing(callmanager: Identity) -> None:
    stranger = new_identity()  # the same name, another key
    with https_server(stranger, {"SEPB000B4BA0AEE.cnf.xml": b"<device/>"}) as server:
        result = HttpFetcher("127.0.0.1", server.port, https=True).fetch(
            "SEPB000B4BA0AEE.cnf.xml", pinned=(callmanager.der,))
        assert server.counts["requests"] == 0
    assert (result.outcome, result.data) == (HttpOutcome.UNTRUSTED_SERVER, None)
    assert result.reason == "the server's certificate is not a TFTP record of the installed trust lists"


def test_https_to_a_plain_http_server_fails_in_one_line(callmanager: Identity) -> None:
    with raw_server(lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as port:
        result = HttpFetcher("127.0.0.1", port, https=True).fetch("x.tlv", pinned=(callmanager.der,))
    assert (result.outcome, result.data) == (HttpOutcome.FAILED, None)
    assert result.reason.startswith("TLS handshake failed: ") and "\n" not in result.reason


def test_an_https_server_that_never_finishes_the_handshake_is_cut_off_at_the_deadline(callmanager: Identity) -> None:
    with raw_server(lambda c: c.recv(1)) as port:  # takes the ClientHello, answers nothing
        result = HttpFetcher("127.0.0.1", port, https=True, connect_timeout=5.0, deadline=1.0).fetch(
            "x.tlv", pinned=(callmanager.der,))
    assert (result.outcome, result.reason, result.data) == (
        HttpOutcome.TIMED_OUT, "the answer was not complete by the deadline", None)
    assert result.elapsed < 3.0
