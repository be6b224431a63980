"""Fleet throughput: Cisco TAC 118893's ``regenerate-callmanager`` scenario over loopback.

Runs a fleet (default: the README's 300 CP-7975, 600 CP-8861, 100 CP-7940) through
the bundled scenario ``regenerate-callmanager`` (a 10.5 lab of two nodes: first
boot, mixed mode, CallManager regenerated + ``ctl update``, the 7940s' hand
erase) — real TFTP downloads and real TLS TVS queries against the emulated lab
served from child processes — or, with ``--testbed``, the fleet's own
one-node testbed cluster (``testbed:regenerate-callmanager``), and prints, per step
and overall, boots per second, the CPU seconds each side spent per boot and
the workers' peak memory per phone. The baseline, measured in the same run, is
the bare machine: the same phones through the same steps in one process with
in-memory transports (no sockets, no TLS, no second process), i.e. the
emulator's own cost per boot. It also checks the expected outcome (every SBD
phone accepted, every 7940 rejected and needing a hand erase).

    .venv/bin/python benchmarks/bench_fleet.py [--phones CP-7975=300,CP-8861=600,CP-7940=100]
        [--workers N] [--concurrency N] [--testbed] [--db FILE] [--baseline-phones 300]

The machine is shared: compare the ratio to the baseline, not absolute figures
between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phone.device.boot import SharedParses, run_boot  # noqa: E402
from phone.fleet import Fleet, allocate, default_workers, parse_phones  # noqa: E402
from phone.fleet.targets import ScenarioTarget, TestbedTarget  # noqa: E402
from phone.fleet.testbed import REGENERATE_CALLMANAGER, apply_change, create_testbed_lab  # noqa: E402
from phone.firmware.machine import FileFetched, FileMissing, Flash, PhoneMachine, TvsAnswered  # noqa: E402
from phone.catalogue import get_model  # noqa: E402
from phone.wire.names import serial_to_bytes  # noqa: E402
from phone.firmware.outcome import classify  # noqa: E402


def bare_machine(spec: str, limit: int) -> tuple[float, Counter]:
    """Boots/s of the machine alone: the same rehearsal with files and TVS answers from memory."""
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        return _bare_machine(create_testbed_lab(Path(folder) / "lab"), spec, limit)


def _bare_machine(lab, spec: str, limit: int) -> tuple[float, Counter]:
    phones = allocate(parse_phones(spec))[:limit]
    models = {p.model: get_model(p.model) for p in phones}
    flash = {p.mac: Flash() for p in phones}
    files: dict[str, bytes | None] = {}

    def fetch(request):
        data = files.get(request.name)
        return FileMissing(request.name) if data is None else FileFetched(request.name, data, server="memory")

    signer = {}

    def ask_tvs(request):
        callmanager = signer["CallManager"]
        if request.serial == serial_to_bytes(callmanager.certificate.serial_number):
            return TvsAnswered("memory:2445", 0, (0, 2), 86400, callmanager.der)
        return TvsAnswered("memory:2445", 1)

    fetch = SharedParses().fetching(fetch)  # as a fleet worker does: one parse per distinct list
    seconds, boots, outcomes = 0.0, 0, Counter()
    for _step, change in REGENERATE_CALLMANAGER:
        if change:
            apply_change(lab, change)
        files.clear()
        signer["CallManager"] = lab.identity("CallManager")
        for phone in phones:  # files are made (signed) before the clock starts, as a CUCM has them ready
            for name in (f"CTLSEP{phone.mac}.tlv", f"ITLSEP{phone.mac}.tlv", f"SEP{phone.mac}.cnf.xml",
                         f"SEP{phone.mac}.cnf.xml.sgn"):
                files[name] = lab.device_file(name)
        began = time.perf_counter()
        for phone in phones:
            machine, report = run_boot(PhoneMachine(models[phone.model], phone.mac, flash[phone.mac]),
                                       fetch=fetch, ask_tvs=ask_tvs, clock=time.time)
            flash[phone.mac] = machine.flash
            outcomes[(phone.model, classify(report).outcome.value)] += 1
        seconds += time.perf_counter() - began
        boots += len(phones)
    return boots / seconds, outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", default="CP-7975=300,CP-8861=600,CP-7940=100")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--testbed", action="store_true", help="the fleet's own testbed instead of the scenario")
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--baseline-phones", type=int, default=300, help="phones in the bare-machine baseline")
    args = parser.parse_args()

    counts = parse_phones(args.phones)
    total = sum(group.count for group in counts)
    workers = args.workers if args.workers is not None else default_workers()
    if args.testbed:
        target = TestbedTarget()
        where = "testbed:regenerate-callmanager (lab 10.5, 1 node, 2048-bit)"
    else:
        from phone.scenario import find_scenario

        target = ScenarioTarget(find_scenario("regenerate-callmanager"))
        where = "scenario regenerate-callmanager (lab 10.5, 2 nodes, 2048-bit), fast TFTP server"
    print(f"fleet benchmark: {args.phones} ({total} phones), {workers} workers, {where}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    baseline, _ = bare_machine(args.phones, args.baseline_phones)
    print(f"baseline: bare machine, in-memory transports, 1 process: {baseline:.0f} boots/s")

    parent_cpu = time.process_time()
    started = time.perf_counter()
    with target:
        with Fleet(counts, workers=workers, concurrency=args.concurrency, db=args.db,
                   run_params={"counted_step": target.counted}) as fleet:
            idle = fleet.memory_kib()
            print(f"{'step':<24}{'boots':>7}{'seconds':>9}{'boots/s':>9}{'ratio':>7}{'worker ms/boot':>16}"
                  f"{'server ms/boot':>16}")
            server_before = target.server.cpu_seconds()
            for step, tftp in target.steps(fleet):
                summary = fleet.boot_all(step, tftp=tftp)
                server_after = target.server.cpu_seconds()
                server, server_before = server_after - server_before, server_after
                print(f"{step:<24}{summary.boots:>7}{summary.seconds:>9.2f}{summary.boots_per_second:>9.0f}"
                      f"{summary.boots_per_second / baseline:>7.2f}{summary.cpu_seconds / summary.boots * 1e3:>16.2f}"
                      f"{server / summary.boots * 1e3:>16.2f}")
            result = fleet.summary(target.counted)
            peaks = fleet.memory_kib()
        served = target.server.stats()
    wall = time.perf_counter() - started
    parent = time.process_time() - parent_cpu
    rate = result.boots_per_second
    print(f"{'all steps':<24}{result.boots:>7}{result.seconds:>9.2f}{rate:>9.0f}{rate / baseline:>7.2f}")
    grown = sum(peaks.values()) - sum(idle.values())
    print(f"workers' peak memory: {sum(peaks.values()) / 1024:.0f} MiB ({sum(idle.values()) / 1024:.0f} MiB idle), "
          f"{grown * 1024 / result.phones / 1024:.1f} KiB per phone; parent CPU {parent:.1f} s "
          f"(results, SQLite), parent peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"wall {wall:.1f} s with set-up")
    if not args.testbed:
        served = served["a"]
    print("TFTP server: " + ", ".join(f"{key} {value}" for key, value in served.items()))
    by_model = result.by_model
    sbd_ok = all(c["accepted"] == c["phones"] for m, c in by_model.items() if get_model(m).security_by_default)
    legacy_ok = all(c["rejected"] == c["phones"] == c["erase_needed"] for m, c in by_model.items()
                    if not get_model(m).security_by_default)
    print(f"outcome after {result.counted}: every SBD phone accepted: {sbd_ok}; every legacy phone rejected, "
          f"erase needed: {legacy_ok}")
    for model, counts_of_model in by_model.items():
        print(f"  {model}: {counts_of_model}")
    return 0 if sbd_ok and legacy_ok else 1


if __name__ == "__main__":
    sys.exit(main())
