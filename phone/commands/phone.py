"""`phonetrust phone …`: one emulated phone whose flash lives in a state folder.

- `phone boot --model MODEL --mac MAC --tftp HOST[:PORT] --state DIR [--log FILE] [--json]`
  one boot against a TFTP server (and the TVS servers its configuration names);
  exit 0 when the boot ran to its end, whatever was accepted (DESIGN.md).
- `phone erase --state DIR [--ctl] [--itl]`: the manual erase from the phone's menu
  (both lists when neither flag is given; 78xx/88xx erase both anyway, SPEC 4.3).
- `phone factory-reset --state DIR`: everything goes.
- `phone show --state DIR [--json]`: what the phone holds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from phone.device.phone import Phone, boot_json, describe_installed
from phone.errors import UsageError
from phone.device.flash import FlashStore, FlashStoreError
from phone.firmware.machine import PhoneMachine
from phone.firmware.models import PhoneModel
from phone.catalogue import load_catalogue
from phone.console.phone import PhoneConsole
from phone.firmware.trust import Item


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("phone", help="boot, erase or inspect one emulated phone",
                                   description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="phone_command", metavar="ACTION", required=True)

    boot = commands.add_parser("boot", help="boot once against a TFTP server (and its TVS)")
    boot.add_argument("--model", required=True, help="catalogue name, e.g. CP-7965 (see `phonetrust models list`)")
    boot.add_argument("--mac", required=True, help="the phone's MAC address, e.g. B000B4BA0AEE")
    boot.add_argument("--tftp", required=True, metavar="HOST[:PORT]", help="TFTP server (port 69 by default)")
    boot.add_argument("--state", required=True, type=Path, help="the phone's flash folder (created if missing)")
    boot.add_argument("--log", type=Path, help="append the phone's console log to this file")
    boot.add_argument("--json", action="store_true", help="print the boot report as JSON")
    boot.add_argument("--tvs-cert", type=Path, help="client certificate (the phone's LSC/MIC) shown to TVS")
    boot.add_argument("--tvs-key", type=Path, help="private key of --tvs-cert")
    boot.add_argument("--models-dir", action="append", default=[], metavar="DIR", help="extra model folder")
    boot.set_defaults(func=run_boot_command)

    erase = commands.add_parser("erase", help="erase the CTL and/or ITL as from the phone's menu")
    erase.add_argument("--state", required=True, type=Path)
    erase.add_argument("--ctl", action="store_true", help="erase the CTL")
    erase.add_argument("--itl", action="store_true", help="erase the ITL")
    erase.add_argument("--models-dir", action="append", default=[], metavar="DIR")
    erase.set_defaults(func=run_erase)

    reset = commands.add_parser("factory-reset", help="erase everything (hold # at power-up, 123456789*0#)")
    reset.add_argument("--state", required=True, type=Path)
    reset.add_argument("--models-dir", action="append", default=[], metavar="DIR")
    reset.set_defaults(func=run_factory_reset)

    show = commands.add_parser("show", help="show what the phone's flash holds")
    show.add_argument("--state", required=True, type=Path)
    show.add_argument("--json", action="store_true")
    show.add_argument("--models-dir", action="append", default=[], metavar="DIR")
    show.set_defaults(func=run_show)


def _existing_phone(args: argparse.Namespace) -> tuple[PhoneModel, str, FlashStore]:
    store = FlashStore(args.state)
    meta = store.meta()
    if not meta.get("model") or not meta.get("device"):
        raise UsageError(f"{args.state}: no phone has booted with this state folder yet")
    model = load_catalogue(args.models_dir).get(meta["model"])
    return model, meta["device"], store


def _offline(model: PhoneModel, device: str, store: FlashStore, console: PhoneConsole | None = None) -> Phone:
    def no_network(_request):  # erase and reset never touch the network
        raise UsageError("this action does not use the network")

    return Phone(model, device, fetch=no_network, ask_tvs=no_network, store=store, console=console)


def run_erase(args: argparse.Namespace) -> int:
    model, device, store = _existing_phone(args)
    both = not args.ctl and not args.itl
    phone = _offline(model, device, store)
    phone.erase(ctl=both or args.ctl, itl=both or args.itl)
    print(model.message("erasing") or "Erasing CTL and ITL files")
    return 0


def run_factory_reset(args: argparse.Namespace) -> int:
    try:
        model, device, store = _existing_phone(args)
        phone = _offline(model, device, store)
    except FlashStoreError as error:
        # The reset a real phone offers when nothing else works: a folder that no longer
        # loads is wiped rather than left for the user to delete by hand.
        FlashStore(args.state).wipe()
        print(f"{args.state}: the flash could not be read ({error}); factory reset: it is empty now")
        return 0
    phone.factory_reset()
    print(f"{device}: factory reset; the flash is empty")
    return 0


def run_show(args: argparse.Namespace) -> int:
    model, device, store = _existing_phone(args)
    machine = PhoneMachine(model, device, store.load())
    described = {
        "device": machine.device_name,
        "model": model.name,
        "ctl": _installed(machine, Item.CTL, model),
        "itl": _installed(machine, Item.ITL, model),
        "config": {"name": machine.flash.config_name,
                   "tvs": [{"address": m.address, "port": m.port, "priority": m.priority}
                           for m in machine.flash.stored_config().tvs_members]},
        "tvs_cache": len(machine.flash.tvs_cache),
    }
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    print(f"{described['device']} ({model.name})")
    for item in ("ctl", "itl"):
        entry = described[item]
        shown = f"checksum {entry['checksum']} ({model.checksum.upper()})" if entry.get("checksum") else ""
        print(f"  {item.upper()}: {'installed ' + shown if entry['installed'] else 'not installed'}")
    print(f"  config: {described['config']['name'] or 'none'}")
    return 0


def _installed(machine: PhoneMachine, item: Item, model: PhoneModel) -> dict:
    entry = describe_installed(machine, item)
    installed = machine.flash.list_for(item)
    entry["checksum"] = model.trust_list_checksum(installed.data) if installed is not None else None
    return entry


def run_boot_command(args: argparse.Namespace) -> int:
    from phone.wire.addresses import parse_host_port
    from phone.device.transports import TftpTransport, TvsTransport

    model = load_catalogue(args.models_dir).get(args.model)
    host, port = parse_host_port(args.tftp, 69)
    if (args.tvs_cert is None) != (args.tvs_key is None):
        raise UsageError("--tvs-cert and --tvs-key go together")
    log_file = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        console = PhoneConsole(model, lambda: datetime.datetime.now().astimezone(),
                               sink=(lambda line: print(line, file=log_file, flush=True)) if log_file else None,
                               keep=False)
        phone = Phone(model, args.mac, fetch=TftpTransport(host, port, model),
                      ask_tvs=TvsTransport(model, client_cert=args.tvs_cert, client_key=args.tvs_key),
                      store=FlashStore(args.state), console=console)
        report = phone.boot()
    finally:
        if log_file:
            log_file.close()
    document = boot_json(phone.machine, report)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_boot(document, f"{host}:{port}")
    return 0


def _print_boot(document: dict, server: str) -> None:
    out = sys.stdout
    print(f"{document['model']} {document['device']} booted against TFTP {server}", file=out)
    width = max((len(f["name"]) for f in document["files"]), default=10)
    for entry in document["files"]:
        reason = f"  ({entry['reason']})" if entry["reason"] else ""
        print(f"  {entry['name']:<{width}}  {entry['result']}{reason}", file=out)
    for request in document["tvs_requests"]:
        answer = (f"status {request['status']} roles {','.join(map(str, request['roles'])) or '-'}"
                  if request["status"] is not None else f"error: {request['error']}")
        print(f"  TVS {request['server'] or '-'} type {request['type']}: {answer}", file=out)
    for message in document["status_messages"]:
        print(f"  screen: {message}", file=out)
    for info in document["device_tl_info"]:
        print(f"  DeviceTLInfo: {info['name']} ({info['status']})", file=out)
