"""`phonetrust demo`: the main job on the embedded default, no arguments needed.

It replays the four procedures of Cisco TAC 118893 (non-secure → tokenless mixed
mode, eToken → tokenless, tokenless → eToken, CallManager regeneration) on
emulated CUCM 10.5 clusters served on loopback, with a mixed set of phones
booting over real TFTP and TLS, and prints what each model did at each
procedure's last change: who accepted (and whether TVS had to vouch), who
refused, and who now needs its CTL erased by hand. Then the same phones get
LSCs from CAPF, their configurations encrypted and an encrypted security
profile, and the CallManager certificate is regenerated again: the last two
columns say which models read their configuration encrypted to their LSC, and
which still register securely after the regeneration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from phone.catalogue import load_catalogue
from phone.scenario.definition import find_scenario
from phone.scenario.report import model_summary
from phone.scenario.runner import ScenarioRun

SEED_PROCEDURES = {
    "nonsecure-to-mixed": "non-secure → mixed",
    "etoken-to-tokenless": "eToken → tokenless",
    "tokenless-to-etoken": "tokenless → eToken",
    "regenerate-callmanager": "CallManager regenerated",
}
#: Secure phones (LSC, encrypted configuration, encrypted profile) through a CallManager regeneration.
IDENTITY_PROCEDURE = "regenerate-callmanager-with-secure-phones"
IDENTITY_COLUMNS = {"identity": "identity", "secure-registration": "registers securely after CallManager "
                    "regenerated"}
DEMO_PHONES = {"CP-7940": 1, "CP-7965": 1, "CP-7975": 1, "CP-8841": 1, "CP-8861": 1, "CP-7841": 1, "CP-9971": 1}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="replay the four procedures of Cisco TAC 118893 on an emulated cluster (no arguments)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--key-size", type=int, default=2048, choices=(1024, 2048), help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def _cell(summary: dict) -> str:
    if summary["rejected"]:
        erase = summary["erase_needed"]
        return "[bold red]refused: erase by hand[/bold red]" if erase else "[red]refused[/red]"
    if summary["accepted"]:
        return "[green]accepted[/green]" + (" via TVS" if summary["through_tvs"] else " on trust")
    if summary["failed"]:
        return "[yellow]failed[/yellow]"
    return "unchanged"


def _identity_cell(has_lsc: bool, phones: list) -> str:
    """The phones' LSC and whether their configuration came encrypted to it (docs/encrypted-config.md)."""
    if not has_lsc:
        return "[yellow]no LSC[/yellow]"
    reports = [phone.report for phone in phones if phone.report is not None]
    if reports and all(report.config_encrypted for report in reports):
        return "[green]LSC (encrypted config)[/green]"
    return "LSC (config in clear)"


def _registration_cell(phones: list) -> str:
    """Whether the phones registered, and how (docs/registration.md)."""
    registrations = [phone.report.registration for phone in phones if phone.report is not None]
    if registrations and all(r is not None and r.result == "registered" for r in registrations):
        return f"[green]yes ({registrations[0].mode})[/green]"
    codes = sorted({r.code for r in registrations if r is not None and r.result != "registered"})
    if not codes and any(phone.verdict is not None and phone.verdict.erase_needed for phone in phones):
        codes = ["CTL refused, erase by hand"]  # its configuration is refused too: no CallManager to ask
    return "[red]no[/red]" + (f": {', '.join(codes)}" if codes else "")


def _by_model(step) -> dict[str, list]:
    by_model: dict[str, list] = {}
    for phone in step.phones:
        by_model.setdefault(phone.spec.model.name, []).append(phone)
    return by_model


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    catalogue = load_catalogue()
    console.print("[bold]phonetrust demo[/bold]: the procedures of Cisco TAC 118893 on emulated CUCM 10.5 "
                  f"clusters, {sum(DEMO_PHONES.values())} phones of {len(DEMO_PHONES)} models booting over "
                  "loopback TFTP and TLS TVS.\n")
    columns: dict[str, dict[str, str]] = {}
    passed = True
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="phonetrust-demo-") as scratch:
        for name in SEED_PROCEDURES:
            scenario = find_scenario(name)
            with console.status(f"{scenario.title} …"):
                result = ScenarioRun(scenario, Path(scratch) / name, phones=DEMO_PHONES, catalogue=catalogue,
                                     key_size=args.key_size).run()
            passed &= all(not step.problems for step in result.steps)
            last = next(step for step in result.steps if step.step == scenario.last_change)
            console.print(f"[bold]{scenario.title}[/bold]")
            for line in last.lab_output:
                console.print(f"  {line}", markup=False)
            by_model: dict[str, list] = {}
            for phone in last.phones:
                by_model.setdefault(phone.spec.model.name, []).append(phone)
            columns[name] = {model: _cell(model_summary(phones)) for model, phones in by_model.items()}
            console.print()
        scenario = find_scenario(IDENTITY_PROCEDURE)
        with console.status(f"{scenario.title} …"):
            result = ScenarioRun(scenario, Path(scratch) / IDENTITY_PROCEDURE, phones=DEMO_PHONES,
                                 catalogue=catalogue, key_size=args.key_size).run()
        passed &= all(not step.problems for step in result.steps)
        console.print(f"[bold]{scenario.title}[/bold]")
        steps = {step.step.name: step for step in result.steps}
        for line in steps["regenerate-callmanager"].lab_output:
            console.print(f"  {line}", markup=False)
        console.print()
        enrolled = {model: all(phone.verdict is not None and phone.verdict.lsc_installed for phone in phones)
                    for model, phones in _by_model(steps["secure-pages"]).items()}
        columns["identity"] = {model: _identity_cell(enrolled.get(model, False), phones)
                               for model, phones in _by_model(steps["with-lsc"]).items()}
        columns["secure-registration"] = {model: _registration_cell(phones) for model, phones
                                          in _by_model(steps["regenerate-callmanager"]).items()}
    table = Table(title="What each phone model did at each procedure's last change")
    table.add_column("model")
    for heading in SEED_PROCEDURES.values():
        table.add_column(heading)
    for model in DEMO_PHONES:
        table.add_row(catalogue.get(model).name, *(columns[name].get(catalogue.get(model).name, "-")
                                                    for name in SEED_PROCEDURES))
    console.print(table)
    identity = Table(title="The same models with an LSC, an encrypted profile and encrypted configuration")
    identity.add_column("model")
    for heading in IDENTITY_COLUMNS.values():
        identity.add_column(heading)
    for model in DEMO_PHONES:
        identity.add_row(catalogue.get(model).name, *(columns[name].get(catalogue.get(model).name, "-")
                                                       for name in IDENTITY_COLUMNS))
    console.print(identity)
    console.print(f"\nSBD phones (7945/7965 and newer) accept a new CTL signer through TVS; the 7940/7960 keep the old "
                  f"CTL until it is erased by hand (docs/phone.md, docs/models.md). With LSCs from CAPF the phones "
                  f"that support it read their configuration encrypted and register over TLS presenting the LSC "
                  f"(docs/capf.md, docs/encrypted-config.md, docs/registration.md). "
                  f"{time.perf_counter() - started:.1f} s.")
    console.print("Next: `phonetrust scenario list`, `phonetrust scenario run regenerate-callmanager`, "
                  "`phonetrust fleet run regenerate-callmanager --phones CP-7975=300,CP-8861=600,CP-7940=100`.")
    if not passed:
        print("phonetrust: a procedure's cluster checks did not hold (see above)", file=sys.stderr)
        return 1
    return 0
