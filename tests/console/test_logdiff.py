"""``phone.console.diff``: the alignment of two runs' events, exact and fast on repeats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.console.diff import diff
from phone.console.parse import LogEntry


def events(words) -> list[LogEntry]:
    return [LogEntry(n, "java79xx", n, "NOT", None, "10:00:00.000000", None, None, "SECD", word)
            for n, word in enumerate(words, start=1)]


def lcs_length(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b):
            previous_diagonal, row[j + 1] = row[j + 1], (previous_diagonal + 1 if x == y
                                                         else max(row[j + 1], row[j]))
    return row[-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=25), st.lists(st.sampled_from("abcde"), max_size=25))
def test_what_is_left_over_is_what_a_longest_common_subsequence_leaves(a, b):
    differences = diff(events(a), events(b))
    left_a = sum(1 for d in differences if d.a is not None)
    left_b = sum(1 for d in differences if d.b is not None)
    common = lcs_length(a, b)
    assert (left_a, left_b) == (len(a) - common, len(b) - common)


def test_swapped_events_are_reordered_and_an_added_one_is_extra():
    kinds = [d.kind for d in diff(events("xyz"), events("yxzw"))]
    assert kinds == ["reordered", "extra"]


@pytest.mark.timeout(60)
def test_logs_of_one_event_repeated_thousands_of_times_are_compared_in_n_log_n():
    # difflib took 171 s for 2,000 lines against 4,000 of the same event (cubic); these are
    # ten times that: hours for difflib, seconds here.
    a = events(["Hashes match... authentication successful."] * 20_000)
    b = events(["Hashes match... authentication successful."] * 40_000)
    differences = diff(a, b)
    assert [d.kind for d in differences] == ["extra"] * 20_000
