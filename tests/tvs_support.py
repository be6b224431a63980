"""Certificates and helpers for the TVS tests (self-signed RSA, made with cryptography)."""

from __future__ import annotations

import contextlib
import datetime
import functools
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from phone.wire.certs import Identity as CertsIdentity
from phone.wire.certs import generate_rsa_key, make_certificate, simple_subject

DEVICE = "CP-8861-SEPB000B4BA0AEE"


@attrs.frozen
class Identity:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def write(self, folder: Path, name: str, *, der: bool = False) -> tuple[Path, Path]:
        encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
        cert_path = folder / f"{name}.{'der' if der else 'pem'}"
        key_path = folder / f"{name}.key"
        cert_path.write_bytes(self.certificate.public_bytes(encoding))
        key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                                    serialization.NoEncryption()))
        return cert_path, key_path


def _name(common_name: str, organisation: str | None) -> x509.Name:
    if organisation is None:
        return simple_subject(CN=common_name)
    return simple_subject(CN=common_name, OU="TAC", O=organisation, C="PL")


@functools.lru_cache(maxsize=None)
def identity(common_name: str, *, bits: int = 1024, serial: int | None = None,
             issuer: str | None = None, organisation: str | None = "Cisco", copy: int = 0) -> Identity:
    """A certificate for ``common_name`` (phone.wire.certs); self-signed unless ``issuer`` names another.

    ``copy`` > 0 gives another key (and certificate) under the same names, as a forger would make.
    """
    signer = identity(issuer) if issuer else None
    made = make_certificate(
        _name(common_name, organisation), generate_rsa_key(bits),
        not_before=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1),
        serial=serial or x509.random_serial_number(),
        issuer=None if signer is None else CertsIdentity(signer.certificate, signer.key))
    return Identity(made.certificate, made.private_key)


# -- a scripted TLS peer for client tests ----------------------------------------

@attrs.define
class Peer:
    """What a scripted server saw: the bytes each connection received, the client certificates."""

    port: int = 0
    received: list[bytes] = attrs.Factory(list)
    client_certificates: list[bytes | None] = attrs.Factory(list)


def read_request(conn: socket.socket) -> bytes:
    """A whole TVS frame as sent by the client (header, then the announced payload)."""
    data = b""
    while len(data) < 10 or len(data) < 10 + int.from_bytes(data[8:10], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def scripted_server(folder: Path, behaviour: Callable[[socket.socket, Peer], None], *,
                    server: Identity | None = None, tls: bool = True,
                    trust_client: Identity | None = None) -> Iterator[Peer]:
    """A loopback server that runs ``behaviour`` on every connection (TLS unless ``tls=False``)."""
    peer = Peer()
    context = None
    if tls:
        cert, key = (server or identity("tvs-scripted")).write(folder, "scripted")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 is the point here
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.load_cert_chain(cert, key)
        if trust_client is not None:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cadata=trust_client.der)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    peer.port = listener.getsockname()[1]
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                if context is not None:
                    conn = context.wrap_socket(conn, server_side=True)
                    peer.client_certificates.append(conn.getpeercert(binary_form=True))
                behaviour(conn, peer)
            except (OSError, ssl.SSLError):
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=handle, args=(conn,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield peer
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for worker in workers:
            worker.join(2)


def record_then(action: str, reply: bytes = b"") -> Callable[[socket.socket, Peer], None]:
    """A behaviour: read the request, then 'drop', 'silent' (wait for the client to go), or 'reply'."""
    def behaviour(conn: socket.socket, peer: Peer) -> None:
        peer.received.append(read_request(conn))
        if action == "reply":
            conn.sendall(reply)
        elif action == "silent":
            with contextlib.suppress(OSError):
                while conn.recv(1024):
                    pass
    return behaviour


def hold(conn: socket.socket, peer: Peer) -> None:
    """A behaviour for a plain TCP peer: say nothing until the client goes."""
    data = b""
    with contextlib.suppress(OSError):
        while chunk := conn.recv(1024):
            data += chunk
    peer.received.append(data)
