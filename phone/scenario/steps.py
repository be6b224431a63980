"""Carrying out a scenario's cluster side: labs, operations, placeholders, phone selectors.

Shared by the scenario runner (a handful of phones, every expectation checked)
and the fleet (thousands of phones, outcomes counted), so that both replay a
scenario's steps identically.
"""

from __future__ import annotations

import datetime
import re
import shlex
from collections.abc import Callable
from pathlib import Path

from phone.lab import Lab
from phone.firmware.models import Catalogue, PhoneModel
from phone.scenario.rehearsal import run_lab_command
from phone.scenario.model import Operation, Scenario, ScenarioError

#: ``{work}`` and ``{cert:LAB:SERVICE}`` in scenario operations (see phone.scenario.model).
_PLACEHOLDER = re.compile(r"\{(work|cert:([a-z0-9_-]+):([A-Za-z]+))\}")

LabDir = Callable[[str], Path]


def is_sbd(model: PhoneModel) -> bool:
    """Security by Default, as the model record defines it (``PhoneModel.security_by_default``)."""
    return model.security_by_default


def selects(selector: str, model: PhoneModel, catalogue: Catalogue) -> bool:
    """A scenario selector ("*", "sbd", "legacy" or a model name or alias) matches ``model``."""
    if selector == "*":
        return True
    if selector in ("sbd", "legacy"):
        return is_sbd(model) == (selector == "sbd")
    return catalogue.get(selector).name == model.name


def expand(text: str, work: Path, lab_dir: LabDir) -> str:
    """``text`` with ``{work}`` and ``{cert:LAB:SERVICE}`` (that lab's publisher PEM) filled in."""
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "work":
            return str(work)
        return str(Lab.open(lab_dir(match.group(2))).certificate_paths(match.group(3))[0])

    return _PLACEHOLDER.sub(replace, text)


def create_labs(scenario: Scenario, lab_dir: LabDir, now: datetime.datetime, key_size: int | None = None) -> None:
    """Every lab of the scenario, made through ``phonetrust lab init`` (``key_size`` overrides theirs)."""
    for key, spec in scenario.labs.items():
        if lab_dir(key).exists() and any(lab_dir(key).iterdir()):
            raise ScenarioError(f"scenario {scenario.name}: {lab_dir(key)} exists and is not empty")
        code, text = run_lab_command(["init", str(lab_dir(key)), "--release", spec.release, "--nodes",
                                      str(spec.nodes), "--key-size", str(key_size or spec.key_size)], now)
        if code != 0:
            raise ScenarioError(f"scenario {scenario.name}: lab {key}: {' '.join(text.split())}")


def run_operation(operation: Operation, lab: Path, work: Path, lab_dir: LabDir,
                  now: datetime.datetime) -> tuple[list[str], str | None]:
    """One lab operation: what CUCM printed, and the problem if it did not go as the scenario says.

    An operation with ``fails_with`` must be refused with that text; any other must succeed.
    """
    words = shlex.split(expand(operation.run, work, lab_dir)) + ["--lab", str(lab)]
    code, text = run_lab_command(words, now)
    printed = [line for line in text.splitlines() if line.strip()]
    if operation.fails_with is not None:
        if code == 0 or operation.fails_with not in text:
            return printed, f"`lab {operation.run}` should have been refused with {operation.fails_with!r}"
    elif code != 0:
        return printed, f"`lab {operation.run}` failed: {' '.join(text.split())}"
    return printed, None
