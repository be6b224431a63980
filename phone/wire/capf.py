"""CAPF messages: the wire codec of the Certificate Authority Proxy Function.

CUCM's CAPF issues Locally Significant Certificates (LSC) to phones over TLS
on TCP 3804 (Cisco "Security Guide for Cisco Unified Communications Manager",
chapter "Certificate Authority Proxy Function"; port in "Cisco Unified
Communications Manager TCP and UDP Port Usage"). Cisco never published the
protocol; the framing below is what a capture of CUCM shows (Jabber4Linux's
"CAPF Protocol Specification") and what the usecallmanager.nz CAPF server and
client speak. docs/capf.md has the whole exchange.

A frame is an 8-byte header then ``length`` bytes of elements:

======  ====  =====================================================
offset  size  field
======  ====  =====================================================
0       1     protocol id ``0x55``
1       1     command
2       4     session id: chosen by the server, echoed by the phone
6       2     body length, header excluded
======  ====  =====================================================

Elements are ``tag`` (1 byte), ``length`` (2 bytes, big-endian), ``value``, in
any order, without padding. This module turns bytes into ``CapfMessage``
records and back; it never touches sockets. Rules the decoder enforces (each
failure is a ``CapfFrameError`` naming the byte offset and what was expected):
the announced length is the body that follows, every element fits, known
elements have their sizes, a known element appears once, unknown tags are
skipped by their length, and the body never exceeds ``max_body``.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable

import attrs

from phone.errors import RemoteError, UsageError

PROTOCOL_ID = 0x55
HEADER_SIZE = 8
LENGTH_LIMIT = 0xFFFF
#: Bound on a body we accept: an LSC of a 4096-bit key with long names is
#: under 2.5 KB; a SUDI block adds one more certificate.
MAX_BODY = 16 * 1024
#: CAPF port (Cisco "TCP and UDP Port Usage": 3804).
DEFAULT_PORT = 3804

_HEADER = struct.Struct(">BBIH")
_ELEMENT = struct.Struct(">BH")


class CapfProtocolError(RemoteError):
    """A CAPF frame or exchange that does not follow the protocol (a peer's fault)."""


class CapfFrameError(CapfProtocolError):
    """A CAPF frame that cannot be read, with the offset where reading stopped."""

    def __init__(self, offset: int, expected: str) -> None:
        self.offset = offset
        self.expected = expected
        super().__init__(f"CAPF frame at byte {offset}: {expected}")


class Command(enum.IntEnum):
    """CAPF commands (S = CAPF server, P = phone)."""

    AUTH_REQUEST = 1                  # S: VERSION (capfd adds AUTH_TYPE 0)
    AUTH_RESPONSE = 2                 # P: REASON, VERSION, DEVICE_NAME, credentials
    KEY_GENERATE_REQUEST = 3          # S: KEY_SIZE (+ KEY_TYPE, CURVE)
    KEY_GENERATE_RESPONSE = 4         # P: PUBLIC_KEY (absent: key generation failed)
    ENCRYPT_RESPONSE = 5
    ENCRYPT_REQUEST = 6
    DECRYPT_REQUEST = 7
    DECRYPT_RESPONSE = 8
    STORE_CERTIFICATE_REQUEST = 9     # S: CERTIFICATE_TYPE 1 + CERTIFICATE
    STORE_CERTIFICATE_RESPONSE = 10   # P: REASON 1 stored / 7 failed
    FETCH_CERTIFICATE_REQUEST = 11    # S: empty
    FETCH_CERTIFICATE_RESPONSE = 12   # P: REASON 1 + CERTIFICATE, or 7
    DELETE_CERTIFICATE_REQUEST = 13   # S: empty
    DELETE_CERTIFICATE_RESPONSE = 14  # P: REASON 1 deleted / 7 none
    END_SESSION = 15                  # S: REASON
    RETRY_LATER = 16
    REQUEST_IN_PROGRESS = 17          # P: empty, while the key is generated
    STATUS_REQUEST = 18
    STATUS_RESPONSE = 19
    ABORT_REQUEST = 20
    ABORT_RESPONSE = 21
    SIGN_CERTIFICATE_REQUEST = 22
    SIGN_CERTIFICATE_RESPONSE = 23


class Tag(enum.IntEnum):
    """CAPF element tags."""

    REASON = 1
    REASON_INFO = 2
    CERTIFICATE_TYPE = 3
    CERTIFICATE = 4
    CERTIFICATE_ID = 5
    SIGNED_DATA = 6
    VERSION = 7
    AUTH_TYPE = 8
    PUBLIC_KEY = 9
    KEY_SIZE = 10
    PASSWORD = 11
    RETRY_DELAY = 12
    DEVICE_NAME = 13
    SUDI_DATA = 16
    KEY_TYPE = 17
    CURVE = 18
    DIGEST_TYPE = 19
    SHA2_SIGNED_DATA = 20


class Reason(enum.IntEnum):
    """REASON values seen from CUCM and capfd; the others are unknown and kept as numbers."""

    NOTHING_PENDING = 0   # capfd: nothing to do; ends a fetch
    OK = 1                # proceed / success
    FAILED = 7            # capfd: any failure; CUCM to Jabber: certificate already issued
    UNKNOWN_DEVICE = 9    # no such phone


class AuthType(enum.IntEnum):
    """AUTH_TYPE values (capfd sends 0 in its AUTH_REQUEST)."""

    NONE = 0
    PASSWORD = 1
    NO_PASSWORD = 2
    LSC = 3
    MIC = 4


class CertificateType(enum.IntEnum):
    LSC = 1
    MIC = 2


class KeyType(enum.IntEnum):
    RSA = 0
    EC = 1


class Curve(enum.IntEnum):
    """CURVE values and the curve each names."""

    P256 = 0
    P384 = 1
    P521 = 2

    @property
    def bits(self) -> int:
        return {Curve.P256: 256, Curve.P384: 384, Curve.P521: 521}[self]


class DigestCode(enum.IntEnum):
    """Digest codes of DIGEST_TYPE and SHA2_SIGNED_DATA."""

    SHA1 = 1
    SHA256 = 2
    SHA512 = 3


#: Fixed sizes of the elements that have one.
_FIXED_SIZES = {
    Tag.REASON: 1, Tag.CERTIFICATE_TYPE: 1, Tag.VERSION: 1, Tag.AUTH_TYPE: 1, Tag.KEY_SIZE: 2,
    Tag.KEY_TYPE: 1, Tag.CURVE: 1, Tag.DIGEST_TYPE: 1, Tag.RETRY_DELAY: 2,
}
#: Elements whose value is NUL-terminated ASCII text.
_TEXT_TAGS = (Tag.DEVICE_NAME, Tag.PASSWORD, Tag.REASON_INFO)
#: The order ``encode`` writes elements in: REASON first, as capfd and CUCM do.
_ENCODE_ORDER = (
    Tag.REASON, Tag.REASON_INFO, Tag.VERSION, Tag.AUTH_TYPE, Tag.DEVICE_NAME, Tag.PASSWORD,
    Tag.KEY_SIZE, Tag.KEY_TYPE, Tag.CURVE, Tag.CERTIFICATE_TYPE, Tag.CERTIFICATE, Tag.CERTIFICATE_ID,
    Tag.SIGNED_DATA, Tag.SHA2_SIGNED_DATA, Tag.SUDI_DATA, Tag.PUBLIC_KEY, Tag.DIGEST_TYPE, Tag.RETRY_DELAY,
)


@attrs.frozen
class CapfHeader:
    """The 8-byte frame header."""

    command: int
    session_id: int
    length: int

    @classmethod
    def decode(cls, data: bytes, max_body: int = MAX_BODY) -> CapfHeader:
        """Read a header from the first 8 bytes of ``data``.

        Stream readers call this first, so that a huge announced length is
        refused before any body is read.
        """
        if len(data) < HEADER_SIZE:
            raise CapfFrameError(len(data), f"an {HEADER_SIZE}-byte header, got {len(data)} bytes")
        protocol, command, session_id, length = _HEADER.unpack_from(data)
        if protocol != PROTOCOL_ID:
            raise CapfFrameError(0, f"protocol id 0x{PROTOCOL_ID:02x}, got 0x{protocol:02x}")
        if command not in Command.__members__.values():
            raise CapfFrameError(1, f"a command from 1 to {max(Command)}, got {command}")
        if length > max_body:
            raise CapfFrameError(6, f"a body of at most {max_body} bytes, header announces {length}")
        return cls(Command(command), session_id, length)

    def encode(self) -> bytes:
        return _HEADER.pack(PROTOCOL_ID, self.command, self.session_id, self.length)


def pack_certificate(der: bytes, certificate_type: int = CertificateType.LSC) -> bytes:
    """The CERTIFICATE element's value: ``01``, uint16 (DER length + 2), ``00``, type, DER.

    CUCM's store request carries ``01 03D5 00 01`` before a 979-byte DER
    (Jabber4Linux capture); the length counts the two bytes after it.
    """
    if len(der) + 2 > LENGTH_LIMIT - 3:
        raise UsageError(f"a certificate of {len(der)} bytes does not fit a CAPF element")
    return b"\x01" + (len(der) + 2).to_bytes(2, "big") + b"\x00" + bytes([certificate_type]) + der


def unpack_certificate(value: bytes, offset: int = 0) -> tuple[int, bytes]:
    """Read a CERTIFICATE element's value: (certificate type, DER)."""
    if len(value) < 5 or value[0] != 0x01 or value[3] != 0x00:
        raise CapfFrameError(offset, "CERTIFICATE starting 01, a 2-byte length, 00 and a type byte")
    announced = int.from_bytes(value[1:3], "big")
    if announced != len(value) - 3:
        raise CapfFrameError(offset + 1, f"CERTIFICATE inner length {len(value) - 3}, got {announced}")
    return value[4], value[5:]


def _text_value(text: str, tag: Tag) -> bytes:
    try:
        encoded = text.encode("ascii")
    except UnicodeEncodeError:
        raise UsageError(f"CAPF {tag.name} must be ASCII, got {text!r}") from None
    if b"\0" in encoded:
        raise UsageError(f"CAPF {tag.name} cannot contain NUL")
    return encoded + b"\0"


def _read_text(value: bytes, offset: int, tag: Tag) -> str:
    if not value.endswith(b"\0") or b"\0" in value[:-1]:
        raise CapfFrameError(offset, f"{tag.name} as text ending in one NUL")
    try:
        return value[:-1].decode("ascii")
    except UnicodeDecodeError as error:
        raise CapfFrameError(offset + error.start, f"{tag.name} in ASCII") from None


@attrs.frozen
class CapfMessage:
    """One CAPF message: a command, the session id and its elements.

    ``elements`` maps each known tag present to its raw value; unknown tags
    are dropped on decoding (skipped by their length). Accessors give the
    typed reading of each element, ``None`` when absent.
    """

    command: Command = attrs.field(converter=Command)
    session_id: int = 0
    elements: dict[Tag, bytes] = attrs.field(factory=dict, converter=dict, hash=False)

    # -- named constructors (values in the units the protocol uses) ----------------
    @classmethod
    def build(cls, command: Command, session_id: int, **fields: object) -> CapfMessage:
        """A message from typed fields: ``reason=1, version=3, device_name="SEP…"``, etc.

        Integers go into their fixed-size elements, text into NUL-terminated
        ASCII, bytes as given (``certificate`` is packed with
        ``pack_certificate``; pass ``certificate_der`` for that).
        """
        elements: dict[Tag, bytes] = {}
        for name, value in fields.items():
            if value is None:
                continue
            if name == "certificate_der":
                kind = int(fields.get("certificate_type") or CertificateType.LSC)  # type: ignore[arg-type]
                elements[Tag.CERTIFICATE] = pack_certificate(bytes(value), kind)  # type: ignore[arg-type]
                continue
            tag = Tag[name.upper()]
            if tag in _TEXT_TAGS:
                elements[tag] = _text_value(str(value), tag)
            elif tag in _FIXED_SIZES:
                size = _FIXED_SIZES[tag]
                number = int(value)  # type: ignore[call-overload]
                if not 0 <= number < 1 << (8 * size):
                    raise UsageError(f"CAPF {tag.name} {number} does not fit in {size} byte(s)")
                elements[tag] = number.to_bytes(size, "big")
            else:
                elements[tag] = bytes(value)  # type: ignore[arg-type]
        return cls(command, session_id, elements)

    # -- typed readings -----------------------------------------------------------
    def _number(self, tag: Tag) -> int | None:
        value = self.elements.get(tag)
        return None if value is None else int.from_bytes(value, "big")

    def _text(self, tag: Tag) -> str | None:
        value = self.elements.get(tag)
        return None if value is None else _read_text(value, 0, tag)

    @property
    def reason(self) -> int | None:
        return self._number(Tag.REASON)

    @property
    def version(self) -> int | None:
        return self._number(Tag.VERSION)

    @property
    def auth_type(self) -> int | None:
        return self._number(Tag.AUTH_TYPE)

    @property
    def key_size(self) -> int | None:
        return self._number(Tag.KEY_SIZE)

    @property
    def key_type(self) -> int | None:
        return self._number(Tag.KEY_TYPE)

    @property
    def curve(self) -> int | None:
        return self._number(Tag.CURVE)

    @property
    def device_name(self) -> str | None:
        return self._text(Tag.DEVICE_NAME)

    @property
    def password(self) -> str | None:
        return self._text(Tag.PASSWORD)

    @property
    def reason_info(self) -> str | None:
        return self._text(Tag.REASON_INFO)

    @property
    def public_key(self) -> bytes | None:
        return self.elements.get(Tag.PUBLIC_KEY)

    @property
    def signed_data(self) -> bytes | None:
        return self.elements.get(Tag.SIGNED_DATA)

    @property
    def sha2_signed_data(self) -> tuple[int, bytes] | None:
        """(digest code, signature) of SHA2_SIGNED_DATA: code (1 byte), uint16 length, signature."""
        value = self.elements.get(Tag.SHA2_SIGNED_DATA)
        if value is None:
            return None
        if len(value) < 3 or int.from_bytes(value[1:3], "big") != len(value) - 3:
            raise CapfFrameError(0, "SHA2_SIGNED_DATA as a digest code, a 2-byte length and the signature")
        return value[0], value[3:]

    @property
    def certificate(self) -> tuple[int, bytes] | None:
        """(certificate type, DER) of the CERTIFICATE element."""
        value = self.elements.get(Tag.CERTIFICATE)
        return None if value is None else unpack_certificate(value)

    # -- bytes --------------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes, max_body: int = MAX_BODY) -> CapfMessage:
        """Decode exactly one frame; ``data`` must hold nothing else."""
        data = bytes(data)
        header = CapfHeader.decode(data, max_body)
        actual = len(data) - HEADER_SIZE
        if actual != header.length:
            raise CapfFrameError(min(len(data), HEADER_SIZE + header.length),
                                 f"a body of {header.length} bytes as the header says, got {actual}")
        elements: dict[Tag, bytes] = {}
        offset = HEADER_SIZE
        while offset < len(data):
            if len(data) - offset < _ELEMENT.size:
                raise CapfFrameError(offset, f"a 3-byte element header, {len(data) - offset} bytes remain")
            tag, length = _ELEMENT.unpack_from(data, offset)
            start = offset + _ELEMENT.size
            if length > len(data) - start:
                raise CapfFrameError(offset + 1, f"element {tag} of {length} bytes within the "
                                                 f"{len(data) - start} bytes that remain")
            value = data[start:start + length]
            if tag in Tag.__members__.values():
                known = Tag(tag)
                if known in elements:
                    raise CapfFrameError(offset, f"element {known.name} only once")
                cls._check(known, value, start)
                elements[known] = value
            offset = start + length
        return cls(header.command, header.session_id, elements)

    @staticmethod
    def _check(tag: Tag, value: bytes, offset: int) -> None:
        size = _FIXED_SIZES.get(tag)
        if size is not None and len(value) != size:
            raise CapfFrameError(offset - 2, f"{tag.name} of length {size}, got {len(value)}")
        if tag in _TEXT_TAGS:
            _read_text(value, offset, tag)
        elif tag is Tag.CERTIFICATE:
            unpack_certificate(value, offset)

    def encode(self) -> bytes:
        """The frame, header and body in one piece (phones stall on a split write, per capfd's notes)."""
        parts = []
        for tag in _ordered(self.elements):
            value = self.elements[tag]
            if len(value) > LENGTH_LIMIT:
                raise UsageError(f"CAPF element {tag.name} of {len(value)} bytes exceeds the 16-bit length")
            parts.append(_ELEMENT.pack(tag, len(value)) + value)
        body = b"".join(parts)
        if len(body) > LENGTH_LIMIT:
            raise UsageError(f"CAPF body of {len(body)} bytes exceeds the 16-bit length")
        if not 0 <= self.session_id <= 0xFFFFFFFF:
            raise UsageError("a CAPF session id fits in 32 bits")
        return CapfHeader(self.command, self.session_id, len(body)).encode() + body


def _ordered(tags: Iterable[Tag]) -> list[Tag]:
    present = set(tags)
    return [tag for tag in _ENCODE_ORDER if tag in present] + sorted(present - set(_ENCODE_ORDER))


class FrameBuffer:
    """Frames out of a byte stream that arrives in arbitrary pieces (split reads tolerated).

    ``feed(data)`` appends bytes; ``next_frame()`` returns one whole decoded
    message or ``None`` while more bytes are needed. An announced length past
    ``max_body`` is refused as soon as the header is in, before the body.
    """

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self._max_body = max_body

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned as a frame."""
        return len(self._buffer)

    def next_frame(self) -> CapfMessage | None:
        if len(self._buffer) < HEADER_SIZE:
            return None
        header = CapfHeader.decode(bytes(self._buffer[:HEADER_SIZE]), self._max_body)
        end = HEADER_SIZE + header.length
        if len(self._buffer) < end:
            return None
        frame = bytes(self._buffer[:end])
        del self._buffer[:end]
        return CapfMessage.decode(frame, self._max_body)
