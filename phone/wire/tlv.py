"""CTL, ITL and .sgn files: reading and re-encoding the TLV layout (docs/trust-lists.md).

A file is a header of exactly HEADERLENGTH bytes followed by records of exactly
RECORDLENGTH bytes each (trust lists) or by the signed file itself (``.sgn``,
docs/trust-lists.md). Every element is tag (1 byte), length (2 bytes, big-endian), value;
the one exception is header tag 13, a single padding byte (docs/trust-lists.md).

Reading follows what any producer may write (docs/trust-lists.md): any element order
after VERSION and HEADERLENGTH, the containers SIGNERID / SIGNATUREINFO /
SIGNATUREALGOINFO descended into, padding bytes, unknown tags kept and skipped
by their length, optional record elements, records without certificates.
Reading is also strict where leniency would let a forged file through: an
element that overruns its header, container or record, a duplicated element
(which SIGNATURE would be cut out?), a SIGNATURE whose size contradicts
SIGNATUREMODULUS, or a missing SIGNATURE or DIGESTALGORITHM is a
``TrustListFormatError`` naming the byte offset and what was expected.

Nothing here checks signatures: that is ``phone.wire.signing``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator
from enum import Enum, IntEnum

import attrs

from phone.errors import TrustListFormatError, UsageError


class Role(IntEnum):
    """The FUNCTION of a record, also the role codes of TVS answers (docs/trust-lists.md)."""

    SAST = 0
    CCM = 1
    CCM_TFTP = 2
    TFTP = 3
    CAPF = 4
    APP_SERVER = 7
    TVS = 21


ROLE_NAMES = {
    Role.SAST: "SAST",
    Role.CCM: "CCM",
    Role.CCM_TFTP: "CCM+TFTP",
    Role.TFTP: "TFTP",
    Role.CAPF: "CAPF",
    Role.APP_SERVER: "APP-SERVER",
    Role.TVS: "TVS",
}


def role_name(code: int) -> str:
    """The role's name (docs/trust-lists.md); unknown codes stay numbers, never an error (docs/trust-lists.md)."""
    return ROLE_NAMES.get(code, str(code))  # type: ignore[call-overload]


def parse_role(text: str) -> int:
    """A role from its name (``SAST``, ``CCM+TFTP``, ``ccm_tftp``, ``APP-SERVER``) or its number."""
    cleaned = text.strip().upper().replace("_", "+")
    if cleaned.isdigit():
        code = int(cleaned)
        if code > 0xFFFF:
            raise UsageError(f"role code {code} does not fit in 16 bits")
        return code
    for code, name in ROLE_NAMES.items():
        if cleaned in (name, name.replace("-", "+")):
            return int(code)
    known = ", ".join(ROLE_NAMES.values())
    raise UsageError(f"unknown role {text!r} (known: {known}, or a number)")


class HeaderTag(IntEnum):
    """Header element tags (docs/trust-lists.md)."""

    VERSION = 1
    HEADER_LENGTH = 2
    SIGNER_ID = 3
    SIGNER_NAME = 4
    SERIAL_NUMBER = 5
    CA_NAME = 6
    SIGNATURE_INFO = 7
    DIGEST_ALGORITHM = 8
    SIGNATURE_ALGO_INFO = 9
    SIGNATURE_ALGORITHM = 10
    SIGNATURE_MODULUS = 11
    SIGNATURE = 12
    PADDING = 13
    FILENAME = 14
    TIMESTAMP = 15
    SIGNER_VERSION = 28


class RecordTag(IntEnum):
    """Record element tags (docs/trust-lists.md)."""

    RECORD_LENGTH = 1
    DNS_NAME = 2
    SUBJECT_NAME = 3
    FUNCTION = 4
    ISSUER_NAME = 5
    SERIAL_NUMBER = 6
    PUBLIC_KEY = 7
    SIGNATURE = 8
    CERTIFICATE = 9
    IP_ADDRESS = 10
    CERT_HASH = 11
    HASH_ALGORITHM = 12


class Digest(IntEnum):
    """DIGESTALGORITHM codes (docs/trust-lists.md; code 2 for SHA-256 is OPEN: never seen in a real file)."""

    SHA1 = 1
    SHA256 = 2
    SHA512 = 3


DIGEST_NAMES = {Digest.SHA1: "sha1", Digest.SHA256: "sha256", Digest.SHA512: "sha512"}

#: SIGNATUREMODULUS code -> signature size in bytes, as usecallmanager's tool writes it (docs/trust-lists.md).
SIGNATURE_SIZES = {0: 64, 1: 128, 2: 256, 3: 512}

_CONTAINERS = frozenset({HeaderTag.SIGNER_ID, HeaderTag.SIGNATURE_INFO, HeaderTag.SIGNATURE_ALGO_INFO})
#: SIGNATUREINFO holds SIGNATUREALGOINFO: two levels are all a real file has; a
#: limit keeps a hostile file from nesting containers thousands deep.
_MAX_CONTAINER_DEPTH = 3
_PADDING_BYTE = bytes([HeaderTag.PADDING])


class FileKind(Enum):
    """What a parsed file is, from its FILENAME (per-phone files carry the generic name)."""

    CTL = "ctl"
    ITL = "itl"
    SGN = "sgn"
    TLV = "tlv"  # a trust list whose FILENAME names neither CTL nor ITL

    @property
    def label(self) -> str:
        return {"ctl": "CTL", "itl": "ITL", "sgn": "signed", "tlv": "TLV"}[self.value]


@attrs.frozen
class Element:
    """One TLV element; a container keeps its nested elements in ``children``.

    ``offset`` is where the tag byte sits in the file it was read from (0 for
    built elements) and takes no part in equality.
    """

    tag: int
    value: bytes = b""
    children: tuple[Element, ...] = attrs.field(default=(), eq=False)
    offset: int = attrs.field(default=0, eq=False)

    @classmethod
    def padding(cls) -> Element:
        return cls(HeaderTag.PADDING)

    @classmethod
    def container(cls, tag: int, children: Iterable[Element]) -> Element:
        children = tuple(children)
        return cls(tag, b"".join(child.encode() for child in children), children)

    @classmethod
    def text(cls, tag: int, value: str) -> Element:
        """A NUL-terminated text element; the NUL counts in the length (docs/trust-lists.md)."""
        return cls(tag, value.encode("utf-8") + b"\x00")

    @classmethod
    def uint(cls, tag: int, value: int, size: int) -> Element:
        return cls(tag, value.to_bytes(size, "big"))

    @property
    def is_padding(self) -> bool:
        return self.tag == HeaderTag.PADDING and not self.value

    @property
    def size(self) -> int:
        return 1 if self.is_padding else 3 + len(self.value)

    def encode(self) -> bytes:
        if self.is_padding:
            return _PADDING_BYTE
        if len(self.value) > 0xFFFF:
            raise UsageError(f"tag {self.tag}: a value of {len(self.value)} bytes does not fit a 16-bit length")
        return bytes([self.tag]) + len(self.value).to_bytes(2, "big") + self.value

    def walk(self) -> Iterator[Element]:
        """This element, then everything nested in it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def _read_elements(
    data: bytes, start: int, end: int, where: str, *, in_header: bool, depth: int = 0
) -> tuple[Element, ...]:
    """Read elements from ``data[start:end]``; each must end inside that span.

    Header elements (``in_header``) may be padding bytes at the top level and
    containers at any level; records have neither.
    """
    padding = in_header and depth == 0
    elements = []
    position = start
    while position < end:
        tag = data[position]
        if padding and tag == HeaderTag.PADDING:
            elements.append(Element(tag, offset=position))
            position += 1
            continue
        if position + 3 > end:
            raise TrustListFormatError(position, f"a tag and a 2-byte length inside the {where}, which ends at byte {end}")
        length = int.from_bytes(data[position + 1 : position + 3], "big")
        value_end = position + 3 + length
        if value_end > end:
            raise TrustListFormatError(
                position, f"tag {tag} with a length of {length} that fits in the {where}, which ends at byte {end}"
            )
        children: tuple[Element, ...] = ()
        if in_header and tag in _CONTAINERS:
            if depth >= _MAX_CONTAINER_DEPTH:
                raise TrustListFormatError(position, f"containers nested at most {_MAX_CONTAINER_DEPTH} deep")
            children = _read_elements(
                data, position + 3, value_end, f"tag {tag} container", in_header=True, depth=depth + 1
            )
        elements.append(Element(tag, data[position + 3 : value_end], children, position))
        position = value_end
    return tuple(elements)


def _leaves_by_tag(elements: Iterable[Element], where: str) -> dict[int, Element]:
    """Leaf elements by tag; a tag present twice is ambiguous, so it is an error."""
    found: dict[int, Element] = {}
    for top in elements:
        for element in top.walk():
            if element.children or element.is_padding:
                continue
            if element.tag in found:
                raise TrustListFormatError(
                    element.offset,
                    f"at most one tag {element.tag} in the {where} (another one is at byte {found[element.tag].offset})",
                )
            found[element.tag] = element
    return found


def _text(element: Element | None) -> str | None:
    """Decode a NUL-terminated text value; bytes after the first NUL are ignored."""
    if element is None:
        return None
    raw = element.value.split(b"\x00", 1)[0]
    return raw.decode("utf-8", errors="replace")


def _fixed(element: Element | None, size: int, name: str) -> bytes | None:
    if element is None:
        return None
    if len(element.value) != size:
        raise TrustListFormatError(element.offset, f"{name} of {size} byte(s), found a length of {len(element.value)}")
    return element.value


def _uint(element: Element | None, size: int, name: str) -> int | None:
    value = _fixed(element, size, name)
    return None if value is None else int.from_bytes(value, "big")


@attrs.frozen
class Header:
    """The header of a trust list or signed file (docs/trust-lists.md), fields decoded.

    ``elements`` keeps the top-level elements in file order (padding included)
    so that the header re-encodes byte for byte.
    """

    version: tuple[int, int]
    header_length: int
    elements: tuple[Element, ...]
    signer_name: str | None = None
    signer_serial: bytes | None = None
    signer_issuer: str | None = None
    digest_code: int | None = None
    signature_algorithm: int | None = None
    signature_modulus: int | None = None
    signature: bytes = b""
    signature_offset: int = 0
    filename: str | None = None
    timestamp: int | None = None
    signer_version: tuple[int, int] | None = None

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def digest_name(self) -> str | None:
        """``sha1``, ``sha256`` or ``sha512``; None for a code no file is known to use."""
        return DIGEST_NAMES.get(self.digest_code)  # type: ignore[call-overload]

    @property
    def padding_length(self) -> int:
        return sum(1 for element in self.elements if element.is_padding)

    @property
    def signature_span(self) -> tuple[int, int]:
        """Start and end of the whole SIGNATURE element (tag, length, value) in the file."""
        return self.signature_offset, self.signature_offset + 3 + len(self.signature)


@attrs.frozen
class Record:
    """One certificate entry of a CTL or ITL (docs/trust-lists.md), fields decoded.

    Every field but ``length`` is optional: producers omit DNSNAME and
    IPADDRESS, eToken records have no SIGNATURE, a record of a cluster set back
    to non-secure mode has no certificate at all.
    """

    length: int
    elements: tuple[Element, ...]
    offset: int = attrs.field(default=0, eq=False)
    dns_name: str | None = None
    subject: str | None = None
    function: int | None = None
    issuer: str | None = None
    serial: bytes | None = None
    public_key: bytes | None = None
    signature: bytes | None = None
    certificate: bytes | None = None
    ip_address: bytes | None = None
    certificate_hash: bytes | None = None
    hash_algorithm: int | None = None

    @classmethod
    def from_elements(cls, elements: Iterable[Element], offset: int = 0) -> Record:
        """A record from its elements (RECORDLENGTH excluded: it is computed and put first)."""
        body = tuple(element for element in elements if element.tag != RecordTag.RECORD_LENGTH)
        length = 5 + sum(element.size for element in body)
        if length > 0xFFFF:
            raise UsageError(f"a record of {length} bytes does not fit RECORDLENGTH's 16 bits")
        return cls._decode((Element.uint(RecordTag.RECORD_LENGTH, length, 2), *body), length, offset)

    @classmethod
    def _decode(cls, elements: tuple[Element, ...], length: int, offset: int) -> Record:
        by_tag = _leaves_by_tag(elements[1:], "record")
        function = _uint(by_tag.get(RecordTag.FUNCTION), 2, "FUNCTION")
        hash_algorithm = _uint(by_tag.get(RecordTag.HASH_ALGORITHM), 1, "HASHALGORITHM")
        address = by_tag.get(RecordTag.IP_ADDRESS)

        def raw(tag: RecordTag) -> bytes | None:
            element = by_tag.get(tag)
            return None if element is None else element.value

        return cls(
            length=length,
            elements=elements,
            offset=offset,
            dns_name=_text(by_tag.get(RecordTag.DNS_NAME)),
            subject=_text(by_tag.get(RecordTag.SUBJECT_NAME)),
            function=function,
            issuer=_text(by_tag.get(RecordTag.ISSUER_NAME)),
            serial=raw(RecordTag.SERIAL_NUMBER),
            public_key=raw(RecordTag.PUBLIC_KEY),
            signature=raw(RecordTag.SIGNATURE),
            certificate=raw(RecordTag.CERTIFICATE),
            ip_address=None if address is None else address.value,
            certificate_hash=raw(RecordTag.CERT_HASH),
            hash_algorithm=hash_algorithm,
        )

    @property
    def role_name(self) -> str | None:
        return None if self.function is None else role_name(self.function)

    @property
    def ip_address_text(self) -> str | None:
        """The IPADDRESS as dotted text (IPv4; 16 bytes read as IPv6), else None."""
        if self.ip_address is None or len(self.ip_address) not in (4, 16):
            return None
        return str(ipaddress.ip_address(self.ip_address))

    @property
    def certificate_sha1(self) -> str | None:
        """SHA-1 of the DER certificate in upper-case hex, as `show ctl` prints it (docs/trust-lists.md)."""
        return None if self.certificate is None else hashlib.sha1(self.certificate).hexdigest().upper()

    def encode(self) -> bytes:
        return b"".join(element.encode() for element in self.elements)


@attrs.frozen
class TrustList:
    """A parsed CTL, ITL or ``.sgn`` file: header, records (or signed payload), raw bytes.

    Make one with ``TrustList.from_bytes``; ``encode()`` re-encodes from the
    parsed elements and gives the original bytes back for every file that parses.
    """

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    header: Header
    records: tuple[Record, ...]
    kind: FileKind
    payload: bytes | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes, *, kind: FileKind | None = None) -> TrustList:
        """Parse a file (docs/trust-lists.md). ``kind`` forces ``.sgn`` or trust-list reading; by default
        the header's FILENAME decides, and a version 1.0 header without one is a ``.sgn``."""
        data = bytes(data)
        header = _parse_header(data)
        if kind is None:
            kind = _kind_of(header)
        if kind is FileKind.SGN:
            return cls(data, header, (), kind, data[header.header_length :])
        return cls(data, header, _parse_records(data, header.header_length), kind)

    @property
    def length(self) -> int:
        return len(self.data)

    @property
    def md5(self) -> str:
        """MD5 of the whole file: what `show ctl` and a 79xx Trust List screen show (docs/trust-lists.md)."""
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha1(self) -> str:
        """SHA-1 of the whole file: what `show ctl` and newer phones show (docs/trust-lists.md)."""
        return hashlib.sha1(self.data).hexdigest()

    def signed_bytes(self) -> bytes:
        """The file with the SIGNATURE element cut out: what the signature covers (docs/trust-lists.md)."""
        start, end = self.header.signature_span
        return self.data[:start] + self.data[end:]

    def records_with_role(self, role: int) -> tuple[tuple[int, Record], ...]:
        return tuple((index, record) for index, record in enumerate(self.records) if record.function == role)

    def encode(self) -> bytes:
        """Re-encode from the parsed elements (equals ``data`` for any parsed file)."""
        header = b"".join(element.encode() for element in self.header.elements)
        body = self.payload if self.kind is FileKind.SGN else b"".join(r.encode() for r in self.records)
        return header + (body or b"")


def _parse_header(data: bytes) -> Header:
    if len(data) < 10:
        raise TrustListFormatError(len(data), "a VERSION and a HEADERLENGTH element (10 bytes); the file is shorter")
    if data[0] != HeaderTag.VERSION or data[1:3] != b"\x00\x02":
        raise TrustListFormatError(0, "a VERSION element (tag 1, length 2) first")
    if data[5] != HeaderTag.HEADER_LENGTH or data[6:8] != b"\x00\x02":
        raise TrustListFormatError(5, "a HEADERLENGTH element (tag 2, length 2) second")
    version = (data[3], data[4])
    header_length = int.from_bytes(data[8:10], "big")
    if header_length < 10 or header_length > len(data):
        raise TrustListFormatError(
            8, f"a HEADERLENGTH between 10 and the file's length {len(data)}, found {header_length}"
        )
    first = (Element(HeaderTag.VERSION, data[3:5]), Element(HeaderTag.HEADER_LENGTH, data[8:10], offset=5))
    elements = first + _read_elements(data, 10, header_length, "header", in_header=True)
    by_tag = _leaves_by_tag(elements, "header")
    signature = by_tag.get(HeaderTag.SIGNATURE)
    if signature is None or not signature.value:
        raise TrustListFormatError(10, f"a SIGNATURE element (tag 12) in the header of {header_length} bytes")
    digest = _uint(by_tag.get(HeaderTag.DIGEST_ALGORITHM), 1, "DIGESTALGORITHM")
    if digest is None:
        raise TrustListFormatError(10, "a DIGESTALGORITHM element (tag 8) in the header")
    modulus = _uint(by_tag.get(HeaderTag.SIGNATURE_MODULUS), 1, "SIGNATUREMODULUS")
    if modulus in SIGNATURE_SIZES and SIGNATURE_SIZES[modulus] != len(signature.value):
        raise TrustListFormatError(
            signature.offset,
            f"a SIGNATURE of {SIGNATURE_SIZES[modulus]} bytes as SIGNATUREMODULUS {modulus} says, "
            f"found {len(signature.value)}",
        )
    signer_version = _fixed(by_tag.get(HeaderTag.SIGNER_VERSION), 2, "signer version (tag 28)")
    serial = by_tag.get(HeaderTag.SERIAL_NUMBER)
    return Header(
        version=version,
        header_length=header_length,
        elements=elements,
        signer_name=_text(by_tag.get(HeaderTag.SIGNER_NAME)),
        signer_serial=None if serial is None else serial.value,
        signer_issuer=_text(by_tag.get(HeaderTag.CA_NAME)),
        digest_code=digest,
        signature_algorithm=_uint(by_tag.get(HeaderTag.SIGNATURE_ALGORITHM), 1, "SIGNATUREALGORITHM"),
        signature_modulus=modulus,
        signature=signature.value,
        signature_offset=signature.offset,
        filename=_text(by_tag.get(HeaderTag.FILENAME)),
        timestamp=_uint(by_tag.get(HeaderTag.TIMESTAMP), 4, "TIMESTAMP"),
        signer_version=None if signer_version is None else (signer_version[0], signer_version[1]),
    )


def _parse_records(data: bytes, start: int) -> tuple[Record, ...]:
    records = []
    position = start
    while position < len(data):
        number = len(records) + 1
        if len(data) - position < 5:
            raise TrustListFormatError(position, f"record #{number} starting with RECORDLENGTH (5 bytes); {len(data) - position} left")
        if data[position] != RecordTag.RECORD_LENGTH or data[position + 1 : position + 3] != b"\x00\x02":
            raise TrustListFormatError(position, f"record #{number} starting with RECORDLENGTH (tag 1, length 2)")
        length = int.from_bytes(data[position + 3 : position + 5], "big")
        if length < 5 or position + length > len(data):
            raise TrustListFormatError(
                position + 3,
                f"a RECORDLENGTH for record #{number} between 5 and the {len(data) - position} bytes left, found {length}",
            )
        first = Element(RecordTag.RECORD_LENGTH, data[position + 3 : position + 5], offset=position)
        body = _read_elements(data, position + 5, position + length, f"record #{number}", in_header=False)
        records.append(Record._decode((first, *body), length, position))
        position += length
    return tuple(records)


def _kind_of(header: Header) -> FileKind:
    name = (header.filename or "").lower()
    if name.endswith(".sgn"):
        return FileKind.SGN
    if name.startswith("ctl"):
        return FileKind.CTL
    if name.startswith("itl"):
        return FileKind.ITL
    if not name and header.version == (1, 0):
        return FileKind.SGN
    return FileKind.TLV
