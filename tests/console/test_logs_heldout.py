"""Done-when of issue 7: on real console logs it has never seen, ``parse`` reads at least
95% of the entries with the fields a careful reader gives (tests/console/data/unseen_logs/SOURCES.md)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from phone.console.parse import parse

UNSEEN = Path(__file__).resolve().parent / "data" / "unseen_logs"
FIELDS = ("line", "dialect", "seq", "level", "date", "time", "pid", "tid", "process", "message")


def agreement(name: str) -> tuple[int, int]:
    """(entries read exactly as expected, entries expected) for one held-out log."""
    expected = [json.loads(line) for line in (UNSEEN / f"{name}.expected.jsonl").read_text().splitlines()]
    got = parse((UNSEEN / f"{name}.log").read_text(encoding="utf-8"))
    as_rows = lambda entries: [tuple(e[f] for f in FIELDS) for e in entries]  # noqa: E731
    matcher = difflib.SequenceMatcher(None, as_rows(expected), as_rows([e.to_dict() for e in got]), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()), len(expected)


NAMES = sorted(p.name.removesuffix(".expected.jsonl") for p in UNSEEN.glob("*.expected.jsonl"))


@pytest.mark.parametrize("name", NAMES)
def test_each_held_out_log_reads_at_least_95_percent(name):
    right, total = agreement(name)
    assert total > 0 and right / total >= 0.95, f"{name}: {right}/{total}"


def test_held_out_share_of_entries_read_with_the_expected_fields():
    right, total = map(sum, zip(*(agreement(name) for name in NAMES)))
    print(f"held-out: {right}/{total} entries = {right / total:.1%}")
    assert total >= 150 and right / total >= 0.95
