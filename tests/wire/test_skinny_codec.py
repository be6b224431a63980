"""Skinny registration frames (little-endian length, header version, message id): samples and round trips."""

from __future__ import annotations

import pytest

from phone.errors import SignallingFormatError
from phone.wire.skinny import (
    MAX_FRAME_BYTES,
    REGISTER_ACK,
    RegisterAck,
    RegisterMessage,
    RegisterReject,
    SkinnyFrame,
    read_frame,
)

REGISTER_SAMPLE = (
    b"\x28\x00\x00\x00" b"\x00\x00\x00\x00" b"\x01\x00\x00\x00"  # length 40, version 0, RegisterMessage
    b"SEP001122334455\x00"  # device name, NUL-padded to 16
    b"\x00\x00\x00\x00" b"\x01\x00\x00\x00"  # user id 0, instance 1
    b"\x0a\x00\x00\x07"  # station address 10.0.0.7, in network order
    b"\x07\x00\x00\x00" b"\x00\x00\x00\x00"  # device type 7 (7960), max streams 0
)


def test_register_message_is_little_endian_with_a_16_byte_name() -> None:
    assert RegisterMessage("SEP001122334455", "10.0.0.7", device_type=7).frame().encode() == REGISTER_SAMPLE


def test_register_message_round_trips() -> None:
    message = RegisterMessage("SEP001122334455", "10.0.0.7", device_type=8, max_streams=3)
    frame, rest = read_frame(message.frame().encode())
    assert rest == b"" and RegisterMessage.from_frame(frame) == message


def test_ack_and_reject_round_trip() -> None:
    frame, _ = read_frame(RegisterAck().frame().encode())
    assert frame.message_id == REGISTER_ACK and RegisterAck.from_frame(frame) == RegisterAck()
    frame, _ = read_frame(RegisterReject("Registration Rejected: Security").frame().encode())
    assert RegisterReject.from_frame(frame).text == "Registration Rejected: Security"
    assert len(frame.data) == 33


def test_a_partial_frame_waits_for_the_rest() -> None:
    data = RegisterAck().frame().encode()
    assert read_frame(data[:-1]) == (None, data[:-1])


@pytest.mark.parametrize("length", [0, 3, MAX_FRAME_BYTES + 1, 0xFFFFFFFF])
def test_impossible_lengths_are_refused_before_buffering(length: int) -> None:
    with pytest.raises(SignallingFormatError, match="Skinny frame length"):
        read_frame(length.to_bytes(4, "little") + b"\0" * 8)


def test_a_frame_of_another_kind_is_not_read_as_an_ack() -> None:
    with pytest.raises(SignallingFormatError, match="not a Skinny RegisterAckMessage"):
        RegisterAck.from_frame(SkinnyFrame(0x0000, b""))
