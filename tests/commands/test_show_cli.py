"""`phonetrust show` as DESIGN.md specifies it: CUCM text, JSON fields, exit 0 / 1 / 2."""

from __future__ import annotations

import json

import pytest
from conftest import etoken_identity, node_identity
from seed_files import seed_ctl

from phone.cli import main
from phone.wire.signing import NameStyle, build_signed_file, build_trust_list, make_record
from phone.wire.tlv import Role

JSON_KEYS = {"length", "md5", "sha1", "version", "header_length", "signer", "digest", "signature_length", "filename",
             "timestamp", "records", "signature_valid", "signed_by"}
RECORD_KEYS = {"record_length", "dns_name", "subject", "role", "role_name", "issuer", "serial", "public_key_length",
               "signature_length", "certificate_length", "certificate_sha1", "ip_address"}


@pytest.fixture
def ctl_file(tmp_path):
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(seed_ctl().data)
    return path


def run(capsys, *argv):
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_prints_cucm_show_ctl_layout(capsys, ctl_file):
    code, out, err = run(capsys, "show", ctl_file)
    ctl = seed_ctl()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[:5] == ["The checksum value of the CTL file:", f"{ctl.md5}(MD5)", f"{ctl.sha1}(SHA1)", "",
                         "Length of CTL file: 4947"]
    for expected in [
        "Parse CTL File",
        "Version:        1.2",
        "HeaderLength:   336 (BYTES)",
        "BYTEPOS TAG             LENGTH  VALUE",
        "------- ---             ------  -----",
        "3       SIGNERID        2       149",
        "4       SIGNERNAME      62      CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL",
        "5       SERIALNUMBER    16      70:CA:F6:4E:09:07:51:B9:DF:22:F4:9F:75:4F:C5:BB",
        "7       SIGNATUREINFO   2       15",
        "8       DIGESTALGORTITHM        1",
        "9       SIGNATUREALGOINFO       2       8",
        "10      SIGNATUREALGORTITHM     1",
        "11      SIGNATUREMODULUS        1",
        "12      SIGNATURE       128",
        "14      FILENAME        12",
        "15      TIMESTAMP       4",
        "CTL Record #:1",
        "1       RECORDLENGTH    2       1156",
        "2       DNSNAME         16      cucm-1051-a-pub",
        "4       FUNCTION        2       System Administrator Security Token",
        "4       FUNCTION        2       CCM+TFTP",
        "4       FUNCTION        2       CAPF",
        "7       PUBLICKEY       140",
        "8       SIGNATURE       128",
        "10      IPADDRESS       4",
        "This etoken was used to sign the CTL file.",
        "CTL Record #:4",
        "1       RECORDLENGTH    2       1161",
    ]:
        assert expected in lines, expected
    sha1 = " ".join(ctl.records[0].certificate_sha1[i:i + 2] for i in range(0, 40, 2))
    assert f"9       CERTIFICATE     694     {sha1} (SHA1 Hash HEX)" in lines
    assert lines[-1] == "The CTL file was verified successfully."


def test_show_prints_the_signature_as_cucm_does(capsys, ctl_file):
    _, out, _ = run(capsys, "show", ctl_file)
    lines = out.splitlines()
    start = lines.index("12      SIGNATURE       128") + 1
    signature = seed_ctl().header.signature
    assert lines[start] == "".join(f"{b:x}".ljust(4) for b in signature[:8]).rstrip()
    assert len(lines[start:lines.index("14      FILENAME        12")]) == 16


def test_show_json_has_the_documented_fields(capsys, ctl_file):
    code, out, _ = run(capsys, "show", ctl_file, "--json")
    document = json.loads(out)
    assert code == 0
    assert JSON_KEYS <= document.keys()
    assert document["version"] == "1.2" and document["header_length"] == 336 and document["length"] == 4947
    assert document["signer"] == {"name": "CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL",
                                  "serial": "70CAF64E090751B9DF22F49F754FC5BB",
                                  "issuer": "CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"}
    assert document["digest"] == "sha1" and document["signature_length"] == 128
    assert document["filename"] == "CTLFile.tlv" and document["timestamp"] == 1425667513
    assert document["signature_valid"] is True and document["signed_by"] == 0
    assert [r["record_length"] for r in document["records"]] == [1156, 1156, 1138, 1161]
    first = document["records"][0]
    assert RECORD_KEYS <= first.keys()
    assert first["role"] == 0 and first["role_name"] == "SAST" and first["ip_address"] == "10.48.47.155"
    assert first["certificate_sha1"] == first["certificate_sha1"].upper() and len(first["certificate_sha1"]) == 40
    assert first["public_key_length"] == 140 and first["certificate_length"] == 694


def test_show_exits_1_when_the_signature_is_not_valid(capsys, tmp_path):
    data = bytearray(seed_ctl().data)
    data[-10] ^= 0x01
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(bytes(data))
    code, out, _ = run(capsys, "show", path, "--json")
    document = json.loads(out)
    assert code == 1
    assert document["signature_valid"] is False and document["signed_by"] is None
    code, out, _ = run(capsys, "show", path)
    assert code == 1 and "The CTL file could not be verified" in out.splitlines()[-1]


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, b"garbage that is not a trust list"])
def test_show_exits_2_with_one_line_for_invalid_files(capsys, tmp_path, content):
    path = tmp_path / "bad.tlv"
    path.write_bytes(content)
    code, out, err = run(capsys, "show", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"phonetrust: {path}: not a valid CTL, ITL or .sgn file: at byte ")


def test_show_exits_2_for_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "show", tmp_path / "absent.tlv")
    assert code == 2 and err.count("\n") == 1 and "absent.tlv" in err


def test_show_verifies_a_signed_config_with_cert(capsys, tmp_path):
    signer = node_identity("cucm-1051-a-pub")
    cert = tmp_path / "CallManager.pem"
    cert.write_bytes(signer.certificate_pem())
    signed = tmp_path / "SEP0.cnf.xml.sgn"
    signed.write_bytes(build_signed_file(b"<device/>", signer, filename="SEP0.cnf.xml", timestamp=1).data)
    code, out, _ = run(capsys, "show", signed, "--json")
    document = json.loads(out)
    assert code == 1 and document["signature_valid"] is None and document["payload_length"] == 9
    code, out, _ = run(capsys, "show", signed, "--json", "--cert", cert)
    assert code == 0 and json.loads(out)["signature_valid"] is True
    other = tmp_path / "other.pem"
    other.write_bytes(node_identity("cucm-other-1024").certificate_pem())
    code, _, _ = run(capsys, "show", signed, "--cert", other)
    assert code == 1


def test_show_names_which_etoken_signed(capsys, tmp_path):
    token_a = etoken_identity("SAST-ADN0054f509 ", 0x3CF9270000000AFA2DA45)
    token_b = etoken_identity()
    records = [make_record(t.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False)
               for t in (token_a, token_b)]
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(build_trust_list(records, token_b, filename="CTLFile.tlv", timestamp=1,
                                      signer_name_style=NameStyle.CTL_CLIENT).data)
    code, out, _ = run(capsys, "show", path)
    lines = out.splitlines()
    assert code == 0
    assert "This etoken was not used to sign the CTL file." in lines
    assert lines.index("This etoken was not used to sign the CTL file.") < lines.index(
        "This etoken was used to sign the CTL file.")
    assert '3       SUBJECTNAME     56      cn="SAST-ADN008580ef ";ou=IPCBU;o="Cisco Systems, Inc."' in lines
    assert "2       DNSNAME         1" in lines


def test_bad_arguments_give_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["show"])
    assert caught.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_show_prints_the_signed_timestamp_as_cucm_prints_last_modified(capsys, ctl_file):
    import os

    os.utime(ctl_file, (2_000_000_000, 2_000_000_000))  # a copy's mtime is not when the file was signed
    code, out, _ = run(capsys, "show", ctl_file)
    assert code == 0
    assert "The CTL File was last modified on Fri Mar 06 18:45:13 UTC 2015" in out.splitlines()


def test_show_two_files_diffs_them_record_by_record(capsys, ctl_file, tmp_path):
    pub = node_identity("cucm-1051-a-pub", serial=0x70CAF64E090751B9DF22F49F754FC5BB)
    newer = tmp_path / "new-CTLFile.tlv"
    newer.write_bytes(build_trust_list(
        [make_record(pub.certificate, Role.SAST, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155")],
        pub, filename="CTLFile.tlv", timestamp=1425667600).data)
    code, out, err = run(capsys, "show", ctl_file, newer)
    assert (code, err) == (1, "")
    assert "header timestamp: 2015-03-06 18:45:13 UTC -> 2015-03-06 18:46:40 UTC" in out
    assert sum(line.startswith("- record ") for line in out.splitlines()) == 3
    assert out.endswith("1 record(s) unchanged\n")
    code, out, _ = run(capsys, "show", ctl_file, newer, "--json")
    document = json.loads(out)
    assert code == 1
    assert set(document) == {"old", "new", "same", "header", "added", "removed", "changed", "unchanged"}
    assert document["header"] == [{"field": "timestamp", "old": 1425667513, "new": 1425667600}]
    assert [record["role_name"] for record in document["removed"]] == ["CCM+TFTP", "CAPF", "CCM+TFTP"]
    assert set(document["removed"][0]) == RECORD_KEYS
    assert (document["same"], document["added"], document["changed"], document["unchanged"]) == (False, [], [], 1)


def test_show_two_files_exits_0_when_they_are_the_same_and_2_when_one_is_not_a_trust_list(capsys, ctl_file,
                                                                                          tmp_path):
    copy = tmp_path / "copy.tlv"
    copy.write_bytes(ctl_file.read_bytes())
    code, out, _ = run(capsys, "show", ctl_file, copy)
    assert code == 0 and "no differences" in out
    photo = tmp_path / "photo.tlv"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    code, out, err = run(capsys, "show", ctl_file, photo, "--json")
    assert (code, out) == (2, "") and err.startswith(f"phonetrust: {photo}: not a valid") and err.count("\n") == 1
