"""`phonetrust demo` (what `make demo` runs): the seed's procedures end in the per-model table."""

from __future__ import annotations

import pytest

from phone.cli import main


@pytest.mark.slow
def test_demo_replays_the_seed_and_prints_who_needs_a_hand_erase(capsys):
    assert main(["demo", "--key-size", "1024"]) == 0
    out = capsys.readouterr().out
    assert "What each phone model did at each procedure's last change" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ CP-")}
    assert rows["CP-7940"].count("refused: erase") == 3
    assert rows["CP-8861"].count("accepted via") == 3 and "accepted on" in rows["CP-8861"]
