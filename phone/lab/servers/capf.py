"""The lab's CAPF server: asyncio + TLS, issuing LSCs as CUCM's Certificate Authority Proxy Function does.

A phone connects on TCP 3804 (Cisco "Cisco Unified Communications Manager TCP and
UDP Port Usage"), inside TLS, without a client certificate; the server presents
the CAPF certificate and speaks first. Each connection carries one operation,
chosen by the server from the device's page ("Certificate Authority Proxy
Function (CAPF) Information", CUCM System Configuration Guide 12.5(1)SU2,
"Configure CAPF"), then ends with END_SESSION (docs/capf.md has the exchange):

* AUTH_REQUEST {VERSION 3 [, AUTH_TYPE 0]}; the phone answers AUTH_RESPONSE
  with its device name and credentials.
* END_SESSION 9 for a device the lab does not have, 0 when nothing is pending,
  7 when the credentials do not match the authentication mode.
* Install/Upgrade: KEY_GENERATE_REQUEST by the device's key setting, the phone's
  PUBLIC_KEY, STORE_CERTIFICATE_REQUEST with the new LSC (``phone.lab.lsc``),
  END_SESSION 1. Fetch ("Troubleshoot"): FETCH pair, END_SESSION 0. Delete:
  DELETE pair, END_SESSION 1.

The outcome goes into the device store (``DeviceStore.record_capf_result``:
successful or failed, the LSC issued or deleted) and a MIC the phone
authenticated with is kept (``record_mic``). A client that breaks the protocol
(garbage, a session id that is not its own, a command out of turn, a frame over
the size cap, silence past a deadline) is cut off and changes nothing.

``CapfSession`` holds the rules of one connection over a pair of frame
callables; ``CapfServer`` is the transport (TLS, deadlines, a cap on clients);
``running_capf_server`` runs one in a background thread (tests, ``lab serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from phone.lab.servers.background import serving_in_thread
from phone.errors import CertificateError, PhonetrustError, TransportError, UsageError
from phone.lab.devices import DeviceRecord, DeviceStore, check_device_name
from phone.lab.lsc import LscProfile, issue_lsc
from phone.tls import close_stream, error_reason, identity_server_context
from phone.wire.capf import (
    HEADER_SIZE,
    MAX_BODY,
    AuthType,
    CapfHeader,
    CapfProtocolError,
    CapfMessage,
    CertificateType,
    Command,
    Curve,
    DigestCode,
    KeyType,
    Reason,
)
from phone.wire.capf_signing import auth_data, verify_auth_data
from phone.wire.certs import Identity, names_device

Certificates = Callable[[], Sequence[x509.Certificate]]
RandomBytes = Callable[[int], bytes]

#: The device page's key settings (``CapfSettings.key``) as KEY_GENERATE_REQUEST asks for them.
KEY_SETTINGS: dict[str, tuple[KeyType, int]] = {
    "rsa1024": (KeyType.RSA, 1024), "rsa2048": (KeyType.RSA, 2048), "rsa4096": (KeyType.RSA, 4096),
    "ec256": (KeyType.EC, Curve.P256), "ec384": (KeyType.EC, Curve.P384), "ec521": (KeyType.EC, Curve.P521),
}
_CURVES = {Curve.P256: ec.SECP256R1, Curve.P384: ec.SECP384R1, Curve.P521: ec.SECP521R1}
#: CAPF version from which a phone takes EC keys (System Configuration Guide, "Configure CAPF").
EC_CAPABLE_VERSION = 3


@attrs.frozen
class CapfServerSettings:
    """Settings of the lab's CAPF server (docs/capf.md lists the ones CUCM leaves open)."""

    host: str = "127.0.0.1"
    #: Cisco "TCP and UDP Port Usage": 3804; 0 lets the OS choose.
    port: int = 3804
    #: CUCM's TLS versions for CAPF are not documented; 1.0 admits 7900-series phones.
    min_tls: str = "1.0"
    max_tls: str = "1.3"
    seclevel: int = 0
    #: VERSION of AUTH_REQUEST: 3 is the CAPF that can issue EC keys.
    version: int = 3
    #: ``capf.auth_type_in_request``: add AUTH_TYPE 0 to AUTH_REQUEST, as the usecallmanager.nz server does.
    auth_type_in_request: bool = True
    #: ``capf.key_type_for_rsa``: send KEY_TYPE 0 with an RSA KEY_SIZE (CUCM sends KEY_SIZE alone).
    key_type_for_rsa: bool = True
    #: ``capf.nothing_pending_reason``: END_SESSION's REASON when the device has nothing pending.
    nothing_pending_reason: int = Reason.NOTHING_PENDING
    #: RSA key size a phone below CAPF version 3 gets when its device asks for EC ("phones without
    #: version 3 get RSA", Security Guide, "ECDSA"); None: end the session with REASON 7.
    ec_fallback_rsa_bits: int | None = 2048
    max_clients: int = 256
    handshake_timeout: float = 10.0
    #: From AUTH_REQUEST until AUTH_RESPONSE, and for each later answer but the key.
    step_timeout: float = 30.0
    #: Until KEY_GENERATE_RESPONSE: a phone may take minutes for a 4096-bit key.
    keygen_timeout: float = 300.0
    send_timeout: float = 5.0
    #: REQUEST_IN_PROGRESS frames accepted while the key is generated.
    max_in_progress: int = 64
    max_body: int = MAX_BODY
    lsc: LscProfile = attrs.field(factory=LscProfile)


@attrs.frozen
class CredentialCheck:
    """Why the credentials were refused (None: accepted), and the MIC the phone authenticated with."""

    refusal: str | None = None
    mic: x509.Certificate | None = None


class CapfSessionEnded(CapfProtocolError):
    """The peer broke the protocol: the connection is cut and nothing is recorded."""


@attrs.frozen
class SessionResult:
    """What one connection did (tests and the trace read it)."""

    device: str | None
    operation: str | None
    end_reason: int | None
    status: str | None = None
    detail: str = ""


Receive = Callable[[float], Awaitable[CapfMessage]]
Send = Callable[[CapfMessage], Awaitable[None]]


class CapfSession:
    """One CAPF connection's rules, over ``receive(timeout)`` and ``send(message)`` coroutines."""

    def __init__(self, server: CapfServer, session_id: int, receive: Receive, send: Send) -> None:
        self.server = server
        self.settings = server.settings
        self.session_id = session_id
        self._receive = receive
        self._send = send
        self.device: str | None = None
        self.operation: str | None = None
        #: The SN of the product id, from a MIC the phone authenticated with.
        self._phone_serial: str | None = None

    async def run(self) -> SessionResult:
        settings = self.settings
        await self.send(Command.AUTH_REQUEST, version=settings.version,
                        auth_type=AuthType.NONE if settings.auth_type_in_request else None)
        auth = await self.receive(settings.step_timeout, Command.AUTH_RESPONSE)
        name = auth.device_name
        if name is None:
            raise CapfSessionEnded("AUTH_RESPONSE without DEVICE_NAME")
        try:
            self.device = check_device_name(name)
        except UsageError as error:
            raise CapfSessionEnded(str(error)) from None
        record = await self.server.call_store(self.server.device, name)
        if record is None:
            return await self.end(Reason.UNKNOWN_DEVICE, detail="unknown device")
        if not record.capf.pending:
            return await self.end(settings.nothing_pending_reason, detail="nothing pending")
        self.operation = record.capf.operation
        check = self.server.check_credentials(record, auth)
        if check.refusal is not None:
            return await self.fail(check.refusal)
        if check.mic is not None:
            self._phone_serial = _phone_serial_of(check.mic)
            await self.server.call_store(self.server.store.record_mic, name,
                                         check.mic.public_bytes(serialization.Encoding.DER))
        if record.capf.operation in ("install", "upgrade"):
            return await self.install(record, auth.version or 0)
        if record.capf.operation == "fetch":
            return await self.fetch(record)
        return await self.delete(record)

    # -- operations -------------------------------------------------------------------
    async def install(self, record: DeviceRecord, phone_version: int) -> SessionResult:
        key_type, size = KEY_SETTINGS[record.capf.key]
        if key_type is KeyType.EC and phone_version < EC_CAPABLE_VERSION:
            if self.settings.ec_fallback_rsa_bits is None:
                return await self.fail(f"{record.capf.key} asked of a phone of CAPF version {phone_version}")
            key_type, size = KeyType.RSA, self.settings.ec_fallback_rsa_bits
        if key_type is KeyType.RSA:
            await self.send(Command.KEY_GENERATE_REQUEST, key_size=size,
                            key_type=KeyType.RSA if self.settings.key_type_for_rsa else None)
        else:
            await self.send(Command.KEY_GENERATE_REQUEST, key_type=KeyType.EC, curve=size)
        answer = await self.key_answer()
        if answer.public_key is None:
            return await self.fail("the phone could not generate its key")
        public_key, problem = _requested_key(answer.public_key, key_type, size)
        if public_key is None:
            return await self.fail(problem)
        lsc = self.server.issue(public_key, record, self._phone_serial)
        der = lsc.public_bytes(serialization.Encoding.DER)
        await self.send(Command.STORE_CERTIFICATE_REQUEST, certificate_type=CertificateType.LSC,
                        certificate_der=der)
        stored = await self.receive(self.settings.step_timeout, Command.STORE_CERTIFICATE_RESPONSE)
        if stored.reason != Reason.OK:
            return await self.fail(f"the phone did not store the LSC (REASON {stored.reason})")
        await self.server.record(record.name, status="successful", lsc_der=der)
        return await self.end(Reason.OK, status="successful", detail=f"LSC serial {lsc.serial_number:x}")

    async def key_answer(self) -> CapfMessage:
        """KEY_GENERATE_RESPONSE, after any number (bounded) of REQUEST_IN_PROGRESS."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.keygen_timeout
        for _ in range(self.settings.max_in_progress + 1):
            message = await self.receive(max(0.0, deadline - loop.time()), Command.KEY_GENERATE_RESPONSE,
                                         Command.REQUEST_IN_PROGRESS)
            if message.command is Command.KEY_GENERATE_RESPONSE:
                return message
        raise CapfSessionEnded(f"more than {self.settings.max_in_progress} REQUEST_IN_PROGRESS")

    async def fetch(self, record: DeviceRecord) -> SessionResult:
        await self.send(Command.FETCH_CERTIFICATE_REQUEST)
        answer = await self.receive(self.settings.step_timeout, Command.FETCH_CERTIFICATE_RESPONSE)
        if answer.reason != Reason.OK or answer.certificate is None:
            return await self.fail(f"the phone sent no certificate (REASON {answer.reason})")
        await self.server.record(record.name, status="successful", lsc_der=None, keep_lsc=True)
        return await self.end(Reason.NOTHING_PENDING, status="successful", detail="certificate fetched")

    async def delete(self, record: DeviceRecord) -> SessionResult:
        await self.send(Command.DELETE_CERTIFICATE_REQUEST)
        answer = await self.receive(self.settings.step_timeout, Command.DELETE_CERTIFICATE_RESPONSE)
        if answer.reason != Reason.OK:
            return await self.fail(f"the phone had no LSC to delete (REASON {answer.reason})")
        await self.server.record(record.name, status="successful", lsc_der=None)
        return await self.end(Reason.OK, status="successful", detail="LSC deleted")

    # -- steps ------------------------------------------------------------------------
    async def fail(self, detail: str) -> SessionResult:
        """The operation failed: recorded as such (the stored LSC stays), END_SESSION 7."""
        assert self.device is not None
        await self.server.record(self.device, status="failed", lsc_der=None, keep_lsc=True)
        return await self.end(Reason.FAILED, status="failed", detail=detail)

    async def end(self, reason: int, *, status: str | None = None, detail: str = "") -> SessionResult:
        await self.send(Command.END_SESSION, reason=reason)
        return SessionResult(self.device, self.operation, reason, status, detail)

    async def send(self, command: Command, **fields: object) -> None:
        await self._send(CapfMessage.build(command, self.session_id, **fields))

    async def receive(self, timeout: float, *expected: Command) -> CapfMessage:
        message = await self._receive(timeout)
        if message.session_id != self.session_id:
            raise CapfSessionEnded(f"session id {message.session_id:#010x}, this session is "
                                   f"{self.session_id:#010x}")
        if message.command not in expected:
            raise CapfSessionEnded(f"{message.command.name} where {' or '.join(c.name for c in expected)} was due")
        return message


def _requested_key(der: bytes, key_type: KeyType, size: int
                   ) -> tuple[rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None, str]:
    """The phone's PUBLIC_KEY if it is the kind asked for, else (None, why)."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError) as error:
        return None, f"PUBLIC_KEY is not a DER SubjectPublicKeyInfo ({str(error)[:60]})"
    except Exception as error:  # noqa: BLE001 - cryptography raises UnsupportedAlgorithm and more on hostile DER
        return None, f"PUBLIC_KEY is unusable ({type(error).__name__})"
    if key_type is KeyType.RSA:
        if isinstance(key, rsa.RSAPublicKey) and key.key_size == size:
            return key, ""
        return None, f"PUBLIC_KEY is not the RSA-{size} key asked for"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[Curve(size)]):
        return key, ""
    return None, f"PUBLIC_KEY is not the {_CURVES[Curve(size)].name} key asked for"


def issued_by_one_of(certificate: x509.Certificate, authorities: Sequence[x509.Certificate],
                     now: datetime.datetime) -> bool:
    """Whether an authority of ``authorities`` signed ``certificate`` and both are valid ``now``."""
    if not _valid_at(certificate, now):
        return False
    for authority in authorities:
        if authority.subject != certificate.issuer or not _valid_at(authority, now):
            continue
        try:
            certificate.verify_directly_issued_by(authority)
        except Exception:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError: not this authority
            continue
        return True
    return False


def _valid_at(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _phone_serial_of(mic: x509.Certificate) -> str | None:
    """``SN:<serial>`` of a MIC whose subject carries ``serialNumber=PID:… SN:…`` (Cisco's MICs do)."""
    for attribute in mic.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        for word in str(attribute.value).split():
            if word.startswith("SN:") and len(word) > 3:
                return word[3:]
    return None


class CapfServer:
    """The asyncio TLS transport of the lab's CAPF (docs/capf.md)."""

    def __init__(self, identity: Identity, store: DeviceStore, *, trusted_capf: Certificates,
                 trusted_manufacturing: Certificates, settings: CapfServerSettings = CapfServerSettings(),
                 clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
                 random_bytes: RandomBytes = os.urandom, trace: Callable[[str], None] | None = None) -> None:
        self.identity = identity
        self.store = store
        self.settings = settings
        self.trusted_capf = trusted_capf
        self.trusted_manufacturing = trusted_manufacturing
        self.clock = clock
        self.random_bytes = random_bytes
        self._trace = trace
        self._context = _context_for(identity, settings)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._active = 0
        #: Each finished connection's result, newest last (bounded: tests and the trace read it).
        self.results: list[SessionResult] = []

    # -- credentials and issuing (no I/O) ----------------------------------------------
    def check_credentials(self, record: DeviceRecord, auth: CapfMessage) -> CredentialCheck:
        """Whether AUTH_RESPONSE's credentials fit the device's authentication mode.

        Authentication modes (System Configuration Guide, "Configure CAPF"): a
        stored string of 4 to 10 digits the user types; no string; or the
        phone's existing certificate with signatures of its device name and
        certificate. With "Precedence to LSC" the phone sends its LSC when it has
        one, else its MIC; with "Precedence to MIC" the other way round: either
        is accepted if it chains to its authority (an LSC to a CAPF certificate
        of CAPF-trust, a MIC to a Cisco Manufacturing CA) and names the device.
        A certificate that chains to neither is "Invalid LSC" (Cisco TAC note
        200860) or "Invalid MIC", by the mode.
        """
        capf = record.capf
        if capf.auth == "null-string":
            return CredentialCheck()
        if capf.auth == "auth-string":
            if auth.password is None or auth.password != capf.auth_string:
                return CredentialCheck("wrong authentication string")
            return CredentialCheck()
        invalid = "Invalid LSC" if capf.auth == "existing-lsc" else "Invalid MIC"
        try:
            presented = auth.certificate
            sha2 = auth.sha2_signed_data
        except PhonetrustError as error:
            return CredentialCheck(f"{invalid}: {error}")
        if presented is None or auth.signed_data is None or sha2 is None:
            return CredentialCheck(f"{invalid}: no certificate with SHA-1 and SHA-2 signatures")
        der = presented[1]
        try:
            certificate = x509.load_der_x509_certificate(der)
            public_key = certificate.public_key()
        except Exception:  # noqa: BLE001 - hostile DER raises many kinds
            return CredentialCheck(f"{invalid}: the certificate does not parse")
        data = auth_data(record.name, der)
        if sha2[0] != DigestCode.SHA512 or not verify_auth_data(public_key, sha2[1], data, "sha512"):
            return CredentialCheck(f"{invalid}: SHA2_SIGNED_DATA does not verify")
        if not verify_auth_data(public_key, auth.signed_data, data, "sha1"):
            return CredentialCheck(f"{invalid}: SIGNED_DATA does not verify")
        if not names_device(certificate, record.name):
            return CredentialCheck(f"{invalid}: the certificate names another device")
        now = self.clock()
        # Manufacturing CAs first: CUCM keeps them in CAPF-trust too, and a MIC is worth keeping.
        if issued_by_one_of(certificate, self.trusted_manufacturing(), now):
            return CredentialCheck(mic=certificate)
        if issued_by_one_of(certificate, self.trusted_capf(), now):
            return CredentialCheck()
        return CredentialCheck(invalid)

    def issue(self, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, record: DeviceRecord,
              phone_serial: str | None) -> x509.Certificate:
        """The LSC; the product serial is the MIC's when it carried one, else the MAC (docs/capf.md)."""
        return issue_lsc(public_key, capf=self.identity, device_name=record.name, model=record.model,
                         phone_serial=phone_serial or record.name[3:], now=self.clock(),
                         random_bytes=self.random_bytes, profile=self.settings.lsc)

    # -- the store, off the event loop ---------------------------------------------------
    def device(self, name: str) -> DeviceRecord | None:
        """The device's page; None when the lab has none (a lab without a device store keeps none)."""
        if not self.store.path.exists():
            return None
        return self.store.get(name)

    async def call_store(self, function: Callable, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    async def record(self, name: str, *, status: str, lsc_der: bytes | None, keep_lsc: bool = False) -> None:
        await self.call_store(self.store.record_capf_result, name, status=status, lsc_der=lsc_der,
                              keep_lsc=keep_lsc)

    # -- transport ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise TransportError("the CAPF server is not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> int:
        """Listen; returns the bound port (settings.port 0: any free port)."""
        try:
            self._server = await asyncio.start_server(
                self._connection, self.settings.host, self.settings.port, ssl=self._context,
                ssl_handshake_timeout=self.settings.handshake_timeout,
                limit=self.settings.max_body + HEADER_SIZE)
        except OSError as error:
            raise TransportError(f"cannot listen on {self.settings.host}:{self.settings.port}: "
                                 f"{error.strerror or error}") from None
        return self.port

    async def serve_until(self, stop: asyncio.Event) -> None:
        if self._server is None:
            await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def trace(self, line: str) -> None:
        if self._trace is not None:
            self._trace(line)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        if self._active >= self.settings.max_clients:
            self.trace(f"{peer}: refused, {self._active} connections already")
            writer.transport.abort()
            return
        self._active += 1
        session_id = self._new_session_id()
        session = CapfSession(self, session_id, self._reader_of(reader), self._writer_of(writer))
        try:
            result = await session.run()
            self.trace(f"{peer}: session {session_id:#010x} {result.device} {result.operation or '-'}: "
                       f"END_SESSION {result.end_reason} {result.detail}".rstrip())
        except asyncio.CancelledError:
            writer.transport.abort()
            return
        except (CapfSessionEnded, PhonetrustError) as error:
            result = SessionResult(session.device, session.operation, None, None, str(error))
            self.trace(f"{peer}: session {session_id:#010x} cut: {error}")
        except (TimeoutError, asyncio.IncompleteReadError, OSError) as error:
            reason = ("silent past the deadline" if isinstance(error, TimeoutError)
                      else "closed mid-frame" if isinstance(error, asyncio.IncompleteReadError)
                      else error_reason(error))
            result = SessionResult(session.device, session.operation, None, None, reason)
            self.trace(f"{peer}: session {session_id:#010x} cut: {reason}")
        except Exception as error:  # noqa: BLE001 - one connection never stops the server
            result = SessionResult(session.device, session.operation, None, None, f"{type(error).__name__}")
            self.trace(f"{peer}: session {session_id:#010x} cut: {type(error).__name__}: {error}")
        finally:
            self._active -= 1
        self.results.append(result)
        del self.results[:-1000]
        await close_stream(writer, self.settings.send_timeout)

    def _new_session_id(self) -> int:
        """New per connection (Jabber4Linux, "CAPF Protocol Specification"); never 0."""
        return int.from_bytes(self.random_bytes(4), "big") or 1

    def _reader_of(self, reader: asyncio.StreamReader) -> Receive:
        max_body = self.settings.max_body

        async def receive(timeout: float) -> CapfMessage:
            async with asyncio.timeout(timeout):
                head = await reader.readexactly(HEADER_SIZE)
                header = CapfHeader.decode(head, max_body)  # a huge length is refused before reading it
                body = await reader.readexactly(header.length)
            return CapfMessage.decode(head + body, max_body)

        return receive

    def _writer_of(self, writer: asyncio.StreamWriter) -> Send:
        timeout = self.settings.send_timeout

        async def send(message: CapfMessage) -> None:
            writer.write(message.encode())  # header and body in one write: phones stall otherwise
            async with asyncio.timeout(timeout):
                await writer.drain()

        return send


def _context_for(identity: Identity, settings: CapfServerSettings) -> ssl.SSLContext:
    """A TLS server context presenting ``identity``, no client certificate asked (docs/capf.md)."""
    try:
        return identity_server_context(identity, min_version=settings.min_tls, max_version=settings.max_tls,
                                       seclevel=settings.seclevel)
    except CertificateError as error:
        raise TransportError(f"the CAPF certificate cannot serve TLS: {error}") from None


@attrs.frozen
class RunningCapfServer:
    """A CAPF server running in a background thread: where to reach it, what it did."""

    host: str
    port: int
    server: CapfServer = attrs.field(repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@contextlib.contextmanager
def running_capf_server(identity: Identity, store: DeviceStore, *, trusted_capf: Certificates,
                        trusted_manufacturing: Certificates,
                        settings: CapfServerSettings = CapfServerSettings(port=0),
                        clock: Callable[[], datetime.datetime] | None = None,
                        random_bytes: RandomBytes = os.urandom, trace: Callable[[str], None] | None = None,
                        start_timeout: float = 10.0) -> Iterator[RunningCapfServer]:
    """Run a CAPF server in a thread with its own event loop until the block ends.

    ``settings.port`` defaults to 0 here: the OS picks a free port. Start-up
    errors (port in use, unusable certificate) are raised here.
    """
    extra = {} if clock is None else {"clock": clock}
    server = CapfServer(identity, store, trusted_capf=trusted_capf, trusted_manufacturing=trusted_manufacturing,
                        settings=settings, random_bytes=random_bytes, trace=trace, **extra)
    with serving_in_thread(server, name="capf", start_timeout=start_timeout):
        yield RunningCapfServer(settings.host, server.port, server)
