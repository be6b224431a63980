"""The phone's trust state machine, sans I/O (docs/phone.md).

Rules of this module, in the manner of h11 (the tables are the code):

- Events in, effects out: ``PhoneMachine.handle(event, now)`` returns the next
  machine (a new frozen value) and the effects to carry out. Nothing here
  touches sockets, files, threads or clocks; ``now`` (Unix seconds) is only
  used for the TVS cache's expiry.
- ``TRANSITIONS`` says which events each step takes, keyed on (step, event
  type). An event in a step where it has no entry is the caller's bug and
  raises ``LocalProtocolError``; nothing else checks steps. Power (``Booted``)
  and the menu (``Erased``, ``FactoryReset``) are taken in every step.
- ``NEXT_STEP`` is the boot's flow (Cisco TAC note 118893, "Security by
  Default"): on entering a download step the machine fetches its file; after
  the file the boot goes to the step's "found" successor (also when the file
  was refused, or its download failed: a per-device ITL that timed out is not
  retried as ITLFile.tlv, the server is the same) or, on "File not found", to
  its "missing" successor. ``CONFIG`` stands for the configuration step the
  flash calls for: the signed one once a trust list is installed (after this
  boot's own updates), the plain one otherwise; the encrypted one first when
  the model reads encrypted configurations, a trust list is installed and the
  stored configuration says ``encrConfig`` (docs/encrypted-config.md). A
  configuration step already taken this boot is not taken again (the stub
  leads to the encrypted file, whose absence leads back to the stub). A model without CTL support
  starts at ITL_DEVICE; one without ITL support skips both ITL steps.
- Assessing a file applies the acceptance table of ``phone.firmware.trust``:
  accept, reject, or ask TVS (step TVS, which returns to the file's step when
  TVS has answered). TVS is asked with QUERY_CERT_REQ (type 3); when the
  server drops the connection, times out after the request or answers
  nothing useful, and the setting ``tvs_fallback_to_verify`` is on, once more
  with CERT_VERIFICATION_REQ (type 1) carrying the new file's own SAST
  certificate.
- An encrypted configuration (docs/encrypted-config.md, ``phone.firmware.encrypted``):
  a stub (``encrConfig`` true, ``fullConfig`` false) is never applied; its
  ``certHash`` naming the phone's LSC, else MIC, sends the boot to the
  ``.enc.sgn``, whose signature is assessed as a signed configuration's before
  it is decrypted. A stub naming another certificate or none, or a file that
  does not open, leaves ``BootReport.capf_needed`` set: the configuration
  cannot be read before a CAPF session.
- After the configuration step (whatever became of the file), a stored configuration
  that names CAPF servers with a ``capfAuthMode`` above 0 sends the boot to step CAPF
  (``phone.firmware.capf_plan``): one ``EnrolCapf`` effect, answered by ``CapfFinished``;
  an LSC is kept (``KeepLsc``) or dropped (``DropLsc``) only when the operation succeeded.
- Whatever fails, ``flash`` (what is installed) is left exactly as it was.
  After an update TVS vouched for, the TVS cache is flushed (setting).
- Transports (docs/http.md): each ``Fetch`` names the transport to use. A model that
  provisions over HTTP first (setting ``http_first``), on a phone that knows an HTTP
  service (``http_service``), asks each file over HTTP; anything but the file (an HTTP
  error status, a refused or timed-out connection) gets one TFTP try of the same name
  in the same step, and TFTP's "File not found" is final. With an installed ITL that
  carries the version 1.1 marker, the configuration step starts with ``SEP<MAC>.cnf.xml``
  over HTTPS (step CONFIG_HTTPS), from a server pinned to the lists' TFTP records; what
  it does not bring, the signed configuration step asks for as usual.
- Registration (``phone.firmware.registration``, docs/registration.md) follows
  the configuration (and CAPF, when it ran) when the boot was started with ``Booted(register=True)``:
  step REGISTER carries one ``Register`` effect and takes its ``RegistrationDone``;
  a secure profile without a CTL first asks for the CTL again (step
  REGISTER_CTL) up to the setting ``tls_trust_list_attempts``.
- The machine reports what happened as structured ``Log`` events;
  ``phone.console`` renders them (process ids, wording) in the model's dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, Union

import attrs

from phone.wire.certs import Identity
from phone.wire.config import PhoneConfig, TvsMember
from phone.firmware.capf_plan import EnrolCapf, enrolment, pending as capf_pending
from phone.firmware.capf_session import CapfOutcome
from phone.errors import ConfigFormatError, EncryptedConfigError, LocalProtocolError, TrustListFormatError
from phone.firmware.encrypted import ENCRYPTED_SUFFIX, CapfNeeded, PhoneKeys, is_stub, open_encrypted, stub_problem
from phone.firmware.models import PhoneModel
from phone.wire.encconfig import EncryptedConfig
from phone.firmware.registration import (
    MODES,
    Plan,
    Register,
    Registration,
    TransportOutcome,
    outcome_of,
    plan_registration,
    waiting_for_trust_list,
)
from phone.wire.tlv import FileKind, TrustList
from phone.wire.tvs import TvsMessage, UnencodableTvsMessage
from phone.firmware.trust import (
    Assessment,
    CachedCertificate,
    Item,
    Decision,
    Rule,
    Trusted,
    assess,
    assess_tvs_answer,
    rule_for,
)

QUERY_CERT_REQ = 3
CERT_VERIFICATION_REQ = 1

#: How a file is fetched (``Fetch.transport``, the file events' ``transport``; docs/http.md).
TFTP, HTTP, HTTPS = "tftp", "http", "https"


# --- persisted state ------------------------------------------------------------------


def _installed_list(value: TrustList | bytes | None) -> TrustList | None:
    """A trust list as the flash keeps it: parsed once, when it is installed or loaded.

    Bytes (from a flash store) that no longer parse count as absent, as they always did:
    the phone then holds no such list.
    """
    if value is None or isinstance(value, TrustList):
        return value
    try:
        return TrustList.from_bytes(bytes(value))
    except TrustListFormatError:
        return None


@attrs.frozen
class Flash:
    """What a phone keeps across reboots: its trust lists, its configuration, its TVS cache.

    The lists are kept parsed (a ``TrustList`` carries its own bytes in ``data``), so
    nothing re-parses them at every step; they are immutable, so phones holding the same
    list may share one object (the fleet does).
    """

    ctl: TrustList | None = attrs.field(default=None, converter=_installed_list)
    itl: TrustList | None = attrs.field(default=None, converter=_installed_list)
    config: bytes | None = None
    config_name: str | None = None
    tvs_cache: tuple[CachedCertificate, ...] = ()
    #: ``config`` as last read, with the bytes it was read from: a new flash made from this one
    #: (an installed list, a TVS answer) keeps the reading, and a changed ``config`` is read anew.
    #: Not part of what the phone keeps: equality and the record's text ignore it.
    #: None in the pair: those bytes do not read as a configuration.
    _config_read: tuple[bytes, PhoneConfig | None] | None = attrs.field(default=None, eq=False, repr=False)

    def trusted(self) -> Trusted:
        """The installed lists and the TVS cache, as the acceptance rules read them."""
        return Trusted(ctl=self.ctl, itl=self.itl, tvs_cache=self.tvs_cache)

    def list_for(self, item: Item) -> TrustList | None:
        return self.ctl if item is Item.CTL else self.itl

    def stored_config(self) -> PhoneConfig:
        """The stored configuration, read (an unreadable one reads as empty).

        A boot asks for it several times; ``PhoneConfig.from_bytes`` keeps the last 1,024
        readings, which a fleet worker holding more phones than that (each phone's
        configuration names its device, so every one differs) would read again at every
        call. The reading is kept with this flash instead, checked against the bytes.
        """
        if self.config is None:
            return PhoneConfig()
        read = self._config_read
        if read is None or read[0] != self.config:
            try:
                read = (self.config, PhoneConfig.from_bytes(self.config))
            except ConfigFormatError:
                read = (self.config, None)
            object.__setattr__(self, "_config_read", read)  # a cache, not part of the value
        return read[1] if read[1] is not None else PhoneConfig()

    def read_config(self, xml: bytes, *, source: str) -> PhoneConfig:
        """``PhoneConfig.from_bytes(xml, source=source)``, from the kept reading when ``xml`` is the
        stored configuration (a phone whose configuration did not change since its last boot)."""
        read = self._config_read
        if read is not None and read[1] is not None and read[0] == xml:
            return read[1]
        return PhoneConfig.from_bytes(xml, source=source)


# --- events ---------------------------------------------------------------------------


@attrs.frozen
class Booted:
    """The phone powers up (or resets) and starts its trust-list downloads.

    ``register``: after the configuration, register with the CallManager
    (docs/registration.md); ``client_certificate`` is what the phone holds to
    present over TLS: "lsc", "mic" or None.
    """

    register: bool = False
    client_certificate: str | None = None


@attrs.frozen
class FileFetched:
    """A file arrived. ``parsed`` may carry ``data`` already parsed as a CTL or ITL (the device
    layer shares one parse among phones downloading the same list); it is used only when it is
    the parse of these very bytes."""

    name: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    server: str | None = None
    parsed: TrustList | None = attrs.field(default=None, repr=False, eq=False)
    #: How it came: TFTP, HTTP, or HTTPS from a server whose certificate was pinned.
    transport: str = attrs.field(default=TFTP, kw_only=True)

    def trust_list(self) -> TrustList:
        """``data`` as a CTL or ITL; raises TrustListFormatError."""
        if self.parsed is not None and self.parsed.data == self.data:
            return self.parsed
        return TrustList.from_bytes(self.data)


@attrs.frozen
class FileMissing:
    """The server answered "File not found" (over HTTP: any status but 200, docs/http.md)."""

    name: str
    transport: str = attrs.field(default=TFTP, kw_only=True)


@attrs.frozen
class FileFailed:
    """The download did not complete (timeout, transport error, file too large)."""

    name: str
    reason: str
    transport: str = attrs.field(default=TFTP, kw_only=True)


@attrs.frozen
class TvsAttempt:
    """One TVS server tried for one request (the phone's JSON `tvs_requests`).

    ``bytes_sent`` and ``bytes_received`` are the sizes of the request and the answer on this
    connection (0 when none went out or came back): what the phone's console reports of the
    exchange, and the report's record of it.
    """

    server: str | None
    message_type: int
    status: int | None = None
    roles: tuple[int, ...] = ()
    error: str | None = None
    bytes_sent: int = 0
    bytes_received: int = 0


@attrs.frozen
class TvsAnswered:
    """A TVS server answered (CERT_VERIFICATION_RES or QUERY_CERT_RES)."""

    server: str
    status: int
    roles: tuple[int, ...] = ()
    ttl: int | None = None
    certificate: bytes | None = None
    attempts: tuple[TvsAttempt, ...] = ()


class TvsFailure(Enum):
    """How a TVS request failed; decides whether the type-1 fall-back is worth trying."""

    UNREACHABLE = "unreachable"  # no member accepted a connection
    UNTRUSTED_SERVER = "untrusted-server"  # the server's certificate is not a TVS record of the ITL
    DROPPED = "dropped"  # the connection closed before an answer
    TIMEOUT = "timeout"  # the request went out, no answer came
    MALFORMED = "malformed"  # an answer that is not a TVS message

    @property
    def worth_a_fallback(self) -> bool:
        """docs/tvs.md: a server that does not understand QUERY drops the connection or answers nothing useful."""
        return self in (TvsFailure.DROPPED, TvsFailure.TIMEOUT, TvsFailure.MALFORMED)


@attrs.frozen
class TvsFailed:
    kind: TvsFailure
    error: str
    attempts: tuple[TvsAttempt, ...] = ()


@attrs.frozen
class Erased:
    """The manual erase from the phone's menu (docs/phone.md)."""

    ctl: bool = True
    itl: bool = True


@attrs.frozen
class FactoryReset:
    """Hold # at power-up, 123456789*0#: everything goes (docs/phone.md)."""


@attrs.frozen
class CapfFinished:
    """The CAPF operation of ``EnrolCapf`` ended (docs/capf.md). ``server`` is the one that
    answered (None when none did); ``failures`` the servers tried before it, each with why."""

    outcome: CapfOutcome
    server: str | None = None
    failures: tuple[tuple[str, str], ...] = ()



@attrs.frozen
class RegistrationDone:
    """The device layer carried a ``Register`` effect: what it saw (docs/registration.md)."""

    outcome: TransportOutcome
    reason: str | None = None
    #: The phone's own check of the CallManager's certificate passed (False over TCP).
    server_certificate_trusted: bool = False


Event = Union[Booted, FileFetched, FileMissing, FileFailed, TvsAnswered, TvsFailed, Erased, FactoryReset,
              CapfFinished, RegistrationDone]


# --- effects --------------------------------------------------------------------------


@attrs.frozen
class Fetch:
    """Download ``name`` over ``transport`` (refuse anything over ``max_bytes``).

    Over HTTPS the server's certificate must be one of ``pinned`` (DER), else nothing is
    asked and the download fails (docs/http.md)."""

    name: str
    store_as: str
    max_bytes: int | None = None
    transport: str = attrs.field(default=TFTP, kw_only=True)
    pinned: tuple[bytes, ...] = attrs.field(default=(), kw_only=True, repr=lambda p: f"<{len(p)} certificates>")


@attrs.frozen
class AskTvs:
    """Send one TVS request to the members in priority order, trusting only ``pinned`` servers."""

    message_type: int
    device_name: str
    members: tuple[TvsMember, ...]
    pinned: tuple[bytes, ...] = attrs.field(repr=lambda p: f"<{len(p)} certificates>")
    tls_versions: tuple[str, ...]
    timeout: float
    subject: str | None = None
    issuer: str | None = None
    serial: bytes | None = None
    certificate: bytes | None = attrs.field(default=None, repr=lambda c: "None" if c is None else f"<{len(c)} bytes>")


def _unsendable(ask: AskTvs) -> str | None:
    """Why the request ``ask`` stands for cannot be put on the wire, or None.

    The request carries names decoded from the file being judged: a hostile file can make
    them larger than a TVS message can hold (25,000 bytes of 0xFF in SIGNERNAME decode to
    75,000 bytes of U+FFFD), and the phone rejects such a file instead of asking."""
    if ask.message_type == QUERY_CERT_REQ:
        message = TvsMessage.query_request(0, ask.device_name, ask.subject or "", ask.issuer or "", ask.serial or b"")
    elif ask.certificate is not None:
        message = TvsMessage.verification_request(0, ask.device_name, ask.certificate)
    else:
        return None
    try:
        message.encode()
    except UnencodableTvsMessage as error:
        return str(error)
    return None


@attrs.frozen
class Install:
    item: Item
    name: str
    via: str


@attrs.frozen
class Keep:
    """A file was refused; what was installed stays."""

    item: Item
    name: str
    reason: str


@attrs.frozen
class Show:
    """A status message on the phone's screen (docs/phone.md)."""

    event: str
    text: str


@attrs.frozen
class Log:
    """A console event; ``phone.console.catalogue`` renders it in the model's dialect."""

    event: str
    fields: Mapping[str, object] = attrs.field(factory=dict, converter=lambda f: MappingProxyType(dict(f)))


@attrs.frozen
class BootFinished:
    report: BootReport


@attrs.frozen
class KeepLsc:
    """Keep ``lsc`` (certificate and key) as the phone's LSC, in place of any older one."""

    lsc: Identity = attrs.field(repr=lambda lsc: f"<LSC serial {lsc.certificate.serial_number:x}>")


@attrs.frozen
class DropLsc:
    """CAPF deleted the LSC: the phone speaks with its MIC again (Cisco TAC note 200860)."""


Effect = Union[Fetch, AskTvs, Install, Keep, Show, Log, BootFinished, EnrolCapf, KeepLsc, DropLsc, Register]


# --- the boot report ------------------------------------------------------------------


@attrs.frozen
class FileResult:
    """One downloaded file and what became of it; ``result`` is one of
    not_found, installed, unchanged, rejected, applied, failed."""

    name: str
    result: str
    reason: str | None = None
    #: For rejections: the cause as a code of ``phone.firmware.trust.REJECTION_CODES``.
    code: str | None = None
    #: For installed files: what vouched ("leap-of-faith", "ctl", "itl", "tvs-cache", "tvs", "rollback").
    via: str | None = None
    #: How the file (or its last try) was fetched: "http", "https" or "tftp" (docs/http.md).
    transport: str | None = None


@attrs.frozen
class TlStatus:
    """One DeviceTLInfo alarm status: its code, its name and when a phone raises it."""

    code: int
    name: str
    when: str


#: The DeviceTLInfo alarm a phone raises after its trust-list downloads (CUCM alarm
#: catalogue, DeviceTLInfo), keyed on what this boot did to the lists: the lists that
#: failed, the lists installed for the first time, and whether the phone still holds
#: the old copy of every failed list ("old") or, failing that, any list at all.
#: ``device_tl_status`` reads it; nothing else decides a status.
DEVICE_TL_STATUS: Mapping[int, TlStatus] = MappingProxyType({status.code: status for status in (
    TlStatus(1, "TL_SUCCESS", "no list failed and none was installed for the first time"),
    TlStatus(2, "CTL_INITIAL_SUCCESS", "no list failed; the first CTL was installed"),
    TlStatus(3, "ITL_INITIAL_SUCCESS", "no list failed; the first ITL was installed"),
    TlStatus(4, "TL_INITIAL_SUCCESS", "no list failed; the first CTL and the first ITL were installed"),
    TlStatus(5, "TL_FAILED_OLD_CTL", "a new CTL failed; the phone keeps its old CTL"),
    TlStatus(6, "TL_FAILED_NO_TL", "a list failed and the phone holds no list at all"),
    TlStatus(7, "TL_FAILED", "a list failed that the phone had no old copy of; it holds another list"),
    TlStatus(8, "TL_FAILED_OLD_ITL", "a new ITL failed; the phone keeps its old ITL"),
    TlStatus(9, "TL_FAILED_OLD_TL", "a new CTL and a new ITL failed; the phone keeps both old lists"),
)})

_CTL_ONLY, _ITL_ONLY, _BOTH, _NONE = (frozenset({"ctl"}), frozenset({"itl"}), frozenset({"ctl", "itl"}),
                                      frozenset())
#: No list failed: status by the lists installed for the first time.
_SUCCESS_STATUS = {_NONE: 1, _CTL_ONLY: 2, _ITL_ONLY: 3, _BOTH: 4}
#: Lists failed and the phone keeps the old copy of each: status by the failed lists.
_FAILED_OLD_KEPT_STATUS = {_CTL_ONLY: 5, _ITL_ONLY: 8, _BOTH: 9}
_FAILED_NO_LIST_STATUS = 6
_FAILED_STATUS = 7


def device_tl_status(*, failed: frozenset[str], initial: frozenset[str], holds: frozenset[str]) -> int:
    """The DeviceTLInfo status code of one boot (see ``DEVICE_TL_STATUS``); the sets hold "ctl"/"itl"."""
    if not failed:
        return _SUCCESS_STATUS[initial]
    if not holds:
        return _FAILED_NO_LIST_STATUS
    if failed <= holds:
        return _FAILED_OLD_KEPT_STATUS[failed]
    return _FAILED_STATUS


@attrs.frozen
class DeviceTLInfo:
    """The alarm a phone raises after its trust-list downloads (docs/phone.md)."""

    status: int
    ctl_checksum: str | None = None
    itl_checksum: str | None = None

    @property
    def name(self) -> str:
        return DEVICE_TL_STATUS[self.status].name


@attrs.frozen
class CapfReport:
    """The JSON ``"capf"`` of a boot: ``{server, operation, result, reason}`` (docs/capf.md)."""

    server: str | None
    operation: str | None
    result: str
    reason: str | None = None
    #: The new LSC's key ("rsa2048", "ec256", …) when one was installed.
    key: str | None = None


@attrs.frozen
class BootReport:
    files: tuple[FileResult, ...] = ()
    tvs_requests: tuple[TvsAttempt, ...] = ()
    status_messages: tuple[str, ...] = ()
    device_tl_info: tuple[DeviceTLInfo, ...] = ()
    config_name: str | None = None
    config_applied: bool = False
    #: The configuration applied this boot came from ``SEP<MAC>.cnf.xml.enc.sgn``.
    config_encrypted: bool = False
    #: Set when the phone cannot read its encrypted configuration without a CAPF session
    #: (``phone.firmware.encrypted.CapfNeeded``): the CAPF client's cue.
    capf_needed: CapfNeeded | None = None
    #: How the applied configuration came: "http", "https" or "tftp" (None: none applied).
    config_transport: str | None = None
    # What happened to each trust list this boot: None, "initial", "updated", "unchanged", "failed".
    ctl_change: str | None = None
    itl_change: str | None = None
    #: The CAPF operation of this boot (None when the configuration asked for none).
    capf: CapfReport | None = None
    #: The boot's registration (None: not asked for, or no CallManager in the configuration).
    registration: Registration | None = None

    def result_of(self, name: str) -> FileResult | None:
        for entry in reversed(self.files):
            if entry.name == name:
                return entry
        return None


# --- the machine ----------------------------------------------------------------------


class BootStep(Enum):
    OFF = "off"
    CTL = "ctl"
    ITL_DEVICE = "itl-device"
    ITL_GENERIC = "itl-generic"
    CONFIG_HTTPS = "config-https"
    CONFIG_SIGNED = "config-signed"
    CONFIG_PLAIN = "config-plain"
    CONFIG_ENCRYPTED = "config-encrypted"
    TVS = "tvs"
    CAPF = "capf"
    REGISTER_CTL = "register-ctl"
    REGISTER = "register"
    DONE = "done"


_ITEM_OF_STEP = {
    BootStep.CTL: Item.CTL,
    BootStep.ITL_DEVICE: Item.ITL,
    BootStep.ITL_GENERIC: Item.ITL,
    BootStep.CONFIG_HTTPS: Item.CONFIG,
    BootStep.CONFIG_SIGNED: Item.CONFIG,
    BootStep.CONFIG_PLAIN: Item.CONFIG,
    BootStep.CONFIG_ENCRYPTED: Item.CONFIG,
}
_STORED_AS = {Item.CTL: "CTLFile.tlv", Item.ITL: "ITLFile.tlv"}

#: In ``NEXT_STEP``: the configuration step the flash calls for (``PhoneMachine._config_step``).
CONFIG = "config"
#: In ``NEXT_STEP``: registration when the boot asked for it, else the end (``PhoneMachine._resolve``).
REGISTRATION = "registration"

#: The boot's flow: each download step's successor (after its file was there, whatever became
#: of it or of its download; after "File not found"). See the module docstring.
NEXT_STEP: Mapping[BootStep, tuple[BootStep | str, BootStep | str]] = MappingProxyType({
    #                 found / refused / failed   not found
    BootStep.CTL:           (BootStep.ITL_DEVICE,        BootStep.ITL_DEVICE),
    BootStep.ITL_DEVICE:    (CONFIG,                 BootStep.ITL_GENERIC),
    BootStep.ITL_GENERIC:   (CONFIG,                 CONFIG),
    BootStep.CONFIG_SIGNED: (BootStep.CAPF,              BootStep.CONFIG_PLAIN),
    # Reached only through CONFIG (``_config_step``); what HTTPS did not bring is asked signed.
    BootStep.CONFIG_HTTPS:  (BootStep.CONFIG_SIGNED,     BootStep.CONFIG_SIGNED),
    BootStep.CONFIG_PLAIN:  (BootStep.CAPF,              BootStep.CAPF),
    BootStep.CONFIG_ENCRYPTED: (BootStep.CAPF,           BootStep.CONFIG_SIGNED),
})
_CONFIG_STEPS = (BootStep.CONFIG_SIGNED, BootStep.CONFIG_PLAIN, BootStep.CONFIG_ENCRYPTED)


@attrs.frozen
class PendingTvs:
    """A file waiting for TVS's word about its signer."""

    step: BootStep
    item: Item
    name: str
    trust_list: TrustList = attrs.field(repr=False)
    rule: Rule
    assessment: Assessment = attrs.field(repr=False)
    message_type: int


@attrs.frozen
class PendingRegistration:
    """A registration under way: what the boot asked for, the plan, the CTL tries so far.

    ``holds_lsc`` is None until this boot's CAPF session installs or deletes an LSC; until
    then the phone holds one exactly when it presents one (``client_certificate == "lsc"``).
    """

    client_certificate: str | None
    plan: Plan | None = None
    ctl_tries: int = 0
    holds_lsc: bool | None = None

    @property
    def lsc(self) -> bool:
        return self.holds_lsc if self.holds_lsc is not None else self.client_certificate == "lsc"

    def after_capf(self, result: str, mic: bool) -> PendingRegistration:
        """What the phone presents once CAPF ran in this boot: the new LSC, or after a delete its MIC.

        The phone registers after CAPF (docs/registration.md) with the certificate it holds
        then, its LSC first (Cisco TAC note 200860). A phone booted presenting nothing (a
        fleet's phones, which have no certificate files for TLS) goes on presenting nothing.
        """
        if result == "installed":
            presented = "lsc" if self.client_certificate is not None else None
            return _evolve(self, client_certificate=presented, holds_lsc=True)
        if result == "deleted":
            presented = ("mic" if mic else None) if self.client_certificate == "lsc" else self.client_certificate
            return _evolve(self, client_certificate=presented, holds_lsc=False)
        return self


class MachineError(LocalProtocolError):
    """An event the machine has no transition for in its step (a local error: the caller's bug)."""


#: Each attrs class's init arguments as (attribute, argument name), for ``_evolve``.
_INIT_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _evolve(instance: Any, **changes: Any) -> Any:
    """``attrs.evolve`` without looking the class's fields up again at every call.

    The machine stays immutable by making a new record at every step of a boot, some
    forty per boot; ``attrs.evolve`` reads the class's field list and each field's
    settings each time, about a quarter of the machine's own CPU in a profiled fleet worker. Same result: every
    init field not in ``changes`` is copied, and the class's ``__init__`` (with its
    converters and validators) makes the new record.
    """
    cls = type(instance)
    fields = _INIT_FIELDS.get(cls)
    if fields is None:
        fields = _INIT_FIELDS[cls] = tuple((field.name, field.alias) for field in attrs.fields(cls) if field.init)
    for name, alias in fields:
        if alias not in changes:
            changes[alias] = getattr(instance, name)
    return cls(**changes)


#: Each download step's per-device file: what comes before and after the device name
#: (``ITLFile.tlv``, the generic ITL, names no device).
_FILE_NAMES: Mapping[BootStep, tuple[str, str]] = MappingProxyType({
    BootStep.CTL: ("CTL", ".tlv"),
    BootStep.ITL_DEVICE: ("ITL", ".tlv"),
    BootStep.CONFIG_HTTPS: ("", ".cnf.xml"),
    BootStep.CONFIG_SIGNED: ("", ".cnf.xml.sgn"),
    BootStep.CONFIG_PLAIN: ("", ".cnf.xml"),
    BootStep.CONFIG_ENCRYPTED: ("", ENCRYPTED_SUFFIX),
})


@attrs.frozen
class PhoneMachine:
    """One phone: its model, its device id (the MAC), its flash and where its boot stands."""

    model: PhoneModel
    device_id: str
    flash: Flash = Flash()
    #: The phone's MIC and LSC with their keys: what opens an encrypted configuration.
    keys: PhoneKeys = attrs.field(factory=PhoneKeys)
    step: BootStep = BootStep.OFF
    pending: PendingTvs | None = None
    report: BootReport = BootReport()
    #: The phone knows an HTTP service at its TFTP server (``phone boot --http-port``; False:
    #: TFTP only whatever the model does) and an HTTPS one (``--https-port``), docs/http.md.
    http_service: bool = False
    https_service: bool = False
    #: The transport of the file at hand: the one asked for, then the one the file came by.
    transport: str | None = None
    #: Set by ``Booted(register=True)``: this boot registers after the configuration.
    registration: PendingRegistration | None = None

    @property
    def device_name(self) -> str:
        """``SEP<MAC>`` (or ``CSF<id>`` for Jabber): the stem of the per-device file names."""
        return self.model.device_name(self.device_id)

    def file_name(self, step: BootStep) -> str:
        if step is BootStep.ITL_GENERIC:
            return "ITLFile.tlv"
        before, after = _FILE_NAMES[step]
        return f"{before}{self.device_name}{after}"

    # -- entry point ------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> tuple[PhoneMachine, tuple[Effect, ...]]:
        """Feed one event; get the next machine and the effects to carry out, in order.

        Raises LocalProtocolError for an event ``TRANSITIONS`` has no entry for in this step.
        """
        transition = TRANSITIONS.get((self.step, type(event)))
        if transition is None:
            raise MachineError(f"{type(event).__name__} while {self.step.value}: "
                                     f"the phone machine takes no such event in this step")
        out: list[Effect] = []
        machine = transition(self, event, now, out)
        return machine, tuple(out)

    # -- power and the menu -----------------------------------------------------------

    def _on_boot(self, event: Booted, now: float, out: list[Effect]) -> PhoneMachine:
        registration = PendingRegistration(event.client_certificate) if event.register else None
        machine = _evolve(self, step=BootStep.OFF, pending=None, report=BootReport(),
                               registration=registration)
        out.append(Log("boot.start", {"device": self.device_name}))
        return machine._enter(machine._resolve(BootStep.CTL), out)

    def _on_factory_reset(self, event: FactoryReset, now: float, out: list[Effect]) -> PhoneMachine:
        out.append(Show("erasing", self._text("erasing")))
        out.append(Log("erase", {"what": "everything (factory reset)"}))
        return _evolve(self, flash=Flash(), step=BootStep.OFF, pending=None, report=BootReport())

    # -- boot flow --------------------------------------------------------------------

    def _resolve(self, step: BootStep | str) -> BootStep:
        """A step of ``NEXT_STEP`` as this model and flash take it (see the module docstring)."""
        if step is BootStep.CTL and not self.model.supports_ctl:
            step = BootStep.ITL_DEVICE
        if step in (BootStep.ITL_DEVICE, BootStep.ITL_GENERIC) and not self.model.supports_itl:
            step = CONFIG
        if step == REGISTRATION:
            return BootStep.REGISTER if self.registration is not None else BootStep.DONE
        step = self._config_step() if step == CONFIG else step
        if step in _CONFIG_STEPS and self.report.result_of(self.file_name(step)) is not None:
            step = BootStep.CAPF  # asked this boot already (the stub and the encrypted file lead to each other)
        if step is BootStep.CAPF and not capf_pending(self._capf_config()):
            return self._resolve(REGISTRATION)
        return step  # type: ignore[return-value]

    def _config_step(self) -> BootStep:
        """The signed configuration once a trust list is installed; with only a rollback ITL
        the phone takes unsigned configurations again, so it asks for the plain one."""
        trusted = self.flash.trusted()
        if trusted.ctl is None and trusted.rollback and self.model.settings.rollback_itl_accepts_unsigned_config:
            return BootStep.CONFIG_PLAIN
        if not trusted.any_list:
            return BootStep.CONFIG_PLAIN
        if self.model.encrypted_config and self.flash.stored_config().encrypted_config:
            return BootStep.CONFIG_ENCRYPTED  # docs/encrypted-config.md: "knowing encryption is on"
        if self._https_config(trusted):
            return BootStep.CONFIG_HTTPS
        return BootStep.CONFIG_SIGNED

    def _https_config(self, trusted: Trusted) -> bool:
        """docs/http.md: an ITL version 1.1 sends an HTTP-first phone to HTTPS for its configuration,
        when it has a TFTP record to check the server's certificate against."""
        settings = self.model.settings
        return (self.https_service and settings.http_first and settings.https_config_with_itl_1_1
                and trusted.asks_https_config and bool(trusted.tftp_certificates()))

    def _first_transport(self, step: BootStep) -> str:
        if step is BootStep.CONFIG_HTTPS:
            return HTTPS
        return HTTP if self.http_service and self.model.settings.http_first else TFTP

    def _next_step(self, *, found: bool) -> BootStep:
        after_found, after_missing = NEXT_STEP[self.step]
        return self._resolve(after_found if found else after_missing)

    def _enter(self, step: BootStep, out: list[Effect]) -> PhoneMachine:
        machine = _evolve(self, step=step, pending=None)
        if step is BootStep.DONE:
            return machine._finish(out)
        if step is BootStep.CAPF:
            return machine._start_capf(out)
        if step is BootStep.REGISTER:
            return machine._start_registration(out)
        return machine._fetch(self._first_transport(step), out)

    def _fetch(self, transport: str, out: list[Effect], *, announce: bool = True) -> PhoneMachine:
        """Ask for this step's file over ``transport`` (``announce``: a new download, not its TFTP try)."""
        item = _ITEM_OF_STEP[self.step]
        name = self.file_name(self.step)
        store_as = _STORED_AS.get(item, name)
        limit = self.model.settings.max_itl_bytes if item is Item.ITL else None
        pinned = self.flash.trusted().tftp_certificates() if transport == HTTPS else ()
        if announce:
            out.append(Log("download.start", {"name": name, "store_as": store_as}))
        out.append(Fetch(name, store_as, limit, transport=transport, pinned=pinned))
        return _evolve(self, transport=transport)

    def _on_file(self, event: FileFetched | FileMissing | FileFailed, now: float, out: list[Effect]) -> PhoneMachine:
        expected = self.file_name(self.step)
        if event.name != expected:
            raise MachineError(f"{type(event).__name__} for {event.name} while waiting for {expected}")
        if self.transport == HTTP and event.transport == HTTP and not isinstance(event, FileFetched):
            # docs/http.md: anything but the file over HTTP gets one TFTP try of the same name.
            reason = event.reason if isinstance(event, FileFailed) else "not found"
            out.append(Log("download.http_fallback", {"name": event.name, "reason": reason}))
            return self._fetch(TFTP, out, announce=False)
        if self.step is BootStep.CONFIG_HTTPS and not isinstance(event, FileFetched):
            # docs/http.md: as an HTTP try, an HTTPS try that brings nothing is a console line, not a
            # file result: the boot goes on to the signed configuration, which is the one that counts.
            if isinstance(event, FileFailed):
                out.append(Log("download.failed", {"name": event.name, "reason": event.reason}))
            else:
                out.append(Log("download.not_found", {"name": event.name}))
            return self._enter(self._next_step(found=False), out)
        return _evolve(self, transport=event.transport)._on_answer(event, now, out)

    def _on_answer(self, event: FileFetched | FileMissing | FileFailed, now: float,
                   out: list[Effect]) -> PhoneMachine:
        """The final answer about this step's file (``transport`` is what it came by)."""
        if isinstance(event, FileMissing):
            out.append(Log("download.not_found", {"name": event.name}))
            machine = self._record(FileResult(event.name, "not_found"))
            if self.step is BootStep.CTL:
                machine = machine._show("file_not_found", out, file="CTLFile.tlv")
            return machine._enter(machine._next_step(found=False), out)
        if isinstance(event, FileFailed):
            # A download that did not complete is not a verification failure: what is
            # installed stays and the boot goes on.
            out.append(Log("download.failed", {"name": event.name, "reason": event.reason}))
            machine = self._record(FileResult(event.name, "failed", event.reason))
            return machine._enter(machine._next_step(found=True), out)
        out.append(Log("download.done", {"name": event.name, "server": event.server or "",
                                         "bytes": len(event.data)}))
        item = _ITEM_OF_STEP[self.step]
        if item is Item.CONFIG:
            return self._on_config(event, now, out)
        return self._on_trust_list(item, event, now, out)

    def _on_trust_list(self, item: Item, event: FileFetched, now: float, out: list[Effect]) -> PhoneMachine:
        store_as = _STORED_AS[item]
        installed = self.flash.list_for(item)
        if installed is not None and installed.data == event.data:
            out.append(Log("tl.unchanged", {"store_as": store_as}))
            machine = self._record(FileResult(event.name, "unchanged"))._change(**{item.value: "unchanged"})
            return machine._enter(machine._next_step(found=True), out)
        try:
            new = event.trust_list()
        except TrustListFormatError as error:
            return self._refuse(item, event.name, f"not a valid {store_as}: {error}", out, "format")
        assessment = assess(new, item, self.flash.trusted(), self.model, now)
        if assessment.outcome is Decision.ACCEPT:
            return self._install(item, event.name, new, assessment.via or "", out)
        if assessment.outcome is Decision.REJECT:
            return self._refuse(item, event.name, assessment.reason, out, assessment.code)
        return self._ask_tvs(item, event.name, new, assessment, out)

    def _on_config(self, event: FileFetched, now: float, out: list[Effect]) -> PhoneMachine:
        if self.step is BootStep.CONFIG_HTTPS:
            # Unsigned XML, trusted only because the device layer checked the server's
            # certificate against the lists' TFTP records before asking (docs/http.md).
            if event.transport != HTTPS:
                return self._refuse(Item.CONFIG, event.name, "not fetched over a verified HTTPS connection", out,
                                    "https-unverified")
            return self._apply_config(event.name, event.data, out)
        if self.step is BootStep.CONFIG_PLAIN:
            rule = rule_for(Item.CONFIG, self.flash.trusted(), self.model, signed=False)
            if not rule.leap_of_faith:
                return self._refuse(Item.CONFIG, event.name, rule.situation, out, "unsigned-config")
            return self._apply_config(event.name, event.data, out)
        try:
            if self.step is BootStep.CONFIG_ENCRYPTED:
                signed = EncryptedConfig.from_bytes(event.data).signed
            else:
                signed = TrustList.from_bytes(event.data, kind=FileKind.SGN)
        except TrustListFormatError as error:
            return self._refuse(Item.CONFIG, event.name, f"not a valid signed file: {error}", out, "format")
        signed_name = signed.header.filename or ""
        if self.model.settings.signed_config_name_must_match and signed_name.lower() != event.name.lower():
            reason = f"it signs {signed_name or 'no file name'}, not {event.name}"
            return self._refuse(Item.CONFIG, event.name, reason, out, "wrong-file")
        assessment = assess(signed, Item.CONFIG, self.flash.trusted(), self.model, now)
        if assessment.outcome is Decision.ACCEPT:
            return self._accept_config(event.name, signed, out)
        if assessment.outcome is Decision.REJECT:
            return self._refuse(Item.CONFIG, event.name, assessment.reason, out, assessment.code)
        return self._ask_tvs(Item.CONFIG, event.name, signed, assessment, out)

    # -- outcomes ---------------------------------------------------------------------

    def _install(self, item: Item, name: str, new: TrustList, via: str, out: list[Effect]) -> PhoneMachine:
        store_as = _STORED_AS[item]
        before = self.flash.list_for(item)
        flash = _evolve(self.flash, **{item.value: new})
        change = "initial" if before is None else "updated"
        out.append(Log("tl.verified", {"store_as": store_as, "via": via}))
        if new.header.version > (1, 1):
            out.append(Log("tl.header_version", {"version": new.header.version_text}))
        out.append(Log("tl.installed", {"store_as": store_as}))
        out.append(Install(item, name, via))
        machine = _evolve(self, flash=flash)._record(FileResult(name, "installed", via=via))
        machine = machine._change(**{item.value: change})
        if via == "tvs" and self.model.settings.flush_tvs_cache_after_update:
            out.append(Log("tvs.cache_flushed"))
            machine = _evolve(machine, flash=_evolve(machine.flash, tvs_cache=()))
        return machine._enter(machine._next_step(found=True), out)

    def _refuse(self, item: Item, name: str, reason: str, out: list[Effect], code: str | None) -> PhoneMachine:
        out.append(Keep(item, name, reason))
        if item is Item.CONFIG:
            out.append(Log("config.rejected", {"name": name, "reason": reason}))
            machine = self._record(FileResult(name, "rejected", reason, code))
        else:
            out.append(Log("tl.rejected", {"store_as": _STORED_AS[item], "reason": reason}))
            machine = self._record(FileResult(name, "rejected", reason, code))._change(**{item.value: "failed"})
        return machine._enter(machine._next_step(found=True), out)

    def _accept_config(self, name: str, signed: TrustList, out: list[Effect]) -> PhoneMachine:
        """A signed configuration whose signer is trusted: apply it, or (an ``.enc.sgn``) open it first."""
        if not name.endswith(ENCRYPTED_SUFFIX):
            return self._apply_config(name, signed.payload or b"", out)
        try:
            xml = open_encrypted(signed.data, self.keys)
        except (EncryptedConfigError, TrustListFormatError) as error:
            reason = f"not decrypted with the phone's {self.keys.label}: {error}"
            out.append(Log("config.decrypt_failed", {"name": name, "reason": reason}))
            machine = self._needs_capf(reason)
            return machine._refuse(Item.CONFIG, name, reason, out, "decrypt-failed")
        out.append(Log("config.decrypted", {"name": name, "certificate": self.keys.label, "bytes": len(xml)}))
        return self._apply_config(name, xml, out, encrypted=True)

    def _apply_config(self, name: str, xml: bytes, out: list[Effect], *, encrypted: bool = False) -> PhoneMachine:
        try:
            config = self.flash.read_config(xml, source=name)
        except ConfigFormatError as error:
            return self._refuse(Item.CONFIG, name, str(error), out, "config-invalid")
        if not encrypted and self.model.encrypted_config and is_stub(config):
            return self._on_stub(name, config, out)
        out.append(Install(Item.CONFIG, name, "config"))
        out.append(Log("config.applied", {"name": name}))
        flash = _evolve(self.flash, config=xml, config_name=name, config_read=(xml, config))  # read just now
        machine = _evolve(self, flash=flash, report=_evolve(self.report, config_name=name,
                                                                          config_applied=True,
                                                                          config_encrypted=encrypted,
                                                                          config_transport=self.transport))
        machine = machine._record(FileResult(name, "applied"))
        return machine._enter(machine._resolve(BootStep.CAPF), out)  # an applied configuration ends the config steps

    # -- CAPF (docs/capf.md) ----------------------------------------------------------

    def _capf_config(self) -> PhoneConfig:
        """Where and how to enrol: the stored configuration's CAPF list and mode, or, when an
        encrypted configuration could not be opened, the stub's (docs/encrypted-config.md:
        a certHash naming another certificate sends the phone to CAPF)."""
        config = self.flash.stored_config()
        needed = self.report.capf_needed
        if needed is not None and needed.capf_list:
            return _evolve(config, capf_list=needed.capf_list, capf_auth_mode=needed.capf_auth_mode)
        return config

    def _start_capf(self, out: list[Effect]) -> PhoneMachine:
        config = self._capf_config()
        plan = enrolment(self.model, self.device_name, config, self.flash.trusted(),
                         self.model.tvs_device_name(self.device_id))
        servers = ", ".join(f"{s.address}:{s.port}" for s in plan.servers)
        out.append(Log("capf.start", {"servers": servers, "mode": plan.auth_mode}))
        out.append(plan)
        return self

    def _on_capf(self, event: CapfFinished, now: float, out: list[Effect]) -> PhoneMachine:
        outcome = event.outcome
        for server, reason in event.failures:
            out.append(Log("capf.server_failed", {"server": server, "reason": reason}))
        fields = {"server": event.server or "", "operation": outcome.operation or "",
                  "reason": outcome.reason or "", "key": outcome.key or ""}
        out.append(Log(f"capf.{outcome.result}", fields))
        if outcome.result == "installed" and outcome.lsc is not None:
            out.append(KeepLsc(outcome.lsc))
        elif outcome.result == "deleted":
            out.append(DropLsc())
        report = CapfReport(event.server, outcome.operation, outcome.result, outcome.reason, outcome.key)
        registration = self.registration
        if registration is not None and (outcome.lsc is not None or outcome.result == "deleted"):
            registration = registration.after_capf(outcome.result, mic=self.keys.mic is not None)
        machine = _evolve(self, report=_evolve(self.report, capf=report), registration=registration)
        return machine._enter(machine._resolve(REGISTRATION), out)  # registration follows CAPF

    def _on_stub(self, name: str, stub: PhoneConfig, out: list[Effect]) -> PhoneMachine:
        """The stub of an encrypted configuration: never applied; its certHash decides what comes next."""
        out.append(Log("config.encrypted_stub", {"name": name, "cert_hash": stub.cert_hash or "(empty)",
                                                 "certificate": self.keys.label}))
        problem = stub_problem(stub, self.keys)
        if problem is not None:
            reason = f"encrypted configuration: {problem}"
            out.append(Log("config.capf_needed", {"name": name, "reason": reason}))
            machine = self._needs_capf(reason, stub)
            return machine._refuse(Item.CONFIG, name, reason, out, "capf-needed")
        machine = self._record(FileResult(name, "unchanged", f"encrypted configuration stub naming the phone's "
                                                             f"{self.keys.label}"))
        return machine._enter(machine._resolve(BootStep.CONFIG_ENCRYPTED), out)

    def _needs_capf(self, reason: str, config: PhoneConfig | None = None) -> PhoneMachine:
        needed = CapfNeeded.from_config(reason, config if config is not None else self.flash.stored_config())
        return _evolve(self, report=_evolve(self.report, capf_needed=needed))

    # -- registration (phone.firmware.registration) ------------------------------------

    def _start_registration(self, out: list[Effect]) -> PhoneMachine:
        pending = self.registration
        assert pending is not None  # _resolve enters REGISTER only with one
        client = pending.client_certificate
        plan = plan_registration(self.flash.stored_config(), ctl=self.flash.ctl, model=self.model,
                                 device_name=self.device_name, client_certificate=client, lsc=pending.lsc)
        if plan is None:
            return self._finish(out)
        if plan.registration is not None:
            return self._registered(plan.registration, out)
        if plan.needs_ctl:
            tries = 1 if self.model.supports_ctl else 0  # this boot's own CTL download
            machine = _evolve(self, registration=_evolve(pending, plan=plan, ctl_tries=tries))
            return machine._ask_for_ctl_again(out)
        register = plan.register
        assert register is not None
        out.append(Log("registration.start_tls" if register.tls else "registration.start",
                       {"server": register.server, "protocol": register.protocol,
                        "transport": "TLS" if register.tls else "TCP",
                        "certificate": (client or "none").upper()}))
        out.append(register)
        return _evolve(self, step=BootStep.REGISTER, registration=_evolve(pending, plan=plan))

    def _ask_for_ctl_again(self, out: list[Effect]) -> PhoneMachine:
        pending = self.registration
        assert pending is not None and pending.plan is not None
        attempts = self.model.settings.tls_trust_list_attempts
        if not self.model.supports_ctl or pending.ctl_tries >= attempts:
            return self._registered(waiting_for_trust_list(pending.plan, pending.ctl_tries, arrived=False), out)
        name = self.file_name(BootStep.CTL)
        out.append(Log("download.start", {"name": name, "store_as": "CTLFile.tlv"}))
        out.append(Fetch(name, "CTLFile.tlv"))
        return _evolve(self, step=BootStep.REGISTER_CTL)

    def _on_ctl_again(self, event: FileFetched | FileMissing | FileFailed, now: float,
                      out: list[Effect]) -> PhoneMachine:
        pending = self.registration
        assert pending is not None and pending.plan is not None
        expected = self.file_name(BootStep.CTL)
        if event.name != expected:
            raise MachineError(f"{type(event).__name__} for {event.name} while waiting for {expected}")
        if isinstance(event, FileMissing):
            out.append(Log("download.not_found", {"name": event.name}))
        elif isinstance(event, FileFailed):
            out.append(Log("download.failed", {"name": event.name, "reason": event.reason}))
        else:
            out.append(Log("download.done", {"name": event.name, "server": event.server or "",
                                             "bytes": len(event.data)}))
        tries = pending.ctl_tries + 1
        machine = _evolve(self, registration=_evolve(pending, ctl_tries=tries))
        if isinstance(event, FileFetched):
            # The CTL appeared since this boot's download: the phone resets and installs it then.
            return machine._registered(waiting_for_trust_list(pending.plan, tries, arrived=True), out)
        return machine._ask_for_ctl_again(out)

    def _on_registration_done(self, event: RegistrationDone, now: float, out: list[Effect]) -> PhoneMachine:
        pending = self.registration
        assert pending is not None and pending.plan is not None and pending.plan.register is not None
        register = pending.plan.register
        outcome = outcome_of(event.outcome, register.mode, tls=register.tls)
        registration = Registration(
            register.server, register.protocol, MODES[register.mode], outcome.result,
            outcome.code, register.client_certificate, event.server_certificate_trusted, event.reason)
        return self._registered(registration, out)

    def _registered(self, registration: Registration, out: list[Effect]) -> PhoneMachine:
        fields = {"server": registration.server or "", "protocol": registration.protocol,
                  "code": registration.code, "reason": registration.reason or registration.code}
        event = {"registered": "registration.registered", "waiting": "registration.waiting"}.get(
            registration.result, "registration.failed")
        out.append(Log(event, fields))
        machine = _evolve(self, report=_evolve(self.report, registration=registration))
        return machine._finish(out)

    # -- TVS --------------------------------------------------------------------------

    def _ask_tvs(self, item: Item, name: str, new: TrustList, assessment: Assessment,
                 out: list[Effect]) -> PhoneMachine:
        members = self.flash.stored_config().tvs_members
        if not members:
            reason = f"{assessment.reason} and the stored configuration names no TVS server"
            return self._refuse(item, name, reason, out, "no-tvs-server")
        pending = PendingTvs(self.step, item, name, new, assessment.rule, assessment, QUERY_CERT_REQ)
        ask = self._tvs_request(pending, members)
        problem = _unsendable(ask)
        if problem is not None:
            return self._refuse(item, name, f"{assessment.reason} and TVS cannot be asked: {problem}", out,
                                "tvs-unsendable")
        out.append(Log("tvs.request"))
        out.append(ask)
        return _evolve(self, step=BootStep.TVS, pending=pending)

    def _tvs_request(self, pending: PendingTvs, members: tuple[TvsMember, ...]) -> AskTvs:
        header = pending.trust_list.header
        signer = pending.assessment.signer
        return AskTvs(
            message_type=pending.message_type,
            device_name=self.model.tvs_device_name(self.device_id),
            members=members,
            pinned=self.flash.trusted().tvs_certificates(),
            tls_versions=self.model.tls_versions,
            timeout=self.model.settings.tvs_timeout_seconds,
            subject=header.signer_name if pending.message_type == QUERY_CERT_REQ else None,
            issuer=header.signer_issuer if pending.message_type == QUERY_CERT_REQ else None,
            serial=header.signer_serial if pending.message_type == QUERY_CERT_REQ else None,
            certificate=signer.certificate if pending.message_type == CERT_VERIFICATION_REQ and signer else None,
        )

    def _on_tvs(self, event: TvsAnswered | TvsFailed, now: float, out: list[Effect]) -> PhoneMachine:
        pending = self.pending
        assert pending is not None  # step TVS always has one (_ask_tvs, _fall_back)
        attempts = event.attempts or (self._attempt_from(event, pending),)
        machine = _evolve(self, report=_evolve(
            self.report, tvs_requests=self.report.tvs_requests + tuple(attempts)))
        machine = _evolve(machine, step=pending.step)
        if isinstance(event, TvsFailed):
            return machine._tvs_failed(event, pending, out)
        answered = attempts[-1]
        address, _, port = event.server.rpartition(":")
        out.append(Log("tvs.connected", {"address": address, "port": int(port) if port.isdigit() else 0}))
        out.append(Log("tvs.query_sent" if pending.message_type == QUERY_CERT_REQ else "tvs.verify_sent",
                       {"bytes": answered.bytes_sent}))
        out.append(Log("tvs.response", {"bytes": answered.bytes_received}))
        certificate = event.certificate
        if pending.message_type == CERT_VERIFICATION_REQ and certificate is None and pending.assessment.signer:
            certificate = pending.assessment.signer.certificate  # the answer vouches for what we sent
        if (pending.message_type == QUERY_CERT_REQ and event.status == 0 and certificate is None
                and machine._may_fall_back(pending)):
            return machine._fall_back(pending, out)
        decision = assess_tvs_answer(pending.trust_list, pending.rule, self.model, status=event.status,
                                     roles=event.roles, certificate=certificate)
        if decision.outcome is not Decision.ACCEPT:
            out.append(Log("tvs.not_trusted", {"reason": decision.reason}))
            return machine._refuse(pending.item, pending.name, decision.reason, out, decision.code)
        if self.model.settings.tvs_cache and certificate is not None and event.ttl:
            entry = CachedCertificate(certificate, frozenset(event.roles), now + event.ttl)
            out.append(Log("tvs.cached", {"hours": max(1, round(event.ttl / 3600))}))
            machine = _evolve(machine, flash=_evolve(
                machine.flash, tvs_cache=_fresh(machine.flash.tvs_cache, now) + (entry,)))
        if pending.item is Item.CONFIG:
            return machine._accept_config(pending.name, pending.trust_list, out)
        return machine._install(pending.item, pending.name, pending.trust_list, "tvs", out)

    def _may_fall_back(self, pending: PendingTvs) -> bool:
        signer = pending.assessment.signer
        return (pending.message_type == QUERY_CERT_REQ and self.model.settings.tvs_fallback_to_verify
                and signer is not None and signer.certificate is not None)

    def _fall_back(self, pending: PendingTvs, out: list[Effect]) -> PhoneMachine:
        retry = _evolve(pending, message_type=CERT_VERIFICATION_REQ)
        ask = self._tvs_request(retry, self.flash.stored_config().tvs_members)
        problem = _unsendable(ask)
        if problem is not None:
            reason = f"{pending.assessment.reason} and TVS cannot be asked: {problem}"
            return self._refuse(pending.item, pending.name, reason, out, "tvs-unsendable")
        out.append(ask)
        return _evolve(self, step=BootStep.TVS, pending=retry)

    def _tvs_failed(self, event: TvsFailed, pending: PendingTvs, out: list[Effect]) -> PhoneMachine:
        if event.kind.worth_a_fallback and self._may_fall_back(pending):
            return self._fall_back(pending, out)
        reason = f"{pending.assessment.reason} and TVS failed: {event.error}"
        out.append(Log("tvs.failed", {"reason": event.error}))
        return self._refuse(pending.item, pending.name, reason, out, f"tvs-{event.kind.value}")

    @staticmethod
    def _attempt_from(event: TvsAnswered | TvsFailed, pending: PendingTvs) -> TvsAttempt:
        if isinstance(event, TvsFailed):
            return TvsAttempt(None, pending.message_type, error=event.error)
        return TvsAttempt(event.server, pending.message_type, event.status, tuple(event.roles))

    # -- bookkeeping ------------------------------------------------------------------

    def _record(self, result: FileResult) -> PhoneMachine:
        if result.transport is None:
            result = _evolve(result, transport=self.transport)
        return _evolve(self, report=_evolve(self.report, files=self.report.files + (result,)))

    def _change(self, *, ctl: str | None = None, itl: str | None = None) -> PhoneMachine:
        report = self.report
        if ctl is not None:
            report = _evolve(report, ctl_change=ctl)
        if itl is not None:
            report = _evolve(report, itl_change=itl)
        return _evolve(self, report=report)

    def _text(self, event: str, **fields: str) -> str:
        return self.model.message(event, **fields) or event

    def _show(self, event: str, out: list[Effect], **fields: str) -> PhoneMachine:
        """Put a status message on the screen and in the boot report (docs/phone.md)."""
        text = self._text(event, **fields)
        out.append(Show(event, text))
        return _evolve(self, report=_evolve(self.report, status_messages=self.report.status_messages + (text,)))

    def _finish(self, out: list[Effect]) -> PhoneMachine:
        machine = self
        for event in self._closing_messages():
            machine = machine._show(event, out)
        info = self._device_tl_info()
        report = _evolve(machine.report, device_tl_info=machine.report.device_tl_info + ((info,) if info else ()))
        machine = _evolve(machine, step=BootStep.DONE, pending=None, report=report, registration=None)
        out.append(BootFinished(report))
        return machine

    def _closing_messages(self) -> list[str]:
        """docs/phone.md: the screen's verdict on this boot's trust lists."""
        report, trusted = self.report, self.flash.trusted()
        if report.ctl_change == "failed":
            return [event for event in ("update_failed", "ctl_update_failed") if self.model.message(event)]
        if report.itl_change == "failed":
            return ["update_failed"]
        events = []
        if "updated" in (report.ctl_change, report.itl_change):
            events.append("trust_list_updated")
        if trusted.ctl is not None and trusted.itl is not None:
            events.append("ctl_and_itl_installed")
        elif trusted.ctl is not None:
            events.append("ctl_installed")
        elif trusted.itl is not None:
            events.append("itl_installed")
        elif self.model.supports_ctl or self.model.supports_itl:
            events.append("no_trust_list")
        return [event for event in events if self.model.message(event)]

    def _device_tl_info(self) -> DeviceTLInfo | None:
        """The DeviceTLInfo alarm of this boot (None when the phone holds and got no list)."""
        report, flash = self.report, self.flash
        changes = {"ctl": report.ctl_change, "itl": report.itl_change}
        holds = frozenset(name for name, held in (("ctl", flash.ctl), ("itl", flash.itl)) if held is not None)
        if not holds and not any(changes.values()):
            return None
        status = device_tl_status(
            failed=frozenset(name for name, change in changes.items() if change == "failed"),
            initial=frozenset(name for name, change in changes.items() if change == "initial"),
            holds=holds,
        )
        checksum = self.model.trust_list_checksum
        return DeviceTLInfo(status, checksum(flash.ctl.data) if flash.ctl else None,
                            checksum(flash.itl.data) if flash.itl else None)

    # -- erase ------------------------------------------------------------------------

    def _on_erase(self, event: Erased, now: float, out: list[Effect]) -> PhoneMachine:
        what = " and ".join(name for name, chosen in (("CTL", event.ctl), ("ITL", event.itl)) if chosen)
        if not what:
            return self
        if not self.model.separate_erase and event.ctl != event.itl:
            what = "CTL and ITL"  # 78xx/88xx: "Security settings" removes both (docs/phone.md)
            event = Erased(ctl=True, itl=True)
        out.append(Show("erasing", self._text("erasing")))
        out.append(Log("erase", {"what": what}))
        flash = _evolve(self.flash, ctl=None if event.ctl else self.flash.ctl,
                             itl=None if event.itl else self.flash.itl, tvs_cache=())
        return _evolve(self, flash=flash, step=BootStep.OFF, pending=None)


def _fresh(cache: tuple[CachedCertificate, ...], now: float) -> tuple[CachedCertificate, ...]:
    return tuple(entry for entry in cache if entry.expires > now)


_Transition = Callable[[PhoneMachine, Any, float, list[Effect]], PhoneMachine]
_DOWNLOAD_STEPS = tuple(NEXT_STEP)

#: Which events each step takes: (step, event type) -> transition. Anything else is a
#: LocalProtocolError (see the module docstring).
TRANSITIONS: Mapping[tuple[BootStep, type], _Transition] = MappingProxyType({
    **{(step, Booted): PhoneMachine._on_boot for step in BootStep},
    **{(step, Erased): PhoneMachine._on_erase for step in BootStep},
    **{(step, FactoryReset): PhoneMachine._on_factory_reset for step in BootStep},
    **{(step, event): PhoneMachine._on_file for step in _DOWNLOAD_STEPS
       for event in (FileFetched, FileMissing, FileFailed)},
    **{(BootStep.TVS, event): PhoneMachine._on_tvs for event in (TvsAnswered, TvsFailed)},
    (BootStep.CAPF, CapfFinished): PhoneMachine._on_capf,
    **{(BootStep.REGISTER_CTL, event): PhoneMachine._on_ctl_again
       for event in (FileFetched, FileMissing, FileFailed)},
    (BootStep.REGISTER, RegistrationDone): PhoneMachine._on_registration_done,
})
