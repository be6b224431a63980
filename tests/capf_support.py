"""A scripted phone speaking CAPF over real TLS, built from the wire codec (phone/wire/capf.py).

``CapfPhone`` answers the lab's CAPF server as a phone would: credentials in
AUTH_RESPONSE, REQUEST_IN_PROGRESS then a pre-generated key on
KEY_GENERATE_REQUEST, the certificate it holds on FETCH, and so on, until
END_SESSION or the server's close. Each reply can be replaced to play a phone
that misbehaves. Keys are generated once per kind (``phone_key``) so that tests
measure the server, not key generation.
"""

from __future__ import annotations

import datetime
import functools
import socket
import ssl
from collections.abc import Callable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from phone.device.identity import issue_mic, new_mic_ca
from phone.lab.devices import CapfSettings, DeviceRecord, DeviceStore
from phone.tls import client_context
from phone.wire.capf import (
    CapfMessage,
    Command,
    Curve,
    DigestCode,
    FrameBuffer,
    KeyType,
    Reason,
)
from phone.wire.capf_signing import auth_data, sign_auth_data
from phone.wire.certs import (
    Identity,
    Profile,
    cucm_subject,
    generate_rsa_key,
    make_certificate,
)

DEVICE = "SEP001122334455"
MODEL = "CP-8861"
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
_CURVES = {Curve.P256: ec.SECP256R1, Curve.P384: ec.SECP384R1, Curve.P521: ec.SECP521R1}


def _cached(function):
    """Cache by positional arguments with defaults filled in (``f()`` and ``f(0)`` are one entry)."""
    cached = functools.lru_cache(maxsize=None)(function)
    defaults = function.__defaults__ or ()

    @functools.wraps(function)
    def call(*args):
        missing = function.__code__.co_argcount - len(args)
        return cached(*args, *defaults[len(defaults) - missing:] if missing else ())
    return call


@_cached
def phone_key(key_type: int, size: int, copy: int = 0) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A key of the kind KEY_GENERATE_REQUEST asks for (``size``: RSA bits or a CURVE value)."""
    if key_type == KeyType.RSA:
        return rsa.generate_private_key(65537, size)
    return ec.generate_private_key(_CURVES[Curve(size)]())


def public_der(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@_cached
def capf_identity(copy: int = 0) -> Identity:
    """A CAPF certificate as CUCM's: ``CN=CAPF-<8 hex>``, a CA for the LSCs it signs."""
    subject = cucm_subject(f"CAPF-{0x1a2b3c4d + copy:08x}", organizational_unit="TAC", organization="Cisco",
                           locality="Krakow", state="Malopolska", country="PL")
    return make_certificate(subject, generate_rsa_key(2048), not_before=NOW - datetime.timedelta(days=30),
                            serial=0x70CAF64E0000 + copy, profile=Profile.CAPF)


@_cached
def manufacturing_ca(copy: int = 0) -> Identity:
    return new_mic_ca(now=NOW - datetime.timedelta(days=1) + datetime.timedelta(seconds=copy))


@_cached
def mic(device: str = DEVICE, ca_copy: int = 0) -> Identity:
    return issue_mic(MODEL, device, manufacturing_ca(ca_copy), now=NOW - datetime.timedelta(days=1))


def lsc_from(capf: Identity, device: str = DEVICE, key=None) -> Identity:
    """An LSC as the lab's CAPF issues one (for the existing-LSC modes)."""
    from phone.lab.lsc import issue_lsc

    key = key or phone_key(KeyType.RSA, 1024, 1)
    certificate = issue_lsc(key.public_key(), capf=capf, device_name=device, model=MODEL, phone_serial="FCH1",
                            now=NOW - datetime.timedelta(days=1), random_bytes=lambda n: b"\x42" * n)
    return Identity(certificate, key)


def device(name: str = DEVICE, *, operation: str = "install", auth: str = "null-string",
           auth_string: str | None = None, key: str = "rsa1024", **extra) -> DeviceRecord:
    return DeviceRecord(name=name, model=MODEL, capf=CapfSettings(
        operation=operation, auth=auth, auth_string=auth_string, key=key,
        status="pending" if operation != "none" else None), **extra)


def put(store: DeviceStore, *records: DeviceRecord) -> None:
    store.put_many(list(records))


def credentials(device_name: str, identity: Identity) -> dict[str, object]:
    """AUTH_RESPONSE fields of the existing-certificate modes: certificate and both signatures."""
    der = identity.der
    data = auth_data(device_name, der)
    sha2 = sign_auth_data(identity.private_key, data, "sha512")
    return {"certificate_der": der, "signed_data": sign_auth_data(identity.private_key, data, "sha1"),
            "sha2_signed_data": bytes([DigestCode.SHA512]) + len(sha2).to_bytes(2, "big") + sha2}


class CapfConnection:
    """One TLS connection to a CAPF server, framed with ``FrameBuffer``."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 10.0,
                 versions: tuple[str, ...] = ("1.2", "1.3")) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self.tls = client_context(versions).wrap_socket(sock)
        except BaseException:
            sock.close()
            raise
        self.frames = FrameBuffer()
        self.session_id: int | None = None
        self.server_certificate = self.tls.getpeercert(binary_form=True)

    def receive(self) -> CapfMessage | None:
        """The next frame, or None when the server closed the connection."""
        while True:
            frame = self.frames.next_frame()
            if frame is not None:
                if self.session_id is None:
                    self.session_id = frame.session_id
                return frame
            try:
                data = self.tls.recv(65536)
            except (ConnectionError, ssl.SSLError):
                return None
            if not data:
                return None
            self.frames.feed(data)

    def send(self, command: Command, session_id: int | None = None, **fields: object) -> None:
        sid = self.session_id if session_id is None else session_id
        self.tls.sendall(CapfMessage.build(command, sid or 0, **fields).encode())

    def send_raw(self, data: bytes) -> None:
        self.tls.sendall(data)

    def closed_by_server(self) -> bool:
        """Whether the server closes the connection (reads until EOF, dropping what comes)."""
        try:
            while self.tls.recv(65536):
                pass
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True
        return True

    def close(self) -> None:
        self.tls.close()

    def __enter__(self) -> CapfConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@attrs.define
class Transcript:
    """What the phone received, and what it ended holding."""

    received: list[CapfMessage] = attrs.Factory(list)
    lsc: x509.Certificate | None = None
    key: object = None
    end_reason: int | None = None
    closed_early: bool = False

    def commands(self) -> list[Command]:
        return [message.command for message in self.received]


@attrs.define
class CapfPhone:
    """A phone's side of one CAPF session; fields change how it behaves."""

    device: str = DEVICE
    version: int = 3
    password: str | None = ""
    #: Authenticate with this certificate (existing-LSC/MIC modes); its key signs.
    certificate: Identity | None = None
    #: The certificate answered to FETCH (None: REASON 7).
    held: Identity | None = None
    store_reason: int = Reason.OK
    delete_reason: int = Reason.OK
    in_progress: int = 1
    #: Replace the key the server asked for (the DER sent as PUBLIC_KEY), or None to send no key.
    public_key: Callable[[object], bytes | None] | None = None
    key_copy: int = 0

    def auth_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {"reason": Reason.OK, "version": self.version, "device_name": self.device,
                                     "password": self.password}
        if self.certificate is not None:
            fields.update(credentials(self.device, self.certificate))
        return fields

    def run(self, port: int, timeout: float = 10.0) -> Transcript:
        transcript = Transcript()
        with CapfConnection(port, timeout=timeout) as connection:
            while True:
                message = connection.receive()
                if message is None:
                    transcript.closed_early = True
                    return transcript
                transcript.received.append(message)
                if message.command is Command.END_SESSION:
                    transcript.end_reason = message.reason
                    return transcript
                self.answer(connection, message, transcript)

    def answer(self, connection: CapfConnection, message: CapfMessage, transcript: Transcript) -> None:
        command = message.command
        if command is Command.AUTH_REQUEST:
            connection.send(Command.AUTH_RESPONSE, **self.auth_fields())
        elif command is Command.KEY_GENERATE_REQUEST:
            key_type = message.key_type if message.key_type is not None else KeyType.RSA
            size = message.key_size if key_type == KeyType.RSA else message.curve
            key = phone_key(key_type, size, self.key_copy)
            transcript.key = key
            for _ in range(self.in_progress):
                connection.send(Command.REQUEST_IN_PROGRESS)
            sent = public_der(key) if self.public_key is None else self.public_key(key)
            connection.send(Command.KEY_GENERATE_RESPONSE, public_key=sent)
        elif command is Command.STORE_CERTIFICATE_REQUEST:
            _, der = message.certificate
            transcript.lsc = x509.load_der_x509_certificate(der)
            connection.send(Command.STORE_CERTIFICATE_RESPONSE, reason=self.store_reason)
        elif command is Command.FETCH_CERTIFICATE_REQUEST:
            if self.held is None:
                connection.send(Command.FETCH_CERTIFICATE_RESPONSE, reason=Reason.FAILED)
            else:
                connection.send(Command.FETCH_CERTIFICATE_RESPONSE, reason=Reason.OK, certificate_der=self.held.der)
        elif command is Command.DELETE_CERTIFICATE_REQUEST:
            connection.send(Command.DELETE_CERTIFICATE_RESPONSE, reason=self.delete_reason)
        else:
            raise AssertionError(f"a phone does not expect {command.name}")
