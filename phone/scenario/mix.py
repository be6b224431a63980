"""The phones a scenario's mix stands for, with their MACs.

A mix is read from ``--phones`` by ``phone.fleet.phones.parse_phones``, as for fleets.

MACs are allocated in order, mix entry by mix entry, from a locally
administered prefix (02:C1:5C, never a real vendor's), so the same mix always
gives the same phones and a fleet can be split into shards by MAC range.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from phone.errors import UsageError
from phone.firmware.models import Catalogue, PhoneModel

MAC_PREFIX = "02C15C"
MAX_PHONES = 16**6


@attrs.frozen
class PhoneSpec:
    model: PhoneModel
    mac: str


def mac_for(index: int) -> str:
    if not 0 <= index < MAX_PHONES:
        raise UsageError(f"phone number {index} is outside the {MAX_PHONES} MACs of the {MAC_PREFIX} prefix")
    return f"{MAC_PREFIX}{index:06X}"


def allocate_phones(mix: Mapping[str, int], catalogue: Catalogue) -> list[PhoneSpec]:
    """The phones of ``mix``, in order, each with its MAC (model names may be aliases)."""
    phones: list[PhoneSpec] = []
    for name, count in mix.items():
        model = catalogue.get(name)
        first = len(phones)  # not inside the generator: extend() grows the list while it runs
        phones.extend(PhoneSpec(model, mac_for(first + offset)) for offset in range(count))
    return phones
