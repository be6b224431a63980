"""CAPF frames: byte-literal samples, round trips, and what the decoder refuses (docs/capf.md)."""

from __future__ import annotations

import hashlib

import pytest
from conftest import rsa_key
from cryptography.hazmat.primitives.asymmetric import ec, padding
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.wire.capf import (
    MAX_BODY,
    AuthType,
    CapfFrameError,
    CapfHeader,
    CapfMessage,
    Command,
    FrameBuffer,
    KeyType,
    Reason,
    Tag,
    pack_certificate,
    unpack_certificate,
)
from phone.wire.capf_signing import (
    auth_data,
    sign_auth_data,
    sign_bare_digest,
    verify_auth_data,
)

# The usecallmanager.nz CAPF server's first frames of session 1 (RSA-2048 install).
AUTH_REQUEST = bytes.fromhex("55 01 00000001 0008 07 0001 03 08 0001 00")
KEY_GENERATE_REQUEST = bytes.fromhex("55 03 00000001 0009 0a 0002 0800 11 0001 00")
REQUEST_IN_PROGRESS = bytes.fromhex("55 11 00000001 0000")
END_SESSION_OK = bytes.fromhex("55 0f 00000001 0004 01 0001 01")


def test_auth_request_sample_reads_version_3_and_auth_type_none():
    message = CapfMessage.decode(AUTH_REQUEST)
    assert message.command is Command.AUTH_REQUEST
    assert message.session_id == 1
    assert (message.version, message.auth_type) == (3, AuthType.NONE)
    assert message.encode() == AUTH_REQUEST


def test_key_generate_request_sample_asks_an_rsa_2048_key():
    message = CapfMessage.decode(KEY_GENERATE_REQUEST)
    assert (message.command, message.key_size, message.key_type) == (Command.KEY_GENERATE_REQUEST, 2048, KeyType.RSA)
    assert CapfMessage.build(Command.KEY_GENERATE_REQUEST, 1, key_size=2048, key_type=0).encode() == KEY_GENERATE_REQUEST


def test_empty_and_reason_only_samples_round_trip():
    assert CapfMessage.build(Command.REQUEST_IN_PROGRESS, 1).encode() == REQUEST_IN_PROGRESS
    end = CapfMessage.decode(END_SESSION_OK)
    assert end.reason == Reason.OK
    assert CapfMessage.build(Command.END_SESSION, 1, reason=Reason.OK).encode() == END_SESSION_OK


def test_auth_response_carries_device_name_and_password_as_nul_terminated_ascii():
    message = CapfMessage.build(Command.AUTH_RESPONSE, 7, reason=1, version=3, device_name="SEP001122334455",
                                password="1234")
    frame = message.encode()
    assert b"\x0d\x00\x10SEP001122334455\x00" in frame
    assert b"\x0b\x00\x051234\x00" in frame
    again = CapfMessage.decode(frame)
    assert (again.device_name, again.password, again.session_id) == ("SEP001122334455", "1234", 7)


def test_null_string_password_is_a_single_nul():
    frame = CapfMessage.build(Command.AUTH_RESPONSE, 1, password="").encode()
    assert frame.endswith(b"\x0b\x00\x01\x00")
    assert CapfMessage.decode(frame).password == ""


def test_certificate_element_matches_cucms_layout():
    der = bytes(range(256)) * 3 + bytes(211)   # 979 bytes, the size of CUCM's captured LSC
    value = pack_certificate(der)
    assert value[:5] == bytes.fromhex("01 03D5 00 01")
    frame = CapfMessage.build(Command.STORE_CERTIFICATE_REQUEST, 1, certificate_type=1, certificate_der=der).encode()
    assert bytes.fromhex("04 03D8 01 03D5 00 01") in frame
    assert CapfMessage.decode(frame).certificate == (1, der)
    assert unpack_certificate(value) == (1, der)


@pytest.mark.parametrize("frame, expected", [
    (b"\x55\x01\x00", "an 8-byte header"),
    (bytes.fromhex("54 01 00000001 0000"), "protocol id 0x55"),
    (bytes.fromhex("55 63 00000001 0000"), "a command from 1"),
    (bytes.fromhex("55 01 00000001 0005 07 0001 03"), "a body of 5 bytes as the header says, got 4"),
    (bytes.fromhex("55 01 00000001 0004 07 0001 03 00"), "a body of 4 bytes as the header says, got 5"),
    (bytes.fromhex("55 01 00000001 0002 07 00"), "a 3-byte element header"),
    (bytes.fromhex("55 01 00000001 0004 07 0002 03"), "element 7 of 2 bytes"),
    (bytes.fromhex("55 01 00000001 0005 07 0002 0003"), "VERSION of length 1, got 2"),
    (bytes.fromhex("55 01 00000001 0008 07 0001 03 07 0001 03"), "element VERSION only once"),
    (bytes.fromhex("55 02 00000001 0006 0d 0003 41 42 43"), "DEVICE_NAME as text ending in one NUL"),
    (bytes.fromhex("55 09 00000001 0008 04 0005 01 0009 00 01"), "CERTIFICATE inner length"),
])
def test_decoder_names_what_it_expected(frame, expected):
    with pytest.raises(CapfFrameError, match=expected):
        CapfMessage.decode(frame)


def test_huge_announced_length_is_refused_from_the_header_alone():
    with pytest.raises(CapfFrameError, match=f"at most {MAX_BODY}"):
        CapfHeader.decode(bytes.fromhex("55 09 00000001 ffff"))


def test_unknown_elements_are_skipped_by_their_length():
    frame = bytes.fromhex("55 0f 00000001 0009 63 0002 abcd 01 0001 01")
    message = CapfMessage.decode(frame)
    assert message.reason == 1
    assert set(message.elements) == {Tag.REASON}


def test_frames_split_at_every_byte_are_reassembled():
    stream = AUTH_REQUEST + KEY_GENERATE_REQUEST + END_SESSION_OK
    buffer = FrameBuffer()
    frames = []
    for byte in stream:
        buffer.feed(bytes([byte]))
        frame = buffer.next_frame()
        if frame is not None:
            frames.append(frame.command)
    assert frames == [Command.AUTH_REQUEST, Command.KEY_GENERATE_REQUEST, Command.END_SESSION]
    assert buffer.pending == 0


def test_frame_buffer_refuses_a_lying_length_before_the_body_arrives():
    buffer = FrameBuffer(max_body=100)
    buffer.feed(bytes.fromhex("55 09 00000001 0fff"))
    with pytest.raises(CapfFrameError, match="at most 100"):
        buffer.next_frame()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_a_frame_error(data):
    try:
        message = CapfMessage.decode(data)
    except CapfFrameError:
        return
    assert CapfMessage.decode(message.encode()).elements == message.elements


def test_rsa_auth_signature_is_a_type1_block_of_the_bare_digest():
    key = rsa_key(1024)
    data = auth_data("SEP001122334455", b"\x30\x03\x02\x01\x00")
    signature = sign_auth_data(key, data, "sha1")
    assert len(signature) == 128
    # cryptography recovers the bare block contents: the digest itself, with no DigestInfo.
    assert key.public_key().recover_data_from_signature(signature, padding.PKCS1v15(), None) == \
        hashlib.sha1(data).digest()
    assert verify_auth_data(key.public_key(), signature, data, "sha1")
    assert not verify_auth_data(key.public_key(), signature, data + b"x", "sha1")
    assert verify_auth_data(key.public_key(), sign_auth_data(key, data, "sha512"), data, "sha512")


def test_bare_digest_signature_equals_the_textbook_rsa_operation():
    key = rsa_key(1024)
    digest = bytes(20)
    numbers = key.private_numbers()
    size = 128
    block = b"\x00\x01" + b"\xff" * (size - 3 - 20) + b"\x00" + digest
    expected = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n).to_bytes(size, "big")
    assert sign_bare_digest(key, digest) == expected


def test_ec_auth_signature_is_der_ecdsa():
    key = ec.generate_private_key(ec.SECP256R1())
    data = auth_data("SEP001122334455", b"cert")
    assert verify_auth_data(key.public_key(), sign_auth_data(key, data, "sha512"), data, "sha512")
    assert not verify_auth_data(key.public_key(), sign_auth_data(key, data, "sha1"), data, "sha512")
