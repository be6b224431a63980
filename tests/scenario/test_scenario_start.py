"""`start = "now"`: a scenario whose phones register with an LSC runs its labs near the real time."""

from __future__ import annotations

import datetime

import pytest

from phone.scenario import ScenarioError, find_scenario, load_scenario
from phone.scenario.rehearsal import START, ScenarioClock


def test_a_scenario_starts_at_the_tac_note_date_unless_it_asks_for_now(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text("[[steps]]\nname = 'x'\n")
    assert load_scenario(path).start_now is False
    assert ScenarioClock.for_scenario(False).now == START


def test_start_now_puts_every_step_of_a_day_long_run_in_the_past_of_the_real_clock():
    before = datetime.datetime.now(datetime.UTC)
    clock = ScenarioClock.for_scenario(True)
    assert before - datetime.timedelta(days=1, seconds=2) <= clock.now <= before - datetime.timedelta(hours=23)
    for _ in range(12):  # an hour a step: a dozen steps stay before the real time
        clock.next_step()
    assert clock.now < datetime.datetime.now(datetime.UTC)


@pytest.mark.parametrize("name", ["regenerate-capf", "move-to-another-cluster-with-lsc"])
def test_the_scenarios_whose_phones_register_with_an_lsc_start_now(name):
    assert find_scenario(name).start_now is True


def test_a_start_other_than_now_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("start = 'yesterday'\n[[steps]]\nname = 'x'\n")
    with pytest.raises(ScenarioError, match=r"scenario\.start: expected one of now, got 'yesterday'"):
        load_scenario(path)
