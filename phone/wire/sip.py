"""SIP REGISTER and its answer, as far as registration needs them (docs/registration.md).

The framing is RFC 3261's: a start line, header lines ending in CRLF, an empty
line, then ``Content-Length`` bytes of body. Over TCP and TLS a message's end is
known only from ``Content-Length`` (RFC 3261 section 18.3), so every message
here carries one. A Cisco phone names itself in the Contact header's
``+u.sip!devicename.ccm.cisco.com`` parameter; that is where CUCM, and the
lab, read the device name from.

Untrusted input: ``read_message`` refuses a head over ``MAX_HEAD_BYTES`` or a
body over ``MAX_BODY_BYTES`` before buffering more, so a hostile peer sending
one endless line costs a bounded amount of memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from phone.errors import SignallingFormatError

#: Far above a real REGISTER or its answer (about 600 bytes).
MAX_HEAD_BYTES = 8 * 1024
#: A REGISTER and its answer carry no body; a little slack for peers that add one.
MAX_BODY_BYTES = 8 * 1024
#: The Contact parameter a Cisco phone names its device in.
DEVICE_NAME_PARAMETER = "+u.sip!devicename.ccm.cisco.com"
_END_OF_HEAD = b"\r\n\r\n"
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9]{2}) ?(.*)")
_REQUEST_LINE = re.compile(r"([A-Z]{1,16}) (\S{1,256}) SIP/2\.0")
_DEVICE_NAME = re.compile(re.escape(DEVICE_NAME_PARAMETER) + r'="([^"]{1,64})"')
#: Header names in their compact forms (RFC 3261 section 7.3.3) read as the long ones.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


@attrs.frozen
class SipMessage:
    """One SIP request or response: the start line, headers (lower-case names, in order) and body."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case, compact forms too), or None."""
        wanted = _COMPACT.get(name.lower(), name.lower())
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        match = _STATUS_LINE.fullmatch(self.start_line)
        return int(match.group(1)) if match else None

    @property
    def reason(self) -> str:
        match = _STATUS_LINE.fullmatch(self.start_line)
        return match.group(2) if match else ""

    @property
    def method(self) -> str | None:
        """The method of a request, None for a response."""
        match = _REQUEST_LINE.fullmatch(self.start_line)
        return match.group(1) if match else None

    @property
    def device_name(self) -> str | None:
        """The device name a Cisco phone puts in its Contact header (see the module docstring)."""
        contact = self.header("contact") or ""
        match = _DEVICE_NAME.search(contact)
        return match.group(1) if match else None

    def encode(self) -> bytes:
        lines = [self.start_line, *(f"{_canonical(name)}: {value}" for name, value in self.headers
                                    if name != "content-length"),
                 f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> SipMessage:
        """One whole message; SignallingFormatError if it is not one."""
        message, rest = read_message(data)
        if message is None:
            raise SignallingFormatError("an incomplete SIP message")
        if rest:
            raise SignallingFormatError(f"{len(rest)} bytes after the SIP message")
        return message


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-")).replace("Call-Id", "Call-ID").replace(
        "Cseq", "CSeq")


def read_message(buffer: bytes) -> tuple[SipMessage | None, bytes]:
    """The first whole message in ``buffer`` and what follows it; (None, buffer) when more is needed.

    Raises SignallingFormatError for what can never become a SIP message: a head
    over ``MAX_HEAD_BYTES``, a start line that is neither a request nor a status
    line, a header line without a colon, a missing or bad ``Content-Length``.
    """
    end = buffer.find(_END_OF_HEAD, 0, MAX_HEAD_BYTES + len(_END_OF_HEAD))
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise SignallingFormatError(f"no end of the SIP header within {MAX_HEAD_BYTES} bytes")
        return None, buffer
    try:
        head = buffer[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SignallingFormatError("a SIP header that is not UTF-8 text") from None
    start_line, *lines = head.split("\r\n")
    if not (_STATUS_LINE.fullmatch(start_line) or _REQUEST_LINE.fullmatch(start_line)):
        raise SignallingFormatError(f"not a SIP start line: {start_line[:60]!r}")
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise SignallingFormatError(f"not a SIP header line: {line[:60]!r}")
        key = name.lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    lengths = [value for name, value in headers if name == "content-length"]
    if len(lengths) != 1 or not re.fullmatch(r"[0-9]{1,9}", lengths[0]):
        raise SignallingFormatError("a SIP message over TCP or TLS needs exactly one numeric Content-Length")
    length = int(lengths[0])
    if length > MAX_BODY_BYTES:
        raise SignallingFormatError(f"a SIP body of {length} bytes (at most {MAX_BODY_BYTES})")
    body_start = end + len(_END_OF_HEAD)
    if len(buffer) < body_start + length:
        return None, buffer
    message = SipMessage(start_line, tuple(headers), bytes(buffer[body_start:body_start + length]))
    return message, bytes(buffer[body_start + length:])


@attrs.frozen
class RegisterRequest:
    """What a phone's REGISTER says: who, from where, to which registrar (RFC 3261 section 10.2)."""

    device_name: str
    registrar: str
    local_address: str
    local_port: int
    transport: str  # "TCP" or "TLS"
    call_id: str
    tag: str
    branch: str
    cseq: int = 101
    expires: int = 3600

    def message(self) -> SipMessage:
        scheme = "sips" if self.transport == "TLS" else "sip"
        aor = f"<{scheme}:{self.device_name}@{self.registrar}>"
        contact = (f"<{scheme}:{self.device_name}@{self.local_address}:{self.local_port};"
                   f"transport={self.transport.lower()}>;{DEVICE_NAME_PARAMETER}=\"{self.device_name}\"")
        return SipMessage(f"REGISTER {scheme}:{self.registrar} SIP/2.0", (
            ("via", f"SIP/2.0/{self.transport} {self.local_address}:{self.local_port};branch={self.branch}"),
            ("from", f"{aor};tag={self.tag}"),
            ("to", aor),
            ("call-id", self.call_id),
            ("cseq", f"{self.cseq} REGISTER"),
            ("contact", contact),
            ("expires", str(self.expires)),
            ("max-forwards", "70"),
        ))

    def encode(self) -> bytes:
        return self.message().encode()


#: Reason phrases of the answers a registrar gives here (RFC 3261 section 21).
REASONS: Mapping[int, str] = MappingProxyType({200: "OK", 400: "Bad Request", 403: "Forbidden"})


def response_to(request: SipMessage, status: int, *, to_tag: str, warning: str | None = None) -> SipMessage:
    """The answer to ``request`` (RFC 3261 section 8.2.6): its Via, From, Call-ID and CSeq, To with a tag."""
    headers = [(name, request.header(name) or "") for name in ("via", "from")]
    to = request.header("to") or ""
    headers.append(("to", to if ";tag=" in to else f"{to};tag={to_tag}"))
    headers += [(name, request.header(name) or "") for name in ("call-id", "cseq")]
    if status == 200 and request.header("contact"):
        headers.append(("contact", f"{request.header('contact')};expires={request.header('expires') or 3600}"))
    if warning:
        headers.append(("warning", f'399 registrar "{warning}"'))
    return SipMessage(f"SIP/2.0 {status} {REASONS.get(status, 'Unknown')}", tuple(headers))
