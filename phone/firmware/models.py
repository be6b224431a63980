"""Phone models: what each Cisco phone's firmware does on its trust side (docs/models.md).

The catalogue is data, not code: one TOML file per model family in the
repository's top-level ``models/`` folder. This module is pure: it turns the
text (or the parsed TOML) of a family file into ``PhoneModel`` records;
``phone.catalogue`` finds and reads the files. A family file holds family-wide
values in ``[defaults]`` and one table per model in ``[models.NAME]``; a
model's own values win, and its ``messages`` and ``settings`` tables are merged
key by key over the family's. docs/models.md documents every field and says
which values are sourced facts and which are the project's choices.

TOML has no null: optional fields (``checksum``, ``log_dialect``,
``erase_menu``, ...) write ``false`` for "none".
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from phone.errors import LocalError, UnknownModelError, UsageError
from phone.firmware.loads import Load, LoadFormatError, VersionRange, parse_load, parse_range
from phone.firmware.settings import SettingsError, TrustSettings, describe

__all__ = [
    "MESSAGE_EVENTS",
    "Catalogue",
    "FirmwareRow",
    "ModelFileError",
    "PhoneModel",
    "TrustSettings",
    "models_from_document",
    "models_from_text",
]

#: Digest names a firmware may verify on trust-list and .sgn signatures (docs/trust-lists.md).
DIGESTS = ("sha1", "sha256", "sha512")
#: TLS versions, oldest first (docs/tvs.md).
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
#: RSA key sizes a trust list can be signed with (docs/trust-lists.md: 64..512-byte signatures).
RSA_KEY_SIZES = (512, 1024, 2048, 3072, 4096)
#: Checksums a phone's Trust List screen can show (docs/trust-lists.md, docs/phone.md).
CHECKSUMS = ("md5", "sha1")
#: Console log dialects of docs/logs.md that a phone writes.
LOG_DIALECTS = ("java79xx", "enterprise")
#: Device-name prefixes: SEP<MAC> for phones, CSF<id> for Jabber.
DEVICE_PREFIXES = ("SEP", "CSF")

#: Status-message events (docs/phone.md) and when the phone shows each. A model's
#: ``messages`` table maps some of these to its own wording (``false`` drops
#: one the family defines); ``{file}`` in a text is replaced by a file name.
MESSAGE_EVENTS: Mapping[str, str] = MappingProxyType({
    "no_trust_list": "the phone holds neither a CTL nor an ITL",
    "ctl_installed": "a CTL (and no ITL) is installed",
    "itl_installed": "an ITL (and no CTL) is installed",
    "ctl_and_itl_installed": "both a CTL and an ITL are installed",
    "trust_list_updated": "a new CTL or ITL replaced the installed one",
    "update_failed": "a new CTL or ITL was rejected; the old one stays",
    "ctl_update_failed": "a new CTL was rejected (phones that name the CTL)",
    "erasing": "the user erased the trust lists from the phone's menu",
    "file_not_found": "the TFTP server has no such file ({file})",
    "key_size_not_fips": "registration refused: certificate key too small for FIPS mode",
})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_TOP_LEVEL_KEYS = ("family", "description", "sources", "defaults", "models")

#: A MAC written as a fleet and the machine keep it: 12 upper-case hex digits, nothing else.
_BARE_MAC = re.compile(r"[0-9A-F]{12}")


class ModelFileError(LocalError):
    """A model file that is not valid TOML or breaks the model-file schema.

    The message names the file, the table and the field, e.g.
    ``models/7900.toml: [models.CP-7940] digests: expected ...``.
    """

    def __init__(self, path: object, where: str | None, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{path}: {where} {problem}" if where else f"{path}: {problem}")


class _BadValue(Exception):
    """A field value of the wrong kind: never leaves this module, the file readers below turn
    it into a ModelFileError naming the file, the table and the field."""


def _fold(name: str) -> str:
    return name.strip().upper()


#: Facts a model file may state per firmware range (``firmware_rows``, docs/models.md "Firmware rows").
ROW_FACTS = ("supports_ctl", "supports_itl", "supports_tvs", "digests", "rsa_key_sizes",
             "ec_certificates", "tls_versions", "cucm_min_release", "cucm_max_release")

#: Why a phone is not emulated on a cluster whose CUCM release does not support its load
#: (docs/models.md "CUCM releases"): the outcome code the boot report, scenarios and fleets show.
CUCM_UNSUPPORTED = "cucm-unsupported"

#: Notes ``PhoneModel.at_load`` attaches (docs/models.md "Firmware rows").
OUTSIDE_DOCUMENTED = "outside documented firmware: {facts} keep the family default"
NEWER_THAN_LAST = "newer than the last known release {last}: using the highest row"


@attrs.frozen
class FirmwareRow:
    """One row of a firmware-dependent fact: on firmware in ``range`` the phone has ``values``.

    ``source`` names the Cisco document behind the row, or starts with "choice:" when the row
    is the project's reading of a point the documents leave open.
    """

    range: VersionRange
    #: (field, value) pairs, fields from ROW_FACTS, values as the field holds them.
    values: tuple[tuple[str, Any], ...]
    source: str

    def sets(self, fact: str) -> bool:
        return any(field == fact for field, _ in self.values)

    def value(self, fact: str) -> Any:
        return dict(self.values)[fact]


@attrs.frozen
class FirmwareChange:
    """A fact whose value at a load differs from its value at the model's default load."""

    field: str
    value: Any
    default_value: Any
    source: str


@attrs.frozen
class PhoneModel:
    """One phone model's trust-side capabilities and texts (docs/phone.md, docs/models.md).

    Read ``docs/models.md`` for each field's meaning and sources.
    """

    #: Catalogue name as CUCM device types spell it: "CP-7965", "Jabber-CSF".
    name: str
    #: Family, i.e. the model file it comes from: "7900", "8800", "dx", ...
    family: str
    description: str
    #: Other names that resolve to this model ("7965", "7965G").
    aliases: tuple[str, ...]
    #: First part of the TVS DEVICE_NAME: "CP-7965" gives "CP-7965-SEP<MAC>".
    device_type: str
    #: "SEP" (phones) or "CSF" (Jabber): prefix of the device name and its files.
    device_prefix: str
    #: Installs and enforces a CTL (mixed mode).
    supports_ctl: bool
    #: Security by Default: downloads and enforces the ITL.
    supports_itl: bool
    #: Asks TVS about certificates it does not hold (needs an ITL with TVS records).
    supports_tvs: bool
    #: Digests the firmware verifies on trust-list and .sgn signatures.
    digests: frozenset[str] = attrs.field(converter=frozenset)
    #: RSA modulus sizes (bits) whose signatures the firmware verifies.
    rsa_key_sizes: frozenset[int] = attrs.field(converter=frozenset)
    #: Accepts EC (ECDSA) certificates in trust lists and TLS.
    ec_certificates: bool
    #: TLS versions the phone offers as a client (TVS, HTTPS), oldest first.
    tls_versions: tuple[str, ...]
    #: Checksum shown on the Trust List screen: "md5", "sha1" or None (no screen).
    checksum: str | None
    #: Console log dialect (docs/logs.md): "java79xx", "enterprise" or None (none known).
    log_dialect: str | None
    #: Menu path of the manual CTL/ITL erase (docs/phone.md), None if there is none.
    erase_menu: str | None
    #: True if CTL and ITL are erased one at a time; False if one reset removes both.
    separate_erase: bool
    #: How to factory-reset the device (docs/phone.md), None if not applicable.
    factory_reset: str | None
    #: Status texts keyed by MESSAGE_EVENTS; events a model lacks are absent.
    messages: Mapping[str, str] = attrs.field(converter=lambda texts: MappingProxyType(dict(texts)),
                                              hash=False)
    #: An example firmware load name.
    firmware: str | None
    #: Documents behind the values (URLs or titles); the TOML comments say which value each backs.
    sources: tuple[str, ...]
    #: How this model resolves the points Cisco's documents leave open.
    settings: TrustSettings
    #: The last CUCM release that supports the model ("11.5": dropped from 12.0), None if no limit
    #: is known (Cisco's "Deprecated Phone Models" lists per CUCM release).
    cucm_max_release: str | None = None
    #: The first CUCM release that supports the model (or, through a firmware row, its load),
    #: None if no limit is known (Cisco's Device Package Compatibility Matrix).
    cucm_min_release: str | None = None
    #: Load families besides the default load's that the model runs: a DX80 runs Android
    #: ``sipdx`` loads and CE ``sipdx80`` loads (docs/models.md "Firmware rows").
    other_load_families: tuple[str, ...] = ()
    #: Firmware-dependent facts: rows of (range, values, source); the fields above hold the
    #: values at the default load ``firmware`` (docs/models.md "Firmware rows").
    firmware_rows: tuple[FirmwareRow, ...] = ()
    #: Reads encrypted configuration files with its LSC or MIC: the public-key method of Cisco's
    #: "Security Guide for Cisco Unified Communications Manager" ("Encrypted Phone Configuration
    #: File Setup"; docs/encrypted-config.md). False: the phone ignores ``encrConfig``.
    encrypted_config: bool = False
    #: Notes from ``at_load`` ("outside documented firmware", ...); empty on the default load.
    load_notes: tuple[str, ...] = ()
    #: The load the phone runs, as written, once ``at_load`` made it (None: the default load).
    #: Not part of equality: two loads that behave alike give equal models.
    active_load: str | None = attrs.field(default=None, eq=False)
    #: The file the model was loaded from (not part of equality).
    origin: str = attrs.field(default="", eq=False)

    @property
    def security_by_default(self) -> bool:
        """The model is SBD-capable: it downloads and enforces the ITL and asks TVS about
        certificates it does not hold (Cisco TAC 116232, "Security by Default").

        The project's one definition: scenarios' "sbd"/"legacy" selectors and reports use it.
        """
        return self.supports_itl and self.supports_tvs

    def accepts_key_size(self, bits: int) -> bool:
        """True if the firmware verifies RSA signatures of a ``bits``-bit key."""
        return bits in self.rsa_key_sizes

    def speaks_tls(self, version: str) -> bool:
        """True if the phone can negotiate TLS ``version`` ("1.0", "1.2", ...)."""
        return version in self.tls_versions

    def message(self, event: str, **fields: str) -> str | None:
        """The status text this model shows for ``event``, or None if it shows none.

        ``fields`` fill the placeholders, e.g. ``message("file_not_found",
        file="CTLFile.tlv")`` gives "File Not Found <CTLFile.tlv>".
        """
        if event not in MESSAGE_EVENTS:
            raise KeyError(f"unknown status event {event!r}")  # a caller bug: events are the code's own MESSAGE_EVENTS
        text = self.messages.get(event)
        return text.format_map(fields) if text is not None else None

    def trust_list_checksum(self, data: bytes) -> str | None:
        """The checksum of a CTL/ITL as this model's Trust List screen shows it (docs/trust-lists.md)."""
        return hashlib.new(self.checksum, data).hexdigest() if self.checksum else None

    def device_name(self, device_id: str) -> str:
        """The CUCM device name: "SEP" + 12 upper-case hex digits, or "CSF" + id for Jabber.

        ``device_id`` may carry separators (``b0:00:b4:ba:0a:ee``,
        ``B000.B4BA.0AEE``) or the prefix already.
        """
        if self.device_prefix == "SEP" and _BARE_MAC.fullmatch(device_id):
            return "SEP" + device_id  # the usual case, asked several times per boot: no rewriting
        text = re.sub(r"[\s:.-]", "", device_id).upper()
        if text.startswith(self.device_prefix):
            text = text[len(self.device_prefix):]
        if self.device_prefix == "SEP" and not re.fullmatch(r"[0-9A-F]{12}", text):
            raise UsageError(f"not a MAC address: {device_id!r} (expected 12 hex digits)")
        if not re.fullmatch(r"[0-9A-Z_]{1,50}", text):
            raise UsageError(f"not a device id: {device_id!r}")
        return f"{self.device_prefix}{text}"

    def tvs_device_name(self, device_id: str) -> str:
        """TVS DEVICE_NAME text (docs/tvs.md): ``CP-8861-SEPB000B4BA0AEE``."""
        return f"{self.device_type}-{self.device_name(device_id)}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, in field order (sets become sorted lists).

        The firmware rows and load notes are left out: ``phonetrust models show MODEL@LOAD``
        reports them as firmware changes.
        """
        return attrs.asdict(self, value_serializer=_json_value,
                            filter=lambda field, _: field.name not in ("firmware_rows", "load_notes", "active_load"))

    def default_load(self) -> Load:
        """The model's default load (``firmware``); LoadFormatError if it has none."""
        if not self.firmware:
            raise LoadFormatError(f"{self.name} names no default load, so no other load can be compared with it")
        return parse_load(self.firmware)

    def at_load(self, load: Load) -> PhoneModel:
        """This model as it behaves on ``load``: every fact a matching firmware row sets.

        A fact with no row covering the load's version keeps the family default, noted
        "outside documented firmware"; a version above the last known release (the default
        load's) uses the fact's highest row, with a note. A load of a load family the model
        does not run is a LoadFormatError.
        """
        default = self.default_load()
        families = (default.family,) + self.other_load_families
        if load.family.lower() not in {family.lower() for family in families}:
            raise LoadFormatError(f"load {load.text!r} is of load family {load.family}; "
                                  f"{self.name} runs {' or '.join(families)} loads (e.g. {default.text})")
        version, last = load.version, default.version
        newer = version.line == last.line and not version < last and version.key != last.key
        changes: dict[str, Any] = {}
        outside: list[str] = []
        for fact in ROW_FACTS:
            rows = [row for row in self.firmware_rows if row.sets(fact)]
            if not rows:
                continue
            row = next((row for row in rows if version in row.range), None)
            if row is None and newer:
                row = max(rows, key=_row_height)
            if row is None:
                outside.append(fact)
            else:
                changes[fact] = row.value(fact)
        notes = []
        if newer:
            notes.append(NEWER_THAN_LAST.format(last=last))
        if outside:
            notes.append(OUTSIDE_DOCUMENTED.format(facts=", ".join(outside)))
        return attrs.evolve(self, load_notes=tuple(notes), active_load=load.text, **changes)

    def on_load(self, load: str | None) -> PhoneModel:
        """This model running ``load`` (a load name as ``parse_load`` reads it; None: the default
        load, the model as it is). The one way fleets, scenarios and ``phone boot`` turn a
        ``MODEL@LOAD`` into the behaviour of that load (docs/models.md "Firmware rows")."""
        return self if load is None else self.at_load(parse_load(load))

    def cucm_support(self, release: str) -> str | None:
        """None if CUCM ``release`` ("12.5", "14") supports this model on its load, else why not.

        The limits are ``cucm_min_release`` and ``cucm_max_release`` (as firmware rows set them
        for the load): Cisco's "Deprecated Phone Models" lists and Device Package Compatibility
        Matrix (docs/models.md "CUCM releases").
        """
        wanted = release_key(release)
        load = f" on {self.active_load}" if self.active_load else ""
        if self.cucm_max_release is not None and wanted > release_key(self.cucm_max_release):
            return (f"{self.name}{load} is not supported on CUCM {release}: the last release that supports it "
                    f"is {self.cucm_max_release}")
        if self.cucm_min_release is not None and wanted < release_key(self.cucm_min_release):
            return (f"{self.name}{load} is not supported on CUCM {release}: it needs CUCM "
                    f"{self.cucm_min_release} or later")
        return None

    def cucm_releases(self) -> str:
        """The CUCM releases that support this model on its load, in words: "up to 11.5",
        "14 and later", "10.5 to 12.5", or "any" when no limit is known."""
        low, high = self.cucm_min_release, self.cucm_max_release
        if low and high:
            return f"{low} to {high}"
        if high:
            return f"up to {high}"
        if low:
            return f"{low} and later"
        return "any"

    def firmware_changes(self, load: Load) -> list[FirmwareChange]:
        """What ``load`` changes compared with the default load, each change with its row's source."""
        here, there = self.at_load(load), self.at_load(self.default_load())
        changes = []
        for fact in ROW_FACTS:
            if getattr(here, fact) != getattr(there, fact):
                row = next((row for row in self.firmware_rows
                            if row.sets(fact) and load.version in row.range), None)
                row = row or max((r for r in self.firmware_rows if r.sets(fact)), key=_row_height)
                changes.append(FirmwareChange(fact, _plain(getattr(here, fact)), _plain(getattr(there, fact)),
                                              row.source))
        return changes


def _row_height(row: FirmwareRow) -> tuple[int, tuple[int, int, int, int]]:
    """Order of rows by their lower bound (an open lower bound is lowest)."""
    return (0, (0, 0, 0, 0)) if row.range.lower is None else (1, row.range.lower.key)


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else list(value) if isinstance(value, tuple) else value


def _json_value(instance: Any, field: attrs.Attribute | None, value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


@attrs.frozen
class Catalogue:
    """Every known model by name, plus the aliases that resolve to them."""

    #: Models by catalogue name, in name order.
    models: Mapping[str, PhoneModel] = attrs.field(hash=False)
    #: Folded (upper-case) name or alias -> catalogue name.
    index: Mapping[str, str] = attrs.field(hash=False, repr=False)

    @classmethod
    def from_models(cls, models: Iterable[PhoneModel]) -> Catalogue:
        """Build the catalogue; aliases must not clash with each other or with names."""
        by_name = {model.name: model for model in sorted(models, key=lambda m: m.name)}
        index: dict[str, str] = {_fold(name): name for name in by_name}
        for model in by_name.values():
            for alias in model.aliases:
                owner = index.setdefault(_fold(alias), model.name)
                if owner != model.name:
                    other = by_name[owner]
                    raise ModelFileError(
                        model.origin, f"[models.{model.name}]",
                        f"alias {alias!r} is already taken by {owner} (from {other.origin})")
        return cls(MappingProxyType(by_name), MappingProxyType(index))

    def names(self) -> list[str]:
        """Catalogue names, sorted."""
        return list(self.models)

    def get(self, name: str) -> PhoneModel:
        """The model called ``name`` or one of its aliases, any case.

        Raises UnknownModelError listing the known names.
        """
        found = self.index.get(_fold(name))
        if found is None:
            raise UnknownModelError(self._unknown_message(name))
        return self.models[found]

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(_fold(name), list(self.index), n=1, cutoff=0.75)
        hint = f"did you mean {self.index[close[0]]}? " if close else ""
        return f"unknown phone model {name!r}; {hint}known: {', '.join(self.models)}"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _fold(name) in self.index

    def __iter__(self) -> Iterator[PhoneModel]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)


# --- reading model files -------------------------------------------------

def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadValue(f"expected true or false, got {describe(value)}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadValue(f"expected a non-empty string, got {describe(value)}")
    return value


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        return None if value is False else parse(value)
    return parse_optional


def _one_of(options: tuple[Any, ...]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool) or value not in options:
            shown = ", ".join(repr(option) for option in options)
            raise _BadValue(f"expected one of {shown}, got {describe(value)}")
        return value
    return parse


def _array_of(options: tuple[Any, ...], *, allow_empty: bool) -> Callable[[Any], tuple[Any, ...]]:
    """An array whose items come from ``options``, no repeats; returned in ``options`` order."""
    item = _one_of(options)

    def parse(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or (not value and not allow_empty):
            kind = "an array" if allow_empty else "a non-empty array"
            raise _BadValue(f"expected {kind} of {', '.join(map(repr, options))}, got {describe(value)}")
        items = [item(v) for v in value]
        if len(set(items)) != len(items):
            raise _BadValue(f"repeated value in {value!r}")
        return tuple(option for option in options if option in items)
    return parse


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _BadValue(f"expected an array of strings, got {describe(value)}")
    return tuple(_text(item) for item in value)


def _names(value: Any) -> tuple[str, ...]:
    names = _texts(value)
    for name in names:
        if not _NAME.match(name):
            raise _BadValue(f"{name!r} is not a model name (letters, digits, '.', '_', '+', '-')")
    return names


def _cucm_release(value: Any) -> str:
    """A CUCM release as Cisco writes it: major.minor ("11.5", "12.0"), or the major alone from 14 on ("14")."""
    text = _text(value)
    if not _CUCM_RELEASE.fullmatch(text.strip()):
        raise _BadValue(f"expected a CUCM release such as \"11.5\" or \"14\", got {describe(value)}")
    return text.strip()


_CUCM_RELEASE = re.compile(r"(\d{1,2})(?:\.(\d{1,2}))?")


def release_key(release: str) -> tuple[int, int]:
    """A CUCM release as (major, minor) for comparison: "11.5" -> (11, 5), "14" -> (14, 0)."""
    match = _CUCM_RELEASE.fullmatch(release.strip())
    if match is None:
        raise UsageError(f"CUCM release {release!r}: expected e.g. 11.5, 12.5 or 14")
    return int(match[1]), int(match[2] or 0)


def _messages(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _BadValue(f"expected a table of status texts, got {describe(value)}")
    for event, text in value.items():
        if event not in MESSAGE_EVENTS:
            raise _BadValue(f"unknown status event {event!r} (known: {', '.join(MESSAGE_EVENTS)})")
        if text is not False:
            try:
                _text(text)
            except _BadValue as error:
                raise _BadValue(f"{event}: {error} (or false: no such message)") from None
    return dict(value)


def _firmware_rows(value: Any) -> tuple[FirmwareRow, ...]:
    """``firmware_rows``: an array of inline tables, each a ``range``, one or more facts of
    ROW_FACTS, and a ``source`` (a document) or a ``choice`` (why); rows setting the same fact
    must not overlap (docs/models.md "Firmware rows")."""
    if not isinstance(value, list):
        raise _BadValue(f"expected an array of rows such as {{ range = \">= 12.5(1)\", "
                        f"ec_certificates = true, source = \"...\" }}, got {describe(value)}")
    rows: list[FirmwareRow] = []
    for number, raw in enumerate(value, start=1):
        rows.append(_firmware_row(number, raw))
    for fact in ROW_FACTS:
        setting = [(number, row) for number, row in enumerate(rows, start=1) if row.sets(fact)]
        for index, (number, row) in enumerate(setting):
            for other_number, other in setting[:index]:
                if row.range.overlaps(other.range):
                    raise _BadValue(f"row {number} ({row.range}) overlaps row {other_number} "
                                    f"({other.range}) for {fact}")
    return tuple(rows)


def _firmware_row(number: int, raw: Any) -> FirmwareRow:
    if not isinstance(raw, dict):
        raise _BadValue(f"row {number}: expected an inline table, got {describe(raw)}")
    allowed = ("range", "source", "choice") + ROW_FACTS
    for key in raw:
        if key not in allowed:
            raise _BadValue(f"row {number}: unknown field {key!r} (known: {', '.join(allowed)})")
    if "range" not in raw:
        raise _BadValue(f"row {number}: missing 'range' (e.g. \">= 12.5(1)\", \"< 14.0\" or \"any\")")
    try:
        version_range = parse_range(_text(raw["range"]))
    except (_BadValue, LoadFormatError) as error:
        raise _BadValue(f"row {number}: range: {error}") from None
    if ("source" in raw) == ("choice" in raw):
        raise _BadValue(f"row {number}: needs exactly one of 'source' (the document behind the row) "
                        "or 'choice' (why the project chose the value)")
    try:
        source = _text(raw["source"]) if "source" in raw else f"choice: {_text(raw['choice'])}"
    except _BadValue as error:
        raise _BadValue(f"row {number}: {'source' if 'source' in raw else 'choice'}: {error}") from None
    values = []
    for fact in ROW_FACTS:
        if fact in raw:
            try:
                values.append((fact, _FIELDS[fact][0](raw[fact])))
            except _BadValue as error:
                raise _BadValue(f"row {number}: {fact}: {error}") from None
    if not values:
        raise _BadValue(f"row {number}: sets no fact (one or more of {', '.join(ROW_FACTS)})")
    return FirmwareRow(version_range, tuple(values), source)


_REQUIRED = object()

#: Every field a model table (or [defaults]) may set: parser and default.
#: ``name``/``family`` come from the file's structure; ``settings`` is read
#: by TrustSettings; ``device_type`` defaults to the model's name.
_FIELDS: Mapping[str, tuple[Callable[[Any], Any], Any]] = {
    "description": (_text, _REQUIRED),
    "supports_ctl": (_boolean, _REQUIRED),
    "supports_itl": (_boolean, _REQUIRED),
    "supports_tvs": (_boolean, _REQUIRED),
    "digests": (_array_of(DIGESTS, allow_empty=False), _REQUIRED),
    "rsa_key_sizes": (_array_of(RSA_KEY_SIZES, allow_empty=False), _REQUIRED),
    "ec_certificates": (_boolean, False),
    "encrypted_config": (_boolean, False),
    "tls_versions": (_array_of(TLS_VERSIONS, allow_empty=True), _REQUIRED),
    "checksum": (_optional(_one_of(CHECKSUMS)), _REQUIRED),
    "log_dialect": (_optional(_one_of(LOG_DIALECTS)), _REQUIRED),
    "erase_menu": (_optional(_text), None),
    "separate_erase": (_boolean, False),
    "factory_reset": (_optional(_text), None),
    "messages": (_messages, {}),
    "firmware": (_optional(_text), None),
    "cucm_max_release": (_optional(_cucm_release), None),
    "cucm_min_release": (_optional(_cucm_release), None),
    "other_load_families": (_texts, ()),
    "firmware_rows": (_firmware_rows, ()),
    "device_type": (_text, None),
    "device_prefix": (_one_of(DEVICE_PREFIXES), "SEP"),
    "aliases": (_names, ()),
    "sources": (_texts, ()),
}


def _read_table(path: str, where: str, table: Any, *, allowed: Iterable[str]) -> dict[str, Any]:
    """Parse the fields of one TOML table, naming the table and field in errors."""
    if not isinstance(table, dict):
        raise ModelFileError(path, where, f"expected a table, got {describe(table)}")
    allowed = set(allowed)
    parsed: dict[str, Any] = {}
    for key, value in table.items():
        if key == "settings":
            continue
        if key not in allowed:
            raise ModelFileError(path, where, f"unknown field {key!r} (known: {', '.join(sorted(allowed))})")
        try:
            parsed[key] = _FIELDS[key][0](value)
        except _BadValue as error:
            raise ModelFileError(path, where, f"{key}: {error}") from None
    return parsed


def _read_settings(path: str, where: str, table: Any, base: TrustSettings) -> TrustSettings:
    settings = table.get("settings", {}) if isinstance(table, dict) else {}
    if not isinstance(settings, dict):
        raise ModelFileError(path, where, f"settings: expected a table, got {describe(settings)}")
    try:
        return TrustSettings.from_mapping(settings, base)
    except SettingsError as error:
        raise ModelFileError(path, f"{where[:-1]}.settings]", f"{error.key}: {error.problem}") from None


def _model_from_tables(path: str, family: str, family_sources: tuple[str, ...],
                       defaults: dict[str, Any], family_settings: TrustSettings,
                       name: str, table: Any) -> PhoneModel:
    where = f"[models.{name}]"
    if not _NAME.match(name):
        raise ModelFileError(path, where, "is not a model name (letters, digits, '.', '_', '+', '-')")
    own = _read_table(path, where, table, allowed=_FIELDS)
    values = {**defaults, **own}
    messages = {**defaults.get("messages", {}), **own.get("messages", {})}
    values["messages"] = {event: text for event, text in messages.items() if text is not False}
    values["sources"] = tuple(dict.fromkeys(
        family_sources + defaults.get("sources", ()) + own.get("sources", ())))
    for key, (_, default) in _FIELDS.items():
        if key not in values:
            if default is _REQUIRED:
                raise ModelFileError(path, where, f"missing field {key!r} (set it here or in [defaults])")
            values[key] = default
    if values["device_type"] is None:
        values["device_type"] = name
    if values["supports_tvs"] and not values["supports_itl"]:
        raise ModelFileError(path, where, "supports_tvs = true needs supports_itl = true "
                             "(docs/phone.md: TVS is reached only through the ITL's TVS records)")
    if "sha1" not in values["digests"]:
        raise ModelFileError(path, where, "digests: must include 'sha1' (docs/models.md: every phone verifies SHA-1)")
    if values["supports_tvs"] and not values["tls_versions"]:
        raise ModelFileError(path, where, "tls_versions: a TVS-capable model needs at least one TLS version")
    model = PhoneModel(name=name, family=family, origin=str(path),
                       settings=_read_settings(path, where, table, family_settings), **values)
    _check_default_load(path, where, model)
    return model


def _check_default_load(path: str, where: str, model: PhoneModel) -> None:
    """The fields of a model describe its default load: a firmware row covering that load
    must agree with them, so rows never change what the default load does."""
    if not model.firmware_rows:
        return
    try:
        default = model.default_load()
    except LoadFormatError as error:
        raise ModelFileError(path, where, f"firmware_rows need a default load: firmware: {error}") from None
    for number, row in enumerate(model.firmware_rows, start=1):
        if default.version not in row.range:
            continue
        for fact, value in row.values:
            if _plain(value) != _plain(getattr(model, fact)):
                raise ModelFileError(path, where, f"firmware_rows: row {number} ({row.range}) covers the "
                                     f"default load {default.text} but sets {fact} = {_plain(value)!r}, "
                                     f"not the model's {_plain(getattr(model, fact))!r}")


#: Arrays and inline tables nested deeper than this are refused: a model file needs three
#: levels, and tomllib recurses once per level (20,000 levels were a RecursionError).
MAX_TOML_NESTING = 32


def _load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` of ``text``, refusing nesting past ``MAX_TOML_NESTING`` first."""
    if _nesting_depth(text) > MAX_TOML_NESTING:
        raise tomllib.TOMLDecodeError(f"arrays or inline tables nested deeper than {MAX_TOML_NESTING} levels")
    try:
        return tomllib.loads(text)
    except RecursionError:  # the scan below misjudged some exotic string; same verdict
        raise tomllib.TOMLDecodeError(f"arrays or inline tables nested deeper than {MAX_TOML_NESTING} levels") from None


def _nesting_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings and comments (one linear pass)."""
    depth = deepest = 0
    position, end = 0, len(text)
    while position < end:
        char = text[position]
        if char == "#":
            newline = text.find("\n", position)
            position = end if newline < 0 else newline
        elif char in "\"'":
            quote = char * 3 if text.startswith(char * 3, position) else char
            position += len(quote)
            while position < end and not text.startswith(quote, position):
                position += 2 if char == '"' and text[position] == "\\" else 1
            position += len(quote) - 1
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
        position += 1
    return deepest


def models_from_text(text: str, path: str, *, family: str) -> list[PhoneModel]:
    """Every model of one family file's ``text``, in file order (``path`` names it in errors;
    ``family`` is the family when the file does not name one, usually the file's stem)."""
    try:
        document = _load_toml(text)
    except tomllib.TOMLDecodeError as error:
        raise ModelFileError(path, None, f"not valid TOML: {error}") from None
    return models_from_document(document, path, family=family)


def models_from_document(document: Mapping[str, Any], path: str, *, family: str) -> list[PhoneModel]:
    """Every model of one family file, already parsed as TOML, in file order.

    Raises ModelFileError naming the file (and table and field) for unknown or
    missing fields and values of the wrong kind.
    """
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise ModelFileError(path, None, f"unknown top-level key {key!r} "
                                 f"(known: {', '.join(_TOP_LEVEL_KEYS)})")
    try:
        family = _text(document.get("family", family))
        family_sources = _texts(document.get("sources", []))
        if "description" in document:
            _text(document["description"])
    except _BadValue as error:
        raise ModelFileError(path, None, str(error)) from None
    raw_defaults = document.get("defaults", {})
    defaults = _read_table(path, "[defaults]", raw_defaults,
                           allowed=(key for key in _FIELDS if key != "aliases"))
    family_settings = _read_settings(path, "[defaults]", raw_defaults, TrustSettings())
    tables = document.get("models")
    if not isinstance(tables, dict) or not tables:
        raise ModelFileError(path, None, "expected at least one [models.NAME] table")
    return [_model_from_tables(path, family, family_sources, defaults, family_settings, name, table)
            for name, table in tables.items()]
