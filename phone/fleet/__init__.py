"""Many emulated phones at once: a fleet booted step by step against a cluster.

- ``phone.fleet.phones``: ``--phones`` lists, deterministic MACs, shards;
- ``phone.fleet.engine``: ``Fleet`` (worker processes, ``boot_all(step, tftp=)``);
- ``phone.fleet.worker``: one worker's phones and its boot threads;
- ``phone.fleet.ray_engine``: ``RayFleet``, the same fleet in Ray actors over a cluster's nodes (``--engine ray``);
- ``phone.fleet.rows``, ``phone.fleet.messages``, ``phone.fleet.clock``: boot rows, worker messages, the injected clock;
- ``phone.fleet.capacity``: the memory a fleet needs, checked before it starts;
- ``phone.fleet.db``: results in SQLite, report queries, merging shards;
- ``phone.fleet.summary``: the per-model counts of ``fleet run --json`` (docs/fleet.md);
- ``phone.fleet.report``: the table and the HTML report;
- ``phone.fleet.targets``: where a fleet boots and what changes between steps (server, testbed, scenario);
- ``phone.lab.servers.processes``: a scenario's labs served from child processes (TVS; fast TFTP);
- ``phone.fleet.testbed``: a self-contained one-node cluster for tests and benchmarks.

Usage, architecture and measured figures: docs/fleet.md.
"""

from phone.fleet.engine import Fleet, FleetError, default_workers
from phone.fleet.phones import DEFAULT_MAC_PREFIX, FleetPhone, Shard, allocate, parse_phones
from phone.fleet.summary import FleetSummary, StepSummary

__all__ = ["DEFAULT_MAC_PREFIX", "Fleet", "FleetError", "FleetPhone", "FleetSummary", "Shard", "StepSummary",
           "allocate", "default_workers", "parse_phones"]
