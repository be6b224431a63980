"""Bad and forged files: a clear error with the byte offset, never a hang, never "verified"."""

from __future__ import annotations

import time

import pytest
from conftest import node_identity

from phone.errors import TrustListFormatError
from phone.wire.signing import assemble, build_signed_file, build_trust_list, make_record, verify
from phone.wire.tlv import Element, HeaderTag, Role, TrustList


@pytest.fixture(scope="module")
def small_itl():
    signer = node_identity("cucm-1051-a-pub")
    return build_trust_list([make_record(signer.certificate, Role.SAST, dns_name="pub", ip_address="10.0.0.1")],
                            signer, filename="ITLFile.tlv", timestamp=1_500_000_000)


def parses_and_verifies(data: bytes) -> bool:
    try:
        return verify(TrustList.from_bytes(data)).valid
    except TrustListFormatError:
        return False


@pytest.mark.parametrize(
    ("data", "offset", "expected"),
    [
        (b"", 0, "VERSION and a HEADERLENGTH"),
        (b"\x01\x00\x02\x01", 4, "VERSION and a HEADERLENGTH"),
        (b"\x00" * 64, 0, "VERSION element"),
        (b"\x02\x00\x02\x00\x10\x01\x00\x02\x01\x02", 0, "VERSION element"),
        (b"\x01\x00\x02\x01\x02\x03\x00\x02\x00\x10", 5, "HEADERLENGTH element"),
        (b"\x01\x00\x02\x01\x02\x02\x00\x02\x00\x05", 8, "HEADERLENGTH between 10"),
        (b"\x01\x00\x02\x01\x02\x02\x00\x02\x01\x00" + b"\x0d" * 20, 8, "HEADERLENGTH between 10"),
        (b"\x01\x00\x02\x01\x02\x02\x00\x02\x00\x0c\x0d\x0d", 10, "SIGNATURE element"),
    ],
)
def test_malformed_headers_name_offset_and_expectation(data, offset, expected):
    with pytest.raises(TrustListFormatError, match=expected) as caught:
        TrustList.from_bytes(data)
    assert caught.value.offset == offset


def test_every_truncation_is_an_error_or_unverified(small_itl):
    for length in range(len(small_itl.data)):
        assert not parses_and_verifies(small_itl.data[:length]), length


def test_a_length_that_overruns_the_record_is_an_error(small_itl):
    data = bytearray(small_itl.data)
    start = small_itl.header.header_length
    certificate = next(e for e in small_itl.records[0].elements if e.tag == 9)
    data[certificate.offset + 1 : certificate.offset + 3] = (0xFFF0).to_bytes(2, "big")
    with pytest.raises(TrustListFormatError, match="record #1") as caught:
        TrustList.from_bytes(bytes(data))
    assert caught.value.offset == certificate.offset
    assert start < caught.value.offset


@pytest.mark.parametrize("delta", [-4, -1, 1, 3, 4])
def test_a_headerlength_that_lies_is_never_verified(small_itl, delta):
    data = bytearray(small_itl.data)
    data[8:10] = (small_itl.header.header_length + delta).to_bytes(2, "big")
    assert not parses_and_verifies(bytes(data))


def test_a_recordlength_that_lies_is_an_error(small_itl):
    data = bytearray(small_itl.data)
    start = small_itl.header.header_length
    data[start + 3 : start + 5] = (small_itl.records[0].length - 1).to_bytes(2, "big")
    with pytest.raises(TrustListFormatError):
        TrustList.from_bytes(bytes(data))


def test_a_signature_of_the_wrong_size_is_an_error():
    signer = node_identity("cucm-1051-a-pub")
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv", timestamp=1)
    elements = [e for e in trust_list.header.elements[2:] if not e.is_padding]
    forged = [Element(HeaderTag.SIGNATURE, b"\x01" * 64) if e.tag == HeaderTag.SIGNATURE else e for e in elements]
    data = (Element(HeaderTag.VERSION, b"\x01\x02").encode()
            + Element.uint(HeaderTag.HEADER_LENGTH, 10 + sum(e.size for e in forged), 2).encode()
            + b"".join(e.encode() for e in forged))
    with pytest.raises(TrustListFormatError, match="SIGNATURE of 128 bytes as SIGNATUREMODULUS 1 says, found 64"):
        TrustList.from_bytes(data)


def test_two_signature_elements_are_ambiguous_and_rejected():
    signer = node_identity("cucm-1051-a-pub")
    elements = [Element(HeaderTag.SIGNATURE), Element(HeaderTag.SIGNATURE, b"\x00" * 128),
                Element.container(HeaderTag.SIGNATURE_INFO, [Element.uint(HeaderTag.DIGEST_ALGORITHM, 1, 1)])]
    with pytest.raises(TrustListFormatError, match="at most one tag 12"):
        assemble((1, 2), elements, b"", signer.private_key, digest="sha1")


def test_containers_nested_deeper_than_any_real_file_are_rejected():
    nested = Element(HeaderTag.SIGNATURE_ALGORITHM, b"\x00")
    for _ in range(2000):
        nested = Element.container(HeaderTag.SIGNATURE_ALGO_INFO, [nested])
    body = nested.encode()[:60000]
    data = b"\x01\x00\x02\x01\x02\x02\x00\x02" + (10 + len(body)).to_bytes(2, "big") + body
    with pytest.raises(TrustListFormatError):
        TrustList.from_bytes(data)


def test_garbage_and_ten_megabytes_of_zeros_fail_fast():
    started = time.perf_counter()
    for data in (bytes(10 * 1024 * 1024), bytes(range(256)) * 4000, b"\x01\x00\x02" * 100000):
        with pytest.raises(TrustListFormatError):
            TrustList.from_bytes(data)
    assert time.perf_counter() - started < 5  # a loose bound: the point is "no hang"


def test_every_single_bit_flip_fails_verification(small_itl):
    data = small_itl.data
    assert parses_and_verifies(data)
    for position in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[position] ^= 1 << bit
            assert not parses_and_verifies(bytes(flipped)), (position, bit)


def test_every_single_bit_flip_of_a_signed_config_fails_verification():
    signer = node_identity("cucm-1051-a-pub")
    signed = build_signed_file(b"<device/>", signer, filename="SEP0.cnf.xml", timestamp=1)
    for position in range(len(signed.data)):
        for bit in range(8):
            flipped = bytearray(signed.data)
            flipped[position] ^= 1 << bit
            try:
                parsed = TrustList.from_bytes(bytes(flipped))
            except TrustListFormatError:
                continue
            assert not verify(parsed, certificate=signer.certificate).valid, (position, bit)


def test_a_record_whose_key_is_not_its_certificates_key_never_signs():
    signer = node_identity("cucm-1051-a-pub")
    other = node_identity("intruder", serial=0x42)
    record = make_record(signer.certificate, Role.SAST)
    forged = type(record).from_elements(
        [Element(7, e.value if e.tag != 7 else make_record(other.certificate, 0).public_key) if e.tag == 7 else e
         for e in record.elements[1:]]
    )
    trust_list = build_trust_list([forged], signer, filename="ITLFile.tlv", timestamp=1)
    verification = verify(trust_list)
    assert not verification.valid
    assert "PUBLICKEY is not its certificate's key" in verification.reason


def test_a_sast_record_with_the_right_serial_but_another_key_never_signs():
    signer = node_identity("cucm-1051-a-pub")
    impostor = node_identity("cucm-1051-a-pub", bits=2048)  # same name and serial, other key
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], impostor,
                                  filename="ITLFile.tlv", timestamp=1)
    assert trust_list.header.signer_serial == trust_list.records[0].serial
    assert not verify(trust_list).valid


def test_a_signer_without_a_sast_record_is_not_verified():
    signer = node_identity("cucm-1051-a-pub")
    trust_list = build_trust_list([make_record(signer.certificate, Role.CCM_TFTP)], signer,
                                  filename="ITLFile.tlv", timestamp=1)
    verification = verify(trust_list)
    assert not verification.valid
    assert "no SAST record" in verification.reason
