"""`scenario run --json` and `fleet run --json` count registered phones and failed registrations per model
for the certificate regeneration scenarios; the fleet refuses secure profiles its phones cannot rehearse."""

from __future__ import annotations

import json

from phone.cli import main

SCENARIO = "regenerate-callmanager-without-ctl-update"


def _counts(models: dict) -> dict[str, tuple[int, int]]:
    return {name: (counts["registered"], counts["registration_failed"]) for name, counts in models.items()}


def test_scenario_run_counts_the_secure_phones_that_stop_registering_until_the_ctl_is_updated(capsys):
    assert main(["scenario", "run", SCENARIO, "--key-size", "1024", "--json"]) == 0
    steps = {step["name"]: _counts(step["models"]) for step in json.loads(capsys.readouterr().out)["steps"]}
    everyone = {"CP-8861": (1, 0), "CP-7975": (1, 0), "CP-7841": (1, 0), "CP-7940": (1, 0)}
    assert steps["mixed-mode"] == everyone
    assert steps["regenerate-without-ctl-update"] == {"CP-8861": (0, 1), "CP-7975": (0, 1), "CP-7841": (1, 0),
                                                      "CP-7940": (1, 0)}
    assert steps["ctl-update"] == everyone


def test_fleet_run_with_the_local_engine_counts_registrations_per_step_and_model(capsys):
    code = main(["fleet", "run", SCENARIO, "--phones", "CP-7841=2,CP-7940=1", "--engine", "local",
                 "--workers", "1", "--key-size", "1024", "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    for step in document["steps"]:
        assert _counts(step["by_model"]) == {"CP-7841": (2, 0), "CP-7940": (1, 0)}, step["name"]
    counted = document["by_model"]
    assert document["counted_step"] == "ctl-update"
    assert counted["CP-7940"]["rejected"] == 1 and counted["CP-7940"]["registered"] == 1


def test_fleet_run_refuses_in_one_line_a_secure_profile_its_phones_cannot_register_with(capsys):
    code = main(["fleet", "run", SCENARIO, "--phones", "CP-8861=1,CP-7841=1", "--engine", "local",
                 "--workers", "1", "--key-size", "1024", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    message = captured.err.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "CP-8861 phones the authenticated security profile" in message
    assert f"phonetrust scenario run {SCENARIO}" in message
