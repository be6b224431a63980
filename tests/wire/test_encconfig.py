"""Encrypted configuration files (.cnf.xml.enc.sgn) and their stub: layout, crypto, refusals."""

from __future__ import annotations

import hashlib

import pytest
from conftest import SEED_TIME, ec_identity, node_identity, rsa_key
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from phone.errors import (
    ConfigDigestError,
    ConfigFormatError,
    ConfigKeyUnwrapError,
    ConfigPaddingError,
    EncryptedConfigError,
    TrustListFormatError,
    UsageError,
)
from phone.wire.certs import make_certificate, simple_subject
from phone.wire.encconfig import (
    EncryptedConfig,
    build_encrypted_config,
    build_stub,
    decrypt,
    padding_count,
    stub_cert_hash,
    stub_hash_matches,
    verify_encrypted_config,
)
from phone.wire.signing import (
    Layout,
    assemble,
    signature_info_element,
    signer_id_element,
)
from phone.wire.tlv import Element, FileKind, HeaderTag

KEY = bytes(range(16))
IV = bytes(range(16, 32))
MAC = "B000B4BA0AEE"
NAME = f"SEP{MAC}.cnf.xml.enc.sgn"  # 31 characters + NUL: the 32-byte FILENAME of the layout table


def identity(label: str, bits: int, common_name: str, serial: int):
    return make_certificate(simple_subject(CN=common_name), rsa_key(bits, label), not_before=SEED_TIME,
                            serial=serial)


@pytest.fixture(scope="module")
def tftp():
    # "CN=" + 34 characters + NUL: the 38-byte names of the layout table; a 20-byte serial.
    return identity("enc-tftp", 2048, "cucm-1251-a-pub.example.lab.tftp01", 0x11 << 152 | 0x2233)


@pytest.fixture(scope="module")
def phone():
    return identity("enc-phone", 2048, "CP-8845-SEPB000B4BA0AEE", 0x5E)


@pytest.fixture(scope="module")
def small_signer():
    return node_identity("cucm-enc-small")


@pytest.fixture(scope="module")
def small_phone():
    return identity("enc-small-phone", 1024, "SEPB000B4BA0AEE", 7)


XML = (b"<device><fullConfig>true</fullConfig><deviceSecurityMode>1</deviceSecurityMode>"
       + b"<loadInformation>sip88xx.14-2-1-0101-30</loadInformation>" + b"x" * 244 + b"</device>")


def test_the_layout_reproduces_the_1176_byte_example_offset_by_offset(tftp, phone):
    assert len(XML) == 389
    data = build_encrypted_config(XML, tftp, phone.certificate, filename=NAME, timestamp=1_600_000_000,
                                  key=KEY, iv=IV)
    assert len(data) == 1176
    table = [  # offset, tag, length
        (0, 1, 2), (5, 2, 2), (10, 3, 105), (118, 7, 15), (136, 12, 256), (395, 14, 32), (430, 15, 4),
        (437, 16, 306), (440, 17, 28), (471, 21, 272), (746, 26, 1), (750, 27, 20),
    ]
    for offset, tag, length in table:
        assert (data[offset], int.from_bytes(data[offset + 1 : offset + 3], "big")) == (tag, length), offset
    assert data[3:5] == b"\x02\x00"
    assert int.from_bytes(data[8:10], "big") == 776
    assert data[773:776] == b"\x0d\x0d\x0d"
    # SIGNERID as usecallmanager's enccnf writes it: name, issuer, serial.
    assert [data[13], data[13 + 41], data[13 + 82]] == [4, 6, 5]
    assert data[121:125] == b"\x08\x00\x01\x01"  # DIGESTALGORITHM SHA-1
    # IVINFO: 18 = 00, the IV, PADDINGCOUNT 11 (389 + 11 = 400).
    assert data[443:447] == b"\x12\x00\x01\x00"
    assert data[447:466] == b"\x13\x00\x10" + IV
    assert data[466:471] == b"\x14\x00\x02\x00\x0b"
    # KEYINFO: 22 = 00, KEYSIZE 2048 bits, 24 = 01, then the wrapped key.
    assert data[474:487] == b"\x16\x00\x01\x00" + b"\x17\x00\x02\x08\x00" + b"\x18\x00\x01\x01"
    assert data[487:490] == b"\x19\x01\x00"
    assert phone.private_key.decrypt(data[490:746], padding.PKCS1v15()) == KEY
    assert data[749] == 1 and data[753:773] == hashlib.sha1(XML).digest()
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).decryptor()
    assert decryptor.update(data[776:]) + decryptor.finalize() == XML + b"\x0d" * 11


def test_build_parse_verify_decrypt_round_trip(tftp, phone):
    data = build_encrypted_config(XML, tftp, phone.certificate, filename=NAME, timestamp=1_600_000_000,
                                  digest="sha512")
    parsed = EncryptedConfig.from_bytes(data)
    assert (parsed.filename, parsed.timestamp, parsed.content_digest, parsed.key_size) == (NAME, 1_600_000_000, 3, 2048)
    assert verify_encrypted_config(parsed, tftp.certificate)
    assert not verify_encrypted_config(parsed, phone.certificate)
    assert decrypt(parsed, phone.private_key) == XML


def test_key_and_iv_are_fresh_for_every_file(small_signer, small_phone):
    first, second = (EncryptedConfig.from_bytes(build_encrypted_config(
        b"<device/>", small_signer, small_phone.certificate, filename=NAME, timestamp=1)) for _ in range(2))
    assert first.iv != second.iv and first.ciphertext != second.ciphertext


@pytest.mark.parametrize("length, count", [(0, 16), (1, 15), (15, 1), (16, 16), (32, 16), (389, 11)])
def test_padding_is_0x0d_to_the_next_block_and_a_whole_block_when_aligned(length, count):
    assert padding_count(length) == count


def test_an_aligned_plaintext_gets_a_whole_block_of_0x0d(small_signer, small_phone):
    xml = b"<device>" + b"y" * 15 + b"</device>"
    assert len(xml) == 32
    data = build_encrypted_config(xml, small_signer, small_phone.certificate, filename=NAME, timestamp=1,
                                  key=KEY, iv=IV)
    parsed = EncryptedConfig.from_bytes(data)
    assert parsed.padding_count == 16 and len(parsed.ciphertext) == 48
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).decryptor()
    assert (decryptor.update(parsed.ciphertext) + decryptor.finalize())[32:] == b"\x0d" * 16
    assert decrypt(parsed, small_phone.private_key) == xml


@pytest.fixture(scope="module")
def small_file(small_signer, small_phone):
    return build_encrypted_config(b"<device/>", small_signer, small_phone.certificate, filename="a.enc.sgn",
                                  timestamp=1, key=KEY, iv=IV)


def opened(data: bytes, signer, phone) -> bytes | None:
    """What a phone would apply: the plaintext, or None when verify or decrypt refuses the file."""
    try:
        parsed = EncryptedConfig.from_bytes(data)
        if not verify_encrypted_config(parsed, signer.certificate):
            return None
        return decrypt(parsed, phone.private_key)
    except (TrustListFormatError, EncryptedConfigError):
        return None


def test_every_single_bit_flip_is_refused(small_file, small_signer, small_phone):
    assert opened(small_file, small_signer, small_phone) == b"<device/>"
    for position in range(len(small_file)):
        for bit in range(8):
            flipped = bytearray(small_file)
            flipped[position] ^= 1 << bit
            assert opened(bytes(flipped), small_signer, small_phone) is None, (position, bit)


def test_a_file_for_another_phone_does_not_open(small_file, small_phone):
    other = identity("enc-other-phone", 1024, "SEP000000000001", 8)
    # Usually the unwrap fails; implicit rejection can hand back 16 random bytes, which the padding
    # or CONTENTHASH check then refuses: never a plaintext.
    with pytest.raises(EncryptedConfigError):
        decrypt(EncryptedConfig.from_bytes(small_file), other.private_key)
    assert decrypt(EncryptedConfig.from_bytes(small_file), small_phone.private_key) == b"<device/>"


def test_a_phone_key_of_another_size_is_named(small_file):
    with pytest.raises(ConfigKeyUnwrapError, match="1024-bit key; the phone's is 2048-bit"):
        decrypt(EncryptedConfig.from_bytes(small_file), rsa_key(2048, "enc-wrong-size"))


def test_an_ec_phone_key_is_a_clear_error(small_file, small_signer):
    with pytest.raises(ConfigKeyUnwrapError, match="not RSA"):
        decrypt(EncryptedConfig.from_bytes(small_file), ec_identity().private_key)
    with pytest.raises(UsageError, match="not RSA"):
        build_encrypted_config(b"<device/>", small_signer, ec_identity().certificate, filename=NAME, timestamp=1)


def encrypted_file(signer, phone, plaintext: bytes, *, count: int, content_hash: bytes | None = None,
                   old_layout: bool = False, extra_iv: list[Element] | None = None, iv_value: bytes = IV,
                   key_size: int = 1024) -> bytes:
    """A file laid out by hand (the builder never writes a wrong count or hash)."""
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    wrapped = phone.certificate.public_key().encrypt(KEY, padding.PKCS1v15())
    content = [Element.uint(26, 1, 1), Element(27, content_hash or hashlib.sha1(plaintext[:-count]).digest())]
    info = [
        Element.container(17, [Element.uint(18, 0, 1), Element(19, iv_value), Element.uint(20, count, 2), *(extra_iv or [])]),
        Element.container(21, [Element.uint(22, 0, 1), Element.uint(23, key_size, 2), Element.uint(24, 1, 1),
                               Element(25, wrapped)]),
    ]
    if old_layout:
        signer_fields = signer_id_element(signer, Layout.CUCM).children  # 4, 5, 6 at the top level
        elements = [*signer_fields, signature_info_element(signer, "sha1"), Element(HeaderTag.SIGNATURE),
                    Element.container(16, [*info, *content])]
    else:
        elements = [signer_id_element(signer), signature_info_element(signer, "sha1"), Element(HeaderTag.SIGNATURE),
                    Element.container(16, info), *content]
    return assemble((2, 0), elements, ciphertext, signer.private_key, digest="sha1", kind=FileKind.SGN).data


def test_the_older_enccnf_layout_parses_and_opens(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=7, old_layout=True)
    parsed = EncryptedConfig.from_bytes(data)
    assert verify_encrypted_config(parsed, small_signer.certificate)
    assert decrypt(parsed, small_phone.private_key) == b"<device/>"


def test_padding_bytes_that_are_not_0x0d_are_refused(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 6 + b"\x00", count=7)
    with pytest.raises(ConfigPaddingError, match="7 padding bytes"):
        decrypt(EncryptedConfig.from_bytes(data), small_phone.private_key)


def test_a_padding_count_that_disagrees_with_the_padding_is_refused(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=8)
    with pytest.raises(ConfigPaddingError):
        decrypt(EncryptedConfig.from_bytes(data), small_phone.private_key)


@pytest.mark.parametrize("count", [0, 17, 0x0D0D])
def test_a_padding_count_outside_1_to_16_is_a_format_error(small_signer, small_phone, count):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=count)
    with pytest.raises(TrustListFormatError, match="PADDINGCOUNT between 1 and 16") as caught:
        EncryptedConfig.from_bytes(data)
    assert data[caught.value.offset] == 20


def test_a_contenthash_mismatch_is_refused(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=7,
                          content_hash=hashlib.sha1(b"<device></device>").digest())
    parsed = EncryptedConfig.from_bytes(data)
    assert verify_encrypted_config(parsed, small_signer.certificate)  # signed, yet not what was hashed
    with pytest.raises(ConfigDigestError, match="CONTENTHASH"):
        decrypt(parsed, small_phone.private_key)


def test_a_contenthash_inside_and_beside_encryptioninfo_is_a_duplicate(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=7,
                          extra_iv=[Element(27, hashlib.sha1(b"<device/>").digest())])
    with pytest.raises(TrustListFormatError, match="at most one tag 27"):
        EncryptedConfig.from_bytes(data)


def test_a_duplicated_iv_is_refused_at_its_offset(small_signer, small_phone):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=7,
                          extra_iv=[Element(19, IV)])
    with pytest.raises(TrustListFormatError, match="at most one tag 19") as caught:
        EncryptedConfig.from_bytes(data)
    assert data[caught.value.offset : caught.value.offset + 3] == b"\x13\x00\x10"


@pytest.mark.parametrize("iv_value, key_size, expected", [
    (IV[:15], 1024, "IV of 16 byte"),
    (IV + b"\x00", 1024, "IV of 16 byte"),
    (IV, 2048, "KEYSIZE of 1024 bits"),
])
def test_wrongly_sized_encryption_fields_are_refused_at_their_offset(small_signer, small_phone, iv_value, key_size,
                                                                      expected):
    data = encrypted_file(small_signer, small_phone, b"<device/>" + b"\x0d" * 7, count=7, iv_value=iv_value,
                          key_size=key_size)
    with pytest.raises(TrustListFormatError, match=expected) as caught:
        EncryptedConfig.from_bytes(data)
    assert data[caught.value.offset] == (19 if "IV" in expected else 23)


def test_a_ciphertext_that_is_not_whole_blocks_is_refused(small_file):
    with pytest.raises(TrustListFormatError, match="multiple of 16") as caught:
        EncryptedConfig.from_bytes(small_file[:-1])
    assert caught.value.offset == int.from_bytes(small_file[8:10], "big")


def test_a_file_without_encryptioninfo_is_refused(small_signer):
    plain = assemble((2, 0), [signer_id_element(small_signer), signature_info_element(small_signer, "sha1"),
                              Element(HeaderTag.SIGNATURE)], b"\x00" * 16, small_signer.private_key,
                     digest="sha1", kind=FileKind.SGN).data
    with pytest.raises(TrustListFormatError, match="ENCRYPTIONINFO"):
        EncryptedConfig.from_bytes(plain)


def test_the_stub_names_the_phone_certificate_and_turns_encryption_on(small_phone):
    der = small_phone.der
    stub = build_stub(MAC, der, capf_auth_mode=1, capf_servers=["cucm-pub"], load_information="sip88xx.14")
    assert stub_cert_hash(stub) == hashlib.md5(der).hexdigest()
    assert stub_hash_matches(stub, small_phone.certificate)
    text = stub.decode()
    for part in ("<fullConfig>false</fullConfig>", "<encrConfig>true</encrConfig>", "<capfAuthMode>1</capfAuthMode>",
                 "<processNodeName>cucm-pub</processNodeName>", "<ipAddressMode>0</ipAddressMode>",
                 "<loadInformation>sip88xx.14</loadInformation>"):
        assert part in text


def test_a_stub_for_another_certificate_does_not_match(small_phone, small_signer):
    stub = build_stub(MAC, small_signer.der, capf_auth_mode=0, capf_servers=[])
    assert not stub_hash_matches(stub, small_phone.certificate)
    assert stub_cert_hash(b"<device><certHash></certHash></device>") is None
    assert stub_cert_hash(b"<device><certHash>ABCDEF</certHash></device>") == "abcdef"


def test_a_hostile_stub_is_refused_by_the_safe_parser():
    with pytest.raises(ConfigFormatError, match="unsafe"):
        stub_cert_hash(b'<!DOCTYPE d [<!ENTITY e "x">]><device><certHash>&e;</certHash></device>')


def test_a_bad_mac_is_a_usage_error(small_phone):
    with pytest.raises(UsageError, match="12 hex digits"):
        build_stub("SEP12", small_phone.der, capf_auth_mode=0, capf_servers=[])
