"""Secure registration, sans I/O: where and how a phone registers, and what each outcome means.

Rules (docs/registration.md; Cisco TAC notes 200860 and 211304, the Cisco IP Phone
7800 Series and 7945G-7975G Administration Guides, the CUCM Security Guide's
"Phone Security Profile"):

- The configuration's ``deviceSecurityMode`` decides: 1 (Non Secure) registers
  over TCP to the CallManager's SIP port (5060) or, for a phone running SCCP,
  its ``ethernetPhonePort`` (2000); 2 (Authenticated) and 3 (Encrypted) over
  TLS to the secure SIP port (5061) or the secure SCCP port (2443, 443 above
  ``ethernetPhonePort``).
- TLS only with a CTL: the phone trusts the CallManager's certificate only
  when it is the certificate of a CCM or CCM+TFTP record of its CTL (CTL
  only, not ITL or TVS: docs/registration.md).
  Without a CTL it asks for one again, up to ``tls_trust_list_attempts``
  tries in all (the boot's own download counts), then waits.
- A CAPF operation pending on a secure profile with no LSC yet: the phone waits
  for CAPF instead of registering.
- The phone presents its LSC, else its MIC (Cisco TAC 200860).
- A FIPS phone refuses a server key under 2048 bits.

The device layer (``phone.device.registration``) carries a ``Register`` effect
over a socket and reports a ``RegistrationDone`` event whose ``outcome`` is one of
``TransportOutcome``; ``OUTCOMES`` turns it into the JSON ``result`` and ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from phone.firmware.models import PhoneModel
from phone.wire.config import PhoneConfig
from phone.wire.skinny import DEVICE_TYPES
from phone.wire.tlv import Role, TrustList

#: ``deviceSecurityMode`` -> the JSON ``mode`` (CUCM Security Guide, "Phone Security Profile").
MODES: Mapping[int, str] = MappingProxyType({1: "non-secure", 2: "authenticated", 3: "encrypted"})
#: The code of a registration that went through, per mode it went through in (docs/registration.md).
REGISTERED_CODES: Mapping[int, str] = MappingProxyType(
    {1: "registered-nonsecure", 2: "registered-authenticated", 3: "registered-encrypted"})
#: Port usage guide for CUCM: SCCP over TLS listens on 2443, 443 above SCCP's 2000
#: (``sccp.secure_port``); the configuration names only ``ethernetPhonePort``, so the phone
#: takes the secure port 443 above it.
SECURE_SCCP_OFFSET = 443
#: The CTL roles whose certificate a phone accepts from its CallManager (7800 Administration Guide).
CALLMANAGER_ROLES = frozenset({Role.CCM, Role.CCM_TFTP})
#: FIPS 140-2 mode: RSA keys under 2048 bits are refused (CUCM Security Guide, "FIPS 140-2 Mode").
FIPS_MIN_RSA_BITS = 2048
#: Load-name prefixes of SCCP firmware: SCCPxx.… (7900, 6900 series) and P003… (7940/7960 SCCP loads).
SCCP_LOAD_PREFIXES = ("SCCP", "P003")


class TransportOutcome(Enum):
    """What the device layer saw when it carried a ``Register`` effect."""

    ANSWERED_OK = "answered-ok"  # 200 OK / RegisterAckMessage
    ANSWERED_REFUSED = "answered-refused"  # 403 / RegisterRejectMessage
    UNREACHABLE = "unreachable"  # no connection
    SERVER_UNTRUSTED = "server-untrusted"  # the phone's own check of the server certificate failed
    FIPS_KEY_TOO_SMALL = "fips-key-too-small"
    UNKNOWN_CA = "unknown-ca"  # the server's fatal "unknown CA" alert: it does not trust our certificate
    HANDSHAKE_FAILED = "handshake-failed"  # no common TLS version or cipher
    CLOSED = "closed"  # the server closed the connection without answering
    NO_ANSWER = "no-answer"  # silence until the timeout
    MALFORMED = "malformed"  # an answer that is not one


@attrs.frozen
class Outcome:
    result: str  # registered | rejected | failed | waiting
    code: str


def _outcome_table() -> Mapping[TransportOutcome, Outcome]:
    return MappingProxyType({
        TransportOutcome.UNREACHABLE: Outcome("failed", "unreachable"),
        TransportOutcome.SERVER_UNTRUSTED: Outcome("failed", "server-untrusted"),
        TransportOutcome.FIPS_KEY_TOO_SMALL: Outcome("failed", "fips-key-too-small"),
        TransportOutcome.UNKNOWN_CA: Outcome("failed", "client-untrusted"),
        TransportOutcome.HANDSHAKE_FAILED: Outcome("failed", "tls-mismatch"),
        TransportOutcome.NO_ANSWER: Outcome("failed", "no-answer"),
        TransportOutcome.MALFORMED: Outcome("failed", "malformed-answer"),
    })


#: Transport outcomes whose meaning does not depend on TLS or the answer (see ``outcome_of``).
OUTCOMES = _outcome_table()


def outcome_of(outcome: TransportOutcome, mode: int, *, tls: bool) -> Outcome:
    """The JSON result and code of one registration (docs/registration.md, "Outcomes").

    Over TLS, a connection CUCM closes after a handshake that went through is its
    answer to a certificate whose name is not the device's ("InvalidX509NameInCertificate",
    Cisco TAC 211304); over TCP it is only a closed connection. A refusal is
    CUCM's "Registration Rejected" for a device its profile does not let register so.
    """
    if outcome is TransportOutcome.ANSWERED_OK:
        return Outcome("registered", REGISTERED_CODES[mode if tls else 1])
    if outcome is TransportOutcome.ANSWERED_REFUSED:
        return Outcome("rejected", "rejected-security")
    if outcome is TransportOutcome.CLOSED:
        return Outcome("failed", "name-mismatch" if tls else "connection-closed")
    return OUTCOMES[outcome]


@attrs.frozen
class Register:
    """Register with one CallManager: connect, (TLS,) send the register message, read the answer."""

    device_name: str
    protocol: str  # "SIP" or "SCCP"
    mode: int
    address: str
    port: int
    tls: bool
    #: DER of the certificates the phone accepts from the server (its CTL's CCM records).
    pinned: tuple[bytes, ...] = attrs.field(repr=lambda p: f"<{len(p)} certificates>")
    tls_versions: tuple[str, ...]
    timeout: float
    #: "lsc", "mic" or None: the certificate the phone presents (TLS only).
    client_certificate: str | None
    fips: bool = False
    skinny_device_type: int = 0

    @property
    def server(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@attrs.frozen
class Registration:
    """The JSON ``"registration"`` object of one boot (docs/registration.md)."""

    server: str | None
    protocol: str
    mode: str
    result: str
    code: str
    client_certificate: str | None = None
    server_certificate_trusted: bool = False
    reason: str | None = None

    def as_json(self) -> dict[str, object]:
        return attrs.asdict(self)


def signalling_protocol(model: PhoneModel) -> str:
    """SIP or SCCP: the setting ``signalling_protocol``, "auto" reading the load name (see SCCP_LOAD_PREFIXES)."""
    chosen = model.settings.signalling_protocol
    if chosen != "auto":
        return chosen
    load = (model.firmware or "").upper()
    return "SCCP" if load.startswith(SCCP_LOAD_PREFIXES) else "SIP"


def callmanager_certificates(ctl: TrustList | None) -> tuple[bytes, ...]:
    """The certificates of the CTL's CCM and CCM+TFTP records: what a phone accepts from its CallManager."""
    if ctl is None:
        return ()
    return tuple(record.certificate for record in ctl.records
                 if record.function in CALLMANAGER_ROLES and record.certificate)


@attrs.frozen
class Plan:
    """What the phone does next: register (``register``), ask for a CTL again, or stop (``registration``)."""

    register: Register | None = None
    registration: Registration | None = None
    needs_ctl: bool = False
    protocol: str = "SIP"
    mode: int = 1


def plan_registration(config: PhoneConfig, *, ctl: TrustList | None, model: PhoneModel, device_name: str,
                      client_certificate: str | None, lsc: bool) -> Plan | None:
    """The next registration step for a phone with ``config`` and ``ctl`` (None: nothing to register with).

    ``client_certificate`` is what the phone would present ("lsc", "mic" or None);
    ``lsc`` whether it holds an LSC (a pending CAPF operation without one means waiting).
    """
    if not config.call_managers:
        return None
    manager = config.call_managers[0]
    protocol = signalling_protocol(model)
    mode = config.device_security_mode if config.device_security_mode in MODES else 1
    secure = mode in (2, 3)
    base = Plan(protocol=protocol, mode=mode)
    if secure and config.capf_auth_mode and not lsc:
        return attrs.evolve(base, registration=Registration(
            None, protocol, MODES[mode], "waiting", "waiting-capf", client_certificate,
            reason="a CAPF operation is pending and the phone has no LSC yet"))
    if secure and ctl is None:
        return attrs.evolve(base, needs_ctl=True)
    pinned = callmanager_certificates(ctl) if secure else ()
    if secure and not pinned:
        return attrs.evolve(base, registration=Registration(
            None, protocol, MODES[mode], "failed", "server-untrusted", client_certificate,
            reason="the CTL holds no CCM or CCM+TFTP record for the CallManager"))
    if protocol == "SCCP":
        port = manager.sccp_port + SECURE_SCCP_OFFSET if secure else manager.sccp_port
    else:
        port = manager.secure_sip_port if secure else manager.sip_port
    settings = model.settings
    return attrs.evolve(base, register=Register(
        device_name=device_name, protocol=protocol, mode=mode, address=manager.address, port=port, tls=secure,
        pinned=pinned, tls_versions=model.tls_versions, timeout=settings.registration_timeout_seconds,
        client_certificate=client_certificate if secure else None, fips=settings.fips_mode,
        skinny_device_type=DEVICE_TYPES.get(model.name, 0)))


def waiting_for_trust_list(plan: Plan, tries: int, *, arrived: bool) -> Registration:
    """``waiting-trust-list`` after ``tries`` CTL downloads (docs/registration.md)."""
    reason = (f"a CTL is served since the boot's download (try {tries}): the phone resets to install it"
              if arrived else f"no CTL after {tries} tries: a secure profile needs one to trust the CallManager")
    return Registration(None, plan.protocol, MODES[plan.mode], "waiting", "waiting-trust-list", reason=reason)


def check_server_certificate(der: bytes, register: Register) -> tuple[TransportOutcome, str] | None:
    """The phone's check of the CallManager's certificate; None when it passes.

    Only the CTL vouches (docs/registration.md); a FIPS phone also refuses RSA keys under 2048 bits.
    """
    if der not in register.pinned:
        return TransportOutcome.SERVER_UNTRUSTED, "the CallManager's certificate is not a CCM record of the CTL"
    if register.fips:
        try:
            key = x509.load_der_x509_certificate(der).public_key()
        except ValueError:
            return TransportOutcome.SERVER_UNTRUSTED, "the CallManager's certificate cannot be read"
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < FIPS_MIN_RSA_BITS:
            return (TransportOutcome.FIPS_KEY_TOO_SMALL,
                    f"the CallManager's {key.key_size}-bit RSA key is not FIPS compliant")
    return None
