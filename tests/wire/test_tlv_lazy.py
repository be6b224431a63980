"""The codec decodes fields when read and checks the usual layout with a fast scan:
neither may change what is accepted, what is refused, or what a record vouches for."""

from __future__ import annotations

import attrs
import hypothesis.strategies as st
import pytest
from conftest import node_identity
from hypothesis import HealthCheck, given, settings

from phone.errors import CertificateError, TrustListFormatError
from phone.wire import tlv
from phone.wire.signing import (
    Layout,
    assemble,
    build_trust_list,
    make_record,
    record_key,
    verify,
)
from phone.wire.tlv import Element, HeaderTag, RecordTag, Role, TrustList


def two_node_itl(layout: Layout = Layout.CUCM) -> TrustList:
    signer = node_identity("cucm-1051-a-pub")
    other = node_identity("cucm-1051-a-sub1", serial=0x6BEB)
    records = [make_record(signer.certificate, Role.SAST, layout=layout),
               make_record(signer.certificate, Role.CCM_TFTP, layout=layout),
               make_record(other.certificate, Role.TVS, layout=layout)]
    return build_trust_list(records, signer, filename="ITLFile.tlv", timestamp=1_500_000_000, layout=layout)


def with_record_element(record: tlv.Record, tag: int, value: bytes) -> tlv.Record:
    return tlv.Record.from_elements([Element(tag, value) if e.tag == tag else e for e in record.elements[1:]])


@pytest.mark.parametrize("layout", list(Layout))
def test_elements_built_on_demand_reencode_the_file_at_their_offsets(layout):
    trust_list = two_node_itl(layout)
    data = trust_list.data
    header = trust_list.header
    assert b"".join(element.encode() for element in header.elements) == data[: header.header_length]
    for record in trust_list.records:
        assert b"".join(element.encode() for element in record.elements) == record.raw
        for element in record.elements:
            assert data[element.offset] == element.tag
            assert data[element.offset + 3 : element.offset + 3 + len(element.value)] == element.value


def test_decoded_fields_are_the_element_values():
    record = two_node_itl().records[2]
    values = {element.tag: element.value for element in record.elements}
    assert record.certificate == values[RecordTag.CERTIFICATE]
    assert record.public_key == values[RecordTag.PUBLIC_KEY]
    assert record.serial == values[RecordTag.SERIAL_NUMBER] == b"\x6b\xeb"
    assert record.function == Role.TVS
    assert record.subject == values[RecordTag.SUBJECT_NAME][:-1].decode()


def test_a_parsed_trust_list_is_immutable_and_compares_by_its_bytes():
    first, again = TrustList.from_bytes(two_node_itl().data), TrustList.from_bytes(two_node_itl().data)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.records[0].raw = b""  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.header.raw = b""  # type: ignore[misc]
    assert first == again and hash(first.records[0]) == hash(again.records[0])
    assert first.records[0] != first.records[1]  # same certificate, another FUNCTION


def mutations(original: bytes):
    return st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), min_size=1, max_size=6)


ITL = two_node_itl().data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(ITL))
def test_the_fast_scans_accept_only_what_the_careful_scans_accept_and_find_the_same_values(changes):
    data = bytearray(ITL)
    for position, byte in changes:
        data[position] = byte
    data = bytes(data)
    header_length = (data[8] << 8) | data[9]
    if header_length < 10 or header_length > len(data):
        return
    fast = tlv._header_spans(data, header_length)
    if fast is not None:
        assert tlv._checked_header_spans(data, header_length) == fast
    position = header_length
    while position + 5 <= len(data) and data[position : position + 3] == b"\x01\x00\x02":
        length = (data[position + 3] << 8) | data[position + 4]
        if length < 5 or position + length > len(data):
            break
        fast = tlv._record_spans(data[position : position + length])
        if fast is not None:
            assert tlv._scan_record(data, position + 5, position + length, "record") == fast
        position += length


def test_a_header_the_fast_scan_leaves_to_the_careful_one_gets_its_error():
    data = ITL.replace(b"\x04\x00", b"\x04\x04", 1)  # SIGNERNAME now overruns SIGNERID
    header_length = (data[8] << 8) | data[9]
    assert tlv._header_spans(data, header_length) is None
    with pytest.raises(TrustListFormatError) as careful:
        tlv._checked_header_spans(data, header_length)
    with pytest.raises(TrustListFormatError) as parsed:
        TrustList.from_bytes(data)
    assert (parsed.value.offset, str(parsed.value)) == (careful.value.offset, str(careful.value))
    assert "tag 3 container" in str(parsed.value)


def test_a_header_the_fast_scan_leaves_to_the_careful_one_is_still_accepted():
    signer = node_identity("cucm-1051-a-pub")
    record = make_record(signer.certificate, Role.SAST)
    algorithm = [Element.uint(HeaderTag.SIGNATURE_ALGORITHM, 0, 1), Element.uint(HeaderTag.SIGNATURE_MODULUS, 1, 1)]
    elements = [
        Element.container(HeaderTag.SIGNER_ID, [Element.text(HeaderTag.SIGNER_NAME, "CN=cucm-1051-a-pub"),
                                                Element(HeaderTag.SERIAL_NUMBER, record.serial)]),
        Element.container(HeaderTag.SIGNATURE_INFO, [Element.uint(HeaderTag.DIGEST_ALGORITHM, 1, 1),
                                                     Element(13, b"unknown"),  # a tag 13 leaf, not padding
                                                     Element.container(HeaderTag.SIGNATURE_ALGO_INFO, algorithm)]),
        Element(HeaderTag.SIGNATURE),
        Element.text(HeaderTag.FILENAME, "ITLFile.tlv"),
    ]
    data = assemble((1, 2), elements, record.encode(), signer.private_key, digest="sha1").data
    assert tlv._header_spans(data, (data[8] << 8) | data[9]) is None
    assert verify(TrustList.from_bytes(data)).valid


def test_an_unusable_certificate_refuses_its_record_every_time_even_with_the_right_publickey():
    signer = node_identity("cucm-1051-a-pub")
    good = make_record(signer.certificate, Role.SAST)
    broken = with_record_element(good, RecordTag.CERTIFICATE, good.certificate[:-40])  # truncated DER
    trust_list = build_trust_list([broken], signer, filename="ITLFile.tlv", timestamp=1)
    assert broken.public_key == good.public_key and broken.serial == good.serial
    for _ in range(2):  # failures are never cached
        with pytest.raises(CertificateError, match="record certificate"):
            record_key(broken)
        verification = verify(TrustList.from_bytes(trust_list.data))
        assert not verification.valid
        assert verification.reason.startswith("record #1: record certificate")


def test_a_certificate_already_loaded_does_not_excuse_a_record_whose_parts_disagree():
    signer = node_identity("cucm-1051-a-pub")
    other = node_identity("intruder", serial=0x42)
    good = make_record(signer.certificate, Role.SAST)
    assert verify(build_trust_list([good], signer, filename="ITLFile.tlv", timestamp=1)).valid  # loads the key
    wrong_key = with_record_element(good, RecordTag.PUBLIC_KEY, make_record(other.certificate, 0).public_key)
    wrong_serial = with_record_element(good, RecordTag.SERIAL_NUMBER, b"\x42")
    with pytest.raises(CertificateError, match="PUBLICKEY is not its certificate's key"):
        record_key(wrong_key)
    with pytest.raises(CertificateError, match="SERIALNUMBER is not its certificate's serial"):
        record_key(wrong_serial)
    forged = build_trust_list([wrong_key], signer, filename="ITLFile.tlv", timestamp=1)
    assert not verify(forged).valid


def test_a_list_read_again_shares_its_records_and_a_record_elsewhere_keeps_its_own_offset():
    trust_list = two_node_itl()
    again = TrustList.from_bytes(trust_list.data)
    assert all(first is second for first, second in zip(trust_list.records, again.records, strict=True))
    first = trust_list.records[0]
    moved = build_trust_list([trust_list.records[2], first], node_identity("cucm-1051-a-pub"),
                             filename="ITLFile.tlv", timestamp=1)
    elsewhere = TrustList.from_bytes(moved.data).records[1]
    assert elsewhere.raw == first.raw and elsewhere.offset != first.offset
    assert elsewhere.offset == moved.header.header_length + trust_list.records[2].length
    assert elsewhere.elements[0].offset == elsewhere.offset


def test_a_broken_record_is_refused_every_time_its_bytes_come_back():
    data = bytearray(two_node_itl().data)
    header_length = (data[8] << 8) | data[9]
    data[header_length + 5 + 1 : header_length + 5 + 3] = b"\xff\xff"  # first element overruns its record
    for _ in range(2):
        with pytest.raises(TrustListFormatError, match="record #1") as refused:
            TrustList.from_bytes(bytes(data))
        assert refused.value.offset == header_length + 5


def test_a_record_read_on_its_own_must_start_with_its_own_length():
    record = two_node_itl().records[0]
    assert tlv.Record.from_bytes(record.raw) == record
    with pytest.raises(TrustListFormatError, match="RECORDLENGTH"):
        tlv.Record.from_bytes(record.raw + b"\x00")
    with pytest.raises(TrustListFormatError, match="RECORDLENGTH"):
        tlv.Record.from_bytes(b"\x02" + record.raw[1:])


@pytest.mark.parametrize(("filename", "kind"), [("ITLFile.tlv", tlv.FileKind.ITL), ("ctlfile.tlv", tlv.FileKind.CTL),
                                                ("SEP001122334455.cnf.xml.SGN", tlv.FileKind.SGN),
                                                ("İTLFile.tlv", tlv.FileKind.TLV), ("other.tlv", tlv.FileKind.TLV)])
def test_the_kind_comes_from_the_filename_without_regard_to_ascii_case(filename, kind):
    signer = node_identity("cucm-1051-a-pub")
    data = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename=filename, timestamp=1).data
    assert TrustList.from_bytes(data).kind is kind


@pytest.mark.parametrize(("tag", "value", "expected"), [(RecordTag.FUNCTION, b"\x00\x00\x00", "FUNCTION of 2 byte"),
                                                        (RecordTag.HASH_ALGORITHM, b"\x01\x01", "HASHALGORITHM of 1 byte")])
def test_a_record_field_of_the_wrong_size_is_refused_every_time_its_bytes_come_back(tag, value, expected):
    body = Element.text(RecordTag.SUBJECT_NAME, "CN=x").encode() + Element(tag, value).encode()
    raw = b"\x01\x00\x02" + (5 + len(body)).to_bytes(2, "big") + body
    signer = node_identity("cucm-1051-a-pub")
    data = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="ITLFile.tlv",
                            timestamp=1).data + raw
    for _ in range(2):
        with pytest.raises(TrustListFormatError, match=expected):
            TrustList.from_bytes(data)
