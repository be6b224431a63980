"""The CUCM operations of a lab by their words: one table, one dispatcher (``Lab.run``).

The command line (``phonetrust lab …``), rehearsals, scenarios and fleets all
name an operation with the same words, e.g. ``ctl set-cluster mixed-mode`` or
``cert upload Phone-SAST-trust token1.pem``, and all of them reach the lab
through ``run(lab, words)``: it picks the operation from ``OPERATIONS``,
checks its arguments, runs it and returns an ``OperationResult`` (the lines
CUCM prints and the cluster as it is afterwards). An operation CUCM refuses
raises ``OperationRefused``; words that name no operation, or a wrong
argument, raise ``UsageError``. Nobody reads printed text to learn what the
lab did.

Reading commands (``show``, ``status``, ``export``, ``serve``) and ``init``
are not operations: they change nothing, or make the lab. The device pages
(``device set|show|list``) and ``cert export`` are here too, so that scenarios
set up phones and read certificates with the same words as the command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from phone.errors import UsageError
from phone.lab.state import LabState
from phone.wire.names import ctl_client_name

if TYPE_CHECKING:
    from phone.lab.lab import Lab


@attrs.frozen
class OperationResult:
    """What one operation did: CUCM's lines, the cluster afterwards, files written outside the lab."""

    words: tuple[str, ...]
    lines: tuple[str, ...]
    state: LabState = attrs.field(repr=False)
    #: Files the operation wrote outside the lab folder (``etoken new --out FILE``).
    written: tuple[Path, ...] = ()

    @property
    def mixed_mode(self) -> bool:
        return self.state.mixed_mode


#: The arguments of one operation: positional names -> values, and options -> values (lists when repeated).
Arguments = Mapping[str, "str | list[str] | bool | None"]
Perform = Callable[["Lab", Arguments], "tuple[tuple[str, ...], tuple[Path, ...]]"]


@attrs.frozen
class Operation:
    """One CUCM operation: its command words, what follows them, and what it does to the lab."""

    words: tuple[str, ...]
    perform: Perform
    #: Positional arguments after the words, in order; each is required.
    arguments: tuple[str, ...] = ()
    #: Options taking one value (``--node 1`` or ``--node=1``).
    options: tuple[str, ...] = ()
    #: Options taking one value each time, repeatable (``--token A --token B``).
    repeated: tuple[str, ...] = ()
    #: Options without a value (``--json``): True when given.
    flags: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        parts = [*self.words, *(name.upper() for name in self.arguments)]
        parts += [f"[{option} {option[2:].upper()}]" for option in self.options]
        parts += [f"{option} {option[2:].upper()} [...]" for option in self.repeated]
        parts += [f"[{flag}]" for flag in self.flags]
        return " ".join(parts)

    def parse(self, rest: Sequence[str]) -> dict[str, str | list[str] | bool | None]:
        values: dict[str, str | list[str] | bool | None] = dict.fromkeys(self.options)
        values.update({option: [] for option in self.repeated})
        values.update(dict.fromkeys(self.flags, False))
        positional: list[str] = []
        items = list(rest)
        while items:
            item = items.pop(0)
            if not item.startswith("--"):
                positional.append(item)
                continue
            option, equals, value = item.partition("=")
            if option in self.flags and not equals:
                values[option] = True
                continue
            if option not in self.options and option not in self.repeated:
                raise UsageError(f"'{' '.join(self.words)}' has no option {option} (usage: {self.usage})")
            if not equals:
                if not items:
                    raise UsageError(f"{option} needs a value (usage: {self.usage})")
                value = items.pop(0)
            if option in self.repeated:
                values[option].append(value)  # type: ignore[union-attr]
            else:
                values[option] = value
        if len(positional) != len(self.arguments):
            raise UsageError(f"'{' '.join(self.words)}' takes {len(self.arguments)} argument(s), "
                             f"not {len(positional)} (usage: {self.usage})")
        values.update(zip(self.arguments, positional, strict=True))
        return values


def _lines(perform: Callable[[Lab, Arguments], tuple[str, ...]]) -> Perform:
    return lambda lab, args: (tuple(perform(lab, args)), ())


def _one_of(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise UsageError(f"{what} is {' or '.join(repr(c) for c in choices)}, not {value!r}")
    return value


def _set_cluster(lab: Lab, args: Arguments) -> tuple[str, ...]:
    mode = _one_of(str(args["mode"]), ("mixed-mode", "non-secure-mode"), "the cluster mode")
    return lab.set_cluster_mixed_mode() if mode == "mixed-mode" else lab.set_cluster_non_secure_mode()


def _key_size(text: str | list[str] | None) -> int | None:
    if text is None:
        return None
    try:
        return int(str(text))
    except ValueError:
        raise UsageError(f"--key-size {text!r} is not a number of bits") from None


def _etoken_new(lab: Lab, args: Arguments) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    if args["--out"] is None:
        raise UsageError("'etoken new NAME' needs --out FILE (where to write the token's certificate)")
    out, name = Path(str(args["--out"])), str(args["name"])
    token = lab.new_etoken(name)
    out.write_bytes(token.certificate_pem())
    line = (f"eToken {name}: {ctl_client_name(token.certificate.subject)}, serial {token.serial.hex().upper()}, "
            f"issued by Cisco Manufacturing CA; certificate written to {out}")
    return (line,), (out,)


def _upload(lab: Lab, args: Arguments) -> tuple[str, ...]:
    path = Path(str(args["file"]))
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    return lab.upload_certificate(str(args["store"]), data)


def _optional(args: Arguments, option: str) -> str | None:
    value = args[option]
    return None if value is None else str(value)


def _device_set(lab: Lab, args: Arguments) -> tuple[str, ...]:
    encrypted = _optional(args, "--encrypted-config")
    if encrypted is not None:
        encrypted = _one_of(encrypted, ("on", "off"), "--encrypted-config")
    return lab.set_device(
        str(args["name"]), model=_optional(args, "--model"), security_profile=_optional(args, "--security-profile"),
        encrypted_config=None if encrypted is None else encrypted == "on",
        capf_operation=_optional(args, "--capf-operation"), capf_auth=_optional(args, "--capf-auth"),
        capf_key=_optional(args, "--capf-key"))


def _cert_export(lab: Lab, args: Arguments) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    if args["--out"] is None:
        raise UsageError("'cert export SERVICE' needs --out FILE (where to write the certificate)")
    out = Path(str(args["--out"]))
    return lab.export_certificate(str(args["service"]), out, args["--node"]), (out,)


def _rollback(lab: Lab, args: Arguments) -> tuple[str, ...]:
    return lab.set_rollback(_one_of(str(args["state"]), ("on", "off"), "rollback") == "on")


OPERATIONS: tuple[Operation, ...] = (
    Operation(("ctl", "set-cluster"), _lines(_set_cluster), arguments=("mode",)),
    Operation(("ctl", "update"), _lines(lambda lab, args: lab.ctl_update())),
    Operation(("ctl", "delete"), _lines(lambda lab, args: lab.ctl_delete(args["--node"])), options=("--node",)),
    Operation(("ctl", "client"), _lines(lambda lab, args: lab.ctl_client(args["--token"], args["--sign-with"])),
              options=("--sign-with",), repeated=("--token",)),
    Operation(("ctl", "reset", "localkey"), _lines(lambda lab, args: lab.ctl_reset_localkey())),
    Operation(("etoken", "new"), _etoken_new, arguments=("name",), options=("--out",)),
    Operation(("cert", "regenerate"), _lines(lambda lab, args: lab.regenerate_certificate(
        str(args["service"]), args["--node"], _key_size(args["--key-size"]))),
        arguments=("service",), options=("--node", "--key-size")),
    Operation(("cert", "upload"), _lines(_upload), arguments=("store", "file")),
    Operation(("cert", "delete"), _lines(lambda lab, args: lab.delete_trusted(str(args["store"]), str(args["cn"]))),
              arguments=("store", "cn")),
    Operation(("cert", "export"), _cert_export, arguments=("service",), options=("--node", "--out")),
    Operation(("device", "set"), _lines(_device_set), arguments=("name",),
              options=("--model", "--security-profile", "--encrypted-config", "--capf-operation", "--capf-auth",
                       "--capf-key")),
    Operation(("device", "show"), _lines(lambda lab, args: lab.show_device(str(args["name"]),
                                                                          as_json=bool(args["--json"]))),
              arguments=("name",), flags=("--json",)),
    Operation(("device", "list"), _lines(lambda lab, args: lab.list_devices(as_json=bool(args["--json"]))),
              flags=("--json",)),
    Operation(("itl", "reset", "localkey"), _lines(lambda lab, args: lab.itl_reset_localkey())),
    Operation(("tftp", "restart"), _lines(lambda lab, args: lab.restart_tftp())),
    Operation(("rollback",), _lines(_rollback), arguments=("state",)),
    Operation(("param", "set"), _lines(lambda lab, args: lab.set_parameter(str(args["name"]), str(args["value"]))),
              arguments=("name", "value")),
)


def find(words: Sequence[str]) -> tuple[Operation, tuple[str, ...]]:
    """The operation ``words`` name (the longest matching command words) and the words after them."""
    words = tuple(words)
    matches = [op for op in OPERATIONS if words[: len(op.words)] == op.words]
    if not matches:
        known = "; ".join(op.usage for op in OPERATIONS)
        raise UsageError(f"no lab operation {' '.join(words)!r} (operations: {known})")
    operation = max(matches, key=lambda op: len(op.words))
    return operation, words[len(operation.words):]


def run(lab: Lab, words: Sequence[str] | str) -> OperationResult:
    """Run the operation ``words`` name on ``lab``; ``OperationRefused`` when CUCM would refuse it.

    ``words`` as a list, or as one string split the way a shell splits it.
    """
    if isinstance(words, str):
        words = shlex.split(words)
    operation, rest = find(words)
    arguments = operation.parse(rest)
    lines, written = operation.perform(lab, arguments)
    return OperationResult(tuple(words), lines, lab.state, written)
