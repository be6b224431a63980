"""Fleets past one machine: the phones in Ray actors spread over a cluster's nodes (``--engine ray``).

``RayFleet`` is ``Fleet`` (``phone.fleet.engine``) with its workers in Ray
actors instead of local processes. Each actor holds one ``Worker`` — its share
of the phones and their flash, kept between steps — and speaks the worker's
messages (``phone.fleet.messages``): told to boot, it runs the step in a thread
and the driver polls it for the ``Rows`` it has ready until its ``StepDone``.
The driver (this process) runs the lab and the steps, counts, writes the
results database and shows progress as the local engine does, so both engines
give the same rows, summary and reports.

Ray is optional (``pip install 'phonetrust[ray]'``) and imported only when a
Ray fleet connects. With no address a private Ray instance is started on this
machine for the run and stopped after it; with one (what ``ray start --head``
prints) the fleet joins that cluster, whose nodes need phonetrust and Ray
installed. Phones on other nodes must reach the lab: ``refusal`` turns away a
loopback lab when the cluster has nodes at other addresses. Usage and measured
figures: docs/fleet.md, "On a Ray cluster".
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from phone.device.reach import is_loopback, unreachable
from phone.errors import TransportError, UsageError
from phone.firmware.machine import Flash
from phone.fleet import messages
from phone.fleet.clock import SYSTEM_CLOCK
from phone.fleet.engine import WORKER_SILENCE, Fleet, FleetError, default_workers
from phone.fleet.phones import FleetPhone
from phone.fleet.rows import BootRow
from phone.fleet.worker import StepOrder, Worker, WorkerSetup, silence_tftpy
from phone.lab.servers.processes import sigint_blocked

INSTALL_HINT = "pip install 'phonetrust[ray]'"
#: How long the cluster may take to place and start every actor (each asks for one CPU).
ACTOR_START_TIMEOUT = 120.0
#: How long joining a cluster may take to reach its head node.
JOIN_TIMEOUT = 10.0
#: How long an actor holds a poll open waiting for rows before it answers with none.
POLL_SECONDS = 0.25


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def refusal(host: str, nodes: Iterable[Mapping[str, Any]], here: str) -> str | None:
    """Why phones on the cluster could not reach a lab served at ``host``, or None if they can.

    ``nodes`` are the records of ``ray.nodes()`` (``Alive``, ``NodeManagerAddress``),
    ``here`` the address of the node this process runs on. A loopback address reaches
    only its own machine: a phone placed on a node at another address would find no lab.
    """
    if not is_loopback(host):
        return None
    others = sorted({str(node.get("NodeManagerAddress")) for node in nodes
                     if node.get("Alive") and node.get("NodeManagerAddress") != here})
    if not others:
        return None
    shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
    return (f"the lab is at {host}, a loopback address, and the Ray cluster has {len(others)} other node(s) "
            f"({shown}) whose phones cannot reach it: give --advertise ADDR (an address of this machine they "
            "reach), or a --tftp server they reach")


def start_local_ray(ray: Any, num_cpus: int) -> None:
    """A private Ray instance on this machine: no dashboard, no usage report, quiet on the terminal.

    Started with SIGINT blocked (its services inherit the mask, as the fleet's own
    children do): a Ctrl-C at the terminal reaches the whole process group, and the
    fleet, not the signal, stops the instance, so that nothing dies mid-step.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with sigint_blocked(), _handlers_kept():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)


def check_address(address: str) -> None:
    """One line if nothing listens at a ``HOST:PORT`` cluster address (other forms are left to Ray).

    Reached with a plain TCP connection first: ``ray.init`` retries an address where
    nothing listens for minutes, logging a warning every few seconds.
    """
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:
        reason = unreachable(host.strip("[]"), int(port), JOIN_TIMEOUT)
        if reason is not None:
            raise TransportError(f"no Ray cluster answers at {address}: {reason}")


def join_ray(ray: Any, address: str) -> None:
    """Join the running cluster at ``address`` (``ray start --head`` printed it), or one line why not."""
    check_address(address)
    try:
        with _handlers_kept():
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        hint = "" if "RAY_AUTH_MODE" in os.environ else (
            " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token here: docs/fleet.md)")
        raise TransportError(f"could not join the Ray cluster at {address}: {first}{hint}") from None


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """Keep this process's SIGINT and SIGTERM handlers across ``ray.init``.

    Ray's driver installs its own (SIGTERM: exit at once; its core a crash dump that
    aborts); the command line's own handlers stop the fleet cleanly and say after
    which step (docs/fleet.md), so they are put back.
    """
    main = threading.current_thread() is threading.main_thread()
    kept = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield
    finally:
        for number, handler in kept.items():
            if handler is not None:
                signal.signal(number, handler)


class PhoneActor:
    """One Ray actor: a ``Worker`` with its phones (their flash kept between steps) and its running step.

    The worker reads the driver's wall clock (this node's, shifted by the offset
    measured when a step is handed over), so that a step's start, the jitter
    schedule and the rows' times share one time line whatever this node's clock says.
    """

    def __init__(self, setup: WorkerSetup) -> None:
        silence_tftpy()
        self._offset = 0.0
        self.worker = Worker(setup, clock=attrs.evolve(SYSTEM_CLOCK, wall=self._wall))
        self._outbox: queue.Queue[object] = queue.Queue()

    def _wall(self) -> float:
        return time.time() - self._offset

    def ready(self) -> tuple[int, str, int]:
        """(worker number, the node's address, process id), once the phones are loaded."""
        import ray

        return self.worker.setup.worker, ray.util.get_node_ip_address(), os.getpid()

    def boot(self, order: StepOrder, sent_at: float) -> None:
        """Start booting every phone once, in a thread; rows and the step's end come through ``poll``."""
        self._offset = time.time() - sent_at
        number = self.worker.setup.worker
        outbox = self._outbox

        def run() -> None:
            try:
                stats = self.worker.run_step(order, lambda rows: outbox.put(messages.Rows(number, rows)))
            except Exception as error:  # noqa: BLE001 - reported to the driver
                outbox.put(messages.WorkerFailed(number, f"{type(error).__name__}: {error}"))
                return
            outbox.put(messages.StepDone(number, order.index, attrs.evolve(stats, peak_rss_kib=_peak_rss_kib())))

        threading.Thread(target=run, name=f"fleet-step-{order.index}", daemon=True).start()

    def poll(self, wait: float) -> list[object]:
        """The messages ready now, after waiting up to ``wait`` seconds for the first."""
        try:
            ready = [self._outbox.get(timeout=wait)]
        except queue.Empty:
            return []
        while True:
            try:
                ready.append(self._outbox.get_nowait())
            except queue.Empty:
                return ready

    def act(self, action: str, models: frozenset[str]) -> int:
        return self.worker.act(action, models)

    def flash(self) -> list[tuple[str, str, Flash]]:
        return [(phone.mac, phone.model.name, phone.flash) for phone in self.worker.phones]

    def memory(self) -> int:
        return _peak_rss_kib()


def _peak_rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class RayFleet(Fleet):
    """``Fleet`` with one Ray actor per worker, spread over the cluster's nodes (one CPU each).

    ``address``: a running cluster to join (None: a local instance for this fleet,
    stopped at ``close``; a Ray already initialised in this process is used as it
    is and left running). ``workers``: actors (default: one per CPU of the
    cluster). ``lab_host``: where the phones will find the lab, checked against
    the cluster's nodes when the fleet connects (``refusal``). Every other argument
    is ``Fleet``'s; paths (console folder, model folders) must exist on every node.
    """

    engine = "ray"

    def __init__(self, phones: Sequence[FleetPhone] | tuple[tuple[str, int], ...], *, address: str | None = None,
                 lab_host: str | None = None, workers: int | None = None, local_cpus: int | None = None,
                 **options: Any) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--engine ray boots in Ray actors: --workers must be at least 1, not {workers}")
        for name in ("console_dir",):
            if options.get(name) is not None:
                options[name] = Path(options[name]).resolve()
        options["models_dirs"] = tuple(str(Path(folder).resolve()) for folder in options.get("models_dirs", ()))
        super().__init__(phones, workers=workers or 1, **options)
        self.address = address
        self.lab_host = lab_host
        self._wanted = workers
        self._local_cpus = local_cpus
        self._ray: Any = None
        self._owns_ray = False
        self._actors: list[Any] = []
        #: Worker number -> the address of the node its actor runs on, and the actor's process id (once started).
        self.nodes: dict[int, str] = {}
        self.pids: dict[int, int] = {}
        self._run["params"]["ray_address"] = address

    # -- the cluster --------------------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster (or start a local instance), check the lab is reachable from every node,
        and deal the phones to the actors. Before any lab is built: a refusal costs nothing."""
        if self._ray is not None:
            return
        ray = import_ray()
        if self.address is not None:
            check_address(self.address)
        if not ray.is_initialized():
            if self.address is None:
                start_local_ray(ray, self._local_cpus or default_workers())
            else:
                join_ray(ray, self.address)
            self._owns_ray = True
        self._ray = ray
        if self.lab_host is not None:
            self.check_reachable(self.lab_host)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if self._wanted is not None and self._wanted > cpus:
            raise UsageError(f"--workers {self._wanted}: the Ray cluster has {cpus} CPU(s), and each actor takes one")
        self._deal(self._wanted or max(1, cpus))

    def check_reachable(self, host: str) -> None:
        """Refuse (one line) a lab at ``host`` that phones on the cluster's other nodes could not reach."""
        ray = self._ray
        problem = refusal(host, ray.nodes(), ray.util.get_node_ip_address())
        if problem:
            raise UsageError(problem)

    def start(self) -> None:
        if self._started:
            return
        try:
            self.connect()
        except BaseException:
            self._stop_workers(finished=False)
            raise
        super().start()

    def _start_workers(self) -> None:
        ray = self._ray
        actor_class = ray.remote(PhoneActor).options(num_cpus=1, scheduling_strategy="SPREAD", max_restarts=0)
        self._actors = [actor_class.remote(setup) for setup in self._setups]
        ready = self._gather([actor.ready.remote() for actor in self._actors], "starting",
                             timeout=ACTOR_START_TIMEOUT)
        self.nodes = {number: node for number, node, _pid in ready}
        self.pids = {number: pid for number, _node, pid in ready}

    def _stop_workers(self, finished: bool) -> None:
        """Actors hold nothing to save (rows are the driver's): they are ended, and a local instance with them."""
        ray, self._ray = self._ray, None
        if ray is None:
            return
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001, S110 - an actor already gone
                pass
        self._actors = []
        if self._owns_ray:
            self._owns_ray = False
            with sigint_blocked():  # a second Ctrl-C must not cut the shutdown short
                ray.shutdown()

    # -- steps ----------------------------------------------------------------------------------

    def _run_step(self, order: StepOrder, take: Callable[[list[BootRow]], None]) -> float:
        ray = self._ray
        self.check_reachable(order.tftp_host)
        self._gather([actor.boot.remote(order, self.clock.wall()) for actor in self._actors],
                     f"starting step {order.name!r}")
        polls = {actor.poll.remote(POLL_SECONDS): number for number, actor in enumerate(self._actors)}
        cpu, heard = 0.0, time.monotonic()
        while polls:
            # Short waits: a Ctrl-C is handled between them, as the local engine's queue reads are.
            ready, _ = ray.wait(list(polls), num_returns=1, timeout=1.0)
            if not ready:
                if time.monotonic() - heard >= WORKER_SILENCE:
                    raise TransportError(f"no word from the fleet's Ray actors for {WORKER_SILENCE:.0f} s")
                continue
            heard = time.monotonic()
            for ref in ready:
                number = polls.pop(ref)
                done = False
                for message in self._get(ref, number, f"booting step {order.name!r}"):
                    if isinstance(message, messages.Rows):
                        take(message.rows)
                    elif isinstance(message, messages.StepDone):
                        done = True
                        cpu += message.stats.cpu_seconds
                        self.peak_rss_kib[message.worker] = message.stats.peak_rss_kib
                    elif isinstance(message, messages.WorkerFailed):
                        raise FleetError(f"fleet actor {message.worker} failed in step {order.name!r}: "
                                         f"{message.error}")
                if not done:
                    polls[self._actors[number].poll.remote(POLL_SECONDS)] = number
        return cpu

    def _act(self, action: str, chosen: frozenset[str]) -> int:
        return sum(self._gather([actor.act.remote(action, chosen) for actor in self._actors], f"doing {action}"))

    def flash(self) -> list[tuple[str, str, Flash]]:
        """(MAC, model, Flash) of every phone now (between steps), from every actor."""
        parts = self._gather([actor.flash.remote() for actor in self._actors], "sending its phones' flash")
        return [entry for part in parts for entry in part]

    def memory_kib(self) -> dict[int, int]:
        """Peak resident memory of each actor's process so far, in KiB; between steps."""
        if not self._actors:
            return {}
        peaks = dict(enumerate(self._gather([actor.memory.remote() for actor in self._actors], "sending its memory")))
        self.peak_rss_kib.update(peaks)
        return peaks

    # -- Ray calls ------------------------------------------------------------------------------

    def _gather(self, refs: list[Any], doing: str, *, timeout: float = WORKER_SILENCE) -> list[Any]:
        """Every call's answer, in order; an actor that failed or died, or a silence, is one error."""
        ray = self._ray
        waited = time.monotonic()
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            if pending and time.monotonic() - waited >= timeout:
                free = ray.available_resources().get("CPU", 0)
                raise FleetError(f"{len(pending)} of {len(refs)} fleet actor(s) still {doing} after {timeout:.0f} s "
                                 f"(the Ray cluster has {free:g} CPU(s) free)")
        return [self._get(ref, number, doing) for number, ref in enumerate(refs)]

    def _get(self, ref: Any, number: int, doing: str) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as error:
            where = self.nodes.get(number, "its node")
            raise FleetError(f"fleet actor {number} on {where} died while {doing}: {_first_line(error)}") from None
        except ray.exceptions.RayTaskError as error:
            cause = _first_line(error.cause or error)
            raise FleetError(f"fleet actor {number} failed while {doing}: {cause}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
