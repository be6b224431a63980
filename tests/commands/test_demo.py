"""`phonetrust demo` (what `make demo` runs): the seed's procedures end in the per-model table, then the
same models with an LSC: encrypted configuration and secure registration after a CallManager regeneration."""

from __future__ import annotations

import pytest

from phone.cli import main


def _rows(table: str) -> dict[str, str]:
    return {line.split("│")[1].strip(): line for line in table.splitlines() if line.startswith("│ CP-")}


@pytest.mark.slow
def test_demo_replays_the_seed_and_prints_who_needs_a_hand_erase_and_who_registers_securely(capsys):
    assert main(["demo", "--key-size", "1024"]) == 0
    out = capsys.readouterr().out
    assert "What each phone model did at each procedure's last change" in out
    seed, identity = out.split("The same models with an LSC, an encrypted profile and encrypted configuration")
    rows = _rows(seed)
    assert rows["CP-7940"].count("refused: erase") == 3
    assert rows["CP-8861"].count("accepted via") == 3 and "accepted on" in rows["CP-8861"]
    rows = _rows(identity)
    assert "LSC (encrypted config)" in rows["CP-8861"] and "yes (encrypted)" in rows["CP-8861"]
    assert "LSC (config in clear)" in rows["CP-7940"] and "no: CTL refused, erase by hand" in rows["CP-7940"]
