"""The phone's side of one CAPF session, sans I/O (docs/capf.md).

A CAPF server (CUCM's Certificate Authority Proxy Function, Cisco "Security
Guide for Cisco Unified Communications Manager", chapter "Certificate
Authority Proxy Function") speaks first and picks the operation; the phone
answers. ``CapfSession.receive(message)`` takes one decoded message from the
server and returns the messages to send back, in order; once the server has
ended the session, ``outcome`` says what became of it. Nothing here touches
sockets, files or clocks: ``phone.device.capf`` carries the frames over TLS.

Rules of this module (the table ``EXPECTED`` is the code):

- The first message fixes the session id; every later one must carry it, and
  every answer echoes it. A message the step does not expect ends the session
  as "failed" (``CapfProtocolError``); nothing the phone holds changes.
- Authentication by the mode of the configuration (``capfAuthMode``, CUCM
  System Configuration Guide, "Configure CAPF"): 1 the authentication string
  the user typed, 2 an empty string, 3 the LSC (else the MIC), 4 the MIC
  (else the LSC), with the certificate's signatures of docs/capf.md.
- The protocol version the phone announces is the lower of the server's and
  the model's (3 for an EC-capable model, else 2).
- A key is generated only when the server asks for one the phone can make:
  RSA 512-4096, or an EC curve with protocol version 3 on an EC-capable phone
  (Cisco "Security Guide", "ECDSA support"). Otherwise the answer carries no
  public key, which tells the server key generation failed.
- An LSC is kept only when it is for this device's name and for the key the
  phone generated in this session. Anything else is answered with REASON 7
  and leaves the identity as it was.
- A fetch sends the LSC (REASON 7 when there is none); a delete drops it,
  after which the phone speaks with its MIC again (Cisco TAC note 200860).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from phone.errors import CertificateError
from phone.wire.capf import (
    CapfMessage,
    CapfProtocolError,
    CertificateType,
    Command,
    Curve,
    KeyType,
    Reason,
    Tag,
)
from phone.wire.capf_signing import auth_data, sign_auth_data
from phone.wire.certs import Identity, load_certificate

#: ``capfAuthMode`` of the configuration (CUCM System Configuration Guide, "Configure CAPF").
AUTH_STRING, NULL_STRING, EXISTING_LSC, EXISTING_MIC = 1, 2, 3, 4
AUTH_MODE_NAMES = {AUTH_STRING: "authentication string", NULL_STRING: "null string",
                   EXISTING_LSC: "existing certificate (precedence to LSC)",
                   EXISTING_MIC: "existing certificate (precedence to MIC)"}
#: RSA sizes a CAPF profile offers (Cisco "Security Guide", phone security profile: 512-4096).
RSA_SIZES = frozenset({512, 1024, 2048, 3072, 4096})
_CURVES = {Curve.P256: ec.SECP256R1, Curve.P384: ec.SECP384R1, Curve.P521: ec.SECP521R1}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@attrs.frozen
class KeySpec:
    """A key the server asked for: ``kind`` "rsa" with ``size`` bits, or "ec" with the curve's bits."""

    kind: str
    size: int

    @property
    def label(self) -> str:
        """``rsa2048``, ``ec256``, …: the ``"key"`` of the JSON ``"identity"."lsc"``."""
        return f"{self.kind}{self.size}"

    def generate(self) -> PrivateKey:
        if self.kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=self.size)
        curve = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}[self.size]
        return ec.generate_private_key(curve())


#: Where a session's new key comes from: freshly generated (the default), or a pool (fleets).
KeySource = Callable[[KeySpec], PrivateKey]


def generate_key(spec: KeySpec) -> PrivateKey:
    return spec.generate()


def key_label(key: object) -> str | None:
    """The label of an existing key (``rsa2048``, ``ec256``), None for other kinds."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"ec{key.curve.key_size}"
    return None


def _public_der(key: object) -> bytes:
    """The SubjectPublicKeyInfo DER of a public key, or of a private key's public half."""
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


@attrs.frozen
class CapfCredentials:
    """What the phone can authenticate with: its MIC, its LSC and what the user typed."""

    mic: Identity | None = None
    lsc: Identity | None = None
    auth_string: str | None = None


@attrs.frozen
class CapfOutcome:
    """How a session ended (the JSON ``"capf"``, docs/capf.md).

    ``operation``: install, upgrade, delete, fetch, or None when the server chose none.
    ``result``: installed, deleted, fetched, nothing_pending, refused or failed.
    ``lsc``: the new LSC with its key (result installed); the caller keeps it in flash.
    """

    result: str
    reason: str | None = None
    operation: str | None = None
    lsc: Identity | None = attrs.field(default=None, repr=False)
    key: str | None = None


class Step(enum.Enum):
    AUTH_REQUEST = "auth-request"   # waiting for the server's AUTH_REQUEST
    OPERATION = "operation"         # authenticated: key request, fetch, delete or the end
    STORE = "store"                 # key sent: waiting for the LSC
    END = "end"                     # answered the operation: waiting for END_SESSION
    DONE = "done"


#: Which server commands each step takes; anything else ends the session as failed.
EXPECTED: dict[Step, frozenset[Command]] = {
    Step.AUTH_REQUEST: frozenset({Command.AUTH_REQUEST}),
    Step.OPERATION: frozenset({Command.KEY_GENERATE_REQUEST, Command.FETCH_CERTIFICATE_REQUEST,
                               Command.DELETE_CERTIFICATE_REQUEST, Command.END_SESSION}),
    Step.STORE: frozenset({Command.STORE_CERTIFICATE_REQUEST, Command.END_SESSION}),
    Step.END: frozenset({Command.END_SESSION}),
    Step.DONE: frozenset(),
}


def blocked_reason(auth_mode: int, credentials: CapfCredentials) -> str | None:
    """Why the phone cannot start a session in ``auth_mode`` at all (it then never connects), or None."""
    if auth_mode == AUTH_STRING and not credentials.auth_string:
        return "waiting for the authentication string to be entered on the phone (phone boot --auth-string)"
    if auth_mode in (EXISTING_LSC, EXISTING_MIC) and credentials.mic is None and credentials.lsc is None:
        return "no certificate to authenticate with: the phone holds neither an LSC nor a MIC"
    if auth_mode not in AUTH_MODE_NAMES:
        return f"unknown capfAuthMode {auth_mode}"
    return None


def certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The subject CNs and the SAN URIs and DNS names of ``certificate``."""
    names = [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return tuple(names)
    names += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    names += [str(v) for v in san.get_values_for_type(x509.DNSName)]
    return tuple(names)


def names_device(certificate: x509.Certificate, device_name: str) -> bool:
    """Whether ``certificate`` is for ``device_name``: a CN equal to it or ending in ``-<name>``
    (CUCM's ``CN=CP-<model>-SEP<MAC>``, Cisco TAC note 215014), else a SAN equal to it (capfd)."""
    wanted = device_name.upper()
    return any(name.upper() == wanted or name.upper().endswith("-" + wanted)
               for name in certificate_names(certificate))


class CapfSession:
    """One connection's exchange, from the phone's side (see the module docstring)."""

    def __init__(self, device_name: str, auth_mode: int, credentials: CapfCredentials, *,
                 phone_version: int, ec_capable: bool, send_request_in_progress: bool = True,
                 keys: KeySource = generate_key) -> None:
        self.device_name = device_name
        self.auth_mode = auth_mode
        self.credentials = credentials
        self.phone_version = phone_version
        self.ec_capable = ec_capable
        self.send_request_in_progress = send_request_in_progress
        self.keys = keys
        self.step = Step.AUTH_REQUEST
        self.session_id: int | None = None
        self.version: int | None = None
        self.operation: str | None = None
        self.outcome: CapfOutcome | None = None
        self._key: PrivateKey | None = None
        self._spec: KeySpec | None = None
        self._new_lsc: Identity | None = None
        self._problem: str | None = None

    @property
    def done(self) -> bool:
        return self.step is Step.DONE

    # -- entry point ---------------------------------------------------------------------

    def receive(self, message: CapfMessage) -> list[CapfMessage]:
        """Take one message from the server; return the answers to send, in order.

        Raises ``CapfProtocolError`` for a message out of place (the session is then over).
        """
        if self.done:
            raise CapfProtocolError(f"{message.command.name} after the session ended")
        if self.session_id is None:
            self.session_id = message.session_id
        elif message.session_id != self.session_id:
            raise CapfProtocolError(f"session id {message.session_id:#010x} in {message.command.name}, "
                                    f"the session is {self.session_id:#010x}")
        if message.command not in EXPECTED[self.step]:
            wanted = " or ".join(sorted(c.name for c in EXPECTED[self.step]))
            raise CapfProtocolError(f"{message.command.name} while waiting for {wanted}")
        handler = {
            Command.AUTH_REQUEST: self._on_auth_request,
            Command.KEY_GENERATE_REQUEST: self._on_key_request,
            Command.STORE_CERTIFICATE_REQUEST: self._on_store,
            Command.FETCH_CERTIFICATE_REQUEST: self._on_fetch,
            Command.DELETE_CERTIFICATE_REQUEST: self._on_delete,
            Command.END_SESSION: self._on_end,
        }[message.command]
        return handler(message)

    def _answer(self, command: Command, **fields: object) -> CapfMessage:
        return CapfMessage.build(command, self.session_id or 0, **fields)

    # -- authentication ------------------------------------------------------------------

    def _presented(self) -> tuple[Identity, CertificateType] | None:
        lsc, mic = self.credentials.lsc, self.credentials.mic
        order = [(lsc, CertificateType.LSC), (mic, CertificateType.MIC)]
        if self.auth_mode == EXISTING_MIC:
            order.reverse()
        for identity, kind in order:
            if identity is not None:
                return identity, kind
        return None

    def _on_auth_request(self, message: CapfMessage) -> list[CapfMessage]:
        server_version = message.version if message.version is not None else 1
        self.version = max(1, min(server_version, self.phone_version))
        fields: dict[str, object] = {"reason": Reason.OK, "version": self.version,
                                     "device_name": self.device_name}
        if self.auth_mode == AUTH_STRING:
            fields["password"] = self.credentials.auth_string or ""
        elif self.auth_mode == NULL_STRING:
            fields["password"] = ""
        else:
            presented = self._presented()
            if presented is None:  # blocked_reason keeps a phone without certificates from calling
                raise CapfProtocolError("no certificate to authenticate with")
            identity, kind = presented
            data = auth_data(self.device_name, identity.der)
            sha2 = sign_auth_data(identity.private_key, data, "sha512")
            fields.update(certificate_type=kind, certificate_der=identity.der,
                          signed_data=sign_auth_data(identity.private_key, data, "sha1"),
                          sha2_signed_data=bytes([3]) + len(sha2).to_bytes(2, "big") + sha2)
        self.step = Step.OPERATION
        return [self._answer(Command.AUTH_RESPONSE, **fields)]

    # -- install / upgrade ---------------------------------------------------------------

    def _requested_key(self, message: CapfMessage) -> tuple[KeySpec | None, str | None]:
        """The key the server asks for, or why the phone cannot make it."""
        kind = message.key_type if message.key_type is not None else KeyType.RSA
        if kind == KeyType.RSA:
            size = message.key_size
            if size not in RSA_SIZES:
                return None, f"the server asked for an RSA key of {size} bits (phones make 512-4096)"
            return KeySpec("rsa", size), None
        if kind == KeyType.EC:
            if message.curve not in _CURVES:
                return None, f"the server asked for an unknown curve {message.curve}"
            if not self.ec_capable or (self.version or 0) < 3:
                return None, ("the server asked for an EC key; this phone makes EC keys only with "
                              "CAPF version 3 on EC-capable firmware")
            return KeySpec("ec", Curve(message.curve).bits), None
        return None, f"the server asked for an unknown key type {kind}"

    def _on_key_request(self, message: CapfMessage) -> list[CapfMessage]:
        self.operation = "upgrade" if self.credentials.lsc is not None else "install"
        spec, problem = self._requested_key(message)
        self.step = Step.STORE
        if spec is None:
            self._problem = problem
            return [self._answer(Command.KEY_GENERATE_RESPONSE)]  # no PUBLIC_KEY: generation failed
        self._spec, self._key = spec, self.keys(spec)
        answers = [self._answer(Command.REQUEST_IN_PROGRESS)] if self.send_request_in_progress else []
        return answers + [self._answer(Command.KEY_GENERATE_RESPONSE, public_key=_public_der(self._key))]

    def _lsc_problem(self, message: CapfMessage) -> tuple[x509.Certificate | None, str | None]:
        if self._key is None:
            return None, self._problem or "no key was generated for it"
        if message.certificate is None:
            return None, "STORE_CERTIFICATE_REQUEST without a certificate"
        kind, der = message.certificate
        declared = message.elements.get(Tag.CERTIFICATE_TYPE)  # optional beside the CERTIFICATE's own type
        if kind != CertificateType.LSC or (declared is not None and declared != bytes([CertificateType.LSC])):
            return None, f"the certificate to store is of type {kind}, not an LSC"
        try:
            certificate = load_certificate(der, source="the certificate CAPF sent")
        except CertificateError as error:
            return None, str(error)
        if _public_der(certificate.public_key()) != _public_der(self._key):
            return None, "the certificate is not for the key this phone generated"
        if not names_device(certificate, self.device_name):
            return None, f"the certificate is not for {self.device_name} ({certificate.subject.rfc4514_string()})"
        return certificate, None

    def _on_store(self, message: CapfMessage) -> list[CapfMessage]:
        certificate, problem = self._lsc_problem(message)
        self.step = Step.END
        if certificate is None or self._key is None:
            self._problem = problem
            return [self._answer(Command.STORE_CERTIFICATE_RESPONSE, reason=Reason.FAILED)]
        self._new_lsc = Identity(certificate, self._key)
        return [self._answer(Command.STORE_CERTIFICATE_RESPONSE, reason=Reason.OK)]

    # -- fetch and delete ----------------------------------------------------------------

    def _on_fetch(self, message: CapfMessage) -> list[CapfMessage]:
        self.operation, self.step = "fetch", Step.END
        lsc = self.credentials.lsc
        if lsc is None:
            self._problem = "the phone holds no LSC to send"
            return [self._answer(Command.FETCH_CERTIFICATE_RESPONSE, reason=Reason.FAILED)]
        return [self._answer(Command.FETCH_CERTIFICATE_RESPONSE, reason=Reason.OK,
                             certificate_type=CertificateType.LSC, certificate_der=lsc.der)]

    def _on_delete(self, message: CapfMessage) -> list[CapfMessage]:
        self.operation, self.step = "delete", Step.END
        if self.credentials.lsc is None:
            self._problem = "the phone holds no LSC to delete"
            return [self._answer(Command.DELETE_CERTIFICATE_RESPONSE, reason=Reason.FAILED)]
        return [self._answer(Command.DELETE_CERTIFICATE_RESPONSE, reason=Reason.OK)]

    # -- the end -------------------------------------------------------------------------

    def _on_end(self, message: CapfMessage) -> list[CapfMessage]:
        reason = message.reason
        said = f"END_SESSION reason {reason}" + (f" ({message.reason_info})" if message.reason_info else "")
        before, self.step = self.step, Step.DONE
        if before is Step.OPERATION:
            self.outcome = self._end_before_operation(reason, said)
        elif self._problem is not None:
            self.outcome = CapfOutcome("failed", self._problem, self.operation)
        elif reason not in (Reason.OK, Reason.NOTHING_PENDING) or before is Step.STORE:
            self.outcome = CapfOutcome("failed", f"the server ended the {self.operation} with {said}",
                                       self.operation)
        elif self.operation == "fetch":
            self.outcome = CapfOutcome("fetched", None, "fetch")
        elif self.operation == "delete":
            self.outcome = CapfOutcome("deleted", None, "delete")
        else:
            spec = self._spec
            self.outcome = CapfOutcome("installed", None, self.operation, self._new_lsc,
                                       spec.label if spec else None)
        return []

    @staticmethod
    def _end_before_operation(reason: int | None, said: str) -> CapfOutcome:
        if reason in (Reason.NOTHING_PENDING, Reason.OK):
            return CapfOutcome("nothing_pending", said)
        if reason == Reason.UNKNOWN_DEVICE:
            return CapfOutcome("refused", f"the server does not know this device ({said})")
        if reason == Reason.FAILED:
            return CapfOutcome("refused", f"the server refused the authentication ({said})")
        return CapfOutcome("refused", said)

