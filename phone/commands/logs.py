"""``phonetrust logs parse|check|diff``: reading console logs (docs/logs.md).

``parse FILE [--json]`` prints one entry per line (JSON objects with the contract's keys,
or an aligned table); ``check FILE`` exits 0 when every line reads in a dialect and else
lists the lines that do not (exit 1); ``diff A B`` aligns two runs' events after masking
numbers, addresses, times and hex, and exits 1 when some are missing, extra or reordered.
FILE may be ``-`` for standard input. ``--unwrap`` joins entries that a web page wrapped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from phone.console import diff as logdiff, parse as logparse
from phone.console.parse import LogEntry


def register(subparsers: argparse._SubParsersAction) -> None:
    logs = subparsers.add_parser("logs", help="read, check and compare console logs (docs/logs.md)")
    commands = logs.add_subparsers(dest="logs_command", metavar="COMMAND", parser_class=type(logs))
    commands.required = True

    unwrap = argparse.ArgumentParser(add_help=False)
    unwrap.add_argument(
        "--unwrap",
        action="store_true",
        help="join lines that continue the entry before them (text copied from a wrapping web page)",
    )

    parse = commands.add_parser("parse", parents=[unwrap], help="print the entries of a console log")
    parse.add_argument("file", metavar="FILE", help="console log, or - for standard input")
    parse.add_argument("--json", action="store_true", help="one JSON object per entry and line")
    parse.set_defaults(func=_parse)

    check = commands.add_parser("check", parents=[unwrap], help="list the lines that read in no dialect")
    check.add_argument("file", metavar="FILE", help="console log, or - for standard input")
    check.set_defaults(func=_check)

    diff = commands.add_parser("diff", parents=[unwrap], help="compare the events of two runs")
    diff.add_argument("a", metavar="A", help="first log (- for standard input)")
    diff.add_argument("b", metavar="B", help="second log")
    diff.set_defaults(func=_diff)


def _read(path: str) -> str:
    if path == "-":
        return logparse.decode_log(sys.stdin.buffer.read(), "standard input")
    return logparse.decode_log(Path(path).read_bytes(), path)


@contextlib.contextmanager
def _lines(path: str) -> Iterator[Iterator[str]]:
    """The file's lines, read and decoded one at a time (a log may be larger than memory)."""
    if path == "-":
        yield logparse.decode_log_lines(sys.stdin.buffer, "standard input")
        return
    with open(path, "rb") as handle:
        yield logparse.decode_log_lines(handle, path)


def _parse(args: argparse.Namespace) -> int:
    out = sys.stdout
    with _lines(args.file) as lines:
        entries = logparse.iter_entries(lines, unwrap=args.unwrap)
        if args.json:
            for entry in entries:  # streamed: one entry in memory at a time
                out.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
        else:
            out.write(_table(list(entries)))
    return 0


_COLUMNS = ("LINE", "DIALECT", "SEQ", "LEVEL", "DATE", "TIME", "PID:TID", "PROCESS", "MESSAGE")


def _row(entry: LogEntry) -> tuple[str, ...]:
    if entry.pid is not None:
        ids = f"{entry.pid}:{entry.tid}"
    else:  # a Jabber thread has no process id; it is printed as the log prints it
        ids = f"0x{entry.tid:08x}" if entry.tid is not None else ""
    cells = (entry.line, entry.dialect, entry.seq, entry.level, entry.date, entry.time, ids, entry.process)
    return (*("" if cell is None else str(cell) for cell in cells), entry.message.replace("\n", " \u23ce "))


def _table(entries: list[LogEntry]) -> str:
    rows = [_COLUMNS, *(_row(entry) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] + "\n" for row in rows
    )


def _check(args: argparse.Namespace) -> int:
    unread = logparse.check(_read(args.file), unwrap=args.unwrap)
    for item in unread:
        hint = (
            f"  (continues the entry of line {item.wrapped_from}? try --unwrap)"
            if item.wrapped_from is not None
            else ""
        )
        print(f"{args.file}:{item.line}: no dialect reads: {item.text}{hint}")
    if unread:
        print(f"{len(unread)} line(s) read in no dialect", file=sys.stderr)
        return 1
    return 0


def _describe(entry: LogEntry) -> str:
    head = " ".join(part for part in (entry.level, entry.process) if part)
    return f"{head}: {entry.message}" if head else entry.message


def _diff(args: argparse.Namespace) -> int:
    with _lines(args.a) as lines:
        a = list(logparse.iter_entries(lines, unwrap=args.unwrap))
    with _lines(args.b) as lines:
        b = list(logparse.iter_entries(lines, unwrap=args.unwrap))
    differences = logdiff.diff(a, b)
    for item in differences:
        if item.kind == "missing":
            print(f"- missing    A:{item.a.line}  {_describe(item.a)}")
        elif item.kind == "extra":
            print(f"+ extra      B:{item.b.line}  {_describe(item.b)}")
        else:
            print(f"~ reordered  A:{item.a.line} B:{item.b.line}  {_describe(item.a)}")
    counts = {kind: sum(1 for d in differences if d.kind == kind) for kind in ("missing", "extra", "reordered")}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(f"{len(a)} vs {len(b)} events: {summary}" if differences else f"{len(a)} events, equivalent")
    return 1 if differences else 0
