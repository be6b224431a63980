"""TVS messages: the wire codec of the Trust Verification Service (docs/tvs.md).

A frame is a 10-byte header (protocol id 0x57, version 1, message type, flags,
request id, payload length) followed by ``length`` bytes of elements, each
``tag`` (1 byte), ``length`` (2 bytes, big-endian), ``value``. Both directions
use the same framing. This module only turns bytes into ``TvsMessage`` records
and back; it never touches sockets (the client and server live in
``phone.device.tvs`` and ``phone.lab.servers.tvs``).

Rules the decoder enforces (each failure is a ``TvsFrameError`` naming the
byte offset and what was expected):
- the header length equals the payload that follows, no more, no less;
- every element fits in the bytes that remain;
- known elements have the sizes docs/tvs.md gives them (STATUS 1 byte, TTL 4);
- a known element appears once, except CERTIFICATE (CUCM's decoder prints
  "Number of Certs", so a reply may carry several);
- unknown element tags are skipped by their length, never fatal;
- the payload never exceeds ``max_payload`` (a sane bound far below what the
  16-bit length allows: a request holds at most one certificate).

``encode`` refuses (``UnencodableTvsMessage``) what a decoder would refuse or what the
length fields cannot carry, so that a request built from a hostile file (a 25,000-byte
signer name) fails as a project error, not an overflow.
"""

from __future__ import annotations

import enum
import struct

import attrs

from phone.errors import TvsProtocolError, UsageError

PROTOCOL_ID = 0x57
PROTOCOL_VERSION = 1
HEADER_SIZE = 10
#: Largest payload the 16-bit length field can announce.
LENGTH_LIMIT = 0xFFFF
#: Default bound on a payload we accept: a 4096-bit RSA certificate with long
#: names is under 2 KB, the real reply in Cisco TAC 213407 is 1470 bytes.
MAX_PAYLOAD = 16 * 1024
#: CUCM's TTL in every observed answer (docs/tvs.md).
DEFAULT_TTL = 86400

_HEADER = struct.Struct(">BBBBIH")
_ELEMENT = struct.Struct(">BH")
#: First byte of the DEVICE_NAME value in every known request (docs/tvs.md).
DEVICE_NAME_KIND = 0x01


class MessageType(enum.IntEnum):
    """Message types of docs/tvs.md."""

    CERT_VERIFICATION_REQ = 1
    CERT_VERIFICATION_RES = 2
    QUERY_CERT_REQ = 3
    QUERY_CERT_RES = 4


#: The response type that answers each request type.
RESPONSE_TO = {
    MessageType.CERT_VERIFICATION_REQ: MessageType.CERT_VERIFICATION_RES,
    MessageType.QUERY_CERT_REQ: MessageType.QUERY_CERT_RES,
}


class Tag(enum.IntEnum):
    """Element tags of docs/tvs.md (ISSUER and SERIAL are inferred there: OPEN)."""

    DEVICE_NAME = 1
    CERTIFICATE = 2
    SUBJECT = 3
    ISSUER = 4
    SERIAL = 5
    STATUS = 7
    ROLES = 8
    TTL = 9


class Status(enum.IntEnum):
    """STATUS element values (docs/tvs.md)."""

    TRUSTED = 0
    NOT_TRUSTED = 1


#: Elements a well-formed message of each type must carry (docs/tvs.md "in"
#: column; DEVICE_NAME is sent by every phone but a server need not insist).
REQUIRED = {
    MessageType.CERT_VERIFICATION_REQ: (Tag.CERTIFICATE,),
    MessageType.CERT_VERIFICATION_RES: (Tag.STATUS,),
    MessageType.QUERY_CERT_REQ: (Tag.SUBJECT, Tag.ISSUER, Tag.SERIAL),
    MessageType.QUERY_CERT_RES: (Tag.STATUS,),
}

#: Order in which ``encode`` writes elements: the order of the real exchange
#: (request: 1, 3, 4, 5; reply: 7, 2, 8, 9) and of usecallmanager's tools.
_ENCODE_ORDER = (
    Tag.DEVICE_NAME,
    Tag.STATUS,
    Tag.CERTIFICATE,
    Tag.SUBJECT,
    Tag.ISSUER,
    Tag.SERIAL,
    Tag.ROLES,
    Tag.TTL,
)


class UnencodableTvsMessage(UsageError):
    """A message ``encode`` refuses: a value no TVS peer would accept.

    Raised before any byte is sent: an element over the 16-bit length, a request whose
    payload is over ``MAX_PAYLOAD`` (what every decoder here, like CUCM's, refuses to
    read), text with a NUL or a device name that is not ASCII. A phone that meets one
    (an ITL whose signer name cannot be sent) rejects the file instead of asking."""


class TvsFrameError(TvsProtocolError):
    """A TVS frame that does not follow docs/tvs.md, with the offset where reading stopped."""

    def __init__(self, offset: int, expected: str) -> None:
        self.offset = offset
        self.expected = expected
        super().__init__(f"TVS frame at byte {offset}: {expected}")


#: Plain-int lookups for the decoders: ``x in Enum.__members__.values()`` walks the members and
#: compares each, on every header and element read.
_MESSAGE_TYPES: dict[int, MessageType] = {int(kind): kind for kind in MessageType}
_TAGS: dict[int, Tag] = {int(tag): tag for tag in Tag}


@attrs.frozen
class TvsHeader:
    """The 10-byte frame header (docs/tvs.md)."""

    type: int
    request_id: int
    length: int
    flags: int = 0

    @classmethod
    def decode(cls, data: bytes, max_payload: int = MAX_PAYLOAD) -> TvsHeader:
        """Read a header from the first 10 bytes of ``data``.

        Stream readers call this first so that a huge announced length is
        refused before any payload is read.
        """
        if len(data) < HEADER_SIZE:
            raise TvsFrameError(len(data), f"a {HEADER_SIZE}-byte header, got {len(data)} bytes")
        protocol, version, kind, flags, request_id, length = _HEADER.unpack_from(data)
        if protocol != PROTOCOL_ID:
            raise TvsFrameError(0, f"protocol id 0x{PROTOCOL_ID:02x}, got 0x{protocol:02x}")
        if version != PROTOCOL_VERSION:
            raise TvsFrameError(1, f"protocol version {PROTOCOL_VERSION}, got {version}")
        message_type = _MESSAGE_TYPES.get(kind)
        if message_type is None:
            raise TvsFrameError(2, f"message type 1 to 4, got {kind}")
        if length > max_payload:
            raise TvsFrameError(8, f"payload of at most {max_payload} bytes, header announces {length}")
        return cls(type=message_type, request_id=request_id, length=length, flags=flags)

    def encode(self) -> bytes:
        return _HEADER.pack(PROTOCOL_ID, PROTOCOL_VERSION, self.type, self.flags, self.request_id, self.length)


def _text(value: bytes, offset: int, name: str) -> str:
    """A NUL-terminated text value (docs/tvs.md), exactly one NUL, at the end."""
    if not value.endswith(b"\0"):
        raise TvsFrameError(offset, f"{name} text ending in NUL")
    body = value[:-1]
    if b"\0" in body:
        raise TvsFrameError(offset + body.index(b"\0"), f"{name} text without an embedded NUL")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TvsFrameError(offset + error.start, f"{name} text in UTF-8") from None


def _device_name(value: bytes, offset: int) -> str:
    if not value or value[0] != DEVICE_NAME_KIND:
        raise TvsFrameError(offset, f"DEVICE_NAME starting with byte 0x{DEVICE_NAME_KIND:02x}")
    try:
        return value[1:].decode("ascii")
    except UnicodeDecodeError as error:
        raise TvsFrameError(offset + 1 + error.start, "DEVICE_NAME in ASCII") from None


def _fixed(value: bytes, offset: int, name: str, size: int) -> bytes:
    if len(value) != size:
        raise TvsFrameError(offset - 2, f"{name} of length {size}, got {len(value)}")
    return value


@attrs.frozen
class TvsMessage:
    """One TVS message, request or response (docs/tvs.md).

    Absent elements are ``None`` (``certificates`` is empty). ``flags`` is
    kept as read (a real CUCM reply carried 0xF7) and ignored otherwise.
    """

    type: MessageType = attrs.field(converter=MessageType)
    request_id: int = 0
    device_name: str | None = None
    certificates: tuple[bytes, ...] = attrs.field(default=(), converter=tuple)
    subject: str | None = None
    issuer: str | None = None
    serial: bytes | None = None
    status: int | None = None
    roles: tuple[int, ...] | None = attrs.field(
        default=None, converter=lambda roles: None if roles is None else tuple(roles))
    ttl: int | None = None
    flags: int = 0

    # -- named constructors ------------------------------------------------
    @classmethod
    def query_request(cls, request_id: int, device_name: str, subject: str, issuer: str,
                      serial: bytes) -> TvsMessage:
        """QUERY_CERT_REQ: the phone knows only subject, issuer and serial (docs/tvs.md)."""
        return cls(MessageType.QUERY_CERT_REQ, request_id, device_name=device_name,
                   subject=subject, issuer=issuer, serial=serial)

    @classmethod
    def verification_request(cls, request_id: int, device_name: str, certificate: bytes) -> TvsMessage:
        """CERT_VERIFICATION_REQ: the phone holds the whole certificate (docs/tvs.md)."""
        return cls(MessageType.CERT_VERIFICATION_REQ, request_id, device_name=device_name,
                   certificates=(certificate,))

    @classmethod
    def answer(cls, request: TvsMessage, status: int, *, certificate: bytes | None = None,
               roles: tuple[int, ...] | None = None, ttl: int | None = None) -> TvsMessage:
        """The response to ``request``, echoing its request id (docs/tvs.md)."""
        try:
            kind = RESPONSE_TO[request.type]
        except KeyError:
            raise UsageError(f"message type {request.type} is not a request") from None
        return cls(kind, request.request_id, status=status,
                   certificates=() if certificate is None else (certificate,), roles=roles, ttl=ttl)

    @property
    def certificate(self) -> bytes | None:
        """The first CERTIFICATE element, or None."""
        return self.certificates[0] if self.certificates else None

    @property
    def is_request(self) -> bool:
        return self.type in RESPONSE_TO

    def missing(self) -> tuple[Tag, ...]:
        """Elements that REQUIRED lists for this type and that are absent."""
        present = {
            Tag.CERTIFICATE: bool(self.certificates), Tag.SUBJECT: self.subject is not None,
            Tag.ISSUER: self.issuer is not None, Tag.SERIAL: self.serial is not None,
            Tag.STATUS: self.status is not None,
        }
        return tuple(tag for tag in REQUIRED[self.type] if not present[tag])

    # -- bytes -------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes, max_payload: int = MAX_PAYLOAD) -> TvsMessage:
        """Decode exactly one frame; ``data`` must hold nothing else."""
        data = bytes(data)
        header = TvsHeader.decode(data, max_payload)
        actual = len(data) - HEADER_SIZE
        if actual < header.length:
            raise TvsFrameError(len(data), f"a payload of {header.length} bytes as the header says, "
                                           f"got {actual}")
        if actual > header.length:
            raise TvsFrameError(HEADER_SIZE + header.length,
                                f"the end of the frame after the {header.length}-byte payload the header "
                                f"announces, {actual - header.length} more bytes follow")
        fields: dict[str, object] = {}
        certificates: list[bytes] = []
        seen: set[int] = set()
        offset = HEADER_SIZE
        end = len(data)
        while offset < end:
            if end - offset < _ELEMENT.size:
                raise TvsFrameError(offset, f"a 3-byte element header, {end - offset} bytes remain")
            tag, length = _ELEMENT.unpack_from(data, offset)
            start = offset + _ELEMENT.size
            if length > end - start:
                raise TvsFrameError(offset + 1, f"element {tag} of {length} bytes within the "
                                                f"{end - start} bytes that remain")
            value = data[start:start + length]
            known = _TAGS.get(tag)
            if known is not None:
                if tag in seen and known is not Tag.CERTIFICATE:
                    raise TvsFrameError(offset, f"element {known.name} only once")
                seen.add(tag)
                cls._read_element(known, value, start, fields, certificates)
            offset = start + length
        return cls(header.type, header.request_id, certificates=certificates, flags=header.flags,
                   **fields)  # type: ignore[arg-type]

    @staticmethod
    def _read_element(tag: Tag, value: bytes, offset: int, fields: dict[str, object],
                      certificates: list[bytes]) -> None:
        if tag is Tag.DEVICE_NAME:
            fields["device_name"] = _device_name(value, offset)
        elif tag is Tag.CERTIFICATE:
            if not value:
                raise TvsFrameError(offset - 2, "a non-empty CERTIFICATE")
            certificates.append(value)
        elif tag is Tag.SUBJECT:
            fields["subject"] = _text(value, offset, "SUBJECT")
        elif tag is Tag.ISSUER:
            fields["issuer"] = _text(value, offset, "ISSUER")
        elif tag is Tag.SERIAL:
            if not value:
                raise TvsFrameError(offset - 2, "a non-empty SERIAL")
            fields["serial"] = value
        elif tag is Tag.STATUS:
            fields["status"] = _fixed(value, offset, "STATUS", 1)[0]
        elif tag is Tag.ROLES:
            fields["roles"] = tuple(value)
        elif tag is Tag.TTL:
            fields["ttl"] = int.from_bytes(_fixed(value, offset, "TTL", 4), "big")

    def _values(self) -> dict[Tag, list[bytes]]:
        def text(value: str) -> bytes:
            encoded = value.encode("utf-8")
            if b"\0" in encoded:
                raise UnencodableTvsMessage("TVS text elements cannot contain NUL (docs/tvs.md)")
            return encoded + b"\0"

        values: dict[Tag, list[bytes]] = {Tag.CERTIFICATE: list(self.certificates)}
        if self.device_name is not None:
            try:
                values[Tag.DEVICE_NAME] = [bytes([DEVICE_NAME_KIND]) + self.device_name.encode("ascii")]
            except UnicodeEncodeError:
                raise UnencodableTvsMessage(
                    f"device name {self.device_name[:40]!r} is not ASCII (docs/tvs.md)") from None
        if self.subject is not None:
            values[Tag.SUBJECT] = [text(self.subject)]
        if self.issuer is not None:
            values[Tag.ISSUER] = [text(self.issuer)]
        if self.serial is not None:
            values[Tag.SERIAL] = [bytes(self.serial)]
        if self.status is not None:
            if not 0 <= self.status <= 0xFF:
                raise UsageError(f"STATUS {self.status} does not fit in one byte (docs/tvs.md)")
            values[Tag.STATUS] = [bytes([self.status])]
        if self.roles is not None:
            bad = [role for role in self.roles if not 0 <= role <= 0xFF]
            if bad:
                raise UsageError(f"role {bad[0]} does not fit in one byte (docs/tvs.md ROLES)")
            values[Tag.ROLES] = [bytes(self.roles)]
        if self.ttl is not None:
            if not 0 <= self.ttl <= 0xFFFFFFFF:
                raise UsageError(f"TTL {self.ttl} does not fit in 32 bits (docs/tvs.md)")
            values[Tag.TTL] = [self.ttl.to_bytes(4, "big")]
        return values

    def encode(self) -> bytes:
        """The frame: header then elements in the order of the real exchange."""
        values = self._values()
        parts = []
        for tag in _ENCODE_ORDER:
            for value in values.get(tag, ()):
                if len(value) > LENGTH_LIMIT:
                    raise UnencodableTvsMessage(
                        f"element {tag.name} of {len(value)} bytes exceeds the 16-bit length")
                parts.append(_ELEMENT.pack(tag, len(value)) + value)
        payload = b"".join(parts)
        if len(payload) > LENGTH_LIMIT:
            raise UnencodableTvsMessage(f"TVS payload of {len(payload)} bytes exceeds the 16-bit length")
        if self.is_request and len(payload) > MAX_PAYLOAD:
            raise UnencodableTvsMessage(
                f"TVS request of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte bound a TVS server reads")
        if not 0 <= self.request_id <= 0xFFFFFFFF or not 0 <= self.flags <= 0xFF:
            raise UsageError("request id must fit in 32 bits and flags in 8 bits (docs/tvs.md)")
        header = TvsHeader(self.type, self.request_id, len(payload), self.flags)
        return header.encode() + payload
