"""The time a fleet reads, passed in rather than read from the system where it is used.

Workers, the fleet and its results writer take a ``Clock``: tests give one
whose ``sleep`` moves virtual time (a step with minutes of jitter runs at
once, each phone starting exactly when its schedule says), the command line
the system's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs


@attrs.frozen
class Clock:
    """``wall``: Unix seconds (start times, the phones' own clock); ``monotonic``: intervals (timers,
    batching); ``cpu``: this process's CPU seconds; ``sleep``: wait that many seconds."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.perf_counter
    cpu: Callable[[], float] = time.process_time
    sleep: Callable[[float], None] = time.sleep


#: The system's clock (what worker processes and the command line use).
SYSTEM_CLOCK = Clock()
