"""Running a scenario: emulated clusters, real servers, real phones, expectations checked.

Every lab operation goes through the real command line (``phonetrust lab …``,
in this process), so a scenario replays exactly what a user would type. The
labs are served on loopback (TFTP and TVS, ``phone.lab.servers.serving``); each phone is
a full ``phone.device.phone.Phone`` talking TFTP and TLS to them. Time is virtual:
lab operations run at a scenario clock that advances an hour a step, and the
phones' consoles read a clock that ticks a millisecond a line, so two runs of
a scenario write the same consoles apart from key material.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import attrs

from phone.device.phone import Phone
from phone.lab import Lab
from phone.lab.devices import DeviceRecord
from phone.firmware.machine import BootReport
from phone.catalogue import load_catalogue
from phone.firmware.models import Catalogue, PhoneModel
from phone.fleet.phones import FleetPhone
from phone.firmware.outcome import Verdict, classify, unsupported
from phone.scenario.rehearsal import PhoneSpec, ScenarioClock, network_phone, scenario_phones
from phone.scenario.definition import Expectation, Operation, Scenario, ScenarioError, ScenarioStep
from phone.scenario.steps import create_labs, is_sbd, run_operation, selects
from phone.device.identity import MIC_KEY_BITS
from phone.device.transports import TftpTransport

T = TypeVar("T")

@attrs.frozen
class PhoneResult:
    """One phone after one step."""

    spec: PhoneSpec
    report: BootReport | None
    verdict: Verdict | None
    mismatches: tuple[str, ...] = ()
    console: tuple[str, ...] = ()


@attrs.frozen
class StepResult:
    step: ScenarioStep
    lab_output: tuple[str, ...]
    phones: tuple[PhoneResult, ...]
    problems: tuple[str, ...] = ()  # operation, trace and console expectations that failed
    trace: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems and not any(phone.mismatches for phone in self.phones)


@attrs.frozen
class ScenarioResult:
    scenario: Scenario
    steps: tuple[StepResult, ...]
    phones: tuple[PhoneSpec, ...]

    @property
    def passed(self) -> bool:
        return all(step.passed for step in self.steps)


def expectation_for(step: ScenarioStep, model: PhoneModel, catalogue: Catalogue) -> Expectation | None:
    """The most specific expectation for ``model``: its own, then sbd/legacy, then "*"."""
    return _most_specific(step.expect, model, catalogue)


def _most_specific(by_selector: Mapping[str, T], model: PhoneModel, catalogue: Catalogue) -> T | None:
    """The entry of the most specific selector for ``model``: its own, then sbd/legacy, then "*"."""
    for selector, entry in by_selector.items():
        if selector not in ("*", "sbd", "legacy") and selects(selector, model, catalogue):
            return entry
    chosen = by_selector.get("sbd" if is_sbd(model) else "legacy")
    return chosen if chosen is not None else by_selector.get("*")


def _result_of(report: BootReport, matches: Callable[[str], bool]) -> str | None:
    """The result of the file that counted: the last one found among those matching, else "not_found"."""
    entries = [entry for entry in report.files if matches(entry.name)]
    found = [entry for entry in entries if entry.result != "not_found"]
    return (found or entries)[-1].result if entries else None


def check_phone(expect: Expectation, report: BootReport, verdict: Verdict,
                lsc_held: bool | None = None) -> tuple[str, ...]:
    """What differs between what a phone did and what the scenario expects of it (``lsc_held``: whether
    the phone holds an LSC after the boot; None when the caller cannot tell, and ``lsc`` is not checked)."""
    problems = []

    def differs(what: str, wanted: object, got: object) -> None:
        if wanted is not None and wanted != got:
            problems.append(f"{what}: expected {wanted}, got {got}")

    differs("outcome", expect.outcome, verdict.outcome.value)
    differs("erase_needed", expect.erase_needed, verdict.erase_needed)
    differs("ctl", expect.ctl, _result_of(report, lambda name: name.startswith("CTL")))
    differs("itl", expect.itl, _result_of(report, lambda name: name.startswith("ITL")))
    differs("config", expect.config, _result_of(report, lambda name: ".cnf.xml" in name))
    if expect.via is not None:
        vias = sorted({e.via for e in report.files if e.result == "installed" and e.via})
        if expect.via not in vias:
            problems.append(f"via: expected {expect.via}, got {', '.join(vias) or 'nothing installed'}")
    if expect.code is not None and expect.code not in verdict.codes:
        problems.append(f"code: expected {expect.code}, got {', '.join(verdict.codes) or 'no rejection'}")
    if expect.screen is not None and expect.screen not in report.status_messages:
        problems.append(f"screen: expected {expect.screen!r}, got {list(report.status_messages)}")
    if expect.tvs_roles is not None:
        answered = [tuple(sorted(a.roles)) for a in report.tvs_requests if a.status == 0]
        if expect.tvs_roles not in answered:
            problems.append(f"tvs_roles: expected {list(expect.tvs_roles)}, got {[list(r) for r in answered]}")
    problems.extend(check_identity(expect, report, lsc_held))
    return tuple(problems)


def check_identity(expect: Expectation, report: BootReport, lsc_held: bool | None) -> list[str]:
    """What differs in the phone's identity side: its LSC after the boot (``lsc_held``; None when not
    known), this boot's CAPF result, an encrypted configuration, and its registration."""
    problems = []

    def differs(what: str, wanted: object, got: object) -> None:
        if wanted is not None and wanted != got:
            problems.append(f"{what}: expected {wanted}, got {got}")

    if expect.lsc is not None and lsc_held is not None:
        differs("lsc", expect.lsc, "present" if lsc_held else "absent")
    capf = report.capf
    if expect.capf is not None and (capf is None or capf.result != expect.capf):
        got = "no CAPF operation" if capf is None else capf.result + (f" ({capf.reason})" if capf.reason else "")
        problems.append(f"capf: expected {expect.capf}, got {got}")
    differs("config_encrypted", expect.config_encrypted, report.config_encrypted)
    registration = report.registration
    if expect.registration is not None:
        got = "none" if registration is None else registration.result
        if got != expect.registration:
            detail = f" ({registration.code}: {registration.reason})" if registration and registration.reason else (
                f" ({registration.code})" if registration else "")
            problems.append(f"registration: expected {expect.registration}, got {got}{detail}")
    if expect.registration_code is not None:
        differs("registration_code", expect.registration_code, registration.code if registration else "none")
    return problems


def check_unsupported(expect: Expectation, verdict: Verdict) -> tuple[str, ...]:
    """What a scenario expects of a phone that was not booted because its CUCM release does not
    support it: anything but outcome "unsupported" (or code "cucm-unsupported") differs."""
    problems = []
    if expect.outcome is not None and expect.outcome != verdict.outcome.value:
        problems.append(f"outcome: expected {expect.outcome}, got {verdict.outcome.value} ({verdict.reason})")
    if expect.code is not None and expect.code not in verdict.codes:
        problems.append(f"code: expected {expect.code}, got {', '.join(verdict.codes)}")
    for what in ("ctl", "itl", "config", "via", "screen", "tvs_roles", "capf", "config_encrypted",
                 "registration", "registration_code"):
        if getattr(expect, what) is not None:
            problems.append(f"{what}: expected {getattr(expect, what)}, got nothing: the phone was not booted "
                            f"({verdict.reason})")
    if expect.erase_needed:
        problems.append(f"erase_needed: expected True, got False ({verdict.reason})")
    return tuple(problems)


class ScenarioRun:
    """One run of a scenario in ``work`` (a scratch folder)."""

    def __init__(
        self,
        scenario: Scenario,
        work: Path,
        *,
        phones: Mapping[str, int] | Sequence[FleetPhone] | None = None,
        catalogue: Catalogue | None = None,
        progress: Callable[[str], None] = lambda message: None,
        tvs_timeout: float = 5.0,
        key_size: int | None = None,
        devices: Sequence[DeviceRecord] = (),
    ) -> None:
        """``key_size`` overrides the labs' key size (1024 makes test runs faster); ``devices`` go into
        every lab's device store before the first step (an inventory's security profiles and CAPF)."""
        self.scenario = scenario
        self.devices = tuple(devices)
        self.key_size = key_size
        self.work = Path(work)
        self.catalogue = catalogue or load_catalogue()
        self.progress = progress
        self.tvs_timeout = tvs_timeout
        self.clock = ScenarioClock()
        mix = phones if phones is not None else scenario.phones
        if not mix:
            raise ScenarioError(f"scenario {scenario.name}: no phones (give a [phones] table or --phones)")
        self.specs = scenario_phones(mix, self.catalogue)
        self.trace: list[str] = []

    # -- lab operations through the command line ---------------------------------------

    def lab_dir(self, key: str) -> Path:
        return self.work / f"lab-{key}"

    def _operate(self, step: ScenarioStep) -> tuple[tuple[str, ...], list[str]]:
        output, problems = [], []
        for operation in step.lab:
            printed, problem = run_operation(operation, self.lab_dir(step.on), self.work, self.lab_dir,
                                             self.clock.now)
            output.append(f"admin: {operation.run}")
            output.extend(printed)
            if problem:
                problems.append(problem)
        return tuple(output), problems

    # -- running ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _serving(self) -> Iterator[dict]:
        with contextlib.ExitStack() as stack:
            servers = {}
            for key in self.scenario.labs:
                lab = Lab.open(self.lab_dir(key), clock=lambda: self.clock.now)
                servers[key] = stack.enter_context(lab.serving(trace=self.trace.append))
            yield servers

    def _asks_tvs(self) -> bool:
        """Whether any phone of the mix can ask TVS: the lab's TVS trace only shows their requests.

        Legacy phones (7940/7960) never ask TVS (Cisco TAC note 118893), so a run with
        only them has no trace to check, whatever the scenario expects of SBD phones.
        """
        return any(is_sbd(spec.model) for spec in self.specs)

    def phone_dir(self, spec: PhoneSpec) -> Path:
        """Where a phone of the run keeps its identity (MIC, LSC) across the scenario's steps."""
        return self.work / "phones" / spec.model.device_name(spec.mac)

    def _phone(self, spec: PhoneSpec, port: int) -> Phone:
        return network_phone(spec, port, self.clock, tvs_timeout=self.tvs_timeout,
                             state_folder=self.phone_dir(spec),
                             mic_key_bits=self.key_size or MIC_KEY_BITS)

    def _set_devices(self, step: ScenarioStep) -> tuple[tuple[str, ...], list[str]]:
        """``lab device set`` on lab ``on`` for every phone a ``[steps.devices.SELECTOR]`` selects (the most
        specific selector wins, as for expectations): what the lab printed, and what went wrong."""
        output, problems = [], []
        for spec in self.specs:
            settings = _most_specific(step.devices, spec.model, self.catalogue)
            if settings is None or not settings.words():
                continue
            name = spec.model.device_name(spec.mac)
            words = " ".join(shlex.quote(word) for word in ("device", "set", name, "--model", spec.model.name,
                                                            *settings.words()))
            printed, problem = run_operation(Operation(words), self.lab_dir(step.on), self.work, self.lab_dir,
                                             self.clock.now)
            output.append(f"admin: {words}")
            output.extend(printed[:1])  # "Update Successful: SEP…"; the whole page is `lab device show`
            if problem:
                problems.append(problem)
        return tuple(output), problems

    def run(self) -> ScenarioResult:
        self.work.mkdir(parents=True, exist_ok=True)
        self.progress(f"creating {len(self.scenario.labs)} lab(s)")
        create_labs(self.scenario, self.lab_dir, self.clock.now, self.key_size, self.devices)
        results = []
        with self._serving() as servers:
            tftp = "a"
            phones = {spec.mac: self._phone(spec, servers[tftp].tftp_port) for spec in self.specs}
            for step in self.scenario.steps:
                self.clock.next_step()
                self.progress(f"step {step.name}")
                output, problems = self._operate(step)
                device_output, device_problems = self._set_devices(step)
                output += device_output
                problems += device_problems
                for running in servers.values():
                    running.sync()
                    if step.tvs == "down":
                        running.stop_tvs()
                    else:
                        running.start_tvs()
                if step.tftp and step.tftp != tftp:
                    tftp = step.tftp
                    for spec in self.specs:
                        phones[spec.mac].fetch = TftpTransport("127.0.0.1", servers[tftp].tftp_port, spec.model)
                results.append(self._step(step, output, problems, phones, self.scenario.labs[tftp].release))
        return ScenarioResult(self.scenario, tuple(results), tuple(self.specs))

    def _step(self, step: ScenarioStep, output: tuple[str, ...], problems: list[str], phones: dict[str, Phone],
              release: str | None = None) -> StepResult:
        """Phone actions, then every phone boots against the lab of CUCM ``release``; a phone that
        release does not support on its load is reported "unsupported" and not booted."""
        for spec in self.specs:
            for selector, action in step.actions.items():
                if selects(selector, spec.model, self.catalogue):
                    phone = phones[spec.mac]
                    if action == "factory-reset":
                        phone.factory_reset()
                    else:
                        phone.erase(ctl=action in ("erase-ctl", "erase"), itl=action in ("erase-itl", "erase"))
        if not step.boot:
            return StepResult(step, output, (), tuple(problems))
        self.trace.clear()
        results = []
        consoles: dict[str, list[str]] = {}
        for spec in self.specs:
            phone = phones[spec.mac]
            phone.console.lines.clear()
            reason = spec.model.cucm_support(release) if release else None
            if reason:
                verdict = unsupported(reason)
                expectation = expectation_for(step, spec.model, self.catalogue)
                mismatches = check_unsupported(expectation, verdict) if expectation else ()
                results.append(PhoneResult(spec, None, verdict, mismatches))
                continue
            phone.enrol_capf.auth_string = _most_specific(step.auth_string, spec.model, self.catalogue)
            report = phone.boot()
            verdict = classify(report)
            expectation = expectation_for(step, spec.model, self.catalogue)
            mismatches = check_phone(expectation, report, verdict, phone.lsc is not None) if expectation else ()
            lines = tuple(phone.console.lines)
            consoles.setdefault(spec.model.name, []).extend(lines)
            results.append(PhoneResult(spec, report, verdict, mismatches, lines))
        trace = tuple(self.trace)
        for wanted in step.trace if self._asks_tvs() else ():
            if not any(wanted in line for line in trace):
                problems.append(f"TVS trace: no line contains {wanted!r}")
        for selector, wanted_lines in step.console.items():
            model = self.catalogue.get(selector)
            if model.name not in consoles:
                continue  # checks follow the phones that exist: this model is not in the mix
            seen = consoles[model.name]
            for wanted in wanted_lines:
                if not any(wanted in line for line in seen):
                    problems.append(f"{model.name} console: no line contains {wanted!r}")
        return StepResult(step, output, tuple(results), tuple(problems), trace)
