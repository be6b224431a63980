"""`phonetrust phone …`: one emulated phone whose flash lives in a state folder.

- `phone boot --model MODEL --mac MAC --tftp HOST[:PORT] --state DIR [--log FILE] [--json] [--deadline S]
  [--mic-ca CERT --mic-ca-key KEY] [--auth-string DIGITS] [--http-port N] [--https-port N]` one boot
  against a TFTP server (and the TVS and CAPF servers its configuration names); models that provision
  over HTTP first ask the TFTP host's HTTP service first (docs/http.md);
  exit 0 when the boot ran to its end, whatever was accepted; 2 bad arguments;
  3 when nothing was reachable (no file and no "not found" came back, or the
  server's name does not resolve). While a request goes unanswered, stderr says
  which server, port, file and attempt the phone is waiting for. The first boot
  issues the phone's MIC, from --mic-ca when given (docs/phone.md); a CAPF operation the
  configuration asks for runs after it and may install an LSC (docs/capf.md).
- `phone erase --state DIR [--ctl] [--itl]`: the manual erase from the phone's menu
  (both lists when neither flag is given; 78xx/88xx erase both anyway).
- `phone factory-reset --state DIR`: everything goes but the MIC, which is permanent.
- `phone show --state DIR [--json]`: what the phone holds.
- `phone identity --state DIR --out OUT [--force]`: export the phone's MIC (`mic.pem`, `mic.key`) and,
  once CAPF has issued one, its LSC (`lsc.pem`, `lsc.key`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from phone.device.phone import Phone, boot_json, describe_installed
from phone.errors import UsageError
from phone.device.flash import FlashStore, FlashStoreError
from phone.device.identity import IdentityStore, load_mic_ca
from phone.firmware.machine import PhoneMachine
from phone.firmware.models import PhoneModel
from phone.catalogue import load_catalogue, model_on_load
from phone.console.phone import PhoneConsole
from phone.firmware.trust import Item
from phone.firmware.machine import Fetch, FileFailed, FileFetched, FileMissing
from phone.wire.http import HTTP_PORT, HTTPS_PORT
from phone.device.transports import FetchRouter, HttpTransport, TftpTransport

#: `phone boot` stops asking for files after this long: a phone on a LAN gets its handful of
#: files in well under a second, and a user at a prompt should not wait a minute to learn nothing answered.
DEFAULT_BOOT_DEADLINE = 20.0
#: Exit status of `phone boot` when no TFTP request was answered at all.
EXIT_UNREACHABLE = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("phone", help="boot, erase or inspect one emulated phone, or export its certificates",
                                   description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="phone_command", metavar="ACTION", required=True)

    boot = commands.add_parser(
        "boot", help="boot once against a TFTP server (and its TVS, CAPF and CallManager)",
        description="Boot one emulated phone once against a TFTP server (and the TVS servers its configuration "
        "names), keeping its flash in --state. While a request goes unanswered, stderr says what the phone waits "
        "for. Exit status: 0 the boot ran to its end, whatever the phone accepted or refused; 2 bad arguments "
        "(one line on stderr); 3 nothing was reachable: no file and no 'not found' came back from the TFTP "
        "server, or its name does not resolve.")
    boot.add_argument("--model", required=True, metavar="MODEL[@LOAD]",
                      help="catalogue name, e.g. CP-7965 (see `phonetrust models list`); MODEL@LOAD boots as that "
                           "firmware load does, e.g. CP-8861@sip88xx.10-3-1-20")
    boot.add_argument("--cucm-release", metavar="RELEASE",
                      help="the TFTP server's CUCM release (e.g. 12.5): a model and load it does not support is "
                           "reported as unsupported and not booted (docs/models.md)")
    boot.add_argument("--mac", required=True, help="the phone's MAC address, e.g. B000B4BA0AEE")
    boot.add_argument("--tftp", required=True, metavar="HOST[:PORT]", help="TFTP server (port 69 by default)")
    boot.add_argument("--state", required=True, type=Path, help="the phone's flash folder (created if missing)")
    boot.add_argument("--log", type=Path, help="append the phone's console log to this file")
    boot.add_argument("--json", action="store_true", help="print the boot report as JSON")
    boot.add_argument("--tvs-cert", type=Path, help="client certificate (the phone's LSC/MIC) shown to TVS")
    boot.add_argument("--tvs-key", type=Path, help="private key of --tvs-cert")
    boot.add_argument("--deadline", type=float, default=DEFAULT_BOOT_DEADLINE, metavar="SECONDS",
                      help="stop asking the TFTP server for files after this many seconds in all "
                      f"(default {DEFAULT_BOOT_DEADLINE:g})")
    boot.add_argument("--force", action="store_true",
                      help="boot even if --state holds the flash of another model or MAC")
    boot.add_argument("--mic-ca", type=Path, metavar="CERT",
                      help="manufacturing CA certificate (PEM) that issues the phone's MIC on its first boot "
                      "(default: this installation's emulated Cisco Manufacturing CA SHA2, see docs/phone.md)")
    boot.add_argument("--mic-ca-key", type=Path, metavar="KEY", help="private key (PEM) of --mic-ca")
    boot.add_argument("--auth-string", metavar="DIGITS",
                      help="what the user types on the phone's keypad for a CAPF operation 'By Authentication "
                      "String' (4-10 digits, as set on the phone's CUCM page); without it such an operation "
                      "waits and the boot reports it as failed (docs/capf.md)")
    boot.add_argument("--http-port", type=int, default=HTTP_PORT, metavar="N",
                      help="where a model that provisions over HTTP first finds the TFTP host's HTTP service "
                      f"(default {HTTP_PORT}; 0: never try HTTP), see docs/http.md")
    boot.add_argument("--https-port", type=int, default=HTTPS_PORT, metavar="N",
                      help="the TFTP host's HTTPS service, asked for the configuration when the installed ITL "
                      f"is version 1.1 (default {HTTPS_PORT}; 0: never)")
    boot.add_argument("--no-register", action="store_true",
                      help="stop after the configuration and any CAPF operation it asks for: do not "
                           "register with the CallManager (see docs/registration.md)")
    boot.add_argument("--models-dir", action="append", default=[], metavar="DIR", help="extra model folder")
    boot.set_defaults(func=run_boot_command)

    state_help = "the phone's flash folder (as given to `phone boot --state`)"
    models_help = "extra model folder (as given to `phone boot`)"
    erase = commands.add_parser("erase", help="erase the CTL and/or ITL as from the phone's menu")
    erase.add_argument("--state", required=True, type=Path, help=state_help)
    erase.add_argument("--ctl", action="store_true", help="erase the CTL")
    erase.add_argument("--itl", action="store_true", help="erase the ITL")
    erase.add_argument("--models-dir", action="append", default=[], metavar="DIR", help=models_help)
    erase.set_defaults(func=run_erase)

    reset = commands.add_parser("factory-reset", help="erase everything but the MIC (hold # at power-up, 123456789*0#)")
    reset.add_argument("--state", required=True, type=Path, help=state_help)
    reset.add_argument("--models-dir", action="append", default=[], metavar="DIR", help=models_help)
    reset.set_defaults(func=run_factory_reset)

    show = commands.add_parser("show", help="show what the phone's flash holds",
                               description="Show what an emulated phone's flash holds: its CTL and ITL with "
                               "the checksum its Trust List screen shows, and its configuration.")
    show.add_argument("--state", required=True, type=Path, help=state_help)
    show.add_argument("--json", action="store_true",
                      help='print one JSON object: {"device", "model", "ctl", "itl", "config", "tvs_cache"}')
    show.add_argument("--models-dir", action="append", default=[], metavar="DIR", help=models_help)
    show.set_defaults(func=run_show)

    identity = commands.add_parser(
        "identity", help="export the phone's MIC (and LSC) certificate and key",
        description="Write the phone's Manufacturing Installed Certificate (mic.pem) and its private key "
        "(mic.key, PKCS#8) as PEM into --out and, once CAPF has issued one, its Locally Significant "
        "Certificate (lsc.pem, lsc.key), so other tools can encrypt to or speak as the phone.")
    identity.add_argument("--state", required=True, type=Path, help=state_help)
    identity.add_argument("--out", required=True, type=Path,
                          help="folder to write mic.pem, mic.key (and lsc.pem, lsc.key) into (created if missing)")
    identity.add_argument("--force", action="store_true", help="overwrite the files already in --out")
    identity.set_defaults(func=run_identity)


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
        IdentityStore(args.state).delete_lsc()
        print(f"{args.state}: the flash could not be read ({error}); factory reset: it is empty now")
        return 0
    phone.factory_reset()
    IdentityStore(args.state).delete_lsc()  # the LSC goes too; the MIC is permanent (Cisco TAC note 200860)
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


def run_identity(args: argparse.Namespace) -> int:
    identity = IdentityStore(args.state).load()
    if identity is None:
        raise UsageError(f"{args.state}: this phone has no identity yet (its MIC is issued at its first "
                         "`phonetrust phone boot`)")
    files = {"mic.pem": identity.mic.certificate_pem(), "mic.key": identity.mic.private_key_pem()}
    if identity.lsc is not None:
        files.update({"lsc.pem": identity.lsc.certificate_pem(), "lsc.key": identity.lsc.private_key_pem()})
    targets = {args.out / name: data for name, data in files.items()}
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing and not args.force:
        raise UsageError(f"{', '.join(existing)} already exist(s); give --force to overwrite")
    args.out.mkdir(parents=True, exist_ok=True)
    for path, data in targets.items():
        if path.is_symlink():
            path.unlink()  # write the file itself, never through a link
        mode = 0o600 if path.name.endswith(".key") else 0o644
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), mode)
        with open(descriptor, "wb") as handle:
            handle.write(data)
    print(f"{identity.mic.certificate.subject.rfc4514_string()}: wrote {', '.join(map(str, targets))}")
    return 0


def _installed(machine: PhoneMachine, item: Item, model: PhoneModel) -> dict:
    entry = describe_installed(machine, item)
    installed = machine.flash.list_for(item)
    entry["checksum"] = model.trust_list_checksum(installed.data) if installed is not None else None
    return entry


def _report_unsupported(model: PhoneModel, args: argparse.Namespace, reason: str) -> int:
    """A phone the cluster's CUCM release does not support: said as such, never booted as if it worked.

    JSON: the boot report's shape with no files, and ``"unsupported": {"cucm_release", "reason"}``
    (``null`` in every report of a phone that booted). Exit 0: the answer is complete.
    """
    if args.json:
        print(json.dumps({"device": model.device_name(args.mac), "model": model.name, "load": model.active_load,
                          "files": [], "status_messages": [], "tvs_requests": [],
                          "unsupported": {"cucm_release": args.cucm_release.strip(), "reason": reason}}, indent=2))
    else:
        print(f"{model.device_name(args.mac)}: unsupported: {reason}; not booted")
    return 0


def run_boot_command(args: argparse.Namespace) -> int:
    from phone.wire.addresses import parse_host_port
    from phone.device.capf import CapfTransport
    from phone.device.registration import SignallingTransport, identity_files
    from phone.device.transports import TvsTransport

    model = model_on_load(args.model, load_catalogue(args.models_dir))
    host, port = parse_host_port(args.tftp, 69)
    unsupported = model.cucm_support(args.cucm_release) if args.cucm_release is not None else None
    if unsupported:
        return _report_unsupported(model, args, unsupported)
    if (args.tvs_cert is None) != (args.tvs_key is None):
        raise UsageError("--tvs-cert and --tvs-key go together")
    if (args.mic_ca is None) != (args.mic_ca_key is None):
        raise UsageError("--mic-ca and --mic-ca-key go together")
    mic_ca = load_mic_ca(args.mic_ca, args.mic_ca_key) if args.mic_ca is not None else None
    if args.auth_string is not None and not (args.auth_string.isascii() and args.auth_string.isdigit()
                                             and 4 <= len(args.auth_string) <= 10):
        raise UsageError(f"--auth-string must be 4 to 10 digits, as typed on the phone's keypad, "
                         f"not {args.auth_string!r}")
    if not args.deadline > 0:
        raise UsageError(f"--deadline must be a positive number of seconds, not {args.deadline:g}")
    for flag, value in (("--http-port", args.http_port), ("--https-port", args.https_port)):
        if not 0 <= value < 65536:
            raise UsageError(f"{flag} must be a TCP port (0 to turn it off), not {value}")
    store = FlashStore(args.state)
    _check_owner(store, args.state, model, model.device_name(args.mac), force=args.force)
    try:
        socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as error:
        print(f"phonetrust: cannot resolve the TFTP server {host!r}: {error.strerror or error}; nothing asked",
              file=sys.stderr)
        return EXIT_UNREACHABLE
    fetch = WatchedTftp(host, port, model, deadline=args.deadline, say=_say)
    http = HttpTransport(host, model, http_port=args.http_port or None, https_port=args.https_port or None,
                         deadline=args.deadline)
    log_file = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        console = PhoneConsole(model, lambda: datetime.datetime.now().astimezone(),
                               sink=(lambda line: print(line, file=log_file, flush=True)) if log_file else None,
                               keep=False)
        tvs = TvsTransport(model, client_cert=args.tvs_cert, client_key=args.tvs_key)
        identity_store = IdentityStore(args.state)
        phone = Phone(model, args.mac, fetch=FetchRouter(fetch, DeadlineHttp(http, fetch)),
                      http_service=bool(args.http_port), https_service=bool(args.https_port), ask_tvs=tvs,
                      store=store, console=console, identity=identity_store,
                      mic_authority=(lambda: mic_ca) if mic_ca is not None else None,
                      enrol_capf=CapfTransport(auth_string=args.auth_string, ask_tvs=tvs))
        with tempfile.TemporaryDirectory(prefix="phonetrust-tls-") as tls_files:
            if not args.no_register:
                # The phone presents its LSC, else its MIC, as it holds them when it registers: after
                # this boot's CAPF session, which may have just installed or deleted the LSC.
                phone.register = SignallingTransport(identities=lambda kind: identity_files(
                    phone.identity, kind, Path(tls_files)))
            report = phone.boot()
    finally:
        if log_file:
            log_file.close()
    document = boot_json(phone.machine, report, phone.identity)
    document["load"] = model.active_load
    document["unsupported"] = None
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_boot(document, f"{host}:{port}")
    if fetch.asked and not fetch.answered:
        _say(f"nothing reachable: TFTP {host}:{port} answered none of {fetch.asked} request(s), "
             "not even with 'not found'")
        return EXIT_UNREACHABLE
    return 0


class WatchedTftp:
    """The phone's TFTP transport that says on stderr what it waits for and keeps an overall deadline.

    A request answered within a second is not mentioned. One still unanswered is
    announced once a second into each attempt (the model's TFTP timeout apart,
    as the phone resends), naming the server, the port, the file and the attempt.
    ``answered`` counts requests that got any answer, a "not found" included.
    """

    def __init__(self, host: str, port: int, model: PhoneModel, *, deadline: float,
                 say: Callable[[str], None]) -> None:
        self.host, self.port, self.model, self.deadline, self.say = host, port, model, deadline, say
        self.asked = self.answered = 0
        # The deadline runs from the first request: what the phone did before (issuing its MIC
        # on a first boot, loading its flash) is not time spent waiting for the server.
        self._ends: float | None = None
        self._requests: dict[str, int] = {}

    def time_left(self) -> float:
        """Seconds left of the deadline, which starts with the first request (TFTP or HTTP)."""
        if self._ends is None:
            self._ends = time.monotonic() + self.deadline
        return self._ends - time.monotonic()

    def __call__(self, request: Fetch) -> FileFetched | FileMissing | FileFailed:
        server = f"TFTP {self.host}:{self.port}"
        left = self.time_left()
        if left <= 0:
            self.say(f"{server}: not asking for {request.name}: the {self.deadline:g} s deadline (--deadline) passed")
            return FileFailed(request.name, f"not asked: the {self.deadline:g} s deadline had passed")
        self.asked += 1
        self._requests[request.name] = self._requests.get(request.name, 0) + 1
        stop = threading.Event()
        watcher = threading.Thread(target=self._announce, args=(stop, server, request.name, left), daemon=True)
        watcher.start()
        try:
            result = TftpTransport(self.host, self.port, self.model, deadline=max(0.1, round(left, 1)))(request)
        finally:
            stop.set()
            watcher.join()
        if isinstance(result, FileFailed):
            self.say(f"{server}: no {request.name}: {result.reason}")
        else:
            self.answered += 1
        return result

    def _announce(self, stop: threading.Event, server: str, name: str, left: float) -> None:
        settings = self.model.settings
        wait, attempts = settings.tftp_timeout_seconds, settings.tftp_retries + 1
        started = time.monotonic()
        again = f" (request {self._requests[name]} for this file)" if self._requests[name] > 1 else ""
        for attempt in range(1, attempts + 1):
            mark = (attempt - 1) * wait + min(1.0, wait / 2)
            if mark >= left or stop.wait(max(0.0, started + mark - time.monotonic())):
                return
            self.say(f"waiting for {server} to send {name}: attempt {attempt} of {attempts}, {wait:g} s each{again}")


class DeadlineHttp:
    """The phone's HTTP(S) transport within the same overall deadline as its TFTP requests (--deadline)."""

    def __init__(self, http: HttpTransport, watch: WatchedTftp) -> None:
        self.http, self.watch = http, watch

    def __call__(self, request: Fetch) -> FileFetched | FileMissing | FileFailed:
        left = self.watch.time_left()
        if left <= 0:
            return FileFailed(request.name, f"not asked: the {self.watch.deadline:g} s deadline had passed",
                              transport=request.transport)
        return self.http(request, deadline=left)


def _say(message: str) -> None:
    print(f"phonetrust: {message}", file=sys.stderr, flush=True)


def _check_owner(store: FlashStore, folder: Path, model: PhoneModel, device: str, *, force: bool) -> None:
    """Refuse to boot one phone from another phone's flash: its lists would be taken as this phone's own."""
    try:
        meta = store.meta()
    except FlashStoreError:
        return  # a damaged folder is the boot's to report (or factory-reset's to clear)
    owner = (meta.get("model"), meta.get("device"))
    if force or owner[0] is None or owner == (model.name, device):
        return
    raise UsageError(f"{folder} holds the flash of {owner[0]} {owner[1]}, not of {model.name} {device}: "
                     "give this phone its own --state (or --force to boot it from that flash)")


def _print_boot(document: dict, server: str) -> None:
    out = sys.stdout
    print(f"{document['model']} {document['device']} booted against TFTP {server}", file=out)
    width = max((len(f["name"]) for f in document["files"]), default=10)
    for entry in document["files"]:
        reason = f"  ({entry['reason']})" if entry["reason"] else ""
        via = f" over {entry['transport'].upper()}" if entry.get("transport") in ("http", "https") else ""
        print(f"  {entry['name']:<{width}}  {entry['result']}{via}{reason}", file=out)
    for request in document["tvs_requests"]:
        answer = (f"status {request['status']} roles {','.join(map(str, request['roles'])) or '-'}"
                  if request["status"] is not None else f"error: {request['error']}")
        print(f"  TVS {request['server'] or '-'} type {request['type']}: {answer}", file=out)
    for message in document["status_messages"]:
        print(f"  screen: {message}", file=out)
    for info in document["device_tl_info"]:
        print(f"  DeviceTLInfo: {info['name']} ({info['status']})", file=out)
    registration = document.get("registration")
    if registration:
        where = f" with {registration['server']}" if registration["server"] else ""
        reason = f"  ({registration['reason']})" if registration["reason"] else ""
        print(f"  registration{where}: {registration['result']} [{registration['code']}]{reason}", file=out)
    if document.get("identity"):
        mic = document["identity"]["mic"]
        print(f"  MIC: serial {mic['serial']}, issued by {mic['issuer']}", file=out)
        lsc = document["identity"]["lsc"]
        if lsc:
            print(f"  LSC: serial {lsc['serial']}, issued by {lsc['issuer']} ({lsc['key']})", file=out)
    capf = document.get("capf")
    if capf:
        reason = f" ({capf['reason']})" if capf["reason"] else ""
        print(f"  CAPF {capf['server'] or '-'} {capf['operation'] or '-'}: {capf['result']}{reason}", file=out)
