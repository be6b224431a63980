"""One worker process of a fleet: its share of the phones, booted by a pool of threads.

A worker holds its phones for the whole run (model, MAC, the flash as an
in-memory ``Flash`` value, the console's next sequence number) and boots each
of them once per step it is told to run. Each boot is the phone's own: a
``PhoneMachine`` carried through ``phone.device.boot.run_boot`` with real TFTP
downloads (``TftpTransport``, tftpy) and real TLS TVS requests
(``TvsTransport``) over the network, timed per transport.

Inside the worker, boots run on ``concurrency`` threads around the blocking
transports (measured against asyncio in docs/fleet.md: the CPU goes to tftpy,
TLS and the machine, not to waiting, and OpenSSL's handshakes release the
GIL). Start times follow the step's jitter (a registration storm: each phone
draws its delay from a seed, its MAC and the step) and rate limit; a phone
whose time has come waits for a free thread (the concurrency cap).

Results go to the parent as ``BootRow`` records in batches (``messages.Rows``)
on one queue; the parent is the only writer of the results database. Time is
read from the ``Clock`` the worker is given (``phone.fleet.clock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import os
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from phone.wire.tlv import TrustList
from phone.device.boot import SharedParses, run_boot
from phone.device.capf import CapfTransport
from phone.device.capf_keys import KeyPool, default_key_folder
from phone.firmware.capf_plan import EnrolCapf
from phone.firmware.capf_session import CapfCredentials
from phone.firmware.machine import (
    AskTvs,
    DropLsc,
    Erased,
    FactoryReset,
    Fetch,
    Flash,
    KeepLsc,
    Log,
    PhoneMachine,
)
from phone.wire.certs import Identity
from phone.firmware.models import PhoneModel
from phone.catalogue import load_catalogue
from phone.firmware.outcome import classify
from phone.console.phone import PhoneConsole
from phone.device.registration import SignallingTransport
from phone.device.transports import TftpTransport, TvsTransport
from phone.errors import UsageError
from phone.fleet import messages
from phone.fleet.clock import SYSTEM_CLOCK, Clock
from phone.fleet.rows import BOOT_FIELDS, BootRow
from phone.lab.servers.processes import quiet_child
from phone.lab.servers.profiling import profiled

__all__ = ["BOOT_FIELDS", "PHONE_ACTIONS", "StepOrder", "Worker", "WorkerSetup", "worker_main"]

#: What a scenario step may do to phones before they boot (the phone's Settings > Security erase menus, factory reset).
PHONE_ACTIONS = ("erase-ctl", "erase-itl", "erase", "factory-reset")
#: Rows are sent to the parent when this many are ready, or after BATCH_SECONDS.
BATCH_ROWS = 200
BATCH_SECONDS = 0.25


@attrs.frozen
class WorkerSetup:
    """What a worker is started with."""

    worker: int
    #: (fleet index, model name, MAC[, load]): a phone with a load (not None) runs that load's
    #: behaviour (``PhoneModel.on_load``), the others their model's default load.
    phones: tuple[tuple[int, str, str] | tuple[int, str, str, str | None], ...]
    concurrency: int
    models_dirs: tuple[str, ...] = ()
    console_dir: str | None = None
    seed: int = 0
    tvs_timeout: float | None = None
    #: Flash to start from, by MAC (phones not named start empty).
    flash: dict[str, Flash] = attrs.field(factory=dict)


@attrs.frozen
class StepOrder:
    """Boot every phone once: ``start_at`` is the wall-clock start of the step for all workers."""

    index: int
    name: str
    tftp_host: str
    tftp_port: int
    start_at: float
    jitter: float = 0.0
    #: The CUCM release of the cluster the phones boot against ("12.5"), when known: a phone whose
    #: model and load that release does not support is reported "unsupported", not booted.
    cucm_release: str | None = None
    #: Boots started per second by this worker at most (None: no limit).
    rate: float | None = None
    blksize: int | None = None


@attrs.define
class _Phone:
    index: int
    model: PhoneModel
    mac: str
    flash: Flash = Flash()
    console_seq: int = 1
    #: The LSC CAPF issued this phone in this run (kept in memory only: docs/capf.md, "Fleets").
    lsc: Identity | None = None


def kind_of(model: str, load: str | None) -> str:
    """``MODEL@LOAD`` (``MODEL@`` for the default load): one kind of phone of a fleet for ``Worker.act``."""
    return f"{model}@{load or ''}"


def jitter_delay(seed: int, mac: str, step: int, jitter: float) -> float:
    """The phone's start delay in [0, jitter): the same for the same seed, MAC and step, on any machine."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.blake2b(f"{seed}:{mac}:{step}".encode(), digest_size=8).digest()
    return jitter * int.from_bytes(digest, "big") / 2**64


def schedule(phones: list[Any], order: StepOrder, seed: int, mac: Callable[[Any], str]) -> list[tuple[float, int]]:
    """(start offset, position) of each phone, earliest first: the jitter, then the rate limit."""
    delays = sorted((jitter_delay(seed, mac(phone), order.index, order.jitter), position)
                    for position, phone in enumerate(phones))
    if not order.rate:
        return delays
    spaced = []
    for rank, (delay, position) in enumerate(delays):
        spaced.append((max(delay, rank / order.rate), position))
    return spaced


class _Interner:
    """One object per distinct trust list or certificate, however many phones hold it.

    Every download is a new bytes object, parsed into a new list; 40,000 phones
    holding the same CTL and ITL would otherwise keep 40,000 copies of each. The
    parsed lists are immutable, so sharing one is safe.
    """

    def __init__(self) -> None:
        self._blobs: dict[bytes, bytes] = {}
        self._lists: dict[bytes, TrustList] = {}
        self._lock = threading.Lock()

    def trust_list(self, trust_list: TrustList | None) -> TrustList | None:
        if trust_list is None:
            return None
        with self._lock:
            if len(self._lists) > 64:  # old lists nobody holds any more: start again
                self._lists.clear()
            return self._lists.setdefault(trust_list.data, trust_list)

    def blob(self, data: bytes | None) -> bytes | None:
        if data is None:
            return None
        with self._lock:
            if len(self._blobs) > 64:  # old lists nobody holds any more: start again
                self._blobs.clear()
            return self._blobs.setdefault(data, data)

    def flash(self, flash: Flash) -> Flash:
        ctl, itl = self.trust_list(flash.ctl), self.trust_list(flash.itl)
        cache = tuple(attrs.evolve(entry, certificate=self.blob(entry.certificate)) for entry in flash.tvs_cache)
        return attrs.evolve(flash, ctl=ctl, itl=itl, tvs_cache=cache)


class Worker:
    """The phones of one worker and the step loop (also usable in-process, for tests)."""

    def __init__(self, setup: WorkerSetup, clock: Clock = SYSTEM_CLOCK) -> None:
        self.setup = setup
        self.clock = clock
        catalogue = load_catalogue(list(setup.models_dirs))
        listed = [(index, model, mac, *load) for index, model, mac, *load in setup.phones]
        kinds = {(model, load[0] if load else None) for _, model, _, *load in listed}
        # One model record per (model, load): the load's firmware rows decide what the phone does.
        models = {(name, load): catalogue.get(name).on_load(load) for name, load in kinds}
        self._interner = _Interner()
        self._parses = SharedParses()
        #: Each phone's CAPF key is its own; generating RSA keys would dominate a fleet (docs/capf.md).
        self._keys = KeyPool(default_key_folder(setup.worker))
        #: Fleet phones hold no MIC: they register over TCP, or present nothing over TLS.
        self._register = SignallingTransport()
        self.phones = [_Phone(index, models[(model, load[0] if load else None)], mac,
                              self._interner.flash(setup.flash.get(mac, Flash())))
                       for index, model, mac, *load in listed]
        self._console_dir = Path(setup.console_dir) if setup.console_dir else None
        if self._console_dir is not None:
            self._console_dir.mkdir(parents=True, exist_ok=True)

    def run_step(self, order: StepOrder, emit: Callable[[list[BootRow]], None]) -> messages.StepStats:
        """Boot every phone once; ``emit`` receives batches of result rows. Returns the step's stats."""
        clock = self.clock
        # Transports per model record: two loads of one model may speak different TLS versions.
        tftp: dict[int, TftpTransport] = {}
        tvs: dict[int, TvsTransport] = {}
        for phone in self.phones:
            kind = id(phone.model)
            if kind not in tftp:
                tftp[kind] = TftpTransport(order.tftp_host, order.tftp_port, phone.model, blksize=order.blksize)
                tvs[kind] = TvsTransport(phone.model, timeout=self.setup.tvs_timeout)
        plan = schedule(self.phones, order, self.setup.seed, lambda phone: phone.mac)
        heapq.heapify(plan)
        lock = threading.Lock()
        batch: list[BootRow] = []
        sent = {"at": clock.monotonic(), "rows": 0}
        cpu_before = clock.cpu()

        def flush(force: bool = False) -> None:
            if batch and (force or len(batch) >= BATCH_ROWS or clock.monotonic() - sent["at"] >= BATCH_SECONDS):
                rows = batch[:]
                batch.clear()
                sent["at"] = clock.monotonic()
                sent["rows"] += len(rows)
                emit(rows)

        def run() -> None:
            while True:
                with lock:
                    if not plan:
                        return
                    delay, position = heapq.heappop(plan)
                wait = order.start_at + delay - clock.wall()
                if wait > 0:
                    clock.sleep(wait)
                phone = self.phones[position]
                try:
                    unsupported = order.cucm_release and phone.model.cucm_support(order.cucm_release)
                    if unsupported:
                        row = BootRow.unsupported(order.index, phone.index, phone.mac, phone.model.name,
                                                  unsupported, clock.wall())
                    else:
                        row = self._boot(phone, order, tftp[id(phone.model)], tvs[id(phone.model)])
                except Exception as failure:  # noqa: BLE001 - a bug after the boot: still one row per phone
                    row = BootRow.failed(order.index, phone.index, phone.mac, phone.model.name,
                                         f"{type(failure).__name__}: {failure}", clock.wall())
                with lock:
                    batch.append(row)
                    flush()

        threads = [threading.Thread(target=run, name=f"fleet-boot-{n}", daemon=True)
                   for n in range(max(1, min(self.setup.concurrency, len(self.phones))))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with lock:
            flush(force=True)
        return messages.StepStats(boots=sent["rows"], cpu_seconds=clock.cpu() - cpu_before)

    def act(self, action: str, models: frozenset[str]) -> int:
        """A phone action (the Security menu's erase, a factory reset) on every phone of ``models``:
        erase-ctl, erase-itl, erase, factory-reset.

        ``models`` names catalogue models (every load of each) or ``MODEL@LOAD`` kinds (``MODEL@``:
        the default load), so that a scenario's "legacy" selector reaches a 7965 on an old load only.
        """
        if action not in PHONE_ACTIONS:
            raise UsageError(f"unknown phone action {action!r} (known: {', '.join(PHONE_ACTIONS)})")
        event = FactoryReset() if action == "factory-reset" else Erased(ctl=action in ("erase-ctl", "erase"),
                                                                         itl=action in ("erase-itl", "erase"))
        acted = 0
        for phone in self.phones:
            if phone.model.name in models or kind_of(phone.model.name, phone.model.active_load) in models:
                machine, effects = PhoneMachine(phone.model, phone.mac, phone.flash).handle(event, self.clock.wall())
                phone.flash = machine.flash
                if action == "factory-reset":
                    phone.lsc = None  # the LSC goes with a factory reset (Cisco TAC note 200860)
                if self._console_dir is not None:
                    lines: list[str] = []
                    observe = self._console(phone, lines)
                    for effect in effects:
                        observe(effect)
                    if lines:
                        self._write_console(phone, lines)
                acted += 1
        return acted

    def _boot(self, phone: _Phone, order: StepOrder, tftp: TftpTransport, tvs: TvsTransport) -> BootRow:
        clock = self.clock
        timers = {"tftp": 0.0, "tvs": 0.0, "downloads": 0, "tvs_requests": 0}

        def fetch(request: Fetch):
            began = clock.monotonic()
            try:
                return tftp(request)
            finally:
                timers["tftp"] += clock.monotonic() - began
                timers["downloads"] += 1

        def ask_tvs(request: AskTvs):
            began = clock.monotonic()
            try:
                return tvs(request)
            finally:
                timers["tvs"] += clock.monotonic() - began
                timers["tvs_requests"] += 1

        lines: list[str] = []
        console = self._console(phone, lines) if self._console_dir is not None else _ignore
        capf = CapfTransport(ask_tvs=ask_tvs, keys=self._keys)

        def enrol_capf(plan: EnrolCapf):
            return capf(plan, CapfCredentials(lsc=phone.lsc))

        def observe(effect: object) -> None:
            if isinstance(effect, KeepLsc):
                phone.lsc = effect.lsc
            elif isinstance(effect, DropLsc):
                phone.lsc = None
            console(effect)

        start = clock.wall()
        began = clock.monotonic()
        error = None
        try:
            machine, report = run_boot(PhoneMachine(phone.model, phone.mac, phone.flash),
                                       fetch=self._parses.fetching(fetch),
                                       ask_tvs=ask_tvs, clock=clock.wall, observe=observe, enrol_capf=enrol_capf,
                                       register=self._register)
        except Exception as failure:  # noqa: BLE001 - one phone's failure is a result, not the worker's end
            error = f"{type(failure).__name__}: {failure}"
            detail = traceback.format_exc(limit=-3)
            report = None
        total = clock.monotonic() - began
        if lines:
            self._write_console(phone, lines)
        if report is None:
            return BootRow.failed(order.index, phone.index, phone.mac, phone.model.name, f"{error}\n{detail}",
                                  start, tftp_seconds=timers["tftp"], tvs_seconds=timers["tvs"], total_seconds=total,
                                  downloads=timers["downloads"], tvs_requests=timers["tvs_requests"])
        phone.flash = self._interner.flash(machine.flash)
        verdict = classify(report)
        tvs_json = _json([{"server": a.server, "type": a.message_type, "status": a.status, "roles": list(a.roles),
                           "error": a.error} for a in report.tvs_requests])
        files_json = _json([[f.name, f.result, f.code, f.via, f.reason] for f in report.files])
        return BootRow(order.index, phone.index, phone.mac, phone.model.name, verdict.outcome.value,
                       verdict.erase_needed, verdict.through_tvs, ",".join(verdict.codes), tvs_json, files_json, None,
                       start, timers["tftp"], timers["tvs"], total, timers["downloads"], timers["tvs_requests"],
                       verdict.lsc_installed,
                       report.registration.result if report.registration is not None else None)

    def _console(self, phone: _Phone, lines: list[str]) -> Callable[[object], None]:
        console = PhoneConsole(phone.model, self._local_time, sink=lines.append, keep=False, first_seq=phone.console_seq)

        def observe(effect: object) -> None:
            if isinstance(effect, Log):
                console.write(effect)

        return observe

    def _local_time(self) -> datetime:
        return datetime.fromtimestamp(self.clock.wall()).astimezone()

    def _write_console(self, phone: _Phone, lines: list[str]) -> None:
        assert self._console_dir is not None
        phone.console_seq += len(lines)
        with open(self._console_dir / f"{phone.model.device_name(phone.mac)}.log", "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


class _Silent:
    """A stand-in for tftpy's module loggers: its calls return at once.

    tftpy calls ``log.debug`` about 75 times per download, with arguments built
    even when nothing is logged; at three downloads a boot that is a tenth of a
    worker's CPU (docs/fleet.md). ``phone.tftp`` already silences tftpy's
    loggers (``quiet_tftpy``); here the calls themselves are skipped.
    """

    def _skip(self, *args: object, **kwargs: object) -> None:
        return None

    debug = info = warning = error = critical = exception = log = _skip

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the logging API's name
        return False


def silence_tftpy() -> bool:
    """In a worker process: replace tftpy's module loggers by ``_Silent``, unless someone asked for them."""
    import logging

    import tftpy

    if logging.getLogger("tftpy").getEffectiveLevel() <= logging.CRITICAL:
        return False  # the application set a level: keep tftpy's messages
    for name in ("TftpClient", "TftpContexts", "TftpPacketFactory", "TftpPacketTypes", "TftpShared", "TftpStates"):
        module = getattr(tftpy, name, None)
        if module is not None and hasattr(module, "log"):
            module.log = _Silent()
    return True


def _ignore(effect: object) -> None:
    return None


def _json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


# -- the process ------------------------------------------------------------------------


def worker_main(setup: WorkerSetup, commands, results) -> None:  # pragma: no cover - runs in a child process
    """The worker process: wait for steps, boot, report, until told to stop (or the parent goes).

    Ctrl-C is the parent's to handle: it stops its workers itself (SIGTERM), so they ignore SIGINT."""
    quiet_child()
    with contextlib.suppress(KeyboardInterrupt), profiled(f"fleet-worker-{setup.worker}"):
        try:
            silence_tftpy()
            worker = Worker(setup)
        except Exception as error:  # noqa: BLE001 - reported to the parent
            results.put(messages.WorkerFailed(setup.worker, f"{type(error).__name__}: {error}"))
            return
        results.put(messages.Ready(setup.worker, os.getpid()))
        while True:
            try:
                message = commands.recv()
            except EOFError:
                return
            if isinstance(message, messages.Stop):
                return
            if isinstance(message, messages.SendMemory):
                results.put(messages.Memory(setup.worker, _peak_rss_kib()))
            elif isinstance(message, messages.SendFlash):
                results.put(messages.FlashOf(setup.worker, [(phone.mac, phone.model.name, phone.flash)
                                                            for phone in worker.phones]))
            elif isinstance(message, messages.Act):
                try:
                    results.put(messages.Acted(setup.worker, worker.act(message.action, message.models)))
                except Exception as error:  # noqa: BLE001 - reported to the parent
                    results.put(messages.WorkerFailed(setup.worker, f"{type(error).__name__}: {error}"))
            elif isinstance(message, messages.BootStep):
                try:
                    stats = worker.run_step(message.order, lambda rows: results.put(messages.Rows(setup.worker,
                                                                                                  rows)))
                except Exception as error:  # noqa: BLE001 - reported to the parent
                    results.put(messages.WorkerFailed(setup.worker, f"{type(error).__name__}: {error}"))
                    return
                results.put(messages.StepDone(setup.worker, message.order.index,
                                              attrs.evolve(stats, peak_rss_kib=_peak_rss_kib())))


def _peak_rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
