"""The lab serves and exports encrypted configurations: the .enc.sgn and its stub, per device."""

from __future__ import annotations

import pytest
from conftest import SEED_TIME, ec_identity, rsa_key
from lab_support import FakeClock, lab_factory

from phone.lab.devices import CapfSettings, DeviceRecord, DeviceStore
from phone.wire.certs import make_certificate, simple_subject
from phone.wire.config import PhoneConfig
from phone.wire.encconfig import (
    EncryptedConfig,
    cert_hash,
    decrypt,
    verify_encrypted_config,
)
from phone.wire.signing import verify
from phone.wire.tlv import FileKind, TrustList

DEVICE = "SEPB000B4BA0AEE"
OTHER = "SEP0011223344FF"


@pytest.fixture
def lab(tmp_path):
    return lab_factory()(tmp_path, clock=FakeClock())


def phone_identity(label: str):
    return make_certificate(simple_subject(CN=f"CP-8861-{label}"), rsa_key(2048, label), not_before=SEED_TIME,
                            serial=0x5E00 + len(label))


@pytest.fixture(scope="module")
def mic():
    return phone_identity("enc-lab-mic")


@pytest.fixture(scope="module")
def lsc():
    return phone_identity("enc-lab-lsc")


def encrypted_device(lab, *, mic=None, lsc=None, auth="null-string", operation="none"):
    store = DeviceStore.for_lab(lab.path)
    store.put(DeviceRecord(DEVICE, "CP-8861", security_profile="authenticated", encrypted_config=True,
                           capf=CapfSettings(operation, auth, status="pending" if operation != "none" else None),
                           lsc_der=lsc.der if lsc else None))
    if mic is not None:
        store.record_mic(DEVICE, mic.der)
    return store


def stub_of(lab, name=f"{DEVICE}.cnf.xml.sgn") -> PhoneConfig:
    signed = TrustList.from_bytes(lab.device_file(name), kind=FileKind.SGN)
    assert verify(signed, certificate=lab.identity("CallManager").certificate).valid
    return PhoneConfig.from_bytes(signed.payload)


def test_a_device_known_by_its_mic_gets_a_stub_naming_the_mic_and_a_file_only_that_mic_opens(lab, mic):
    encrypted_device(lab, mic=mic)
    stub = stub_of(lab)
    assert (stub.encrypted_config, stub.full_config, stub.cert_hash) == (True, False, cert_hash(mic.der))
    assert [server.address for server in stub.capf_list] == [lab.state.publisher.name]
    parsed = EncryptedConfig.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn"))
    assert parsed.filename == f"{DEVICE}.cnf.xml.enc.sgn"
    assert verify_encrypted_config(parsed, lab.identity("CallManager").certificate)
    config = PhoneConfig.from_bytes(decrypt(parsed, mic.private_key))
    assert config.full_config and config.encrypted_config and config.cert_hash == cert_hash(mic.der)
    assert config.tvs_members, "the encrypted file carries the full configuration"


def test_an_lsc_the_lab_issued_takes_precedence_over_the_mic(lab, mic, lsc):
    encrypted_device(lab, mic=mic, lsc=lsc)
    assert stub_of(lab).cert_hash == cert_hash(lsc.der)
    parsed = EncryptedConfig.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn"))
    assert PhoneConfig.from_bytes(decrypt(parsed, lsc.private_key)).encrypted_config


def test_a_device_the_lab_knows_no_certificate_of_gets_an_empty_cert_hash_and_no_encrypted_file(lab):
    encrypted_device(lab, auth="null-string", operation="install")
    stub = stub_of(lab)
    assert stub.encrypted_config and stub.cert_hash is None
    assert stub.capf_auth_mode == 2, "the stub sends the phone to CAPF with the pending operation's mode"
    assert lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn") is None


def test_an_ec_lsc_gets_the_stub_only(lab):
    ec = ec_identity("CP-8861-ec-lsc")
    encrypted_device(lab, lsc=ec)
    assert stub_of(lab).cert_hash == cert_hash(ec.der)
    assert lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn") is None


def test_asking_for_the_plain_configuration_gives_the_minimal_stub_not_the_settings(lab, mic):
    encrypted_device(lab, mic=mic)
    plain = PhoneConfig.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml"))
    assert (plain.full_config, plain.encrypted_config, plain.tvs_members) == (False, True, ())
    assert lab.device_file(f"{DEVICE.lower().replace('sep', 'SEP')}.cnf.xml") == lab.device_file(f"{DEVICE}.cnf.xml")


def test_each_build_uses_a_fresh_key_and_iv(lab, mic):
    encrypted_device(lab, mic=mic)
    first, second = (EncryptedConfig.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn")) for _ in range(2))
    assert first.iv != second.iv and first.encrypted_key != second.encrypted_key


def test_other_devices_keep_their_plain_configuration_and_have_no_encrypted_file(lab, mic):
    encrypted_device(lab, mic=mic)
    DeviceStore.for_lab(lab.path).put(DeviceRecord(OTHER, "CP-8861", encrypted_config=False))
    for name in (OTHER, "SEP00AABBCCDDEE"):
        assert PhoneConfig.from_bytes(lab.device_file(f"{name}.cnf.xml")).full_config
        assert lab.device_file(f"{name}.cnf.xml.enc.sgn") is None
    assert lab.device_file("XMLDefault.cnf.xml.enc.sgn") is None


def test_serving_files_does_not_create_a_device_store(lab):
    assert lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn") is None
    assert lab.device_file(f"{DEVICE}.cnf.xml") is not None
    assert not (lab.path / "devices.sqlite").exists()


def test_the_stub_and_encrypted_file_follow_the_tftp_file_signature_algorithm(lab, mic):
    lab.set_parameter("tftp-file-signature-algorithm", "sha512") if lab.state.release.sha512 else None
    encrypted_device(lab, mic=mic)
    parsed = EncryptedConfig.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml.enc.sgn"))
    stub = TrustList.from_bytes(lab.device_file(f"{DEVICE}.cnf.xml.sgn"), kind=FileKind.SGN)
    assert parsed.signed.header.digest_code == stub.header.digest_code


def test_export_writes_the_encrypted_file_for_encrypted_devices_and_removes_it_for_others(lab, mic, tmp_path):
    encrypted_device(lab, mic=mic)
    out = tmp_path / "export"
    written = lab.export(out, macs=[DEVICE[3:], OTHER[3:]])
    assert f"{DEVICE}.cnf.xml.enc.sgn" in written and f"{OTHER}.cnf.xml.enc.sgn" not in written
    parsed = EncryptedConfig.from_bytes((out / f"{DEVICE}.cnf.xml.enc.sgn").read_bytes())
    assert PhoneConfig.from_bytes(decrypt(parsed, mic.private_key)).full_config
    assert not PhoneConfig.from_bytes((out / f"{DEVICE}.cnf.xml").read_bytes()).full_config
    signed_stub = TrustList.from_bytes((out / f"{DEVICE}.cnf.xml.sgn").read_bytes(), kind=FileKind.SGN)
    assert PhoneConfig.from_bytes(signed_stub.payload).cert_hash == cert_hash(mic.der)

    DeviceStore.for_lab(lab.path).put(DeviceRecord(DEVICE, "CP-8861", encrypted_config=False))
    lab.export(out, macs=[DEVICE[3:]])
    assert not (out / f"{DEVICE}.cnf.xml.enc.sgn").exists()
    assert PhoneConfig.from_bytes((out / f"{DEVICE}.cnf.xml").read_bytes()).full_config
