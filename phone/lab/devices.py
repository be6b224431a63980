"""The lab's phone devices: what CUCM's Phone Configuration page holds for the trust side.

Per device: model, Phone Security Profile (device security mode, "TFTP Encrypted
Config"), and the "Certificate Authority Proxy Function (CAPF) Information" section
(Certificate Operation, Authentication Mode and String, key, Operation Status), plus
the LSC the lab's CAPF last issued to it. Sources: Cisco Unified Communications
Manager Security Guide, "Phone Security Profile" and "Certificate Authority Proxy
Function"; System Configuration Guide 12.5(1)SU2, "Configure CAPF".

A device the lab never heard of is what CUCM auto-registration makes: a non-secure
profile with no CAPF operation (``DeviceStore.effective``).

The store is SQLite (``devices.sqlite`` in the lab folder) because two processes
use it at once: ``lab serve`` (the CAPF server records each operation's status
and the LSC it issued) and the ``lab device`` commands.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from phone.errors import UsageError
from phone.lab.state import LabError

DEVICES_FILE = "devices.sqlite"

SECURITY_PROFILES = ("non-secure", "authenticated", "encrypted")
#: ``deviceSecurityMode`` of the configuration file, per profile (Security Guide, "Phone Security Profile").
DEVICE_SECURITY_MODES = {"non-secure": 1, "authenticated": 2, "encrypted": 3}
CAPF_OPERATIONS = ("none", "install", "upgrade", "delete", "fetch")
CAPF_AUTH_MODES = ("null-string", "auth-string", "existing-lsc", "existing-mic")
#: ``capfAuthMode`` of the configuration file per authentication mode (0 = no operation pending).
CAPF_AUTH_MODE_NUMBERS = {"auth-string": 1, "null-string": 2, "existing-lsc": 3, "existing-mic": 4}
CAPF_KEYS = ("rsa1024", "rsa2048", "rsa4096", "ec256", "ec384", "ec521")
CAPF_STATUSES = ("pending", "successful", "failed")
_DEVICE_NAME = re.compile(r"SEP[0-9A-F]{12}")
#: Bulk Administration Guide: an authentication string is 4 to 10 digits.
_AUTH_STRING = re.compile(r"[0-9]{4,10}")


def check_device_name(name: str) -> str:
    """``SEP`` + 12 upper-case hex digits, as CUCM names a phone; ``UsageError`` otherwise."""
    if not _DEVICE_NAME.fullmatch(name):
        raise UsageError(f"device name {name[:40]!r} is not SEP followed by 12 upper-case hex digits")
    return name


def _one_of(allowed: tuple[str, ...], what: str):
    def check(_instance: object, _attribute: object, value: object) -> None:
        if value not in allowed:
            raise UsageError(f"{what} {str(value)[:40]!r} is not one of {', '.join(allowed)}")
    return check


def _auth_string_fits(instance: CapfSettings, _attribute: object, value: str | None) -> None:
    if instance.auth == "auth-string":
        if value is None or not _AUTH_STRING.fullmatch(value):
            raise UsageError("a CAPF authentication string is 4 to 10 digits")
    elif value is not None:
        raise UsageError(f"an authentication string only goes with auth-string, not {instance.auth}")


@attrs.frozen
class CapfSettings:
    """The device page's CAPF section; ``status`` is CUCM's "Certificate Operation Status"."""

    operation: str = attrs.field(default="none", validator=_one_of(CAPF_OPERATIONS, "CAPF operation"))
    auth: str = attrs.field(default="null-string", validator=_one_of(CAPF_AUTH_MODES, "CAPF authentication mode"))
    auth_string: str | None = attrs.field(default=None, validator=_auth_string_fits)
    key: str = attrs.field(default="rsa2048", validator=_one_of(CAPF_KEYS, "CAPF key"))
    status: str | None = attrs.field(default=None, validator=attrs.validators.optional(
        _one_of(CAPF_STATUSES, "CAPF status")))

    @property
    def pending(self) -> bool:
        """An operation the CAPF server will run at the phone's next CAPF session."""
        return self.operation != "none" and self.status == "pending"

    @property
    def auth_mode_number(self) -> int:
        """``capfAuthMode`` as the configuration file carries it: 0 when nothing is pending."""
        return CAPF_AUTH_MODE_NUMBERS[self.auth] if self.pending else 0

    def as_json(self) -> dict[str, Any]:
        auth = f"auth-string:{self.auth_string}" if self.auth == "auth-string" else self.auth
        return {"operation": self.operation, "status": self.status, "auth": auth, "key": self.key}


@attrs.frozen
class DeviceRecord:
    """One phone as the lab's database holds it (``lab device show --json`` prints ``as_json``)."""

    name: str = attrs.field(validator=lambda _i, _a, value: check_device_name(value))
    model: str
    security_profile: str = attrs.field(default="non-secure",
                                        validator=_one_of(SECURITY_PROFILES, "security profile"))
    encrypted_config: bool = False
    capf: CapfSettings = CapfSettings()
    #: DER of the LSC this lab's CAPF last issued to the device (None: none, or deleted).
    lsc_der: bytes | None = None
    #: DER of the MIC the phone presented to CAPF (CUCM keeps the phone's certificate to encrypt its
    #: configuration to it; Security Guide, "Encrypted Phone Configuration Files").
    mic_der: bytes | None = None
    #: Whether the lab's database has a row for it (False: auto-registered defaults).
    configured: bool = True

    @property
    def device_security_mode(self) -> int:
        return DEVICE_SECURITY_MODES[self.security_profile]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "security_profile": self.security_profile,
                "encrypted_config": self.encrypted_config, "capf": self.capf.as_json(),
                "lsc": _lsc_summary(self.lsc_der)}


def _lsc_summary(der: bytes | None) -> dict[str, str] | None:
    if der is None:
        return None
    from cryptography import x509

    from phone.wire.names import serial_hex, serial_to_bytes

    certificate = x509.load_der_x509_certificate(der)
    # Upper-case hex without separators, as every serial of the project's JSON.
    return {"serial": serial_hex(serial_to_bytes(certificate.serial_number)),
            "issuer": certificate.issuer.rfc4514_string()}


def _row(record: DeviceRecord) -> tuple[Any, ...]:
    return (record.name, record.model, record.security_profile, int(record.encrypted_config),
            json.dumps(attrs.asdict(record.capf)), record.lsc_der, record.mic_der)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS device (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    security_profile TEXT NOT NULL,
    encrypted_config INTEGER NOT NULL,
    capf TEXT NOT NULL,
    lsc BLOB,
    mic BLOB
)
"""


#: SQLite's file header (sqlite.org, "Database File Format", section 1.3): the magic string, the
#: write and read format versions at offsets 18 and 19 (1: rollback journal, 2: WAL), and the
#: file change counter at offset 24, which every committed write changes in rollback-journal mode.
_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_BYTES = 28
#: Records kept per store at most (a fleet's inventory is tens of thousands of devices).
_KEPT_RECORDS = 100_000


class _Readings:
    """Device records already read, per store file, for as long as the file is not written.

    The lab's servers read a device's record for each configuration they serve and each
    registration they answer: an SQLite connection each time, most of the cost of serving
    a fleet from an inventory. A record is kept while the file keeps its inode and its
    change counter; any committed write (``lab device set``, the CAPF server's result, a
    ``put_many`` from another process) changes the counter and empties what was kept. A
    file in WAL mode, whose counter does not follow its writes, or that is not an SQLite
    file, is read every time.
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, ...], dict[str, DeviceRecord | None]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def version(path: Path) -> tuple[int, ...] | None:
        """The file's identity and change counter; None when it cannot be told (read every time)."""
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            stat = os.fstat(descriptor)
            header = os.pread(descriptor, _HEADER_BYTES, 0)
        except OSError:
            return None
        finally:
            os.close(descriptor)
        if len(header) < _HEADER_BYTES or not header.startswith(_SQLITE_MAGIC) or header[18:20] != b"\x01\x01":
            return None
        # The inode, times and size too: a store deleted and made again may get the same inode and counter.
        return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size,
                int.from_bytes(header[24:28], "big"))

    def get(self, path: Path, name: str, read: Callable[[], DeviceRecord | None]) -> DeviceRecord | None:
        """``name``'s record as ``read()`` gives it, kept until the file at ``path`` is written."""
        version = self.version(path)
        if version is None:
            return read()
        key = str(path)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == version and name in kept[1]:
                return kept[1][name]
        record = read()
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version or len(kept[1]) >= _KEPT_RECORDS:
                kept = self._kept[key] = (version, {})
            kept[1][name] = record
        return record


_READINGS = _Readings()


class DeviceStore:
    """The lab's devices in ``devices.sqlite``; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_lab(cls, lab_folder: Path) -> DeviceStore:
        return cls(Path(lab_folder) / DEVICES_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as error:
            raise LabError(f"{self.path}: cannot open the device store ({error})") from None
        try:
            with connection:
                connection.execute(_SCHEMA)
                yield connection
        except sqlite3.DatabaseError as error:
            raise LabError(f"{self.path}: the device store is unreadable ({error})") from None
        finally:
            connection.close()

    def get(self, name: str) -> DeviceRecord | None:
        """The device's record, None when the store does not hold it (kept while the file is not written)."""
        return _READINGS.get(self.path, name, lambda: self._read(name))

    def _read(self, name: str) -> DeviceRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT name, model, security_profile, encrypted_config, capf, lsc, mic "
                             "FROM device WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._record(row)

    def effective(self, name: str, model: str = "unknown") -> DeviceRecord:
        """The device's settings, or CUCM auto-registration's (non-secure, nothing pending)."""
        found = self.get(name)
        return found if found is not None else DeviceRecord(name=name, model=model, configured=False)

    def put(self, record: DeviceRecord) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO device VALUES (?, ?, ?, ?, ?, ?, ?)",
                       _row(record))

    def put_many(self, records: list[DeviceRecord]) -> None:
        """Many devices in one transaction (an inventory of thousands)."""
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO device VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [_row(record) for record in records])

    def list(self) -> list[DeviceRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT name, model, security_profile, encrypted_config, capf, lsc, mic "
                              "FROM device ORDER BY name").fetchall()
        return [self._record(row) for row in rows]

    def record_capf_result(self, name: str, *, status: str, lsc_der: bytes | None, keep_lsc: bool = False) -> None:
        """What the CAPF server writes at the end of a session: the status and the LSC it issued.

        ``keep_lsc`` leaves the stored LSC alone (a failed or fetch operation);
        otherwise ``lsc_der`` replaces it (None after a delete).
        """
        if status not in CAPF_STATUSES:
            raise UsageError(f"CAPF status {status!r} is not one of {', '.join(CAPF_STATUSES)}")
        with self._connect() as db:
            row = db.execute("SELECT capf, lsc FROM device WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            capf = dict(json.loads(row[0]), status=status)
            db.execute("UPDATE device SET capf = ?, lsc = ? WHERE name = ?",
                       (json.dumps(capf), row[1] if keep_lsc else lsc_der, name))

    def record_mic(self, name: str, mic_der: bytes) -> None:
        """Keep the MIC a configured device presented (to encrypt its configuration when it has no LSC)."""
        with self._connect() as db:
            db.execute("UPDATE device SET mic = ? WHERE name = ?", (mic_der, name))

    @staticmethod
    def _record(row: tuple[Any, ...]) -> DeviceRecord:
        name, model, profile, encrypted, capf, lsc, mic = row
        try:
            settings = CapfSettings(**json.loads(capf))
            return DeviceRecord(name=name, model=model, security_profile=profile, encrypted_config=bool(encrypted),
                                capf=settings, lsc_der=lsc, mic_der=mic)
        except (TypeError, ValueError, UsageError) as error:
            raise LabError(f"device store: the row of {name!r} is damaged ({error})") from None


def parse_capf_auth(text: str) -> tuple[str, str | None]:
    """``null-string``, ``auth-string:DIGITS``, ``existing-lsc`` or ``existing-mic`` -> (mode, string)."""
    mode, colon, string = text.partition(":")
    if mode == "auth-string":
        if not colon:
            raise UsageError("--capf-auth auth-string needs its digits: auth-string:DIGITS (4 to 10 digits)")
        return mode, string
    if colon or mode not in CAPF_AUTH_MODES:
        raise UsageError(f"CAPF authentication mode {text[:40]!r} is not one of null-string, auth-string:DIGITS, "
                         "existing-lsc, existing-mic")
    return mode, None


def updated_record(current: DeviceRecord | None, name: str, *, model: str | None = None,
                   security_profile: str | None = None, encrypted_config: bool | None = None,
                   capf_operation: str | None = None, capf_auth: str | None = None,
                   capf_key: str | None = None) -> DeviceRecord:
    """The device page after the administrator saves it with these fields (None: left as it was).

    A new device needs its model. Choosing a Certificate Operation other than "No Pending
    Operation" makes its status "pending" (CUCM shows "<operation> pending"), even when the same
    operation was already chosen, as saving the page does; choosing none clears it (System
    Configuration Guide 12.5(1)SU2, "Configure CAPF").
    """
    check_device_name(name)
    if current is None:
        if model is None:
            raise UsageError(f"{name} is a new device: give its --model")
        current = DeviceRecord(name=name, model=model)
    capf = current.capf
    if capf_auth is not None:
        auth, string = parse_capf_auth(capf_auth)
        capf = attrs.evolve(capf, auth=auth, auth_string=string)
    if capf_key is not None:
        capf = attrs.evolve(capf, key=capf_key)
    if capf_operation is not None:
        capf = attrs.evolve(capf, operation=capf_operation, status=None if capf_operation == "none" else "pending")
    changes: dict[str, Any] = {"capf": capf, "configured": True}
    if model is not None:
        changes["model"] = model
    if security_profile is not None:
        changes["security_profile"] = security_profile
    if encrypted_config is not None:
        changes["encrypted_config"] = encrypted_config
    return attrs.evolve(current, **changes)


def describe(record: DeviceRecord) -> tuple[str, ...]:
    """``lab device show``: the device page's trust-side fields, one per line."""
    capf = record.capf
    status = "No Pending Operation" if capf.operation == "none" else f"{capf.operation.capitalize()} {capf.status}"
    lsc = _lsc_summary(record.lsc_der)
    lines = [
        f"Device Name: {record.name}" + ("" if record.configured else " (not configured: auto-registration defaults)"),
        f"Model: {record.model}",
        f"Device Security Profile: {record.security_profile} (deviceSecurityMode {record.device_security_mode})",
        f"TFTP Encrypted Config: {'on' if record.encrypted_config else 'off'}",
        f"Certificate Operation: {capf.operation}",
        f"Authentication Mode: {capf.as_json()['auth']} (capfAuthMode {capf.auth_mode_number} in the configuration)",
        f"Key: {capf.key}",
        f"Certificate Operation Status: {status}",
        "LSC: none" if lsc is None else f"LSC: serial {lsc['serial']}, issuer {lsc['issuer']}",
    ]
    return tuple(lines)
