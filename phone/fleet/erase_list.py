"""The erase list: every phone that needs its CTL/ITL erased by hand, as CSV.

After a cluster change that some phones refuse (Cisco TAC note 118893: a
phone without TVS, or one whose installed lists no longer name the signer),
someone has to walk to each such phone and erase its trust lists from the
Settings > Security menu. ``fleet run --erase-list OUT.csv`` and ``fleet
report DB --erase-list OUT.csv`` write that list: header
``device,model,load,reason``, one row per phone whose outcome at the
scenario's last cluster change says it needs the erase (docs/fleet.md,
"Erase list").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from phone.fleet.per_phone import PhoneLine

HEADER = ("device", "model", "load", "reason")


def erase_rows(lines: Iterable[PhoneLine]) -> list[tuple[str, str, str, str]]:
    """The list's rows: each phone that needs a hand erase, with the reason in words."""
    return [(line.device, line.model, line.load, line.reason or line.outcome) for line in lines if line.erase_needed]


def erase_list_csv(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """The CSV text (header first; CRLF line ends, as spreadsheets and CUCM's own exports use)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


def write_erase_list(path: Path, lines: Iterable[PhoneLine]) -> int:
    """Write the erase list to ``path``; returns how many phones it names."""
    rows = erase_rows(lines)
    Path(path).write_text(erase_list_csv(rows), encoding="utf-8", newline="")
    return len(rows)
