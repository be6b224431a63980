"""How fast ``phone.console.parse`` reads console logs, against a trivial baseline.

Corpus: every published log of ``logs/real/`` and ``tests/console/data/unseen_logs/`` (all three
dialects, run-on, wrapped and continuation lines), repeated to about LINES lines. Baseline,
measured in the same process on the same lines: ``str.split`` of every line, the least any
reader has to do. Prints lines per second for both and their ratio.

    .venv/bin/python benchmarks/bench_logparse.py [LINES]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from phone.console.parse import iter_entries

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


if __name__ == "__main__":
    main()
