"""Reading console logs: the five dialects of docs/logs.md, one record per entry.

Dialects (docs/logs.md; real samples in ``logs/real/``):

``java79xx``   7900-series Java phones (SCCP/SIP 9.x)::

    8074: NOT 23:00:22.335499 SECD: setupSocketToTvsProxy: Connected to TVS proxy server
    7949 NOT 11:04:14.765155  CVM-appLaunchRequest: ...          (no colon, two spaces, PROC-)

``enterprise`` 78xx/88xx/DX phones; older loads have no ``(pid:tid)``, some write ``(pid-tid)``::

    3333 NOT Nov 29 06:34:00.411671 (346:1887) SECUREAPP-Hashes match...
    3287 NOT Nov 29  06:34:00.499372 SECUREAPP-Hashes match...   (two spaces after the date)
    1204 NOT Mar 02 10:11:12.123456 (318-905) SECUREAPP: -Hashes match   (process SECUREAPP)

``cucm-tvs``   CUCM TVS detailed trace::

    18:01:05.333 | debug Accepted TCP connection ...
    17:21:51.831 |   debug tvsHandleQueryCertReq
    04:04:15.270 |-->debug                                        (entry marker)

``cucm-sdl``   CUCM SDL/SDI trace (CallManager service); seq is the number before the dot::

    08080021.043 |16:31:15.937 |AppInfo  |SIPStationD(18400) - validTLSConnection:TLS ...
    08080021.046 |16:31:15.938 |AlarmErr |AlarmClass: CallManager, AlarmName: ConnectionFailure, ...

``jabber``     Jabber / CSF softphone logs; the date (and on trimmed pages the time) may be absent::

    2020-03-30 13:03:18,278 DEBUG [0x000012d8] [src\\callcontrol\\ServicesManager.cpp(993)] [csf.ecc]
        [csf::ecc::ServicesManager::fetchDeviceConfig] - fetchDeviceConfig() retrieved config ...

How lines become entries (what ``parse`` returns):

* A line that starts with a dialect header starts an entry. Leading spaces before the
  header are allowed (published logs have them). ``message`` is the text after the
  process separator with surrounding whitespace removed; ``time`` is kept as written;
  ``date`` is ``"Mon DD"`` with the gap between month and day made one space.
* **Run-on lines** (newlines lost on a web page) are split at every header that starts
  after whitespace; each piece is an entry with the same ``line``. A header is the whole
  dialect prefix (``SEQ LVL TIME PROC`` or ``SEQ LVL Mon DD TIME`` or ``HH:MM:SS.mmm |``),
  so a number inside a message (``len: 3708 8091: NOT ...``) is never a split point.
  Inside a run-on line, ``//`` or ``#####`` standing between spaces starts an author's
  comment that runs to the next header.
* **Continuation lines** belong to the entry before and are joined to its message with a
  newline: lines indented with a tab (SIP messages, ``downd`` results), CUCM's
  untimed lines after a ``cucm-tvs`` entry (``HEX_DUMP: Len = N:``, ``Decoded Phone Msg:``),
  and every line that starts no header after a ``cucm-sdl`` or ``jabber`` entry: the SDI
  trace and the CSF logger write multi-line messages (a whole SIP message, a configuration
  file) as they are, one entry over many lines.
* **Comments**: lines starting with ``//`` or ``#####`` (after optional spaces) are the
  author's, not the device's: ``parse`` skips them, ``check`` ignores them, and an entry
  never continues across one.
* **Blank lines** are skipped.
* **Anything else** comes back as an entry with ``dialect=None`` and the raw line as
  ``message`` (other fields ``None``), unless ``unwrap=True``: then a line that follows an
  entry is taken as the rest of that entry broken by a web page's line wrapping, and is
  joined to its message with one space (blank lines in between are passed over). That is
  how the wrapped entries of Cisco TAC 118893's Japanese edition read back whole; it is not the default because
  it would also swallow foreign lines that happen to follow an entry.

``check`` lists the lines that do not read in any dialect: exactly the lines that produce
a ``dialect=None`` entry.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator

import attrs

from phone.errors import RemoteError

__all__ = [
    "DIALECTS",
    "JABBER_LEVELS",
    "LEVELS",
    "MULTILINE_DIALECTS",
    "MONTHS",
    "TVS_LEVELS",
    "LogEntry",
    "NotALogError",
    "Unread",
    "check",
    "decode_log",
    "decode_log_lines",
    "header_positions",
    "iter_entries",
    "parse",
]

#: The dialect names of docs/logs.md, as they appear in the ``dialect`` field.
DIALECTS = ("java79xx", "enterprise", "cucm-tvs", "cucm-sdl", "jabber")

#: Dialects whose writers put multi-line messages in the file as they are.
MULTILINE_DIALECTS = frozenset({"cucm-sdl", "jabber"})

#: Level words of the Jabber/CSF logger (log4cxx levels).
JABBER_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL")

#: Phone severity words (docs/logs.md lists these five; the table is the one place to extend).
LEVELS = ("NOT", "ERR", "WRN", "INF", "DEB")

#: Level words of the CUCM trace (SDI levels as they are printed; "debug" in every sample).
TVS_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal", "notice", "trace")

#: Month names of enterprise dates, fixed (a locale never changes what a phone prints).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_LVL = "|".join(LEVELS)
_MON = "|".join(MONTHS)

# Each dialect's header, anchored where an entry starts. The process separator of the
# phone dialects is ":" (optionally followed by one space) or "-" (docs/logs.md).
_JAVA = re.compile(
    rf"(?P<seq>\d+):? (?P<level>{_LVL}) (?P<time>\d\d:\d\d:\d\d\.\d{{1,6}})"
    rf"(?: {{1,2}}(?P<process>[A-Za-z_][\w.]*)(?::[ \t]?|-)| +|$)"
)
_ENTERPRISE = re.compile(
    rf"(?P<seq>\d+):? (?P<level>{_LVL}) (?P<month>{_MON}) +(?P<day>\d{{1,2}}) +"
    rf"(?P<time>\d\d:\d\d:\d\d\.\d{{1,6}})(?: +\((?P<pid>\d+)[:-](?P<tid>\d+)\))?"
    rf"(?: +(?P<process>[A-Za-z_][\w.]*(?:\(\d+\))?)(?:-|: -|: ?)| +|$)"
)
# CUCM SDL/SDI: "NNNNNNNN.NNN |HH:MM:SS.mmm |Level    |text"; a web page may have put a space
# before the dot (Cisco TAC 211304 shows "82645958 .001").
_SDL = re.compile(r"(?P<seq>\d{6,10}) ?\.\d{3} +\|(?P<time>\d\d:\d\d:\d\d\.\d{3}) *\|(?P<level>[A-Za-z]+) *\|")
_JABBER_LVL = "|".join(JABBER_LEVELS)
_JABBER = re.compile(
    rf"(?:(?:(?P<date>\d{{4}}-\d\d-\d\d) )?(?P<time>\d\d:\d\d:\d\d,\d{{3}}) +)?"
    rf"(?P<level>{_JABBER_LVL}) +\[0x(?P<tid>[0-9A-Fa-f]{{1,16}}) *\] +\[(?P<file>[^\]]*)\] +"
    rf"\[(?P<process>[^\]]*)\] +\[(?P<function>[^\]]*)\] +-(?: |$)"
)
_TVS = re.compile(r"(?P<time>\d\d:\d\d:\d\d\.\d{3}) \|")
_TVS_LEVEL = re.compile(rf"\s*(?P<level>{'|'.join(TVS_LEVELS)})(?:\s+|$)")

# Where a header may start inside a line: at its beginning or after whitespace. Only the
# cheap common prefix is searched; each hit is confirmed with the dialect's full header.
_HEAD_HINT = re.compile(
    rf"(?<!\S)(?:\d+:? (?:{_LVL}) |\d\d:\d\d:\d\d\.\d{{3}} \||\d{{6,10}} ?\.\d{{3}} +\|"
    rf"|(?:\d{{4}}-\d\d-\d\d )?\d\d:\d\d:\d\d,\d{{3}} +(?:{_JABBER_LVL}) |(?:{_JABBER_LVL}) +\[0x)"
)
# Every header but the first on a line holds one of these; most lines hold none, and
# str.find is far cheaper than a regex scan of the whole message.
_HEAD_MARKS = (" |", " [0x", *(f" {level} " for level in LEVELS))
_INLINE_COMMENT = re.compile(r"(?<!\S)(?://|#####)(?!\S)")
_TVS_UNTIMED = re.compile(r"(?:HEX_DUMP: Len = \d+:|Decoded Phone Msg:)\s*$")


class NotALogError(RemoteError):
    """Input that is not text (a binary file given where a console log was expected)."""


@attrs.frozen
class LogEntry:
    """One console log entry (docs/logs.md). ``line`` is the 1-based line where it starts."""

    line: int
    dialect: str | None
    seq: int | None
    level: str | None
    date: str | None
    time: str | None
    pid: int | None
    tid: int | None
    process: str | None
    message: str

    @classmethod
    def unread(cls, line: int, text: str) -> LogEntry:
        """A line no dialect reads: ``dialect`` None, the raw text as ``message``."""
        return cls(line, None, None, None, None, None, None, None, None, text)

    def to_dict(self) -> dict[str, object]:
        """The ``logs parse --json`` object (docs/logs.md), keys in contract order."""
        return {
            "line": self.line,
            "dialect": self.dialect,
            "seq": self.seq,
            "level": self.level,
            "date": self.date,
            "time": self.time,
            "pid": self.pid,
            "tid": self.tid,
            "process": self.process,
            "message": self.message,
        }


@attrs.frozen
class Unread:
    """A line of ``check``'s report: its number, its text and, when it looks like the rest
    of a wrapped entry, the line where that entry starts."""

    line: int
    text: str
    wrapped_from: int | None = None


def decode_log(data: bytes, where: str = "input") -> str:
    """Bytes of a log file as text. NUL bytes mean a binary file; bytes that are not UTF-8
    (published logs carry stray ones, e.g. 213407's garbled "ReasonInfo") become U+FFFD."""
    if b"\x00" in data:
        raise NotALogError(f"{where}: binary data (NUL byte at offset {data.index(0)}), expected a text console log")
    return data.decode("utf-8", errors="replace")


def decode_log_lines(raw_lines: Iterable[bytes], where: str = "input") -> Iterator[str]:
    """The lines of a log read as bytes, one at a time, as ``decode_log(data).splitlines()``
    would give them (same line breaks, same replacement of bad UTF-8, NotALogError at the
    first NUL byte) without holding the file: ``raw_lines`` is e.g. an open binary file."""
    offset = 0
    for raw in raw_lines:
        if b"\x00" in raw:
            raise NotALogError(f"{where}: binary data (NUL byte at offset {offset + raw.index(0)}), "
                               "expected a text console log")
        offset += len(raw)
        yield from raw.decode("utf-8", errors="replace").splitlines()


def _header(text: str, pos: int) -> tuple[str, re.Match[str]] | None:
    """The dialect whose header starts at ``pos``, with its match."""
    first = text[pos : pos + 1]
    if not first.isdigit():
        m = _JABBER.match(text, pos) if first.isupper() else None
        return ("jabber", m) if m else None
    m = _TVS.match(text, pos)
    if m:
        return "cucm-tvs", m
    m = _JAVA.match(text, pos)
    if m:
        return "java79xx", m
    m = _ENTERPRISE.match(text, pos)
    if m:
        return "enterprise", m
    m = _SDL.match(text, pos)
    if m:
        return "cucm-sdl", m
    m = _JABBER.match(text, pos)
    if m:
        return "jabber", m
    return None


def header_positions(text: str) -> list[int]:
    """Where a dialect header starts in ``text``: at its start or after whitespace.

    These are the points where ``parse`` would begin a new entry if ``text`` were (part
    of) a line; the console writers use it to escape text that only looks like a header."""
    positions = []
    for hint in _HEAD_HINT.finditer(text):
        if _header(text, hint.start()):
            positions.append(hint.start())
    return positions


def _entry(line: int, dialect: str, m: re.Match[str], rest: str) -> LogEntry:
    """The entry whose header is ``m`` and whose text after the header is ``rest``."""
    if dialect == "cucm-tvs":
        level = None
        if not rest.startswith(("-->", "<--")):  # entry/exit markers keep their arrow
            lm = _TVS_LEVEL.match(rest)
            if lm:
                level, rest = lm.group("level"), rest[lm.end() :]
        return LogEntry(line, dialect, None, level, None, m.group("time"), None, None, None, rest.strip())
    if dialect == "cucm-sdl":
        return LogEntry(line, dialect, int(m.group("seq")), m.group("level"), None, m.group("time"),
                        None, None, None, rest.strip())
    if dialect == "jabber":
        return LogEntry(line, dialect, None, m.group("level"), m.group("date"), m.group("time"),
                        None, int(m.group("tid"), 16), m.group("process"), rest.strip())
    g = m.groupdict()
    date = f"{g['month']} {g['day']}" if dialect == "enterprise" else None
    pid = int(g["pid"]) if g.get("pid") else None
    tid = int(g["tid"]) if g.get("tid") else None
    return LogEntry(line, dialect, int(g["seq"]), g["level"], date, g["time"], pid, tid, g["process"], rest.strip())


def _heads(text: str, start: int) -> Iterator[tuple[int, str, re.Match[str]]]:
    """The dialect headers on one physical line, in order, found lazily (one regex pass)."""
    found = _header(text, start)
    last_end = start
    if found:
        yield (start, *found)
        last_end = found[1].end()
    if not any(text.find(mark, last_end) >= 0 for mark in _HEAD_MARKS):
        return
    for hint in _HEAD_HINT.finditer(text, last_end):
        if hint.start() < last_end:
            continue
        found = _header(text, hint.start())
        if found:
            yield (hint.start(), *found)
            last_end = found[1].end()


def _pieces(line: int, text: str) -> Iterator[LogEntry | None]:
    """The entries on one physical line (several for a run-on line); None for a comment.

    Lazy: a run-on line of a million entries (a log that lost its newlines) is read one
    entry at a time, each cut at the next header as it is found."""
    start = len(text) - len(text.lstrip(" "))
    heads = _heads(text, start)
    current = next(heads, None)
    if current is None:
        stripped = text.strip()
        yield None if stripped.startswith(("//", "#####")) else LogEntry.unread(line, text)
        return
    following = next(heads, None)
    run_on = following is not None or current[0] != start
    if current[0] != start:
        prefix = text[: current[0]].strip()
        yield None if prefix.startswith(("//", "#####")) else LogEntry.unread(line, prefix)
    while current is not None:
        _, dialect, m = current
        end = following[0] if following is not None else len(text)
        message = text[m.end() : end]
        if run_on:
            comment = _INLINE_COMMENT.search(message)
            if comment:
                message = message[: comment.start()]
        yield _entry(line, dialect, m, message)
        current, following = following, (next(heads, None) if following is not None else None)


class _Pending:
    """The entry that later lines may still continue; its message grows as a list of parts,
    so that 500,000 continuation lines cost linear time, not a copy of the message each."""

    __slots__ = ("entry", "parts")

    def __init__(self, entry: LogEntry) -> None:
        self.entry = entry
        self.parts: list[str] = []

    def add(self, separator: str, text: str) -> None:
        self.parts += (separator, text)

    @property
    def has_text(self) -> bool:
        return bool(self.entry.message) or bool(self.parts)

    def done(self) -> LogEntry:
        if not self.parts:
            return self.entry
        return attrs.evolve(self.entry, message=self.entry.message + "".join(self.parts))


def iter_entries(lines: Iterable[str], *, unwrap: bool = False) -> Iterator[LogEntry]:
    """Entries of a console log given as lines (with or without line endings), in order.

    See the module docstring for how lines become entries; ``unwrap`` joins the pieces of
    entries that a web page wrapped over several lines. Linear in the input and streaming:
    at most one entry (and one physical line) is held at a time."""
    pending: _Pending | None = None  # the entry that later lines may still continue
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        if pending is not None:
            if text.startswith("\t"):
                pending.add("\n", text.rstrip())
                continue
            if pending.entry.dialect == "cucm-tvs" and _TVS_UNTIMED.match(text):
                pending.add("\n", text.strip())
                continue
        pieces = _pieces(number, text)
        first = next(pieces)
        if (pending is not None and pending.entry.dialect in MULTILINE_DIALECTS
                and first is not None and first.dialect is None):
            # The SDI trace / CSF logger wrote a multi-line message: this line (or the part of a
            # run-on line before its first header) is the rest of the entry before.
            pending.add("\n", first.message.strip())
            first = next(pieces, None)
            if first is None:
                continue
        second = next(pieces, _END) if unwrap and pending is not None else _UNSEEN
        if second is _END and first is not None and first.dialect is None:
            pending.add(" " if pending.has_text else "", text.strip())  # type: ignore[union-attr]
            continue
        if pending is not None:
            yield pending.done()
            pending = None
        for piece in _chain(first, second, pieces):
            if pending is not None:
                yield pending.done()
            # A comment ends the entry before it; an unread line is never continued.
            pending = _Pending(piece) if piece is not None and piece.dialect is not None else None
            if piece is not None and piece.dialect is None:
                yield piece
    if pending is not None:
        yield pending.done()


_END = object()  # no second piece on the line
_UNSEEN = object()  # the second piece was not looked at


def _chain(first, second, rest):
    yield first
    if second is _UNSEEN:
        yield from rest
    elif second is not _END:
        yield second
        yield from rest


def parse(text: str, *, unwrap: bool = False) -> list[LogEntry]:
    """All entries of a console log (docs/logs.md); see the module docstring for the rules."""
    return list(iter_entries(text.splitlines(), unwrap=unwrap))


def check(text: str, *, unwrap: bool = False) -> list[Unread]:
    """The lines that read in no dialect (blank and comment lines are fine).

    A line that ``unwrap`` would join to the entry before it is reported with that entry's
    line in ``wrapped_from``, so that a user sees a wrapped web copy for what it is."""
    lines = text.splitlines()
    starts = sorted({entry.line for entry in iter_entries(lines, unwrap=True)})
    report = []
    for entry in iter_entries(lines, unwrap=unwrap):
        if entry.dialect is None:
            at = bisect.bisect_left(starts, entry.line)
            swallowed = at == len(starts) or starts[at] != entry.line
            report.append(Unread(entry.line, entry.message, starts[at - 1] if swallowed and at else None))
    return report
