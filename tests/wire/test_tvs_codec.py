"""TVS codec: byte-literal samples from the real exchange of SPEC 3.2 / reference-logs S1."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.errors import TvsProtocolError, UsageError
from phone.wire.tvs import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    MessageType,
    Status,
    Tag,
    TvsFrameError,
    TvsHeader,
    TvsMessage,
)

SUBJECT = "CN=ucm11pub.stormin.local;OU=IST;O=Stormin;L=Brisbane;ST=QLD;C=AU"
ISSUER = "CN=stormin-WIN2012-CA"
SERIAL = bytes.fromhex("24000000179479B8F124AC3F3B000000000017")
DEVICE = "CP-8861-SEPB000B4BA0AEE"

# reference-logs S1.e: the published (truncated) hex dump of the 153-byte request.
REQUEST_PREFIX = bytes.fromhex(
    "57 01 03 00 00 00 03 e9 00 8f 01 00 18 01 43 50 2d 38 38 36 31 2d 53 45"
    " 50 42 30 30 30 42 34 42 41 30 41 45 45 03 00 42 43 4e 3d 75 63 6d 31 31 70 75")
# S1.f: the first bytes of the 1480-byte reply and of its 1451-byte certificate.
REPLY_PREFIX = bytes.fromhex(
    "57 01 04 f7 00 00 03 e9 05 be 07 00 01 00 02 05 ab 30 82 05 a7 30 82 04"
    " 8f a0 03 02 01 02 02 13 24 00 00 00 17 94 79 b8 f1 24 ac 3f 3b 00 00 00 00 00")
CERT_PREFIX = REPLY_PREFIX[17:]


def real_request_bytes() -> bytes:
    """The S1 request rebuilt from its decoded fields (subject, issuer, serial of S1.e)."""
    subject = SUBJECT.encode() + b"\0"
    issuer = ISSUER.encode() + b"\0"
    payload = (b"\x01\x00\x18\x01" + DEVICE.encode()
               + b"\x03" + len(subject).to_bytes(2, "big") + subject
               + b"\x04" + len(issuer).to_bytes(2, "big") + issuer
               + b"\x05" + len(SERIAL).to_bytes(2, "big") + SERIAL)
    return bytes.fromhex("57 01 03 00 00 00 03 e9") + len(payload).to_bytes(2, "big") + payload


def real_reply_bytes() -> bytes:
    """The S1 reply: published prefix, certificate padded to its published 1451 bytes."""
    certificate = CERT_PREFIX + bytes(1451 - len(CERT_PREFIX))
    return (bytes.fromhex("57 01 04 f7 00 00 03 e9 05 be 07 00 01 00 02 05 ab") + certificate
            + bytes.fromhex("08 00 02 00 03 09 00 04 00 01 51 80"))


def test_real_query_request_decodes_to_its_published_fields():
    data = real_request_bytes()
    assert len(data) == 153
    assert data.startswith(REQUEST_PREFIX)
    message = TvsMessage.decode(data)
    assert message == TvsMessage.query_request(1001, DEVICE, SUBJECT, ISSUER, SERIAL)
    assert message.type is MessageType.QUERY_CERT_REQ
    assert message.missing() == ()


def test_query_request_encodes_to_the_real_bytes():
    assert TvsMessage.query_request(1001, DEVICE, SUBJECT, ISSUER, SERIAL).encode() == real_request_bytes()


def test_real_reply_decodes_with_status_certificate_roles_and_ttl():
    data = real_reply_bytes()
    assert len(data) == 1480
    assert data.startswith(REPLY_PREFIX)
    message = TvsMessage.decode(data)
    assert message.type is MessageType.QUERY_CERT_RES
    assert message.request_id == 1001
    assert message.flags == 0xF7
    assert message.status == Status.TRUSTED
    assert len(message.certificate) == 1451
    assert message.certificate.startswith(CERT_PREFIX)
    assert message.roles == (0, 3)
    assert message.ttl == 86400


def test_real_reply_round_trips_byte_for_byte():
    data = real_reply_bytes()
    assert TvsMessage.decode(data).encode() == data


def test_answer_echoes_request_id_and_uses_the_response_type():
    request = TvsMessage.verification_request(7, DEVICE, b"\x30\x03\x02\x01\x01")
    answer = TvsMessage.answer(request, Status.NOT_TRUSTED)
    assert (answer.type, answer.request_id, answer.status) == (MessageType.CERT_VERIFICATION_RES, 7, 1)
    assert answer.encode() == bytes.fromhex("57 01 02 00 00 00 00 07 00 04 07 00 01 01")


def test_verification_request_is_device_name_then_certificate():
    data = TvsMessage.verification_request(1, "CP-7965-SEP001122334455", b"\x30\x00").encode()
    assert data == (bytes.fromhex("57 01 01 00 00 00 00 01 00 20 01 00 18 01") + b"CP-7965-SEP001122334455"
                    + bytes.fromhex("02 00 02 30 00"))


def test_unknown_elements_are_skipped():
    data = bytearray(TvsMessage.answer(TvsMessage.query_request(1, DEVICE, "a", "b", b"\x01"),
                                       Status.NOT_TRUSTED).encode())
    extra = bytes.fromhex("63 00 03 aa bb cc")
    data += extra
    data[8:10] = (int.from_bytes(data[8:10], "big") + len(extra)).to_bytes(2, "big")
    assert TvsMessage.decode(bytes(data)).status == Status.NOT_TRUSTED


def test_several_certificates_are_kept_in_order():
    message = TvsMessage(MessageType.QUERY_CERT_RES, 2, status=0, certificates=(b"\x01", b"\x02"))
    assert TvsMessage.decode(message.encode()).certificates == (b"\x01", b"\x02")


@pytest.mark.parametrize(("data", "offset", "expected"), [
    (b"\x57\x01\x03", 3, "10-byte header"),
    (bytes.fromhex("58 01 03 00 00 00 00 01 00 00"), 0, "protocol id 0x57"),
    (bytes.fromhex("57 02 03 00 00 00 00 01 00 00"), 1, "protocol version 1"),
    (bytes.fromhex("57 01 09 00 00 00 00 01 00 00"), 2, "message type 1 to 4"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 ff ff"), 8, "at most 16384 bytes"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 05 07 00 01"), 13, "payload of 5 bytes .* got 3"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 04 07 00 01 00 ff"), 14, "1 more bytes follow"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 02 07 00"), 10, "3-byte element header"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 04 02 00 09 30"), 11, "element 2 of 9 bytes"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 05 07 00 02 00 00"), 11, "STATUS of length 1, got 2"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 06 09 00 03 00 00 00"), 11, "TTL of length 4, got 3"),
    (bytes.fromhex("57 01 04 00 00 00 00 01 00 08 07 00 01 00 07 00 01 00"), 14, "STATUS only once"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 05 03 00 02 41 42"), 13, "SUBJECT text ending in NUL"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 06 04 00 03 41 00 00"), 14, "embedded NUL"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 05 03 00 02 ff 00"), 13, "UTF-8"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 05 01 00 02 02 41"), 13, "starting with byte 0x01"),
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 03 05 00 00"), 11, "non-empty SERIAL"),
])
def test_malformed_frames_name_offset_and_expectation(data, offset, expected):
    with pytest.raises(TvsFrameError, match=expected) as caught:
        TvsMessage.decode(data)
    assert caught.value.offset == offset
    assert isinstance(caught.value, TvsProtocolError)


def test_header_refuses_a_huge_length_before_any_payload_is_read():
    header = bytes.fromhex("57 01 01 00 00 00 00 01 40 01")
    with pytest.raises(TvsFrameError, match="at most 16384 bytes, header announces 16385"):
        TvsHeader.decode(header)
    assert TvsHeader.decode(header, max_payload=0xFFFF).length == 0x4001


def test_missing_lists_required_elements():
    assert TvsMessage(MessageType.QUERY_CERT_REQ, 1, subject="x").missing() == (Tag.ISSUER, Tag.SERIAL)
    assert TvsMessage(MessageType.CERT_VERIFICATION_REQ, 1).missing() == (Tag.CERTIFICATE,)
    assert TvsMessage(MessageType.QUERY_CERT_RES, 1).missing() == (Tag.STATUS,)


@pytest.mark.parametrize("message", [
    TvsMessage(MessageType.QUERY_CERT_RES, 1, status=0, roles=(256,)),
    TvsMessage(MessageType.QUERY_CERT_RES, 1, status=0, ttl=2 ** 32),
    TvsMessage(MessageType.QUERY_CERT_REQ, 1, subject="a\0b"),
    TvsMessage(MessageType.QUERY_CERT_REQ, 1, device_name="CP-é"),
    TvsMessage(MessageType.QUERY_CERT_RES, 2 ** 32, status=0),
    TvsMessage(MessageType.QUERY_CERT_RES, 1, certificates=(bytes(0x10000),)),
])
def test_encode_refuses_values_the_wire_cannot_carry(message):
    with pytest.raises(UsageError):
        message.encode()


def test_answer_to_a_response_is_a_usage_error():
    with pytest.raises(UsageError, match="not a request"):
        TvsMessage.answer(TvsMessage(MessageType.QUERY_CERT_RES, 1), Status.TRUSTED)


_text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)
_messages = st.builds(
    TvsMessage,
    type=st.sampled_from(list(MessageType)),
    request_id=st.integers(0, 2 ** 32 - 1),
    device_name=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    certificates=st.lists(st.binary(min_size=1, max_size=300), max_size=3),
    subject=st.none() | _text,
    issuer=st.none() | _text,
    serial=st.none() | st.binary(min_size=1, max_size=20),
    status=st.none() | st.integers(0, 255),
    roles=st.none() | st.lists(st.integers(0, 255), max_size=8),
    ttl=st.none() | st.integers(0, 2 ** 32 - 1),
    flags=st.integers(0, 255),
)


@settings(max_examples=150, deadline=None)
@given(_messages)
def test_any_message_round_trips(message):
    data = message.encode()
    assert len(data) == HEADER_SIZE + int.from_bytes(data[8:10], "big")
    assert TvsMessage.decode(data) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_a_protocol_error(data):
    try:
        TvsMessage.decode(data)
    except TvsProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(_messages, st.data())
def test_corrupting_a_valid_frame_never_escapes_as_another_exception(message, data):
    frame = bytearray(message.encode())
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    try:
        decoded = TvsMessage.decode(bytes(frame[:cut]), max_payload=MAX_PAYLOAD)
    except TvsProtocolError:
        return
    assert decoded.encode()[:2] == b"\x57\x01"


def test_a_request_over_the_bound_every_decoder_applies_is_refused_before_sending():
    from phone.wire.tvs import MAX_PAYLOAD, UnencodableTvsMessage

    fits = TvsMessage.query_request(1, "CP-8861-SEPB000B4BA0AEE", "CN=a", "CN=a", b"\x01")
    assert len(fits.encode()) < MAX_PAYLOAD
    for subject in ("\ufffd" * 25_000, "X" * MAX_PAYLOAD):  # 75,000 bytes; just over the bound
        with pytest.raises(UnencodableTvsMessage):
            TvsMessage.query_request(1, "CP-8861-SEPB000B4BA0AEE", subject, "CN=a", b"\x01").encode()
