"""The CUCM TVS detailed trace, as reference-logs S1.c-S1.f, S2 and S3 show it (SPEC 7.3).

Entries are ``HH:MM:SS.mmm | debug text``; a hex dump is a bare
``HEX_DUMP: Len = N:`` line followed by entries of eight space-separated
bytes. The formatting lives in ``trace_line`` alone so that the console
module's ``TvsTrace`` writer can replace it; the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime


def trace_line(when: datetime, text: str) -> str:
    """One trace entry (reference-logs S1.e: ``18:01:06.345 | debug tvsHandleQueryCertReq``)."""
    return f"{when:%H:%M:%S}.{when.microsecond // 1000:03d} | debug {text}"


class TvsTraceWriter:
    """Writes trace entries to ``sink`` (one call per line, no newline) with ``clock``'s time."""

    def __init__(self, sink: Callable[[str], None] | None,
                 clock: Callable[[], datetime] = datetime.now) -> None:
        self._sink = sink
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def debug(self, text: str) -> None:
        if self._sink is not None:
            self._sink(trace_line(self._clock(), text))

    def hex_dump(self, data: bytes) -> None:
        """``HEX_DUMP: Len = N:`` then eight bytes per entry, lower-case hex (S1.e)."""
        if self._sink is None:
            return
        self._sink(f"HEX_DUMP: Len = {len(data)}:")
        when = self._clock()
        for start in range(0, len(data), 8):
            self._sink(trace_line(when, data[start:start + 8].hex(" ")))


def file_sink(path: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A sink appending lines to ``path`` (line-buffered) and the function that closes it."""
    handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by the caller

    def write(line: str) -> None:
        handle.write(line + "\n")

    return write, handle.close
