"""A real fleet from a CUCM phone export: which emulated phone each row becomes.

Two forms are read, both by header name (columns in any order, extra columns ignored):

- CUCM's Bulk Administration "Export Phones" file, "All Details" or "Specific Details"
  (Cisco Unified Communications Manager Bulk Administration Guide, "Export Phone
  Records" and "Text-Based CSV Files"). The columns read are ``Device Name``,
  ``Device Type`` (``Cisco 8861`` is catalogue model ``CP-8861``), ``Phone Load Name``,
  and, where present, the security columns: ``Device Security Profile`` (``Security
  Profile`` in older guides), ``Device Security Mode``, ``TFTP Encrypted Config``, and the
  CAPF section of the phone page: ``Certificate Operation``, ``Authentication Mode``,
  ``Authentication String``, ``Key Order``, ``Key Size (Bits)`` (``RSA Key Size (Bits)``)
  and ``EC Key Size (Bits)``. ``phone.scenario.inventory_devices`` turns them into the
  lab's device records.
- A plain CSV whose header is ``device,model`` or ``device,model,load``.

CUCM writes UTF-8, with or without a byte-order mark, quoting fields that hold commas
or quotes. A row whose device type is not an emulated phone (softphones such as Jabber,
whose device names carry no MAC; third-party SIP devices; gateways; unknown types) is
skipped and counted by its type, never silently dropped. A malformed row (a device
name that is not ``SEP`` and 12 hex digits, a device named twice, a load name that
``phone.firmware.loads.parse_load`` cannot read) is one ``InventoryError`` naming the
row. docs/fleet.md shows an example.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from phone.errors import UsageError
from phone.firmware.loads import LoadFormatError, parse_load

#: ``SEP`` + 12 hex digits: a Cisco phone's device name (its MAC).
_DEVICE_NAME = re.compile(r"^SEP([0-9A-F]{12})$", re.IGNORECASE)
#: CUCM's Device Type text for a Cisco phone: ``Cisco 8861``, ``Cisco DX80``, ``Cisco 7975``.
_CISCO_PHONE_TYPE = re.compile(r"^Cisco (?:IP Phone )?(?P<model>(?:DX\d{2,3}|\d{4}[A-Z]*)(?:-EX|NR)?)$",
                               re.IGNORECASE)
_SECURITY_COLUMNS = ("device security profile", "security profile")
#: The CAPF and security columns read as they are (header lower-cased -> InventoryPhone field);
#: a header in brackets is an older or shorter spelling of the same column.
_SETTING_COLUMNS = {
    "device security mode": "security_mode",
    "tftp encrypted config": "encrypted_config",
    "certificate operation": "certificate_operation",
    "authentication mode": "authentication_mode",
    "authentication string": "authentication_string",
    "key order": "key_order",
    "key size (bits)": "rsa_key_size",
    "rsa key size (bits)": "rsa_key_size",
    "ec key size (bits)": "ec_key_size",
}


class InventoryError(UsageError):
    """An inventory file that cannot be read; the message names the row."""


@attrs.frozen
class InventoryPhone:
    """One phone of an inventory: its device name, catalogue model and firmware load."""

    device: str
    model: str
    load: str | None = None
    security_profile: str | None = None
    certificate_operation: str | None = None
    authentication_string: str | None = attrs.field(default=None, repr=False)
    security_mode: str | None = None
    encrypted_config: str | None = None
    authentication_mode: str | None = None
    key_order: str | None = None
    rsa_key_size: str | None = None
    ec_key_size: str | None = None

    @property
    def has_security_settings(self) -> bool:
        """Whether the row says anything of the phone's security profile or CAPF section."""
        return any(value is not None for value in (
            self.security_profile, self.security_mode, self.encrypted_config, self.certificate_operation,
            self.authentication_mode, self.authentication_string, self.key_order, self.rsa_key_size,
            self.ec_key_size))

    @property
    def mac(self) -> str:
        """The 12 upper-case hex digits of the device name."""
        return self.device[3:]


@attrs.frozen
class Inventory:
    """The phones an inventory holds, and the rows skipped, counted by device type."""

    phones: tuple[InventoryPhone, ...]
    skipped: dict[str, int] = attrs.field(factory=dict, hash=False)
    form: str = "plain"   # "plain" or "bat"

    def counts(self) -> Counter[str]:
        """Phones per catalogue model."""
        return Counter(phone.model for phone in self.phones)


def catalogue_name(device_type: str) -> str | None:
    """``Cisco 8861`` -> ``CP-8861``; ``None`` for a type that is not a Cisco desk phone."""
    match = _CISCO_PHONE_TYPE.match(device_type.strip())
    return None if match is None else f"CP-{match['model'].upper()}"


def read_inventory(text: str, is_emulated: Callable[[str], bool], *, source: str = "inventory") -> Inventory:
    """Read an inventory from its text (a leading byte-order mark is ignored).

    ``is_emulated(model)`` says whether a catalogue model name is an emulated phone;
    ``source`` names the file in error messages.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InventoryError(f"{source}: the file is empty; expected a header row") from None
    except csv.Error as error:
        raise InventoryError(f"{source} row 1: {error}") from None
    columns = {name.strip().lower(): index for index, name in enumerate(header)}
    if "device name" in columns and "device type" in columns:
        phones, skipped = _read_rows(reader, source, _bat_row(columns), is_emulated)
        return Inventory(phones, skipped, "bat")
    if "device" in columns and "model" in columns:
        phones, skipped = _read_rows(reader, source, _plain_row(columns), is_emulated)
        return Inventory(phones, skipped, "plain")
    raise InventoryError(f"{source} row 1: expected a CUCM phone export (columns 'Device Name' and 'Device Type') "
                         f"or a header 'device,model[,load]', got {', '.join(header[:6]) or 'nothing'}")


@attrs.frozen
class _Row:
    """What one row says before it is checked: its device, type as written, catalogue model, settings."""

    device: str | None
    device_type: str
    model: str | None
    settings: dict[str, str | None] = attrs.field(hash=False)


RowReader = Callable[[list[str], str], _Row]


def _cell(row: list[str], columns: dict[str, int], name: str | None) -> str | None:
    index = None if name is None else columns.get(name)
    if index is None or index >= len(row):
        return None
    return row[index].strip() or None


def _bat_row(columns: dict[str, int]) -> RowReader:
    security = next((name for name in _SECURITY_COLUMNS if name in columns), None)

    def read(row: list[str], where: str) -> _Row:
        device_type = _cell(row, columns, "device type")
        if device_type is None:
            raise InventoryError(f"{where}: 'Device Type' is empty")
        settings: dict[str, str | None] = {
            "load": _cell(row, columns, "phone load name"),
            "security_profile": _cell(row, columns, security),
        }
        for header, field in _SETTING_COLUMNS.items():
            if header in columns:
                settings[field] = settings.get(field) or _cell(row, columns, header)
        return _Row(_cell(row, columns, "device name"), device_type, catalogue_name(device_type), settings)

    return read


def _plain_row(columns: dict[str, int]) -> RowReader:
    def read(row: list[str], where: str) -> _Row:
        model = _cell(row, columns, "model")
        if model is None:
            raise InventoryError(f"{where}: 'model' is empty")
        return _Row(_cell(row, columns, "device"), model, catalogue_name(model) or model,
                    {"load": _cell(row, columns, "load")})

    return read


def _read_rows(reader: Iterable[list[str]], source: str, read_row: RowReader,
               is_emulated: Callable[[str], bool]) -> tuple[tuple[InventoryPhone, ...], dict[str, int]]:
    phones: list[InventoryPhone] = []
    skipped: Counter[str] = Counter()
    first_row_of: dict[str, int] = {}
    number = 1   # the header; each record read is the next row
    try:
        for cells in reader:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            where = f"{source} row {number}"
            row = read_row(cells, where)
            if row.model is None or not is_emulated(row.model):
                skipped[row.device_type] += 1
                continue
            match = _DEVICE_NAME.match(row.device or "")
            if match is None:
                raise InventoryError(f"{where}: device name {row.device or '(empty)'!r} is not SEP followed by "
                                     "12 hex digits")
            device = "SEP" + match[1].upper()
            if device in first_row_of:
                raise InventoryError(f"{where}: device {device} already appears in row {first_row_of[device]}")
            first_row_of[device] = number
            if row.settings.get("load"):
                try:
                    parse_load(row.settings["load"])
                except LoadFormatError as error:
                    raise InventoryError(f"{where}: {error}") from None
            phones.append(InventoryPhone(device, row.model, **row.settings))  # type: ignore[arg-type]
    except csv.Error as error:   # raised while reading the record after the last one counted
        raise InventoryError(f"{source} row {number + 1}: {error}") from None
    return tuple(phones), dict(skipped)
