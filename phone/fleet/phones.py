"""Which phones a fleet or a scenario is: models, counts, deterministic MAC addresses, shards.

The project's one MAC allocator: ``fleet run`` and ``scenario run`` both number
their phones here, so the same mix gives the same phones with the same MACs.

``--phones CP-7975=300,CP-8861=600,CP-7940=100`` is read by ``parse_phones``
into ``PhoneGroup(model, count, load)`` records (``CP-8861@sip88xx.12-8-1-0001-455=20``
names the firmware load too; without one a phone runs the model's default load);
``allocate`` numbers the phones 0, 1, 2, … in that order and gives phone *i* the MAC ``prefix`` + *i* (24 bits, upper-case
hex). The default prefix is the project's (``DEFAULT_MAC_PREFIX``, 02:C1:5C,
the same for scenario runs): a locally administered OUI (bit 1 of the first
byte set) that never names a real Cisco phone, so an emulated fleet cannot
take the configuration of a real device on a lab CUCM by accident.

``--shard K/N`` (K from 1 to N) keeps the phones whose index is K-1 modulo N:
every machine running a share gets the same model mix and the shards of one
fleet never overlap, whatever the counts.

A fleet read from an inventory (``phone.scenario.inventory``) keeps each phone's
own MAC and load instead: ``inventory_phones`` numbers them in file order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import attrs

from phone.errors import UnknownModelError, UsageError
from phone.catalogue import load_catalogue
from phone.firmware.loads import LoadFormatError, parse_load
from phone.firmware.models import Catalogue

#: A locally administered OUI: never a real phone's MAC (the scenarios' prefix too).
DEFAULT_MAC_PREFIX = "02C15C"
#: The phone index is the last 24 bits of the MAC.
MAX_PHONES = 1 << 24

_COUNT = re.compile(r"^\s*([^=@\s]+)\s*(?:@\s*([^=\s]+)\s*)?=\s*(\S+)\s*$")


@attrs.frozen
class FleetPhone:
    """One phone of a fleet: its index in the whole fleet, its model and MAC (12 upper-case hex digits),
    and its firmware load (None: the model's default load)."""

    index: int
    model: str
    mac: str
    load: str | None = None


class PhoneGroup(NamedTuple):
    """``count`` phones of ``model`` (a catalogue name) running ``load`` (None: the model's default)."""

    model: str
    count: int
    load: str | None = None


@attrs.frozen
class Shard:
    """Share K of N (1 <= K <= N): the phones whose index is K-1 modulo N."""

    number: int = 1
    of: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise UsageError(f"bad shard {text!r}: expected K/N, e.g. 1/4 (the first of four shares)")
        number, of = int(match.group(1)), int(match.group(2))
        if not 1 <= number <= of:
            raise UsageError(f"bad shard {text!r}: K must be 1 to N")
        return cls(number, of)

    def holds(self, index: int) -> bool:
        return index % self.of == self.number - 1

    def __str__(self) -> str:
        return f"{self.number}/{self.of}"


def parse_phones(text: str, catalogue: Catalogue | None = None) -> tuple[PhoneGroup, ...]:
    """``MODEL[@LOAD]=N,…`` as ``PhoneGroup`` records (catalogue name, count, load), in the order given.

    Model names are matched as the catalogue matches them (``cp-8861`` is
    CP-8861); a load is checked with ``phone.firmware.loads.parse_load``. A
    model (with the same load) named twice, a count that is not a positive
    integer, an unknown model or a load that does not read is a one-line
    UsageError saying which part is wrong.
    """
    catalogue = catalogue or load_catalogue()
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise UsageError("no phones: expected MODEL=COUNT[,MODEL=COUNT…], e.g. CP-8861=600,CP-7940=100")
    groups: dict[tuple[str, str | None], int] = {}
    for part in parts:
        match = _COUNT.match(part)
        if not match:
            raise UsageError(f"bad phone count {part.strip()!r}: expected MODEL=COUNT or MODEL@LOAD=COUNT, "
                             "e.g. CP-8861=600 or CP-8861@sip88xx.12-8-1-0001-455=20")
        name, load, number = match.groups()
        try:
            model = catalogue.get(name)
        except UnknownModelError as error:
            raise UsageError(f"bad phone count {part.strip()!r}: {error}") from None
        if load is not None:
            load = check_load(load, where=f"bad phone count {part.strip()!r}")
            try:
                model.on_load(load)  # a load of another model's load family is refused here, not mid-run
            except LoadFormatError as error:
                raise UsageError(f"bad phone count {part.strip()!r}: {error}") from None
        if not number.isdigit() or int(number) < 1:
            raise UsageError(f"bad phone count {part.strip()!r}: the count must be a whole number of at least 1")
        if (model.name, load) in groups:
            named = model.name if load is None else f"{model.name}@{load}"
            raise UsageError(f"{named} is named twice in the phone list")
        groups[(model.name, load)] = int(number)
    total = sum(groups.values())
    if total > MAX_PHONES:
        raise UsageError(f"{total} phones are more than the {MAX_PHONES} MAC addresses of one prefix")
    return tuple(PhoneGroup(model, count, load) for (model, load), count in groups.items())


def check_load(text: str, *, where: str) -> str:
    """``text`` as a load name, stripped; a name ``parse_load`` cannot read is one UsageError led by ``where``."""
    try:
        return parse_load(text).text
    except LoadFormatError as error:
        raise UsageError(f"{where}: {error}") from None


def check_prefix(prefix: str) -> str:
    text = re.sub(r"[\s:.-]", "", prefix).upper()
    if not re.fullmatch(r"[0-9A-F]{6}", text):
        raise UsageError(f"bad MAC prefix {prefix!r}: expected 6 hex digits (3 bytes), e.g. {DEFAULT_MAC_PREFIX}")
    return text


def allocate(counts: Iterable[tuple[str, int] | PhoneGroup], *, prefix: str = DEFAULT_MAC_PREFIX,
             shard: Shard = Shard()) -> list[FleetPhone]:
    """The phones of the fleet (or of one shard), numbered in the order of ``counts``
    (``PhoneGroup`` records or plain ``(model, count)`` pairs)."""
    prefix = check_prefix(prefix)
    phones: list[FleetPhone] = []
    index = 0
    for model, count, *load in counts:
        for _ in range(count):
            if shard.holds(index):
                phones.append(FleetPhone(index, model, mac_for(index, prefix), load[0] if load else None))
            index += 1
    return phones


def inventory_phones(devices: Iterable[tuple[str, str, str | None]], *, shard: Shard = Shard()) -> list[FleetPhone]:
    """The phones of an inventory, (MAC, model, load) each, numbered in the order given; each keeps its own MAC."""
    return [FleetPhone(index, model, mac, load) for index, (mac, model, load) in enumerate(devices)
            if shard.holds(index)]


def mac_for(index: int, prefix: str = DEFAULT_MAC_PREFIX) -> str:
    """The MAC of phone ``index`` of a fleet: ``prefix`` then the index in 24 bits (upper-case hex)."""
    if not 0 <= index < MAX_PHONES:
        raise UsageError(f"phone number {index} is outside the {MAX_PHONES} MACs of the {prefix} prefix")
    return f"{prefix}{index:06X}"


def describe(counts: Iterable[tuple[str, int] | PhoneGroup]) -> str:
    """The ``--phones`` text of ``counts`` (stored with a run, shown in reports)."""
    return ",".join(f"{model}{'@' + load[0] if load and load[0] else ''}={count}" for model, count, *load in counts)


def groups_of(phones: Sequence[FleetPhone]) -> tuple[PhoneGroup, ...]:
    """The phones counted by (model, load), in the order each first appears."""
    counts: dict[tuple[str, str | None], int] = {}
    for phone in phones:
        key = (phone.model, phone.load)
        counts[key] = counts.get(key, 0) + 1
    return tuple(PhoneGroup(model, count, load) for (model, load), count in counts.items())
