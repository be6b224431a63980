"""A scenario run as a per-model table, as JSON, and as JUnit XML for CI systems."""

from __future__ import annotations

import io
from pathlib import Path
import xml.etree.ElementTree as ElementTree
from collections import Counter
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from phone.scenario.definition import Expectation
from phone.scenario.runner import PhoneResult, ScenarioResult, StepResult, expectation_for

#: ``unsupported``: not booted, the lab's CUCM release does not support the model on its load.
_COUNTED = ("accepted", "rejected", "unchanged", "failed", "unsupported")


def _by_model(step: StepResult) -> dict[str, list[PhoneResult]]:
    grouped: dict[str, list[PhoneResult]] = {}
    for phone in step.phones:
        grouped.setdefault(phone.spec.model.name, []).append(phone)
    return grouped


def _expected_text(expectation: Expectation | None) -> str:
    if expectation is None:
        return "-"
    def text(value: object) -> str:
        if isinstance(value, tuple):
            return ",".join(map(str, value))
        return str(value).lower() if isinstance(value, bool) else str(value)

    shown = {key: value for key, value in attrs.asdict(expectation).items() if value is not None}
    return " ".join(f"{key}={text(value)}" for key, value in shown.items())


def model_summary(phones: list[PhoneResult]) -> dict[str, Any]:
    counts = Counter(phone.verdict.outcome.value for phone in phones if phone.verdict)
    summary: dict[str, Any] = {"phones": len(phones), **{key: counts.get(key, 0) for key in _COUNTED}}
    summary["erase_needed"] = sum(1 for phone in phones if phone.verdict and phone.verdict.erase_needed)
    summary["through_tvs"] = sum(1 for phone in phones if phone.verdict and phone.verdict.through_tvs)
    summary["lsc_installed"] = sum(1 for phone in phones if phone.verdict and phone.verdict.lsc_installed)
    registrations = [phone.report.registration for phone in phones
                     if phone.report is not None and phone.report.registration is not None]
    summary["registered"] = sum(1 for registration in registrations if registration.result == "registered")
    summary["registration_failed"] = len(registrations) - summary["registered"]
    codes = Counter(code for phone in phones if phone.verdict for code in phone.verdict.codes)
    summary["codes"] = dict(sorted(codes.items()))
    summary["mismatches"] = sorted({m for phone in phones for m in phone.mismatches})
    return summary


def to_json(result: ScenarioResult, catalogue: Any) -> dict[str, Any]:
    steps = []
    for step_result in result.steps:
        models = {}
        for name, phones in _by_model(step_result).items():
            summary = model_summary(phones)
            expectation = expectation_for(step_result.step, phones[0].spec.model, catalogue)
            summary["expected"] = None if expectation is None else {
                key: value for key, value in attrs.asdict(expectation).items() if value is not None}
            models[name] = summary
        steps.append({
            "name": step_result.step.name,
            "title": step_result.step.title,
            "passed": step_result.passed,
            "lab_output": list(step_result.lab_output),
            "problems": list(step_result.problems),
            "models": models,
        })
    return {
        "scenario": result.scenario.name,
        "title": result.scenario.title,
        "source": result.scenario.source,
        "passed": result.passed,
        "phones": {spec.mac: spec.model.name for spec in result.phones},
        "steps": steps,
    }


def render_text(result: ScenarioResult, catalogue: Any, *, width: int = 110, color: bool = False) -> str:
    """The run as a readable report: one table per step, then what did not match."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None)
    scenario = result.scenario
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.title}")
    if scenario.source:
        console.print(f"source: {scenario.source}")
    for number, step_result in enumerate(result.steps, start=1):
        step = step_result.step
        verdict = "[green]PASS[/green]" if step_result.passed else "[red]FAIL[/red]"
        console.print()
        console.print(f"[bold]Step {number}: {step.name}[/bold] {verdict}  {step.title}")
        for line in step_result.lab_output:
            console.print(f"  {line}", markup=False, highlight=False)
        if step_result.phones:
            table = Table(show_edge=False, pad_edge=False)
            for column in ("model", "phones", "accepted", "rejected", "unchanged", "failed", "unsupported", "erase",
                           "expected", ""):
                table.add_column(column, overflow="fold")
            for name, phones in _by_model(step_result).items():
                summary = model_summary(phones)
                expectation = expectation_for(step, phones[0].spec.model, catalogue)
                table.add_row(
                    name, str(summary["phones"]), *(str(summary[key]) for key in _COUNTED),
                    str(summary["erase_needed"]), _expected_text(expectation),
                    "ok" if not summary["mismatches"] else "[red]differs[/red]",
                )
            console.print(table)
        for phone in step_result.phones:
            for mismatch in phone.mismatches:
                console.print(f"  [red]{phone.spec.model.name} {phone.spec.mac}[/red]: {mismatch}", highlight=False)
        for problem in step_result.problems:
            console.print(f"  [red]{problem}[/red]", highlight=False)
    console.print()
    console.print("[green]Every expectation held.[/green]" if result.passed else "[red]Some expectations failed.[/red]")
    return buffer.getvalue()


def to_junit(result: ScenarioResult) -> str:
    """JUnit XML: one test case per step and model (plus one per step for trace/console checks)."""
    suite = ElementTree.Element("testsuite", name=f"phonetrust.{result.scenario.name}")
    cases = failures = 0
    for step_result in result.steps:
        checks: list[tuple[str, list[str]]] = [
            (f"{step_result.step.name}/{name}", sorted({m for p in phones for m in p.mismatches}))
            for name, phones in _by_model(step_result).items()
        ]
        checks.append((f"{step_result.step.name}/cluster", list(step_result.problems)))
        for name, problems in checks:
            case = ElementTree.SubElement(suite, "testcase", classname=result.scenario.name, name=name)
            cases += 1
            if problems:
                failures += 1
                failure = ElementTree.SubElement(case, "failure", message=problems[0])
                failure.text = "\n".join(problems)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def write_consoles(result: ScenarioResult, folder: Path) -> list[Path]:
    """Each phone's console of each step as ``folder/<step>/<MODEL>-<MAC>.log``."""
    written = []
    for number, step_result in enumerate(result.steps, start=1):
        step_folder = folder / f"{number:02d}-{step_result.step.name}"
        for phone in step_result.phones:
            if not phone.console:
                continue
            step_folder.mkdir(parents=True, exist_ok=True)
            path = step_folder / f"{phone.spec.model.name}-{phone.spec.mac}.log"
            path.write_text("\n".join(phone.console) + "\n", encoding="utf-8")
            written.append(path)
    return written
