"""A small CAPF server for the phone's client tests, built on the wire codec (phone.wire.capf).

It speaks first, runs one scripted operation per connection (install, fetch, delete,
nothing pending, unknown device, refused authentication) and records every message
the phone sent. Rogue behaviours (garbage, silence, lying lengths, an LSC for
another device or key) are options of the same script, so each test says in one
line what the server does wrong.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
from conftest import rsa_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from tvs_support import Identity as ServerIdentity
from tvs_support import Peer, scripted_server

from phone.wire.capf import CapfMessage, Command, FrameBuffer
from phone.wire.capf_signing import auth_data, verify_auth_data
from phone.wire.certs import Identity, load_certificate

SESSION_ID = 0x0BADCAFE


@attrs.define
class CapfScript:
    """What the server does on each connection, and what it saw."""

    operation: str = "install"  # install | fetch | delete | nothing | unknown | refuse
    issuer: Identity | None = None  # signs the LSC (the CAPF certificate, as CUCM)
    version: int = 3
    key_size: int | None = 2048
    key_type: int | None = None
    curve: int | None = None
    end_reason: int = 1
    password: str | None = None  # the authentication string it expects, when set
    lsc_name: str | None = None  # CN of the LSC; None: the device name the phone gave
    lsc_other_key: bool = False  # issue the LSC for another public key
    rogue: str | None = None  # garbage | silent | short-frame | huge-length | wrong-session | wrong-command | drop
    session_id: int = SESSION_ID
    seen: list[CapfMessage] = attrs.Factory(list)
    issued: list[x509.Certificate] = attrs.Factory(list)
    auth_verified: list[bool] = attrs.Factory(list)

    def message(self, command: Command) -> CapfMessage | None:
        for message in self.seen:
            if message.command == command:
                return message
        return None


def _frames(conn: socket.socket) -> Iterator[CapfMessage]:
    buffer = FrameBuffer()
    while True:
        message = buffer.next_frame()
        if message is not None:
            yield message
            continue
        chunk = conn.recv(4096)
        if not chunk:
            return
        buffer.feed(chunk)


def _issue(script: CapfScript, device: str, public_der: bytes) -> x509.Certificate:
    issuer = script.issuer
    assert issuer is not None, "an install needs an issuer"
    public_key = serialization.load_der_public_key(public_der)
    if script.lsc_other_key:
        public_key = rsa_key(2048, "another-phone").public_key()
    name = script.lsc_name or device
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(issuer.private_key, hashes.SHA256())
    )
    script.issued.append(certificate)
    return certificate


def _check_auth(script: CapfScript, response: CapfMessage) -> bool:
    """As capfd checks an AUTH_RESPONSE: the password, or both signatures of the certificate."""
    if response.password is not None:
        return script.password is None or response.password == script.password
    if response.certificate is None:
        return False
    _, der = response.certificate
    certificate = load_certificate(der)
    data = auth_data(response.device_name or "", der)
    sha2 = response.sha2_signed_data
    return (verify_auth_data(certificate.public_key(), response.signed_data or b"", data, "sha1")
            and sha2 is not None and verify_auth_data(certificate.public_key(), sha2[1], data, "sha512"))


def capf_behaviour(script: CapfScript) -> Callable[[socket.socket, Peer], None]:
    """The per-connection behaviour of ``tvs_support.scripted_server`` for ``script``."""
    def behaviour(conn: socket.socket, peer: Peer) -> None:
        sid = script.session_id

        def send(command: Command, **fields: object) -> None:
            conn.sendall(CapfMessage.build(command, sid, **fields).encode())

        if script.rogue == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)))
            return
        if script.rogue == "silent":
            with contextlib.suppress(OSError):
                while conn.recv(1024):
                    pass
            return
        if script.rogue == "short-frame":  # announces 40 bytes, sends 4, then hangs up
            conn.sendall(b"\x55\x01" + sid.to_bytes(4, "big") + (40).to_bytes(2, "big") + b"\x07\x00\x01\x03")
            return
        if script.rogue == "huge-length":
            conn.sendall(b"\x55\x01" + sid.to_bytes(4, "big") + b"\xff\xff")
            with contextlib.suppress(OSError):
                conn.recv(1024)
            return
        if script.rogue == "split":  # the AUTH_REQUEST one byte at a time
            for byte in CapfMessage.build(Command.AUTH_REQUEST, sid, version=script.version, auth_type=0).encode():
                conn.sendall(bytes([byte]))
        else:
            send(Command.AUTH_REQUEST, version=script.version, auth_type=0)
        frames = _frames(conn)
        response = next(frames, None)
        if response is None:
            return
        script.seen.append(response)
        if script.rogue == "wrong-session":
            sid += 1
        if script.rogue == "wrong-command":
            send(Command.STORE_CERTIFICATE_RESPONSE, reason=1)
            return
        verified = _check_auth(script, response)
        script.auth_verified.append(verified)
        if script.operation == "unknown":
            send(Command.END_SESSION, reason=9)
            return
        if script.operation == "refuse" or not verified:
            send(Command.END_SESSION, reason=7)
            return
        if script.operation == "nothing":
            send(Command.END_SESSION, reason=0)
            return
        if script.operation in ("fetch", "delete"):
            command = (Command.FETCH_CERTIFICATE_REQUEST if script.operation == "fetch"
                       else Command.DELETE_CERTIFICATE_REQUEST)
            send(command)
            answer = next(frames, None)
            if answer is not None:
                script.seen.append(answer)
            send(Command.END_SESSION, reason=0 if script.operation == "fetch" else 1)
            return
        send(Command.KEY_GENERATE_REQUEST, key_size=script.key_size, key_type=script.key_type, curve=script.curve)
        generated = None  # this connection's answer (the script records every connection's)
        for message in frames:
            script.seen.append(message)
            if message.command == Command.KEY_GENERATE_RESPONSE:
                generated = message
                break
        if generated is None or generated.public_key is None:
            send(Command.END_SESSION, reason=7)
            return
        if script.rogue == "drop":
            return
        certificate = _issue(script, response.device_name or "", generated.public_key)
        send(Command.STORE_CERTIFICATE_REQUEST, certificate_type=1,
             certificate_der=certificate.public_bytes(serialization.Encoding.DER))
        stored = next(frames, None)
        if stored is not None:
            script.seen.append(stored)
        send(Command.END_SESSION, reason=script.end_reason)
        with contextlib.suppress(OSError):
            conn.recv(1)  # let the phone close first, as capfd does

    return behaviour


@contextlib.contextmanager
def capf_server(folder: Path, script: CapfScript, server: Identity) -> Iterator[Peer]:
    """A loopback TLS CAPF server presenting ``server``'s certificate, running ``script``."""
    with scripted_server(folder, capf_behaviour(script),
                         server=ServerIdentity(server.certificate, server.private_key)) as peer:
        yield peer
