"""``phonetrust models list|show``: the phone-model catalogue (phone.firmware.models).

``list`` prints one row per model (or, with --json, a JSON array of every
model's fields); ``show NAME`` prints one model in full (--json: one object).
NAME may be an alias ("7965") and any case. ``show NAME@LOAD`` shows the model
on that firmware load and what the load changes compared with the model's
default load (docs/models.md "Firmware rows"). --models-dir adds a folder of
user model files on top of the bundled ones and PHONETRUST_MODELS.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from phone.firmware.loads import Load, parse_load
from phone.firmware.models import Catalogue, FirmwareChange, PhoneModel
from phone.catalogue import load_catalogue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the phone models and show what each one's firmware does",
        description="The phone-model catalogue: bundled models/*.toml, then the folders in "
                    "PHONETRUST_MODELS, then --models-dir folders (later ones override).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                        help="also load model files from DIR (repeatable; overrides same-named models)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    actions = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND",
                                    parser_class=type(parser))
    actions.required = True
    listing = actions.add_parser("list", parents=[common], help="one line per model")
    listing.set_defaults(func=_list)
    show = actions.add_parser("show", parents=[common], help="every field of one model")
    show.add_argument("name", metavar="NAME[@LOAD]",
                      help="catalogue name or alias, e.g. CP-7965 or 7965; add @LOAD to see the model "
                           "on that firmware load, e.g. CP-8861@sip88xx.10-3-1-20")
    show.set_defaults(func=_show)


def _catalogue(args: argparse.Namespace) -> Catalogue:
    return load_catalogue(extra_dirs=args.models_dir)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


_COLUMNS = ("NAME", "CTL", "ITL/SBD", "TVS", "DIGESTS", "TLS", "CHECKSUM", "DIALECT")


def _row(model: PhoneModel) -> tuple[str, ...]:
    return (
        model.name,
        _yes_no(model.supports_ctl),
        _yes_no(model.supports_itl),
        _yes_no(model.supports_tvs),
        ",".join(sorted(model.digests)),
        ",".join(model.tls_versions) or "-",
        model.checksum or "-",
        model.log_dialect or "-",
    )


def _list(args: argparse.Namespace) -> int:
    catalogue = _catalogue(args)
    if args.json:
        print(json.dumps([model.to_json() for model in catalogue], indent=2))
        return 0
    rows = [_COLUMNS] + [_row(model) for model in catalogue]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def _show(args: argparse.Namespace) -> int:
    name, _, load_text = args.name.partition("@")
    model = _catalogue(args).get(name)
    load: Load | None = None
    changes: list[FirmwareChange] = []
    if load_text:
        load = parse_load(load_text)
        changes = model.firmware_changes(load)
        model = model.at_load(load)
    fields = model.to_json()
    # Which CUCM releases support the model on this load, in words (docs/models.md "CUCM releases").
    fields["cucm_releases"] = model.cucm_releases()
    if load is not None:
        fields["load"] = {"text": load.text, "family": load.family, "version": str(load.version)}
        fields["firmware_changes"] = [
            {"field": change.field, "value": change.value, "default_value": change.default_value,
             "source": change.source} for change in changes]
        fields["firmware_notes"] = list(model.load_notes)
    if args.json:
        print(json.dumps(fields, indent=2))
        return 0
    print(f"{model.name}: {model.description}")
    if load is not None:
        print(f"  load: {load.text} (version {load.version}), default load {model.firmware}")
    tables = ("messages", "settings", "sources", "load", "firmware_changes", "firmware_notes")
    plain = [key for key in fields if key not in tables + ("name", "description")]
    width = max(len(key) for key in plain)
    for key in plain:
        print(f"  {key.ljust(width)}  {_text(fields[key])}")
    for table in ("messages", "settings"):
        print(f"  {table}:")
        inner = max((len(key) for key in fields[table]), default=0)
        for key, value in fields[table].items():
            print(f"    {key.ljust(inner)}  {_text(value)}")
    print("  sources:")
    for source in model.sources:
        print(f"    {source}")
    if load is not None:
        _print_firmware_changes(changes, model.load_notes)
    return 0


def _print_firmware_changes(changes: list[FirmwareChange], notes: tuple[str, ...]) -> None:
    print("  firmware changes (value at this load; at the default load; source):")
    if not changes:
        print("    none: this load behaves as the default load")
    width = max((len(change.field) for change in changes), default=0)
    for change in changes:
        print(f"    {change.field.ljust(width)}  {_text(change.value)}; default load: "
              f"{_text(change.default_value)}; source: {change.source}")
    for note in notes:
        print(f"  note: {note}")
