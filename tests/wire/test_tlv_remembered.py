"""Headers and records read before are found again by their bytes: a file read again reads exactly
as it did the first time, a file that differs anywhere is read afresh, nothing broken or unusual is
kept, the memory stays bounded, and no file is ever trusted because its header was seen before."""

from __future__ import annotations

import copy
import pickle

import pytest
from conftest import node_identity

from phone.errors import TrustListFormatError
from phone.wire import tlv
from phone.wire.signing import (
    assemble,
    build_trust_list,
    check_signature,
    make_record,
    record_key,
    verify,
)
from phone.wire.tlv import Element, HeaderTag, Role, TrustList

HEADER_FIELDS = ("raw", "version", "header_length", "signer_name", "signer_serial", "signer_issuer", "digest_code",
                 "digest_name", "signature_algorithm", "signature_modulus", "signature", "signature_offset",
                 "signature_span", "filename", "timestamp", "signer_version", "elements")
RECORD_FIELDS = ("raw", "offset", "function", "serial", "issuer", "subject", "dns_name", "public_key",
                 "certificate", "ip_address", "elements")


def itl(timestamp: int = 1_500_000_000, filename: str = "ITLFile.tlv") -> TrustList:
    signer = node_identity("cucm-1051-a-pub")
    other = node_identity("cucm-1051-a-sub1", serial=0x6BEB)
    records = [make_record(signer.certificate, Role.SAST), make_record(signer.certificate, Role.CCM_TFTP),
               make_record(other.certificate, Role.TVS)]
    return build_trust_list(records, signer, filename=filename, timestamp=timestamp)


def forget() -> None:
    tlv._HEADERS.cache_clear()
    tlv._RECORDS.cache_clear()


def read(trust_list: TrustList) -> dict[str, object]:
    header = {name: getattr(trust_list.header, name) for name in HEADER_FIELDS}
    records = [{name: getattr(record, name) for name in RECORD_FIELDS} for record in trust_list.records]
    return {"header": header, "records": records, "kind": trust_list.kind, "data": trust_list.data}


def test_a_file_read_again_shares_its_header_and_reads_exactly_as_a_cold_parse():
    data = itl().data
    forget()
    cold = TrustList.from_bytes(data)
    again = TrustList.from_bytes(data)
    assert again.header is cold.header
    assert all(first is second for first, second in zip(cold.records, again.records, strict=True))
    assert read(again) == read(cold)
    assert verify(again) == verify(cold) and verify(again).valid


def test_a_file_differing_only_in_its_signature_is_read_afresh_and_fails_verification():
    genuine = TrustList.from_bytes(itl().data)
    assert verify(genuine).valid
    start, end = genuine.header.signature_span
    data = bytearray(genuine.data)
    first = start + 3  # the signature's first bytes, far from the header's end
    data[first : first + 8] = bytes(byte ^ 0x5A for byte in data[first : first + 8])  # same layout, other bytes
    forged = TrustList.from_bytes(bytes(data))
    assert forged.header is not genuine.header
    assert forged.header.signature == bytes(data[start + 3 : end]) != genuine.header.signature
    verification = verify(forged)
    assert not verification.valid
    assert verification.reason == "the signature does not match the file's content"
    assert verify(TrustList.from_bytes(genuine.data)).valid


def test_a_forged_file_behind_a_header_seen_before_still_fails_verification():
    genuine = TrustList.from_bytes(itl().data)
    assert verify(genuine).valid
    data = bytearray(genuine.data)
    subject = data.index(b"CN=cucm-1051-a-sub1", genuine.records[2].offset)  # the layout stays the same
    data[subject : subject + 19] = b"CN=cucm-1051-a-sub9"
    forged = TrustList.from_bytes(bytes(data))
    assert forged.header is genuine.header
    assert forged.records[:2] == genuine.records[:2] and forged.records[2] is not genuine.records[2]
    assert forged.records[2].subject.startswith("CN=cucm-1051-a-sub9")
    for _ in range(2):  # the check is made again on every call
        verification = verify(TrustList.from_bytes(bytes(data)))
        assert not verification.valid
        assert verification.reason == "the signature does not match the file's content"
    key = record_key(genuine.records[0])
    assert check_signature(forged, key) == "the signature does not match the file's content"
    assert check_signature(genuine, key) is None


def test_a_header_the_fast_scan_leaves_to_the_careful_one_is_never_kept():
    signer = node_identity("cucm-1051-a-pub")
    record = make_record(signer.certificate, Role.SAST)
    elements = [
        Element.container(HeaderTag.SIGNER_ID, [Element.text(HeaderTag.SIGNER_NAME, "CN=cucm-1051-a-pub"),
                                                Element(HeaderTag.SERIAL_NUMBER, record.serial)]),
        Element.container(HeaderTag.SIGNATURE_INFO, [Element.uint(HeaderTag.DIGEST_ALGORITHM, 1, 1),
                                                     Element(13, b"unknown")]),  # a tag 13 leaf, not padding
        Element(HeaderTag.SIGNATURE),
        Element.text(HeaderTag.FILENAME, "ITLFile.tlv"),
    ]
    data = assemble((1, 2), elements, record.encode(), signer.private_key, digest="sha1").data
    forget()
    first, second = TrustList.from_bytes(data), TrustList.from_bytes(data)
    assert len(tlv._HEADERS) == 0
    assert first.header is not second.header and first.header == second.header
    assert verify(second).valid


def test_a_header_refused_by_a_later_check_is_refused_every_time_and_never_kept():
    data = bytearray(itl().data)
    modulus = data.index(bytes([HeaderTag.SIGNATURE_MODULUS, 0, 1]), 0, (data[8] << 8) | data[9])
    data[modulus + 3] = 3  # SIGNATUREMODULUS now says 512 bytes; the fast scan still reads the header
    forget()
    for _ in range(2):
        with pytest.raises(TrustListFormatError, match="a SIGNATURE of 512 bytes as SIGNATUREMODULUS 3 says"):
            TrustList.from_bytes(bytes(data))
    assert len(tlv._HEADERS) == 0


def test_the_memory_keeps_at_most_its_count_and_forgets_the_oldest_first(monkeypatch):
    monkeypatch.setattr(tlv, "_HEADERS", tlv._Remembered(count=2, largest=4 * 1024))
    files = [itl(timestamp=1_500_000_000 + day).data for day in range(3)]
    first = [TrustList.from_bytes(data).header for data in files]
    assert len(tlv._HEADERS) == 2
    again = [TrustList.from_bytes(data).header for data in files[1:]]
    assert again == first[1:] and all(a is b for a, b in zip(again, first[1:], strict=True))
    oldest = TrustList.from_bytes(files[0]).header
    assert oldest is not first[0] and oldest == first[0]
    assert len(tlv._HEADERS) == 2


def test_pieces_larger_than_the_memory_allows_are_read_every_time_and_never_kept(monkeypatch):
    data = itl().data
    header_length = TrustList.from_bytes(data).header.header_length
    monkeypatch.setattr(tlv, "_HEADERS", tlv._Remembered(count=8, largest=header_length - 1))
    monkeypatch.setattr(tlv, "_RECORDS", tlv._Remembered(count=8, largest=1))
    first, second = TrustList.from_bytes(data), TrustList.from_bytes(data)
    assert len(tlv._HEADERS) == 0 and len(tlv._RECORDS) == 0
    assert first.header is not second.header and first.records[0] is not second.records[0]
    assert read(first) == read(second)


def test_decoded_header_fields_are_immutable():
    header = TrustList.from_bytes(itl().data).header
    for name in ("signer_serial", "signer_issuer", "digest_code", "signature", "signature_span"):
        with pytest.raises(AttributeError):
            setattr(header, name, None)
    record = TrustList.from_bytes(itl().data).records[0]
    for name in ("function", "serial", "issuer"):
        with pytest.raises(AttributeError):
            setattr(record, name, None)


@pytest.mark.parametrize("kind", [list, tuple, iter])
def test_accepted_digests_given_as_any_iterable_are_honoured(kind):
    trust_list = TrustList.from_bytes(itl().data)
    assert verify(trust_list, digests=kind(["sha256", "sha1"])).valid
    assert verify(trust_list, digests=kind(["sha256", "sha512"])).reason == "the SHA1 digest is not supported"


def test_a_parsed_list_copied_or_pickled_before_its_fields_are_read_reads_the_same():
    forget()
    data = itl().data
    for copied in (pickle.loads(pickle.dumps(TrustList.from_bytes(data))), copy.deepcopy(TrustList.from_bytes(data))):
        assert read(copied) == read(TrustList.from_bytes(data))
        assert verify(copied).valid


def one_record_file(role: int) -> bytes:
    signer = node_identity("cucm-1051-a-pub")
    return build_trust_list([make_record(signer.certificate, role)], signer, filename="ITLFile.tlv",
                            timestamp=1_500_000_000).data


def test_the_same_certificate_in_two_roles_at_the_same_place_is_kept_for_both_files():
    sast, ccm_tftp = one_record_file(Role.SAST), one_record_file(Role.CCM_TFTP)
    forget()
    first = [TrustList.from_bytes(data).records[0] for data in (sast, ccm_tftp)]
    assert first[0].raw[-32:] == first[1].raw[-32:] and first[0].offset == first[1].offset
    again = [TrustList.from_bytes(data).records[0] for data in (sast, ccm_tftp)]
    assert again[0] is first[0] and again[1] is first[1]
    assert [record.function for record in again] == [Role.SAST, Role.CCM_TFTP]


def test_at_most_two_pieces_are_kept_under_one_key_the_newest_first():
    files = [one_record_file(role) for role in (Role.SAST, Role.CCM_TFTP, Role.TFTP)]
    forget()
    first = [TrustList.from_bytes(data).records[0] for data in files]
    assert len(tlv._RECORDS) == 2
    assert TrustList.from_bytes(files[2]).records[0] is first[2]
    assert TrustList.from_bytes(files[1]).records[0] is first[1]
    oldest = TrustList.from_bytes(files[0]).records[0]
    assert oldest is not first[0] and oldest == first[0]
