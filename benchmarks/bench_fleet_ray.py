"""Fleet throughput, local engine beside the Ray engine, in one run on this machine.

The same fleet (default: the README's 300 CP-7975, 600 CP-8861, 100 CP-7940)
goes through the bundled ``regenerate-callmanager`` scenario (a 10.5 lab of
two nodes, real TFTP and TLS TVS over loopback, a fresh lab per run) once with
each engine: ``local`` (worker processes, ``phone.fleet.Fleet``) and ``ray``
(Ray actors wrapping the same workers, ``phone.fleet.ray_engine.RayFleet``, on
a local Ray instance of as many CPUs as workers). With ``--rounds N`` the
engines alternate N times, so that a change in the shared machine's load
falls on both. Printed: boots per second per step and over all steps for each
engine, the Ray/local ratio, the Ray instance's start-up time (not counted in
boots/s: a cluster is started once, not per run), and whether both engines gave
the same outcome per model in every step.

    .venv/bin/python benchmarks/bench_fleet_ray.py [--phones CP-7975=300,CP-8861=600,CP-7940=100]
        [--workers N] [--rounds 1] [--key-size 2048]

Needs Ray (pip install 'phonetrust[ray]'). The machine is shared: compare the
ratio measured in one run, not absolute figures between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phone.fleet import Fleet, default_workers, parse_phones  # noqa: E402
from phone.fleet.ray_engine import RayFleet, import_ray, start_local_ray  # noqa: E402
from phone.fleet.targets import ScenarioTarget  # noqa: E402
from phone.scenario import find_scenario  # noqa: E402


def run(engine: str, counts, workers: int, key_size: int | None):
    """(FleetSummary, wall seconds with set-up) of one run of the scenario with ``engine``."""
    target = ScenarioTarget(find_scenario("regenerate-callmanager"), key_size=key_size)
    make = RayFleet if engine == "ray" else Fleet
    began = time.perf_counter()
    with target, make(counts, workers=workers, run_params={"counted_step": target.counted}) as fleet:
        for step, tftp in target.steps(fleet):
            fleet.boot_all(step, tftp=tftp)
        summary = fleet.summary(target.counted)
    return summary, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", default="CP-7975=300,CP-8861=600,CP-7940=100")
    parser.add_argument("--workers", type=int, default=None, help="worker processes / Ray actors (default: cores)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the engines this many times")
    parser.add_argument("--key-size", type=int, default=None, help="the lab's RSA key size (default: 2048)")
    args = parser.parse_args()

    counts = parse_phones(args.phones)
    workers = args.workers or default_workers()
    ray = import_ray()
    print(f"fleet engines: {args.phones} ({sum(c for _, c in counts)} phones), {workers} workers/actors, "
          f"scenario regenerate-callmanager, Python {platform.python_version()}, Ray {ray.__version__}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    began = time.perf_counter()
    start_local_ray(ray, num_cpus=workers)
    print(f"local Ray instance ({workers} CPUs) started in {time.perf_counter() - began:.1f} s")
    results: dict[str, list] = {"local": [], "ray": []}
    try:
        for _ in range(args.rounds):
            for engine in ("local", "ray"):
                summary, wall = run(engine, counts, workers, args.key_size)
                results[engine].append((summary, wall))
                print(f"  {engine:<6} {summary.boots_per_second:7.0f} boots/s over all steps "
                      f"({summary.boots} boots in {summary.seconds:.1f} s; {wall:.1f} s with set-up), "
                      f"load {os.getloadavg()[0]:.1f}")
    finally:
        ray.shutdown()

    steps = [step.name for step in results["local"][0][0].steps]
    print(f"{'step':<16}{'local boots/s':>15}{'ray boots/s':>13}{'ray/local':>11}")
    for index, name in enumerate(steps):
        local = _mean(s.steps[index].boots_per_second for s, _ in results["local"])
        on_ray = _mean(s.steps[index].boots_per_second for s, _ in results["ray"])
        print(f"{name:<16}{local:>15.0f}{on_ray:>13.0f}{on_ray / local:>11.2f}")
    local = _mean(s.boots_per_second for s, _ in results["local"])
    on_ray = _mean(s.boots_per_second for s, _ in results["ray"])
    print(f"{'all steps':<16}{local:>15.0f}{on_ray:>13.0f}{on_ray / local:>11.2f}")
    reference = _outcomes(results["local"][0][0])
    same = all(_outcomes(summary) == reference for engine in results.values() for summary, _ in engine)
    print(f"same outcome per model in every step on both engines: {same}")
    return 0 if same else 1


def _outcomes(summary):
    return [(step.name, step.by_model) for step in summary.steps]


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


if __name__ == "__main__":
    sys.exit(main())
