"""The TVS server's trace: ``phone.console.writers.TvsTrace`` made safe for a server (docs/logs.md).

``console.TvsTrace`` renders CUCM's ``HH:MM:SS.mmm | debug text`` lines and refuses text
that would not read back as one entry. A server traces text that comes from the network
(names in a request) and from files (names in a CTL), so this wrapper never lets a refusal
escape into request handling: such text is written escaped, or replaced by a note. Without
a sink nothing is rendered at all (the trace costs nothing when off).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from phone.console.writers import TvsTrace, UnrenderableMessage, escape_for_console


class TvsTraceWriter:
    """Writes trace entries to ``sink`` (one call per line, no newline) with ``clock``'s time."""

    def __init__(self, sink: Callable[[str], object] | None,
                 clock: Callable[[], datetime] = datetime.now) -> None:
        self._trace = None if sink is None else TvsTrace(clock, sink)

    @property
    def enabled(self) -> bool:
        return self._trace is not None

    def debug(self, text: str) -> None:
        if self._trace is None:
            return
        try:
            self._trace.debug(text)
        except UnrenderableMessage:
            try:
                self._trace.debug(escape_for_console(text))
            except UnrenderableMessage:
                self._trace.debug(f"(a trace entry of {len(text)} characters that cannot be one line)")

    def hex_dump(self, data: bytes) -> None:
        """``HEX_DUMP: Len = N:`` then eight bytes per entry, lower-case hex (docs/tvs.md, "Trace")."""
        if self._trace is not None:
            self._trace.hex_dump(data)


def file_sink(path: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A sink appending lines to ``path`` (line-buffered) and the function that closes it."""
    handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by the caller

    def write(line: str) -> None:
        handle.write(line + "\n")

    return write, handle.close
