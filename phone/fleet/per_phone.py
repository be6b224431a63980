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

from phone.catalogue import default_catalogue
from phone.errors import PhonetrustError
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
    #: The CUCM releases that support the model on its load, in words ("up to 11.5", "any"; empty
    #: when the model is not in this machine's catalogue): docs/models.md "CUCM releases".
    cucm_releases: str = ""


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
    releases: dict[tuple[str, str | None], str] = {}
    lines = []
    for mac, boot in db.last_boots(connection, step, run_id=run_id).items():
        kind = (boot.model, boot.load)
        if kind not in releases:
            releases[kind] = cucm_releases_of(*kind)
        lines.append(PhoneLine(f"SEP{mac}", boot.model, boot.load or "", boot.outcome, boot.erase_needed,
                               reason_in_words(boot.codes, boot.error), releases[kind]))
    return sorted(lines, key=lambda line: line.device)


def cucm_releases_of(model: str, load: str | None) -> str:
    """Which CUCM releases support ``model`` on ``load`` (``PhoneModel.cucm_releases``); empty when the
    model or load is not one this machine's catalogue knows (a database from another machine)."""
    try:
        return default_catalogue().get(model).on_load(load).cucm_releases()
    except PhonetrustError:
        return ""
