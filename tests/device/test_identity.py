"""The phone's MIC: issued once at first use, permanent in flash, damage reported rather than replaced."""

from __future__ import annotations

import datetime
import os

import pytest
from conftest import SEED_TIME, rsa_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.catalogue import get_model
from phone.device.flash import FlashStore, FlashStoreError
from phone.device.identity import (
    IdentityStore,
    default_mic_ca,
    default_mic_ca_folder,
    identity_json,
    new_mic_ca,
)
from phone.device.phone import Phone
from phone.errors import UsageError
from phone.firmware.machine import Flash
from phone.wire.certs import Identity, Profile, make_certificate, simple_subject


def other_ca() -> Identity:
    return make_certificate(simple_subject(O="Lab", CN="Another Manufacturing CA"), rsa_key(2048, "other-ca"),
                            not_before=SEED_TIME, serial=0x4242, profile=Profile.CA)


def booted_phone(state, **identity_options) -> Phone:
    cluster = MiniCluster(mixed_mode=True)
    phone = Phone(get_model("CP-8861"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore(state), identity=IdentityStore(state), **identity_options)
    phone.boot()
    return phone


def test_the_first_boot_issues_a_mic_named_after_model_and_mac(tmp_path):
    phone = booted_phone(tmp_path)
    certificate = phone.identity.mic.certificate
    subject = {a.oid: a.value for a in certificate.subject}
    assert subject == {NameOID.ORGANIZATION_NAME: "Cisco Systems Inc.", NameOID.ORGANIZATIONAL_UNIT_NAME: "CTG",
                       NameOID.COMMON_NAME: f"CP-8861-SEP{MAC}"}
    assert certificate.issuer.rfc4514_string() == "CN=Cisco Manufacturing CA SHA2,O=Cisco"
    assert certificate.public_key().key_size == 2048
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    ca = default_mic_ca()
    certificate.verify_directly_issued_by(ca.certificate)


def test_the_mic_never_changes_across_boots_erase_and_factory_reset(tmp_path):
    first = booted_phone(tmp_path).identity.mic
    phone = booted_phone(tmp_path)
    assert phone.identity.mic.der == first.der
    phone.erase()
    phone.factory_reset()
    assert FlashStore(tmp_path).load() == Flash()
    FlashStore(tmp_path).wipe()  # the reset of a folder whose flash no longer loads
    assert IdentityStore(tmp_path).load().mic.der == first.der
    assert booted_phone(tmp_path).identity.mic.der == first.der


def test_serial_numbers_are_random(tmp_path):
    serials = {booted_phone(tmp_path / str(n)).identity.mic.certificate.serial_number for n in range(2)}
    assert len(serials) == 2


def test_a_given_manufacturing_ca_issues_the_mic(tmp_path):
    ca = other_ca()
    phone = booted_phone(tmp_path, mic_authority=lambda: ca)
    phone.identity.mic.certificate.verify_directly_issued_by(ca.certificate)
    # Permanent: a later boot with the default CA keeps the MIC the first CA issued.
    assert booted_phone(tmp_path).identity.mic.certificate.issuer == ca.certificate.subject


def test_the_default_ca_is_created_once_under_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = default_mic_ca_folder()
    assert folder == tmp_path / "data" / "phonetrust" / "mic-ca"
    made = []

    def counted_key(bits):
        made.append(bits)
        return rsa_key(bits, "default-ca")

    first = default_mic_ca(new_key=counted_key)
    again = default_mic_ca(new_key=counted_key)
    assert made == [2048] and again.der == first.der
    assert os.stat(folder / "ca.key").st_mode & 0o077 == 0
    # An empty or relative XDG_DATA_HOME is ignored, as the XDG base directory rules say.
    for unusable in ("", "relative/data"):
        monkeypatch.setenv("XDG_DATA_HOME", unusable)
        assert str(default_mic_ca_folder()) == os.path.expanduser("~/.local/share/phonetrust/mic-ca")


def test_a_phone_without_an_identity_store_has_none(tmp_path):
    cluster = MiniCluster(mixed_mode=True)
    phone = Phone(get_model("CP-8861"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore(tmp_path))
    phone.boot()
    assert phone.identity is None and not (tmp_path / "identity").exists()


@pytest.mark.parametrize("damage", [
    lambda folder: (folder / "mic.pem").write_bytes((folder / "mic.pem").read_bytes()[:-40]),
    lambda folder: (folder / "mic.key").unlink(),
    lambda folder: (folder / "identity.json").write_text("{not json"),
    lambda folder: ((folder / "mic.pem").unlink(), (folder / "mic.pem").symlink_to("/dev/zero")),
], ids=["truncated-certificate", "missing-key", "junk-meta", "link-to-dev-zero"])
def test_a_damaged_identity_is_an_error_never_a_new_mic(tmp_path, damage):
    booted_phone(tmp_path)
    damage(tmp_path / "identity")
    left = sorted(path.name for path in (tmp_path / "identity").iterdir())
    with pytest.raises(FlashStoreError) as caught:
        booted_phone(tmp_path)
    assert "\n" not in str(caught.value) and "identity" in str(caught.value)
    assert sorted(path.name for path in (tmp_path / "identity").iterdir()) == left  # nothing re-issued


def test_a_key_that_is_not_the_certificates_is_damage(tmp_path):
    store = IdentityStore(tmp_path)
    mic = booted_phone(tmp_path).identity.mic
    stranger = Identity(mic.certificate, rsa_key(2048, "stranger"))
    (tmp_path / "identity").rename(tmp_path / "old")
    store.save_mic(stranger)
    with pytest.raises(FlashStoreError, match="not the private key"):
        store.load()


def test_saving_never_replaces_an_existing_mic(tmp_path):
    store = IdentityStore(tmp_path)
    mic = booted_phone(tmp_path).identity.mic
    replacement = new_mic_ca(now=datetime.datetime.now(datetime.UTC),
                             new_key=lambda bits: rsa_key(bits, "replacement"))
    assert store.save_mic(replacement) is False
    assert store.load().mic.der == mic.der
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".identity")] == []


def test_identity_json_shape(tmp_path):
    mic = booted_phone(tmp_path).identity
    document = identity_json(mic)
    assert document["lsc"] is None and set(document["mic"]) == {"serial", "issuer"}
    assert document["mic"]["serial"] == format(mic.mic.certificate.serial_number, "X").rjust(
        len(document["mic"]["serial"]), "0")
    assert document["mic"]["serial"] == document["mic"]["serial"].upper() and ":" not in document["mic"]["serial"]
    assert document["mic"]["issuer"] == "CN=Cisco Manufacturing CA SHA2,O=Cisco"


def test_a_phone_never_takes_another_phones_mic(tmp_path):
    booted_phone(tmp_path)
    cluster = MiniCluster(mixed_mode=True)
    with pytest.raises(UsageError, match=f"holds the identity of CP-8861-SEP{MAC}, not of CP-8861-SEPB000B4BA0AEF"):
        Phone(get_model("CP-8861"), "B000B4BA0AEF", fetch=serve_files(cluster.files()),
              ask_tvs=TvsDouble(cluster), store=FlashStore(tmp_path), identity=IdentityStore(tmp_path))


def test_an_interrupted_first_write_leaves_no_identity_and_the_next_boot_issues_one(tmp_path, monkeypatch):
    import phone.device.identity as identity_module

    real_create = identity_module.create_file
    written = []

    def crash_after_first_file(path, data, *, durable):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        real_create(path, data, durable=durable)

    monkeypatch.setattr(identity_module, "create_file", crash_after_first_file)
    with pytest.raises(OSError):
        booted_phone(tmp_path)
    assert IdentityStore(tmp_path).load() is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".identity")] == []
    monkeypatch.undo()
    (tmp_path / ".identity.tmp-killed").mkdir()  # what a SIGKILL mid-write leaves: ignored
    (tmp_path / ".identity.tmp-killed" / "mic.pem").write_text("half")
    assert booted_phone(tmp_path).identity.mic.certificate.subject.rfc4514_string().startswith("CN=CP-8861-SEP")
