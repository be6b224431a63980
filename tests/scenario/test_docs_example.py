"""The scenario example in docs/scenarios.md runs as it is and every expectation holds."""

from __future__ import annotations

import re
from pathlib import Path

from phone.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def example_toml() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1, "docs/scenarios.md should hold one TOML example"
    return blocks[0]


def test_the_documented_scenario_example_runs_and_holds(tmp_path, capsys):
    scenario = tmp_path / "my-change.toml"
    scenario.write_text(example_toml(), encoding="utf-8")
    code = main(["scenario", "run", str(scenario), "--key-size", "1024"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Every expectation held." in out
