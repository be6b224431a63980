"""Signing and verification across key sizes and digests (SPEC 2.2, 2.5)."""

from __future__ import annotations

import pytest
from conftest import node_identity

from phone.errors import CertificateError
from phone.wire.signing import build_trust_list, check_signature, make_record, verify
from phone.wire.tlv import SIGNATURE_SIZES, Role


@pytest.mark.parametrize("bits", [1024, 2048, 4096])
@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_files_signed_with_each_key_size_and_digest_verify(bits, digest):
    signer = node_identity(f"cucm-{bits}", bits=bits)
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv",
                                  timestamp=1, digest=digest)
    assert len(trust_list.header.signature) == bits // 8
    assert SIGNATURE_SIZES[trust_list.header.signature_modulus] == bits // 8
    assert trust_list.header.digest_name == digest
    assert verify(trust_list).valid
    assert trust_list.records[0].public_key is not None


def test_a_phone_without_sha512_rejects_a_sha512_signed_file():
    signer = node_identity("cucm-1051-a-pub")
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv",
                                  timestamp=1, digest="sha512")
    verification = verify(trust_list, digests={"sha1"})
    assert not verification.valid
    assert verification.reason == "the SHA512 digest is not supported"
    assert verify(trust_list, digests={"sha1", "sha512"}).valid


def test_verification_with_another_key_fails_with_a_reason():
    signer = node_identity("cucm-1051-a-pub")
    other = node_identity("cucm-other", bits=2048)
    trust_list = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="CTLFile.tlv", timestamp=1)
    assert check_signature(trust_list, other.certificate.public_key()) == (
        "a 128-byte signature cannot come from a 2048-bit key")
    same_size = node_identity("cucm-other-1024")
    assert check_signature(trust_list, same_size.certificate.public_key()) == "the signature does not match the file's content"


def test_ec_keys_cannot_sign_trust_lists():
    from conftest import ec_identity

    with pytest.raises(CertificateError, match="signed with RSA"):
        build_trust_list([], ec_identity(), filename="CTLFile.tlv", timestamp=1)
