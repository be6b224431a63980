"""`phonetrust scenario list|show|run`: the procedures of Cisco TAC 118893 and their failure cases, rehearsed.

`scenario run NAME|FILE [--json] [--junit FILE] [--phones MODEL[@LOAD]=N,… | --inventory FILE]`
builds the scenario's emulated clusters, serves them on loopback, runs every step with real phones
and prints a per-model table. Exit 0 when every expectation held, 1 when one
did not, 2 when the scenario itself cannot run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from phone.fleet.outputs import check_folder, check_outputs
from phone.catalogue import load_catalogue
from phone.fleet.inventory_file import inventory_devices, read_inventory_file, skipped_line
from phone.fleet.phones import allocate, parse_phones
from phone.scenario.definition import find_scenario, list_scenarios
from phone.scenario.report import render_text, to_json, to_junit, write_consoles
from phone.scenario.runner import ScenarioRun
from phone.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scenario", help="rehearse cluster changes (Cisco TAC 118893 and others) on emulated clusters",
                                   description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="the bundled scenarios")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=run_list)

    show = commands.add_parser("show", help="what a scenario does, step by step")
    show.add_argument("scenario", metavar="NAME|FILE", help="a bundled scenario's name or a .toml file")
    show.set_defaults(func=run_show)

    run = commands.add_parser("run", help="run a scenario and check every expectation")
    run.add_argument("scenario", metavar="NAME|FILE", help="a bundled scenario's name or a .toml file")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML")
    phones = run.add_mutually_exclusive_group()
    phones.add_argument("--phones", metavar="MODEL[@LOAD]=N,…",
                        help="phone mix instead of the scenario's own, e.g. CP-8861@sip88xx.12-8-1-0001-455=2,CP-7940=1")
    phones.add_argument("--inventory", type=Path, metavar="FILE",
                        help="the phones of a CUCM phone export (Bulk Administration, Export Phones) or a "
                             "device,model[,load] CSV, each with its own device name and load (docs/fleet.md)")
    run.add_argument("--work", type=Path, metavar="DIR",
                     help="keep the labs in DIR, which must be empty or new (default: a temporary folder)")
    run.add_argument("--force", action="store_true", help="with --work: use DIR even if it is not empty")
    run.add_argument("--models-dir", action="append", default=[], metavar="DIR", help="extra model folder")
    run.add_argument("--console-dir", type=Path, metavar="DIR",
                     help="write each phone's console per step to DIR/<step>/<MODEL>-<MAC>.log")
    run.add_argument("--key-size", type=int, choices=(1024, 2048, 4096),
                     help="the labs' key size instead of the scenario's, and the phones' MICs' (1024 is quicker)")
    run.set_defaults(func=run_scenario)


def run_list(args: argparse.Namespace) -> int:
    scenarios = list_scenarios()
    if args.json:
        print(json.dumps([{"name": s.name, "title": s.title, "source": s.source, "steps": len(s.steps),
                           "phones": dict(s.phones)} for s in scenarios], indent=2))
        return 0
    width = max(len(s.name) for s in scenarios)
    for scenario in scenarios:
        print(f"{scenario.name:<{width}}  {scenario.title}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    scenario = find_scenario(args.scenario)
    print(f"{scenario.name}: {scenario.title}")
    if scenario.source:
        print(f"source: {scenario.source}")
    print(scenario.description.strip())
    labs = ", ".join(f"{key}: CUCM {spec.release}, {spec.nodes} node(s)" for key, spec in scenario.labs.items())
    print(f"labs: {labs}")
    print("phones: " + ", ".join(f"{model}={count}" for model, count in scenario.phones.items()))
    for number, step in enumerate(scenario.steps, start=1):
        print(f"{number}. {step.name}: {step.title}")
        for operation in step.lab:
            refused = f"   (refused: {operation.fails_with})" if operation.fails_with else ""
            print(f"     phonetrust lab {operation.run}{refused}")
        for selector, settings in step.devices.items():
            print(f"     phonetrust lab device set <each {selector} phone> {' '.join(settings.words())}")
        for selector, digits in step.auth_string.items():
            print(f"     authentication string typed on each {selector} phone: {digits}")
    return 0


def run_scenario(args: argparse.Namespace) -> int:
    scenario = find_scenario(args.scenario)
    catalogue = load_catalogue(args.models_dir)
    mix = None if args.phones is None else allocate(parse_phones(args.phones, catalogue))
    skipped = None
    devices = []
    if args.inventory is not None:
        inventory, mix = read_inventory_file(args.inventory, catalogue)
        skipped = inventory.skipped
        devices = inventory_devices(inventory, catalogue)
    if args.work is not None and not args.force and _holds_anything(args.work):
        raise UsageError(f"--work {args.work} is not empty: the run would write its labs among what is there "
                         "(give an empty or new folder, or --force)")
    check_outputs({"--junit": args.junit})  # before the labs are built: a bad path must not lose the run
    check_folder(args.console_dir, "--console-dir")
    progress = (lambda message: print(f"... {message}", file=sys.stderr)) if sys.stderr.isatty() else (lambda m: None)
    with tempfile.TemporaryDirectory(prefix="phonetrust-scenario-") as scratch:
        work = args.work or Path(scratch)
        result = ScenarioRun(scenario, work, phones=mix, catalogue=catalogue, progress=progress,
                             key_size=args.key_size, devices=devices).run()
    if args.junit:
        args.junit.write_text(to_junit(result), encoding="utf-8")
    if args.console_dir:
        write_consoles(result, args.console_dir)
    if args.json:
        shown = to_json(result, catalogue)
        if skipped is not None:
            shown["skipped"] = skipped
        print(json.dumps(shown, indent=2))
    else:
        print(render_text(result, catalogue, color=sys.stdout.isatty()), end="")
        if skipped:
            print(skipped_line(skipped))
    return 0 if result.passed else 1


def _holds_anything(folder: Path) -> bool:
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise UsageError(f"--work {folder} is not a folder")
    return any(folder.iterdir())
