"""CUCM's SDL trace layout, for the lab's CallManager (docs/logs.md, docs/registration.md).

One entry per line: ``NNNNNNNN.NNN |HH:MM:SS.mmm |Level    |text``, the number
counting entries (the part after the dot counts entries of one signal, 000 here),
the level padded to nine (``AppInfo``, ``AlarmErr`` for alarms). Text that comes
from the network is escaped so that it stays on its line.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime

from phone.console.writers import escape_for_console


class SdlTraceWriter:
    """Writes SDL trace entries to ``sink`` (one call per line, no newline); no sink: nothing is rendered."""

    def __init__(self, sink: Callable[[str], object] | None, clock: Callable[[], datetime] = datetime.now) -> None:
        self._sink = sink
        self._clock = clock
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def _write(self, level: str, text: str) -> None:
        if self._sink is None:
            return
        with self._lock:
            number = next(self._numbers) % 100_000_000
            at = self._clock()
            self._sink(f"{number:08d}.000 |{at:%H:%M:%S}.{at.microsecond // 1000:03d} |{level:<9}|"
                       f"{escape_for_console(text)}")

    def info(self, text: str) -> None:
        self._write("AppInfo", text)

    def alarm(self, text: str) -> None:
        self._write("AlarmErr", text)
