"""``phonetrust tvs`` round trips: add -> serve -> query, list/delete, one-line errors (DESIGN.md)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from tvs_support import DEVICE, identity

from phone.cli import main
from phone.wire.names import serial_to_bytes
from phone.lab.servers.tvs import running_tvs_server


@pytest.fixture
def files(tmp_path):
    tvs_cert, tvs_key = identity("tvs-cucm-pub").write(tmp_path, "tvs")
    pub_pem, _ = identity("cucm-1051-a-pub").write(tmp_path, "pub")
    sast_der, _ = identity("SAST-ADN008580ef").write(tmp_path, "sast", der=True)
    return {"db": tmp_path / "tvs.sqlite3", "tvs_cert": tvs_cert, "tvs_key": tvs_key,
            "pub": pub_pem, "sast": sast_der}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_delete_round_trip(capsys, files):
    code, out, _ = run(capsys, "tvs", "add", "--db", files["db"], "--role", "SAST", "--role", "CCM+TFTP",
                       files["pub"])
    assert code == 0 and out.startswith("added #1 CN=cucm-1051-a-pub;OU=TAC;O=Cisco;C=PL")
    code, out, _ = run(capsys, "tvs", "add", "--db", files["db"], "--role", "0", "--ttl", "600", files["sast"])
    assert code == 0
    code, out, _ = run(capsys, "tvs", "list", "--db", files["db"], "--json")
    listed = json.loads(out)
    assert [(row["id"], row["roles"], row["role_names"], row["ttl"]) for row in listed] == [
        (1, [0, 2], ["SAST", "CCM+TFTP"], 86400), (2, [0], ["SAST"], 600)]
    assert set(listed[0]) == {"id", "subject", "issuer", "serial", "roles", "role_names", "ttl", "sha256"}
    code, out, _ = run(capsys, "tvs", "list", "--db", files["db"])
    assert "roles   SAST, CCM+TFTP  ttl 86400" in out
    serial = serial_to_bytes(identity("SAST-ADN008580ef").certificate.serial_number).hex(":")
    code, out, _ = run(capsys, "tvs", "delete", "--db", files["db"], "--serial", serial,
                       "--issuer", "cn=SAST-ADN008580ef,ou=TAC,o=Cisco,c=PL")
    assert code == 0 and out.startswith("deleted #2 CN=SAST-ADN008580ef")
    code, out, err = run(capsys, "tvs", "delete", "--db", files["db"], "--id", "2")
    assert (code, err) == (1, "phonetrust: no certificate matches\n")
    assert run(capsys, "tvs", "delete", "--db", files["db"], "--id", "1")[0] == 0
    assert run(capsys, "tvs", "list", "--db", files["db"])[1] == "no certificates\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["tvs", "add", "--db", "{db}", "--role", "PHONE", "{pub}"], "unknown role 'PHONE'"),
    (["tvs", "add", "--db", "{db}", "--role", "SAST", "{missing}"], "No such file or directory"),
    (["tvs", "add", "--db", "{db}", "--role", "SAST", "{tvs_key}"], "not a usable PEM or DER X.509 certificate"),
    (["tvs", "list", "--db", "{missing}"], "no TVS database at"),
    (["tvs", "delete", "--db", "{db}", "--serial", "xyz"], "serial 'xyz' is not hexadecimal"),
    (["tvs", "query", "127.0.0.1:1", "--device", "SEP123", "--server-cert", "{tvs_cert}", "--cert", "{pub}"],
     "device name 'SEP123'"),
    (["tvs", "query", "127.0.0.1:1", "--device", DEVICE, "--server-cert", "{tvs_cert}", "--subject", "CN=x"],
     "give --cert, or all of --subject, --issuer and --serial"),
    (["tvs", "query", "127.0.0.1:99999", "--device", DEVICE, "--server-cert", "{tvs_cert}", "--cert", "{pub}"],
     "bad port"),
])
def test_bad_input_is_one_line_on_stderr(capsys, files, argv, message):
    names = {**files, "missing": files["db"].parent / "missing.pem"}
    code, out, err = run(capsys, *[arg.format(**names) for arg in argv])
    assert code != 0
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_query_reports_status_roles_ttl_and_subject(capsys, files):
    assert run(capsys, "tvs", "add", "--db", files["db"], "--role", "SAST", "--role", "TFTP", files["pub"])[0] == 0
    with running_tvs_server(files["tvs_cert"], files["tvs_key"], db=files["db"]) as server:
        code, out, _ = run(capsys, "tvs", "query", server.address, "--device", DEVICE,
                           "--server-cert", files["tvs_cert"], "--cert", files["pub"], "--type", "3",
                           "--tls", "1.0")
        assert code == 0
        assert "status:  0 (trusted)" in out and "roles:   SAST, TFTP" in out and "ttl:     86400" in out
        assert "subject: CN=cucm-1051-a-pub;OU=TAC;O=Cisco;C=PL (returned)" in out
        assert "(TLSv1)" in out
        code, out, _ = run(capsys, "tvs", "query", server.address, "--device", DEVICE, "--server-cert",
                           files["tvs_cert"], "--subject", "CN=x", "--issuer", "CN=y", "--serial", "0102",
                           "--json")
        report = json.loads(out)
        assert code == 1
        assert (report["status"], report["roles"], report["type"]) == (1, None, 3)
        code, out, err = run(capsys, "tvs", "query", server.address, "--device", DEVICE,
                             "--server-cert", files["pub"], "--cert", files["pub"])
        assert code == 2
        assert err.startswith("phonetrust: no answer from TVS") and "untrusted_server" in err


def test_serve_add_query_round_trip_as_separate_processes(files):
    """`tvs add`, then `tvs serve` in its own process, queried by `tvs query`; SIGTERM ends it cleanly."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "phone"]
    subprocess.run([*command, "tvs", "add", "--db", str(files["db"]), "--role", "SAST", "--role", "CCM+TFTP",
                    str(files["pub"])], check=True, capture_output=True, env=env, timeout=30)
    trace = files["db"].parent / "trace.log"
    server = subprocess.Popen([*command, "tvs", "serve", "--db", str(files["db"]), "--cert",
                               str(files["tvs_cert"]), "--key", str(files["tvs_key"]), "--port", "0",
                               "--trace", str(trace)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stderr.readline()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1)
        query = subprocess.run([*command, "tvs", "query", f"127.0.0.1:{port}", "--device", DEVICE,
                                "--server-cert", str(files["tvs_cert"]), "--cert", str(files["pub"]),
                                "--json"], capture_output=True, text=True, env=env, timeout=30)
        assert query.returncode == 0, query.stderr
        report = json.loads(query.stdout)
        assert (report["status"], report["roles"], report["ttl"]) == (0, [0, 2], 86400)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
        rest = server.stderr.read()
        server.stderr.close()
    assert "Traceback" not in rest
    assert "CertificateDBCache::getCertificateInformation - Found entry {rolecount : 2}" in trace.read_text()


@pytest.mark.parametrize("server", ["a..b", "a..b:2445", "127.0.0.1:²", "127.0.0.1:" + "9" * 5000])
def test_query_of_a_server_that_cannot_be_named_is_one_line_and_exit_2(capsys, files, server):
    code, out, err = run(capsys, "tvs", "query", server, "--device", DEVICE, "--server-cert", files["tvs_cert"],
                         "--cert", files["pub"], "--timeout", "0.5")
    assert code == 2 and out == ""
    assert err.startswith("phonetrust: bad ") and err.count("\n") == 1 and len(err) < 300


@pytest.mark.parametrize("tftp", ["a..b", "a..b:69", "127.0.0.1:²", "127.0.0.1:" + "9" * 5000])
def test_phone_boot_from_a_tftp_server_that_cannot_be_named_is_one_line_and_exit_2(capsys, tmp_path, tftp):
    code, out, err = run(capsys, "phone", "boot", "--model", "CP-8861", "--mac", "B000B4BA0AEE",
                         "--tftp", tftp, "--state", tmp_path / "state")
    assert code == 2
    assert err.startswith("phonetrust: bad ") and err.count("\n") == 1 and len(err) < 300
