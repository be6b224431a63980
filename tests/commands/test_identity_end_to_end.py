"""The phone's own identity end to end, every step a separate `phonetrust` process, as at a shell.

One mixed-mode lab (1024-bit keys) is served by one `lab serve` process for the whole module:
TFTP and TVS on free ports, CAPF and SIP over TLS on ports picked free here. Devices are staged
with `lab device set`, phones boot with `phone boot --json` in their own state folders, and what
the lab recorded is read back with `lab device show --json`, `lab export` and the CallManager's
SDL trace. Covered: an LSC by null string (docs/capf.md), by authentication string, an encrypted
configuration read through its stub (docs/encrypted-config.md), a secure registration presenting
the LSC and one refused for an LSC of another cluster (docs/registration.md), and re-enrolment by
existing LSC across a CAPF certificate regeneration (docs/lab.md).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from serve_support import free_tcp_ports, lab_serve_process

from phone.wire.encconfig import EncryptedConfig, cert_hash, decrypt, stub_cert_hash

# Each step is a new Python process: on a busy shared machine a test takes minutes, not seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
MODEL = "CP-8861"


def phonetrust(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "phone", *argv], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done


@attrs.frozen
class ServedLab:
    folder: Path
    tftp: str
    phones: Path

    def device_set(self, name: str, *options: str) -> None:
        phonetrust("lab", "device", "set", name, "--lab", str(self.folder), "--model", MODEL, *options)

    def device(self, name: str) -> dict:
        return json.loads(phonetrust("lab", "device", "show", name, "--lab", str(self.folder), "--json").stdout)

    def boot(self, mac: str, *options: str, state: Path | None = None) -> dict:
        state = state or self.phones / mac
        done = phonetrust("phone", "boot", "--model", MODEL, "--mac", mac, "--tftp", self.tftp, "--state", str(state),
                          "--http-port", "0", "--https-port", "0", "--json", *options)
        return json.loads(done.stdout)

    def certificate(self, service: str) -> x509.Certificate:
        (pem,) = self.folder.glob(f"certs/*-pub/{service}.pem")
        return x509.load_pem_x509_certificate(pem.read_bytes())

    @property
    def sdl_trace(self) -> str:
        return (self.folder / "callmanager-sdl.txt").read_text()


@contextlib.contextmanager
def serving_lab(folder: Path, phones: Path) -> Iterator[ServedLab]:
    """`lab init` (mixed mode), then `lab serve` in the background until the block ends."""
    phonetrust("lab", "init", str(folder), "--key-size", "1024")
    phonetrust("lab", "ctl", "set-cluster", "mixed-mode", "--lab", str(folder))
    capf, sip, sip_tls = free_tcp_ports(3)
    with lab_serve_process(str(folder), "--capf-port", str(capf), "--sip-port", str(sip), "--sip-tls-port",
                           str(sip_tls), "--sccp-port", "0", "--http-port", "0", "--https-port", "0") as (ports, _):
        yield ServedLab(folder, f"127.0.0.1:{ports['tftp']['port']}", phones)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[ServedLab]:
    root = tmp_path_factory.mktemp("identity")
    with serving_lab(root / "lab", root / "phones") as served:
        yield served


def file_results(report: dict) -> list[tuple[str, str]]:
    return [(entry["name"], entry["result"]) for entry in report["files"]]


def test_null_string_install_gives_the_phone_an_lsc_the_lab_records_and_the_phone_exports(lab, tmp_path) -> None:
    lab.device_set("SEP0011AA00E001", "--capf-operation", "install", "--capf-auth", "null-string",
                   "--capf-key", "rsa1024")
    report = lab.boot("0011AA00E001")
    assert report["capf"]["operation"] == "install" and report["capf"]["result"] == "installed"
    lsc = report["identity"]["lsc"]
    assert lsc["issuer"] == lab.certificate("CAPF").subject.rfc4514_string() and lsc["key"] == "rsa1024"

    page = lab.device("SEP0011AA00E001")
    assert page["capf"]["status"] == "successful" and page["lsc"]["serial"] == lsc["serial"]

    phonetrust("phone", "identity", "--state", str(lab.phones / "0011AA00E001"), "--out", str(tmp_path / "out"))
    exported = x509.load_pem_x509_certificate((tmp_path / "out" / "lsc.pem").read_bytes())
    assert f"{exported.serial_number:032X}" == lsc["serial"]
    assert exported.issuer == lab.certificate("CAPF").subject


def test_an_authentication_string_is_waited_for_refused_when_wrong_and_installs_when_right(lab) -> None:
    def staged() -> None:
        lab.device_set("SEP0011AA00E002", "--capf-operation", "install", "--capf-auth", "auth-string:123456",
                       "--capf-key", "rsa1024")

    staged()
    waiting = lab.boot("0011AA00E002")["capf"]
    assert waiting["result"] == "failed" and "waiting for the authentication string" in waiting["reason"]
    assert lab.device("SEP0011AA00E002")["capf"]["status"] == "pending"  # the phone never called

    wrong = lab.boot("0011AA00E002", "--auth-string", "654321")
    assert wrong["capf"]["result"] == "refused" and wrong["identity"]["lsc"] is None
    assert lab.device("SEP0011AA00E002")["capf"]["status"] == "failed"

    staged()  # a refused operation is over: the administrator sets it again, as on CUCM
    right = lab.boot("0011AA00E002", "--auth-string", "123456")
    assert right["capf"]["result"] == "installed"
    assert lab.device("SEP0011AA00E002")["lsc"]["serial"] == right["identity"]["lsc"]["serial"]


def test_an_encrypted_configuration_is_read_through_its_stub_and_the_phone_registers_with_its_lsc(
        lab, tmp_path) -> None:
    lab.device_set("SEP0011AA00E003", "--capf-operation", "install", "--capf-auth", "null-string",
                   "--capf-key", "rsa1024")
    assert lab.boot("0011AA00E003", "--no-register")["capf"]["result"] == "installed"
    lab.device_set("SEP0011AA00E003", "--security-profile", "encrypted", "--encrypted-config", "on")

    report = lab.boot("0011AA00E003")
    assert file_results(report)[2:] == [("SEP0011AA00E003.cnf.xml.sgn", "unchanged"),
                                        ("SEP0011AA00E003.cnf.xml.enc.sgn", "applied")]
    assert report["config"]["encrypted"] is True
    registration = report["registration"]
    assert (registration["result"], registration["code"], registration["mode"], registration["client_certificate"]) == (
        "registered", "registered-encrypted", "encrypted", "lsc")
    assert "SEP0011AA00E003 registered over TLS" in lab.sdl_trace

    phonetrust("phone", "identity", "--state", str(lab.phones / "0011AA00E003"), "--out", str(tmp_path / "id"))
    lsc = x509.load_pem_x509_certificate((tmp_path / "id" / "lsc.pem").read_bytes())
    lsc_key = load_pem_private_key((tmp_path / "id" / "lsc.key").read_bytes(), None)
    out = tmp_path / "export"
    phonetrust("lab", "export", "--lab", str(lab.folder), "--tftp-root", str(out), "--mac", "0011AA00E003")
    stub = (out / "SEP0011AA00E003.cnf.xml").read_bytes()
    assert stub_cert_hash(stub) == cert_hash(lsc.public_bytes(Encoding.DER))
    plain = decrypt(EncryptedConfig.from_bytes((out / "SEP0011AA00E003.cnf.xml.enc.sgn").read_bytes()), lsc_key)
    assert b"<deviceSecurityMode>3</deviceSecurityMode>" in plain
    assert (out / "SEP0011AA00E003.cnf.xml.sgn").is_file()


def test_a_phone_without_an_lsc_enrols_by_mic_through_the_stubs_capf_list_then_reads_its_configuration(lab) -> None:
    lab.device_set("SEP0011AA00E008", "--security-profile", "encrypted", "--encrypted-config", "on",
                   "--capf-operation", "install", "--capf-auth", "existing-mic", "--capf-key", "rsa1024")
    first = lab.boot("0011AA00E008")
    assert file_results(first)[2] == ("SEP0011AA00E008.cnf.xml.sgn", "rejected")  # the stub names no certificate
    assert first["capf"]["result"] == "installed"  # at the served CAPF port the stub lists, the MIC trusted

    second = lab.boot("0011AA00E008")
    assert file_results(second)[2:] == [("SEP0011AA00E008.cnf.xml.sgn", "unchanged"),
                                        ("SEP0011AA00E008.cnf.xml.enc.sgn", "applied")]
    assert (second["registration"]["code"], second["registration"]["client_certificate"]) == (
        "registered-encrypted", "lsc")


def test_the_first_boot_installs_the_lsc_and_registers_presenting_it(lab) -> None:
    lab.device_set("SEP0011AA00E004", "--security-profile", "authenticated", "--capf-operation", "install",
                   "--capf-auth", "null-string", "--capf-key", "rsa1024")
    report = lab.boot("0011AA00E004")
    assert report["capf"]["result"] == "installed"
    assert (report["registration"]["code"], report["registration"]["client_certificate"]) == (
        "registered-authenticated", "lsc")


def test_an_lsc_from_another_clusters_capf_is_refused_by_the_callmanager(lab, tmp_path) -> None:
    state = tmp_path / "phone"
    with serving_lab(tmp_path / "other", tmp_path / "other-phones") as other:
        other.device_set("SEP0011AA00E005", "--capf-operation", "install", "--capf-auth", "null-string",
                         "--capf-key", "rsa1024")
        assert other.boot("0011AA00E005", "--no-register", state=state)["capf"]["result"] == "installed"
    phonetrust("phone", "erase", "--state", str(state), "--ctl", "--itl")  # moved to this lab's cluster
    lab.device_set("SEP0011AA00E005", "--security-profile", "authenticated")

    report = lab.boot("0011AA00E005", state=state)
    assert file_results(report)[:2] == [("CTLSEP0011AA00E005.tlv", "installed"), ("ITLSEP0011AA00E005.tlv", "installed")]
    registration = report["registration"]
    assert (registration["result"], registration["code"], registration["client_certificate"]) == (
        "failed", "client-untrusted", "lsc")
    assert "UNKNOWN_CA" in registration["reason"].upper()
    refusal = [line for line in lab.sdl_trace.splitlines() if "AuthenticationFailed" in line]
    assert refusal and "does not chain to CallManager-trust" in refusal[-1]


def test_reenrolment_by_existing_lsc_survives_a_capf_regeneration_until_the_old_capf_leaves_capf_trust(lab) -> None:
    for mac in ("0011AA00E006", "0011AA00E007"):
        lab.device_set(f"SEP{mac}", "--capf-operation", "install", "--capf-auth", "null-string", "--capf-key", "rsa1024")
        assert lab.boot(mac, "--no-register")["capf"]["result"] == "installed"
    old = lab.certificate("CAPF")
    phonetrust("lab", "cert", "regenerate", "CAPF", "--lab", str(lab.folder))
    new = lab.certificate("CAPF")
    assert new.subject != old.subject

    lab.device_set("SEP0011AA00E006", "--capf-operation", "install", "--capf-auth", "existing-lsc")
    upgraded = lab.boot("0011AA00E006", "--no-register")
    assert upgraded["capf"]["result"] == "installed", upgraded["capf"]
    assert upgraded["identity"]["lsc"]["issuer"] == new.subject.rfc4514_string()

    old_cn = old.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    phonetrust("lab", "cert", "delete", "CAPF-trust", old_cn, "--lab", str(lab.folder))
    lab.device_set("SEP0011AA00E007", "--capf-operation", "install", "--capf-auth", "existing-lsc")
    refused = lab.boot("0011AA00E007", "--no-register")
    assert refused["capf"]["result"] == "refused", refused["capf"]
    assert refused["identity"]["lsc"]["issuer"] == old.subject.rfc4514_string()  # kept as it was
    assert lab.device("SEP0011AA00E007")["capf"]["status"] == "failed"

