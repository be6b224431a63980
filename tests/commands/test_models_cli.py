"""``phonetrust models list|show``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from phone.cli import main
from phone.catalogue import ENV_VAR

LAB_MODEL = """
[models.CP-LAB]
aliases = ["lab"]
description = "lab phone"
supports_ctl = true
supports_itl = false
supports_tvs = false
digests = ["sha1"]
rsa_key_sizes = [1024]
tls_versions = ["1.0"]
checksum = "md5"
log_dialect = "java79xx"
"""


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_a_table_with_one_row_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["NAME", "CTL", "ITL/SBD", "TVS", "DIGESTS", "TLS", "CHECKSUM", "DIALECT"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert len(rows) == 56
    assert rows["CP-7975"] == ["yes", "yes", "yes", "sha1", "1.0", "md5", "java79xx"]
    assert rows["CP-7940"][:3] == ["yes", "no", "no"]
    assert rows["CP-8861"] == ["yes", "yes", "yes", "sha1,sha256,sha512", "1.0,1.1,1.2", "sha1", "enterprise"]
    assert rows["Jabber-CSF"][1:3] == ["no", "no"]


def test_list_json_gives_every_model_with_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--json")
    models = json.loads(out)
    assert code == 0 and len(models) == 56
    by_name = {model["name"]: model for model in models}
    assert by_name["CP-7965"]["checksum"] == "md5"
    assert by_name["CP-7965"]["tls_versions"] == ["1.0"]
    assert by_name["CP-6901"]["supports_itl"] is False
    assert set(by_name["CP-8861"]["settings"]) >= {"first_ctl_with_itl", "max_sast_records"}


def test_show_accepts_an_alias_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "7965", "--json")
    model = json.loads(out)
    assert code == 0
    assert model["name"] == "CP-7965" and model["family"] == "7900"
    assert model["messages"]["update_failed"] == "Trust List Update Failed"
    assert model["settings"]["max_sast_records"] is None
    assert model["sources"]


def test_show_prints_every_field_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "CP-DX80")
    assert code == 0
    assert out.startswith("CP-DX80: Cisco DX80\n")
    fields = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:19]}
    assert fields["aliases"] == "DX80"
    assert fields["tls_versions"] == "1.0, 1.1, 1.2"
    assert fields["supports_itl"] == "yes" and fields["checksum"] == "sha1"
    assert "Trust List update failed, verification failure" in out
    assert "first_ctl_with_itl" in out and "sources:" in out


def test_show_prints_the_last_cucm_release_of_a_deprecated_phone(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "CP-7970")
    assert code == 0
    assert re.search(r"^  cucm_max_release +11\.5$", out, re.MULTILINE)
    assert re.search(r"^  cucm_releases +up to 11\.5$", out, re.MULTILINE)
    code, out, _ = run(capsys, "show", "CP-7975")
    assert re.search(r"^  cucm_max_release +-$", out, re.MULTILINE)
    assert re.search(r"^  cucm_releases +any$", out, re.MULTILINE)


def test_show_json_says_which_cucm_releases_support_the_load(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "CP-9861", "--json")
    assert code == 0 and json.loads(out)["cucm_releases"] == "14 and later"


def test_show_unknown_model_fails_with_one_line_listing_known_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "CP-0000")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("phonetrust: unknown phone model 'CP-0000'; known: CP-3905, CP-6901, ")


def test_models_dir_adds_user_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lab.toml").write_text(LAB_MODEL)
    code, out, _ = run(capsys, "show", "lab", "--models-dir", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["origin"] == str(tmp_path / "lab.toml")
    code, out, _ = run(capsys, "list", "--models-dir", str(tmp_path))
    assert code == 0 and any(line.startswith("CP-LAB ") for line in out.splitlines())


def test_broken_user_model_file_fails_with_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lab.toml").write_text(LAB_MODEL.replace("checksum = \"md5\"", "checksum = \"crc\""))
    code, out, err = run(capsys, "list", "--models-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err == (f"phonetrust: {tmp_path / 'lab.toml'}: [models.CP-LAB] checksum: "
                   "expected one of 'md5', 'sha1', got 'crc' (a string)\n")


def test_show_at_a_load_prints_the_load_and_what_its_firmware_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "8861@sip88xx.10-3-1-20")
    assert code == 0
    assert "  load: sip88xx.10-3-1-20 (version 10.3(1)), default load sip88xx.14-2-1-0101-26" in out
    assert ("    ec_certificates  no; default load: yes; source: Cisco IP Phone 8800 Series Release Notes "
            "for Firmware Release 12.5(1)SR2") in out
    assert "  ec_certificates" in out and "note:" not in out


def test_show_at_a_newer_load_prints_the_note(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "CP-7821@sip78xx.15-0-1-1")
    assert code == 0
    assert "none: this load behaves as the default load" in out
    assert "  note: newer than the last known release 14.2(1): using the highest row" in out


def test_show_at_a_load_json_gains_load_and_firmware_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "7821@sip78xx.12-1-1-12", "--json")
    assert code == 0
    fields = json.loads(out)
    assert fields["load"] == {"text": "sip78xx.12-1-1-12", "family": "sip78xx", "version": "12.1(1)"}
    by_field = {change["field"]: change for change in fields["firmware_changes"]}
    assert set(by_field) == {"tls_versions", "ec_certificates"}
    change = by_field["tls_versions"]
    assert (change["field"], change["value"], change["default_value"]) == (
        "tls_versions", ["1.0", "1.1", "1.2"], ["1.2"])
    assert "TLS Client Min Version" in change["source"]
    assert fields["tls_versions"] == ["1.0", "1.1", "1.2"]
    assert fields["firmware_notes"] == []


def test_show_without_a_load_json_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "show", "8861", "--json")
    fields = json.loads(out)
    assert "load" not in fields and "firmware_changes" not in fields and "firmware_rows" not in fields


@pytest.mark.parametrize(("target", "expected"), [
    ("8861@nonsense", "phonetrust: load 'nonsense': expected <family>.<version>"),
    ("8861@sip78xx.14-2-1-0101-26", "phonetrust: load 'sip78xx.14-2-1-0101-26' is of load family sip78xx; "
                                    "CP-8861 runs sip88xx loads"),
])
def test_show_a_bad_load_fails_with_one_line(capsys: pytest.CaptureFixture[str], target: str, expected: str) -> None:
    code, out, err = run(capsys, "show", target)
    assert code != 0 and out == ""
    assert err.startswith(expected) and err.count("\n") == 1
