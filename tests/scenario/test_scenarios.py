"""Scenarios: every bundled one runs and holds; files are checked; results print as table, JSON, JUnit."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from phone.cli import main
from phone.console.diff import diff
from phone.console.parse import parse
from phone.catalogue import load_catalogue
from phone.scenario import ScenarioError, list_scenarios, load_scenario
from phone.scenario.report import render_text, to_json
from phone.scenario.runner import ScenarioRun

BUNDLED = [scenario.name for scenario in list_scenarios()]
SEED_PROCEDURES = {"nonsecure-to-mixed", "etoken-to-tokenless", "tokenless-to-etoken", "regenerate-callmanager"}
FAILURE_VARIANTS = {"regenerate-callmanager-tvs-down", "move-to-another-cluster-without-upload",
                    "regenerate-callmanager-and-tvs", "rollback-itl", "sha512-signing", "move-to-another-cluster"}
IDENTITY = {"lsc-by-authentication-string", "encrypted-configuration", "regenerate-capf-with-lsc-phones",
            "regenerate-callmanager-with-secure-phones"}


def test_the_seed_procedures_failure_variants_and_identity_scenarios_are_bundled():
    assert SEED_PROCEDURES | FAILURE_VARIANTS | IDENTITY <= set(BUNDLED)


GOLDEN = Path(__file__).resolve().parents[2] / "logs" / "golden"


def golden_differences(result, folder: Path) -> list[str]:
    """Where a run's consoles differ from the golden ones, events compared after masking."""
    differences = []
    for number, step in enumerate(result.steps, start=1):
        for phone in step.phones:
            path = folder / f"{number:02d}-{step.step.name}" / f"{phone.spec.model.name}-{phone.spec.mac}.log"
            golden = parse(path.read_text()) if path.exists() else []
            for difference in diff(golden, parse("\n".join(phone.console))):
                differences.append(f"{path.relative_to(GOLDEN)}: {difference}")
    return differences


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_holds(name, tmp_path):
    scenario = next(s for s in list_scenarios() if s.name == name)
    result = ScenarioRun(scenario, tmp_path, key_size=1024).run()
    failures = [f"{step.step.name}: {m}" for step in result.steps for p in step.phones for m in p.mismatches]
    failures += [f"{step.step.name}: {problem}" for step in result.steps for problem in step.problems]
    assert result.passed, "\n".join(failures)
    if name in SEED_PROCEDURES:
        assert not golden_differences(result, GOLDEN / name), "\n".join(golden_differences(result, GOLDEN / name))


WRONG = """
name = "wrong-expectation"
title = "A scenario whose expectation does not hold"
[phones]
CP-8861 = 1
CP-7940 = 1
[[steps]]
name = "mixed-mode"
lab = ["ctl set-cluster mixed-mode"]
[steps.expect.legacy]
outcome = "rejected"
[steps.trace]
contains = ["a line no TVS writes"]
"""


def test_a_failed_expectation_exits_1_and_is_a_junit_failure(tmp_path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG)
    junit = tmp_path / "junit.xml"
    code = main(["scenario", "run", str(path), "--key-size", "1024", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    assert "CP-7940 02C15C000001: outcome: expected rejected, got accepted" in out
    assert "TVS trace: no line contains 'a line no TVS writes'" in out
    suite = ElementTree.fromstring(junit.read_text())
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    failed = {case.get("name") for case in suite if case.find("failure") is not None}
    assert failed == {"mixed-mode/CP-7940", "mixed-mode/cluster"}


def test_json_output_has_per_model_counts_and_expectations(tmp_path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG)
    assert main(["scenario", "run", str(path), "--key-size", "1024", "--json", "--phones", "CP-8861=2"]) == 1
    document = json.loads(capsys.readouterr().out)
    model = document["steps"][0]["models"]["CP-8861"]
    assert document["scenario"] == "wrong-expectation" and document["passed"] is False  # the trace check
    assert (model["phones"], model["accepted"], model["rejected"], model["expected"]) == (2, 2, 0, None)


@pytest.mark.parametrize(("text", "message"), [
    ("name = 1", "scenario.name: expected str"),
    ("[[steps]]\nname = 'x'\nbogus = 1", "steps[0].bogus: unknown field"),
    ("[[steps]]\nname = 'x'\n[steps.expect.sbd]\noutcome = 'maybe'", "steps[0].expect.sbd.outcome: expected one of"),
    ("[[steps]]\nname = 'x'\n[steps.expect.sbd]\ncode = 'nope'", "unknown rejection code 'nope'"),
    ("[[steps]]\nname = 'x'\non = 'z'", "steps[0].on: no lab 'z'"),
    ("[[steps]]\nname = 'x'\nactions = { legacy = 'explode' }", "steps[0].actions.legacy: expected one of"),
    ("[phones]\nCP-8861 = 0\n[[steps]]\nname = 'x'", "phones.CP-8861: expected a count of at least 1"),
    ("title = 'no steps'", "scenario.steps: a scenario needs at least one step"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_scenario_files_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=re.escape(message)) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)


def test_scenario_commands_refuse_unknown_names_in_one_line(capsys):
    assert main(["scenario", "run", "no-such-scenario"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scenario 'no-such-scenario'" in err


def test_scenario_list_and_show(capsys):
    assert main(["scenario", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SEED_PROCEDURES)
    assert main(["scenario", "show", "tokenless-to-etoken"]) == 0
    shown = capsys.readouterr().out
    assert "phonetrust lab ctl client --token SAST-ADN0054f509 --token SAST-ADN008580ef   (refused: The Security" in shown


JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@pytest.mark.parametrize("name", sorted(SEED_PROCEDURES))
def test_scenario_show_prints_the_english_source_and_keeps_the_japanese_title_aside(name, capsys):
    scenario = next(s for s in list_scenarios() if s.name == name)
    assert JAPANESE.search(scenario.source_title), "the Japanese edition's section title is kept"
    assert main(["scenario", "show", name]) == 0
    shown = capsys.readouterr().out
    assert 'source: Cisco TAC 118893 "Migrate CUCM Mixed Mode with Tokenless CTL", section "' in shown
    assert not JAPANESE.search(shown)


def test_every_bundled_scenario_shows_in_english(capsys):
    for name in BUNDLED:
        assert main(["scenario", "show", name]) == 0
        assert not JAPANESE.search(capsys.readouterr().out), name


def test_source_title_is_read_from_the_scenario_file(tmp_path):
    path = tmp_path / "titled.toml"
    path.write_text('name = "titled"\ntitle = "T"\nsource = "Cisco TAC 118893"\n'
                    'source_title = "トークンレス CTL"\n[[steps]]\nname = "boot"\n', encoding="utf-8")
    scenario = load_scenario(path)
    assert (scenario.source, scenario.source_title) == ("Cisco TAC 118893", "トークンレス CTL")


def test_text_report_names_steps_models_and_verdicts(tmp_path):
    scenario = next(s for s in list_scenarios() if s.name == "nonsecure-to-mixed")
    result = ScenarioRun(scenario, tmp_path, key_size=1024, phones={"CP-7965": 2}).run()
    text = render_text(result, load_catalogue())
    assert "Step 2: mixed-mode PASS" in text and "CP-7965" in text and "Every expectation held." in text
    assert to_json(result, load_catalogue())["steps"][1]["models"]["CP-7965"]["accepted"] == 2
