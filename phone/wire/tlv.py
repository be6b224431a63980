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
from typing import Generic, NoReturn, TypeVar

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


_SGN = FileKind.SGN  # read on every parse: a module global costs less than an enum member lookup
#: A field decoded when first read has not been read yet (no decoded value is False; it survives pickling).
_UNREAD = False


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


def element_bounds(data: bytes, position: int, end: int, where: str) -> tuple[int, int, int]:
    """The tag, value start and value end of the element at ``position``, which must end by ``end``.

    The careful reading of one ``tag``, 2-byte length, value (docs/trust-lists.md); ``where``
    names the enclosing span in errors. The parse's fast scans inline the same checks.
    """
    if position + 3 > end:
        raise TrustListFormatError(position, f"a tag and a 2-byte length inside the {where}, which ends at byte {end}")
    tag = data[position]
    length = (data[position + 1] << 8) | data[position + 2]
    value_end = position + 3 + length
    if value_end > end:
        raise TrustListFormatError(
            position, f"tag {tag} with a length of {length} that fits in the {where}, which ends at byte {end}"
        )
    return tag, position + 3, value_end


def _read_elements(
    data: bytes, start: int, end: int, where: str, *, in_header: bool, depth: int = 0, base: int = 0
) -> tuple[Element, ...]:
    """Read elements from ``data[start:end]`` as ``Element`` objects; each must end inside that span.

    Header elements (``in_header``) may be padding bytes at the top level and
    containers at any level; records have neither. ``base`` is added to every
    offset (a record's bytes read on their own still name file offsets).
    Parsing does not build these objects (``_scan_header`` and ``_scan_record``
    check the same bounds without them); ``Header.elements`` and
    ``Record.elements`` do, when a caller asks.
    """
    padding = in_header and depth == 0
    elements = []
    position = start
    while position < end:
        tag = data[position]
        if padding and tag == HeaderTag.PADDING:
            elements.append(Element(tag, offset=base + position))
            position += 1
            continue
        tag, value_start, value_end = element_bounds(data, position, end, where)
        children: tuple[Element, ...] = ()
        if in_header and tag in _CONTAINERS:
            if depth >= _MAX_CONTAINER_DEPTH:
                raise TrustListFormatError(position, f"containers nested at most {_MAX_CONTAINER_DEPTH} deep")
            children = _read_elements(
                data, value_start, value_end, f"tag {tag} container", in_header=True, depth=depth + 1, base=base
            )
        elements.append(Element(tag, data[value_start:value_end], children, base + position))
        position = value_end
    return tuple(elements)


# Parsing keeps, per header and per record, where each known tag's value
# starts (``spans[tag]``, -1 when absent) instead of building an Element per
# element: a 4.5 KB ITL has some fifty elements, and building them was most of
# the time a phone spent reading a file. Values are sliced and decoded when a
# caller reads the field.
_ABSENT = -1
_HEADER_SPANS = HeaderTag.SIGNER_VERSION + 1
_RECORD_SPANS = RecordTag.HASH_ALGORITHM + 1
_MAX_OPEN = _MAX_CONTAINER_DEPTH
# Plain ints for the tags read on every parse (an IntEnum member costs a lookup each time).
_SIGNATURE, _DIGEST_ALGORITHM, _SIGNATURE_MODULUS = int(HeaderTag.SIGNATURE), 8, 11
_SIGNER_VERSION, _SIGNATURE_ALGORITHM, _TIMESTAMP = 28, 10, 15
_FUNCTION, _HASH_ALGORITHM = int(RecordTag.FUNCTION), 12
# Plain ints for the tags the field properties read (an IntEnum member costs a class lookup each time).
_H_CA_NAME = int(HeaderTag.CA_NAME)
_H_DIGEST_ALGORITHM = int(HeaderTag.DIGEST_ALGORITHM)
_H_FILENAME = int(HeaderTag.FILENAME)
_H_SERIAL_NUMBER = int(HeaderTag.SERIAL_NUMBER)
_H_SIGNATURE = int(HeaderTag.SIGNATURE)
_H_SIGNATURE_ALGORITHM = int(HeaderTag.SIGNATURE_ALGORITHM)
_H_SIGNATURE_MODULUS = int(HeaderTag.SIGNATURE_MODULUS)
_H_SIGNER_NAME = int(HeaderTag.SIGNER_NAME)
_H_SIGNER_VERSION = int(HeaderTag.SIGNER_VERSION)
_H_TIMESTAMP = int(HeaderTag.TIMESTAMP)
_R_CERTIFICATE = int(RecordTag.CERTIFICATE)
_R_CERT_HASH = int(RecordTag.CERT_HASH)
_R_DNS_NAME = int(RecordTag.DNS_NAME)
_R_FUNCTION = int(RecordTag.FUNCTION)
_R_HASH_ALGORITHM = int(RecordTag.HASH_ALGORITHM)
_R_IP_ADDRESS = int(RecordTag.IP_ADDRESS)
_R_ISSUER_NAME = int(RecordTag.ISSUER_NAME)
_R_PUBLIC_KEY = int(RecordTag.PUBLIC_KEY)
_R_SERIAL_NUMBER = int(RecordTag.SERIAL_NUMBER)
_R_SIGNATURE = int(RecordTag.SIGNATURE)
_R_SUBJECT_NAME = int(RecordTag.SUBJECT_NAME)
#: Header values of a fixed size checked after SIGNATURE, DIGESTALGORITHM and SIGNATUREMODULUS, in this order.
_HEADER_SIZES = ((_SIGNER_VERSION, 2, "signer version (tag 28)"), (_SIGNATURE_ALGORITHM, 1, "SIGNATUREALGORITHM"),
                 (_TIMESTAMP, 4, "TIMESTAMP"))


def _header_spans(data: bytes, header_length: int) -> dict[int, int] | None:
    """Where each header leaf's value starts, for a header as producers write it; None otherwise.

    The common case in one flat pass: containers are stepped into (their ends
    kept on a stack, each child must end exactly where its container does),
    padding is skipped at the top level. Anything unusual — an overrun, a
    duplicated tag, a tag 13 inside a container, nesting past the limit —
    gives None, and ``_scan_header`` reads the header again to name the
    offending byte, or to accept what only looked unusual.
    """
    spans = {1: 3, 2: 8}
    count = 2
    outer: list[int] = []  # ends of the spans enclosing the innermost open container
    end = header_length  # where the innermost open span must end
    position = 10
    try:
        while True:
            if position >= end:
                if position != end:
                    return None
                if not outer:
                    break
                end = outer.pop()
                continue
            tag = data[position]
            if tag == 13 and not outer:
                position += 1
                continue
            length = (data[position + 1] << 8) | data[position + 2]
            if tag == 3 or tag == 7 or tag == 9:
                if len(outer) >= _MAX_OPEN:
                    return None
                if length:
                    outer.append(end)
                    end = position + 3 + length
                    position += 3
                    continue
            spans[tag] = position + 3
            count += 1
            position += 3 + length
    except IndexError:
        return None
    if len(spans) != count or 13 in spans:
        return None
    return spans


def _record_spans(raw: bytes) -> dict[int, int] | None:
    """Where each element's value starts in a record's bytes, for a record as producers write it.

    None for anything unusual (an overrun, a duplicated tag, a tag 13);
    ``_scan_record`` then names the offending byte, or accepts the record.
    """
    spans = {}
    count = 0
    end = len(raw)
    position = 5
    try:
        while position < end:
            spans[raw[position]] = position + 3
            position += 3 + ((raw[position + 1] << 8) | raw[position + 2])
            count += 1
    except IndexError:
        return None
    if position != end or len(spans) != count or 13 in spans:
        return None
    return spans


def _duplicate(tag: int, offset: int, first: int, where: str) -> TrustListFormatError:
    return TrustListFormatError(offset, f"at most one tag {tag} in the {where} (another one is at byte {first})")


def _scan_header(data: bytes, start: int, end: int, where: str, spans: list[int], others: dict[int, int],
                 depth: int, duplicates: list[TrustListFormatError]) -> None:
    """Check the header elements in ``data[start:end]`` and note where each leaf's value starts.

    The same rules as ``_read_elements`` and the same errors, in the same
    order: bounds and nesting while scanning, the first duplicated leaf once
    the whole header is scanned (collected in ``duplicates``). A container
    with children is not a leaf; an empty one is, like any other element.
    """
    position = start
    while position < end:
        tag = data[position]
        if tag == 13 and depth == 0:  # HeaderTag.PADDING: one byte, at the top level only
            position += 1
            continue
        if position + 3 > end:
            raise TrustListFormatError(position, f"a tag and a 2-byte length inside the {where}, which ends at byte {end}")
        length = (data[position + 1] << 8) | data[position + 2]
        value_end = position + 3 + length
        if value_end > end:
            raise TrustListFormatError(
                position, f"tag {tag} with a length of {length} that fits in the {where}, which ends at byte {end}"
            )
        if tag == 3 or tag == 7 or tag == 9:  # SIGNERID, SIGNATUREINFO, SIGNATUREALGOINFO
            if depth >= _MAX_CONTAINER_DEPTH:
                raise TrustListFormatError(position, f"containers nested at most {_MAX_CONTAINER_DEPTH} deep")
            if length:
                _scan_header(data, position + 3, value_end, f"tag {tag} container", spans, others, depth + 1,
                             duplicates)
                position = value_end
                continue
        if tag == 13 and not length:  # an empty tag 13 reads as padding, which is never a duplicate
            pass
        elif tag < _HEADER_SPANS:
            first = spans[tag]
            if first == _ABSENT:
                spans[tag] = position + 3
            elif not duplicates:
                duplicates.append(_duplicate(tag, position, first - 3, "header"))
        elif tag in others:
            if not duplicates:
                duplicates.append(_duplicate(tag, position, others[tag], "header"))
        else:
            others[tag] = position
        position = value_end


def _scan_record(data: bytes, start: int, end: int, where: str) -> dict[int, int]:
    """Check a record's elements in ``data[start:end]`` (after RECORDLENGTH); spans relative to ``start - 5``.

    Bounds errors while scanning, then the first duplicated element, as
    ``_read_elements`` followed by ``_leaves_by_tag`` report them.
    """
    spans = [_ABSENT] * _RECORD_SPANS
    others: dict[int, int] | None = None
    duplicate = None
    origin = start - 5
    position = start
    while position < end:
        if position + 3 > end:
            raise TrustListFormatError(position, f"a tag and a 2-byte length inside the {where}, which ends at byte {end}")
        tag = data[position]
        length = (data[position + 1] << 8) | data[position + 2]
        value_end = position + 3 + length
        if value_end > end:
            raise TrustListFormatError(
                position, f"tag {tag} with a length of {length} that fits in the {where}, which ends at byte {end}"
            )
        if tag < _RECORD_SPANS:
            first = spans[tag]
            if first == _ABSENT:
                spans[tag] = position + 3 - origin
            elif duplicate is None:
                duplicate = _duplicate(tag, position, first - 3 + origin, "record")
        elif length or tag != 13:  # an empty tag 13 reads as padding, which is never a duplicate
            if others is None:
                others = {}
            if tag not in others:
                others[tag] = position
            elif duplicate is None:
                duplicate = _duplicate(tag, position, others[tag], "record")
        position = value_end
    if duplicate is not None:
        raise duplicate
    found = {tag: start for tag, start in enumerate(spans) if start != _ABSENT}
    if others:
        found.update((tag, element + 3 - origin) for tag, element in others.items())
    return found


def _value(raw: bytes, start: int) -> bytes | None:
    """The value whose first byte is ``raw[start]`` (its 2-byte length just before it)."""
    if start == _ABSENT:
        return None
    return raw[start : start + ((raw[start - 2] << 8) | raw[start - 1])]


def _byte_at(raw: bytes, start: int) -> int | None:
    """A one-byte value (its size was checked when the element was read)."""
    return None if start == _ABSENT else raw[start]


def _text_at(raw: bytes, start: int) -> str | None:
    """Decode a NUL-terminated text value; bytes after the first NUL are ignored."""
    value = _value(raw, start)
    return None if value is None else value.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def _check_size(raw: bytes, start: int, size: int, name: str, base: int = 0) -> None:
    if start != _ABSENT:
        length = (raw[start - 2] << 8) | raw[start - 1]
        if length != size:
            raise TrustListFormatError(base + start - 3, f"{name} of {size} byte(s), found a length of {length}")


@attrs.frozen(repr=False)
class Header:
    """The header of a trust list or signed file (docs/trust-lists.md), fields decoded when read.

    ``raw`` is the header's bytes; ``spans`` says where each known tag's
    value starts in it (made by ``TrustList.from_bytes``, which has checked
    every bound and size the fields rely on). ``elements`` gives the
    top-level elements in file order (padding included).

    The fields every verification reads (the signer's serial and issuer, the
    digest and signature algorithms, the signature and where it sits) and the
    file's kind are decoded once, when the header is made, and are plain
    attributes: a header read from a file is shared by every later file with
    the same header bytes (``_HEADERS``), and verification reads them
    for each of those files.
    """

    raw: bytes
    _spans: dict[int, int] = attrs.field(eq=False)
    signer_serial: bytes | None = attrs.field(init=False, eq=False)
    signer_issuer: str | None = attrs.field(init=False, eq=False)
    digest_code: int | None = attrs.field(init=False, eq=False)
    signature_algorithm: int | None = attrs.field(init=False, eq=False)
    signature: bytes = attrs.field(init=False, eq=False)
    #: Start and end of the whole SIGNATURE element (tag, length, value) in the file.
    signature_span: tuple[int, int] = attrs.field(init=False, eq=False)
    _kind: FileKind = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        raw, get, keep = self.raw, self._spans.get, object.__setattr__
        signature = get(_H_SIGNATURE, _ABSENT)  # parsing makes sure there is one
        signature_end = signature + ((raw[signature - 2] << 8) | raw[signature - 1])
        keep(self, "signer_serial", _value(raw, get(_H_SERIAL_NUMBER, _ABSENT)))
        keep(self, "signer_issuer", _text_at(raw, get(_H_CA_NAME, _ABSENT)))
        keep(self, "digest_code", _byte_at(raw, get(_H_DIGEST_ALGORITHM, _ABSENT)))
        keep(self, "signature_algorithm", _byte_at(raw, get(_H_SIGNATURE_ALGORITHM, _ABSENT)))
        keep(self, "signature", raw[signature:signature_end])
        keep(self, "signature_span", (signature - 3, signature_end))
        keep(self, "_kind", _kind_of(raw, get(_H_FILENAME, _ABSENT)))

    @property
    def version(self) -> tuple[int, int]:
        return self.raw[3], self.raw[4]

    @property
    def header_length(self) -> int:
        return len(self.raw)

    @property
    def elements(self) -> tuple[Element, ...]:
        raw = self.raw
        first = (Element(HeaderTag.VERSION, raw[3:5]), Element(HeaderTag.HEADER_LENGTH, raw[8:10], offset=5))
        return first + _read_elements(raw, 10, len(raw), "header", in_header=True)

    @property
    def signer_name(self) -> str | None:
        return _text_at(self.raw, self._spans.get(_H_SIGNER_NAME, _ABSENT))

    @property
    def signature_modulus(self) -> int | None:
        return _byte_at(self.raw, self._spans.get(_H_SIGNATURE_MODULUS, _ABSENT))

    @property
    def signature_offset(self) -> int:
        return self._spans.get(_H_SIGNATURE, _ABSENT) - 3

    @property
    def filename(self) -> str | None:
        return _text_at(self.raw, self._spans.get(_H_FILENAME, _ABSENT))

    @property
    def timestamp(self) -> int | None:
        value = _value(self.raw, self._spans.get(_H_TIMESTAMP, _ABSENT))
        return None if value is None else int.from_bytes(value, "big")

    @property
    def signer_version(self) -> tuple[int, int] | None:
        start = self._spans.get(_H_SIGNER_VERSION, _ABSENT)
        return None if start == _ABSENT else (self.raw[start], self.raw[start + 1])

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

    def encode(self) -> bytes:
        return self.raw

    def __repr__(self) -> str:
        return (f"Header(version={self.version_text}, header_length={self.header_length}, "
                f"signer_name={self.signer_name!r}, filename={self.filename!r}, digest_code={self.digest_code})")


def _parse_header(data: bytes) -> Header:
    """The header at the start of ``data``, checked; ``TrustListFormatError`` naming the first problem.

    A header already read is found again by its bytes (``_HEADERS``). Only a
    header laid out as producers write it (the fast scan reads it) is kept;
    anything else is read the careful way every time it comes back, which
    names the offending byte or accepts what only looked unusual.
    """
    size = len(data)
    if size >= 10:
        # A header found again has passed every check below: its bytes are all in ``data``.
        header = _HEADERS.find(data, 0, (data[8] << 8) | data[9])
        if header is not None:
            return header
    if size < 10:
        raise TrustListFormatError(size, "a VERSION and a HEADERLENGTH element (10 bytes); the file is shorter")
    if data[0] != 1 or data[1] or data[2] != 2:  # VERSION, length 2
        raise TrustListFormatError(0, "a VERSION element (tag 1, length 2) first")
    if data[5] != 2 or data[6] or data[7] != 2:  # HEADERLENGTH, length 2
        raise TrustListFormatError(5, "a HEADERLENGTH element (tag 2, length 2) second")
    header_length = (data[8] << 8) | data[9]
    if header_length < 10 or header_length > size:
        raise TrustListFormatError(
            8, f"a HEADERLENGTH between 10 and the file's length {size}, found {header_length}"
        )
    spans = _header_spans(data, header_length)
    if spans is None:
        return _read_header(data, header_length, _checked_header_spans(data, header_length))
    header = _read_header(data, header_length, spans)
    _HEADERS.keep(data, 0, header_length, header)
    return header


def _read_header(data: bytes, header_length: int, spans: dict[int, int]) -> Header:
    """The header in ``data[:header_length]`` (its first ten bytes already checked), every rule applied."""
    get = spans.get
    signature = get(_SIGNATURE, _ABSENT)
    if signature == _ABSENT or not ((data[signature - 2] << 8) | data[signature - 1]):
        raise TrustListFormatError(10, f"a SIGNATURE element (tag 12) in the header of {header_length} bytes")
    digest = get(_DIGEST_ALGORITHM, _ABSENT)
    if digest == _ABSENT:
        raise TrustListFormatError(10, "a DIGESTALGORITHM element (tag 8) in the header")
    if data[digest - 2] or data[digest - 1] != 1:
        _check_size(data, digest, 1, "DIGESTALGORITHM")
    modulus_at = get(_SIGNATURE_MODULUS, _ABSENT)
    if modulus_at != _ABSENT:
        _check_size(data, modulus_at, 1, "SIGNATUREMODULUS")
        modulus = data[modulus_at]
        found = (data[signature - 2] << 8) | data[signature - 1]
        if modulus in SIGNATURE_SIZES and SIGNATURE_SIZES[modulus] != found:
            raise TrustListFormatError(
                signature - 3,
                f"a SIGNATURE of {SIGNATURE_SIZES[modulus]} bytes as SIGNATUREMODULUS {modulus} says, found {found}",
            )
    for tag, expected, name in _HEADER_SIZES:
        start = get(tag)
        if start is not None and ((data[start - 2] << 8) | data[start - 1]) != expected:
            _check_size(data, start, expected, name)
    return Header(data if header_length == len(data) else data[:header_length], spans)


def _checked_header_spans(data: bytes, header_length: int) -> dict[int, int]:
    """``_header_spans`` the careful way: the first problem raised, in file order."""
    spans = [_ABSENT] * _HEADER_SPANS
    spans[HeaderTag.VERSION], spans[HeaderTag.HEADER_LENGTH] = 3, 8
    others: dict[int, int] = {}
    duplicates: list[TrustListFormatError] = []
    _scan_header(data, 10, header_length, "header", spans, others, 0, duplicates)
    if duplicates:
        raise duplicates[0]
    found = {tag: start for tag, start in enumerate(spans) if start != _ABSENT}
    found.update((tag, element + 3) for tag, element in others.items())
    return found


@attrs.frozen(repr=False)
class Record:
    """One certificate entry of a CTL or ITL (docs/trust-lists.md), fields decoded when read.

    Every field but ``length`` is optional: producers omit DNSNAME and
    IPADDRESS, eToken records have no SIGNATURE, a record of a cluster set back
    to non-secure mode has no certificate at all. ``raw`` is the record's
    bytes (RECORDLENGTH first), ``offset`` where it starts in its file. Make
    one with ``Record.from_elements`` or by parsing a file; either checks the
    bounds and sizes the fields rely on.

    A record read from a file is shared by every later file holding the same
    bytes at the same place (``_RECORDS``), and finding each file's signer asks
    it the same questions again: ``function`` and ``serial`` (asked of every
    record) are decoded when the record is made and are plain attributes;
    ``issuer`` (asked of the signer's records only) is decoded when first read
    and kept in a slot only this module writes.
    """

    raw: bytes
    _spans: dict[int, int] = attrs.field(eq=False)
    offset: int = attrs.field(default=0, eq=False)
    function: int | None = attrs.field(init=False, eq=False)
    serial: bytes | None = attrs.field(init=False, eq=False)
    _issuer: str | None | bool = attrs.field(default=_UNREAD, init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        raw, get, keep = self.raw, self._spans.get, object.__setattr__
        function = get(_R_FUNCTION, _ABSENT)  # two bytes: checked before the record is made
        keep(self, "function", None if function == _ABSENT else (raw[function] << 8) | raw[function + 1])
        keep(self, "serial", _value(raw, get(_R_SERIAL_NUMBER, _ABSENT)))

    @property
    def issuer(self) -> str | None:
        issuer = self._issuer
        if issuer is _UNREAD:
            issuer = _text_at(self.raw, self._spans.get(_R_ISSUER_NAME, _ABSENT))
            object.__setattr__(self, "_issuer", issuer)  # from immutable bytes: every thread decodes the same
        return issuer  # type: ignore[return-value]

    @classmethod
    def from_elements(cls, elements: Iterable[Element], offset: int = 0) -> Record:
        """A record from its elements (RECORDLENGTH excluded: it is computed and put first)."""
        body = b"".join(element.encode() for element in elements if element.tag != RecordTag.RECORD_LENGTH)
        length = 5 + len(body)
        if length > 0xFFFF:
            raise UsageError(f"a record of {length} bytes does not fit RECORDLENGTH's 16 bits")
        raw = b"\x01\x00\x02" + length.to_bytes(2, "big") + body
        return cls._decode(raw, 0, length, None, offset)

    @classmethod
    def from_bytes(cls, raw: bytes, offset: int = 0) -> Record:
        """A record read on its own (RECORDLENGTH first, equal to ``len(raw)``); ``TrustListFormatError`` if not."""
        raw = bytes(raw)
        if len(raw) < 5 or raw[:3] != b"\x01\x00\x02" or ((raw[3] << 8) | raw[4]) != len(raw):
            raise TrustListFormatError(0, f"a record starting with a RECORDLENGTH (tag 1, length 2) of {len(raw)}")
        return cls._decode(raw, 0, len(raw), None, offset)

    @classmethod
    def _decode(cls, data: bytes, start: int, length: int, number: int | None, offset: int) -> Record:
        """The record in ``data[start : start + length]``, its RECORDLENGTH already checked."""
        raw = data[start : start + length] if start or length != len(data) else data
        spans = _record_spans(raw)
        if spans is None:
            spans = _scan_record(data, start + 5, start + length, "record" if number is None else f"record #{number}")
        function = spans.get(_FUNCTION)
        if function is not None and ((raw[function - 2] << 8) | raw[function - 1]) != 2:
            _check_size(raw, function, 2, "FUNCTION", start)
        if _HASH_ALGORITHM in spans:
            _check_size(raw, spans[_HASH_ALGORITHM], 1, "HASHALGORITHM", start)
        return cls(raw, spans, offset)

    @property
    def length(self) -> int:
        return len(self.raw)

    @property
    def elements(self) -> tuple[Element, ...]:
        """RECORDLENGTH, then the record's elements in file order, offsets in the file."""
        raw = self.raw
        first = Element(RecordTag.RECORD_LENGTH, raw[3:5], offset=self.offset)
        return (first, *_read_elements(raw, 5, len(raw), "record", in_header=False, base=self.offset))

    @property
    def dns_name(self) -> str | None:
        return _text_at(self.raw, self._spans.get(_R_DNS_NAME, _ABSENT))

    @property
    def subject(self) -> str | None:
        return _text_at(self.raw, self._spans.get(_R_SUBJECT_NAME, _ABSENT))

    @property
    def public_key(self) -> bytes | None:
        return _value(self.raw, self._spans.get(_R_PUBLIC_KEY, _ABSENT))

    @property
    def signature(self) -> bytes | None:
        return _value(self.raw, self._spans.get(_R_SIGNATURE, _ABSENT))

    @property
    def certificate(self) -> bytes | None:
        return _value(self.raw, self._spans.get(_R_CERTIFICATE, _ABSENT))

    @property
    def ip_address(self) -> bytes | None:
        return _value(self.raw, self._spans.get(_R_IP_ADDRESS, _ABSENT))

    @property
    def certificate_hash(self) -> bytes | None:
        return _value(self.raw, self._spans.get(_R_CERT_HASH, _ABSENT))

    @property
    def hash_algorithm(self) -> int | None:
        return _byte_at(self.raw, self._spans.get(_R_HASH_ALGORITHM, _ABSENT))

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
        certificate = self.certificate
        return None if certificate is None else hashlib.sha1(certificate).hexdigest().upper()

    def encode(self) -> bytes:
        return self.raw

    def __repr__(self) -> str:
        return (f"Record(offset={self.offset}, length={self.length}, function={self.function}, "
                f"subject={self.subject!r}, serial={self.serial.hex() if self.serial else None})")


@attrs.frozen
class TrustList:
    """A parsed CTL, ITL or ``.sgn`` file: header, records (or signed payload), raw bytes.

    Make one with ``TrustList.from_bytes``; ``encode()`` joins the header's and
    the records' bytes and gives the original bytes back for every file that
    parses. Header and records keep their own bytes and decode a field when it
    is read, so a parsed list is cheap to make and to hold.
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
        if type(data) is not bytes:
            data = bytes(data)
        header = _parse_header(data)
        if kind is None:
            kind = header._kind
        if kind is _SGN:
            return cls(data, header, (), kind, data[header.header_length :])
        return cls(data, header, _parse_records(data, len(header.raw)), kind)

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
        view = memoryview(self.data)
        return b"".join((view[:start], view[end:]))

    def records_with_role(self, role: int) -> tuple[tuple[int, Record], ...]:
        return tuple((index, record) for index, record in enumerate(self.records) if record.function == role)

    def encode(self) -> bytes:
        """Re-encode from the header and records (equals ``data`` for any parsed file)."""
        if self.kind is FileKind.SGN:
            return self.header.encode() + (self.payload or b"")
        return b"".join([self.header.encode(), *(record.encode() for record in self.records)])


def _parse_records(data: bytes, start: int) -> tuple[Record, ...]:
    """The records after the header, each checked as ``Record._decode`` checks it.

    A record already read at the same place is found again by its bytes
    (``_RECORDS``): it has passed every check, RECORDLENGTH's included, and
    its bytes are all in ``data``. A new one is read by ``_read_record``.
    """
    records: list[Record] = []
    append = records.append
    find = _RECORDS.find
    size = len(data)
    position = start
    while position < size:
        if size - position >= 5:
            end = position + ((data[position + 3] << 8) | data[position + 4])
            record = find(data, position, end)
            if record is not None:
                append(record)
                position = end
                continue
        record = _read_record(data, position, len(records) + 1)
        append(record)
        position += len(record.raw)
    return tuple(records)


def _read_record(data: bytes, start: int, number: int) -> Record:
    """Record #``number``, starting at ``data[start]``, read for the first time.

    A record as producers write it (the fast scan reads it, FUNCTION and
    HASHALGORITHM have their sizes) is kept in ``_RECORDS``; anything else goes
    through ``Record._decode``, which names the offending byte in its file or
    accepts what only looked unusual, and is read that way every time it comes back.
    """
    size = len(data)
    if size - start < 5 or data[start] != 1 or data[start + 1] or data[start + 2] != 2:
        _refuse_record_start(data, start, number)
    length = (data[start + 3] << 8) | data[start + 4]
    end = start + length
    if length < 5 or end > size:
        raise TrustListFormatError(
            start + 3, f"a RECORDLENGTH for record #{number} between 5 and the {size - start} bytes left, found {length}"
        )
    raw = data[start:end]
    spans = _record_spans(raw)
    if spans is not None:
        for tag, expected in ((_FUNCTION, 2), (_HASH_ALGORITHM, 1)):
            at = spans.get(tag)
            if at is not None and ((raw[at - 2] << 8) | raw[at - 1]) != expected:
                break
        else:
            record = Record(raw, spans, start)
            _RECORDS.keep(data, start, end, record)
            return record
    return Record._decode(data, start, length, number, start)


#: How many of a piece's last bytes key ``_Remembered`` (with the piece's start and end).
_KEY_TAIL = 32
#: How many pieces ``_Remembered`` keeps under one key.
_PER_KEY = 2
_Piece = TypeVar("_Piece", "Header", "Record")


class _Remembered(Generic[_Piece]):
    """Headers or records already read, found again by where they sit in their file and their bytes.

    A phone, and a fleet of them, reads the same files again and again: every
    phone of a cluster gets the same CTL and ITL, every boot reads them again,
    and a cluster's CTL and ITL and the next ITL after a change repeat its
    nodes' records. Headers and records are immutable, so the same bytes at the
    same place always read as the same object, and reading them again costs a
    lookup instead of a scan. The place is part of the key because a record
    names its offset in errors and ``elements``.

    The key is the piece's start, its end and its last ``_KEY_TAIL`` bytes (a
    header's FILENAME, TIMESTAMP and padding; the end of a record's
    certificate), and a hit is confirmed against every byte of the piece
    (``bytes.startswith`` at its start: a compare, no copy). So a piece is
    never taken for another that only shares its key, a header whose
    SIGNATURE differs is read afresh, and the lookup costs neither a copy of
    the piece nor a hash over all of it: measured, about a fifth less per
    record than an ``lru_cache`` keyed by the record's whole bytes.
    Only the layout is kept, never whether a file verifies: ``phone.wire.signing``
    checks the signature on every call.

    Pieces that share a key are kept side by side, the newest first, at most
    ``_PER_KEY`` of them: the same certificate record as SAST in one file and
    as CCM+TFTP in another at the same place ends alike, and a phone reads
    both files at every boot. At most ``count`` keys are kept, so at most
    ``count * _PER_KEY`` pieces of at most ``largest`` bytes; when full, the
    key kept longest ago goes (a phone or a fleet meets far fewer pieces).
    ``cache_clear`` forgets them all (the benchmark's "first sight").
    """

    __slots__ = ("_entries", "count", "largest")

    def __init__(self, count: int, largest: int) -> None:
        self._entries: dict[tuple[int, int, bytes], tuple[_Piece, ...]] = {}
        self.count, self.largest = count, largest

    def find(self, data: bytes, start: int, end: int) -> _Piece | None:
        """What was read from exactly the bytes ``data[start:end]`` at ``start``, else None."""
        for piece in self._entries.get((start, end, data[end - _KEY_TAIL : end]), ()):
            if data.startswith(piece.raw, start):
                return piece
        return None

    def keep(self, data: bytes, start: int, end: int, piece: _Piece) -> None:
        """Remember ``piece``, read from ``data[start:end]``, unless it is larger than ``largest``."""
        if end - start > self.largest:
            return
        entries = self._entries
        key = (start, end, data[end - _KEY_TAIL : end])
        others = entries.pop(key, ())  # kept again last: the newest key
        if not others and len(entries) >= self.count:
            entries.pop(next(iter(entries), None), None)  # the oldest; tolerant of another thread's eviction
        entries[key] = (piece, *others[: _PER_KEY - 1])

    def __len__(self) -> int:
        """How many pieces are kept."""
        return sum(len(pieces) for pieces in list(self._entries.values()))

    def cache_clear(self) -> None:
        self._entries.clear()


#: A real header is 0.3-1 KB (names, a signature of at most 512 bytes), a real
#: record 1-3 KB: at most 1,024 of each, 4 MiB of headers and 8 MiB of records, are kept.
_HEADERS: _Remembered[Header] = _Remembered(count=512, largest=4 * 1024)
_RECORDS: _Remembered[Record] = _Remembered(count=512, largest=8 * 1024)


def _refuse_record_start(data: bytes, position: int, number: int) -> NoReturn:
    if len(data) - position < 5:
        raise TrustListFormatError(position, f"record #{number} starting with RECORDLENGTH (5 bytes); {len(data) - position} left")
    raise TrustListFormatError(position, f"record #{number} starting with RECORDLENGTH (tag 1, length 2)")


def _kind_of(raw: bytes, filename: int) -> FileKind:
    """The kind a header's FILENAME (value at ``filename``) names; a version 1.0 header without one is a ``.sgn``."""
    # Bytes, not text: only ASCII letters decide, and no other character lower-cases to one of them.
    value = _value(raw, filename)
    name = b"" if value is None else value.split(b"\x00", 1)[0].lower()
    if name.endswith(b".sgn"):
        return FileKind.SGN
    if name.startswith(b"ctl"):
        return FileKind.CTL
    if name.startswith(b"itl"):
        return FileKind.ITL
    if not name and raw[3] == 1 and raw[4] == 0:  # VERSION 1.0
        return FileKind.SGN
    return FileKind.TLV
