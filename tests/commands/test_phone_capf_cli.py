"""`phone boot` runs the CAPF operation its configuration asks for (`--auth-string` for mode 1),
reports it in `"capf"` and `"identity"."lsc"`, and `phone identity` exports the LSC."""

from __future__ import annotations

import json

import pytest
from capf_scripted_server import CapfScript, capf_server
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from minicluster import MAC, MiniCluster

from phone.cli import main
from phone.lab.servers.tftp import TftpFileServer
from phone.wire.config import TvsMember, render_config
from phone.wire.signing import build_signed_file

DEVICE = f"SEP{MAC}"
SGN = f"{DEVICE}.cnf.xml.sgn"


def files_asking_for_capf(cluster: MiniCluster, port: int, mode: int) -> dict[str, bytes]:
    config = render_config([TvsMember("127.0.0.1", cluster.tvs_port)], device_name=DEVICE,
                           capf_servers=("127.0.0.1",), capf_port=port, capf_auth_mode=mode)
    files = cluster.files()
    files[SGN] = build_signed_file(config, cluster.callmanager, filename=SGN, timestamp=1_700_000_000).data
    return files


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def boot_with_capf(tmp_path, capsys, script: CapfScript, mode: int, *extra: str) -> tuple[int, str, str]:
    cluster = MiniCluster()
    script.issuer = cluster.capf
    (tmp_path / "server").mkdir(exist_ok=True)
    with capf_server(tmp_path / "server", script, cluster.capf) as peer:
        files = files_asking_for_capf(cluster, peer.port, mode)
        with TftpFileServer(None, lambda name, client: files.get(name)) as tftp:
            return run(capsys, "phone", "boot", "--model", "CP-8861", "--mac", MAC, "--tftp", f"127.0.0.1:{tftp}",
                       "--state", str(tmp_path / "phone"), "--deadline", "10", *extra)


def test_an_authentication_string_install_is_reported_and_the_lsc_exported(tmp_path, capsys):
    script = CapfScript(key_size=1024, password="13579")
    code, out, err = boot_with_capf(tmp_path, capsys, script, 1, "--json", "--auth-string", "13579")
    assert code == 0, err
    document = json.loads(out)
    assert (document["capf"]["operation"], document["capf"]["result"]) == ("install", "installed")
    lsc = document["identity"]["lsc"]
    assert lsc["key"] == "rsa1024" and "CN=CAPF-" in lsc["issuer"]
    code, out, err = run(capsys, "phone", "identity", "--state", str(tmp_path / "phone"), "--out", str(tmp_path / "out"))
    assert code == 0, err
    certificate = x509.load_pem_x509_certificate((tmp_path / "out" / "lsc.pem").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "out" / "lsc.key").read_bytes(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert (certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
            == key.public_key().public_bytes(serialization.Encoding.DER, spki))
    assert f"{certificate.serial_number:X}" == lsc["serial"].lstrip("0")
    assert oct((tmp_path / "out" / "lsc.key").stat().st_mode & 0o777) == "0o600"


def test_mode_1_without_the_string_reports_a_waiting_failure_in_text(tmp_path, capsys):
    script = CapfScript(key_size=1024, password="13579")
    code, out, err = boot_with_capf(tmp_path, capsys, script, 1)
    assert code == 0, err
    assert "CAPF - -: failed (waiting for the authentication string" in out
    assert script.seen == []


@pytest.mark.parametrize("typed", ["12a4", "123", "12345678901", "１２３４"])
def test_an_auth_string_that_is_not_4_to_10_digits_is_one_line_and_exit_2(tmp_path, capsys, typed):
    code, out, err = run(capsys, "phone", "boot", "--model", "CP-8861", "--mac", MAC, "--tftp", "127.0.0.1:9",
                         "--state", str(tmp_path / "phone"), "--auth-string", typed)
    assert code == 2
    assert err.count("\n") == 1 and "--auth-string must be 4 to 10 digits" in err
