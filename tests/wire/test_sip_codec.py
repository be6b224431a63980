"""SIP REGISTER framing (RFC 3261): a byte-literal sample, round trips, hostile input refused."""

from __future__ import annotations

import pytest

from phone.errors import SignallingFormatError
from phone.wire.sip import MAX_HEAD_BYTES, RegisterRequest, SipMessage, read_message, response_to

REGISTER = RegisterRequest("SEPB000B4BA0AEE", "10.0.0.1", "10.0.0.7", 51000, "TLS", call_id="c1@10.0.0.7",
                           tag="t1", branch="z9hG4bK1")
SAMPLE = (b"REGISTER sips:10.0.0.1 SIP/2.0\r\n"
          b"Via: SIP/2.0/TLS 10.0.0.7:51000;branch=z9hG4bK1\r\n"
          b"From: <sips:SEPB000B4BA0AEE@10.0.0.1>;tag=t1\r\n"
          b"To: <sips:SEPB000B4BA0AEE@10.0.0.1>\r\n"
          b"Call-ID: c1@10.0.0.7\r\n"
          b"CSeq: 101 REGISTER\r\n"
          b"Contact: <sips:SEPB000B4BA0AEE@10.0.0.7:51000;transport=tls>;"
          b"+u.sip!devicename.ccm.cisco.com=\"SEPB000B4BA0AEE\"\r\n"
          b"Expires: 3600\r\n"
          b"Max-Forwards: 70\r\n"
          b"Content-Length: 0\r\n\r\n")


def test_register_is_written_as_rfc_3261_frames_it() -> None:
    assert REGISTER.encode() == SAMPLE


def test_register_round_trips_and_names_the_device() -> None:
    message = SipMessage.from_bytes(SAMPLE)
    assert message.method == "REGISTER"
    assert message.device_name == "SEPB000B4BA0AEE"
    assert message.encode() == SAMPLE


def test_answer_echoes_the_dialog_headers_and_tags_to() -> None:
    answer = SipMessage.from_bytes(response_to(SipMessage.from_bytes(SAMPLE), 200, to_tag="cm1").encode())
    assert (answer.status, answer.reason) == (200, "OK")
    assert answer.header("call-id") == "c1@10.0.0.7" and answer.header("CSeq") == "101 REGISTER"
    assert answer.header("to").endswith(";tag=cm1")


def test_a_message_split_across_reads_waits_for_its_body() -> None:
    whole = SipMessage("SIP/2.0 403 Forbidden", (("call-id", "x"),), b"body").encode()
    assert read_message(whole[:-2]) == (None, whole[:-2])
    message, rest = read_message(whole + b"next")
    assert message is not None and message.body == b"body" and rest == b"next"


def test_compact_header_forms_are_read() -> None:
    message = SipMessage.from_bytes(b"SIP/2.0 200 OK\r\ni: abc\r\nl: 0\r\n\r\n")
    assert message.header("call-id") == "abc"


@pytest.mark.parametrize("data, match", [
    (b"x" * (MAX_HEAD_BYTES + 10), "no end of the SIP header"),
    (b"HELLO\r\n\r\n", "not a SIP start line"),
    (b"SIP/2.0 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", "not a SIP header line"),
    (b"SIP/2.0 200 OK\r\nCall-ID: a\r\n\r\n", "Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", "SIP body of 99999999 bytes"),
    (b"SIP/2.0 200 OK\r\nContent-Length: \xff\r\n\r\n", "not UTF-8"),
])
def test_hostile_messages_are_refused_with_one_reason(data: bytes, match: str) -> None:
    with pytest.raises(SignallingFormatError, match=match):
        read_message(data)
