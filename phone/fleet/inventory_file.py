"""Reading an inventory file for `fleet run --inventory` and `scenario run --inventory`.

The file is read here (bytes, UTF-8, with or without a byte-order mark);
``phone.scenario.inventory`` parses its text. Every inventory phone becomes a
fleet phone with its own MAC (its device name) and load, numbered in file order.
"""

from __future__ import annotations

from pathlib import Path

from phone.errors import UsageError
from phone.firmware.loads import LoadFormatError
from phone.firmware.models import Catalogue
from phone.fleet.phones import FleetPhone, inventory_phones
from phone.lab.devices import DeviceRecord
from phone.scenario.inventory import Inventory, read_inventory
from phone.scenario.inventory_devices import device_records


def is_emulated_phone(name: str, catalogue: Catalogue) -> bool:
    """A catalogue model whose device name is its MAC (``SEP…``): a desk phone. Softphones such as
    Jabber (``CSF…``) have no MAC to boot with and are skipped like any other device type."""
    return name in catalogue and catalogue.get(name).device_prefix == "SEP"


def read_inventory_file(path: Path, catalogue: Catalogue) -> tuple[Inventory, list[FleetPhone]]:
    """The inventory in ``path`` and its phones (catalogue model names); one clear line if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"--inventory {path}: cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise UsageError(f"{path} row {line}: not UTF-8 text (byte {error.start}); CUCM exports UTF-8") from None
    inventory = read_inventory(text, lambda name: is_emulated_phone(name, catalogue), source=str(path))
    if not inventory.phones:
        skipped = sum(inventory.skipped.values())
        raise UsageError(f"{path}: no emulated phone in the file" + (f" ({skipped} rows skipped: not emulated "
                                                                      "phones)" if skipped else ""))
    for phone in inventory.phones:
        try:
            catalogue.get(phone.model).on_load(phone.load)  # each phone boots as its load does
        except LoadFormatError as error:
            raise UsageError(f"{path}: {phone.device}: {error}") from None
    phones = inventory_phones((phone.mac, catalogue.get(phone.model).name, phone.load) for phone in inventory.phones)
    return inventory, phones


def inventory_devices(inventory: Inventory, catalogue: Catalogue) -> list[DeviceRecord]:
    """The lab device records an export's security and CAPF columns give (``phone.scenario.inventory_devices``)."""
    return device_records(inventory.phones, lambda name: catalogue.get(name).name)


def skipped_line(skipped: dict[str, int]) -> str:
    """The text-mode line saying which inventory rows were not emulated phones."""
    return (f"skipped {sum(skipped.values())} rows that are not emulated phones: "
            + ", ".join(f"{device_type} {count}" for device_type, count in sorted(skipped.items())))
