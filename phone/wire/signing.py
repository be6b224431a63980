"""Building, signing and verifying trust lists and signed files (docs/trust-lists.md).

Two layouts are built, so that tests can produce both dialects a phone meets:

- ``Layout.CUCM``: header elements 1..12, 14, 15, then 0x0D padding to a
  multiple of 4; records 1..10 in tag order with DNSNAME and IPADDRESS; names
  in CUCM's ``CN=…;OU=…`` form (docs/trust-lists.md).
- ``Layout.USECALLMANAGER``: as usecallmanager's tool writes them: tag 28
  (signer version) after HEADERLENGTH, SIGNERID as 4, 6, 5, records as
  1, 3, 5, 6, 4, 7, 8, 9 without DNSNAME or IPADDRESS, RFC 4514 names joined
  with ``,``.

A signature covers the whole file with the SIGNATURE element cut out; it is
RSASSA-PKCS1-v1_5 with the header's digest (docs/trust-lists.md). Building assembles the
file without the signature, signs it, and inserts the element after
SIGNATUREMODULUS.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from phone.errors import CertificateError, CertificateRequestError, UsageError
from phone.wire.certs import Identity, PublicKey, load_certificate, record_public_key
from phone.wire.names import (
    ctl_client_name,
    cucm_name,
    name_key,
    rfc4514_joined_name,
    serial_to_bytes,
)
from phone.wire.tlv import (
    DIGEST_NAMES,
    SIGNATURE_SIZES,
    Digest,
    Element,
    FileKind,
    HeaderTag,
    Record,
    RecordTag,
    Role,
    TrustList,
)


class Layout(Enum):
    """Which producer's element order and name style a built file follows."""

    CUCM = "cucm"
    USECALLMANAGER = "usecallmanager"


class NameStyle(Enum):
    """How a certificate name is written as text (see ``phone.wire.names``)."""

    CUCM = "cucm"
    CTL_CLIENT = "ctl-client"
    RFC4514 = "rfc4514"

    def render(self, name: x509.Name) -> str:
        if self is NameStyle.CUCM:
            return cucm_name(name)
        if self is NameStyle.CTL_CLIENT:
            return ctl_client_name(name)
        return rfc4514_joined_name(name)


_DEFAULT_STYLE = {Layout.CUCM: NameStyle.CUCM, Layout.USECALLMANAGER: NameStyle.RFC4514}
_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    Digest.SHA1: hashes.SHA1,
    Digest.SHA256: hashes.SHA256,
    Digest.SHA512: hashes.SHA512,
}
_MODULUS_CODES = {size: code for code, size in SIGNATURE_SIZES.items()}


def digest_code(digest: str | int) -> Digest:
    """``"sha1"`` / ``"sha256"`` / ``"sha512"`` (or a code) as a DIGESTALGORITHM code."""
    if isinstance(digest, int):
        return Digest(digest)
    try:
        return Digest[digest.upper().replace("-", "")]
    except KeyError:
        raise CertificateRequestError(f"unknown digest {digest!r} (sha1, sha256 or sha512)") from None


def _ip_bytes(address: str) -> bytes:
    try:
        return ipaddress.IPv4Address(address).packed
    except ValueError:
        raise CertificateRequestError(f"IPADDRESS must be an IPv4 address, got {address!r}") from None


def make_record(
    certificate: x509.Certificate,
    role: int,
    *,
    layout: Layout = Layout.CUCM,
    name_style: NameStyle | None = None,
    dns_name: str | None = "",
    ip_address: str | None = "0.0.0.0",
    include_signature: bool = True,
) -> Record:
    """A record for ``certificate`` with FUNCTION ``role``, laid out as ``layout`` writes it.

    CUCM writes DNSNAME (empty: length 1) and IPADDRESS in every record; pass
    None to leave them out. eToken records carry no SIGNATURE element
    (``include_signature=False``: the 1186-byte eToken record of docs/trust-lists.md).
    """
    style = name_style or _DEFAULT_STYLE[layout]
    subject = Element.text(RecordTag.SUBJECT_NAME, style.render(certificate.subject))
    issuer = Element.text(RecordTag.ISSUER_NAME, style.render(certificate.issuer))
    serial = Element(RecordTag.SERIAL_NUMBER, serial_to_bytes(certificate.serial_number))
    function = Element.uint(RecordTag.FUNCTION, role, 2)
    public_key = Element(RecordTag.PUBLIC_KEY, record_public_key(certificate.public_key()))
    signature = [Element(RecordTag.SIGNATURE, certificate.signature)] if include_signature else []
    der = Element(RecordTag.CERTIFICATE, certificate.public_bytes(serialization.Encoding.DER))
    if layout is Layout.USECALLMANAGER:
        return Record.from_elements([subject, issuer, serial, function, public_key, *signature, der])
    dns = [Element.text(RecordTag.DNS_NAME, dns_name)] if dns_name is not None else []
    address = [Element(RecordTag.IP_ADDRESS, _ip_bytes(ip_address))] if ip_address is not None else []
    return Record.from_elements([*dns, subject, function, issuer, serial, public_key, *signature, der, *address])


def make_bare_record(role: int, *, dns_name: str, ip_address: str = "0.0.0.0") -> Record:
    """A record without certificate: RECORDLENGTH, DNSNAME, FUNCTION, IPADDRESS (docs/trust-lists.md).

    CUCM leaves such CCM+TFTP records in a CTL of a cluster set back to non-secure mode.
    """
    return Record.from_elements([
        Element.text(RecordTag.DNS_NAME, dns_name),
        Element.uint(RecordTag.FUNCTION, role, 2),
        Element(RecordTag.IP_ADDRESS, _ip_bytes(ip_address)),
    ])


def signer_id_element(signer: Identity, layout: Layout = Layout.CUCM, style: NameStyle | None = None) -> Element:
    """The SIGNERID container naming ``signer``: name, serial and issuer in ``layout``'s order (docs/trust-lists.md)."""
    style = style or _DEFAULT_STYLE[layout]
    name = Element.text(HeaderTag.SIGNER_NAME, style.render(signer.certificate.subject))
    serial = Element(HeaderTag.SERIAL_NUMBER, serial_to_bytes(signer.certificate.serial_number))
    issuer = Element.text(HeaderTag.CA_NAME, style.render(signer.certificate.issuer))
    order = [name, issuer, serial] if layout is Layout.USECALLMANAGER else [name, serial, issuer]
    return Element.container(HeaderTag.SIGNER_ID, order)


def signature_info_element(signer: Identity, digest: str | int) -> Element:
    """SIGNATUREINFO: DIGESTALGORITHM, then SIGNATUREALGOINFO (RSA, the signer's SIGNATUREMODULUS code)."""
    size = _signature_size(signer)
    algorithm = [
        Element.uint(HeaderTag.SIGNATURE_ALGORITHM, 0, 1),
        Element.uint(HeaderTag.SIGNATURE_MODULUS, _MODULUS_CODES[size], 1),
    ]
    return Element.container(
        HeaderTag.SIGNATURE_INFO,
        [Element.uint(HeaderTag.DIGEST_ALGORITHM, digest_code(digest), 1),
         Element.container(HeaderTag.SIGNATURE_ALGO_INFO, algorithm)],
    )


def _signature_size(signer: Identity) -> int:
    key = signer.private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("trust lists are signed with RSA (SIGNATUREALGORITHM 0); this signer's key is not RSA")
    size = key.key_size // 8
    if size not in _MODULUS_CODES:
        raise CertificateError(f"a {key.key_size}-bit key has no SIGNATUREMODULUS code (512, 1024, 2048 or 4096 bits)")
    return size


def assemble(
    version: tuple[int, int],
    elements: Sequence[Element],
    body: bytes,
    private_key: rsa.RSAPrivateKey,
    *,
    digest: str | int,
    pad_to: int = 4,
    kind: FileKind | None = None,
) -> TrustList:
    """Lay out and sign a file from header ``elements`` in exactly the order given.

    VERSION and HEADERLENGTH come first (docs/trust-lists.md); ``elements`` must hold one
    top-level SIGNATURE element with an empty value, the place the signature
    goes. The header is padded with 0x0D bytes to a multiple of ``pad_to``,
    HEADERLENGTH is computed, the file without the signature element is signed
    with ``digest`` and the signature put in its place (docs/trust-lists.md).
    """
    places = [i for i, e in enumerate(elements) if e.tag == HeaderTag.SIGNATURE and not e.value]
    if len(places) != 1:
        raise UsageError("exactly one empty SIGNATURE element marks where the signature goes")
    size = private_key.key_size // 8
    code = digest_code(digest)
    unpadded = 10 + sum(e.size for e in elements) + size
    padded = list(elements) + [Element.padding()] * (-unpadded % pad_to)
    header_length = unpadded + (-unpadded % pad_to)
    if header_length > 0xFFFF:
        raise UsageError(f"a header of {header_length} bytes does not fit HEADERLENGTH's 16 bits")
    first = Element(HeaderTag.VERSION, bytes(version)).encode() + Element.uint(HeaderTag.HEADER_LENGTH, header_length, 2).encode()
    before = first + b"".join(e.encode() for e in padded[: places[0]])
    after = b"".join(e.encode() for e in padded[places[0] + 1 :])
    signature = private_key.sign(before + after + body, padding.PKCS1v15(), _HASHES[code]())
    return TrustList.from_bytes(before + Element(HeaderTag.SIGNATURE, signature).encode() + after + body, kind=kind)


def _build(
    body: bytes,
    signer: Identity,
    *,
    filename: str,
    timestamp: int,
    digest: str | int,
    layout: Layout,
    version: tuple[int, int],
    signer_version: tuple[int, int] | None,
    signer_name_style: NameStyle | None,
    kind: FileKind | None,
) -> TrustList:
    code = digest_code(digest)
    style = signer_name_style or _DEFAULT_STYLE[layout]
    elements = []
    if layout is Layout.USECALLMANAGER:
        elements.append(Element(HeaderTag.SIGNER_VERSION, bytes(signer_version or (1, 0))))
    elif signer_version is not None:
        raise CertificateRequestError("only usecallmanager's layout writes the signer version (tag 28)")
    elements.append(signer_id_element(signer, layout, style))
    elements.append(signature_info_element(signer, code))
    elements += [
        Element(HeaderTag.SIGNATURE),
        Element.text(HeaderTag.FILENAME, filename),
        Element.uint(HeaderTag.TIMESTAMP, timestamp, 4),
    ]
    return assemble(version, elements, body, signer.private_key, digest=code, kind=kind)  # type: ignore[arg-type]


def build_trust_list(
    records: Sequence[Record],
    signer: Identity,
    *,
    filename: str,
    timestamp: int,
    digest: str | int = "sha1",
    layout: Layout = Layout.CUCM,
    version: tuple[int, int] = (1, 2),
    signer_version: tuple[int, int] | None = None,
    signer_name_style: NameStyle | None = None,
) -> TrustList:
    """Build and sign a CTL or ITL (docs/trust-lists.md); ``timestamp`` is the Unix time to write."""
    body = b"".join(record.encode() for record in records)
    return _build(
        body, signer, filename=filename, timestamp=timestamp, digest=digest, layout=layout, version=version,
        signer_version=signer_version, signer_name_style=signer_name_style, kind=None,
    )


def build_signed_file(
    payload: bytes,
    signer: Identity,
    *,
    filename: str,
    timestamp: int,
    digest: str | int = "sha1",
    layout: Layout = Layout.CUCM,
    version: tuple[int, int] = (1, 0),
) -> TrustList:
    """Sign a provisioning file as ``<name>.sgn`` (docs/trust-lists.md): the header, then the file verbatim."""
    if not filename.endswith(".sgn"):
        filename += ".sgn"
    return _build(
        payload, signer, filename=filename, timestamp=timestamp, digest=digest, layout=layout, version=version,
        signer_version=None, signer_name_style=None, kind=FileKind.SGN,
    )


@attrs.frozen
class Verification:
    """The outcome of checking a file's signature.

    ``signed_by`` is the index (0-based, into ``TrustList.records``) of the
    record whose key verified the signature; ``reason`` says why not when
    ``valid`` is false.
    """

    valid: bool
    signed_by: int | None = None
    reason: str | None = None


def record_key(record: Record) -> PublicKey:
    """The public key a record vouches for, refusing records whose parts disagree.

    A record whose PUBLICKEY is not its certificate's key, or whose serial is
    not its certificate's serial, is forged or broken: it never signs. A record
    with a certificate is always judged by that certificate, never by its
    PUBLICKEY alone, so an unusable certificate refuses the record every time
    it is asked (failures are not cached). The answer depends on the record's
    bytes alone, and the same records come back file after file: it is kept
    per record bytes, as the certificate's key is kept per certificate bytes.
    """
    raw = record.raw
    if len(raw) > _CACHED_CERTIFICATE_BYTES:
        return _record_key(record)
    return _key_of_record_bytes(raw)


def _record_key(record: Record) -> PublicKey:
    certificate = record.certificate
    if certificate is not None:
        key, public_key, serial = _certificate_key(certificate)
        if record.public_key is not None and record.public_key != public_key:
            raise CertificateError("the record's PUBLICKEY is not its certificate's key")
        if record.serial is not None and int.from_bytes(record.serial, "big") != serial:
            raise CertificateError("the record's SERIALNUMBER is not its certificate's serial number")
        return key
    if record.public_key is None:
        raise CertificateError("the record has neither a certificate nor a PUBLICKEY")
    return _bare_public_key(record.public_key)


@functools.lru_cache(maxsize=2048)
def _key_of_record_bytes(raw: bytes) -> PublicKey:
    """``_record_key`` of the record whose bytes are ``raw`` (a parsed record's bytes always read again)."""
    return _record_key(Record.from_bytes(raw))


#: Certificates up to this size are remembered with their key (as ``load_certificate`` does).
_CACHED_CERTIFICATE_BYTES = 16 * 1024


def _certificate_key(der: bytes) -> tuple[PublicKey, bytes, int]:
    """The certificate's key, its PUBLICKEY encoding and its serial number.

    Loading a certificate's key and encoding it again cost more than checking
    a trust list's signature; a phone or a fleet meets the same certificates
    file after file, so the answer is kept per certificate bytes.
    """
    if len(der) > _CACHED_CERTIFICATE_BYTES:
        return _load_certificate_key(der)
    return _cached_certificate_key(der)


def _load_certificate_key(der: bytes) -> tuple[PublicKey, bytes, int]:
    certificate = load_certificate(der, source="record certificate")
    key = certificate.public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise CertificateError("the record's certificate holds neither an RSA nor an EC key")
    return key, record_public_key(key), certificate.serial_number


_cached_certificate_key = functools.lru_cache(maxsize=2048)(_load_certificate_key)


@functools.lru_cache(maxsize=512)
def _bare_public_key(der: bytes) -> rsa.RSAPublicKey:
    """The RSA key of a record that has a PUBLICKEY and no certificate."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError("the record's PUBLICKEY is not a DER RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError("the record's PUBLICKEY is not an RSA key")
    return key


#: Hash and padding objects are immutable: one of each serves every check.
_HASH_BY_NAME: dict[str, hashes.HashAlgorithm] = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(),
                                                  "sha512": hashes.SHA512()}
_PKCS1 = padding.PKCS1v15()
#: Classes already seen to be RSA public keys (an ``isinstance`` against the abstract class costs
#: more than a set lookup, on every file checked).
_RSA_KEY_TYPES: set[type] = set()
#: ``digests`` of these types are looked into as they are (a model's digests are a frozenset).
_SET_TYPES = (set, frozenset)


def check_signature(
    trust_list: TrustList,
    public_key: PublicKey,
    *,
    digests: Iterable[str] | None = None,
    digest_names: Mapping[int, str] | None = None,
) -> str | None:
    """None when ``public_key`` verifies the file's signature, else the reason it does not.

    ``digests`` limits the digest algorithms accepted (a phone model that lacks
    SHA-512 rejects SHA-512-signed files, docs/models.md). ``digest_names`` maps
    DIGESTALGORITHM codes to digests (default docs/trust-lists.md, where code 2 for
    SHA-256 is OPEN: a model setting can move it).
    """
    header = trust_list.header
    code = header.digest_code
    name = (digest_names or DIGEST_NAMES).get(code)  # type: ignore[call-overload]
    if name is None:
        return f"unknown digest algorithm code {code}"
    if digests is not None and name not in (digests if type(digests) in _SET_TYPES else set(digests)):
        return f"the {name.upper()} digest is not supported"
    algorithm = header.signature_algorithm
    if algorithm is not None and algorithm != 0:
        return f"unknown signature algorithm code {algorithm} (only RSA, code 0, is defined)"
    if type(public_key) not in _RSA_KEY_TYPES:
        if not isinstance(public_key, rsa.RSAPublicKey):
            return "the signer's key is not RSA, and trust lists are signed with RSA"
        _RSA_KEY_TYPES.add(type(public_key))
    signature = header.signature
    if public_key.key_size // 8 != len(signature):
        return f"a {len(signature)}-byte signature cannot come from a {public_key.key_size}-bit key"
    # What ``TrustList.signed_bytes`` gives, without its calls. The file is joined once around the
    # SIGNATURE rather than hashed in two pieces with the digest passed as ``Prehashed``: measured on
    # 3.6-12 KB files, the copy costs what two hash updates and a digest object cost from Python.
    start, end = header.signature_span
    view = memoryview(trust_list.data)
    try:
        public_key.verify(signature, b"".join((view[:start], view[end:])), _PKCS1, _HASH_BY_NAME[name])
    except InvalidSignature:
        return "the signature does not match the file's content"
    return None


_SAST = int(Role.SAST)  # a plain int: compared once per record of every file verified


def signer_candidates(trust_list: TrustList) -> tuple[tuple[int, Record], ...]:
    """SAST records that claim to be the header's signer: same serial (byte for byte), same issuer.

    docs/trust-lists.md: the signer is the record with role SAST whose SERIALNUMBER (and
    issuer) equals the header's.
    """
    header = trust_list.header
    serial = header.signer_serial
    if serial is None:
        return ()
    wanted_issuer = header.signer_issuer
    found = []
    for index, record in enumerate(trust_list.records):
        if record.function != _SAST or record.serial != serial:
            continue
        if wanted_issuer:
            issuer = record.issuer
            if issuer and issuer != wanted_issuer and _name_key(issuer) != _name_key(wanted_issuer):
                continue
        found.append((index, record))
    return tuple(found)


#: Names up to this length have their key remembered (a certificate's issuer is well under it).
_REMEMBERED_NAME_LENGTH = 1024


@functools.lru_cache(maxsize=1024)
def _remembered_name_key(text: str) -> tuple[tuple[str, str], ...]:
    return name_key(text)


def _name_key(text: str) -> tuple[tuple[str, str], ...]:
    """``name_key``, remembered for the few issuer names a phone meets file after file."""
    return _remembered_name_key(text) if len(text) <= _REMEMBERED_NAME_LENGTH else name_key(text)


def verify(
    trust_list: TrustList,
    *,
    certificate: x509.Certificate | None = None,
    digests: Iterable[str] | None = None,
    digest_names: Mapping[int, str] | None = None,
) -> Verification:
    """Check the file's signature with ``certificate``, or else with its own SAST signer record."""
    if certificate is not None:
        reason = check_signature(trust_list, certificate.public_key(), digests=digests,  # type: ignore[arg-type]
                                 digest_names=digest_names)
        der = certificate.public_bytes(serialization.Encoding.DER)
        matching = [index for index, record in enumerate(trust_list.records) if record.certificate == der]
        sast = [index for index in matching if trust_list.records[index].function == Role.SAST]
        signed_by = (sast or matching or [None])[0]
        return Verification(reason is None, signed_by if reason is None else None, reason)
    candidates = signer_candidates(trust_list)
    if not candidates:
        serial = trust_list.header.signer_serial
        shown = serial.hex().upper() if serial else "(none)"
        return Verification(False, None, f"no SAST record in the file matches the signer serial {shown}")
    reason = None
    for index, record in candidates:
        try:
            key = record_key(record)
        except CertificateError as error:
            reason = f"record #{index + 1}: {error}"
            continue
        reason = check_signature(trust_list, key, digests=digests, digest_names=digest_names)
        if reason is None:
            return _signed_by(index)
    return Verification(False, None, reason)


@functools.lru_cache(maxsize=64)
def _signed_by(index: int) -> Verification:
    """The valid outcome naming record ``index``: immutable, so one object serves every file it fits."""
    return Verification(True, index)

