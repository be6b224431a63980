"""Where a TVS server finds certificates: the DB store and the CTL cache (docs/tvs.md).

CUCM's TVS looks a certificate up by serial number + issuer, first in its **DB
cache** (the cluster's certificate stores: CallManager, Phone-SAST-trust,
CallManager-trust, …), then in its **CTL cache** (the certificates of the
current ``CTLFile.tlv``, re-read when that file changes). Here the DB cache is
a SQLite table (``TvsStore``) and the CTL cache is ``CtlCache``.

Matching (docs/trust-lists.md): serial numbers byte for byte; issuers through
``phone.wire.names.name_key`` so that ``CN=a;OU=b`` (CUCM), ``cn=a;ou=b`` (CTL
client) and ``CN=a,OU=b`` (usecallmanager) find the same certificate. A
CERT_VERIFICATION request is matched on the whole DER certificate instead:
a certificate that merely shares serial and issuer with a trusted one is not
trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
from cryptography import x509

from phone.wire.certs import load_certificate
from phone.errors import CertificateError, PhonetrustError, UsageError
from phone.wire.names import cucm_name, ctl_client_name, name_key, rfc4514_joined_name, serial_to_bytes
from phone.wire.tlv import TrustList
from phone.wire.tlv import parse_role
from phone.wire.tlv import role_name
from phone.wire.tvs import DEFAULT_TTL

def parse_tvs_role(text: str) -> int:
    """A role by its docs/trust-lists.md name (``phone.wire.tlv.parse_role``) or number, limited to the one byte
    a TVS ROLES element gives each role (docs/tvs.md)."""
    code = parse_role(text)
    if not 0 <= code <= 0xFF:
        raise UsageError(f"role {code} does not fit in the one byte a TVS answer gives a role (docs/tvs.md)")
    return code


def _issuer_keys(certificate: x509.Certificate, *texts: str | None) -> frozenset[str]:
    """Keys under which a query may name this certificate's issuer (every producer's form)."""
    issuer = certificate.issuer
    renderings = [cucm_name(issuer), ctl_client_name(issuer), rfc4514_joined_name(issuer), *texts]
    return frozenset(_key(text) for text in renderings if text)


#: How a QUERY's issuer text is matched (docs/tvs.md). CUCM keys both caches on
#: serial + issuer text ("Unique MAP ID"): the DB cache on the issuer as CUCM
#: renders it, the CTL cache on the issuer as the CTL record writes it. That is
#: why, in Cisco TAC 118893, an eToken queried with the CTL client's lower-case
#: issuer misses the DB cache (where it was uploaded) and is found in the CTL
#: cache. "any" matches any producer's rendering instead (friendlier towards
#: files built by other tools).
ISSUER_MATCH_CUCM = "cucm"
ISSUER_MATCH_ANY = "any"


def _check_issuer_match(value: str) -> str:
    if value not in (ISSUER_MATCH_CUCM, ISSUER_MATCH_ANY):
        raise UsageError(f"issuer matching {value!r}: choose {ISSUER_MATCH_CUCM!r} or {ISSUER_MATCH_ANY!r}")
    return value


def _key(text: str) -> str:
    """A name_key as text, so that it can be stored in SQLite and compared as a string."""
    return json.dumps(name_key(text))


def _load(der: bytes) -> x509.Certificate:
    return load_certificate(der, source="TVS store certificate")


@attrs.frozen
class CertificateEntry:
    """A certificate a TVS server knows, with the roles and TTL it answers with."""

    certificate: bytes
    subject: str
    issuer: str
    serial: bytes
    roles: tuple[int, ...]
    ttl: int = DEFAULT_TTL
    id: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.certificate).hexdigest()

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role_name(role) for role in self.roles)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "subject": self.subject, "issuer": self.issuer,
                "serial": self.serial.hex().upper(), "roles": list(self.roles),
                "role_names": list(self.role_names), "ttl": self.ttl, "sha256": self.sha256.upper()}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    serial      BLOB NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    issuer_keys TEXT NOT NULL,
    roles       TEXT NOT NULL,
    ttl         INTEGER NOT NULL,
    certificate BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_by_serial ON certificates (serial);
"""
_COLUMNS = "id, certificate, subject, issuer, serial, roles, ttl"


def _entry(row: tuple) -> CertificateEntry:
    id_, certificate, subject, issuer, serial, roles, ttl = row
    return CertificateEntry(certificate=bytes(certificate), subject=subject, issuer=issuer,
                            serial=bytes(serial), ttl=ttl, id=id_,
                            roles=tuple(int(role) for role in roles.split(",") if role))


class TvsStore:
    """The TVS DB cache: a SQLite table of certificates with roles and TTL (docs/tvs.md).

    Each instance holds one connection; the server opens its own in its own
    thread. ``create=False`` refuses a missing file instead of making an empty one.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 issuer_match: str = ISSUER_MATCH_CUCM) -> None:
        self.path = Path(path)
        self.issuer_match = _check_issuer_match(issuer_match)
        if not create and not self.path.is_file():
            raise UsageError(f"no TVS database at {self.path} (create one with 'phonetrust tvs add')")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise UsageError(f"{self.path} is not a usable TVS database: {error}") from None

    def close(self) -> None:
        self._db.close()

    def version(self) -> tuple[int, int]:
        """A stamp that changes whenever the table may have changed, through any connection.

        SQLite's ``PRAGMA data_version`` moves when another connection (another process, or
        the lab's own) commits; ``total_changes`` counts this connection's own writes, which
        data_version does not see. A server caching answers compares it before each lookup."""
        return self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes

    def __enter__(self) -> TvsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, certificate: bytes, roles: Iterable[int], ttl: int = DEFAULT_TTL) -> CertificateEntry:
        """Add a DER certificate; adding it again replaces its roles and TTL."""
        parsed = _load(certificate)
        roles = tuple(sorted(set(roles)))
        if not roles:
            raise UsageError("a TVS certificate needs at least one role")
        if any(not 0 <= role <= 0xFF for role in roles):
            raise UsageError("roles are one byte each on the wire (docs/tvs.md): 0-255")
        if not 0 <= ttl <= 0xFFFFFFFF:
            raise UsageError(f"TTL {ttl} does not fit in 32 bits (docs/tvs.md)")
        entry = CertificateEntry(certificate=certificate, subject=cucm_name(parsed.subject),
                                 issuer=cucm_name(parsed.issuer),
                                 serial=serial_to_bytes(parsed.serial_number), roles=roles, ttl=ttl)
        self._db.execute(
            "INSERT INTO certificates (sha256, serial, subject, issuer, issuer_keys, roles, ttl, certificate)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET roles = excluded.roles,"
            " ttl = excluded.ttl",
            (entry.sha256, entry.serial, entry.subject, entry.issuer,
             json.dumps(sorted(_issuer_keys(parsed))), ",".join(map(str, roles)), ttl, certificate))
        return self.find_certificate(certificate)  # type: ignore[return-value]

    def list(self) -> tuple[CertificateEntry, ...]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates ORDER BY id").fetchall()
        return tuple(_entry(row) for row in rows)

    def _by_serial(self, serial: bytes, issuer: str | None) -> list[CertificateEntry]:
        rows = self._db.execute(f"SELECT {_COLUMNS}, issuer_keys FROM certificates WHERE serial = ?"
                                " ORDER BY id", (bytes(serial),)).fetchall()
        wanted = None if issuer is None else _key(issuer)
        return [_entry(row[:-1]) for row in rows if wanted is None or wanted in json.loads(row[-1])]

    def find(self, serial: bytes, issuer: str) -> CertificateEntry | None:
        """Lookup by serial (byte for byte) and issuer: as CUCM writes it, or any rendering (``issuer_match``)."""
        if self.issuer_match == ISSUER_MATCH_CUCM:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE serial = ? AND issuer = ?"
                                   " ORDER BY id", (bytes(serial), issuer)).fetchone()
            return None if row is None else _entry(row)
        found = self._by_serial(serial, issuer)
        return found[0] if found else None

    def find_certificate(self, certificate: bytes) -> CertificateEntry | None:
        """Lookup by the whole DER certificate."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE sha256 = ?",
                               (hashlib.sha256(certificate).hexdigest(),)).fetchone()
        return None if row is None else _entry(row)

    def delete(self, *, id: int | None = None, serial: bytes | None = None,  # noqa: A002
               issuer: str | None = None) -> tuple[CertificateEntry, ...]:
        """Delete by id, or by serial (and issuer when given); returns what was deleted."""
        if id is not None:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates WHERE id = ?", (id,)).fetchone()
            doomed = [] if row is None else [_entry(row)]
        elif serial is not None:
            doomed = self._by_serial(serial, issuer)
        else:
            raise UsageError("delete needs an id or a serial number")
        for entry in doomed:
            self._db.execute("DELETE FROM certificates WHERE id = ?", (entry.id,))
        return tuple(doomed)


# -- the CTL cache ---------------------------------------------------------------

def _read_ctl_records(data: bytes) -> Iterable[object]:
    return TrustList.from_bytes(data).records


@attrs.frozen
class _CtlItem:
    entry: CertificateEntry
    issuer_keys: frozenset[str]


class CtlCache:
    """Certificates of the current CTLFile.tlv, re-read when the file changes (docs/tvs.md).

    ``refresh_if_changed`` compares the file's stat (mtime, size, inode) with
    the last one read; the server calls it before each lookup and on a timer.
    A missing or unreadable file gives an empty cache: a CTL that does not
    parse vouches for nothing. ``log`` receives the CUCM trace texts.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, ttl: int = DEFAULT_TTL,
                 log: Callable[[str], None] | None = None,
                 read_records: Callable[[bytes], Iterable[object]] = _read_ctl_records,
                 issuer_match: str = ISSUER_MATCH_CUCM) -> None:
        self.path = None if path is None else Path(path)
        self.issuer_match = _check_issuer_match(issuer_match)
        self.ttl = ttl
        self._log = log or (lambda text: None)
        self._read_records = read_records
        self._stamp: tuple[int, ...] | None = None
        self._items: tuple[_CtlItem, ...] = ()
        #: Counts the rebuilds, so that what was derived from the cache can tell it is stale.
        self.generation = 0
        self.refresh_if_changed(initial=True)

    @property
    def entries(self) -> tuple[CertificateEntry, ...]:
        return tuple(item.entry for item in self._items)

    def _current_stamp(self) -> tuple[int, ...] | None:
        try:
            stat = os.stat(self.path)  # type: ignore[arg-type]
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)

    def refresh_if_changed(self, *, initial: bool = False) -> bool:
        """Re-read the file when its stat changed; True when the cache was rebuilt."""
        if self.path is None:
            return False
        stamp = self._current_stamp()
        if stamp == self._stamp and not initial:
            return False
        self._stamp = stamp
        if not initial:
            self._log(f"CertificateCache::localCTLCacheMonitor - {self.path.name} has been modified ."
                      " Recaching CTL Certificate Cache")
        self._log("updateLocalCTLCache : Refreshing the local CTL certificate cache")
        self._items = self._load() if stamp is not None else ()
        self.generation += 1
        return True

    def _load(self) -> tuple[_CtlItem, ...]:
        try:
            records = list(self._read_records(self.path.read_bytes()))  # type: ignore[union-attr]
        except (OSError, PhonetrustError, ValueError) as error:
            self._log(f"ERROR:updateLocalCTLCache : cannot read {self.path.name}: {error}")
            return ()
        grouped: dict[bytes, list] = {}
        for record in records:
            der = getattr(record, "certificate", None)
            if der:
                grouped.setdefault(bytes(der), []).append(record)
        items = []
        for der, group in grouped.items():
            try:
                parsed = load_certificate(der, source="CTL record")
            except CertificateError:
                self._log("ERROR:updateLocalCTLCache : skipping a record whose certificate does not parse")
                continue
            first = group[0]
            serial = first.serial or serial_to_bytes(parsed.serial_number)
            issuer = first.issuer or cucm_name(parsed.issuer)
            # ROLES gives each role one byte (docs/tvs.md); a 16-bit FUNCTION beyond that is not answerable.
            roles = tuple(sorted({r.function for r in group if r.function is not None and r.function <= 0xFF}))
            entry = CertificateEntry(certificate=der, subject=first.subject or cucm_name(parsed.subject),
                                     issuer=issuer, serial=bytes(serial), roles=roles, ttl=self.ttl)
            for _ in group:
                key = f"{serial.hex().upper()}{issuer}"
                self._log(f"tvs_sql_get_all_CTL_certificate - Unique Key used for Caching :: {key},"
                          f" length : {len(key)}")
            items.append(_CtlItem(entry, _issuer_keys(parsed, issuer)))
        return tuple(items)

    def find(self, serial: bytes, issuer: str) -> CertificateEntry | None:
        """Lookup by serial and issuer; with CUCM matching, the issuer as the CTL record writes it."""
        exact = self.issuer_match == ISSUER_MATCH_CUCM
        wanted = issuer if exact else _key(issuer)
        for item in self._items:
            if item.entry.serial == serial and (item.entry.issuer == wanted if exact else wanted in item.issuer_keys):
                return item.entry
        return None

    def find_certificate(self, certificate: bytes) -> CertificateEntry | None:
        for item in self._items:
            if item.entry.certificate == certificate:
                return item.entry
        return None
