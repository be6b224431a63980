"""What one boot meant for one phone, in the words a rehearsal reports.

``accepted``: a new trust list was installed and nothing was refused;
``rejected``: a file was refused (what was installed stays); ``unchanged``:
nothing new; ``failed``: a download or exchange did not complete; ``unsupported``: the
cluster's CUCM release does not support the model on its load, so it was not booted. A rejection
also says whether the phone now needs its lists erased by hand: when the cause
is one the cluster side cannot fix (the phone has no TVS path to the new
signer, or no longer trusts the TVS server), as for the 7940 after a
CallManager regeneration under a tokenless CTL (Cisco TAC 118893, docs/models.md).
"""

from __future__ import annotations

from enum import StrEnum

import attrs

from phone.firmware.machine import BootReport
from phone.firmware.models import CUCM_UNSUPPORTED

#: Causes the cluster cannot fix from its side: the phone refuses until erased by hand.
ERASE_CODES = frozenset({"no-tvs", "no-tvs-server", "tvs-untrusted-server", "signer-unknown"})


class PhoneOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    #: The cluster's CUCM release does not support the model on its load: the phone is not emulated
    #: as if it worked (docs/models.md "CUCM releases").
    UNSUPPORTED = "unsupported"


@attrs.frozen
class Verdict:
    outcome: PhoneOutcome
    erase_needed: bool = False
    #: Rejection codes of this boot, in file order (``phone.firmware.trust.REJECTION_CODES``).
    codes: tuple[str, ...] = ()
    #: True when an installed list was vouched for by TVS.
    through_tvs: bool = False
    #: True when CAPF installed an LSC in this boot (docs/capf.md).
    lsc_installed: bool = False
    #: Why, in words, when the outcome alone does not say (an unsupported phone's CUCM limit).
    reason: str | None = None


def _is_trust_list(name: str) -> bool:
    return name.endswith(".tlv")


def unsupported(reason: str) -> Verdict:
    """The verdict on a phone that was not booted: its CUCM release does not support it (``reason``)."""
    return Verdict(PhoneOutcome.UNSUPPORTED, codes=(CUCM_UNSUPPORTED,), reason=reason)


def classify(report: BootReport) -> Verdict:
    """The verdict on one boot (see the module docstring)."""
    rejected = [entry for entry in report.files if entry.result == "rejected"]
    installed = [entry for entry in report.files if entry.result == "installed" and _is_trust_list(entry.name)]
    codes = tuple(entry.code or "unknown" for entry in rejected)
    through_tvs = any(entry.via == "tvs" for entry in installed)
    lsc = report.capf is not None and report.capf.result == "installed"
    if rejected:
        stuck = any(_is_trust_list(entry.name) and entry.code in ERASE_CODES for entry in rejected)
        return Verdict(PhoneOutcome.REJECTED, stuck, codes, through_tvs, lsc_installed=lsc)
    if installed:
        return Verdict(PhoneOutcome.ACCEPTED, through_tvs=through_tvs, lsc_installed=lsc)
    if any(entry.result == "failed" for entry in report.files):
        return Verdict(PhoneOutcome.FAILED, lsc_installed=lsc)
    return Verdict(PhoneOutcome.UNCHANGED, lsc_installed=lsc)
