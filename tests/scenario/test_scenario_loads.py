"""Scenario phones boot as their firmware load behaves, and phones the lab's CUCM release does not
support are reported "unsupported", not booted (docs/models.md "Firmware rows", "CUCM releases")."""

from __future__ import annotations

import pytest

from phone.catalogue import load_catalogue
from phone.fleet.phones import FleetPhone
from phone.scenario import find_scenario
from phone.scenario.definition import load_scenario
from phone.scenario.report import render_text, to_json
from phone.scenario.runner import ScenarioRun

OLD_8861, NEW_8861 = "02C15C000000", "02C15C000001"

DROPPED_7970 = """
name = "dropped-7970"
title = "A CUCM 12.5 cluster with a 7970 in it"
[labs.a]
release = "12.5"
nodes = 1
[phones]
CP-7970 = 1
CP-7975 = 1
[[steps]]
name = "boot"
[steps.expect.CP-7970]
outcome = "{outcome}"
[steps.expect.CP-7975]
outcome = "accepted"
"""


def test_an_8861_on_10_3_refuses_sha512_files_and_one_on_14_2_takes_them(tmp_path):
    phones = [FleetPhone(0, "CP-8861", OLD_8861, "sip88xx.10-3-1-20"), FleetPhone(1, "CP-8861", NEW_8861)]
    result = ScenarioRun(find_scenario("sha512-signing"), tmp_path, phones=phones, key_size=1024).run()
    sha512 = next(step for step in result.steps if step.step.name == "sha512")
    by_mac = {phone.spec.mac: phone for phone in sha512.phones}
    assert by_mac[OLD_8861].verdict.outcome.value == "rejected"
    assert set(by_mac[OLD_8861].verdict.codes) == {"digest-unsupported"}
    assert by_mac[NEW_8861].verdict.outcome.value == "accepted" and not by_mac[NEW_8861].mismatches
    # the scenario expects every 8861 to take SHA-512 files: the old load is what differs
    assert by_mac[OLD_8861].mismatches and not result.passed


def dropped(tmp_path, outcome: str):
    path = tmp_path / "dropped.toml"
    path.write_text(DROPPED_7970.format(outcome=outcome), encoding="utf-8")
    return ScenarioRun(load_scenario(path), tmp_path / "work", key_size=1024).run()


def test_a_7970_on_a_12_5_lab_is_unsupported_and_not_booted(tmp_path):
    result = dropped(tmp_path, "unsupported")
    assert result.passed
    (step,) = result.steps
    phone = next(phone for phone in step.phones if phone.spec.model.name == "CP-7970")
    assert phone.report is None and phone.console == ()
    assert phone.verdict.reason == "CP-7970 is not supported on CUCM 12.5: the last release that supports it is 11.5"
    models = to_json(result, load_catalogue())["steps"][0]["models"]
    assert models["CP-7970"]["unsupported"] == 1 and models["CP-7970"]["accepted"] == 0
    assert models["CP-7975"]["unsupported"] == 0 and models["CP-7975"]["accepted"] == 1
    assert "unsupported" in render_text(result, load_catalogue())


def test_expecting_a_dropped_model_to_work_is_a_mismatch_that_says_why(tmp_path):
    result = dropped(tmp_path, "accepted")
    assert not result.passed
    (mismatch,) = next(p for p in result.steps[0].phones if p.spec.model.name == "CP-7970").mismatches
    assert mismatch == ("outcome: expected accepted, got unsupported (CP-7970 is not supported on CUCM 12.5: "
                        "the last release that supports it is 11.5)")


@pytest.mark.parametrize(("load", "sbd"), [("SCCP45.8-5-4-1S", False), ("SCCP45.9-4-2SR3-1S", True)])
def test_a_scenario_phone_is_sbd_or_legacy_by_its_load(tmp_path, load, sbd):
    run = ScenarioRun(find_scenario("nonsecure-to-mixed"), tmp_path, phones=[FleetPhone(0, "CP-7965", OLD_8861, load)])
    (spec,) = run.specs
    assert spec.model.security_by_default is sbd and spec.model.active_load == load
