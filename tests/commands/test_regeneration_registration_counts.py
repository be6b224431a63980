"""`scenario run --json` and `fleet run --json` count registered phones and failed registrations per model
for the certificate regeneration scenarios; the fleet refuses the ones it cannot replay."""

from __future__ import annotations

import json

from phone.cli import main

WITHOUT_CTL_UPDATE = "regenerate-callmanager-without-ctl-update"
TOGETHER = "regenerate-callmanager-and-tvs"


def _counts(models: dict) -> dict[str, tuple[int, int]]:
    return {name: (counts["registered"], counts["registration_failed"]) for name, counts in models.items()}


def test_scenario_run_counts_the_secure_phones_that_stop_registering_until_the_ctl_is_updated(capsys):
    assert main(["scenario", "run", WITHOUT_CTL_UPDATE, "--key-size", "1024", "--json"]) == 0
    steps = {step["name"]: _counts(step["models"]) for step in json.loads(capsys.readouterr().out)["steps"]}
    everyone = {"CP-8861": (1, 0), "CP-7975": (1, 0), "CP-7841": (1, 0), "CP-7940": (1, 0)}
    assert steps["mixed-mode"] == everyone
    assert steps["regenerate-without-ctl-update"] == {"CP-8861": (0, 1), "CP-7975": (0, 1), "CP-7841": (1, 0),
                                                      "CP-7940": (1, 0)}
    assert steps["ctl-update"] == everyone


def test_fleet_run_with_the_local_engine_counts_registrations_as_scenario_run_does(capsys):
    phones = ["--phones", "CP-8861=2,CP-7940=1", "--key-size", "1024", "--json"]
    assert main(["scenario", "run", TOGETHER, *phones]) == 0
    rehearsed = {step["name"]: _counts(step["models"]) for step in json.loads(capsys.readouterr().out)["steps"]}
    assert main(["fleet", "run", TOGETHER, "--engine", "local", "--workers", "1", *phones]) == 0
    document = json.loads(capsys.readouterr().out)
    fleet = {step["name"]: _counts(step["by_model"]) for step in document["steps"]}
    assert fleet == rehearsed
    # Refused trust lists or not, non-secure phones register over TCP at every step.
    assert all(counts == {"CP-8861": (2, 0), "CP-7940": (1, 0)} for counts in fleet.values())
    counted = document["by_model"]
    assert document["counted_step"] == "regenerate-both"
    assert counted["CP-8861"]["erase_needed"] == 2 and counted["CP-8861"]["registered"] == 2


def test_fleet_run_refuses_in_one_line_a_scenario_whose_device_pages_it_cannot_replay(capsys):
    code = main(["fleet", "run", WITHOUT_CTL_UPDATE, "--phones", "CP-7841=1", "--engine", "local",
                 "--workers", "1", "--key-size", "1024", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    message = captured.err.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "device pages" in message and "phonetrust scenario run" in message
