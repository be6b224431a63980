"""The seed document's arithmetic, rebuilt from certificates (SPEC 2.4).

The seed's tokenless CTL has a 336-byte header (3 padding bytes), records of
1156, 1156, 1138 and 1161 bytes and a length of 4947; an eToken record is 1186
bytes. These tests build the files from certificates with the seed's sizes.
"""

from __future__ import annotations

from conftest import etoken_identity, node_identity
from seed_files import PUB_SERIAL, seed_ctl

from phone.wire.certs import Profile
from phone.wire.signing import NameStyle, make_record, verify
from phone.wire.tlv import Role

def test_seed_certificates_have_the_seed_sizes():
    assert len(node_identity("cucm-1051-a-pub", serial=PUB_SERIAL).der) == 694
    assert len(node_identity("cucm-1051-a-sub1", serial=0x6BEBFDCDCD8CA277CB2FD1D183A60E72).der) == 696
    assert len(node_identity("CAPF-e41e7d87", serial=0x744B4999770496E799E91E81D3C8109B, profile=Profile.CAPF).der) == 680
    assert len(etoken_identity().der) == 902


def test_tokenless_ctl_reproduces_the_seed_lengths():
    ctl = seed_ctl()
    assert [record.length for record in ctl.records] == [1156, 1156, 1138, 1161]
    assert ctl.header.header_length == 336
    assert ctl.header.padding_length == 3
    assert ctl.length == 4947


def test_tokenless_ctl_header_fields_have_the_seed_sizes():
    ctl = seed_ctl()
    by_tag = {element.tag: element for top in ctl.header.elements for element in top.walk()}
    assert len(by_tag[3].value) == 149  # SIGNERID container
    assert len(by_tag[4].value) == 62 and len(by_tag[6].value) == 62
    assert len(by_tag[5].value) == 16
    assert len(by_tag[7].value) == 15 and len(by_tag[9].value) == 8
    assert len(by_tag[12].value) == 128
    assert len(by_tag[14].value) == 12  # "CTLFile.tlv" and its NUL


def test_tokenless_ctl_record_fields_have_the_seed_sizes():
    record = seed_ctl().records[0]
    sizes = {element.tag: len(element.value) for element in record.elements}
    assert sizes == {1: 2, 2: 16, 3: 62, 4: 2, 5: 62, 6: 16, 7: 140, 8: 128, 9: 694, 10: 4}


def test_tokenless_ctl_is_signed_by_the_publisher_sast_record():
    verification = verify(seed_ctl())
    assert verification.valid
    assert verification.signed_by == 0


def test_etoken_record_is_1186_bytes():
    token = etoken_identity()
    record = make_record(token.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False)
    assert record.length == 1186
    assert record.subject == 'cn="SAST-ADN008580ef ";ou=IPCBU;o="Cisco Systems, Inc."'
    assert record.issuer == "cn=Cisco Manufacturing CA;o=Cisco Systems"
    assert record.serial.hex().upper() == "83E9080000005545AF31"
    assert record.signature is None
    sizes = {element.tag: len(element.value) for element in record.elements}
    assert sizes == {1: 2, 2: 1, 3: 56, 4: 2, 5: 42, 6: 10, 7: 140, 9: 902, 10: 4}
