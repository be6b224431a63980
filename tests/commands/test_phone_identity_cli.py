"""`phone boot --json` reports the phone's MIC; `phone identity` exports it; `--mic-ca` chooses its issuer."""

from __future__ import annotations

import json

import pytest
from conftest import SEED_TIME, rsa_key
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phone.cli import main
from phone.lab.servers.tftp import TftpFileServer
from phone.wire.certs import Profile, make_certificate, simple_subject

MAC = "B000B4BA0AEE"


@pytest.fixture
def tftp():
    with TftpFileServer(None, lambda name, client: None) as port:  # answers "not found" to everything
        yield f"127.0.0.1:{port}"


def boot(capsys, tftp: str, state, *extra: str) -> tuple[int, str, str]:
    code = main(["phone", "boot", "--model", "CP-8861", "--mac", MAC, "--tftp", tftp, "--state", str(state),
                 "--deadline", "5", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def export(capsys, state, out, *extra: str) -> tuple[int, str, str]:
    code = main(["phone", "identity", "--state", str(state), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_boot_json_reports_the_mic_and_keeps_every_other_key(tmp_path, capsys, tftp):
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert {"device", "model", "files", "ctl", "itl", "config", "tvs_requests", "status_messages",
            "device_tl_info", "identity"} <= set(document)
    assert document["identity"]["lsc"] is None
    mic = document["identity"]["mic"]
    assert mic["issuer"] == "CN=Cisco Manufacturing CA SHA2,O=Cisco"
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--json")
    assert json.loads(out)["identity"]["mic"] == mic  # permanent


def test_the_exported_mic_loads_and_its_key_matches(tmp_path, capsys, tftp):
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--json")
    serial = json.loads(out)["identity"]["mic"]["serial"]
    code, _, err = export(capsys, tmp_path / "phone", tmp_path / "out" / "new")
    assert code == 0, err
    certificate = x509.load_pem_x509_certificate((tmp_path / "out" / "new" / "mic.pem").read_bytes())
    key_pem = (tmp_path / "out" / "new" / "mic.key").read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == certificate.public_key().public_bytes(serialization.Encoding.DER, spki))
    assert format(certificate.serial_number, "X") == serial.lstrip("0")
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == f"CP-8861-SEP{MAC}"


def test_export_refuses_to_overwrite_unless_forced(tmp_path, capsys, tftp):
    boot(capsys, tftp, tmp_path / "phone")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mic.pem").write_text("mine")
    code, out, err = export(capsys, tmp_path / "phone", tmp_path / "out")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "--force" in err
    assert (tmp_path / "out" / "mic.pem").read_text() == "mine" and not (tmp_path / "out" / "mic.key").exists()
    code, _, err = export(capsys, tmp_path / "phone", tmp_path / "out", "--force")
    assert code == 0, err
    x509.load_pem_x509_certificate((tmp_path / "out" / "mic.pem").read_bytes())


def test_export_of_a_phone_without_identity_is_one_line_and_exit_2(tmp_path, capsys):
    code, out, err = export(capsys, tmp_path / "never-booted", tmp_path / "out")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "no identity yet" in err
    assert not (tmp_path / "out").exists()


def test_mic_ca_issues_the_mic(tmp_path, capsys, tftp):
    ca = make_certificate(simple_subject(O="Lab", CN="Lab Manufacturing CA"), rsa_key(2048, "cli-ca"),
                          not_before=SEED_TIME, serial=0x77, profile=Profile.CA)
    (tmp_path / "ca.pem").write_bytes(ca.certificate_pem())
    (tmp_path / "ca.key").write_bytes(ca.private_key_pem())
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--json", "--mic-ca", str(tmp_path / "ca.pem"),
                          "--mic-ca-key", str(tmp_path / "ca.key"))
    assert code == 0, err
    assert json.loads(out)["identity"]["mic"]["issuer"] == "CN=Lab Manufacturing CA,O=Lab"
    export(capsys, tmp_path / "phone", tmp_path / "out")
    x509.load_pem_x509_certificate((tmp_path / "out" / "mic.pem").read_bytes()).verify_directly_issued_by(
        ca.certificate)


def test_mic_ca_without_its_key_is_refused(tmp_path, capsys, tftp):
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--mic-ca", str(tmp_path / "ca.pem"))
    assert (code, out) == (2, "") and "--mic-ca and --mic-ca-key go together" in err


def test_a_damaged_identity_stops_the_boot_in_one_line(tmp_path, capsys, tftp):
    boot(capsys, tftp, tmp_path / "phone")
    pem = tmp_path / "phone" / "identity" / "mic.pem"
    pem.write_bytes(pem.read_bytes().replace(b"A", b"B", 1))
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--json")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "identity is damaged" in err
    code, out, err = export(capsys, tmp_path / "phone", tmp_path / "out")
    assert code == 2 and "identity is damaged" in err


def test_a_mic_ca_key_that_is_not_the_certificates_is_refused(tmp_path, capsys, tftp):
    ca = make_certificate(simple_subject(O="Lab", CN="Lab Manufacturing CA"), rsa_key(2048, "cli-ca"),
                          not_before=SEED_TIME, serial=0x77, profile=Profile.CA)
    (tmp_path / "ca.pem").write_bytes(ca.certificate_pem())
    (tmp_path / "other.key").write_bytes(make_certificate(
        simple_subject(CN="x"), rsa_key(2048, "cli-other"), not_before=SEED_TIME, serial=1).private_key_pem())
    code, out, err = boot(capsys, tftp, tmp_path / "phone", "--mic-ca", str(tmp_path / "ca.pem"),
                          "--mic-ca-key", str(tmp_path / "other.key"))
    assert (code, out) == (2, "") and err.count("\n") == 1 and "is not the private key of" in err
    assert not (tmp_path / "phone" / "identity").exists()
