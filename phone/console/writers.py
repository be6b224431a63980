"""Console writers: the lines an emulated phone or the emulated CUCM TVS prints (docs/logs.md).

Each writer is a structlog pipeline: processors stamp the per-console sequence number and
the time from an injected clock, and a renderer turns the event into one line of the
dialect; a sink receives every line. Nothing here reads the wall clock: ``clock`` is any
callable returning a ``datetime`` (the device passes its own, tests pass a fixed one).
Which events produce which texts is not decided here: the phone state machine owns a
catalogue of messages per dialect; this module only renders lines. Whatever a writer
emits reads back through ``phone.console.parse`` in its dialect with the same fields.

API::

    log = ConsoleLog("enterprise", clock, first_seq=3232, pid_tid=(346, 1887), sink=print)
    log.emit("NOT", "SECUREAPP", "Hashes match... authentication successful.")
    # -> '3232 NOT Nov 29 06:34:00.411671 (346:1887) SECUREAPP-Hashes match... ...'

    ConsoleLog("java79xx", clock, first_seq=8074)          # '8074: NOT 23:00:22.335499 SECD: ...'
    ConsoleLog("java79xx", clock, seq_colon=False, process_gap="  ", process_separator="-")
                                                            # '7949 NOT 11:04:14.765155  CVM-...'

    trace = TvsTrace(clock, sink=lines.append, indent=True)
    trace.enter("debug"); trace.debug("2:UNKNOWN:Incoming Phone Msg:")
    trace.hex_dump(message_bytes)      # 'HEX_DUMP: Len = 153:' then 8 bytes per debug line
    trace.leave("debug")

``ConsoleLog(dialect, clock, *, first_seq=1, pid_tid=None, sink=None, seq_colon=True,
process_separator=None, process_gap=" ")`` with ``emit(level, process, message, *,
pid_tid=None) -> str`` and ``next_seq``; ``TvsTrace(clock, sink=None, *, indent=False)``
with ``debug(text)``, ``enter(name)``, ``leave(name)`` (each returning the line) and
``hex_dump(data) -> list[str]``. A message that cannot be one console line (it holds a
line break, or a dialect header of its own that would split it) raises
``UnrenderableMessage`` before anything reaches the sink.

Text that comes from outside (a TFTP server's error message, a file name from a signed
file, a name in a TVS request) is passed through ``escape_for_console`` by whoever writes
it when the writer refuses it as is: both the phone console and the TVS trace use that
one function, so a peer can neither split a console line nor forge an entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any

import structlog

from phone.errors import UsageError
from phone.console.parse import LEVELS, MONTHS, header_positions, parse

__all__ = ["Clock", "ConsoleLog", "TvsTrace", "UnrenderableMessage", "escape_for_console"]

Clock = Callable[[], datetime]
Sink = Callable[[str], object]

# Process names as the parser reads them back (docs/logs.md: "SECD", "CVM"; enterprise phones add a
# pid in parentheses, "dgetfile(870)").
_JAVA_PROCESS = re.compile(r"[A-Za-z_][\w.]*")
_ENTERPRISE_PROCESS = re.compile(r"[A-Za-z_][\w.]*(?:\(\d+\))?")


class UnrenderableMessage(UsageError):
    """A message, process or level that cannot be written as one line of the dialect."""


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_for_console(text: str) -> str:
    """``text`` made safe for the middle of one console line, readably.

    Backslashes are doubled and every character that is not printable (line breaks of any
    kind, as ``str.splitlines`` knows them, tabs, other controls) becomes a backslash
    escape, so the text cannot end the line. Where the text holds what ``parse`` would take
    for the header of another entry (``12 NOT 10:00:00.000000 SECD: ...``), a backslash is
    put before it, so it cannot start an entry of its own. The result reads back as part of
    the one entry it is written in."""
    escaped = "".join(_escape_char(char) for char in text)
    pieces, start = [], 0
    for position in header_positions(escaped):
        pieces += [escaped[start:position], "\\"]
        start = position
    pieces.append(escaped[start:])
    return "".join(pieces)


def _one_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise UnrenderableMessage(f"{what} {text!r} holds a line break; a console entry is one line")
    return text


def _reads_back(line: str, dialect: str, message: str) -> str:
    """``line`` if the parser reads it as one entry of ``dialect`` with ``message``.

    A message that itself holds a dialect header (``... 12 NOT 10:00:00.000000 SECD: ...``)
    would read as two entries; refusing it here keeps the promise that every line written
    reads back with the fields it was written with."""
    entries = parse(line)
    if len(entries) != 1 or entries[0].dialect != dialect or entries[0].message != message.strip():
        raise UnrenderableMessage(f"{line!r} would not read back as one {dialect} entry with its message")
    return line


class _LineSink:
    """The logger structlog wraps: it hands each rendered line to the sink and keeps it."""

    def __init__(self, sink: Sink | None) -> None:
        self._sink = sink
        self.last = ""

    def msg(self, line: str) -> None:
        self.last = line
        if self._sink is not None:
            self._sink(line)


def _pipeline(sink: _LineSink, processors: list[Callable[..., Any]]) -> Any:
    # Everything passed explicitly, so a structlog.configure() elsewhere changes nothing here.
    return structlog.wrap_logger(
        sink,
        processors=processors,
        wrapper_class=structlog.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def _stamp_time(clock: Clock) -> Callable[..., MutableMapping[str, Any]]:
    def processor(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["at"] = clock()
        return event

    return processor


def _phone_time(at: datetime) -> str:
    return f"{at:%H:%M:%S}.{at.microsecond:06d}"


def _tvs_time(at: datetime) -> str:
    return f"{at:%H:%M:%S}.{at.microsecond // 1000:03d}"


class ConsoleLog:
    """A phone's console in the ``java79xx`` or ``enterprise`` dialect (docs/logs.md).

    ``first_seq`` is the number of the first line; every line takes the next. ``pid_tid``
    adds ``(pid:tid)`` to enterprise lines (newer loads; ``emit`` may override it per line).
    ``seq_colon``, ``process_gap`` and ``process_separator`` select the 7900 variants
    (``8074: NOT t SECD: m`` or ``7949 NOT t  CVM-m``); the enterprise separator is ``-``.
    """

    def __init__(
        self,
        dialect: str,
        clock: Clock,
        *,
        first_seq: int = 1,
        pid_tid: tuple[int, int] | None = None,
        sink: Sink | None = None,
        seq_colon: bool = True,
        process_separator: str | None = None,
        process_gap: str = " ",
    ) -> None:
        if dialect not in ("java79xx", "enterprise"):
            raise UsageError(f"no phone console dialect {dialect!r}; expected 'java79xx' or 'enterprise'")
        if first_seq < 0:
            raise UsageError(f"first_seq must not be negative, got {first_seq}")
        separator = process_separator if process_separator is not None else (": " if dialect == "java79xx" else "-")
        if separator not in (": ", "-") or process_gap not in (" ", "  "):
            raise UsageError("process_separator must be ': ' or '-' and process_gap one or two spaces")
        self.dialect = dialect
        self.pid_tid = pid_tid
        self.next_seq = first_seq
        self._sink = _LineSink(sink)
        render = self._render_java if dialect == "java79xx" else self._render_enterprise
        self._colon = ":" if seq_colon else ""
        self._separator = separator
        self._gap = process_gap
        self._log = _pipeline(self._sink, [self._stamp_seq, _stamp_time(clock), render])

    def _stamp_seq(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event["seq"] = self.next_seq  # taken for good by emit once the line is written
        return event

    def _render_java(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> str:
        line = (
            f"{event['seq']}{self._colon} {event['level']} {_phone_time(event['at'])}"
            f"{self._gap}{event['process']}{self._separator}{event['event']}"
        )
        return _reads_back(line, "java79xx", event["event"])

    def _render_enterprise(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> str:
        at = event["at"]
        ids = f" ({event['pid_tid'][0]}:{event['pid_tid'][1]})" if event["pid_tid"] else ""
        line = (
            f"{event['seq']} {event['level']} {MONTHS[at.month - 1]} {at.day:02d} {_phone_time(at)}"
            f"{ids} {event['process']}-{event['event']}"
        )
        return _reads_back(line, "enterprise", event["event"])

    def emit(self, level: str, process: str, message: str, *, pid_tid: tuple[int, int] | None = None) -> str:
        """Write one line and return it. ``level`` is one of NOT, ERR, WRN, INF, DEB."""
        if level not in LEVELS:
            raise UnrenderableMessage(f"level {level!r} is not one of {', '.join(LEVELS)}")
        pattern = _JAVA_PROCESS if self.dialect == "java79xx" else _ENTERPRISE_PROCESS
        if not pattern.fullmatch(process):
            raise UnrenderableMessage(f"process name {process!r} would not read back as a process")
        self._log.msg(_one_line(message, "message"), level=level, process=process, pid_tid=pid_tid or self.pid_tid)
        self.next_seq += 1
        return self._sink.last


class TvsTrace:
    """The CUCM TVS detailed trace (docs/logs.md): ``HH:MM:SS.mmm | debug text``.

    ``indent`` selects the ``|   debug`` layout of some releases. Hex dumps print an untimed
    ``HEX_DUMP: Len = N:`` line, which belongs to the entry written before it, then the bytes
    eight to a ``debug`` line in lower-case hex, as CUCM does.
    """

    def __init__(self, clock: Clock, sink: Sink | None = None, *, indent: bool = False) -> None:
        self._sink = _LineSink(sink)
        self._bar = "|   " if indent else "| "
        self._log = _pipeline(self._sink, [_stamp_time(clock), self._render])

    def _render(self, _logger: object, _name: str, event: MutableMapping[str, Any]) -> str:
        time = _tvs_time(event["at"])
        if event["marker"]:
            return _reads_back(f"{time} |{event['marker']}{event['event']}", "cucm-tvs", event["marker"] + event["event"])
        return _reads_back(f"{time} {self._bar}debug {event['event']}", "cucm-tvs", event["event"])

    def _write(self, text: str, marker: str = "") -> str:
        self._log.msg(_one_line(text, "trace text"), marker=marker)
        return self._sink.last

    def debug(self, text: str) -> str:
        """One ``debug`` line."""
        return self._write(text)

    def enter(self, name: str) -> str:
        """The ``|-->NAME`` marker CUCM prints when a traced function starts."""
        return self._write(name, "-->")

    def leave(self, name: str) -> str:
        """The ``|<--NAME`` marker CUCM prints when a traced function returns."""
        return self._write(name, "<--")

    def hex_dump(self, data: bytes) -> list[str]:
        """``HEX_DUMP: Len = N:`` then the bytes, 8 per ``debug`` line; returns all lines."""
        header = f"HEX_DUMP: Len = {len(data)}:"
        self._sink.msg(header)
        lines = [header]
        for start in range(0, len(data), 8):
            lines.append(self.debug(" ".join(f"{byte:02x}" for byte in data[start : start + 8])))
        return lines
