"""CUCM's `show ctl` dump of a trust list, and the same facts as JSON (docs/trust-lists.md).

The text follows CUCM's layout so that it can be laid beside the real command's
output: the checksum lines, "Length of CTL file", "Parse CTL File", the
BYTEPOS / TAG / LENGTH / VALUE rows on 8-column tab stops (containers show a
LENGTH of 2 and their own length as VALUE), Cisco's spellings
``DIGESTALGORTITHM`` and ``SIGNATUREALGORTITHM``, the signature as rows of 8
hex bytes with leading zeros dropped, "CTL Record #:n", FUNCTION as text, the
certificate as its SHA-1 and "(SHA1 Hash HEX)", the eToken lines on SAST
records and the verification line at the end. Like CUCM it prints no value for
DIGESTALGORTITHM, FILENAME, TIMESTAMP, PUBLICKEY, SIGNATURE (record) and
IPADDRESS; the JSON view carries every value.
"""

from __future__ import annotations

import datetime
from typing import Any

from phone.wire.names import serial_colon_hex, serial_hex
from phone.wire.signing import Verification
from phone.wire.tlv import Element, FileKind, HeaderTag, Record, RecordTag, Role, TrustList, role_name

_HEADER_TAG_NAMES = {
    HeaderTag.SIGNER_ID: "SIGNERID",
    HeaderTag.SIGNER_NAME: "SIGNERNAME",
    HeaderTag.SERIAL_NUMBER: "SERIALNUMBER",
    HeaderTag.CA_NAME: "CANAME",
    HeaderTag.SIGNATURE_INFO: "SIGNATUREINFO",
    HeaderTag.DIGEST_ALGORITHM: "DIGESTALGORTITHM",
    HeaderTag.SIGNATURE_ALGO_INFO: "SIGNATUREALGOINFO",
    HeaderTag.SIGNATURE_ALGORITHM: "SIGNATUREALGORTITHM",
    HeaderTag.SIGNATURE_MODULUS: "SIGNATUREMODULUS",
    HeaderTag.SIGNATURE: "SIGNATURE",
    HeaderTag.FILENAME: "FILENAME",
    HeaderTag.TIMESTAMP: "TIMESTAMP",
    HeaderTag.SIGNER_VERSION: "SIGNERVERSION",
}
_RECORD_TAG_NAMES = {
    RecordTag.RECORD_LENGTH: "RECORDLENGTH",
    RecordTag.DNS_NAME: "DNSNAME",
    RecordTag.SUBJECT_NAME: "SUBJECTNAME",
    RecordTag.FUNCTION: "FUNCTION",
    RecordTag.ISSUER_NAME: "ISSUERNAME",
    RecordTag.SERIAL_NUMBER: "SERIALNUMBER",
    RecordTag.PUBLIC_KEY: "PUBLICKEY",
    RecordTag.SIGNATURE: "SIGNATURE",
    RecordTag.CERTIFICATE: "CERTIFICATE",
    RecordTag.IP_ADDRESS: "IPADDRESS",
    RecordTag.CERT_HASH: "CERTHASH",
    RecordTag.HASH_ALGORITHM: "HASHALGORITHM",
}
#: How `show ctl` names a FUNCTION (docs/trust-lists.md: only SAST is spelled out).
_SHOWN_ROLES = {Role.SAST: "System Administrator Security Token"}


def _row(position: int | str, tag: str, length: int | str, value: str = "") -> str:
    # CUCM's columns sit on 8-column tab stops; a TAG shorter than 8 takes two tabs.
    gap = "\t\t" if len(tag) < 8 else "\t"
    return f"{position}\t{tag}{gap}{length}\t{value}".rstrip().expandtabs(8)


def _text_value(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def _signature_rows(signature: bytes) -> list[str]:
    """The signature as CUCM prints it: 8 bytes a row, hex without leading zeros, 4 columns each."""
    rows = []
    for start in range(0, len(signature), 8):
        chunk = signature[start : start + 8]
        rows.append("".join(f"{byte:x}".ljust(4) for byte in chunk).rstrip())
    return rows


def _header_rows(elements: tuple[Element, ...]) -> list[str]:
    rows: list[str] = []
    for top in elements:
        for element in top.walk():
            tag = element.tag
            if element.is_padding or tag in (HeaderTag.VERSION, HeaderTag.HEADER_LENGTH):
                continue
            name = _HEADER_TAG_NAMES.get(tag, f"TAG{tag}")
            if element.children:
                rows.append(_row(tag, name, 2, str(len(element.value))))
            elif tag in (HeaderTag.SIGNER_NAME, HeaderTag.CA_NAME):
                rows.append(_row(tag, name, len(element.value), _text_value(element.value)))
            elif tag == HeaderTag.SERIAL_NUMBER:
                rows.append(_row(tag, name, len(element.value), serial_colon_hex(element.value)))
            elif tag == HeaderTag.SIGNER_VERSION and len(element.value) == 2:
                rows.append(_row(tag, name, 2, f"{element.value[0]}.{element.value[1]}"))
            elif tag == HeaderTag.SIGNATURE:
                rows.append(_row(tag, name, len(element.value)))
                rows.extend(_signature_rows(element.value))
            else:
                rows.append(_row(tag, name, len(element.value)))
    return rows


def _record_rows(record: Record) -> list[str]:
    rows: list[str] = []
    for element in record.elements:
        tag = element.tag
        name = _RECORD_TAG_NAMES.get(tag, f"TAG{tag}")
        value = ""
        if tag == RecordTag.RECORD_LENGTH:
            value = str(record.length)
        elif tag in (RecordTag.DNS_NAME, RecordTag.SUBJECT_NAME, RecordTag.ISSUER_NAME):
            value = _text_value(element.value)
        elif tag == RecordTag.FUNCTION and len(element.value) == 2:
            code = int.from_bytes(element.value, "big")
            value = _SHOWN_ROLES.get(code, role_name(code))  # type: ignore[call-overload]
        elif tag == RecordTag.SERIAL_NUMBER:
            value = serial_colon_hex(element.value)
        elif tag == RecordTag.CERTIFICATE:
            value = " ".join(record.certificate_sha1[i : i + 2] for i in range(0, 40, 2)) + " (SHA1 Hash HEX)"
        rows.append(_row(tag, name, len(element.value), value))
    return rows


def signed_time(trust_list: TrustList) -> datetime.datetime | None:
    """The file's signed TIMESTAMP in UTC, which CUCM prints as "last modified" (None without one)."""
    stamp = trust_list.header.timestamp
    return None if stamp is None else datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)


def render_show_ctl(
    trust_list: TrustList,
    verification: Verification | None,
    *,
    modified: datetime.datetime | None = None,
) -> str:
    """The file in CUCM's `show ctl` layout (docs/trust-lists.md); ``modified`` is the file's mtime."""
    label = "SGN" if trust_list.kind is FileKind.SGN else trust_list.kind.label
    lines = [
        f"The checksum value of the {label} file:",
        f"{trust_list.md5}(MD5)",
        f"{trust_list.sha1}(SHA1)",
        "",
        f"Length of {label} file: {trust_list.length}",
    ]
    if modified is not None:
        lines.append(f"The {label} File was last modified on {modified.strftime('%a %b %d %H:%M:%S %Z %Y')}")
    lines += [
        "",
        f"Parse {label} File",
        "----------------",
        "",
        f"Version:        {trust_list.header.version_text}",
        f"HeaderLength:   {trust_list.header.header_length} (BYTES)",
        "",
        _row("BYTEPOS", "TAG", "LENGTH", "VALUE"),
        _row("-------", "---", "------", "-----"),
        *_header_rows(trust_list.header.elements),
    ]
    for number, record in enumerate(trust_list.records, start=1):
        lines += [
            "",
            f"{label} Record #:{number}",
            "----",
            _row("BYTEPOS", "TAG", "LENGTH", "VALUE"),
            _row("-------", "---", "------", "-----"),
            *_record_rows(record),
        ]
        if record.function == Role.SAST:
            used = "was" if verification and verification.signed_by == number - 1 else "was not"
            lines.append(f"This etoken {used} used to sign the {label} file.")
    if trust_list.kind is FileKind.SGN:
        lines += ["", f"Signed content: {len(trust_list.payload or b'')} bytes"]
    lines.append("")
    if verification is None:
        lines.append(f"The {label} file was not verified: its signer certificate is not in it (use --cert).")
    elif verification.valid:
        lines.append(f"The {label} file was verified successfully.")
    else:
        lines.append(f"The {label} file could not be verified: {verification.reason}.")
    return "\n".join(lines) + "\n"


def show_ctl_json(trust_list: TrustList, verification: Verification | None) -> dict[str, Any]:
    """The JSON object of `phonetrust show --json` (a stable contract: docs/trust-lists.md).

    ``verification`` is None when there was nothing to verify with (a ``.sgn``
    file without ``--cert``): ``signature_valid`` is then null.
    """
    header = trust_list.header
    return {
        "kind": trust_list.kind.value,
        "length": trust_list.length,
        "md5": trust_list.md5,
        "sha1": trust_list.sha1,
        "version": header.version_text,
        "header_length": header.header_length,
        "signer": {
            "name": header.signer_name,
            "serial": None if header.signer_serial is None else serial_hex(header.signer_serial),
            "issuer": header.signer_issuer,
        },
        "signer_version": None if header.signer_version is None else "%d.%d" % header.signer_version,
        "digest": header.digest_name,
        "digest_code": header.digest_code,
        "signature_length": len(header.signature),
        "filename": header.filename,
        "timestamp": header.timestamp,
        "records": [record_json(record) for record in trust_list.records],
        "payload_length": None if trust_list.payload is None else len(trust_list.payload),
        "signature_valid": None if verification is None else verification.valid,
        "signed_by": None if verification is None else verification.signed_by,
        "reason": "no signer certificate (use --cert)" if verification is None else verification.reason,
    }


def record_json(record: Record) -> dict[str, Any]:
    return {
        "record_length": record.length,
        "dns_name": record.dns_name,
        "subject": record.subject,
        "role": record.function,
        "role_name": record.role_name,
        "issuer": record.issuer,
        "serial": None if record.serial is None else serial_hex(record.serial),
        "public_key_length": None if record.public_key is None else len(record.public_key),
        "signature_length": None if record.signature is None else len(record.signature),
        "certificate_length": None if record.certificate is None else len(record.certificate),
        "certificate_sha1": record.certificate_sha1,
        "ip_address": record.ip_address_text,
    }
