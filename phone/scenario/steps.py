"""Carrying out a scenario's cluster side: labs, operations, placeholders, phone selectors.

Shared by the scenario runner (a handful of phones, every expectation checked)
and the fleet (thousands of phones, outcomes counted), so that both replay a
scenario's steps identically.
"""

from __future__ import annotations

import datetime
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.x509.oid import NameOID

from phone.errors import PhonetrustError
from phone.lab import Lab, OperationRefused
from phone.lab.devices import DeviceRecord, DeviceStore
from phone.firmware.models import Catalogue, PhoneModel
from phone.scenario.definition import Operation, Scenario, ScenarioError
from phone.wire.certs import load_certificate

#: ``{work}`` and ``{cert:LAB:SERVICE}`` in scenario operations (see phone.scenario.definition).
_PLACEHOLDER = re.compile(r"\{(work|cert:([a-z0-9_-]+):([A-Za-z]+))\}")
_COMMON_NAME = re.compile(r"\{cn:([^{}]+)\}")

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
    """``text`` with ``{work}`` and ``{cert:LAB:SERVICE}`` (that lab's publisher PEM) filled in, then
    ``{cn:FILE}`` (the subject CN of the certificate in FILE, e.g. one an earlier ``cert export`` wrote
    to ``{work}``: what ``cert delete`` takes once that certificate has been regenerated)."""
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "work":
            return str(work)
        return str(Lab.open(lab_dir(match.group(2))).certificate_paths(match.group(3))[0])

    return _COMMON_NAME.sub(_common_name_of, _PLACEHOLDER.sub(replace, text))


def _common_name_of(match: re.Match[str]) -> str:
    path = Path(match.group(1))
    try:
        certificate = load_certificate(path.read_bytes(), source=str(path))
    except OSError as error:
        raise ScenarioError(f"{{cn:{path}}}: cannot read the certificate ({error.strerror or error})") from None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ScenarioError(f"{{cn:{path}}}: the certificate has no CN")
    return str(names[0].value)


def create_labs(scenario: Scenario, lab_dir: LabDir, now: datetime.datetime, key_size: int | None = None,
                devices: Sequence[DeviceRecord] = ()) -> None:
    """Every lab of the scenario, as ``phonetrust lab init`` makes it (``key_size`` overrides theirs),
    with ``devices`` (an inventory's security profiles and CAPF settings) in each lab's device store."""
    for key, spec in scenario.labs.items():
        if lab_dir(key).exists() and any(lab_dir(key).iterdir()):
            raise ScenarioError(f"scenario {scenario.name}: {lab_dir(key)} exists and is not empty")
        try:
            Lab.create(lab_dir(key), release=spec.release, nodes=spec.nodes, key_bits=key_size or spec.key_size,
                       clock=lambda: now)
            if devices:
                DeviceStore.for_lab(lab_dir(key)).put_many(list(devices))
        except PhonetrustError as error:
            raise ScenarioError(f"scenario {scenario.name}: lab {key}: {error}") from None


def run_operation(operation: Operation, lab: Path, work: Path, lab_dir: LabDir,
                  now: datetime.datetime) -> tuple[list[str], str | None]:
    """One lab operation through the lab's dispatcher (``Lab.run``): the lines CUCM printed (or its
    refusal), and the problem if it did not go as the scenario says.

    An operation with ``fails_with`` must be refused with that text; any other must succeed.
    """
    try:
        result = Lab.open(lab, clock=lambda: now).run(shlex.split(expand(operation.run, work, lab_dir)))
    except OperationRefused as refusal:
        if operation.fails_with is not None and operation.fails_with in str(refusal):
            return [str(refusal)], None
        if operation.fails_with is not None:
            return [str(refusal)], (f"`lab {operation.run}` should have been refused with "
                                    f"{operation.fails_with!r}, not {str(refusal)!r}")
        return [str(refusal)], f"`lab {operation.run}` was refused: {refusal}"
    except PhonetrustError as error:
        return [], f"`lab {operation.run}` failed: {error}"
    if operation.fails_with is not None:
        return list(result.lines), f"`lab {operation.run}` should have been refused with {operation.fails_with!r}"
    return list(result.lines), None
