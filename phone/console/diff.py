"""Comparing two runs' console logs event by event (``phonetrust logs diff``).

Two boots of the same scenario never print the same numbers: sequence counters, times,
process ids, socket handles, addresses and hex dumps all change. An *event* is an entry
with those masked: its dialect, level, process and message after ``mask``. The two event
lists are aligned; what is left over on one side only is ``missing`` (in A, not in B) or
``extra`` (in B, not in A), and an event that is left over on both sides is
``reordered``. Two logs are equivalent when nothing is left over.

The alignment is a longest common subsequence found as a longest increasing sequence of
matching pairs (Hunt and Szymanski's method), in O(P log n) for P candidate pairs. Every
pair is a candidate for an event that occurs at most ``_CANDIDATES`` times in B; an event
repeated more often (a log of one event over and over) pairs its k-th occurrence in A with
its k-th in B only, which keeps P at most ``_CANDIDATES`` times the length of A. Exact for
the logs of real boots; for heavy repeats the pairing in order can report a reordering
where an exhaustive search (cubic: 171 s for 2,000 against 4,000 repeated lines with
difflib) would not.
"""

from __future__ import annotations

import bisect
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


#: Events that occur at most this many times in B offer every occurrence for alignment.
_CANDIDATES = 16


def _aligned(keys_a: Sequence[tuple], keys_b: Sequence[tuple]) -> list[tuple[int, int]]:
    """Index pairs (i, j), increasing in both, of a common subsequence of the two key lists.

    Hunt-Szymanski: for each i, its candidate j in decreasing order extend the longest
    chain whose last j is smaller (``tails``, binary search); links rebuild the chain."""
    where_b: dict[tuple, list[int]] = defaultdict(list)
    for j, key in enumerate(keys_b):
        where_b[key].append(j)
    seen_a: dict[tuple, int] = defaultdict(int)
    tails: list[int] = []  # tails[k]: the smallest j that ends a chain of length k + 1
    ends: list[int] = []  # ends[k]: the node (in ``nodes``) ending that chain
    nodes: list[tuple[int, int, int]] = []  # (i, j, node before it or -1)
    for i, key in enumerate(keys_a):
        occurrences = where_b.get(key)
        if not occurrences:
            continue
        if len(occurrences) <= _CANDIDATES:
            candidates = reversed(occurrences)
        else:
            k = seen_a[key]
            candidates = (occurrences[k],) if k < len(occurrences) else ()
        seen_a[key] += 1
        for j in candidates:
            length = bisect.bisect_left(tails, j)
            nodes.append((i, j, ends[length - 1] if length else -1))
            if length == len(tails):
                tails.append(j)
                ends.append(len(nodes) - 1)
            else:
                tails[length] = j
                ends[length] = len(nodes) - 1
    chain = []
    node = ends[-1] if ends else -1
    while node >= 0:
        i, j, node = nodes[node]
        chain.append((i, j))
    chain.reverse()
    return chain


def diff(a: Sequence[LogEntry], b: Sequence[LogEntry]) -> list[Difference]:
    """The differences between two runs, in the order of A (then of B for extras)."""
    keys_a = [event_key(entry) for entry in a]
    keys_b = [event_key(entry) for entry in b]
    # Equal heads and tails (the usual case: two boots of one scenario) need no search.
    head = 0
    while head < min(len(keys_a), len(keys_b)) and keys_a[head] == keys_b[head]:
        head += 1
    tail = 0
    while (tail < min(len(keys_a), len(keys_b)) - head
           and keys_a[len(keys_a) - 1 - tail] == keys_b[len(keys_b) - 1 - tail]):
        tail += 1
    middle_a = keys_a[head:len(keys_a) - tail]
    middle_b = keys_b[head:len(keys_b) - tail]
    matched_a, matched_b = set(), set()
    for i, j in _aligned(middle_a, middle_b):
        matched_a.add(head + i)
        matched_b.add(head + j)
    only_a = [i for i in range(head, len(keys_a) - tail) if i not in matched_a]
    only_b = [j for j in range(head, len(keys_b) - tail) if j not in matched_b]
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
