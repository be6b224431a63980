"""Reading trust-list files as any producer writes them (SPEC 2.1 - 2.3, 2.7)."""

from __future__ import annotations

import pytest
from conftest import ec_identity, etoken_identity, node_identity

from phone.wire.signing import (
    Layout,
    NameStyle,
    assemble,
    build_signed_file,
    build_trust_list,
    make_bare_record,
    make_record,
    verify,
)
from phone.wire.tlv import Element, FileKind, HeaderTag, Record, Role


def publisher():
    return node_identity("cucm-1051-a-pub")


def header_elements(signer, order):
    """Header elements of ``signer`` keyed by tag, laid out in ``order``."""
    cert = signer.certificate
    from phone.wire.names import cucm_name, serial_to_bytes

    pieces = {
        "signer": Element.container(HeaderTag.SIGNER_ID, [
            Element.text(HeaderTag.SIGNER_NAME, cucm_name(cert.subject)),
            Element(HeaderTag.SERIAL_NUMBER, serial_to_bytes(cert.serial_number)),
            Element.text(HeaderTag.CA_NAME, cucm_name(cert.issuer)),
        ]),
        "info": Element.container(HeaderTag.SIGNATURE_INFO, [
            Element.uint(HeaderTag.DIGEST_ALGORITHM, 1, 1),
            Element.container(HeaderTag.SIGNATURE_ALGO_INFO, [
                Element.uint(HeaderTag.SIGNATURE_ALGORITHM, 0, 1),
                Element.uint(HeaderTag.SIGNATURE_MODULUS, 1, 1),
            ]),
        ]),
        "signature": Element(HeaderTag.SIGNATURE),
        "filename": Element.text(HeaderTag.FILENAME, "ITLFile.tlv"),
        "timestamp": Element.uint(HeaderTag.TIMESTAMP, 1_400_000_000, 4),
        "unknown": Element(99, b"future use"),
        "version28": Element(HeaderTag.SIGNER_VERSION, b"\x01\x01"),
    }
    return [pieces[name] for name in order]


@pytest.mark.parametrize(
    "order",
    [
        ["signer", "info", "signature", "filename", "timestamp"],
        ["timestamp", "filename", "signature", "info", "signer"],
        ["version28", "info", "signer", "filename", "timestamp", "signature"],
        ["signature", "unknown", "signer", "timestamp", "info", "filename"],
    ],
)
def test_header_elements_are_read_in_any_order_after_version_and_headerlength(order):
    signer = publisher()
    body = make_record(signer.certificate, Role.SAST).encode()
    trust_list = assemble((1, 2), header_elements(signer, order), body, signer.private_key, digest="sha1")
    assert trust_list.header.filename == "ITLFile.tlv"
    assert trust_list.header.timestamp == 1_400_000_000
    assert trust_list.header.signer_serial == signer.serial
    assert trust_list.kind is FileKind.ITL
    assert verify(trust_list).valid
    assert trust_list.encode() == trust_list.data


def test_unknown_header_and_record_tags_are_skipped_by_their_length():
    signer = publisher()
    record = make_record(signer.certificate, Role.SAST)
    with_unknown = Record.from_elements([*record.elements[1:], Element(50, b"\x00" * 7), Element(200, b"")])
    order = ["signer", "unknown", "info", "signature", "filename", "timestamp"]
    trust_list = assemble((1, 2), header_elements(signer, order), with_unknown.encode(), signer.private_key, digest="sha1")
    assert trust_list.records[0].certificate == signer.der
    assert [e.tag for e in trust_list.records[0].elements][-2:] == [50, 200]
    assert verify(trust_list).valid


def test_records_are_found_only_through_headerlength_with_any_padding():
    signer = publisher()
    body = make_record(signer.certificate, Role.SAST).encode()
    order = ["signer", "info", "signature", "filename", "timestamp"]
    for pad_to in (1, 4, 8, 16):
        trust_list = assemble((1, 2), header_elements(signer, order), body, signer.private_key, digest="sha1", pad_to=pad_to)
        assert trust_list.header.header_length % pad_to == 0
        assert len(trust_list.records) == 1
        assert verify(trust_list).valid


def test_padding_bytes_may_sit_between_header_elements():
    signer = publisher()
    elements = header_elements(signer, ["signer", "info", "signature", "filename", "timestamp"])
    elements.insert(1, Element.padding())
    elements.insert(3, Element.padding())
    body = make_record(signer.certificate, Role.SAST).encode()
    trust_list = assemble((1, 2), elements, body, signer.private_key, digest="sha1")
    assert trust_list.header.padding_length >= 2
    assert verify(trust_list).valid


def test_optional_record_elements_may_be_missing():
    signer = publisher()
    record = make_record(signer.certificate, Role.CCM_TFTP, dns_name=None, ip_address=None, include_signature=False)
    assert [e.tag for e in record.elements] == [1, 3, 4, 5, 6, 7, 9]
    sast = make_record(signer.certificate, Role.SAST)
    trust_list = build_trust_list([sast, record], signer, filename="CTLFile.tlv", timestamp=1)
    parsed = trust_list.records[1]
    assert parsed.dns_name is None and parsed.ip_address is None and parsed.signature is None
    assert parsed.certificate == signer.der


def test_record_without_certificate_is_read():
    signer = publisher()
    bare = make_bare_record(Role.CCM_TFTP, dns_name="cucm-105-pub", ip_address="10.48.47.155")
    assert bare.length == 33  # SPEC 2.3: 5 + (3+13) + (3+2) + (3+4) with a 12-character DNS name
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST), bare], signer,
                                  filename="CTLFile.tlv", timestamp=1)
    parsed = trust_list.records[1]
    assert parsed.certificate is None and parsed.subject is None
    assert parsed.function == Role.CCM_TFTP
    assert parsed.ip_address_text == "10.48.47.155"
    assert verify(trust_list).valid


def test_ec_record_carries_an_uncompressed_point():
    signer = publisher()
    ec = ec_identity()
    record = make_record(ec.certificate, Role.CCM_TFTP, layout=Layout.USECALLMANAGER)
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST, layout=Layout.USECALLMANAGER), record],
                                  signer, filename="ITLFile.tlv", timestamp=1, layout=Layout.USECALLMANAGER,
                                  signer_version=(1, 1))
    parsed = trust_list.records[1]
    assert parsed.public_key[0] == 0x04 and len(parsed.public_key) == 65
    assert trust_list.header.signer_version == (1, 1)
    assert verify(trust_list).valid


def test_usecallmanager_layout_writes_tag_28_and_its_order():
    signer = publisher()
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST, layout=Layout.USECALLMANAGER)], signer,
                                  filename="ITLFile.tlv", timestamp=1, layout=Layout.USECALLMANAGER)
    assert [e.tag for e in trust_list.header.elements][:5] == [1, 2, 28, 3, 7]
    assert [e.tag for e in trust_list.header.elements[3].children] == [4, 6, 5]
    assert [e.tag for e in trust_list.records[0].elements] == [1, 3, 5, 6, 4, 7, 8, 9]
    assert trust_list.header.signer_name == "C=PL,O=Cisco,OU=TAC,CN=cucm-1051-a-pub,ST=Malopolska,L=Krakow"
    assert trust_list.header.header_length % 4 == 0


def test_cucm_layout_writes_elements_1_to_15_then_padding():
    signer = publisher()
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv", timestamp=1)
    tags = [e.tag for e in trust_list.header.elements]
    assert tags[:7] == [1, 2, 3, 7, 12, 14, 15]
    assert set(tags[7:]) <= {13}
    nested = [e.tag for top in trust_list.header.elements for e in top.walk()]
    assert nested[:14] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15]
    assert [e.tag for e in trust_list.records[0].elements] == list(range(1, 11))


@pytest.mark.parametrize("version", [(1, 0), (1, 2)])
def test_header_version_1_0_and_1_2_are_read(version):
    signer = publisher()
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv",
                                  timestamp=1, version=version)
    assert trust_list.header.version == version
    assert trust_list.kind is FileKind.CTL
    assert verify(trust_list).valid


def test_signed_file_keeps_the_original_bytes_after_the_header():
    signer = publisher()
    config = b"<device><fullConfig>true</fullConfig></device>\n"
    signed = build_signed_file(config, signer, filename="SEPB000B4BA0AEE.cnf.xml", timestamp=7)
    assert signed.kind is FileKind.SGN
    assert signed.header.version == (1, 0)
    assert signed.header.filename == "SEPB000B4BA0AEE.cnf.xml.sgn"
    assert signed.payload == config
    assert signed.data[signed.header.header_length:] == config
    assert verify(signed, certificate=signer.certificate).valid
    assert not verify(signed).valid  # the signer's certificate is not inside a .sgn


def test_etoken_signed_ctl_names_the_token_record_as_signer():
    token_a = etoken_identity("SAST-ADN0054f509 ", 0x3CF9270000000AFA2DA45)
    token_b = etoken_identity()
    pub = publisher()
    records = [
        make_record(token_a.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False),
        make_record(pub.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-pub"),
        make_record(token_b.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False),
    ]
    ctl = build_trust_list(records, token_b, filename="CTLFile.tlv", timestamp=1, signer_name_style=NameStyle.CTL_CLIENT)
    verification = verify(ctl)
    assert verification.valid and verification.signed_by == 2
    assert ctl.header.signer_issuer == "cn=Cisco Manufacturing CA;o=Cisco Systems"


def test_unknown_role_codes_stay_numbers():
    signer = publisher()
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST), make_record(signer.certificate, 99)],
                                  signer, filename="ITLFile.tlv", timestamp=1)
    assert trust_list.records[1].function == 99
    assert trust_list.records[1].role_name == "99"
