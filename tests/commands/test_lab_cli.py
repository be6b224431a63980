"""`phonetrust lab …`: round trips through the command line, CUCM's texts, bad input."""

from __future__ import annotations

import json

import pytest
from cryptography.x509.oid import NameOID
from lab_support import lab_factory
from serve_support import lab_serve_process

from phone.cli import main
from phone.wire.config import PhoneConfig
from phone.lab import Lab
from phone.device.tftp import TftpFetcher
from phone.wire.tlv import TrustList

NOW = ["--now", "2015-03-06T19:45:13+01:00"]
RESTART = ("Please Restart the TFTP and Cisco CallManager services on all nodes in the cluster that run these "
           "services")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def lab(tmp_path):
    return lab_factory()(tmp_path)


def test_init_creates_a_lab_folder(tmp_path, capsys):
    code, out, _ = run(capsys, "lab", "init", str(tmp_path / "l"), "--nodes", "1", "--release", "12.5",
                       "--key-size", "1024", *NOW, "--ou", "Voice")
    assert code == 0
    assert out.splitlines()[0].startswith(f"Lab created in {tmp_path / 'l'}: CUCM 12.5, 1 node(s)")
    assert "cucm-1251-a-pub  192.0.2.11  publisher: CallManager, TVS, CAPF, ITLRecovery" in out
    lab = Lab.open(tmp_path / "l")
    assert lab.itl().records[0].subject.startswith("CN=ITLRECOVERY_cucm-1251-a-pub;OU=Voice")
    assert lab.itl().header.timestamp == 1425667513


def test_seed_procedures_round_trip(lab, tmp_path, capsys):
    where = ["--lab", str(lab.path), *NOW]
    code, out, _ = run(capsys, "lab", "show", "ctl", *where)
    assert code == 0 and out.startswith("Length of CTL file: 0\nCTL File not found . Please run CTLClient plugin")

    code, out, _ = run(capsys, "lab", "ctl", "set-cluster", "mixed-mode", *where)
    assert (code, out) == (0, f"Moving Cluster to Mixed Mode\nCluster set to Mixed Mode\n{RESTART}\n")
    code, out, _ = run(capsys, "lab", "show", "ctl", *where)
    assert "Length of CTL file: 4947" in out and "This etoken was used to sign the CTL file." in out

    for name in ("SAST-ADN0054f509", "SAST-ADN008580ef"):
        code, out, _ = run(capsys, "lab", "etoken", "new", name, "--out", str(tmp_path / f"{name}.cer"), *where)
        assert code == 0 and f"certificate written to {tmp_path / name}.cer" in out
        code, out, _ = run(capsys, "lab", "cert", "upload", "Phone-SAST-trust", str(tmp_path / f"{name}.cer"),
                           *where)
        assert out == "Success: Certificate Uploaded\n"

    code, out, err = run(capsys, "lab", "ctl", "client", "--token", "SAST-ADN0054f509", "--token",
                         "SAST-ADN008580ef", *where)
    assert code == 1 and out == ""
    assert err.startswith("phonetrust: The Security Token you have inserted does not exist in the CTL File")
    assert err.count("\n") == 1

    code, out, _ = run(capsys, "lab", "ctl", "delete", *where)
    assert (code, out) == (0, "files: found = 1, deleted = 1\n")
    code, out, _ = run(capsys, "lab", "ctl", "client", "--token", "SAST-ADN0054f509", "--token",
                       "SAST-ADN008580ef", *where)
    assert code == 0 and out.startswith("No CTL File exists on the server")
    code, out, _ = run(capsys, "lab", "show", "ctl", *where)
    assert 'cn="SAST-ADN008580ef ";ou=IPCBU' in out and "This etoken was not used to sign the CTL file." in out

    code, out, _ = run(capsys, "lab", "ctl", "update", *where)
    assert (code, out) == (0, f"Updating CTL file\nCTL file Updated\n{RESTART}\n")
    code, out, _ = run(capsys, "lab", "cert", "regenerate", "CallManager", "--key-size", "2048", *where)
    assert code == 0 and out.startswith("Successfully Regenerated Certificate for CallManager.")
    run(capsys, "lab", "ctl", "update", *where)
    code, out, _ = run(capsys, "lab", "status", "--json", *where)
    status = json.loads(out)
    assert status["ctl"]["signer_serial"] == status["nodes"][0]["certificates"]["CallManager"]["serial"]
    assert status["ctl"]["kind"] == "tokenless" and len(status["uploads"]) == 2


def test_ctl_reset_localkey_prints_cucm_style_lines_and_the_ctl_kind_is_reset(lab, tmp_path, capsys):
    where = ["--lab", str(lab.path), *NOW]
    code, out, err = run(capsys, "lab", "ctl", "reset", "localkey", *where)
    assert (code, out) == (1, "") and err.startswith("phonetrust: The cluster is not in Mixed Mode")
    run(capsys, "lab", "ctl", "set-cluster", "mixed-mode", *where)
    code, out, _ = run(capsys, "lab", "ctl", "reset", "localkey", *where)
    assert code == 0 and out.splitlines() == [
        "Generating the reset CTL file signed with the CallManager key of the publisher.....",
        "The reset CTL file was generated successfully",
        *(f"Successfully transferred reset CTL to node {node.name}" for node in lab.nodes), RESTART]
    code, out, _ = run(capsys, "lab", "status", "--json", *where)
    assert json.loads(out)["ctl"]["kind"] == "reset"


def test_other_operations_print_their_texts(lab, tmp_path, capsys):
    where = ["--lab", str(lab.path)]
    code, out, _ = run(capsys, "lab", "itl", "reset", "localkey", *where)
    assert code == 0 and "The reset ITL file was generated successfully" in out
    assert run(capsys, "lab", "tftp", "restart", *where)[0] == 0
    code, out, _ = run(capsys, "lab", "rollback", "on", *where)
    assert code == 0 and out.startswith("Prepare Cluster for Rollback to pre-8.0 = True")
    code, out, _ = run(capsys, "lab", "show", "itl", "--node", "1", *where)
    assert "Length of ITL file:" in out and "ITL Record #:3" in out and "ITL Record #:4" not in out
    code, out, _ = run(capsys, "lab", "status", *where)
    assert "rollback on" in out and "ClusterSecurityMode 0 (Non-Secure Mode)" in out
    code, out, _ = run(capsys, "lab", "export", "--tftp-root", str(tmp_path / "out"), "--mac", "B000B4BA0AEE",
                       "--tvs-host", "10.0.0.5", *where)
    assert code == 0 and "no CTLFile.tlv" in out
    members = PhoneConfig.from_bytes((tmp_path / "out" / "SEPB000B4BA0AEE.cnf.xml").read_bytes()).tvs_members
    assert [(m.address, m.port) for m in members] == [("10.0.0.5", 2445), ("10.0.0.5", 2446)]
    assert TrustList.from_bytes((tmp_path / "out" / "ITLFile.tlv").read_bytes()).header.filename == "ITLFile.tlv"


def test_lab_defaults_to_the_current_folder(lab, capsys, monkeypatch):
    monkeypatch.chdir(lab.path)
    code, out, _ = run(capsys, "lab", "ctl", "set-cluster", "mixed-mode")
    assert code == 0 and Lab.open(lab.path).state.security_mode == 1


@pytest.mark.parametrize("argv, code, message", [
    (["lab", "ctl", "update"], 1, "phonetrust: The cluster is not in Mixed Mode"),
    (["lab", "ctl", "set-cluster", "non-secure-mode"], 1, "phonetrust: The cluster is already in Non-Secure Mode"),
    (["lab", "param", "set", "tftp-file-signature-algorithm", "sha512"], 1, "phonetrust: CUCM 10.5 signs TFTP"),
    (["lab", "param", "set", "tftp-file-signature-algorithm", "md5"], 2, "phonetrust: TFTP File Signature"),
    (["lab", "cert", "regenerate", "CAPF", "--node", "1"], 1, "phonetrust: the CAPF certificate"),
    (["lab", "cert", "regenerate", "CallManager", "--node", "7"], 2, "phonetrust: no node '7' in this lab"),
    (["lab", "ctl", "client", "--token", "ghost"], 2, "phonetrust: no eToken 'ghost'"),
    (["lab", "show", "itl", "--now", "yesterday"], 2, "phonetrust: --now 'yesterday' is not an ISO 8601 time"),
    (["lab", "etoken", "new", "a/b", "--out", "x.pem"], 2, "phonetrust: eToken name 'a/b'"),
])
def test_refusals_and_bad_input_are_one_line(lab, capsys, monkeypatch, argv, code, message):
    monkeypatch.chdir(lab.path)
    got, out, err = run(capsys, *argv)
    assert (got, out) == (code, "")
    assert err.startswith(message) and err.count("\n") == 1


def test_a_folder_that_is_not_a_lab_is_one_line(tmp_path, capsys):
    code, out, err = run(capsys, "lab", "show", "ctl", "--lab", str(tmp_path))
    assert code == 2 and err == (f"phonetrust: {tmp_path}: not a lab folder (no lab.json); make one with "
                                 "'phonetrust lab init DIR'\n")
    code, _, err = run(capsys, "lab", "init", str(tmp_path), "--nodes", "0")
    assert code == 2 and "1 to 8 nodes" in err
    code, _, err = run(capsys, "lab", "init", str(tmp_path / "new"), "--first-ip", "10.1.1")
    assert code == 2 and err == "phonetrust: '10.1.1' is not an IPv4 address\n"
    assert not (tmp_path / "new").exists()


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "rollback", "maybe"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_help_says_there_are_no_prompts(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    assert "(y/n)" in capsys.readouterr().out


def test_serve_prints_ports_serves_files_and_stops_on_sigterm(lab):
    Lab.open(lab.path).set_cluster_mixed_mode()
    with lab_serve_process(str(lab.path), "--capf-port", "0", "--http-port", "0", "--https-port", "0",
                           "--sip-port", "0", "--sip-tls-port", "0", "--sccp-port", "0") as (ports, process):
        assert [entry["node"] for entry in ports["tvs"]] == ["cucm-1051-a-pub", "cucm-1051-a-sub1"]
        fetcher = TftpFetcher("127.0.0.1", port=ports["tftp"]["port"], timeout=1.0, deadline=10.0)
        assert fetcher.fetch("CTLSEPB000B4BA0AEE.tlv").data == lab.ctl_bytes()
        config = PhoneConfig.from_bytes(fetcher.fetch("SEPB000B4BA0AEE.cnf.xml").data)
        assert [m.port for m in config.tvs_members] == [entry["port"] for entry in ports["tvs"]]
        # An operation from another process is served at the next request.
        Lab.open(lab.path).ctl_delete()
        assert not fetcher.fetch("CTLSEPB000B4BA0AEE.tlv").found
    assert "lab servers stopped" in process.stderr.read()


def test_serving_on_every_address_asks_for_the_advertise_flag_by_its_name(lab, capsys):
    code, out, err = run(capsys, "lab", "serve", "--lab", str(lab.path), "--host", "0.0.0.0")
    assert (code, out) == (2, "")
    assert err.startswith("phonetrust: --host 0.0.0.0 listens on every address: give --advertise ADDR")
    assert "(advertise)" not in err and err.count("\n") == 1


# -- phones' pages and every certificate -----------------------------------------------------------

def test_device_set_then_show_json_prints_the_page_as_design_says(lab, capsys):
    where = ["--lab", str(lab.path)]
    code, out, _ = run(capsys, "lab", "device", "set", "SEP001122334455", "--model", "CP-8861",
                       "--security-profile", "authenticated", "--encrypted-config", "on", "--capf-operation",
                       "install", "--capf-auth", "existing-mic", "--capf-key", "ec256", *where)
    assert code == 0 and out.startswith("Update Successful: SEP001122334455\n")
    assert "Certificate Operation Status: Install pending" in out
    code, out, _ = run(capsys, "lab", "device", "show", "SEP001122334455", "--json", *where)
    assert code == 0 and json.loads(out) == {
        "name": "SEP001122334455", "model": "CP-8861", "security_profile": "authenticated", "encrypted_config": True,
        "capf": {"operation": "install", "status": "pending", "auth": "existing-mic", "key": "ec256"}, "lsc": None}
    code, out, _ = run(capsys, "lab", "device", "list", "--json", *where)
    assert code == 0 and [device["name"] for device in json.loads(out)] == ["SEP001122334455"]


@pytest.mark.parametrize("argv, message", [
    (["device", "set", "SEP0011", "--model", "CP-8861"], "is not SEP followed by 12 upper-case hex digits"),
    (["device", "set", "SEP001122334455"], "is a new device: give its --model"),
    (["device", "set", "SEP001122334455", "--model", "CP-8861", "--capf-auth", "auth-string:1"], "4 to 10 digits"),
    (["device", "set", "SEP001122334455", "--model", "CP-8861", "--capf-key", "rsa3"], "invalid choice: 'rsa3'"),
    (["cert", "delete", "CAPF-trust", "nobody"], "CAPF-trust holds no certificate with CN 'nobody'"),
    (["cert", "export", "tomcat"], "the following arguments are required: --out"),
])
def test_bad_device_and_certificate_arguments_are_one_line_and_exit_2(lab, capsys, argv, message):
    try:
        code = main(["lab", *argv, "--lab", str(lab.path)])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cert_export_and_regenerate_callmanager_ecdsa_on_the_command_line(tmp_path, capsys):
    lab = lab_factory()(tmp_path, release="12.5")
    where = ["--lab", str(lab.path)]
    code, out, _ = run(capsys, "lab", "cert", "export", "CallManager-ECDSA", "--node", "1", "--out",
                       str(tmp_path / "ec.pem"), *where)
    assert code == 0 and f"CN={lab.nodes[1].name}-EC" in out
    before = (tmp_path / "ec.pem").read_bytes()
    code, out, _ = run(capsys, "lab", "cert", "regenerate", "CallManager-ECDSA", "--node", "1", *where)
    assert code == 0 and out.startswith("Successfully Regenerated Certificate for CallManager-ECDSA.")
    run(capsys, "lab", "cert", "export", "CallManager-ECDSA", "--node", "1", "--out", str(tmp_path / "ec.pem"), *where)
    assert (tmp_path / "ec.pem").read_bytes() != before


def test_status_names_what_each_trust_store_holds(lab, capsys):
    where = ["--lab", str(lab.path)]
    capf = lab.identity("CAPF").certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    code, out, _ = run(capsys, "lab", "status", *where)
    assert code == 0 and f"CAPF-trust holds: {capf}, Cisco Manufacturing CA SHA2" in out.splitlines()
    assert "Phone-SAST-trust holds: nothing" in out.splitlines()
    code, out, _ = run(capsys, "lab", "status", "--json", *where)
    assert json.loads(out)["trust"]["CallManager-trust"] == [capf, "Cisco Manufacturing CA SHA2"]
