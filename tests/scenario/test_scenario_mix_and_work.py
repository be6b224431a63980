"""`scenario run`: checks follow the phones of the mix; --phones and --work refuse bad input in one line."""

from __future__ import annotations

import pytest

from phone.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("mix", ["CP-8845=1", "CP-7940=1"])
def test_console_and_trace_checks_follow_the_phones_in_the_mix(mix, tmp_path, capsys):
    # The scenario checks the consoles of CP-7975 and CP-8861 and the TVS trace; neither
    # model is in this mix, and a 7940 alone never asks TVS, so there is nothing of theirs to check.
    code, out, _ = run(capsys, "scenario", "run", "regenerate-callmanager", "--phones", mix,
                       "--key-size", "1024", "--work", str(tmp_path / "work"))
    assert "console: no line contains" not in out
    assert "TVS trace: no line contains" not in out
    assert code == 0, out


def test_a_console_check_of_a_model_in_the_mix_still_fails_when_its_line_is_missing(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "s"\n[phones]\nCP-8845 = 1\n[[steps]]\nname = "boot"\n'
                        '[steps.console.CP-8845]\ncontains = ["a line no phone prints"]\n')
    code, out, _ = run(capsys, "scenario", "run", str(scenario), "--key-size", "1024")
    assert code == 1
    assert "CP-8845 console: no line contains 'a line no phone prints'" in out


@pytest.mark.parametrize("command", [["scenario", "run", "regenerate-callmanager"], ["fleet", "run", "regenerate-callmanager"]])
def test_an_empty_phone_list_is_refused_not_replaced_by_the_default_mix(command, tmp_path, capsys):
    code, _, err = run(capsys, *command, "--phones", "", "--work", str(tmp_path / "work"))
    assert code == 2
    assert err.strip() == ("phonetrust: no phones: expected MODEL=COUNT[,MODEL=COUNT…], "
                           "e.g. CP-8861=600,CP-7940=100")


@pytest.mark.parametrize("phones", ["CP-8845", "CP-8845=0", "CP-9999=1", "CP-8845=1,CP-8845=2"])
def test_scenario_and_fleet_word_phone_list_errors_the_same(phones, tmp_path, capsys):
    _, _, scenario_error = run(capsys, "scenario", "run", "regenerate-callmanager", "--phones", phones)
    _, _, fleet_error = run(capsys, "fleet", "run", "regenerate-callmanager", "--phones", phones,
                            "--work", str(tmp_path / "fleet"))
    assert scenario_error == fleet_error
    assert scenario_error.count("\n") == 1 and scenario_error.startswith("phonetrust: ")


def test_work_folder_that_is_not_empty_is_refused_unless_forced(tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "scenario", "run", "regenerate-callmanager", "--phones", "CP-8845=1",
                       "--key-size", "1024", "--work", str(work))
    assert code == 2
    assert err.count("\n") == 1 and "is not empty" in err and "--force" in err
    assert [path.name for path in work.iterdir()] == ["notes.txt"]
    code, _, _ = run(capsys, "scenario", "run", "regenerate-callmanager", "--phones", "CP-8845=1",
                     "--key-size", "1024", "--work", str(work), "--force")
    assert code == 0
    assert (work / "notes.txt").read_text() == "mine"


def test_every_phone_of_a_mix_has_its_own_mac_in_order():
    from phone.catalogue import load_catalogue
    from phone.scenario.rehearsal import scenario_phones

    phones = scenario_phones({"CP-8845": 2, "CP-7940": 2}, load_catalogue())
    assert [(phone.model.name, phone.mac) for phone in phones] == [
        ("CP-8845", "02C15C000000"), ("CP-8845", "02C15C000001"),
        ("CP-7940", "02C15C000002"), ("CP-7940", "02C15C000003")]
