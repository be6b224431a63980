"""`phonetrust show FILE [--json] [--cert CERT]`: CUCM's `show ctl` for any CTL, ITL or .sgn file.

`phonetrust show OLD NEW [--json]`: what changed between two trust lists, record by
record (``phone.wire.tldiff``); exit 0 the same, 1 different, 2 not a valid file.

Exit status: 0 parsed and verified; 1 parsed but the signature is
not valid (or, for a .sgn without --cert, could not be checked); 2 not a valid
file, with one line on stderr saying why.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from phone.wire.certs import load_certificate
from phone.errors import PhonetrustError, TrustListFormatError, UsageError
from phone.wire.showctl import render_show_ctl, show_ctl_json, signed_time
from phone.wire.signing import verify
from phone.wire.tldiff import diff_json, diff_trust_lists, render_diff
from phone.wire.tlv import FileKind, TrustList

#: Larger than any trust list (16-bit header and record lengths, a few hundred
#: records) and than provisioning .sgn files; protects against reading a disk image.
MAX_FILE_BYTES = 256 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show",
        help="dump a CTL, ITL or .sgn file as CUCM's `show ctl` does",
        description="Parse a CTL, ITL or .sgn file, check its signature and print it in CUCM's "
        "`show ctl` layout (or as JSON). Exit 0: verified; 1: signature not valid; 2: not a valid file. "
        "With two files, print what changed from the first to the second, record by record "
        "(records matched by serial number and issuer). Exit 0: the same; 1: different; 2: not a valid file.",
    )
    parser.add_argument("file", type=Path, help="CTLFile.tlv, ITLFile.tlv, CTLSEP<MAC>.tlv, *.sgn …")
    parser.add_argument("other", type=Path, nargs="?", metavar="NEW",
                        help="a second trust list: print what changed from FILE to NEW, record by record "
                        "(exit 0 the same, 1 different, 2 not a valid file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--cert", type=Path, help="signer certificate (PEM or DER), needed for .sgn files")
    parser.set_defaults(func=run)


def read_trust_list(path: Path, *, what: str = "CTL, ITL or .sgn") -> TrustList:
    """Read and parse a file, turning every failure into one PhonetrustError line."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PhonetrustError(f"{path}: {size} bytes is too large for a trust list or signed file")
    try:
        return TrustList.from_bytes(path.read_bytes())
    except TrustListFormatError as error:
        raise PhonetrustError(f"{path}: not a valid {what} file: {error}") from None


def run(args: argparse.Namespace) -> int:
    if args.other is not None:
        return run_diff(args)
    trust_list = read_trust_list(args.file)
    certificate = None
    if args.cert is not None:
        certificate = load_certificate(args.cert.read_bytes(), source=str(args.cert))
    if trust_list.kind is FileKind.SGN and certificate is None:
        verification = None
    else:
        verification = verify(trust_list, certificate=certificate)
    if args.json:
        print(json.dumps(show_ctl_json(trust_list, verification), indent=2))
    else:
        # CUCM writes the file when it signs it; a copy's mtime says when it was copied.
        modified = signed_time(trust_list) or datetime.datetime.fromtimestamp(args.file.stat().st_mtime).astimezone()
        print(render_show_ctl(trust_list, verification, modified=modified), end="")
    return 0 if verification is not None and verification.valid else 1


def run_diff(args: argparse.Namespace) -> int:
    """`show OLD NEW`: exit 0 when nothing differs, 1 when something does, 2 when a file is not valid."""
    if args.cert is not None:
        raise UsageError("--cert verifies one file; `show OLD NEW` compares two and verifies neither")
    old, new = read_trust_list(args.file), read_trust_list(args.other)
    difference = diff_trust_lists(old, new)
    names = {"old_name": str(args.file), "new_name": str(args.other)}
    if args.json:
        print(json.dumps(diff_json(difference, old, new, **names), indent=2))
    else:
        print(render_diff(difference, old, new, **names), end="")
    return 0 if difference.same else 1
