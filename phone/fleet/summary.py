"""What a fleet run says: per-model counts of each phone's last step (``fleet run --json``, docs/fleet.md).

``{"phones", "boots", "seconds", "by_model": {MODEL: {"accepted", "rejected",
"unchanged", "failed", "unsupported", "erase_needed", "through_tvs", "lsc_installed", "registered",
"registration_failed", "phones"}}}`` plus, as
extensions, ``boots_per_second`` and ``steps`` (one entry per step with its
own counts). ``accepted`` / ``rejected`` / ``unchanged`` / ``failed`` count
the outcome (``phone.firmware.outcome.classify``) of each phone's *last* step (for a
scenario: the step of its last cluster change, ``counted_step``);
``erase_needed`` the phones whose last boot left them needing a hand erase;
``through_tvs`` those whose last accepted list TVS vouched for; ``lsc_installed``
those to which CAPF issued an LSC in that step (docs/capf.md); ``registered``
those whose last boot registered with the CallManager and ``registration_failed``
those whose registration was rejected, failed or is waiting (docs/registration.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

#: ``unsupported``: the cluster's CUCM release does not support the phone's model on its load
#: (docs/models.md "CUCM releases"); the phone was not booted.
OUTCOMES = ("accepted", "rejected", "unchanged", "failed", "unsupported")


def empty_counts() -> dict[str, int]:
    return {**dict.fromkeys(OUTCOMES, 0), "erase_needed": 0, "through_tvs": 0, "lsc_installed": 0, "registered": 0,
            "registration_failed": 0, "phones": 0}


def count(rows: Iterable[tuple[Any, ...]]) -> dict[str, dict[str, int]]:
    """(model, outcome, erase_needed, through_tvs[, lsc_installed[, registration]]) rows as per-model counts,
    models in name order; ``registration`` is the registration's result, None when the boot did not register."""
    by_model: dict[str, dict[str, int]] = {}
    for model, outcome, erase, tvs, *more in rows:
        counts = by_model.setdefault(model, empty_counts())
        counts[outcome] = counts.get(outcome, 0) + 1
        counts["erase_needed"] += bool(erase)
        counts["through_tvs"] += bool(tvs)
        counts["lsc_installed"] += bool(more and more[0])
        registration = more[1] if len(more) > 1 else None
        if registration is not None:
            counts["registered" if registration == "registered" else "registration_failed"] += 1
        counts["phones"] += 1
    return dict(sorted(by_model.items()))


@attrs.frozen
class StepSummary:
    """One step: every phone booted once."""

    index: int
    name: str
    boots: int
    seconds: float
    by_model: dict[str, dict[str, int]]
    #: CPU seconds of the workers during the step, summed (for benchmarks).
    cpu_seconds: float = 0.0

    @property
    def boots_per_second(self) -> float:
        return self.boots / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "boots": self.boots, "seconds": round(self.seconds, 3),
                "boots_per_second": round(self.boots_per_second, 1), "by_model": self.by_model}


@attrs.frozen
class FleetSummary:
    phones: int
    boots: int
    seconds: float
    by_model: dict[str, dict[str, int]]
    steps: tuple[StepSummary, ...] = ()
    complete: bool = True
    #: The step whose outcome ``by_model`` counts (the last one, or a scenario's last cluster change).
    counted: str | None = None
    #: A run that did not finish: the last step every phone finished (None: not even the first).
    stopped_after: str | None = None

    @property
    def boots_per_second(self) -> float:
        return self.boots / self.seconds if self.seconds > 0 else 0.0

    def total(self, key: str) -> int:
        return sum(counts.get(key, 0) for counts in self.by_model.values())

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"phones": self.phones, "boots": self.boots, "seconds": round(self.seconds, 3),
                                    "by_model": self.by_model,
                                    "boots_per_second": round(self.boots_per_second, 1),
                                    "steps": [step.to_json() for step in self.steps]}
        if self.counted is not None:
            document["counted_step"] = self.counted
        if not self.complete:
            document["complete"] = False
            document["stopped_after"] = self.stopped_after
        return document
