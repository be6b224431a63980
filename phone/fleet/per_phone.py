"""Each phone's outcome at the step a report counts, with the reason in words.

What the HTML report's per-phone table and the erase list show: the device
name (``SEP`` + MAC, as CUCM names a phone), model, firmware load (empty: the
model's default load), outcome, whether it needs a hand erase, and why, in
words: each rejection code with its meaning (``phone.firmware.trust.REJECTION_CODES``),
or the first line of the error of a boot that raised.
"""

from __future__ import annotations

import sqlite3

import attrs

from phone.firmware.models import CUCM_UNSUPPORTED
from phone.firmware.trust import REJECTION_CODES
from phone.fleet import db


@attrs.frozen
class PhoneLine:
    """One phone's boot in the counted step, ready to show."""

    device: str
    model: str
    load: str
    outcome: str
    erase_needed: bool
    reason: str


def reason_in_words(codes: str, error: str | None = None) -> str:
    """``tvs-unreachable,no-tvs`` -> ``tvs-unreachable: no TVS server could be reached; no-tvs: …``;
    an unsupported phone: ``cucm-unsupported: CP-7970 … is not supported on CUCM 12.5: …``."""
    named = list(dict.fromkeys(code for code in codes.split(",") if code))
    if named == [CUCM_UNSUPPORTED]:
        return f"{CUCM_UNSUPPORTED}: {(error or '').strip() or 'the cluster CUCM release does not support it'}"
    if named:
        return "; ".join(f"{code}: {REJECTION_CODES.get(code, 'rejected')}" for code in named)
    if error:
        return error.strip().splitlines()[0] if error.strip() else ""
    return ""


def phone_lines(connection: sqlite3.Connection, step: str | None, *, run_id: int | None = None) -> list[PhoneLine]:
    """Every phone's boot in ``step`` (None: its last boot), of run ``run_id`` only when given, by device name."""
    lines = [PhoneLine(f"SEP{mac}", boot.model, boot.load or "", boot.outcome, boot.erase_needed,
                       reason_in_words(boot.codes, boot.error))
             for mac, boot in db.last_boots(connection, step, run_id=run_id).items()]
    return sorted(lines, key=lambda line: line.device)
