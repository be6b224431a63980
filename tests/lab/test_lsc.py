"""The LSC the lab's CAPF issues: CUCM's names and validity, capfd's extensions (phone/lab/lsc.py)."""

from __future__ import annotations

import datetime

import pytest
from capf_support import NOW, capf_identity, phone_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from phone.errors import UsageError
from phone.lab.lsc import LscProfile, issue_lsc
from phone.wire.capf import Curve, KeyType


def issue(key=None, **overrides):
    arguments = {"capf": capf_identity(), "device_name": "SEP001122334455", "model": "CP-8861",
                 "phone_serial": "FCH1234ABCD", "now": NOW, "random_bytes": lambda n: bytes(range(1, n + 1))}
    arguments.update(overrides)
    return issue_lsc((key or phone_key(KeyType.RSA, 1024)).public_key(), **arguments)


def test_subject_is_product_id_then_capf_country_organisation_unit_then_model_and_device():
    lsc = issue()
    assert [(a.oid, a.value) for a in lsc.subject] == [
        (NameOID.SERIAL_NUMBER, "PID:CP-8861 SN:FCH1234ABCD"), (NameOID.COUNTRY_NAME, "PL"),
        (NameOID.ORGANIZATION_NAME, "Cisco"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "TAC"),
        (NameOID.COMMON_NAME, "CP-8861-SEP001122334455")]


def test_a_bare_model_number_gets_the_cp_prefix():
    assert issue(model="7975").subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-7975-SEP001122334455"


def test_issued_and_signed_by_the_capf_certificate_with_sha256():
    lsc = issue()
    capf = capf_identity().certificate
    assert lsc.issuer == capf.subject
    lsc.verify_directly_issued_by(capf)
    assert isinstance(lsc.signature_hash_algorithm, hashes.SHA256)


def test_serial_is_sixteen_random_bytes_and_positive():
    lsc = issue(random_bytes=lambda n: b"\xff" * n)
    assert lsc.serial_number > 0
    assert (lsc.serial_number.bit_length() + 7) // 8 == 16
    assert issue(random_bytes=lambda n: b"\x01" * n).serial_number != lsc.serial_number


def test_valid_from_now_for_the_profiles_days():
    assert issue().not_valid_before_utc == NOW
    assert issue().not_valid_after_utc - NOW == datetime.timedelta(days=1825)
    assert issue(profile=LscProfile(validity_days=365)).not_valid_after_utc - NOW == datetime.timedelta(days=365)


@pytest.mark.parametrize("days", [0, 1826])
def test_validity_outside_cucms_range_is_refused(days):
    with pytest.raises(UsageError, match="1 to 1825"):
        LscProfile(validity_days=days)


def test_extensions_are_an_end_entity_for_tls_both_ways_naming_the_device():
    lsc = issue()
    assert lsc.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = lsc.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert list(lsc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, ObjectIdentifier("1.3.6.1.5.5.7.3.5")]
    san = lsc.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["SEP001122334455"]
    without = issue(profile=LscProfile(device_name_san=False))
    with pytest.raises(x509.ExtensionNotFound):
        without.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_an_ec_key_is_certified_as_given():
    key = phone_key(KeyType.EC, Curve.P256)
    assert issue(key).public_key().public_numbers() == key.public_key().public_numbers()
