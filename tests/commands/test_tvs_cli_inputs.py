"""`phonetrust tvs`: inputs checked before serving, keys and certificates refused in plain words, --model/--mac."""

from __future__ import annotations

import pytest
from conftest import node_identity
from tvs_support import DEVICE, identity

from phone.cli import main
from phone.lab.servers.tvs import running_tvs_server
from phone.wire.signing import build_trust_list, make_record
from phone.wire.tlv import Role


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def server_files(tmp_path, capsys):
    cert, key = identity("tvs-cucm-pub").write(tmp_path, "tvs")
    other_cert, other_key = identity("someone-else").write(tmp_path, "other")
    db = tmp_path / "tvs.sqlite3"
    assert run(capsys, "tvs", "add", "--db", db, "--role", "SAST", other_cert)[0] == 0
    return {"db": db, "cert": cert, "key": key, "other_key": other_key, "other_cert": other_cert}


def test_serve_refuses_a_ctl_that_is_not_a_trust_list_in_one_line(tmp_path, capsys, server_files):
    photo = tmp_path / "photo.tlv"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    code, out, err = run(capsys, "tvs", "serve", "--db", server_files["db"], "--cert", server_files["cert"],
                         "--key", server_files["key"], "--port", "0", "--ctl", photo)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"phonetrust: {photo}: not a valid CTL file: at byte 0")


def test_serve_refuses_an_itl_given_as_ctl(tmp_path, capsys, server_files):
    signer = node_identity("cucm-pub")
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(build_trust_list([make_record(signer.certificate, Role.SAST, dns_name="cucm-pub")], signer,
                                     filename="ITLFile.tlv", timestamp=1425667513).data)
    code, _, err = run(capsys, "tvs", "serve", "--db", server_files["db"], "--cert", server_files["cert"],
                       "--key", server_files["key"], "--port", "0", "--ctl", itl)
    assert code == 2
    assert err == f"phonetrust: --ctl {itl}: an ITL file, not a CTL\n"


def test_a_key_that_is_not_the_certificates_is_refused_in_words(capsys, server_files):
    code, _, err = run(capsys, "tvs", "serve", "--db", server_files["db"], "--cert", server_files["cert"],
                       "--key", server_files["other_key"], "--port", "0")
    assert code == 2
    assert err == (f"phonetrust: {server_files['other_key']} is not the private key of {server_files['cert']} "
                   "(the certificate holds a different public key)\n")


@pytest.mark.parametrize("content", [b"\x30\x03\x02\x01\x05",
                                     b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                     bytes(range(256))])
def test_a_broken_certificate_is_described_without_the_parsers_internals(tmp_path, capsys, server_files, content):
    broken = tmp_path / "broken.pem"
    broken.write_bytes(content)
    code, _, err = run(capsys, "tvs", "add", "--db", server_files["db"], "--role", "SAST", broken)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"phonetrust: {broken}: not a usable PEM or DER X.509 certificate (")
    for internal in ("ParseError", "kind:", "UnexpectedTag", "location", "asn1", "ASN.1", "InvalidData"):
        assert internal not in err


def test_a_broken_key_is_described_without_the_parsers_internals(tmp_path, capsys, server_files):
    broken = tmp_path / "broken.key"
    broken.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    code, _, err = run(capsys, "tvs", "serve", "--db", server_files["db"], "--cert", server_files["cert"],
                       "--key", broken, "--port", "0")
    assert code == 2
    assert err == (f"phonetrust: {broken}: not an unencrypted PEM or DER private key "
                   "(damaged, encrypted, or of an unsupported type)\n")


def test_query_names_the_phone_with_model_and_mac_like_every_other_command(capsys, server_files):
    with running_tvs_server(server_files["cert"], server_files["key"], db=server_files["db"]) as server:
        by_device = run(capsys, "tvs", "query", server.address, "--device", DEVICE, "--server-cert",
                        server_files["cert"], "--cert", server_files["other_cert"], "--json")
        model, _, mac = DEVICE.partition("-SEP")
        by_model = run(capsys, "tvs", "query", server.address, "--model", model.lower(), "--mac",
                       ":".join(mac[i:i + 2] for i in range(0, 12, 2)), "--server-cert", server_files["cert"],
                       "--cert", server_files["other_cert"], "--json")
    assert by_model[0] == by_device[0] == 0
    assert by_model[1].replace("1002", "1001") == by_device[1]


@pytest.mark.parametrize("argv, message", [
    (["--model", "CP-8861"], "name the asking phone: --model and --mac (or --device CP-<model>-SEP<MAC>)"),
    (["--model", "CP-8861", "--mac", "B000B4BA0AEE", "--device", DEVICE], "give either --model and --mac, or --device"),
    (["--model", "CP-8861", "--mac", "nope"], "not a MAC address: 'nope'"),
])
def test_query_refuses_an_incomplete_phone_name_in_one_line(capsys, server_files, argv, message):
    code, _, err = run(capsys, "tvs", "query", "127.0.0.1:1", *argv, "--server-cert", server_files["cert"],
                       "--cert", server_files["other_cert"])
    assert code == 2 and err.count("\n") == 1 and message in err
