"""The closed-loop load both server benchmarks use: N client threads repeat one operation for a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_clients(clients: int, seconds: float, operation: Callable[[], bool]) -> tuple[int, int, float]:
    """(successes, failures, elapsed seconds); an ``OSError`` from ``operation`` counts as a failure."""
    counts = {True: 0, False: 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                succeeded = operation()
            except OSError:
                succeeded = False
            with lock:
                counts[succeeded] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts[True], counts[False], time.perf_counter() - started
