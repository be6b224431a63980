"""Where a fleet boots and what changes between its steps: a server, the testbed, a scenario.

Each target is a context manager (serving what needs serving) with
``step_names()``, ``counted`` (the step whose outcome a summary counts: a
scenario's last cluster change, else the last step) and ``steps(fleet)``, a
generator that makes each step's cluster changes and phone actions, then
yields ``(step name, (tftp host, port))`` for ``fleet.boot_all``::

    with ScenarioTarget(find_scenario("regenerate-callmanager")) as target, Fleet(counts) as fleet:
        for name, tftp in target.steps(fleet):
            fleet.boot_all(name, tftp=tftp)
        summary = fleet.summary(target.counted)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from phone.errors import UsageError
from phone.lab.devices import DeviceRecord
from phone.fleet.engine import Fleet
from phone.catalogue import load_catalogue
from phone.scenario.definition import ScenarioError
from phone.fleet.worker import kind_of
from phone.scenario.steps import create_labs, run_operation, selects


class ServerTarget:
    """Boots against a TFTP server as it is: ``--steps`` boots of every phone, no cluster change.

    ``release``: the server's CUCM release when the user gives it (``fleet run --cucm-release``),
    so that phones it does not support are reported as such (docs/models.md "CUCM releases").
    """

    counted: str | None = None
    _release: str | None = None

    def __init__(self, host: str, port: int, steps: int, release: str | None = None) -> None:
        self.tftp, self.count = (host, port), steps
        self._release = release

    def cucm_release(self) -> str | None:
        """The CUCM release of the cluster the next boots go to (None: not known)."""
        return self._release

    def __enter__(self) -> ServerTarget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def step_names(self) -> list[str]:
        return [f"boot-{n}" for n in range(1, self.count + 1)]

    def steps(self, fleet: Fleet) -> Iterator[tuple[str, tuple[str, int]]]:
        for name in self.step_names():
            yield name, self.tftp


class TestbedTarget(ServerTarget):
    """``testbed:regenerate-callmanager``: a one-node lab (``phone.fleet.testbed``), served from child processes."""

    def __init__(self, bits: int = 2048, host: str = "127.0.0.1") -> None:
        from phone.fleet import testbed

        self.host = host  # where its servers listen and phones find them (fleet run --advertise)
        self._bits = bits
        self._testbed = testbed
        self._release = testbed.RELEASE
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TestbedTarget:
        self.server = self._stack.enter_context(self._testbed.serving_testbed(bits=self._bits, host=self.host))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def step_names(self) -> list[str]:
        return [name for name, _ in self._testbed.REGENERATE_CALLMANAGER]

    def steps(self, fleet: Fleet) -> Iterator[tuple[str, tuple[str, int]]]:
        for name, change in self._testbed.REGENERATE_CALLMANAGER:
            if change:
                self.server.apply(change)
            yield name, self.server.tftp


class ScenarioTarget(ServerTarget):
    """A scenario (phone.scenario): its labs made in a work folder and served from a child process;
    each step's lab operations run through the lab's dispatcher as the scenario runner runs them, its
    phone actions go to the fleet, then every phone boots."""

    def __init__(self, scenario, work: Path | None = None, key_size: int | None = None,
                 host: str = "127.0.0.1", devices: Sequence[DeviceRecord] = ()) -> None:
        """``devices``: lab device records (an inventory's security profiles and CAPF settings)
        put into every lab of the scenario before its servers start."""
        per_step = [step.name for step in scenario.steps if step.devices or step.auth_string]
        if per_step:
            # Fleet phones hold no MIC and are not told what their users type: such a run would count
            # outcomes the scenario does not describe.
            raise UsageError(f"scenario {scenario.name} sets device pages or authentication strings in step "
                             f"{per_step[0]!r}, which fleet runs do not replay: use `phonetrust scenario run`")
        self.scenario = scenario
        self.devices = tuple(devices)
        self.host = host  # where the labs' servers listen and phones find them (fleet run --advertise)
        self.counted = scenario.last_change.name
        self._work = work
        self._key_size = key_size
        self._stack = contextlib.ExitStack()

    def step_names(self) -> list[str]:
        return [step.name for step in self.scenario.steps if step.boot]

    def lab_dir(self, key: str) -> Path:
        return self.work / f"lab-{key}"

    def __enter__(self) -> ScenarioTarget:
        import tempfile

        from phone.lab.servers.processes import serving_labs
        from phone.scenario.rehearsal import ScenarioClock

        if self._work is None:
            self.work = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="phonetrust-fleet-")))
        else:
            self.work = self._work
            self.work.mkdir(parents=True, exist_ok=True)
        self.clock = ScenarioClock()
        try:
            try:
                create_labs(self.scenario, self.lab_dir, self.clock.now, self._key_size, self.devices)
            except ScenarioError as error:
                raise UsageError(str(error)) from None
            self.server = self._stack.enter_context(
                serving_labs({key: self.lab_dir(key) for key in self.scenario.labs}, host=self.host))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def steps(self, fleet: Fleet) -> Iterator[tuple[str, tuple[str, int]]]:
        catalogue = load_catalogue()
        # Each kind of phone (model and load) as it behaves: "sbd"/"legacy" selectors follow the load.
        kinds = {(phone.model, phone.load) for phone in fleet.phones}
        models = {kind_of(name, load): catalogue.get(name).on_load(load) for name, load in sorted(kinds, key=str)}
        tftp = "a" if "a" in self.scenario.labs else next(iter(self.scenario.labs))
        for step in self.scenario.steps:
            self.clock.next_step()
            for operation in step.lab:
                _, problem = run_operation(operation, self.lab_dir(step.on), self.work, self.lab_dir, self.clock.now)
                if problem:
                    raise UsageError(f"scenario {self.scenario.name}: {problem}")
            self.server.sync()
            self.server.tvs(None, step.tvs != "down")
            tftp = step.tftp or tftp
            self._release = self.scenario.labs[tftp].release
            for selector, action in step.actions.items():
                fleet.act(action, [kind for kind, model in models.items() if selects(selector, model, catalogue)])
            if step.boot:
                yield step.name, (self.host, self.server.tftp_ports[tftp])

