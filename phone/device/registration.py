"""The phone's signalling client: a ``Register`` effect carried over TCP or TLS (docs/registration.md).

One connection per registration: connect, for TLS handshake presenting the
phone's LSC (else its MIC) and check the CallManager's certificate with the
firmware's rule (``phone.firmware.registration.check_server_certificate``),
send one SIP REGISTER or Skinny RegisterMessage, read one answer. What was
seen comes back as a ``RegistrationDone`` event; nothing here decides what it
means. Every wait is bounded by the effect's timeout, and an answer is read
through the wire codecs' bounded framing, so a hostile server (garbage,
silence, an endless line) ends the registration with one reason.
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from phone.device.identity import PhoneIdentity
from phone.errors import SignallingFormatError
from phone.firmware.machine import RegistrationDone
from phone.firmware.registration import (
    Register,
    TransportOutcome,
    check_server_certificate,
)
from phone.tls import ClientIdentity, client_context, error_reason
from phone.wire import sip, skinny

_READ_BYTES = 4096


def identity_files(identity: PhoneIdentity | None, kind: str | None, folder: Path) -> ClientIdentity | None:
    """The files of the certificate ``kind`` ("lsc" or "mic") of ``identity``, written into ``folder``.

    OpenSSL loads a client certificate only from files, and the phone's LSC lives in its
    flash as one record (``phone.device.identity``) that CAPF may replace in the middle of a
    boot; so the files are written when the registration asks for them, named after the
    certificate's serial number (two certificates never share files), key mode 0600.
    None when the phone holds no such certificate.
    """
    chosen = None if identity is None else identity.lsc if kind == "lsc" else identity.mic if kind == "mic" else None
    if chosen is None:
        return None
    stem = folder / f"{kind}-{chosen.certificate.serial_number:x}"
    certificate, key = stem.with_suffix(".pem"), stem.with_suffix(".key")
    if not key.exists():
        certificate.write_bytes(chosen.certificate_pem())
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(chosen.private_key_pem())
    return ClientIdentity(certificate, key)


def _classify_tls_error(error: BaseException) -> TransportOutcome:
    """An OpenSSL failure as the phone tells them apart: the server's "unknown CA" alert, or no agreement."""
    reason = error_reason(error).upper()
    if "UNKNOWN_CA" in reason or "UNKNOWN CA" in reason:
        return TransportOutcome.UNKNOWN_CA
    if isinstance(error, ssl.SSLEOFError) or "EOF" in reason:
        return TransportOutcome.CLOSED
    return TransportOutcome.HANDSHAKE_FAILED


class SignallingTransport:
    """Register effects over real sockets; ``identity`` is the certificate the phone presents over TLS.

    With ``identities`` the certificate is looked up when each registration starts, by the kind
    the ``Register`` effect names ("lsc" or "mic"): a phone that got its LSC from CAPF earlier in
    the same boot presents that LSC (docs/registration.md).
    """

    def __init__(self, identity: ClientIdentity | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 identities: Callable[[str], ClientIdentity | None] | None = None) -> None:
        self.identity = identity
        self._clock = clock
        self._identities = identities

    def _presented(self, register: Register) -> ClientIdentity | None:
        if self._identities is None:
            return self.identity
        return self._identities(register.client_certificate) if register.client_certificate else None

    def __call__(self, register: Register) -> RegistrationDone:
        ends = self._clock() + register.timeout
        try:
            raw = socket.create_connection((register.address, register.port), timeout=register.timeout)
        except OSError as error:
            return RegistrationDone(TransportOutcome.UNREACHABLE, f"{register.server}: {error_reason(error)}")
        with raw:
            connection: socket.socket = raw
            trusted = False
            if register.tls:
                outcome = self._handshake(raw, register, ends)
                if isinstance(outcome, RegistrationDone):
                    return outcome
                connection, trusted = outcome, True
            try:
                local_address, local_port = connection.getsockname()[:2]
                connection.settimeout(max(0.01, ends - self._clock()))
                connection.sendall(_request(register, local_address, local_port))
                return self._answer(connection, register, ends, trusted)
            except TimeoutError:
                return RegistrationDone(TransportOutcome.NO_ANSWER,
                                        f"no answer within {register.timeout:g} s", trusted)
            except ssl.SSLError as error:
                return RegistrationDone(_classify_tls_error(error), error_reason(error), trusted)
            except OSError as error:
                return RegistrationDone(TransportOutcome.CLOSED, error_reason(error), trusted)

    def _handshake(self, raw: socket.socket, register: Register, ends: float) -> ssl.SSLSocket | RegistrationDone:
        context = client_context(register.tls_versions, self._presented(register))
        try:
            raw.settimeout(max(0.01, ends - self._clock()))
            connection = context.wrap_socket(raw, server_hostname=None)
        except TimeoutError:
            return RegistrationDone(TransportOutcome.NO_ANSWER, "no TLS handshake within the timeout")
        except ssl.SSLError as error:
            # Inside the handshake a closed connection is a failed handshake, not CUCM's answer
            # to a certificate name (that comes after a handshake that went through).
            outcome = _classify_tls_error(error)
            if outcome is TransportOutcome.CLOSED:
                outcome = TransportOutcome.HANDSHAKE_FAILED
            return RegistrationDone(outcome, f"TLS handshake: {error_reason(error)}")
        except OSError as error:
            return RegistrationDone(TransportOutcome.HANDSHAKE_FAILED, f"TLS handshake: {error_reason(error)}")
        problem = check_server_certificate(connection.getpeercert(binary_form=True) or b"", register)
        if problem is not None:
            connection.close()
            return RegistrationDone(problem[0], problem[1])
        return connection

    def _answer(self, connection: socket.socket, register: Register, ends: float,
                trusted: bool) -> RegistrationDone:
        buffer = b""
        while True:
            try:
                done = _read_answer(register.protocol, buffer, trusted)
            except SignallingFormatError as error:
                return RegistrationDone(TransportOutcome.MALFORMED, str(error), trusted)
            if done is not None:
                return done
            left = ends - self._clock()
            if left <= 0:
                return RegistrationDone(TransportOutcome.NO_ANSWER, f"no answer within {register.timeout:g} s",
                                        trusted)
            connection.settimeout(left)
            chunk = connection.recv(_READ_BYTES)
            if not chunk:
                what = "after the TLS handshake" if register.tls else "after the request"
                return RegistrationDone(TransportOutcome.CLOSED, f"the server closed the connection {what} "
                                                                 "without answering", trusted)
            buffer += chunk


def _request(register: Register, local_address: str, local_port: int) -> bytes:
    if register.protocol == "SCCP":
        address = local_address if local_address.count(".") == 3 else "0.0.0.0"
        return skinny.RegisterMessage(register.device_name, address,
                                      device_type=register.skinny_device_type).frame().encode()
    token = secrets.token_hex(8)
    return sip.RegisterRequest(register.device_name, register.address, local_address, local_port,
                               "TLS" if register.tls else "TCP", call_id=f"{token}@{local_address}",
                               tag=token[:8], branch=f"z9hG4bK{token}").encode()


def _read_answer(protocol: str, buffer: bytes, trusted: bool) -> RegistrationDone | None:
    """The answer in ``buffer`` as an event, None while incomplete; SignallingFormatError for garbage."""
    if protocol == "SCCP":
        frame, _ = skinny.read_frame(buffer)
        if frame is None:
            return None
        if frame.message_id == skinny.REGISTER_ACK:
            skinny.RegisterAck.from_frame(frame)
            return RegistrationDone(TransportOutcome.ANSWERED_OK, "RegisterAckMessage", trusted)
        if frame.message_id == skinny.REGISTER_REJECT:
            text = skinny.RegisterReject.from_frame(frame).text
            return RegistrationDone(TransportOutcome.ANSWERED_REFUSED, f"RegisterRejectMessage: {text}", trusted)
        raise SignallingFormatError(f"Skinny message 0x{frame.message_id:04X} where a register answer was due")
    while True:
        message, buffer = sip.read_message(buffer)
        if message is None:
            return None
        status = message.status
        if status is None:
            raise SignallingFormatError(f"a SIP request ({message.start_line[:40]}) where an answer was due")
        if status < 200:
            continue  # provisional: the final answer follows
        line = message.start_line.removeprefix("SIP/2.0 ")
        if status == 200:
            return RegistrationDone(TransportOutcome.ANSWERED_OK, line, trusted)
        if status == 403:
            warning = message.header("warning")
            return RegistrationDone(TransportOutcome.ANSWERED_REFUSED,
                                    f"{line}: {warning}" if warning else line, trusted)
        raise SignallingFormatError(f"an unexpected answer to REGISTER: {line[:60]}")
