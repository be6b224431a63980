"""A fleet: many emulated phones spread over worker processes, booted step by step.

::

    from phone.fleet import Fleet, parse_phones

    with Fleet(parse_phones("CP-7975=300,CP-8861=600,CP-7940=100"), workers=2, concurrency=64,
               jitter=0.0, db="results.sqlite") as fleet:
        for step, change in scenario:
            change()                                              # the caller changes the cluster
            step_summary = fleet.boot_all(step, tftp=("127.0.0.1", port))
        summary = fleet.summary()                                # each phone's last step, per model

``Fleet`` starts its workers once (``spawn``: safe beside the threads of an
in-process lab server) and keeps them, and their phones' flash, between
steps. ``boot_all`` makes every phone boot once against the given TFTP
server and returns when all have finished; results stream back, are counted
(``phone.firmware.outcome.classify``), written to SQLite by this process only (batched,
WAL) and shown to ``progress(done, total)`` as they come.

Phones are dealt to workers round-robin by fleet index, so each worker gets the
same model mix. ``concurrency`` is the whole fleet's cap on boots in flight,
split evenly across workers; ``rate`` (boots per second, the whole fleet's) the
cap on boots started, also split. Both hold against a real CUCM too.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from phone.errors import RemoteError, TransportError, UsageError
from phone.fleet import messages
from phone.fleet.clock import SYSTEM_CLOCK, Clock
from phone.fleet.db import ResultsWriter
from phone.fleet.phones import DEFAULT_MAC_PREFIX, FleetPhone, Shard, allocate, describe, groups_of
from phone.fleet.summary import FleetSummary, StepSummary, count
from phone.fleet.rows import BootRow
from phone.fleet.worker import PHONE_ACTIONS, StepOrder, Worker, WorkerSetup, worker_main
from phone.firmware.machine import Flash
from phone.lab.servers.processes import sigint_blocked

#: Boots in flight per core by default: enough to hide the round trips of
#: loopback TFTP and TLS, few enough that one GIL is not fought over in vain.
DEFAULT_CONCURRENCY_PER_WORKER = 16
#: How long a worker may stay silent during a step before the fleet gives up on it.
WORKER_SILENCE = 300.0

Progress = Callable[[str, int, int], None]


class FleetError(RemoteError):
    """A worker process failed (it crashed, or went silent)."""


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class FleetEngine(Protocol):
    """What a fleet command, a target (``phone.fleet.targets``) or a benchmark uses of an engine.

    ``Fleet`` (worker processes on this machine) and ``phone.fleet.ray_engine.RayFleet``
    (Ray actors over a cluster) both keep to it; a ``with`` block starts the workers and
    stops them, and the results database is written by the calling process in both.
    """

    engine: str
    counts: tuple[tuple[str, int], ...]
    phones: list[FleetPhone]
    workers: int

    def __enter__(self) -> FleetEngine: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def boot_all(self, step: str, *, tftp: tuple[str, int], cucm_release: str | None = None) -> StepSummary: ...
    def act(self, action: str, models: Iterable[str]) -> int: ...
    def flash(self) -> list[tuple[str, str, Flash]]: ...
    def save_flash(self) -> None: ...
    def summary(self, counted: str | None = None) -> FleetSummary: ...
    def timeline(self) -> list[tuple[str, float]]: ...
    def memory_kib(self) -> dict[int, int]: ...

    @property
    def completed_steps(self) -> list[str]: ...


class Fleet:
    """Phones over ``workers`` processes (0: boot in this process, for tests and profiles).

    The local engine. ``phone.fleet.ray_engine.RayFleet`` is the same fleet with its
    workers in Ray actors; both keep to ``FleetEngine``.
    """

    #: The name ``fleet run --engine`` knows this engine by (recorded in the run's parameters).
    engine = "local"

    def __init__(
        self,
        phones: Sequence[FleetPhone] | tuple[tuple[str, int], ...],
        *,
        workers: int | None = None,
        concurrency: int | None = None,
        jitter: float = 0.0,
        rate: float | None = None,
        db: str | os.PathLike[str] | None = None,
        console_dir: str | os.PathLike[str] | None = None,
        models_dirs: Sequence[str] = (),
        shard: Shard = Shard(),
        mac_prefix: str = DEFAULT_MAC_PREFIX,
        progress: Progress | None = None,
        tvs_timeout: float | None = None,
        blksize: int | None = None,
        seed: int = 0,
        run_params: dict[str, Any] | None = None,
        flash: dict[str, tuple[str, Flash]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock``: the time the fleet reads (steps' start and end, the run's; in-process workers' too)."""
        self.clock = clock
        if phones and isinstance(phones[0], tuple):  # (model, count) pairs or PhoneGroup records
            phones = allocate(phones, prefix=mac_prefix)  # type: ignore[arg-type]
        # Counted over the whole fleet, so every shard of one run records the same phone list.
        self.counts = _counts_of(phones)  # type: ignore[arg-type]
        listed = describe(groups_of(phones))  # type: ignore[arg-type]
        self.phones: list[FleetPhone] = [p for p in phones if shard.holds(p.index)]  # type: ignore[union-attr]
        if not self.phones:
            raise UsageError(f"shard {shard} of this fleet holds no phone")
        if workers is None:
            workers = default_workers()
        if workers < 0:
            raise UsageError(f"workers must be 0 or more, not {workers}")
        if jitter < 0:
            raise UsageError(f"jitter must not be negative, not {jitter}")
        if rate is not None and rate <= 0:
            rate = None
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        self.jitter = jitter
        self.rate = rate
        self.progress = progress
        self.blksize = blksize
        self.seed = seed
        self._options = {"concurrency": concurrency, "models_dirs": tuple(models_dirs),
                         "console_dir": None if console_dir is None else str(console_dir),
                         "tvs_timeout": tvs_timeout, "flash": flash or {}}
        self._run = {"started": clock.wall(), "phones": listed, "phone_count": len(self.phones),
                     "shard": str(shard), "mac_prefix": mac_prefix,
                     "jitter": jitter, "rate": rate,
                     "target": (run_params or {}).get("target"),
                     "params": {"seed": seed, "blksize": blksize, "tvs_timeout": tvs_timeout,
                                "console_dir": None if console_dir is None else str(console_dir),
                                "engine": self.engine, **(run_params or {})}}
        self._deal(workers)
        self._db_path = db
        self._writer: ResultsWriter | None = None
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._pipes: list[Any] = []
        self._results: Any = None
        self._local: Worker | None = None
        self._last: dict[str, tuple[str, str, bool, bool, bool]] = {}
        self._steps: list[StepSummary] = []
        self._timeline: list[tuple[str, float]] = []
        self._started = False
        self.peak_rss_kib: dict[int, int] = {}

    def _deal(self, workers: int) -> None:
        """Deal the phones to ``workers`` lanes, round-robin by fleet index (each lane gets the same mix)."""
        self.workers = min(workers, len(self.phones))
        lanes = max(1, self.workers)
        options = self._options
        concurrency = options["concurrency"]
        if concurrency is None:
            concurrency = DEFAULT_CONCURRENCY_PER_WORKER * lanes
        self.concurrency = concurrency
        self._setups = [
            WorkerSetup(worker=n, phones=tuple((p.index, p.model, p.mac, p.load) for p in self.phones[n::lanes]),
                        concurrency=math.ceil(concurrency / lanes), models_dirs=options["models_dirs"],
                        console_dir=options["console_dir"], seed=self.seed, tvs_timeout=options["tvs_timeout"],
                        flash=_kept(self.phones[n::lanes], options["flash"]))
            for n in range(lanes)
        ]
        self._run.update(workers=self.workers, concurrency=concurrency)

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(finished=exc_info[0] is None)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._db_path is not None:
            self._writer = ResultsWriter(self._db_path, self._run, clock=self.clock,
                                         loads={p.mac: p.load for p in self.phones if p.load})
        try:
            self._start_workers()
        except BaseException:  # an interrupt while they start included: none is left behind
            self.close(finished=False)
            raise

    def _start_workers(self) -> None:
        if self.workers == 0:
            self._local = Worker(self._setups[0], clock=self.clock)
            return
        context = multiprocessing.get_context("spawn")
        self._results = context.Queue()
        for setup in self._setups:
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(setup, child, self._results),
                                      name=f"fleet-worker-{setup.worker}", daemon=True)
            with sigint_blocked():
                process.start()
            child.close()
            self._processes.append(process)
            self._pipes.append(parent)
        ready = 0
        while ready < len(self._processes):
            message = self._receive()
            if isinstance(message, messages.WorkerFailed):
                raise FleetError(f"fleet worker {message.worker} could not start: {message.error}")
            if isinstance(message, messages.Ready):
                ready += 1

    def close(self, *, finished: bool = True) -> None:
        """Stop the workers: between steps they are asked; a run that did not finish (an interrupt, an
        error) terminates them at once, whatever they were booting."""
        self._stop_workers(finished)
        if self._writer is not None:
            if finished:
                self._writer.finish()
            self._writer.close()
            self._writer = None

    def _stop_workers(self, finished: bool) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(messages.Stop())
            except (OSError, ValueError):
                pass
        if not finished:
            for process in self._processes:
                if process.is_alive():
                    process.terminate()
        for process in self._processes:
            process.join(10 if finished else 5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for pipe in self._pipes:
            pipe.close()
        self._processes, self._pipes = [], []
        if self._results is not None:
            self._results.close()
            self._results = None

    # -- steps ----------------------------------------------------------------------------

    def boot_all(self, step: str, *, tftp: tuple[str, int], cucm_release: str | None = None) -> StepSummary:
        """Boot every phone once against ``tftp`` (host, port); returns the step's per-model counts.

        ``cucm_release`` (e.g. "12.5"), when the cluster's release is known: phones whose model and
        load it does not support count as "unsupported" instead of booting (docs/models.md).
        """
        if not self._started:
            self.start()
        host, port = tftp
        index = len(self._steps)
        started = self.clock.wall()
        order = StepOrder(index=index, name=step, tftp_host=host, tftp_port=int(port), start_at=started + 0.05,
                          jitter=self.jitter, rate=None if self.rate is None else self.rate / max(1, self.workers),
                          blksize=self.blksize, cucm_release=cucm_release)
        if self._writer is not None:
            self._writer.start_step(index, step, started)
        rows_seen: list[tuple[str, str, bool, bool, bool, str | None]] = []

        def take(rows: list[BootRow]) -> None:
            if self._writer is not None:
                self._writer.add_boots(step, rows)
            for row in rows:
                entry = (row.model, row.outcome, bool(row.erase_needed), bool(row.through_tvs), bool(row.lsc_installed),
                         row.registration)
                self._last[row.mac] = entry
                rows_seen.append(entry)
                self._timeline.append((step, row.start + row.total_seconds - started))
            if self.progress is not None:
                self.progress(step, len(rows_seen), len(self.phones))

        cpu = self._run_step(order, take)
        finished = self.clock.wall()
        if self._writer is not None:
            self._writer.finish_step(index, finished, len(rows_seen))
        summary = StepSummary(index, step, len(rows_seen), finished - started, count(rows_seen), cpu)
        self._steps.append(summary)
        return summary

    def _run_step(self, order: StepOrder, take: Callable[[list[BootRow]], None]) -> float:
        """Every worker boots its phones once; rows go to ``take`` as they come. Returns the workers' CPU seconds."""
        if self._local is not None:
            return self._local.run_step(order, take).cpu_seconds
        for pipe in self._pipes:
            pipe.send(messages.BootStep(order))
        done, cpu = 0, 0.0
        while done < len(self._processes):
            message = self._receive()
            if isinstance(message, messages.Rows):
                take(message.rows)
            elif isinstance(message, messages.StepDone):
                done += 1
                cpu += message.stats.cpu_seconds
                self.peak_rss_kib[message.worker] = message.stats.peak_rss_kib
            elif isinstance(message, messages.WorkerFailed):
                raise FleetError(f"fleet worker {message.worker} failed in step {order.name!r}: {message.error}")
        return cpu

    def act(self, action: str, models: Iterable[str]) -> int:
        """Before a step: ``action`` (erase-ctl, erase-itl, erase, factory-reset) on every phone of
        ``models`` (catalogue names), as a scenario's hand erase. Returns how many phones it touched."""
        if action not in PHONE_ACTIONS:
            raise UsageError(f"unknown phone action {action!r}: expected one of {', '.join(PHONE_ACTIONS)}")
        if not self._started:
            self.start()
        return self._act(action, frozenset(models))

    def _act(self, action: str, chosen: frozenset[str]) -> int:
        if self._local is not None:
            return self._local.act(action, chosen)
        for pipe in self._pipes:
            pipe.send(messages.Act(action, chosen))
        acted, answered = 0, 0
        while answered < len(self._pipes):
            message = self._receive()
            if isinstance(message, messages.Acted):
                acted += message.phones
                answered += 1
            elif isinstance(message, messages.WorkerFailed):
                raise FleetError(f"fleet worker {message.worker} failed to {action}: {message.error}")
        return acted

    def flash(self) -> list[tuple[str, str, Flash]]:
        """(MAC, model, Flash) of every phone now (between steps)."""
        if self._local is not None:
            return [(phone.mac, phone.model.name, phone.flash) for phone in self._local.phones]
        for pipe in self._pipes:
            pipe.send(messages.SendFlash())
        kept: list[tuple[str, str, Flash]] = []
        answered = 0
        while answered < len(self._pipes):
            message = self._receive()
            if isinstance(message, messages.FlashOf):
                kept.extend(message.phones)
                answered += 1
        return kept

    def save_flash(self) -> None:
        """Store every phone's flash in the results database (``--tftp`` runs resume from it)."""
        if self._writer is None:
            raise UsageError("saving the phones' flash needs a results database")
        self._writer.save_flash(self.flash())

    def summary(self, counted: str | None = None) -> FleetSummary:
        """Per model, the outcome of each phone's last step (the fleet JSON of docs/fleet.md).

        ``counted`` names the step whose outcome counts instead (a scenario's last
        cluster change: a later hand-erase step does not hide who needed one).
        """
        by_model = count(self._last.values())
        if counted is not None:
            chosen = [step for step in self._steps if step.name == counted]
            if chosen:
                by_model = chosen[-1].by_model
        return FleetSummary(
            phones=len(self.phones), boots=sum(step.boots for step in self._steps),
            seconds=sum(step.seconds for step in self._steps), by_model=by_model,
            steps=tuple(self._steps), counted=counted if counted is not None else
            (self._steps[-1].name if self._steps else None))

    def timeline(self) -> list[tuple[str, float]]:
        """(step, seconds from the step's start to the boot's end) of every boot so far."""
        return list(self._timeline)

    @property
    def completed_steps(self) -> list[str]:
        """The names of the steps every phone finished, in order."""
        return [step.name for step in self._steps]

    @property
    def run_id(self) -> int | None:
        return None if self._writer is None else self._writer.run_id

    def _receive(self) -> object:
        """The next worker message; a worker that died or went silent is an error."""
        waited = 0.0
        while True:
            try:
                return self._results.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                dead = [p for p in self._processes if not p.is_alive()]
                if dead:
                    raise FleetError(f"fleet worker {dead[0].name} died (exit code {dead[0].exitcode})")
                if waited >= WORKER_SILENCE:
                    raise TransportError(f"no word from the fleet workers for {WORKER_SILENCE:.0f} s")

    def memory_kib(self) -> dict[int, int]:
        """Peak resident memory of each worker process so far, in KiB (Linux ru_maxrss); between steps."""
        if self._local is not None or not self._pipes:
            return {}
        for pipe in self._pipes:
            pipe.send(messages.SendMemory())
        peaks: dict[int, int] = {}
        while len(peaks) < len(self._pipes):
            message = self._receive()
            if isinstance(message, messages.Memory):
                peaks[message.worker] = message.peak_rss_kib
        self.peak_rss_kib.update(peaks)
        return peaks


def _kept(phones: Sequence[FleetPhone], flash: dict[str, tuple[str, Flash]]) -> dict[str, Flash]:
    """The stored flash of the phones that have one, for the same model."""
    return {p.mac: flash[p.mac][1] for p in phones if p.mac in flash and flash[p.mac][0] == p.model}


def _counts_of(phones: Sequence[FleetPhone]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for phone in phones:
        counts[phone.model] = counts.get(phone.model, 0) + 1
    return tuple(counts.items())
