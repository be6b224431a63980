"""``phonetrust lab``: an emulated CUCM cluster in a folder and the CUCM operations on it (docs/lab.md).

Every subcommand but ``init`` works on ``--lab DIR`` (default: the current
folder). Texts are CUCM's where public documents show them (Cisco TAC
118893). Exit status: 0 done; 1 CUCM would refuse the operation in the lab's
state (one line on stderr); 2 wrong arguments or not a lab folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import threading
from pathlib import Path

from phone.errors import PhonetrustError, UsageError
from phone.lab import Lab, RELEASES, wall_clock
from phone.lab.devices import CAPF_KEYS, CAPF_OPERATIONS, SECURITY_PROFILES
from phone.lab.state import MAX_NODES, SERVICES, TLS_VERSIONS, TRUST_STORES, Names
from phone.lab.releases import DEFAULT_RELEASE

_DESCRIPTION = (
    "An emulated CUCM cluster kept in a folder (certificates, CTL/ITL files, TFTP folders, TVS store) "
    "and the CUCM operations on it. Nothing asks 'Do you want to continue? (y/n)': this is a test tool, "
    "every command runs as if answered 'y'. Exit 0: done; 1: CUCM would refuse the operation; "
    "2: wrong arguments or not a lab folder."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    lab = subparsers.add_parser("lab", help="an emulated CUCM cluster: files, operations, phones' pages, and its TFTP, "
                                   "TVS, CAPF, HTTP(S) and CallManager servers",
                                description=_DESCRIPTION)
    groups = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND", parser_class=type(lab))
    groups.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lab", type=Path, default=Path("."), metavar="DIR",
                        help="the lab folder (default: the current folder)")
    common.add_argument("--now", metavar="ISO8601", help="run at this time instead of the wall clock "
                        "(certificate validity, file timestamps), e.g. 2015-03-06T19:45:13+01:00")

    timing = argparse.ArgumentParser(add_help=False)
    timing.add_argument("--now", metavar="ISO8601", help="create at this time instead of the wall clock")

    init = groups.add_parser("init", parents=[timing], help="create a lab folder",
                             description="Create a lab: a publisher and N-1 subscribers with their "
                             "certificates, ITL files and TVS store, in non-secure mode.")
    init.add_argument("dir", type=Path, metavar="DIR", help="a new (or empty) folder")
    init.add_argument("--nodes", type=int, default=2, help=f"publisher + subscribers, 1-{MAX_NODES} (default 2)")
    init.add_argument("--release", default=DEFAULT_RELEASE, choices=RELEASES,
                      help=f"CUCM release (default {DEFAULT_RELEASE})")
    init.add_argument("--key-size", type=int, default=2048, choices=(1024, 2048, 4096),
                      help="RSA key size of the node certificates (1024 reproduces the file sizes of Cisco TAC 118893)")
    init.add_argument("--hostname-prefix", help="host names PREFIX-pub, PREFIX-sub1, … (default cucm-<1051>-a)")
    init.add_argument("--first-ip", default="192.0.2.11", help="the publisher's address; subscribers follow "
                      "(default 192.0.2.11, RFC 5737 documentation range)")
    defaults = Names()
    for flag, field in (("--ou", "organizational_unit"), ("--o", "organization"), ("--l", "locality"),
                        ("--st", "state"), ("--c", "country")):
        init.add_argument(flag, dest=field, default=getattr(defaults, field),
                          help=f"certificate {flag[2:].upper()} (default {getattr(defaults, field)})")
    init.set_defaults(func=_init)

    ctl = groups.add_parser("ctl", help="utils ctl …, file delete tftp CTLFile.tlv, the CTL client")
    ctl_commands = ctl.add_subparsers(dest="ctl_command", metavar="SUBCOMMAND", parser_class=type(lab))
    ctl_commands.required = True
    set_cluster = ctl_commands.add_parser("set-cluster", parents=[common],
                                          help="utils ctl set-cluster mixed-mode|non-secure-mode")
    set_cluster.add_argument("mode", choices=("mixed-mode", "non-secure-mode"), help="the cluster security mode")
    set_cluster.set_defaults(func=lambda args: _operate(args, "ctl", "set-cluster", args.mode))
    update = ctl_commands.add_parser("update", parents=[common], help="utils ctl update CTLFile (tokenless)")
    update.set_defaults(func=lambda args: _operate(args, "ctl", "update"))
    delete = ctl_commands.add_parser("delete", parents=[common], help="file delete tftp CTLFile.tlv")
    delete.add_argument("--node", help="only on this node (index or host name; default every node)")
    delete.set_defaults(func=lambda args: _operate(args, "ctl", "delete", *_option("--node", args.node)))
    client = ctl_commands.add_parser("client", parents=[common],
                                     help="the CTL client with hardware eTokens (Update CTL File)")
    client.add_argument("--token", action="append", required=True, metavar="NAME",
                        help="an eToken of the lab, in the order inserted; the first must be in the current CTL")
    client.add_argument("--sign-with", metavar="NAME", help="the token that signs (default: the last one)")
    client.set_defaults(func=lambda args: _operate(args, "ctl", "client", *_option("--sign-with", args.sign_with),
                                                   *(word for token in args.token for word in ("--token", token))))
    ctl_reset = ctl_commands.add_parser(
        "reset", parents=[common], help="utils ctl reset localkey",
        description="utils ctl reset localkey: every node serves a CTL signed by the publisher's CallManager "
        "key instead of ITLRecovery or an eToken. Phones take it only if they trust that certificate.")
    ctl_reset.add_argument("key", choices=("localkey",), help="the key to sign with")
    ctl_reset.set_defaults(func=lambda args: _operate(args, "ctl", "reset", args.key))

    etoken = groups.add_parser("etoken", help="hardware eTokens issued by the lab's Cisco Manufacturing CA")
    etoken_commands = etoken.add_subparsers(dest="etoken_command", metavar="SUBCOMMAND", parser_class=type(lab))
    etoken_commands.required = True
    new = etoken_commands.add_parser("new", parents=[common], help="make an eToken; write its certificate")
    new.add_argument("name", metavar="NAME", help="the token's name in the lab (SAST-ADN<8 hex> becomes its CN)")
    new.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write its certificate (PEM)")
    new.set_defaults(func=lambda args: _operate(args, "etoken", "new", args.name, "--out", str(args.out)))

    cert = groups.add_parser("cert", help="set cert regen …, certificate export, upload and delete")
    cert_commands = cert.add_subparsers(dest="cert_command", metavar="SUBCOMMAND", parser_class=type(lab))
    cert_commands.required = True
    regenerate = cert_commands.add_parser(
        "regenerate", parents=[common], help="set cert regen SERVICE",
        description="set cert regen SERVICE: a new key and serial. The ITLs change at once (CallManager, "
        "CallManager-ECDSA, TVS, CAPF, ITLRecovery), the CTL only at the next 'lab ctl update'. A new CAPF "
        "certificate joins CAPF-trust and CallManager-trust and the previous one stays until 'lab cert delete'. "
        "The lines printed say which restarts, resets and CTL/ITL steps are still owed (docs/lab.md).")
    regenerate.add_argument("service", choices=SERVICES, help="the certificate to regenerate")
    regenerate.add_argument("--node", help="index or host name (default the publisher)")
    regenerate.add_argument("--key-size", type=int, choices=(1024, 2048, 4096),
                            help="RSA key size (default the lab's; the ECDSA certificates are always EC P-256)")
    regenerate.set_defaults(func=lambda args: _operate(
        args, "cert", "regenerate", args.service, *_option("--node", args.node),
        *_option("--key-size", args.key_size)))
    upload = cert_commands.add_parser("upload", parents=[common], help="upload a certificate to a trust store")
    upload.add_argument("store", choices=tuple(TRUST_STORES), help="the trust store to upload into")
    upload.add_argument("file", type=Path, metavar="FILE", help="PEM or DER certificate")
    upload.set_defaults(func=lambda args: _operate(args, "cert", "upload", args.store, str(args.file)))
    export_cert = cert_commands.add_parser("export", parents=[common], help="write a certificate of the lab as PEM",
                                           description="Write SERVICE's certificate of one node as PEM.")
    export_cert.add_argument("service", choices=SERVICES, help="the certificate to write")
    export_cert.add_argument("--node", help="index or host name (default the publisher)")
    export_cert.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write it (PEM)")
    export_cert.set_defaults(func=lambda args: _operate(args, "cert", "export", args.service,
                                                        *_option("--node", args.node), "--out", str(args.out)))
    delete_cert = cert_commands.add_parser(
        "delete", parents=[common], help="delete certificates from a trust store by subject CN",
        description="Delete every certificate whose subject CN is SUBJECT-CN from TRUSTSTORE, as OS "
        "Administration's Certificate Management does; CUCM's own entries (the CAPF certificates, the "
        "manufacturing CA) can be deleted too.")
    delete_cert.add_argument("store", choices=tuple(TRUST_STORES), metavar="TRUSTSTORE",
                             help=f"the trust store: {', '.join(TRUST_STORES)}")
    delete_cert.add_argument("cn", metavar="SUBJECT-CN", help="the subject common name, e.g. CAPF-1a2b3c4d")
    delete_cert.set_defaults(func=lambda args: _operate(args, "cert", "delete", args.store, args.cn))

    device = groups.add_parser("device", help="phones' pages: security profile, encrypted configuration, CAPF")
    device_commands = device.add_subparsers(dest="device_command", metavar="SUBCOMMAND", parser_class=type(lab))
    device_commands.required = True
    device_set = device_commands.add_parser(
        "set", parents=[common], help="create or change a phone's page",
        description="Create or change a phone's page (Phone Configuration: Device Security Profile, TFTP "
        "Encrypted Config, the CAPF section). Options left out keep their value. A Certificate Operation "
        "other than none becomes 'pending' until the phone's next CAPF session; none clears it. A phone "
        "the lab never heard of boots as auto-registration makes it: non-secure, nothing pending.")
    device_set.add_argument("name", metavar="NAME", help="SEP followed by 12 upper-case hex digits")
    device_set.add_argument("--model", help="the phone model, e.g. CP-8861 (required for a new device)")
    device_set.add_argument("--security-profile", choices=SECURITY_PROFILES,
                            help="device security mode: non-secure (1), authenticated (2), encrypted (3)")
    device_set.add_argument("--encrypted-config", choices=("on", "off"),
                            help="the profile's 'TFTP Encrypted Config'")
    device_set.add_argument("--capf-operation", choices=CAPF_OPERATIONS,
                            help="Certificate Operation: install, upgrade, delete, fetch (Troubleshoot), none")
    device_set.add_argument("--capf-auth", metavar="MODE",
                            help="Authentication Mode: null-string, auth-string:DIGITS (4-10 digits the user types "
                            "on the phone), existing-lsc, existing-mic")
    device_set.add_argument("--capf-key", choices=CAPF_KEYS, help="the key the phone makes for its LSC")
    device_set.set_defaults(func=lambda args: _operate(
        args, "device", "set", args.name, *_option("--model", args.model),
        *_option("--security-profile", args.security_profile), *_option("--encrypted-config", args.encrypted_config),
        *_option("--capf-operation", args.capf_operation), *_option("--capf-auth", args.capf_auth),
        *_option("--capf-key", args.capf_key)))
    device_show = device_commands.add_parser("show", parents=[common], help="a phone's page")
    device_show.add_argument("name", metavar="NAME", help="SEP followed by 12 upper-case hex digits")
    device_show.add_argument("--json", action="store_true", help="print it as one JSON object")
    device_show.set_defaults(func=lambda args: _operate(args, "device", "show", args.name,
                                                        *(("--json",) if args.json else ())))
    device_list = device_commands.add_parser("list", parents=[common], help="every configured phone")
    device_list.add_argument("--json", action="store_true", help="print them as one JSON array")
    device_list.set_defaults(func=lambda args: _operate(args, "device", "list", *(("--json",) if args.json else ())))

    itl = groups.add_parser("itl", help="utils itl reset localkey")
    itl_commands = itl.add_subparsers(dest="itl_command", metavar="SUBCOMMAND", parser_class=type(lab))
    itl_commands.required = True
    reset = itl_commands.add_parser("reset", parents=[common], help="utils itl reset localkey")
    reset.add_argument("key", choices=("localkey",), help="the key to sign with")
    reset.set_defaults(func=lambda args: _operate(args, "itl", "reset", args.key))

    tftp = groups.add_parser("tftp", help="restart the TFTP service (the normal ITL replaces a reset ITL)")
    tftp_commands = tftp.add_subparsers(dest="tftp_command", metavar="SUBCOMMAND", parser_class=type(lab))
    tftp_commands.required = True
    restart = tftp_commands.add_parser("restart", parents=[common], help="restart Cisco Tftp on every node")
    restart.set_defaults(func=lambda args: _operate(args, "tftp", "restart"))

    rollback = groups.add_parser("rollback", parents=[common],
                                 help='"Prepare Cluster for Rollback to pre-8.0" on|off')
    rollback.add_argument("state", choices=("on", "off"), help="Prepare Cluster for Rollback on or off")
    rollback.set_defaults(func=lambda args: _operate(args, "rollback", args.state))

    show = groups.add_parser("show", parents=[common], help="show ctl | show itl, as CUCM prints them")
    show.add_argument("what", choices=("ctl", "itl"), help="the file to show")
    show.add_argument("--node", help="index or host name (default the publisher)")
    show.set_defaults(func=_show)

    param = groups.add_parser("param", help="enterprise parameters and cluster settings")
    param_commands = param.add_subparsers(dest="param_command", metavar="SUBCOMMAND", parser_class=type(lab))
    param_commands.required = True
    set_param = param_commands.add_parser(
        "set", parents=[common], help="tftp-file-signature-algorithm sha1|sha512, tls-min-version 1.0|1.1|1.2",
        description="tftp-file-signature-algorithm sha1|sha512 ('TFTP File Signature Algorithm': the digest of "
        "every signed file; the CTL takes it at its next update); tls-min-version "
        f"{'|'.join(TLS_VERSIONS)} ('set tls min-version': what the lab's TVS servers accept).")
    set_param.add_argument("name", choices=("tftp-file-signature-algorithm", "tls-min-version"),
                           help="the enterprise parameter")
    set_param.add_argument("value", help="its new value")
    set_param.set_defaults(func=lambda args: _operate(args, "param", "set", args.name, args.value))

    serve = groups.add_parser(
        "serve", parents=[common], help="serve TFTP, TVS, CAPF, HTTP(S) and CallManager signalling until SIGTERM/SIGINT",
        description="Serve one node's TFTP folder and per-device files (CTLSEP/ITLSEP<MAC>.tlv, "
        "SEP<MAC>.cnf.xml[.sgn]), a TVS server per node, the publisher's CAPF (the LSCs of the phones "
        "set with 'phonetrust lab device set', docs/capf.md), the same files over HTTP (6970) and HTTPS "
        "(6971), and a CallManager per node for registration (SIP, SIP over TLS, SCCP, SCCP over TLS), in "
        "the foreground until SIGTERM or SIGINT. For --tftp-port and --tvs-port, 0 (the default) lets the OS "
        "choose; for CAPF, HTTP, HTTPS and the CallManager ports 0 turns them off. The ports are printed. A "
        "fixed --tvs-port N puts node i on N+i. Changes made with other 'phonetrust lab' commands are served "
        "at once.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--tftp-port", type=int, default=0, metavar="N",
                       help="the TFTP node's UDP port (default 0: any free port, printed)")
    serve.add_argument("--tvs-port", type=int, default=0, metavar="N",
                       help="the publisher's TVS port, node i on N+i (default 0: any free port for every node)")
    serve.add_argument("--http-port", type=int, default=6970, metavar="N",
                       help="TCP port of HTTP provisioning, the TFTP files over HTTP (default 6970; 0: off), "
                       "see docs/http.md")
    serve.add_argument("--https-port", type=int, default=6971, metavar="N",
                       help="TCP port of HTTPS provisioning, presenting the node's CallManager-ECDSA or "
                       "CallManager certificate (default 6971; 0: off)")
    serve.add_argument("--tomcat-port", type=int, default=0, metavar="N",
                       help="TCP port of HTTPS presenting the node's tomcat certificate and requiring a client "
                       "certificate CallManager-trust vouches for, as CUCM's 6972 (e.g. 6972; default 0: off, "
                       "as phones provision on 6970/6971)")
    serve.add_argument("--node", help="the TFTP node to serve as (default the publisher)")
    serve.add_argument("--advertise", metavar="ADDR",
                       help="the address configurations give phones for TVS (default --host)")
    serve.add_argument("--trace", metavar="FILE", help="append the TVS servers' CUCM trace to FILE ('-': stdout)")
    serve.add_argument("--no-tvs", action="store_true", help="start with TVS down (TFTP only)")
    serve.add_argument("--capf-port", type=int, default=3804,
                       metavar="N",
                       help="the publisher's CAPF port, where phones get their LSC (default 3804; 0: no CAPF "
                            "server, configurations still name the publisher on 3804 as CUCM's do), see docs/capf.md")
    serve.add_argument("--sip-port", type=int, default=5060, metavar="N",
                       help="the publisher's CallManager SIP port over TCP (default 5060; 0: off; other nodes "
                            "take free ports). Phones register here per docs/registration.md")
    serve.add_argument("--sip-tls-port", type=int, default=5061, metavar="N",
                       help="the publisher's SIP over TLS port (default 5061; 0: off)")
    serve.add_argument("--sccp-port", type=int, default=2000, metavar="N",
                       help="the publisher's SCCP port (default 2000; 0: off); SCCP over TLS listens on N+443")
    serve.add_argument("--signalling-trace", metavar="FILE",
                       help="append the CallManagers' SDL trace to FILE (default: callmanager-sdl.txt in the lab "
                            "folder; '-': stdout)")
    serve.add_argument("--json", action="store_true", help="print the ports as one JSON line")
    serve.set_defaults(func=_serve)

    export = groups.add_parser(
        "export", parents=[common], help="write the files a TFTP server needs to serve real phones",
        description="Write CTLFile.tlv (removed when the lab has none), ITLFile.tlv and XMLDefault.cnf.xml[.sgn] "
        "of one node, plus CTLSEP/ITLSEP<MAC>.tlv and SEP<MAC>.cnf.xml[.sgn] for each --mac (for a device "
        "with TFTP Encrypted Config, SEP<MAC>.cnf.xml.enc.sgn and the stub as SEP<MAC>.cnf.xml[.sgn]). A plain TFTP "
        "server cannot make per-device files for MACs it was not given: name every phone with --mac, or map "
        "CTLSEP*.tlv/ITLSEP*.tlv to CTLFile.tlv/ITLFile.tlv on the server.")
    export.add_argument("--tftp-root", required=True, type=Path, metavar="OUT", help="the folder to write the files into")
    export.add_argument("--node", help="the TFTP node (default the publisher)")
    export.add_argument("--mac", action="append", default=[], help="a phone's MAC; repeatable")
    export.add_argument("--tvs-host", help="the TVS address configurations list (default each node's address)")
    export.add_argument("--tvs-port", type=int, default=2445, help="with --tvs-host: the publisher's TVS port "
                        "(node i on PORT+i; default 2445)")
    export.set_defaults(func=_export)

    status = groups.add_parser("status", parents=[common], help="the lab at a glance")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=_status)


# -- helpers ---------------------------------------------------------------------------

def _clock(text: str | None):
    if text is None:
        return wall_clock
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now {text!r} is not an ISO 8601 time (e.g. 2015-03-06T19:45:13+01:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return lambda: moment


def _open(args: argparse.Namespace) -> Lab:
    return Lab.open(args.lab, clock=_clock(args.now))


def _print(lines) -> None:
    for line in lines:
        print(line)


def _option(flag: str, value: object) -> tuple[str, ...]:
    return () if value is None else (flag, str(value))


def _operate(args: argparse.Namespace, *words: str) -> int:
    """A CUCM operation through the lab's dispatcher (``Lab.run``): the same words scenarios use."""
    _print(_open(args).run(words).lines)
    return 0


# -- commands --------------------------------------------------------------------------

def _init(args: argparse.Namespace) -> int:
    names = Names(args.organizational_unit, args.organization, args.locality, args.state, args.country)
    lab = Lab.create(args.dir, nodes=args.nodes, release=args.release, clock=_clock(args.now),
                     key_bits=args.key_size, names=names, first_ip=args.first_ip,
                     hostname_prefix=args.hostname_prefix)
    state = lab.state
    print(f"Lab created in {lab.path}: CUCM {state.release.name}, {len(state.nodes)} node(s), "
          f"{state.key_bits}-bit keys, ClusterSecurityMode 0")
    for node in state.nodes:
        role = "publisher" if node.publisher else "subscriber"
        services = ", ".join(state.release.node_services(node.publisher))
        print(f"  {node.name}  {node.ip}  {role}: {services}")
    print(f"ITL files signed by {state.release.itl_signer}; no CTL (non-secure mode)")
    return 0


def _show(args: argparse.Namespace) -> int:
    print(_open(args).show(args.what, args.node), end="")
    return 0


def _export(args: argparse.Namespace) -> int:
    lab = _open(args)
    addresses = None
    if args.tvs_host:
        if not 0 < args.tvs_port < 65536 - len(lab.nodes):
            raise UsageError(f"--tvs-port {args.tvs_port} is not a TCP port")
        addresses = [(args.tvs_host, args.tvs_port + index) for index in range(len(lab.nodes))]
    written = lab.export(args.tftp_root, node=args.node, macs=args.mac, tvs_addresses=addresses)
    for name in written:
        print(args.tftp_root / name)
    if "CTLFile.tlv" not in written:
        print("no CTLFile.tlv: the lab has no CTL (phones get 'File not found', as outside mixed mode)")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _open(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    mode = "Mixed Mode" if status["cluster_security_mode"] else "Non-Secure Mode"
    print(f"{status['path']}: CUCM {status['release']}, ClusterSecurityMode {status['cluster_security_mode']} "
          f"({mode})")
    ctl = status["ctl"]
    print("CTL: none" if ctl is None else f"CTL: {ctl['kind']}, signed by {ctl['signer']} "
          f"(serial {ctl['signer_serial']}), SHA1 {ctl['sha1']}")
    for node in status["nodes"]:
        print(f"{node['name']} {node['ip']}: ITL signed by {node['itl']['signer']} "
              f"(serial {node['itl']['signer_serial']}), SHA1 {node['itl']['sha1']}")
        for service, certificate in node["certificates"].items():
            print(f"  {service:12} serial {certificate['serial']}")
    params = status["params"]
    print(f"TFTP File Signature Algorithm {params['tftp_file_signature_algorithm'].upper()}, TLS min "
          f"{params['tls_min_version']}, rollback {'on' if params['rollback'] else 'off'}, "
          f"reset ITL {'served' if status['itl_reset'] else 'no'}")
    for token in status["etokens"]:
        print(f"eToken {token['name']}: {token['common_name']}")
    for upload in status["uploads"]:
        print(f"{upload['store']}: {upload['file']}")
    for store, names in status["trust"].items():
        print(f"{store} holds: {', '.join(names) or 'nothing'}")
    return 0


#: The CallManagers' SDL trace, in the lab folder, unless --signalling-trace says otherwise.
SIGNALLING_TRACE = "callmanager-sdl.txt"


def _serve(args: argparse.Namespace) -> int:
    for flag, port in (("--tftp-port", args.tftp_port), ("--tvs-port", args.tvs_port),
                       ("--capf-port", args.capf_port), ("--http-port", args.http_port),
                       ("--https-port", args.https_port), ("--tomcat-port", args.tomcat_port),
                       ("--sip-port", args.sip_port),
                       ("--sip-tls-port", args.sip_tls_port)):
        if not 0 <= port < 65536:
            raise UsageError(f"{flag} {port} is not a port")
    if not 0 <= args.sccp_port < 65536 - 443:
        raise UsageError(f"--sccp-port {args.sccp_port} is not a port with room for SCCP over TLS 443 above it")
    if args.advertise is None and args.host in ("", "0.0.0.0", "::"):
        raise UsageError(f"--host {args.host or repr(args.host)} listens on every address: give --advertise ADDR, "
                         "the address phones reach the lab at (it goes into their configuration for TVS)")
    lab = _open(args)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    sink, close = None, None
    if args.trace == "-":
        sink = lambda line: print(line, flush=True)  # noqa: E731
    elif args.trace:
        from phone.console.tvs_trace import file_sink

        sink, close = file_sink(args.trace)
    from phone.console.tvs_trace import file_sink as signalling_file_sink

    if args.signalling_trace == "-":
        signalling_sink, signalling_close = (lambda line: print(line, flush=True)), None
    else:
        signalling_sink, signalling_close = signalling_file_sink(
            args.signalling_trace or str(lab.path / SIGNALLING_TRACE))
    try:
        with lab.serving(host=args.host, tftp_port=args.tftp_port, tvs_port=args.tvs_port, tftp_node=args.node,
                         advertise=args.advertise, tvs=not args.no_tvs, trace=sink,
                         capf_port=args.capf_port or None, http_port=args.http_port or None,
                         https_port=args.https_port or None, tomcat_port=args.tomcat_port or None,
                         sip_port=args.sip_port or None, sip_tls_port=args.sip_tls_port or None,
                         sccp_port=args.sccp_port or None, signalling_trace=signalling_sink) as servers:
            _announce(lab, servers, args)
            last_error = None
            while not stop.wait(1.0):
                try:
                    servers.sync()
                    last_error = None
                except PhonetrustError as error:
                    if str(error) != last_error:
                        print(f"phonetrust: {error}", file=sys.stderr, flush=True)
                    last_error = str(error)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if close is not None:
            close()
        if signalling_close is not None:
            signalling_close()
    print("phonetrust: lab servers stopped", file=sys.stderr, flush=True)
    return 0


def _announce(lab: Lab, servers, args: argparse.Namespace) -> None:
    running = servers.tvs_running()
    if args.json:
        print(json.dumps({
            "lab": str(lab.path), "tftp": {"host": servers.host, "port": servers.tftp_port,
                                           "node": servers.tftp_node.name},
            "tvs": [{"node": name, "host": servers.host, "port": port, "running": running}
                    for name, port in servers.tvs_ports.items()],
            "capf": ({"node": lab.nodes[0].name, "host": servers.host, "port": servers.capf_port}
                     if servers.capf_port else None),
            "http": None if servers.http_port is None else {"host": servers.host, "port": servers.http_port},
            "https": None if servers.https_port is None else {"host": servers.host, "port": servers.https_port},
            "tomcat": None if servers.tomcat_port is None else {"host": servers.host, "port": servers.tomcat_port},
            "callmanager": [{"node": name, "host": servers.host, **ports}
                            for name, ports in servers.signalling_ports.items()],
        }), flush=True)
        return
    print(f"TFTP {servers.host}:{servers.tftp_port} serving as {servers.tftp_node.name}", flush=True)
    for scheme, port in (("HTTP", servers.http_port), ("HTTPS", servers.https_port),
                         ("HTTPS-tomcat", servers.tomcat_port)):
        if port is not None:
            print(f"{scheme} {servers.host}:{port} serving as {servers.tftp_node.name}", flush=True)
    for name, port in servers.tvs_ports.items():
        print(f"TVS {servers.host}:{port} {name}{'' if running else ' (down)'}", flush=True)
    if servers.capf_port:
        print(f"CAPF {servers.host}:{servers.capf_port} {lab.nodes[0].name}", flush=True)
    for name, ports in servers.signalling_ports.items():
        listening = ", ".join(f"{listener} {port}" for listener, port in ports.items())
        print(f"CallManager {servers.host} {name}: {listening}", flush=True)
