"""The scenario examples in docs/scenarios.md run as they are and every expectation holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phone.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def example_tomls() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_docs_hold_the_trust_list_and_the_identity_examples():
    assert [re.search(r'name = "(.*?)"', block).group(1) for block in example_tomls()] == [
        "my-change", "my-lsc-rollout"]


@pytest.mark.parametrize("index", [0, 1])
def test_the_documented_scenario_examples_run_and_hold(tmp_path, capsys, index):
    scenario = tmp_path / "example.toml"
    scenario.write_text(example_tomls()[index], encoding="utf-8")
    code = main(["scenario", "run", str(scenario), "--key-size", "1024"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Every expectation held." in out
