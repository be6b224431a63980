"""Skinny (SCCP) registration messages: RegisterMessage, RegisterAckMessage, RegisterRejectMessage.

Framing (every Skinny message, little-endian): a 4-byte length that counts the
message id and the data, a 4-byte header version (0 for the basic protocol),
the 4-byte message id, then the data. Registration (docs/registration.md):

- ``RegisterMessage`` (0x0001), phone to CallManager: the station id (device
  name, 16 bytes NUL-padded; user id; instance), the station's IPv4 address,
  its device type and the number of streams it can take.
- ``RegisterAckMessage`` (0x0081): keep-alive interval, date template (6
  bytes), 2 bytes of padding, secondary keep-alive interval, the protocol
  version the CallManager will speak, 3 bytes of padding.
- ``RegisterRejectMessage`` (0x009D): a 33-byte NUL-padded text.

Only the fields registration reads are filled; later protocol versions append
more to RegisterMessage, which a reader skips (the length says how much).
Untrusted input: a frame whose length is under 4 or over ``MAX_FRAME_BYTES``
is refused before anything is buffered.
"""

from __future__ import annotations

import struct

import attrs

from phone.errors import SignallingFormatError

REGISTER = 0x0001
REGISTER_ACK = 0x0081
REGISTER_REJECT = 0x009D
#: A Skinny frame is at most a few KB; registration's are under 100 bytes.
MAX_FRAME_BYTES = 2048
HEADER = struct.Struct("<III")  # length, header version, message id
_REGISTER = struct.Struct("<16sIIIII")
_ACK = struct.Struct("<I6s2xIB3x")
_REJECT_TEXT_BYTES = 33
#: Skinny device types of the phones the emulator speaks SCCP for (the ``deviceType`` numbers
#: Cisco's Skinny station messages use; unknown models send 0).
DEVICE_TYPES = {"CP-7960": 7, "CP-7940": 8}


@attrs.frozen
class SkinnyFrame:
    """One Skinny message: its id and its data."""

    message_id: int
    data: bytes = b""

    def encode(self) -> bytes:
        return HEADER.pack(4 + len(self.data), 0, self.message_id) + self.data


def read_frame(buffer: bytes) -> tuple[SkinnyFrame | None, bytes]:
    """The first whole frame of ``buffer`` and what follows; (None, buffer) when more is needed.

    SignallingFormatError for a length below 4 or above ``MAX_FRAME_BYTES``.
    """
    if len(buffer) < 4:
        return None, buffer
    (length,) = struct.unpack_from("<I", buffer)
    if not 4 <= length <= MAX_FRAME_BYTES:
        raise SignallingFormatError(f"a Skinny frame length of {length} (4 to {MAX_FRAME_BYTES})")
    end = 8 + length
    if len(buffer) < end:
        return None, buffer
    _, _, message_id = HEADER.unpack_from(buffer)
    return SkinnyFrame(message_id, bytes(buffer[12:end])), bytes(buffer[end:])


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


@attrs.frozen
class RegisterMessage:
    """StationRegisterMessage: who the phone is (see the module docstring)."""

    device_name: str
    station_ip: str = "0.0.0.0"
    device_type: int = 0
    instance: int = 1
    max_streams: int = 0

    def frame(self) -> SkinnyFrame:
        name = self.device_name.encode("ascii")
        if len(name) > 15:
            raise SignallingFormatError(f"a Skinny device name is at most 15 characters, not {len(name)}")
        address = bytes(int(part) for part in self.station_ip.split("."))
        return SkinnyFrame(REGISTER, _REGISTER.pack(name, 0, self.instance, int.from_bytes(address, "little"),
                                                    self.device_type, self.max_streams))

    @classmethod
    def from_frame(cls, frame: SkinnyFrame) -> RegisterMessage:
        if frame.message_id != REGISTER or len(frame.data) < _REGISTER.size:
            raise SignallingFormatError(f"not a Skinny RegisterMessage (id 0x{frame.message_id:04X}, "
                                        f"{len(frame.data)} bytes)")
        name, _user, instance, address, device_type, streams = _REGISTER.unpack_from(frame.data)
        station = ".".join(str(byte) for byte in address.to_bytes(4, "little"))
        return cls(_text(name), station, device_type, instance, streams)


@attrs.frozen
class RegisterAck:
    """StationRegisterAckMessage: the CallManager took the registration."""

    keepalive: int = 30
    date_template: str = "D/M/YA"
    secondary_keepalive: int = 60
    protocol_version: int = 5

    def frame(self) -> SkinnyFrame:
        return SkinnyFrame(REGISTER_ACK, _ACK.pack(self.keepalive, self.date_template.encode("ascii")[:6],
                                                   self.secondary_keepalive, self.protocol_version))

    @classmethod
    def from_frame(cls, frame: SkinnyFrame) -> RegisterAck:
        if frame.message_id != REGISTER_ACK or len(frame.data) < _ACK.size:
            raise SignallingFormatError(f"not a Skinny RegisterAckMessage ({len(frame.data)} bytes)")
        keepalive, template, secondary, version = _ACK.unpack_from(frame.data)
        return cls(keepalive, _text(template), secondary, version)


@attrs.frozen
class RegisterReject:
    """StationRegisterRejectMessage: the CallManager refused, with a text."""

    text: str

    def frame(self) -> SkinnyFrame:
        raw = self.text.encode("ascii", "replace")[:_REJECT_TEXT_BYTES - 1]
        return SkinnyFrame(REGISTER_REJECT, raw.ljust(_REJECT_TEXT_BYTES, b"\0"))

    @classmethod
    def from_frame(cls, frame: SkinnyFrame) -> RegisterReject:
        if frame.message_id != REGISTER_REJECT:
            raise SignallingFormatError(f"not a Skinny RegisterRejectMessage (id 0x{frame.message_id:04X})")
        return cls(_text(frame.data[:_REJECT_TEXT_BYTES]))
