"""Scenario files: a cluster's steps, a phone mix, and the outcome expected per model.

A scenario is TOML (``scenarios/*.toml`` ships with the package; any path works
too). Every step changes one or more emulated clusters with the same words as
``phonetrust lab …`` (the operations run through the real command line), then
reboots the phones and checks what each model did::

    name = "regenerate-callmanager"
    title = "Certificate regeneration under a tokenless CTL"
    source = 'Cisco TAC 118893, "Certificate Regeneration for Tokenless CTL Solution"'
    source_title = "トークンレス CTL の解決策のための証明書の再生成"   # optional: the source's own title
    [labs.a]                      # one lab unless told otherwise: release, nodes, key-size
    release = "10.5"
    [phones]                      # the default mix: model = count
    CP-7975 = 1
    [[steps]]
    name = "regenerate"
    lab = ["cert regenerate CallManager", "ctl update"]   # or {run = "…", fails_with = "…"}
    on = "a"                      # the lab the operations change (default "a")
    tftp = "a"                    # the lab whose TFTP the phones boot from (default: as before)
    tvs = "up"                    # or "down": the lab's TVS servers during this step's boots
    actions = {CP-7940 = "erase-ctl"}   # before booting: erase-ctl | erase-itl | erase | factory-reset
    [steps.devices.CP-8861]       # before the boots: `lab device set` for every phone of the selection
    security_profile = "encrypted"   # non-secure | authenticated | encrypted
    encrypted_config = true          # the profile's "TFTP Encrypted Config"
    capf_operation = "install"       # install | upgrade | delete | fetch | none
    capf_auth = "auth-string:123456" # null-string | auth-string:DIGITS | existing-lsc | existing-mic
    capf_key = "rsa2048"
    auth_string = {CP-8861 = "123456"}   # what the user types on those phones during this step
    [steps.expect.sbd]            # selector: a model, "sbd", "legacy" or "*"; the most specific wins
    outcome = "accepted"          # accepted | rejected | unchanged | failed
    via = "tvs"                   # what vouched for the installed list(s)
    [steps.expect.legacy]
    outcome = "rejected"
    erase_needed = true
    ctl = "rejected"              # a file's result: ctl | itl | config
    code = "no-tvs"               # a rejection code (phone.firmware.trust.REJECTION_CODES)
    screen = "Trust List Update Failed"
    [steps.expect.CP-8861]
    lsc = "present"               # or "absent": the phone's LSC after the boot
    capf = "installed"            # this boot's CAPF result: installed | deleted | fetched |
                                  #   nothing_pending | refused | failed
    config_encrypted = true       # the configuration applied this boot came encrypted
    registration = "registered"   # registered | rejected | failed | waiting | none
    registration_code = "registered-encrypted"   # the registration's code (docs/registration.md)
    [steps.trace]                 # the lab's TVS trace during the step must contain these
    contains = ["{role : 0}"]
    [steps.console.CP-7975]       # a model's console must contain these messages
    contains = ["setupSocketToTvsProxy: Connected to TVS proxy server"]

Placeholders in operations: ``{work}`` (the run's scratch folder),
``{cert:LAB:SERVICE}`` (the PEM of that lab's publisher certificate, e.g.
``{cert:b:CallManager}``) and ``{cn:FILE}`` (the subject CN of the certificate in
FILE, e.g. one ``cert export … --out {work}/old.pem`` kept before a regeneration).

Scenario phones have a MIC and keep the LSC CAPF gives them across the steps
(docs/scenarios.md, "The phone's identity").
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from phone.errors import LocalError, UsageError
from phone.lab.devices import CAPF_KEYS, CAPF_OPERATIONS, SECURITY_PROFILES, parse_capf_auth
from phone.resources import bundled_dir
from phone.firmware.trust import REJECTION_CODES

#: "unsupported": the lab's CUCM release does not support the model on its load (not booted).
OUTCOMES = ("accepted", "rejected", "unchanged", "failed", "unsupported")
FILE_RESULTS = ("not_found", "installed", "unchanged", "rejected", "applied", "failed")
PHONE_ACTIONS = ("erase-ctl", "erase-itl", "erase", "factory-reset")
VIAS = ("leap-of-faith", "ctl", "itl", "tvs", "tvs-cache")
LSC_STATES = ("present", "absent")
#: A boot's CAPF result (docs/capf.md, "What the boot reports").
CAPF_RESULTS = ("installed", "deleted", "fetched", "nothing_pending", "refused", "failed")
#: A boot's registration result (docs/registration.md); "none": the boot did not register at all.
REGISTRATION_RESULTS = ("registered", "rejected", "failed", "waiting", "none")


class ScenarioError(LocalError):
    """A scenario file that cannot be read; the message names the file and the field."""


@attrs.frozen
class Operation:
    """One lab command (``phonetrust lab <run>``), optionally expected to be refused."""

    run: str
    fails_with: str | None = None


@attrs.frozen
class Expectation:
    """What a model's phones must show after a step; None fields are not checked."""

    outcome: str | None = None
    erase_needed: bool | None = None
    via: str | None = None
    ctl: str | None = None
    itl: str | None = None
    config: str | None = None
    code: str | None = None
    screen: str | None = None
    tvs_roles: tuple[int, ...] | None = None
    lsc: str | None = None
    capf: str | None = None
    config_encrypted: bool | None = None
    registration: str | None = None
    registration_code: str | None = None


@attrs.frozen
class DeviceSettings:
    """One ``[steps.devices.SELECTOR]`` table: the fields of ``phonetrust lab device set`` to save on the
    pages of the selected phones before the step's boots (None: left as it is)."""

    security_profile: str | None = None
    encrypted_config: bool | None = None
    capf_operation: str | None = None
    capf_auth: str | None = None
    capf_key: str | None = None

    def words(self) -> tuple[str, ...]:
        """The options of ``lab device set`` that say this."""
        words: list[str] = []
        for option, value in (("--security-profile", self.security_profile),
                              ("--capf-operation", self.capf_operation), ("--capf-auth", self.capf_auth),
                              ("--capf-key", self.capf_key)):
            if value is not None:
                words += [option, value]
        if self.encrypted_config is not None:
            words += ["--encrypted-config", "on" if self.encrypted_config else "off"]
        return tuple(words)


@attrs.frozen
class ScenarioStep:
    """One ``[[steps]]`` table: lab operations, then phone actions and boots, then what each model must show."""

    name: str
    title: str = ""
    lab: tuple[Operation, ...] = ()
    on: str = "a"
    tftp: str | None = None
    tvs: str = "up"
    actions: Mapping[str, str] = MappingProxyType({})
    boot: bool = True
    expect: Mapping[str, Expectation] = MappingProxyType({})
    trace: tuple[str, ...] = ()
    console: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    devices: Mapping[str, DeviceSettings] = MappingProxyType({})
    auth_string: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class LabSpec:
    release: str = "10.5"
    nodes: int = 2
    key_size: int = 2048


@attrs.frozen
class Scenario:
    name: str
    title: str
    description: str
    source: str
    labs: Mapping[str, LabSpec]
    phones: Mapping[str, int]
    steps: tuple[ScenarioStep, ...]
    path: Path | None = attrs.field(default=None, eq=False)
    #: The source's section title in its own language (Cisco TAC 118893 is cited from its
    #: Japanese edition); ``source`` is always the English one, which is what users see.
    source_title: str = ""

    @property
    def last_change(self) -> ScenarioStep:
        """The last cluster change phones boot after: its outcome is "the" outcome of a fleet run.

        Steps that only act on phones (a hand erase) or change nothing do not count, so
        for Cisco TAC 118893's regeneration this is the regeneration, not the later erase.
        """
        changes = [step for step in self.steps if step.boot and step.lab]
        booting = [step for step in self.steps if step.boot]
        return (changes or booting or list(self.steps))[-1]


# -- loading -------------------------------------------------------------------------------


def scenario_dirs() -> list[Path]:
    return [bundled_dir("scenarios")]


def list_scenarios() -> list[Scenario]:
    """The bundled scenarios, by name."""
    found = []
    for folder in scenario_dirs():
        for path in sorted(folder.glob("*.toml")):
            found.append(load_scenario(path))
    return sorted(found, key=lambda scenario: scenario.name)


def find_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return load_scenario(path)
    for folder in scenario_dirs():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return load_scenario(candidate)
    known = ", ".join(scenario.name for scenario in list_scenarios())
    raise ScenarioError(f"unknown scenario {name_or_path!r} (known: {known}; or give a .toml path)")


class _Reader:
    """Reads one table of a scenario file, naming the place of every error."""

    def __init__(self, path: Path, where: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ScenarioError(f"{path}: {where} must be a table")
        self.path, self.where, self.table = path, where, table

    def fail(self, field: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.path}: {self.where}.{field}: {problem}")

    def get(self, field: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if field not in self.table:
            if required:
                raise self.fail(field, "is required")
            return default
        value = self.table[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(field, f"expected {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def choice(self, field: str, options: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.get(field, str, default)
        if value is not None and value not in options:
            raise self.fail(field, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def only(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _expectation(reader: _Reader) -> Expectation:
    reader.only({f.name for f in attrs.fields(Expectation)})
    code = reader.get("code", str)
    if code is not None and code not in REJECTION_CODES:
        raise reader.fail("code", f"unknown rejection code {code!r} (see phone.firmware.trust.REJECTION_CODES)")
    roles = reader.get("tvs_roles", list)
    return Expectation(
        outcome=reader.choice("outcome", OUTCOMES),
        erase_needed=reader.get("erase_needed", bool),
        via=reader.choice("via", VIAS),
        ctl=reader.choice("ctl", FILE_RESULTS),
        itl=reader.choice("itl", FILE_RESULTS),
        config=reader.choice("config", FILE_RESULTS),
        code=code,
        screen=reader.get("screen", str),
        tvs_roles=None if roles is None else tuple(sorted(int(role) for role in roles)),
        lsc=reader.choice("lsc", LSC_STATES),
        capf=reader.choice("capf", CAPF_RESULTS),
        config_encrypted=reader.get("config_encrypted", bool),
        registration=reader.choice("registration", REGISTRATION_RESULTS),
        registration_code=reader.get("registration_code", str),
    )


def _device_settings(reader: _Reader) -> DeviceSettings:
    reader.only({f.name for f in attrs.fields(DeviceSettings)})
    capf_auth = reader.get("capf_auth", str)
    if capf_auth is not None:
        try:
            _, digits = parse_capf_auth(capf_auth)
        except UsageError as error:
            raise reader.fail("capf_auth", str(error)) from None
        if digits is not None and not _typed_digits(digits):
            raise reader.fail("capf_auth", f"an authentication string is 4 to 10 digits, not {digits!r}")
    return DeviceSettings(
        security_profile=reader.choice("security_profile", SECURITY_PROFILES),
        encrypted_config=reader.get("encrypted_config", bool),
        capf_operation=reader.choice("capf_operation", CAPF_OPERATIONS),
        capf_auth=capf_auth,
        capf_key=reader.choice("capf_key", CAPF_KEYS),
    )


def _typed_digits(text: str) -> bool:
    """What a phone's keypad accepts as a CAPF authentication string: 4 to 10 digits (docs/capf.md)."""
    return text.isascii() and text.isdigit() and 4 <= len(text) <= 10


def _operations(reader: _Reader) -> tuple[Operation, ...]:
    raw = reader.get("lab", (list, str), [])
    items = [raw] if isinstance(raw, str) else raw
    operations = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            operations.append(Operation(item))
            continue
        entry = _Reader(reader.path, f"{reader.where}.lab[{index}]", item)
        entry.only({"run", "fails_with"})
        operations.append(Operation(entry.get("run", str, required=True), entry.get("fails_with", str)))
    return tuple(operations)


def _step(path: Path, index: int, table: Any, labs: Mapping[str, LabSpec]) -> ScenarioStep:
    reader = _Reader(path, f"steps[{index}]", table)
    reader.only({"name", "title", "lab", "on", "tftp", "tvs", "actions", "boot", "expect", "trace", "console",
                 "devices", "auth_string"})
    name = reader.get("name", str, required=True)
    on = reader.get("on", str, "a")
    tftp = reader.get("tftp", str)
    for field, value in (("on", on), ("tftp", tftp)):
        if value is not None and value not in labs:
            raise reader.fail(field, f"no lab {value!r} in this scenario (labs: {', '.join(labs)})")
    actions = reader.get("actions", dict, {})
    for selector, action in actions.items():
        if action not in PHONE_ACTIONS:
            raise reader.fail(f"actions.{selector}", f"expected one of {', '.join(PHONE_ACTIONS)}, got {action!r}")
    expect = {
        selector: _expectation(_Reader(path, f"{reader.where}.expect.{selector}", value))
        for selector, value in reader.get("expect", dict, {}).items()
    }
    devices = {
        selector: _device_settings(_Reader(path, f"{reader.where}.devices.{selector}", value))
        for selector, value in reader.get("devices", dict, {}).items()
    }
    auth_string = reader.get("auth_string", dict, {})
    for selector, digits in auth_string.items():
        if not isinstance(digits, str) or not _typed_digits(digits):
            raise reader.fail(f"auth_string.{selector}", f"expected 4 to 10 digits as a string, got {digits!r}")
    trace = _Reader(path, f"{reader.where}.trace", reader.get("trace", dict, {}))
    trace.only({"contains"})
    console = {}
    for selector, value in reader.get("console", dict, {}).items():
        table_reader = _Reader(path, f"{reader.where}.console.{selector}", value)
        table_reader.only({"contains"})
        console[selector] = tuple(table_reader.get("contains", list, []))
    return ScenarioStep(
        name=name,
        title=reader.get("title", str, ""),
        lab=_operations(reader),
        on=on,
        tftp=tftp,
        tvs=reader.choice("tvs", ("up", "down"), "up"),
        actions=MappingProxyType(dict(actions)),
        boot=reader.get("boot", bool, True),
        expect=MappingProxyType(expect),
        trace=tuple(trace.get("contains", list, [])),
        console=MappingProxyType(console),
        devices=MappingProxyType(devices),
        auth_string=MappingProxyType(dict(auth_string)),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file (``ScenarioError`` naming the field on any problem)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML ({error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot be read ({error})") from None
    top = _Reader(path, "scenario", document)
    top.only({"name", "title", "description", "source", "source_title", "labs", "phones", "steps"})
    name = top.get("name", str, path.stem)
    title, description, source, source_title = (
        top.get(field, str, "") for field in ("title", "description", "source", "source_title"))
    labs = {}
    for key, table in top.get("labs", dict, {"a": {}}).items():
        reader = _Reader(path, f"labs.{key}", table)
        reader.only({"release", "nodes", "key_size"})
        labs[key] = LabSpec(release=reader.get("release", str, "10.5"), nodes=reader.get("nodes", int, 2),
                            key_size=reader.get("key_size", int, 2048))
    if "a" not in labs:
        raise top.fail("labs", 'the first lab is called "a"')
    phones = top.get("phones", dict, {})
    for model, count in phones.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise top.fail(f"phones.{model}", f"expected a count of at least 1, got {count!r}")
    steps = tuple(_step(path, index, table, labs) for index, table in enumerate(top.get("steps", list, [])))
    if not steps:
        raise top.fail("steps", "a scenario needs at least one step")
    return Scenario(
        name=name,
        title=title,
        description=description,
        source=source,
        labs=MappingProxyType(labs),
        phones=MappingProxyType(dict(phones)),
        steps=steps,
        path=path,
        source_title=source_title,
    )
