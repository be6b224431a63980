"""``phonetrust tvs``: run a TVS server, manage its certificate store, query a TVS (docs/tvs.md).

- ``tvs serve --db FILE --cert CERT --key KEY [--port 2445] [--host 127.0.0.1] [--ctl CTLFILE] [--trace FILE]``
- ``tvs add --db FILE --role ROLE [--role ROLE…] [--ttl S] CERT``
- ``tvs list --db FILE [--json]``
- ``tvs delete --db FILE (--serial HEX [--issuer NAME] | --id N)``
- ``tvs query HOST[:PORT] (--model MODEL --mac MAC | --device NAME) --server-cert CERT (--cert CERT | --subject S --issuer I --serial HEX)
  [--json] [--tls 1.0|1.1|1.2]``

``query`` exits 0 when the server vouches for the certificate (STATUS 0), 1 when
it answers "not trusted / not found" (STATUS 1), 2 when no server answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
from pathlib import Path

import attrs
from cryptography import x509

from phone.wire.certs import load_certificate
from phone.errors import CertificateError, TransportError, UsageError
from phone.wire.names import cucm_name, serial_to_bytes
from phone.commands.show import read_trust_list
from phone.wire.tlv import FileKind
from phone.wire.tvs import DEFAULT_TTL, MessageType, TvsMessage
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, TvsResult, ask_tvs
from phone.catalogue import load_catalogue
from phone.lab.servers.tvs import TvsServer, TvsServerSettings
from phone.lab.tvs_store import TvsStore, parse_tvs_role, role_name
from phone.tls import TLS_VERSIONS, ClientIdentity, read_certificate
from phone.console.tvs_trace import file_sink

_DEVICE_NAME = re.compile(r"CP-[0-9A-Za-z]+-SEP[0-9A-F]{12}")
_STATUS_TEXT = {0: "trusted", 1: "not trusted / not found"}


def register(subparsers: argparse._SubParsersAction) -> None:
    tvs = subparsers.add_parser("tvs", help="Trust Verification Service: server, store and client",
                                description="Run a TVS server, manage its certificate store, query a TVS.")
    commands = tvs.add_subparsers(dest="tvs_command", metavar="SUBCOMMAND",
                                  parser_class=type(tvs))
    commands.required = True

    serve = commands.add_parser("serve", help="run a TVS server in the foreground until SIGINT/SIGTERM")
    serve.add_argument("--db", required=True, type=Path, help="certificate store (made by 'tvs add')")
    serve.add_argument("--cert", required=True, type=Path, help="the TVS certificate (PEM or DER)")
    serve.add_argument("--key", required=True, type=Path, help="its private key (PEM or DER)")
    serve.add_argument("--port", type=int, default=2445, help="TCP port (default 2445, as CUCM; 0: any free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--ctl", type=Path, help="CTLFile.tlv whose certificates form the CTL cache")
    serve.add_argument("--trace", help="append the CUCM-style TVS trace to this file ('-': stdout)")
    serve.add_argument("--min-tls", choices=list(TLS_VERSIONS), default="1.0",
                       help="lowest TLS version accepted (default 1.0, as CUCM 10.x)")
    serve.add_argument("--max-clients", type=int, default=attrs.fields(TvsServerSettings).max_clients.default,
                       help="connections served at once; more wait (default %(default)s)")
    serve.set_defaults(func=_serve)

    add = commands.add_parser("add", help="add a certificate with its roles to the store")
    add.add_argument("--db", required=True, type=Path, help="certificate store (created if missing)")
    add.add_argument("--role", action="append", required=True, metavar="ROLE",
                     help="SAST, CCM, CCM+TFTP, TFTP, CAPF, APP-SERVER, TVS or a number; repeatable")
    add.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"seconds (default {DEFAULT_TTL})")
    add.add_argument("certificate", metavar="CERT", type=Path, help="PEM or DER certificate")
    add.set_defaults(func=_add)

    listing = commands.add_parser("list", help="list the store")
    listing.add_argument("--db", required=True, type=Path, help="certificate store")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=_list)

    delete = commands.add_parser("delete", help="delete certificates from the store")
    delete.add_argument("--db", required=True, type=Path, help="certificate store")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("--serial", help="serial number in hex (colons allowed)")
    which.add_argument("--id", type=int, help="row id as 'tvs list' shows it")
    delete.add_argument("--issuer", help="with --serial: only the certificate of this issuer")
    delete.set_defaults(func=_delete)

    query = commands.add_parser("query", help="ask a TVS server about a certificate, as a phone does")
    query.add_argument("server", metavar="HOST[:PORT]", help="the TVS server (port 2445 by default)")
    query.add_argument("--model", help="the asking phone's model, e.g. CP-8861 (with --mac)")
    query.add_argument("--mac", help="the asking phone's MAC address, e.g. B000B4BA0AEE (with --model)")
    query.add_argument("--device", help="instead of --model/--mac: the TVS device name, "
                       "CP-<model>-SEP<MAC>, e.g. CP-8861-SEPB000B4BA0AEE")
    query.add_argument("--models-dir", action="append", default=[], metavar="DIR", help="extra model folder")
    query.add_argument("--server-cert", required=True, action="append", type=Path, metavar="CERT",
                       help="the TVS certificate(s) of the phone's ITL the server must present")
    query.add_argument("--cert", type=Path, help="the certificate to verify (type 1 unless --type 3)")
    query.add_argument("--subject", help="with --issuer and --serial: a QUERY (type 3)")
    query.add_argument("--issuer", help="with --subject and --serial: the issuer name")
    query.add_argument("--serial", help="hex (colons allowed)")
    query.add_argument("--type", type=int, choices=(1, 3),
                       help="1 CERT_VERIFICATION (default with --cert) or 3 QUERY_CERT")
    query.add_argument("--tls", choices=list(TLS_VERSIONS), default="1.2", help="TLS version (default 1.2)")
    query.add_argument("--timeout", type=float, default=5.0, help="seconds per step (default 5)")
    query.add_argument("--request-id", type=int, default=1001, help="request id (default 1001, as a phone)")
    query.add_argument("--client-cert", type=Path, help="certificate the phone presents (its LSC/MIC)")
    query.add_argument("--client-key", type=Path, help="private key of --client-cert")
    query.add_argument("--json", action="store_true", help="print the answer as JSON")
    query.set_defaults(func=_query)


# -- store -----------------------------------------------------------------------

def _existing_store(path: Path) -> TvsStore:
    return TvsStore(path, create=False)


def _add(args: argparse.Namespace) -> int:
    roles = [parse_tvs_role(text) for text in args.role]
    certificate = read_certificate(args.certificate)
    with TvsStore(args.db) as store:
        entry = store.add(certificate, roles, args.ttl)
    print(f"added #{entry.id} {entry.subject} serial {entry.serial.hex().upper()} "
          f"roles {', '.join(entry.role_names)} ttl {entry.ttl}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _existing_store(args.db) as store:
        entries = store.list()
    if args.json:
        print(json.dumps([entry.as_json() for entry in entries], indent=2))
        return 0
    if not entries:
        print("no certificates")
    for entry in entries:
        print(f"#{entry.id}  {entry.subject}\n    issuer  {entry.issuer}\n"
              f"    serial  {entry.serial.hex().upper()}\n    roles   {', '.join(entry.role_names)}"
              f"  ttl {entry.ttl}\n    sha256  {entry.sha256.upper()}")
    return 0


def _serial(text: str) -> bytes:
    cleaned = re.sub(r"[\s:]", "", text)
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    problem = f"serial {text!r} is not hexadecimal"
    if not cleaned:
        raise UsageError(problem)
    try:
        return bytes.fromhex(cleaned if len(cleaned) % 2 == 0 else "0" + cleaned)
    except ValueError:
        raise UsageError(problem) from None


def _delete(args: argparse.Namespace) -> int:
    if args.issuer is not None and args.serial is None:
        raise UsageError("--issuer goes with --serial")
    serial = None if args.serial is None else _serial(args.serial)
    with _existing_store(args.db) as store:
        deleted = store.delete(id=args.id, serial=serial, issuer=args.issuer)
    if not deleted:
        print("phonetrust: no certificate matches", file=sys.stderr)
        return 1
    for entry in deleted:
        print(f"deleted #{entry.id} {entry.subject} serial {entry.serial.hex().upper()}")
    return 0


# -- serve -----------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> int:
    _existing_store(args.db).close()
    if args.ctl is not None:
        _check_ctl(args.ctl)
    settings = TvsServerSettings(host=args.host, port=args.port, min_tls=args.min_tls,
                                 max_clients=args.max_clients)
    with contextlib.ExitStack() as stack:
        sink = None
        if args.trace == "-":
            sink = lambda line: print(line, flush=True)  # noqa: E731
        elif args.trace:
            sink, close = file_sink(args.trace)
            stack.callback(close)
        server = TvsServer(args.cert, args.key, db=args.db, ctl=args.ctl, settings=settings, trace=sink)
        asyncio.run(_serve_until_signalled(server))
    return 0


def _check_ctl(path: Path) -> None:
    """Refuse, before listening, a --ctl that is not a CTL: the server would answer every query "not found"."""
    if not path.is_file():
        raise UsageError(f"--ctl {path}: no such file")
    trust_list = read_trust_list(path, what="CTL")
    if trust_list.kind not in (FileKind.CTL, FileKind.TLV):
        raise UsageError(f"--ctl {path}: an {trust_list.kind.label} file, not a CTL")


async def _serve_until_signalled(server: TvsServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    port = await server.start()
    print(f"phonetrust: TVS listening on {server.settings.host}:{port}", file=sys.stderr, flush=True)
    await server.serve_until(stop)
    print("phonetrust: TVS stopped", file=sys.stderr, flush=True)


# -- query -----------------------------------------------------------------------

def _device_name(args: argparse.Namespace) -> str:
    """The DEVICE_NAME a phone sends: from --model and --mac, as every other command names a phone, or --device."""
    if args.device is not None:
        if args.model is not None or args.mac is not None:
            raise UsageError("give either --model and --mac, or --device, not both")
        if not _DEVICE_NAME.fullmatch(args.device):
            raise UsageError(f"device name {args.device!r}: expected CP-<model>-SEP<12 upper-case hex digits>")
        return args.device
    if args.model is None or args.mac is None:
        raise UsageError("name the asking phone: --model and --mac (or --device CP-<model>-SEP<MAC>)")
    return load_catalogue(args.models_dir).get(args.model).tvs_device_name(args.mac)


def _query_request(args: argparse.Namespace) -> tuple[TvsMessage, x509.Certificate | None]:
    args.device = _device_name(args)
    by_name = (args.subject, args.issuer, args.serial)
    if args.cert is not None:
        if any(value is not None for value in by_name):
            raise UsageError("give either --cert or --subject/--issuer/--serial, not both")
        der = read_certificate(args.cert)
        certificate = load_certificate(der, source=str(args.cert))
        if args.type == 3:
            return TvsMessage.query_request(args.request_id, args.device, cucm_name(certificate.subject),
                                            cucm_name(certificate.issuer),
                                            serial_to_bytes(certificate.serial_number)), certificate
        return TvsMessage.verification_request(args.request_id, args.device, der), certificate
    if any(value is None for value in by_name):
        raise UsageError("give --cert, or all of --subject, --issuer and --serial")
    if args.type == 1:
        raise UsageError("--type 1 needs the whole certificate (--cert)")
    return TvsMessage.query_request(args.request_id, args.device, args.subject, args.issuer,
                                    _serial(args.serial)), None


def _query(args: argparse.Namespace) -> int:
    request, sent = _query_request(args)
    pinned = [read_certificate(path) for path in args.server_cert]
    if (args.client_cert is None) != (args.client_key is None):
        raise UsageError("--client-cert and --client-key go together")
    identity = None if args.client_cert is None else ClientIdentity(args.client_cert, args.client_key)
    settings = TvsClientSettings(tls_versions=(args.tls,), connect_timeout=args.timeout,
                                 handshake_timeout=args.timeout, response_timeout=args.timeout,
                                 identity=identity)
    result = ask_tvs([TvsMember.parse(args.server)], request, pinned, settings)
    report = _report(result, sent)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if result.response is None:
        attempt = result.attempts[-1]
        message = f"no answer from TVS {attempt.server}: {attempt.outcome.value}: {attempt.error}"
        if result.outcome is ConnectionOutcome.UNTRUSTED_SERVER:
            message += " (check --server-cert)"
        raise TransportError(message)
    return 0 if result.response.status == 0 else 1


def _certificate_json(certificate: x509.Certificate | None) -> dict[str, str] | None:
    if certificate is None:
        return None
    return {"subject": cucm_name(certificate.subject), "issuer": cucm_name(certificate.issuer),
            "serial": serial_to_bytes(certificate.serial_number).hex().upper()}


def _report(result: TvsResult, sent: x509.Certificate | None) -> dict[str, object]:
    response = result.response
    returned = None
    if response is not None and response.certificate is not None:
        with contextlib.suppress(CertificateError):
            returned = load_certificate(response.certificate, source="returned certificate")
    shown = returned or sent
    return {
        "server": result.attempts[-1].server if result.attempts else None,
        "type": int(result.request.type),
        "request_id": result.request.request_id,
        "status": None if response is None else response.status,
        "roles": None if response is None or response.roles is None else list(response.roles),
        "role_names": (None if response is None or response.roles is None
                       else [role_name(role) for role in response.roles]),
        "ttl": None if response is None else response.ttl,
        "certificate": _certificate_json(shown) if shown is not None else (
            {"subject": result.request.subject, "issuer": result.request.issuer,
             "serial": result.request.serial.hex().upper()}
            if result.request.type is MessageType.QUERY_CERT_REQ else None),
        "certificate_returned": returned is not None,
        "attempts": [attempt.as_json() for attempt in result.attempts],
    }


def _print_report(report: dict[str, object]) -> None:
    if report["status"] is None:
        return
    attempts = report["attempts"]
    tls = attempts[-1]["tls_version"] if attempts else None  # type: ignore[index]
    print(f"server:  {report['server']} ({tls})")
    print(f"status:  {report['status']} ({_STATUS_TEXT.get(report['status'], 'unknown')})")  # type: ignore[arg-type]
    names = report["role_names"]
    print(f"roles:   {', '.join(names) if names else '-'}")  # type: ignore[arg-type]
    print(f"ttl:     {report['ttl'] if report['ttl'] is not None else '-'}")
    certificate = report["certificate"]
    if certificate:
        origin = "returned" if report["certificate_returned"] else "asked"
        print(f"subject: {certificate['subject']} ({origin})")  # type: ignore[index]
        print(f"issuer:  {certificate['issuer']}")  # type: ignore[index]
        print(f"serial:  {certificate['serial']}")  # type: ignore[index]
