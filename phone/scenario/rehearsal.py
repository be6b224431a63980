"""A served emulated cluster with phones, for scripts and regression tests.

``Rehearsal`` builds a lab in a folder, serves its TFTP and TVS on free
loopback ports, runs CUCM operations with the same words as ``phonetrust lab``
(through the lab's dispatcher, ``Lab.run``) and makes phones that boot against it over
the network::

    with Rehearsal.create(tmp_path, release="10.5") as cluster:
        phones = [cluster.phone(model) for model in ("CP-7975", "CP-8861", "CP-7940")]
        cluster.run("ctl set-cluster mixed-mode")
        cluster.boot(phones)
        cluster.run("cert regenerate CallManager", "ctl update")
        results = cluster.boot(phones)

Time is virtual (``ScenarioClock``): operations run an hour apart, console
lines a millisecond apart. The scenario runner and the pytest plugin build on
this module.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs

from phone.device.capf import CapfTransport
from phone.device.identity import MIC_KEY_BITS, IdentityStore, default_mic_ca
from phone.device.phone import Phone
from phone.errors import UsageError
from phone.lab import Lab
from phone.firmware.machine import BootReport
from phone.catalogue import load_catalogue, model_on_load
from phone.firmware.models import Catalogue, PhoneModel
from phone.fleet.phones import FleetPhone, allocate, mac_for
from phone.firmware.outcome import PhoneOutcome, Verdict, classify
from phone.console.phone import PhoneConsole
from phone.device.registration import SignallingTransport, identity_files
from phone.device.transports import TftpTransport, TvsTransport
from phone.wire.certs import generate_rsa_key

#: Cisco TAC 118893's CTL was made on Fri Mar 06 19:45:13 CET 2015; rehearsals start there.
START = datetime.datetime(2015, 3, 6, 18, 45, 13, tzinfo=datetime.timezone.utc)


class ScenarioClock:
    """Virtual time: an hour per step for the labs, a millisecond per reading for consoles."""

    def __init__(self, start: datetime.datetime = START) -> None:
        self.now = start

    def next_step(self) -> None:
        self.now = (self.now + datetime.timedelta(hours=1)).replace(microsecond=0)

    def tick(self) -> datetime.datetime:
        self.now += datetime.timedelta(microseconds=1357)
        return self.now


@attrs.frozen
class PhoneSpec:
    """One phone of a scenario: its model, MAC and firmware load (None: the model's default load).

    ``model`` is the model as it behaves on ``load`` (``PhoneModel.on_load``): the phone built from
    the spec runs that load's firmware rows, not the default load's.
    """

    model: PhoneModel
    mac: str
    load: str | None = None


def scenario_phones(mix: Mapping[str, int] | Sequence[FleetPhone], catalogue: Catalogue) -> list[PhoneSpec]:
    """The phones of ``mix``: model name or alias -> count, numbered by the fleet's MAC allocator
    (``phone.fleet.phones.allocate``), so ``scenario run`` and ``fleet run`` give a mix the same MACs;
    or the fleet's phones themselves (an inventory's: each with its own MAC and load)."""
    if not isinstance(mix, Mapping):
        on_load: dict[tuple[str, str | None], PhoneModel] = {}
        for phone in mix:
            if (phone.model, phone.load) not in on_load:
                on_load[(phone.model, phone.load)] = catalogue.get(phone.model).on_load(phone.load)
        return [PhoneSpec(on_load[(phone.model, phone.load)], phone.mac, phone.load) for phone in mix]
    models = [catalogue.get(name) for name in mix]
    counts = tuple((model.name, count) for model, count in zip(models, mix.values()))
    by_name = {model.name: model for model in models}
    return [PhoneSpec(by_name[phone.model], phone.mac) for phone in allocate(counts)]


def network_phone(spec: PhoneSpec, tftp_port: int, clock: ScenarioClock, *, tvs_timeout: float = 5.0,
                  state_folder: Path | None = None, mic_key_bits: int = MIC_KEY_BITS) -> Phone:
    """A phone that boots against a loopback TFTP server (and the TVS, CAPF and CallManager its
    configuration names).

    With ``state_folder`` the phone has an identity there (its ``identity`` folder), as a real one has
    (Cisco TAC note 200860): a MIC from the installation's emulated Cisco Manufacturing CA, which labs trust
    (``phone.device.identity.default_mic_ca``), and the LSC CAPF gives it, kept across boots, so it
    can enrol by existing certificate, open encrypted configurations and present its LSC or MIC when it
    registers over TLS (the files it presents are written to ``presented`` in that folder when it
    presents them). A new MIC is made at the virtual time of ``clock``,
    so the labs, which run at that time too, find it valid; ``mic_key_bits`` sizes its key (a test's
    1024 bits are faster to make). Without a folder it holds no MIC and presents nothing.
    """
    console = PhoneConsole(spec.model, clock.tick, keep=True)
    tvs = TvsTransport(spec.model, timeout=tvs_timeout)
    store = None
    if state_folder is not None:
        store = IdentityStore(state_folder, durable=False)
        # Issued here, not by the Phone, only to choose the key size; the Phone reads the same MIC.
        store.ensure_mic(spec.model.name, spec.model.device_name(spec.mac), default_mic_ca,
                         clock=lambda: clock.now, new_key=lambda _bits: generate_rsa_key(mic_key_bits))
    phone = Phone(spec.model, spec.mac, fetch=TftpTransport("127.0.0.1", tftp_port, spec.model),
                  ask_tvs=tvs, clock=clock.tick, console=console, enrol_capf=CapfTransport(ask_tvs=tvs),
                  register=SignallingTransport(), identity=store)
    if state_folder is not None:
        presented = state_folder / "presented"
        presented.mkdir(parents=True, exist_ok=True)
        # Looked up when the registration starts, not before the boot: a phone whose CAPF session
        # installed (or deleted) its LSC earlier in the same boot presents what it holds then.
        phone.register = SignallingTransport(
            identities=lambda kind: identity_files(phone.identity, kind, presented))
    return phone


@attrs.frozen
class BootResult:
    """One phone's boot: the report, the verdict, and the console lines it wrote."""

    phone: Phone = attrs.field(repr=lambda phone: phone.machine.device_name)
    report: BootReport
    verdict: Verdict
    console: tuple[str, ...] = attrs.field(repr=False)

    @property
    def model(self) -> PhoneModel:
        return self.phone.model

    @property
    def outcome(self) -> PhoneOutcome:
        return self.verdict.outcome

    def result(self, prefix: str) -> str | None:
        """The result of the file whose name starts with ``prefix`` ("CTL", "ITL", "SEP")."""
        matching = [entry for entry in self.report.files if entry.name.startswith(prefix)]
        found = [entry for entry in matching if entry.result != "not_found"]
        return (found or matching)[-1].result if matching else None


class Rehearsal:
    """One emulated cluster in a folder, served on loopback while the ``with`` block lasts."""

    def __init__(self, folder: Path, *, catalogue: Catalogue | None = None, clock: ScenarioClock | None = None,
                 tvs_timeout: float = 5.0) -> None:
        self.folder = Path(folder)
        self.catalogue = catalogue or load_catalogue()
        self.clock = clock or ScenarioClock()
        self.tvs_timeout = tvs_timeout
        self.trace: list[str] = []
        self.lab = Lab.open(self.folder, clock=lambda: self.clock.now)
        self._stack = contextlib.ExitStack()
        self.servers = None
        self._phones = 0

    @classmethod
    def create(cls, folder: Path, *, release: str = "10.5", nodes: int = 1, key_size: int = 2048,
               catalogue: Catalogue | None = None) -> Rehearsal:
        """A new lab in ``folder``, as ``phonetrust lab init`` makes it."""
        clock = ScenarioClock()
        Lab.create(folder, release=release, nodes=nodes, key_bits=key_size, clock=lambda: clock.now)
        return cls(folder, catalogue=catalogue, clock=clock)

    def __enter__(self) -> Rehearsal:
        self.servers = self._stack.enter_context(self.lab.serving(trace=self.trace.append))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
        self.servers = None

    @property
    def tftp_port(self) -> int:
        if self.servers is None:
            raise UsageError("the rehearsal is not serving: use it in a `with` block")
        return self.servers.tftp_port

    def run(self, *operations: str | Sequence[str]) -> list[str]:
        """CUCM operations, in ``phonetrust lab`` words (a string each, or a list of words); the lines
        CUCM printed. A refusal raises ``OperationRefused`` (the operations after it do not run)."""
        self.clock.next_step()
        printed: list[str] = []
        try:
            for operation in operations:
                printed.extend(self.lab.run(operation).lines)
        finally:
            if self.servers is not None:
                self.servers.sync()
        return printed

    def tvs_down(self) -> None:
        self.servers.stop_tvs()

    def tvs_up(self) -> None:
        self.servers.start_tvs()

    def phone(self, model: str, mac: str | None = None) -> Phone:
        """A new phone of ``model`` (an alias is fine; ``MODEL@LOAD`` runs that load) with an empty flash."""
        name, _, load = model.partition("@")
        spec = PhoneSpec(model_on_load(model, self.catalogue), mac or mac_for(self._phones), load.strip() or None)
        self._phones += 1
        return network_phone(spec, self.tftp_port, self.clock, tvs_timeout=self.tvs_timeout)

    def boot(self, phones: Iterable[Phone]) -> list[BootResult]:
        """Reboot each phone once, in order."""
        self.trace.clear()
        results = []
        for phone in phones:
            phone.console.lines.clear()
            report = phone.boot()
            results.append(BootResult(phone, report, classify(report), tuple(phone.console.lines)))
        return results
