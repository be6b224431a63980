"""Phones of a fleet boot as their firmware load behaves, and a CUCM release that does not support a
model on its load reports it "unsupported" (docs/models.md "Firmware rows" and "CUCM releases")."""

from __future__ import annotations

import sqlite3

import pytest

from phone.fleet import Fleet, parse_phones
from phone.fleet.erase_list import erase_rows
from phone.fleet.per_phone import phone_lines
from phone.fleet.targets import ScenarioTarget
from phone.fleet.testbed import REGENERATE_CALLMANAGER, serving_testbed
from phone.scenario import find_scenario

#: A 7965 on 8.5(4), before the first Java 79xx load with an ITL (the catalogue's 9.0(1)), beside
#: one on the default 9.4(2)SR3 load.
OLD_AND_NEW_7965 = "CP-7965@SCCP45.8-5-4-1S=2,CP-7965=2"


def test_a_java_79xx_on_a_load_without_itl_needs_a_hand_erase_after_a_callmanager_regeneration(tmp_path):
    with serving_testbed(bits=1024) as testbed, Fleet(parse_phones(OLD_AND_NEW_7965), workers=0,
                                                      db=tmp_path / "r.sqlite") as fleet:
        for step, change in REGENERATE_CALLMANAGER:
            if change:
                testbed.apply(change)
            fleet.boot_all(step, tftp=testbed.tftp)
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    lines = {line.load: line for line in phone_lines(connection, "regenerate-callmanager")}
    old, new = lines["SCCP45.8-5-4-1S"], lines[""]
    assert (old.outcome, old.erase_needed) == ("rejected", True)
    assert (new.outcome, new.erase_needed) == ("accepted", False)
    assert [row[2] for row in erase_rows(phone_lines(connection, "regenerate-callmanager"))] == [
        "SCCP45.8-5-4-1S", "SCCP45.8-5-4-1S"]


def test_an_8861_below_12_0_refuses_sha512_signatures_through_a_fleet_scenario(tmp_path):
    phones = parse_phones("CP-8861@sip88xx.10-3-1-20=1,CP-8861=1")
    with ScenarioTarget(find_scenario("sha512-signing"), tmp_path / "work", key_size=1024) as target, \
            Fleet(phones, workers=0) as fleet:
        for name, tftp in target.steps(fleet):
            fleet.boot_all(name, tftp=tftp, cucm_release=target.cucm_release())
        summary = fleet.summary(target.counted)
    sha512 = next(step for step in summary.steps if step.name == "sha512").by_model["CP-8861"]
    assert (sha512["accepted"], sha512["rejected"], sha512["erase_needed"], sha512["phones"]) == (1, 1, 0, 2)
    assert summary.by_model["CP-8861"]["accepted"] == 2  # back to SHA-1: both take the CTL again


def test_a_release_that_dropped_a_model_reports_it_unsupported_and_boots_it_not(tmp_path):
    with serving_testbed(bits=1024) as testbed, Fleet(parse_phones("CP-7970=2,CP-7975=1"), workers=0,
                                                      db=tmp_path / "r.sqlite") as fleet:
        step = fleet.boot_all("first-boot", tftp=testbed.tftp, cucm_release="12.5")
        summary = fleet.summary()
    assert step.by_model["CP-7970"]["unsupported"] == 2 and step.by_model["CP-7970"]["accepted"] == 0
    assert step.by_model["CP-7975"]["unsupported"] == 0 and step.by_model["CP-7975"]["accepted"] == 1
    assert summary.to_json()["by_model"]["CP-7970"]["unsupported"] == 2
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    (downloads,) = connection.execute("SELECT SUM(downloads) FROM boots WHERE model = 'CP-7970'").fetchone()
    assert downloads == 0
    line = next(line for line in phone_lines(connection, None) if line.model == "CP-7970")
    assert line.outcome == "unsupported" and not line.erase_needed
    assert line.reason == ("cucm-unsupported: CP-7970 is not supported on CUCM 12.5: the last release that "
                           "supports it is 11.5")


def test_a_release_that_supports_the_model_boots_it(tmp_path):
    with serving_testbed(bits=1024) as testbed, Fleet(parse_phones("CP-7970=1"), workers=0) as fleet:
        step = fleet.boot_all("first-boot", tftp=testbed.tftp, cucm_release="11.5")
    assert step.by_model["CP-7970"]["unsupported"] == 0 and step.by_model["CP-7970"]["accepted"] == 1


def test_a_load_of_another_models_family_is_refused_when_the_phones_are_read():
    with pytest.raises(Exception, match=r"bad phone count 'CP-8861@sip78xx.12-1-1-12=1': load 'sip78xx.12-1-1-12' "
                                        r"is of load family sip78xx; CP-8861 runs sip88xx loads"):
        parse_phones("CP-8861@sip78xx.12-1-1-12=1")


def test_fleet_run_with_an_export_configures_the_labs_devices_and_boots_each_row_on_its_load(tmp_path, capsys):
    from phone.cli import main
    from phone.lab.devices import DeviceStore

    export = tmp_path / "export.csv"
    export.write_text(
        "Device Name,Device Type,Phone Load Name,Device Security Profile,Certificate Operation,Authentication Mode\r\n"
        "SEP00112233AA01,Cisco 7965,SCCP45.8-5-4-1S,Cisco 7965 - Standard SCCP Non-Secure Profile,,\r\n"
        "SEP00112233AA02,Cisco 7965,,Cisco 7965 - Standard SCCP Encrypted Profile,Install/Upgrade,By Null String\r\n",
        encoding="utf-8")
    erase_list = tmp_path / "erase.csv"
    code = main(["fleet", "run", "regenerate-callmanager", "--inventory", str(export), "--work", str(tmp_path / "w"),
                 "--key-size", "1024", "--workers", "0", "--erase-list", str(erase_list), "--json"])
    assert code == 0, capsys.readouterr().err
    stored = {record.name: record for record in DeviceStore.for_lab(tmp_path / "w" / "lab-a").list()}
    # The export's CAPF operation went in pending; the fleet's phones then enrolled with the lab's CAPF.
    assert stored["SEP00112233AA02"].security_profile == "encrypted"
    assert stored["SEP00112233AA02"].capf.operation == "install"
    assert stored["SEP00112233AA02"].capf.status in ("pending", "successful")
    assert stored["SEP00112233AA01"].security_profile == "non-secure"
    # the 8.5(4) phone has no ITL: the regenerated CallManager leaves it needing a hand erase
    assert erase_list.read_text().splitlines()[1].startswith("SEP00112233AA01,CP-7965,SCCP45.8-5-4-1S,")


def test_an_export_row_whose_load_another_model_runs_is_one_line_naming_the_device(tmp_path, capsys):
    from phone.cli import main

    export = tmp_path / "export.csv"
    export.write_text("device,model,load\r\nSEP00112233AA01,CP-8861,sip78xx.12-1-1-12\r\n", encoding="utf-8")
    code = main(["fleet", "run", "regenerate-callmanager", "--inventory", str(export), "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "SEP00112233AA01: load 'sip78xx.12-1-1-12' is of load family sip78xx; CP-8861 runs sip88xx" in err


def test_fleet_run_against_a_server_of_a_given_release_counts_the_phones_it_dropped(capsys):
    import json

    from phone.cli import main

    with serving_testbed(bits=1024) as testbed:
        host, port = testbed.tftp
        code = main(["fleet", "run", "--tftp", f"{host}:{port}", "--phones", "CP-7970=2,CP-7975=1",
                     "--cucm-release", "12.5", "--workers", "0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    by_model = json.loads(out)["by_model"]
    assert (by_model["CP-7970"]["unsupported"], by_model["CP-7975"]["unsupported"]) == (2, 0)
    assert by_model["CP-7975"]["accepted"] == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["fleet", "run", "regenerate-callmanager", "--cucm-release", "12.5"], "--cucm-release is for --tftp"),
    (["fleet", "run", "--tftp", "127.0.0.1:9", "--phones", "CP-7970=1", "--cucm-release", "latest"],
     "CUCM release 'latest'"),
])
def test_a_misplaced_or_unreadable_cucm_release_is_one_line(argv, message, capsys):
    from phone.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
