"""One phone's boot in one step, as a worker reports it and the results database stores it.

The fields are the ``boots`` table's columns (``phone.fleet.db``) in order,
plus ``files`` (JSON), which goes to the ``files`` table.
"""

from __future__ import annotations

import operator

import attrs

from phone.firmware.models import CUCM_UNSUPPORTED


@attrs.frozen
class BootRow:
    """A boot's outcome (``phone.firmware.outcome.classify``), its TVS attempts and files, and its timings."""

    step_index: int
    phone_index: int
    mac: str
    model: str
    outcome: str                 # accepted | rejected | unchanged | failed | unsupported
    erase_needed: bool
    through_tvs: bool
    codes: str                   # rejection codes, comma-separated
    tvs: str                     # JSON list of TVS attempts: server, type, status, roles, error
    files: str                   # JSON list of [name, result, code, via, reason]
    error: str | None            # a boot that raised: the exception; an unsupported phone: why
    start: float                 # Unix time the boot began
    tftp_seconds: float
    tvs_seconds: float
    total_seconds: float
    downloads: int
    tvs_requests: int
    #: CAPF installed an LSC in this boot (docs/capf.md).
    lsc_installed: bool = False
    #: The registration's result (docs/registration.md): registered, rejected, failed, waiting; None: none.
    registration: str | None = None

    @classmethod
    def failed(cls, step_index: int, phone_index: int, mac: str, model: str, error: str, start: float, *,
               tftp_seconds: float = 0.0, tvs_seconds: float = 0.0, total_seconds: float = 0.0,
               downloads: int = 0, tvs_requests: int = 0) -> BootRow:
        """A boot that raised instead of ending: still one row for the phone, with the error."""
        return cls(step_index, phone_index, mac, model, "failed", False, False, "", "[]", "[]", error, start,
                   tftp_seconds, tvs_seconds, total_seconds, downloads, tvs_requests)

    @classmethod
    def unsupported(cls, step_index: int, phone_index: int, mac: str, model: str, reason: str,
                    start: float) -> BootRow:
        """A phone the cluster's CUCM release does not support on its load: not booted, not emulated
        as if it worked (``PhoneModel.cucm_support`` gives ``reason``)."""
        return cls(step_index, phone_index, mac, model, "unsupported", False, False, CUCM_UNSUPPORTED, "[]", "[]",
                   reason, start, 0.0, 0.0, 0.0, 0, 0)


#: The field names, in order.
BOOT_FIELDS = tuple(field.name for field in attrs.fields(BootRow))
#: A row's values in ``BOOT_FIELDS`` order (for the database; faster than ``attrs.astuple``).
row_values = operator.attrgetter(*BOOT_FIELDS)
