"""What a phone trusts, and the acceptance rules of docs/phone.md as a table.

Each row of ``RULES`` is one row of docs/phone.md: which installed list may vouch for
a new file's signer (and with which roles), whether the file may be taken on
trust (the "leap of faith" of a phone with nothing installed), and which roles
a TVS answer must carry when TVS is asked instead. ``assess`` picks the row for
the phone's situation and evaluates it; nothing here does I/O or reads a clock.

Checks made for every file, whatever the row (docs/trust-lists.md, docs/models.md):
the digest must be one the model verifies, the signing key a size it handles,
an ITL no larger than the model's limit, and (when the setting is on) no more
SAST records than the model accepts.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phone.wire.certs import PublicKey, load_certificate
from phone.errors import CertificateError
from phone.wire.names import cucm_name, name_key, serial_hex, serial_to_bytes
from phone.wire.signing import check_signature, record_key, verify
from phone.wire.tlv import Digest, FileKind, Record, Role, TrustList

if TYPE_CHECKING:
    from phone.firmware.models import PhoneModel

SAST_ONLY = frozenset({Role.SAST})
TFTP_ROLES = frozenset({Role.TFTP, Role.CCM_TFTP})
#: The roles an ITL's signer holds in a CTL (docs/trust-lists.md): the TFTP node's CallManager
#: certificate (CCM+TFTP, or TFTP on a TFTP-only node) before 12.0, ITLRecovery
#: (SAST) from 12.0. A CAPF, TVS or APP-SERVER record is "present in the CTL" too,
#: but its key must not replace the ITL (and with it the TVS records the phone pins).
ITL_SIGNER_ROLES = SAST_ONLY | TFTP_ROLES


class Item(Enum):
    """The three things a phone installs."""

    CTL = "ctl"
    ITL = "itl"
    CONFIG = "config"


class Decision(Enum):
    """What a trust rule decides about a new file: install it, refuse it, or ask TVS first."""

    ACCEPT = "accept"
    REJECT = "reject"
    ASK_TVS = "ask_tvs"


@attrs.frozen
class Voucher:
    """An installed list that may vouch for a signer, and the roles the signer must hold in it.

    ``roles`` None means any record of the list ("signer present in the CTL").
    """

    item: Item
    roles: frozenset[int] | None


@attrs.frozen
class Rule:
    """One row of docs/phone.md."""

    name: str
    situation: str
    leap_of_faith: bool = False
    vouchers: tuple[Voucher, ...] = ()
    tvs_roles: frozenset[int] | None = None  # None: TVS is not asked for this row


RULES = {
    rule.name: rule
    for rule in (
        Rule("first-list", "no trust list at all: the first CTL or ITL is taken on trust", leap_of_faith=True),
        Rule("first-ctl-trust", "ITL only, first CTL: accepted on trust (OPEN; setting first_ctl_with_itl='trust')",
             leap_of_faith=True),
        Rule("first-ctl-verify", "ITL only, first CTL: signer must be a SAST of the ITL, else TVS "
             "(OPEN; setting first_ctl_with_itl='verify')",
             vouchers=(Voucher(Item.ITL, SAST_ONLY),), tvs_roles=SAST_ONLY),
        Rule("new-itl-itl-only", "ITL only, new ITL: signer must be a SAST of the installed ITL, else TVS",
             vouchers=(Voucher(Item.ITL, SAST_ONLY),), tvs_roles=SAST_ONLY),
        Rule("new-ctl", "CTL installed, new CTL: signer must be a SAST of the installed CTL, else TVS",
             vouchers=(Voucher(Item.CTL, SAST_ONLY),), tvs_roles=SAST_ONLY),
        Rule("new-itl-ctl", "CTL installed, new ITL: signer present in the CTL as SAST, TFTP or CCM+TFTP, else TVS",
             vouchers=(Voucher(Item.CTL, ITL_SIGNER_ROLES),), tvs_roles=SAST_ONLY),
        Rule("rollback-itl", "rollback ITL installed: any new ITL is accepted", leap_of_faith=True),
        Rule("signed-config", "signed config: signer must hold TFTP or CCM+TFTP in the installed CTL or ITL, else TVS",
             vouchers=(Voucher(Item.CTL, TFTP_ROLES), Voucher(Item.ITL, TFTP_ROLES)), tvs_roles=TFTP_ROLES),
        Rule("plain-config", "no trust list: the unsigned configuration is applied", leap_of_faith=True),
        Rule("plain-config-rollback", "rollback ITL installed: unsigned configurations are applied",
             leap_of_faith=True),
        Rule("plain-config-refused", "trust list installed: an unsigned configuration is not applied"),
    )
}


@attrs.frozen
class CachedCertificate:
    """A TVS answer the phone may reuse until ``expires`` (Unix time; docs/phone.md TTL cache)."""

    certificate: bytes
    roles: frozenset[int]
    expires: float

    @property
    def identity(self) -> tuple[bytes, tuple]:
        parsed = load_certificate(self.certificate, source="cached TVS certificate")
        return serial_to_bytes(parsed.serial_number), name_key(cucm_name(parsed.issuer))


def is_rollback_itl(itl: TrustList | None) -> bool:
    """The ITL served with "Prepare Cluster for Rollback to pre-8.0": no TVS and no TFTP entries (docs/phone.md)."""
    if itl is None:
        return False
    return not any(record.function in (Role.TVS, Role.TFTP, Role.CCM_TFTP, Role.CCM) for record in itl.records)


@attrs.frozen
class Trusted:
    """The trust lists a phone has installed and its TVS cache."""

    ctl: TrustList | None = None
    itl: TrustList | None = None
    tvs_cache: tuple[CachedCertificate, ...] = ()

    def list_for(self, item: Item) -> TrustList | None:
        return self.ctl if item is Item.CTL else self.itl

    @property
    def any_list(self) -> bool:
        return self.ctl is not None or self.itl is not None

    @property
    def rollback(self) -> bool:
        return is_rollback_itl(self.itl)

    def tftp_certificates(self) -> tuple[bytes, ...]:
        """Certificates of the TFTP and CCM+TFTP records of the installed CTL and ITL: the servers a
        phone fetches its configuration from over HTTPS (docs/http.md)."""
        found: list[bytes] = []
        for installed in (self.ctl, self.itl):
            if installed is None:
                continue
            for role in sorted(TFTP_ROLES):
                found += [r.certificate for _, r in installed.records_with_role(role)
                          if r.certificate and r.certificate not in found]
        return tuple(found)

    @property
    def asks_https_config(self) -> bool:
        """The installed ITL carries the version 1.1 marker (tag 28 = 1.1, docs/http.md)."""
        return self.itl is not None and (self.itl.header.signer_version or (1, 0)) >= (1, 1)

    def tvs_certificates(self) -> tuple[bytes, ...]:
        """Certificates of the ITL's TVS records: the only servers a phone talks TVS to (docs/tvs.md)."""
        if self.itl is None:
            return ()
        return tuple(r.certificate for _, r in self.itl.records_with_role(Role.TVS) if r.certificate)

    def cached(self, serial: bytes, issuer: str | None, now: float) -> tuple[CachedCertificate, ...]:
        wanted = name_key(issuer) if issuer else None
        found = []
        for entry in self.tvs_cache:
            if entry.expires <= now:
                continue
            try:
                entry_serial, entry_issuer = entry.identity
            except CertificateError:
                continue
            if entry_serial == serial and (wanted is None or wanted == entry_issuer):
                found.append(entry)
        return tuple(found)


def rule_for(item: Item, trusted: Trusted, model: PhoneModel, *, signed: bool = True) -> Rule:
    """The docs/phone.md row that applies to a new ``item`` given what is installed."""
    if item is Item.CONFIG:
        if signed:
            return RULES["signed-config"]
        if not trusted.any_list:
            return RULES["plain-config"]
        if trusted.rollback and model.settings.rollback_itl_accepts_unsigned_config:
            return RULES["plain-config-rollback"]
        return RULES["plain-config-refused"]
    if not trusted.any_list:
        return RULES["first-list"]
    if item is Item.CTL:
        if trusted.ctl is not None:
            return RULES["new-ctl"]
        return RULES["first-ctl-verify" if model.settings.first_ctl_with_itl == "verify" else "first-ctl-trust"]
    if trusted.rollback:
        return RULES["rollback-itl"]
    if trusted.ctl is not None:
        return RULES["new-itl-ctl"]
    return RULES["new-itl-itl-only"]


@attrs.frozen
class Assessment:
    """The decision about one file: accept it, reject it, or ask TVS first.

    ``via`` says what vouched ("leap-of-faith", "ctl", "itl", "tvs-cache",
    "tvs"); ``signer`` is the record of the new file that claims to have signed
    it (its certificate is what a CERT_VERIFICATION request carries).
    """

    outcome: Decision
    rule: Rule
    reason: str
    via: str | None = None
    signer: Record | None = None
    #: For rejections: a stable, machine-readable cause (see REJECTION_CODES).
    code: str | None = None


def _accept(rule: Rule, via: str, reason: str) -> Assessment:
    return Assessment(Decision.ACCEPT, rule, reason, via)


#: Why a file was refused, as a stable code a fleet can count by (the reason text varies per file).
REJECTION_CODES = {
    "format": "the file does not parse",
    "too-large": "over the model's size limit (an ITL over 64 KB)",
    "digest-unsupported": "signed with a digest the model does not verify (e.g. SHA-512)",
    "too-many-sast": "more SAST records than the model accepts",
    "wrong-kind": "a file of another kind where a CTL or ITL was expected",
    "key-size": "signed with a key size the model does not handle",
    "bad-signature": "a first list whose own SAST record does not verify it",
    "signer-unknown": "the signer is not in the installed lists and TVS is not asked for this file",
    "no-tvs": "the signer is unknown and the phone cannot ask TVS (model without TVS, ITL without TVS record)",
    "no-tvs-server": "the signer is unknown and the stored configuration names no TVS server",
    "tvs-not-trusted": "TVS answered that it does not know or trust the signer",
    "tvs-missing-role": "TVS vouched without the role the file needs (SAST, TFTP)",
    "tvs-no-certificate": "TVS answered without a certificate",
    "tvs-wrong-certificate": "TVS returned a certificate other than the signer's",
    "tvs-certificate-fails": "the certificate TVS vouched for does not verify the file",
    "tvs-unreachable": "no TVS server could be reached",
    "tvs-untrusted-server": "the TVS server's certificate is not a TVS record of the phone's ITL",
    "tvs-dropped": "the TVS server dropped the request",
    "tvs-timeout": "the TVS server did not answer",
    "tvs-malformed": "the TVS server's answer was not a TVS message",
    "tvs-unsendable": "the TVS request built from the file cannot be sent (e.g. a signer name over TVS's length limits)",
    "unsigned-config": "an unsigned configuration while a trust list is installed",
    "wrong-file": "a signed configuration whose signed FILENAME is another file (setting signed_config_name_must_match)",
    "config-invalid": "a configuration that is not safe, well-formed XML",
    "capf-needed": "an encrypted configuration's stub names no certificate, or another one than the phone's "
                   "LSC (else MIC): the phone needs a CAPF session first (docs/encrypted-config.md)",
    "decrypt-failed": "an encrypted configuration the phone's LSC or MIC does not open (key unwrap, padding or "
                      "CONTENTHASH)",
}


def _reject(rule: Rule, reason: str, code: str) -> Assessment:
    return Assessment(Decision.REJECT, rule, reason, code=code)


def signer_label(new: TrustList) -> str:
    header = new.header
    serial = serial_hex(header.signer_serial) if header.signer_serial else "no serial"
    return f"{header.signer_name or 'unnamed signer'} ({serial})"


def _key_problem(key: PublicKey, model: PhoneModel) -> str | None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size not in model.rsa_key_sizes:
        return f"a {key.key_size}-bit signing key is not supported by the {model.name}"
    return None


def digest_names(model: PhoneModel) -> dict[int, str]:
    """DIGESTALGORITHM codes as this model's firmware reads them (docs/trust-lists.md; code 2 is OPEN)."""
    return {Digest.SHA1: "sha1", model.settings.sha256_digest_code: "sha256", Digest.SHA512: "sha512"}


def _verify_with(new: TrustList, key: PublicKey, model: PhoneModel) -> str | None:
    return _key_problem(key, model) or SIGNATURE_CHECKS.check(new, key, model)


class SignatureChecks:
    """Signature checks already made, per (file bytes, signing key, digests the model reads).

    A fleet's phones get the same CTL and ITL, parsed once per worker and shared
    (``phone.device.boot.SharedParses``); every phone then checked the shared list's RSA
    signature again with the same key. The answer depends on those three alone, so it is
    kept: the key is part of what is remembered (its SubjectPublicKeyInfo bytes), so a
    check made with one trust anchor never answers for another, and a different model's
    digest settings never share an answer either. Only files up to ``max_file_bytes`` are
    kept (trust lists and signed configurations are a few KB), at most ``limit`` answers,
    the least recently used going first (a fleet's per-device configurations pass through
    without pushing out the shared lists).
    """

    def __init__(self, limit: int = 256, max_file_bytes: int = 64 * 1024) -> None:
        # No lock (this layer starts no threads and imports no threading): each step below is one
        # operation of the C OrderedDict, atomic for the fleet worker's threads; two threads that
        # race only check the same signature twice, and both get the same answer.
        self._answers: OrderedDict[tuple, str | None] = OrderedDict()
        self._limit = limit
        self._max_file_bytes = max_file_bytes

    def check(self, new: TrustList, key: PublicKey, model: PhoneModel) -> str | None:
        """``check_signature`` with the model's digests, answered from memory when asked before."""
        if len(new.data) > self._max_file_bytes:
            return check_signature(new, key, digests=model.digests, digest_names=digest_names(model))
        anchor = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        header = new.header  # read from ``data``; named too, for a list someone built by hand
        question = (new.data, header.digest_code, header.signature_algorithm, header.signature_span, anchor,
                    model.digests, model.settings.sha256_digest_code)
        answer = self._answers.get(question, _NOT_ASKED)
        if answer is not _NOT_ASKED:
            with contextlib.suppress(KeyError):  # another thread may have just let it go
                self._answers.move_to_end(question)
            return answer  # type: ignore[return-value]
        answer = check_signature(new, key, digests=model.digests, digest_names=digest_names(model))
        self._answers[question] = answer
        while len(self._answers) > self._limit:
            try:
                self._answers.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        return answer

    def clear(self) -> None:
        self._answers.clear()


_NOT_ASKED = object()

#: One per process: the answers depend on their question alone, whoever asks.
SIGNATURE_CHECKS = SignatureChecks()


def _vouching_records(listing: TrustList, new: TrustList, roles: frozenset[int] | None) -> Iterable[Record]:
    header = new.header
    if header.signer_serial is None:
        return
    wanted_issuer = name_key(header.signer_issuer) if header.signer_issuer else None
    for record in listing.records:
        if roles is not None and record.function not in roles:
            continue
        if record.serial != header.signer_serial:
            continue
        if wanted_issuer and record.issuer and name_key(record.issuer) != wanted_issuer:
            continue
        yield record


def file_problem(new: TrustList, item: Item, model: PhoneModel) -> tuple[str, str] | None:
    """Checks made before any rule (ITL size, SAST count, digests: docs/trust-lists.md): (code, reason) or None."""
    settings = model.settings
    if item is Item.ITL and settings.max_itl_bytes is not None and new.length > settings.max_itl_bytes:
        return "too-large", f"the ITL is {new.length} bytes, over the {settings.max_itl_bytes}-byte limit"
    digest = digest_names(model).get(new.header.digest_code)  # type: ignore[call-overload]
    if digest not in model.digests:
        shown = digest or f"code {new.header.digest_code}"
        return "digest-unsupported", f"the {shown.upper()} digest is not supported by the {model.name}"
    if item is not Item.CONFIG and settings.max_sast_records is not None:
        count = len(new.records_with_role(Role.SAST))
        if count > settings.max_sast_records:
            return "too-many-sast", f"{count} SAST records, more than the {settings.max_sast_records} allowed"
    if item is Item.CTL and new.kind not in (FileKind.CTL, FileKind.TLV):
        return "wrong-kind", f"a {new.kind.label} file where a CTL was expected"
    if item is Item.ITL and new.kind not in (FileKind.ITL, FileKind.TLV):
        return "wrong-kind", f"a {new.kind.label} file where an ITL was expected"
    return None


def _own_signer(new: TrustList, model: PhoneModel) -> Record | None:
    verification = verify(new, digest_names=digest_names(model))
    return new.records[verification.signed_by] if verification.valid else None


def _signer_record(new: TrustList) -> Record | None:
    """The new file's own SAST record for its signer, valid or not (its certificate feeds TVS type 1)."""
    header = new.header
    for _, record in new.records_with_role(Role.SAST):
        if record.serial == header.signer_serial and record.certificate:
            return record
    return None


def assess(new: TrustList, item: Item, trusted: Trusted, model: PhoneModel, now: float) -> Assessment:
    """Decide about a new CTL, ITL or signed configuration (docs/phone.md)."""
    rule = rule_for(item, trusted, model)
    problem = file_problem(new, item, model)
    if problem:
        return _reject(rule, problem[1], problem[0])
    if rule.leap_of_faith:
        if not model.settings.first_list_requires_own_signature:
            return _accept(rule, "leap-of-faith", rule.situation)
        own = _own_signer(new, model)
        if own is None:
            reason = verify(new, digest_names=digest_names(model)).reason
            return _reject(rule, f"its own SAST record does not verify it ({reason})", "bad-signature")
        key_problem = _key_problem(record_key(own), model)
        if key_problem:
            return _reject(rule, key_problem, "key-size")
        return _accept(rule, "leap-of-faith", rule.situation)
    last_problem = None
    for voucher in rule.vouchers:
        listing = trusted.list_for(voucher.item)
        if listing is None:
            continue
        for record in _vouching_records(listing, new, voucher.roles):
            try:
                key = record_key(record)
            except CertificateError as error:
                last_problem = str(error)
                continue
            problem = _verify_with(new, key, model)
            if problem is None:
                return _accept(rule, voucher.item.value, f"signer {signer_label(new)} is in the installed "
                                                         f"{voucher.item.value.upper()}")
            last_problem = problem
    if rule.tvs_roles is not None:
        for entry in trusted.cached(new.header.signer_serial or b"", new.header.signer_issuer, now):
            if entry.roles & rule.tvs_roles:
                key = load_certificate(entry.certificate, source="cached TVS certificate").public_key()
                if _verify_with(new, key, model) is None:  # type: ignore[arg-type]
                    return _accept(rule, "tvs-cache", "the signer is in the TVS cache")
        reason = tvs_unavailable(trusted, model)
        if reason is None:
            return Assessment(Decision.ASK_TVS, rule, f"signer {signer_label(new)} is unknown", signer=_signer_record(new))
        last_problem = f"{last_problem}; " if last_problem else ""
        return _reject(rule, f"{last_problem}signer {signer_label(new)} is unknown and {reason}", "no-tvs")
    detail = f" ({last_problem})" if last_problem else ""
    return _reject(rule, f"signer {signer_label(new)} is not trusted{detail}", "signer-unknown")


def tvs_unavailable(trusted: Trusted, model: PhoneModel) -> str | None:
    """Why TVS cannot be asked, or None (docs/phone.md: only SBD phones, only with a TVS record in the ITL)."""
    if not model.supports_tvs:
        return f"the {model.name} does not use TVS"
    if not trusted.tvs_certificates():
        return "the installed ITL holds no TVS certificate"
    return None


def assess_tvs_answer(
    new: TrustList,
    rule: Rule,
    model: PhoneModel,
    *,
    status: int | None,
    roles: Iterable[int],
    certificate: bytes | None,
) -> Assessment:
    """Decide about a file once TVS has answered about its signer (docs/phone.md).

    The answer must say trusted (STATUS 0), carry a required role (SAST for a
    trust-list signer, when the setting is on), and its certificate must be
    the signer's and verify the file.
    """
    roles = frozenset(roles)
    if status != 0:
        return _reject(rule, f"TVS does not vouch for signer {signer_label(new)} (status {status})",
                       "tvs-not-trusted")
    required = rule.tvs_roles or frozenset()
    if rule.tvs_roles == SAST_ONLY and not model.settings.tvs_answer_requires_sast_role:
        required = frozenset()
    if required and not roles & required:
        names = ", ".join(sorted(str(r) for r in roles)) or "none"
        return _reject(rule, f"TVS answered without a required role (roles: {names})", "tvs-missing-role")
    if certificate is None:
        return _reject(rule, "TVS answered without a certificate", "tvs-no-certificate")
    try:
        parsed = load_certificate(certificate, source="TVS certificate")
    except CertificateError as error:
        return _reject(rule, str(error), "tvs-certificate-fails")
    if new.header.signer_serial is not None and serial_to_bytes(parsed.serial_number) != new.header.signer_serial:
        return _reject(rule, "TVS returned a certificate that is not the signer's", "tvs-wrong-certificate")
    problem = _verify_with(new, parsed.public_key(), model)  # type: ignore[arg-type]
    if problem:
        return _reject(rule, f"the certificate TVS vouched for does not verify the file: {problem}",
                       "tvs-certificate-fails")
    return _accept(rule, "tvs", f"TVS vouches for signer {signer_label(new)}")
