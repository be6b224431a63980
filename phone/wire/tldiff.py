"""What changed between two trust lists, record by record (``phonetrust show OLD NEW``).

Records are matched as a phone and TVS match certificates: by serial number and
issuer. One certificate may stand in several records (a tokenless CTL lists the
publisher's CallManager certificate as SAST and as CCM+TFTP), so records of one
serial and issuer are paired by role first, then in file order; a pair whose
role differs is a role change, records left unpaired are added or removed.

For each pair the fields a phone acts on are compared: role, DNS name, IP
address, subject and the certificate itself (its SHA-1). The header's
signer, digest, signer version, file name, TIMESTAMP, version and signature
length (the signing key's size) are compared too. Pure: bytes in, records out.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from phone.wire.names import serial_colon_hex, serial_hex
from phone.wire.showctl import record_json
from phone.wire.tlv import Record, TrustList

#: The record fields compared in a matched pair, with the names shown to users.
RECORD_FIELDS = ("role", "dns_name", "ip_address", "subject", "certificate_sha1")


@attrs.frozen
class Change:
    """One field that differs: its name and its value in the old and the new file."""

    field: str
    old: Any
    new: Any


@attrs.frozen
class RecordChange:
    """A record present in both files (same serial and issuer) whose fields differ."""

    old: Record
    new: Record
    changes: tuple[Change, ...]


@attrs.frozen
class TrustListDiff:
    header: tuple[Change, ...]
    added: tuple[Record, ...]
    removed: tuple[Record, ...]
    changed: tuple[RecordChange, ...]
    unchanged: int

    @property
    def same(self) -> bool:
        return not (self.header or self.added or self.removed or self.changed)


def _key(record: Record) -> tuple[bytes | None, str | None]:
    return record.serial, record.issuer


def _fields(record: Record) -> dict[str, Any]:
    return {"role": record.role_name, "dns_name": record.dns_name, "ip_address": record.ip_address_text,
            "subject": record.subject, "certificate_sha1": record.certificate_sha1}


def _header_fields(trust_list: TrustList) -> dict[str, Any]:
    header = trust_list.header
    return {
        "kind": trust_list.kind.value,
        "version": header.version_text,
        "signer.name": header.signer_name,
        "signer.serial": None if header.signer_serial is None else serial_hex(header.signer_serial),
        "signer.issuer": header.signer_issuer,
        "signer_version": None if header.signer_version is None else "{}.{}".format(*header.signer_version),
        "digest": header.digest_name,
        "signature_length": len(header.signature),
        "filename": header.filename,
        "timestamp": header.timestamp,
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[Change, ...]:
    return tuple(Change(field, old[field], new[field]) for field in old if old[field] != new[field])


def _pair(old: list[Record], new: list[Record]) -> tuple[list[tuple[Record, Record]], list[Record], list[Record]]:
    """Records of one serial and issuer paired: same role first, then in file order."""
    pairs, old_left, new_left = [], list(old), list(new)
    for record in list(old_left):
        match = next((candidate for candidate in new_left if candidate.function == record.function), None)
        if match is not None:
            pairs.append((record, match))
            old_left.remove(record)
            new_left.remove(match)
    while old_left and new_left:
        pairs.append((old_left.pop(0), new_left.pop(0)))
    return pairs, old_left, new_left


def diff_trust_lists(old: TrustList, new: TrustList) -> TrustListDiff:
    """Every difference between ``old`` and ``new`` a phone or an administrator cares about."""
    keys: list[tuple[bytes | None, str | None]] = []
    for record in (*old.records, *new.records):
        if _key(record) not in keys:
            keys.append(_key(record))
    added, removed, changed, unchanged = [], [], [], 0
    for key in keys:
        pairs, gone, came = _pair([r for r in old.records if _key(r) == key], [r for r in new.records if _key(r) == key])
        removed.extend(gone)
        added.extend(came)
        for before, after in pairs:
            changes = _differences(_fields(before), _fields(after))
            if changes:
                changed.append(RecordChange(before, after, changes))
            else:
                unchanged += 1
    return TrustListDiff(_differences(_header_fields(old), _header_fields(new)), tuple(added), tuple(removed),
                         tuple(changed), unchanged)


def diff_json(diff: TrustListDiff, old: TrustList, new: TrustList, *, old_name: str, new_name: str) -> dict[str, Any]:
    """The JSON object of ``phonetrust show OLD NEW --json`` (docs/trust-lists.md)."""
    def side(trust_list: TrustList, name: str) -> dict[str, Any]:
        return {"file": name, "kind": trust_list.kind.value, "md5": trust_list.md5, "sha1": trust_list.sha1,
                "records": len(trust_list.records)}

    def change(item: Change) -> dict[str, Any]:
        return {"field": item.field, "old": item.old, "new": item.new}

    return {
        "old": side(old, old_name),
        "new": side(new, new_name),
        "same": diff.same,
        "header": [change(item) for item in diff.header],
        "added": [record_json(record) for record in diff.added],
        "removed": [record_json(record) for record in diff.removed],
        "changed": [{"serial": None if item.new.serial is None else serial_hex(item.new.serial),
                     "issuer": item.new.issuer, "subject": item.new.subject,
                     "changes": [change(c) for c in item.changes]} for item in diff.changed],
        "unchanged": diff.unchanged,
    }


def _shown(field: str, value: Any) -> str:
    if value is None:
        return "-"
    if field == "timestamp":
        return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _record_line(record: Record) -> str:
    serial = "-" if record.serial is None else serial_colon_hex(record.serial)
    return (f"{record.role_name} {record.subject or '-'} (DNS {record.dns_name or '-'}, "
            f"serial {serial}, issuer {record.issuer or '-'})")


def render_diff(diff: TrustListDiff, old: TrustList, new: TrustList, *, old_name: str, new_name: str) -> str:
    """The differences as text, one line each; "no differences" when there are none."""
    lines = [f"--- {old_name} ({old.kind.label}, {len(old.records)} records, SHA1 {old.sha1})",
             f"+++ {new_name} ({new.kind.label}, {len(new.records)} records, SHA1 {new.sha1})"]
    if diff.same:
        return "\n".join([*lines, "no differences", ""])
    lines += [f"header {c.field}: {_shown(c.field, c.old)} -> {_shown(c.field, c.new)}" for c in diff.header]
    lines += [f"- record {_record_line(record)}" for record in diff.removed]
    lines += [f"+ record {_record_line(record)}" for record in diff.added]
    for item in diff.changed:
        lines.append(f"~ record {_record_line(item.old)}")
        lines += [f"    {c.field}: {_shown(c.field, c.old)} -> {_shown(c.field, c.new)}" for c in item.changes]
    lines.append(f"{diff.unchanged} record(s) unchanged")
    return "\n".join(lines) + "\n"
