"""How fast ``phone.console.parse`` reads console logs, against a trivial baseline.

Corpus: every published log of ``logs/real/`` and ``tests/console/data/unseen_logs/`` (all three
dialects, run-on, wrapped and continuation lines), repeated to about LINES lines. Baseline,
measured in the same process on the same lines: ``str.split`` of every line, the least any
reader has to do. Prints lines per second for both and their ratio.

Then the shapes a hostile or broken log takes, each against the same baseline:
continuation lines (one entry of N tab-indented lines; the join used to be quadratic),
a log without newlines (one run-on line of N entries; peak memory, traced, against the
line's size) and ``logs diff`` of one event repeated N against 2N times (difflib's
alignment was cubic here: 171 s for 2,000 against 4,000).

    .venv/bin/python benchmarks/bench_logparse.py [LINES]
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import tracemalloc
from pathlib import Path

from phone.console.diff import diff
from phone.console.parse import LogEntry, iter_entries

ROOT = Path(__file__).resolve().parent.parent


def corpus(target: int) -> list[str]:
    files = sorted((ROOT / "logs" / "real").glob("*.log")) + sorted((ROOT / "tests" / "data" / "unseen_logs").glob("*.log"))
    one = [line for path in files for line in path.read_text(encoding="utf-8").splitlines()]
    return (one * (target // len(one) + 1))[:target]


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    lines = corpus(target)
    entries = sum(1 for _ in iter_entries(lines))
    parse_s = best_of(3, lambda: sum(1 for _ in iter_entries(lines)))
    split_s = best_of(3, lambda: [line.split() for line in lines])
    print(f"corpus: {len(lines)} lines, {entries} entries")
    print(f"logparse.iter_entries: {len(lines) / parse_s:12,.0f} lines/s  ({entries / parse_s:,.0f} entries/s)")
    print(f"baseline str.split:    {len(lines) / split_s:12,.0f} lines/s")
    print(f"ratio parse/baseline:  {split_s / parse_s:.3f} (parse takes {parse_s / split_s:.1f}x the time of str.split)")


def hostile_shapes() -> None:
    for count in (500_000, 2_000_000):
        def continuation() -> int:
            lines = itertools.chain(["3333 NOT Nov 29 06:34:00.411671 downd-results:"], itertools.repeat("\tx", count))
            return sum(1 for _ in iter_entries(lines))

        baseline = best_of(3, lambda: sum(1 for _ in itertools.repeat("\tx", count)))
        seconds = best_of(3, continuation)
        print(f"{count:>9,} continuation lines: {seconds:6.2f} s  (baseline iteration {baseline:.3f} s)")
    for count in (5_000, 50_000):
        line = " ".join(f"{n} NOT 10:00:00.000000 SECD: event {n}" for n in range(count))
        tracemalloc.start()
        start = time.perf_counter()
        for entry in iter_entries([line]):
            json.dumps(entry.to_dict())
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"run-on line of {count:,} entries ({len(line):,} chars): extra peak {peak / len(line):.2f}x the line"
              f" (traced, {seconds:.1f} s)")
    for count in (2_000, 20_000):
        def entries(n: int) -> list[LogEntry]:
            return [LogEntry(i, "java79xx", i, "NOT", None, "10:00:00.000000", None, None, "SECD",
                             "Hashes match... authentication successful.") for i in range(n)]

        a, b = entries(count), entries(2 * count)
        seconds = best_of(1, lambda: diff(a, b))
        print(f"logs diff, one event {count:,} vs {2 * count:,} times: {seconds:6.2f} s")


if __name__ == "__main__":
    main()
    hostile_shapes()
