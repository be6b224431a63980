"""Comparing two runs' console logs event by event (``phonetrust logs diff``).

Two boots of the same scenario never print the same numbers: sequence counters, times,
process ids, socket handles, addresses and hex dumps all change. An *event* is an entry
with those masked: its dialect, level, process and message after ``mask``. The two event
lists are aligned (difflib, no junk heuristic); what is left over on one side only is
``missing`` (in A, not in B) or ``extra`` (in B, not in A), and an event that is left
over on both sides is ``reordered``. Two logs are equivalent when nothing is left over.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict, deque
from collections.abc import Sequence

import attrs

from phone.console.parse import LogEntry

__all__ = ["Difference", "diff", "event_key", "mask"]

# Order matters: the wider shapes go first so that their digits are not masked piecemeal.
_MASKS = (
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b"), "<hex>"),  # IPv6, colon-hex serials
    (re.compile(r"\b0x[0-9A-Fa-f]+\b"), "<hex>"),
    (re.compile(r"\b[0-9a-fA-F]{2}(?: [0-9a-fA-F]{2}){1,}\b"), "<hex>"),  # hex dump bytes
    (re.compile(r"\b(?=[0-9A-Za-z]*\d)(?=[0-9A-Za-z]*[A-Fa-f])[0-9A-Fa-f]{8,}\b"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
)


def mask(text: str) -> str:
    """``text`` with times, addresses, hex and numbers replaced by placeholders."""
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def event_key(entry: LogEntry) -> tuple[str | None, str | None, str | None, str]:
    """What must match for two entries to be the same event."""
    process = mask(entry.process) if entry.process else None
    return (entry.dialect, entry.level, process, mask(entry.message))


@attrs.frozen
class Difference:
    """One event left over: ``kind`` is "missing", "extra" or "reordered"."""

    kind: str
    a: LogEntry | None
    b: LogEntry | None


def diff(a: Sequence[LogEntry], b: Sequence[LogEntry]) -> list[Difference]:
    """The differences between two runs, in the order of A (then of B for extras)."""
    keys_a = [event_key(entry) for entry in a]
    keys_b = [event_key(entry) for entry in b]
    only_a: list[int] = []
    only_b: list[int] = []
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "equal":
            only_a.extend(range(a0, a1))
            only_b.extend(range(b0, b1))
    waiting_b: dict[tuple, deque[int]] = defaultdict(deque)
    for index in only_b:
        waiting_b[keys_b[index]].append(index)
    differences = []
    paired_b = set()
    for index in only_a:
        candidates = waiting_b.get(keys_a[index])
        if candidates:
            partner = candidates.popleft()
            paired_b.add(partner)
            differences.append(Difference("reordered", a[index], b[partner]))
        else:
            differences.append(Difference("missing", a[index], None))
    differences.extend(Difference("extra", None, b[index]) for index in only_b if index not in paired_b)
    return differences
