"""`phone boot --model MODEL@LOAD` boots as that load behaves; `--cucm-release` reports a phone that
release does not support instead of booting it (docs/phone.md, docs/models.md "CUCM releases")."""

from __future__ import annotations

import json

import pytest

from phone.cli import main
from phone.scenario.rehearsal import Rehearsal


def boot_json(capsys, *argv: str) -> dict:
    code = main(["phone", "boot", "--mac", "02C15C0000AA", "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def sha512_cluster(tmp_path):
    with Rehearsal.create(tmp_path / "lab", release="12.5", key_size=1024) as cluster:
        cluster.run("ctl set-cluster mixed-mode", "param set tftp-file-signature-algorithm sha512", "ctl update")
        yield cluster


@pytest.mark.parametrize(("model", "ctl", "load"), [
    ("CP-8861@sip88xx.10-3-1-20", "rejected", "sip88xx.10-3-1-20"),
    ("CP-8861", "installed", None),
])
def test_the_load_decides_whether_a_sha512_signed_ctl_is_taken(sha512_cluster, tmp_path, capsys, model, ctl, load):
    report = boot_json(capsys, "--model", model, "--tftp", f"127.0.0.1:{sha512_cluster.tftp_port}",
                       "--state", str(tmp_path / "phone"))
    (entry,) = [entry for entry in report["files"] if entry["name"].startswith("CTL") and entry["result"] != "not_found"]
    assert entry["result"] == ctl
    assert (report["model"], report["load"], report["unsupported"]) == ("CP-8861", load, None)


def test_an_unsupported_phone_is_reported_and_not_booted(tmp_path, capsys):
    # A TFTP address nothing listens on: the phone must not even ask.
    report = boot_json(capsys, "--model", "CP-7970", "--tftp", "127.0.0.1:9", "--state", str(tmp_path / "phone"),
                       "--cucm-release", "12.5")
    assert report["files"] == [] and report["model"] == "CP-7970"
    assert report["unsupported"] == {
        "cucm_release": "12.5", "reason": "CP-7970 is not supported on CUCM 12.5: the last release that supports it is 11.5"}
    assert not (tmp_path / "phone").exists() or not any((tmp_path / "phone").iterdir())


def test_a_bad_cucm_release_or_a_foreign_load_is_one_line(tmp_path, capsys):
    for extra, message in ((["--model", "CP-7970", "--cucm-release", "twelve"], "CUCM release 'twelve'"),
                           (["--model", "CP-8861@sip78xx.12-1-1-12"], "CP-8861 runs sip88xx loads")):
        code = main(["phone", "boot", "--mac", "02C15C0000AA", "--tftp", "127.0.0.1:9",
                     "--state", str(tmp_path / "phone"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err
