"""`phonetrust fleet …`: many emulated phones through a rehearsal, or against a real TFTP/TVS.

- `fleet run [SCENARIO] (--phones MODEL[@LOAD]=N,… | --inventory FILE) [--tftp HOST[:PORT]] [--steps N]
  [--workers N] [--concurrency N] [--jitter S] [--rate R] [--shard K/N] [--db FILE] [--html FILE]
  [--erase-list OUT.csv] [--json] [--console-dir DIR] [--engine local|ray [--ray-address ADDRESS]]
  [--advertise ADDR]` — SCENARIO is a scenario name or file (``phonetrust scenario list``): its
  labs are made and served, each step's lab operations and phone actions run, then every phone
  boots; the summary counts the step of the scenario's last cluster change.
  ``testbed:regenerate-callmanager`` serves the fleet's own small cluster instead. With ``--tftp``
  and no SCENARIO the phones boot ``--steps`` times against that server (a lab CUCM), at most
  ``--rate`` boots per second (20 by default when the server is not on this machine); with
  ``--db`` the phones' flash is kept there and the next invocation starts from it (``--fresh``
  does not), so that each invocation is one step of a change made by hand on the server.
  ``--inventory`` takes the phones of a CUCM phone export (or a ``device,model[,load]`` CSV), each
  with its own device name and load; ``--erase-list`` writes the phones that need a hand erase.
  ``--engine ray`` runs the phones in Ray actors over a Ray cluster's nodes (docs/fleet.md,
  "On a Ray cluster"); ``--advertise`` serves the lab on an address those nodes reach.
- `fleet report DB [--json] [--html FILE] [--erase-list OUT.csv]` — the per-model table of a results
  database again.
- `fleet merge DB… [--out FILE] [--json] [--html FILE]` — the shards' results together: with
  `--out`, copied into one database; always printed as one table.

`--json` prints the summary (docs/fleet.md): {"phones", "boots", "seconds", "by_model": {MODEL:
{"accepted", "rejected", "unchanged", "failed", "erase_needed", "through_tvs", "phones"}}},
counting each phone's last step, plus "boots_per_second" and "steps"; with --inventory also
"skipped": {DEVICE TYPE: rows} (the rows that are not emulated phones).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import attrs

from phone import __version__
from phone.wire.addresses import parse_host_port
from phone.device.reach import is_loopback
from phone.fleet.erase_list import write_erase_list
from phone.fleet.inventory_file import inventory_devices, read_inventory_file, skipped_line
from phone.fleet.per_phone import phone_lines
from phone.fleet.outputs import check_folder, check_outputs
from phone.errors import PhonetrustError, UsageError
from phone.fleet import Fleet, Shard, default_workers, parse_phones
from phone.fleet import db as results_db
from phone.fleet.capacity import available_bytes, check_capacity, phones_in_shard
from phone.fleet.phones import DEFAULT_MAC_PREFIX, check_prefix
from phone.fleet.ray_engine import INSTALL_HINT
from phone.fleet.report import html_from_db, print_table, summary_from_db
from phone.fleet.summary import FleetSummary
from phone.fleet.targets import ScenarioTarget, ServerTarget, TestbedTarget
from phone.catalogue import load_catalogue

#: Boots per second started against a server that is not on this machine, unless --rate says otherwise.
DEFAULT_REMOTE_RATE = 20.0
TESTBED_PREFIX = "testbed:"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fleet", help="many phones at once: run a rehearsal, report, merge shards",
                                   description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    run = commands.add_parser("run", help="boot a fleet through a scenario or against a TFTP server")
    run.add_argument("scenario", nargs="?", metavar="SCENARIO",
                     help="scenario name or file (testbed:regenerate-callmanager serves a small cluster itself)")
    phones = run.add_mutually_exclusive_group()
    phones.add_argument("--phones", metavar="MODEL[@LOAD]=N,…",
                        help="e.g. CP-7975=300,CP-8861@sip88xx.12-8-1-0001-455=600,CP-7940=100 "
                             "(default: the scenario's own mix)")
    phones.add_argument("--inventory", type=Path, metavar="FILE",
                        help="the phones of a CUCM phone export (Bulk Administration, Export Phones) or a "
                             "device,model[,load] CSV: each keeps its device name (MAC) and load; rows that are "
                             "not emulated phones are skipped and counted")
    run.add_argument("--tftp", metavar="HOST[:PORT]", help="boot against this TFTP server instead of a scenario")
    run.add_argument("--steps", type=int, default=1, metavar="N", help="with --tftp: boots per phone (default 1)")
    run.add_argument("--cucm-release", metavar="RELEASE",
                     help="with --tftp: the server's CUCM release (e.g. 12.5); phones it does not support on "
                          "their load count as unsupported instead of booting (docs/models.md)")
    run.add_argument("--fresh", action="store_true",
                     help="with --tftp --db: start from empty phones, not from the flash the database kept")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help=f"worker processes, or Ray actors with --engine ray (default: the cores, here "
                          f"{default_workers()}; with Ray, the cluster's CPUs)")
    run.add_argument("--concurrency", type=int, default=None, metavar="N",
                     help="boots in flight at most, the whole fleet (default 16 per worker)")
    run.add_argument("--jitter", type=float, default=0.0, metavar="SECONDS",
                     help="each phone starts at a random moment within this many seconds of a step's start")
    run.add_argument("--rate", type=float, default=None, metavar="BOOTS_PER_S",
                     help=f"boots started per second at most (0: no limit; default: none on this machine, "
                          f"{DEFAULT_REMOTE_RATE:g} towards another)")
    run.add_argument("--shard", default="1/1", metavar="K/N",
                     help="run share K of N of the phones (every N-th phone, from the K-th)")
    run.add_argument("--mac-prefix", default=DEFAULT_MAC_PREFIX, metavar="HEX6",
                     help=f"first 3 bytes of every MAC (default {DEFAULT_MAC_PREFIX}, locally administered)")
    run.add_argument("--seed", type=int, default=0, help="seed of the start jitter")
    run.add_argument("--db", type=Path, metavar="FILE", help="write one row per phone per step to this SQLite file")
    run.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report")
    run.add_argument("--erase-list", type=Path, metavar="OUT.csv",
                     help="write device,model,load,reason for every phone that needs its CTL/ITL erased by hand")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--console-dir", type=Path, metavar="DIR", help="write each phone's console log here")
    run.add_argument("--tvs-timeout", type=float, default=None, metavar="SECONDS",
                     help="TVS connect/handshake/answer timeout (default: the model's)")
    run.add_argument("--models-dir", action="append", default=[], metavar="DIR", help="extra model folder")
    run.add_argument("--work", type=Path, metavar="DIR", help="with a SCENARIO: make its labs in this (empty) "
                     "folder and keep them (default: a temporary folder)")
    run.add_argument("--key-size", type=int, default=None, metavar="BITS",
                     help="with a SCENARIO: the labs' RSA key size instead of the scenario's (testbed: 2048)")
    run.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local: worker processes on this machine (default); ray: Ray actors over a Ray "
                          f"cluster's nodes (needs {INSTALL_HINT})")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="with --engine ray: the running Ray cluster to join (`ray start --head` prints it; "
                          "default: a local Ray instance started for this run)")
    run.add_argument("--advertise", metavar="ADDR",
                     help="with a SCENARIO: serve its lab on this address of this machine, the one phones on "
                          "other machines reach (default 127.0.0.1)")
    run.add_argument("--yes", action="store_true",
                     help="run even when the fleet looks larger than the memory available")
    run.set_defaults(func=run_fleet)

    report = commands.add_parser("report", help="print the per-model table of a results database",
                                 description="Print the per-model table of the runs a results database holds "
                                 "(written by `fleet run --db`).")
    report.add_argument("db", type=Path, metavar="DB", help="the results database of `fleet run --db`")
    report.add_argument("--json", action="store_true", help="print the summary as JSON (as `fleet run --json`)")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    report.add_argument("--erase-list", type=Path, metavar="OUT.csv",
                        help="write device,model,load,reason for every phone that needs its CTL/ITL erased by hand")
    report.set_defaults(func=run_report)

    merge = commands.add_parser("merge", help="combine the results of shards")
    merge.add_argument("dbs", type=Path, nargs="+", metavar="DB", help="the results database of each shard")
    merge.add_argument("--out", type=Path, metavar="FILE", help="copy every run into this database")
    merge.add_argument("--json", action="store_true", help="print the combined summary as JSON")
    merge.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    merge.set_defaults(func=run_merge)


# -- run --------------------------------------------------------------------------------------


class _Progress:
    """Progress on stderr: a rich bar on a terminal; otherwise a plain line every ``interval`` seconds
    (a log or a CI job still shows a long run moving)."""

    def __init__(self, terminal: bool, *, stream: IO[str] | None = None, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.terminal = terminal
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._bar = None
        self._tasks: dict[str, int] = {}
        self._last_line = clock()

    def __enter__(self) -> _Progress:
        if self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn())
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def update(self, step: str, done: int, total: int) -> None:
        if self._bar is None:
            now = self.clock()
            if not self.terminal and now - self._last_line >= self.interval:
                self._last_line = now
                print(f"phonetrust: step {step}: {done}/{total} phones booted", file=self.stream or sys.stderr,
                      flush=True)
            return
        if step not in self._tasks:
            self._tasks[step] = self._bar.add_task(step, total=total)
        self._bar.update(self._tasks[step], completed=done)


class _Interruptible:
    """Ctrl-C (SIGINT) and SIGTERM during a run: the first raises KeyboardInterrupt in the main thread,
    so every ``with`` block closes what it started (worker and lab processes, the database) and the
    run ends with one line; further signals are ignored while that clean-up runs (a few seconds)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Interruptible:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT,
                                                                                         signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)

    def _handle(self, number: int, frame: object) -> None:
        if self.signal is None:
            self.signal = number
            raise KeyboardInterrupt


def _about(target: ServerTarget, models: list[str], catalogue) -> dict[str, object]:
    """What the HTML report says of the scenario: its title, its steps, what the counted step expects per model."""
    if isinstance(target, ScenarioTarget):
        from phone.scenario.runner import expectation_for

        scenario = target.scenario
        expected = {}
        for model in models:
            expectation = expectation_for(scenario.last_change, catalogue.get(model), catalogue)
            if expectation is not None:
                expected[model] = {key: value for key, value in attrs.asdict(expectation).items() if value is not None}
        return {"scenario_title": f"{scenario.name}: {scenario.title}",
                "scenario_steps": [[step.name, step.title] for step in scenario.steps], "expected": expected}
    if isinstance(target, TestbedTarget):
        return {"scenario_title": f"{TESTBED_PREFIX}regenerate-callmanager (the fleet's own one-node cluster)",
                "scenario_steps": [[name, ""] for name in target.step_names()]}
    return {}


def _target(args: argparse.Namespace) -> tuple[ServerTarget, str | None]:
    """Where the phones boot and what changes between steps; the scenario's default phone mix."""
    if args.scenario and args.tftp:
        raise UsageError("give a SCENARIO or --tftp, not both")
    if args.tftp:
        if args.steps < 1:
            raise UsageError(f"--steps must be at least 1, not {args.steps}")
        if args.advertise is not None:
            raise UsageError("--advertise is where a SCENARIO's lab is served: with --tftp the server is given")
        host, port = parse_host_port(args.tftp, 69, what="TFTP server")
        release = None if args.cucm_release is None else _release(args.cucm_release)
        return ServerTarget(host, port, args.steps, release), None
    if not args.scenario:
        raise UsageError("give a SCENARIO to rehearse, or --tftp HOST[:PORT] to boot against a server")
    if args.cucm_release is not None:
        raise UsageError("--cucm-release is for --tftp: a SCENARIO's labs say their own release")
    host = _advertised(args.advertise)
    if args.scenario.startswith(TESTBED_PREFIX):
        name = args.scenario[len(TESTBED_PREFIX):]
        if name != "regenerate-callmanager":
            raise UsageError(f"unknown testbed scenario {name!r}: the testbed knows regenerate-callmanager")
        return TestbedTarget(bits=args.key_size or 2048, host=host), None
    from phone.scenario import find_scenario

    scenario = find_scenario(args.scenario)
    mix = ",".join(f"{model}={count}" for model, count in scenario.phones.items()) or None
    return ScenarioTarget(scenario, args.work, args.key_size, host=host), mix


def _release(text: str) -> str:
    """``--cucm-release``: a CUCM release as 11.5, 12.5 or 14; one line if it is not one."""
    from phone.firmware.models import release_key

    release_key(text)
    return text.strip()


def _advertised(address: str | None) -> str:
    """The address a scenario's lab is served on: ``--advertise``, else loopback (this machine only)."""
    if address is None:
        return "127.0.0.1"
    if address.strip() in ("", "0.0.0.0", "::", "*"):
        raise UsageError(f"--advertise {address!r} is every address: give the one address of this machine that "
                         "the phones' machines reach")
    return parse_host_port(address, 69, what="--advertise address")[0]


def run_fleet(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(args.models_dir)
    if args.engine == "ray":
        from phone.fleet.ray_engine import import_ray

        import_ray()  # not installed: how to install it, before anything is built
    elif args.ray_address is not None:
        raise UsageError("--ray-address is for --engine ray")
    target, default_mix = _target(args)
    skipped: dict[str, int] | None = None
    if args.inventory is not None:
        if check_prefix(args.mac_prefix) != DEFAULT_MAC_PREFIX:
            raise UsageError("--mac-prefix does not apply to --inventory: its phones keep their own MACs")
        inventory, phone_list = read_inventory_file(args.inventory, catalogue)
        skipped = inventory.skipped
        if isinstance(target, ScenarioTarget):  # the export's security profiles and CAPF settings, in its labs
            target.devices = tuple(inventory_devices(inventory, catalogue))
        fleet_phones: object = phone_list
        total = len(phone_list)
        models = list(dict.fromkeys(phone.model for phone in phone_list))
    else:
        if args.phones is None and default_mix is None:
            raise UsageError("give the phones: --phones MODEL=N[,MODEL=N…] or --inventory FILE")
        groups = parse_phones(default_mix if args.phones is None else args.phones, catalogue)
        fleet_phones, total = groups, sum(group.count for group in groups)
        models = list(dict.fromkeys(group.model for group in groups))
    prefix = check_prefix(args.mac_prefix)
    shard = Shard.parse(args.shard)
    rate = args.rate
    if rate is None and args.tftp and not is_loopback(parse_host_port(args.tftp, 69, what="TFTP server")[0]):
        rate = DEFAULT_REMOTE_RATE
    if rate is not None and rate < 0:
        raise UsageError(f"--rate must not be negative, not {rate}")
    # Before any lab is built or phone boots: a bad output path must not lose a whole run's results.
    check_outputs({"--db": args.db, "--html": args.html, "--erase-list": args.erase_list})
    check_folder(args.console_dir, "--console-dir")
    phones = phones_in_shard(total, shard.number, shard.of)
    workers = min(default_workers() if args.workers is None else max(0, args.workers), phones)
    check_capacity(phones, workers, len(target.step_names()), available=available_bytes(), allowed=args.yes)
    kept = {}
    resumes = type(target) is ServerTarget and args.db is not None
    if args.db is not None and args.db.exists():
        with contextlib.closing(results_db.connect(args.db)) as connection:  # appending: a results database
            if resumes and not args.fresh:
                kept = results_db.load_flash(connection)
    params = {"scenario": args.scenario, "steps": target.step_names(), "counted_step": target.counted,
              "target": args.tftp or args.scenario, "version": __version__,
              **_about(target, models, catalogue)}
    if args.inventory is not None:
        params.update(inventory=str(args.inventory), skipped=skipped)
    progress = _Progress(sys.stderr.isatty())
    # The per-phone table and the erase list are read from the results: a scratch database when no --db.
    scratch = contextlib.ExitStack()
    db_path = args.db
    if db_path is None and (args.html is not None or args.erase_list is not None):
        db_path = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="phonetrust-fleet-db-"))) / "run.db"
    with scratch:
        return _run(args, target, fleet_phones, params, progress, db_path, skipped, catalogue,
                    workers=args.workers, rate=rate, shard=shard, prefix=prefix, kept=kept, resumes=resumes)


def _run(args: argparse.Namespace, target: ServerTarget, fleet_phones, params: dict, progress: _Progress,
         db_path: Path | None, skipped: dict[str, int] | None, catalogue, *, workers: int | None,
         rate: float | None, shard: Shard, prefix: str, kept: dict, resumes: bool) -> int:
    # Made (and its arguments checked) before any lab is built; workers start with the block.
    options = {"workers": workers, "concurrency": args.concurrency, "jitter": args.jitter,
               "rate": rate or None, "db": db_path, "console_dir": args.console_dir, "models_dirs": args.models_dir,
               "shard": shard, "mac_prefix": prefix, "progress": progress.update, "tvs_timeout": args.tvs_timeout,
               "seed": args.seed, "run_params": params, "flash": kept}
    if args.engine == "ray":
        from phone.fleet.ray_engine import RayFleet

        lab_host = target.tftp[0] if type(target) is ServerTarget else target.host
        fleet = RayFleet(fleet_phones, address=args.ray_address, lab_host=lab_host, **options)
    else:
        fleet = Fleet(fleet_phones, **options)
    with _Interruptible() as interrupted:
        try:
            with contextlib.ExitStack() as stack:
                if args.engine == "ray":
                    stack.callback(fleet.close, finished=False)  # a no-op once the fleet closed itself
                    fleet.connect()  # Ray joined and the lab's address checked before any lab is built
                stack.enter_context(target)
                stack.enter_context(progress)
                with fleet:
                    for name, tftp in target.steps(fleet):
                        fleet.boot_all(name, tftp=tftp, cucm_release=target.cucm_release())
                    if resumes:
                        fleet.save_flash()
                    summary = fleet.summary(target.counted)
                    run_id = fleet.run_id
        except (KeyboardInterrupt, PhonetrustError):
            # A lab operation runs the command line in this process, which turns the interrupt into
            # a failed operation: the signal, not the exception, says the run was interrupted.
            if interrupted.signal is None:
                raise
            done = fleet.completed_steps
            print(f"phonetrust: interrupted after step {done[-1]}" if done else
                  "phonetrust: interrupted before the first step finished", file=sys.stderr)
            return 128 + interrupted.signal
    if db_path is not None:
        with contextlib.closing(results_db.connect(db_path)) as connection:
            _write_outputs(connection, summary.counted, args.html, args.erase_list, run_id=run_id)
    _print(summary, args.json, skipped)
    return 0


def _write_outputs(connection, counted: str | None, html: Path | None, erase_list: Path | None, *,
                   run_id: int | None = None) -> None:
    """The HTML report and the erase list, from a results database (the erase list: of run ``run_id``
    only when given, so a database that other runs were appended to lists this run's phones)."""
    if html is not None:
        html.write_text(html_from_db(connection), encoding="utf-8")
    if erase_list is not None:
        named = write_erase_list(erase_list, phone_lines(connection, counted, run_id=run_id))
        print(f"phonetrust: {erase_list}: {named} phone(s) need a hand erase", file=sys.stderr)


def _print(summary: FleetSummary, as_json: bool, skipped: dict[str, int] | None = None) -> None:
    if as_json:
        shown = summary.to_json()
        if skipped is not None:
            shown["skipped"] = skipped
        print(json.dumps(shown, indent=2))
    else:
        print_table(summary, sys.stdout)
        if skipped:
            print(skipped_line(skipped))


# -- report and merge ---------------------------------------------------------------------------


def run_report(args: argparse.Namespace) -> int:
    erase_list = getattr(args, "erase_list", None)
    check_outputs({"--html": args.html, "--erase-list": erase_list})
    with contextlib.closing(results_db.connect(args.db)) as connection:
        summary = summary_from_db(connection)
        _write_outputs(connection, summary.counted, args.html, erase_list)
        skipped = _skipped(connection)
    _print(summary, args.json, skipped)
    return 0


def _skipped(connection) -> dict[str, int] | None:
    """The inventory rows the runs stored here skipped, added up (None: no run read an inventory);
    the shards of one run read the same file, so they count it once."""
    total: dict[str, int] | None = None
    seen = set()
    for run in results_db.runs(connection):
        params = json.loads(run["params"] or "{}")
        skipped = params.get("skipped")
        shards_of = (results_db.RunIdentity.of(run), params.get("inventory"))
        if skipped is not None and shards_of not in seen:
            seen.add(shards_of)
            total = total or {}
            for device_type, count in skipped.items():
                total[device_type] = total.get(device_type, 0) + count
    return total


def run_merge(args: argparse.Namespace) -> int:
    for path in args.dbs:
        results_db.connect(path).close()
    if args.out is not None:
        results_db.merge(args.out, args.dbs)
        return run_report(argparse.Namespace(db=args.out, json=args.json, html=args.html, erase_list=None))
    with tempfile.TemporaryDirectory(prefix="phonetrust-merge-") as folder:
        merged = Path(folder) / "merged.sqlite"
        results_db.merge(merged, args.dbs)
        return run_report(argparse.Namespace(db=merged, json=args.json, html=args.html, erase_list=None))
