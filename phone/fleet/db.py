"""Fleet results in SQLite: one row per phone per step, written by one writer in batches.

Tables (``SCHEMA``):

- ``runs``: one row per ``fleet run`` (or per shard of one): when, the phone
  list, shard, MAC prefix, workers, concurrency, jitter, rate, target, and every
  other parameter as JSON; ``finished`` stays NULL for a run that was killed.
- ``steps``: one row per step of a run: name, start, end, boots.
- ``boots``: one row per phone per step: model, MAC, step, outcome
  (``phone.firmware.outcome.classify``), erase_needed, through_tvs, rejection codes,
  the TVS attempts (JSON), an error text for a boot that raised, the
  timings (wall-clock start, seconds in TFTP, in TVS, in all) and the
  phone's firmware load (NULL: the model's default load), and the registration's
  result (``registration``: registered, rejected, failed, waiting; NULL: none).
  Databases written before the load or the registration was recorded gain the
  column, empty, when opened.
- ``files``: one row per file a phone asked for in a boot: name, result,
  rejection code, what vouched for it, reason.
- ``flash``: what each phone kept at the end of the last run that saved it
  (``fleet run --tftp``: the next invocation's phones start from it).

The database is in WAL mode with ``synchronous=NORMAL``: every batch is one
transaction, so what was committed survives a kill -9 of the run (the last
batch, at most a fraction of a second of boots, may be lost with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from phone.errors import UsageError
from phone.fleet.clock import SYSTEM_CLOCK, Clock
from phone.fleet.rows import BOOT_FIELDS, BootRow, row_values
from phone.firmware.machine import Flash
from phone.firmware.trust import CachedCertificate

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    phones TEXT NOT NULL,          -- the --phones text of the whole fleet
    phone_count INTEGER NOT NULL,  -- phones of this run (its shard)
    shard TEXT NOT NULL,           -- K/N
    mac_prefix TEXT NOT NULL,
    workers INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    jitter REAL NOT NULL,
    rate REAL,
    target TEXT,
    host TEXT,
    params TEXT NOT NULL           -- JSON: everything else the run was started with
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    boots INTEGER,
    PRIMARY KEY (run_id, step_index)
);
CREATE TABLE IF NOT EXISTS boots (
    run_id INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    step TEXT NOT NULL,
    phone_index INTEGER NOT NULL,
    mac TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,         -- accepted | rejected | unchanged | failed
    erase_needed INTEGER NOT NULL,
    through_tvs INTEGER NOT NULL,
    codes TEXT NOT NULL,           -- rejection codes, comma-separated (phone.firmware.trust.REJECTION_CODES)
    tvs TEXT NOT NULL,             -- JSON list of TVS attempts: server, type, status, roles, error
    error TEXT,                    -- a boot that raised: the exception; an unsupported phone: why
    start REAL NOT NULL,           -- Unix time the boot began
    tftp_seconds REAL NOT NULL,
    tvs_seconds REAL NOT NULL,
    total_seconds REAL NOT NULL,
    downloads INTEGER NOT NULL,
    tvs_requests INTEGER NOT NULL,
    load TEXT,                     -- the phone's firmware load; NULL: the model's default
    lsc_installed INTEGER NOT NULL DEFAULT 0,  -- CAPF installed an LSC in this boot
    PRIMARY KEY (run_id, step_index, mac)
);
CREATE TABLE IF NOT EXISTS files (
    run_id INTEGER NOT NULL,
    step_index INTEGER NOT NULL,
    mac TEXT NOT NULL,
    name TEXT NOT NULL,
    result TEXT NOT NULL,          -- not_found | installed | unchanged | rejected | applied | failed
    code TEXT,
    via TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS boots_by_mac ON boots (mac);
CREATE TABLE IF NOT EXISTS flash (
    mac TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    ctl BLOB,
    itl BLOB,
    config BLOB,
    config_name TEXT,
    tvs_cache TEXT NOT NULL,       -- JSON list of {certificate (hex), roles, expires}
    run_id INTEGER NOT NULL        -- the run that left it
);
"""

_RUN_COLUMNS = ("started", "phones", "phone_count", "shard", "mac_prefix", "workers", "concurrency", "jitter",
                "rate", "target", "host", "params")


def connect(path: str | os.PathLike[str], *, create: bool = False) -> sqlite3.Connection:
    """Open a results database; ``create`` makes it (and its tables) when missing."""
    path = Path(path)
    if not create and not path.is_file():
        raise UsageError(f"{path}: no such results database")
    try:
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        if create:
            connection.executescript(SCHEMA)
            connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            connection.commit()
        version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{path}: not a fleet results database ({error})") from None
    if version is None or int(version[0]) != SCHEMA_VERSION:
        raise UsageError(f"{path}: not a fleet results database of schema {SCHEMA_VERSION}")
    _add_load_column(connection)
    _add_lsc_column(connection)
    _add_registration_column(connection)
    return connection


def _add_load_column(connection: sqlite3.Connection) -> None:
    """A database written before loads were recorded gets the (nullable) column, so reports and merges
    read old and new databases alike; a read-only one is read without it (``has_load``)."""
    if not has_load(connection):
        try:
            with connection:
                connection.execute("ALTER TABLE boots ADD COLUMN load TEXT")
        except sqlite3.OperationalError:
            pass


def _add_lsc_column(connection: sqlite3.Connection) -> None:
    """A database written before CAPF was emulated gets ``lsc_installed`` (0 for its boots)."""
    if not has_column(connection, "lsc_installed"):
        try:
            with connection:
                connection.execute("ALTER TABLE boots ADD COLUMN lsc_installed INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError:
            pass


def _add_registration_column(connection: sqlite3.Connection) -> None:
    """Every database gets ``boots.registration`` when opened (registered | rejected | failed | waiting;
    NULL: the boot did not register, docs/registration.md), as ``_add_load_column`` adds ``load``."""
    if not has_registration(connection):
        try:
            with connection:
                connection.execute("ALTER TABLE boots ADD COLUMN registration TEXT")
        except sqlite3.OperationalError:
            pass


def has_column(connection: sqlite3.Connection, column: str, schema: str = "main") -> bool:
    """Whether the ``boots`` table has ``column``."""
    return any(row[1] == column for row in connection.execute(f"PRAGMA {schema}.table_info(boots)"))


def has_registration(connection: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether the ``boots`` table records each boot's registration."""
    return any(row[1] == "registration" for row in connection.execute(f"PRAGMA {schema}.table_info(boots)"))


def has_load(connection: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether the ``boots`` table records each phone's load."""
    return any(row[1] == "load" for row in connection.execute(f"PRAGMA {schema}.table_info(boots)"))


class ResultsWriter:
    """The one writer of a run's rows: ``add_boots`` batches go in one transaction each."""

    def __init__(self, path: str | os.PathLike[str], run: dict[str, Any], *, clock: Clock = SYSTEM_CLOCK,
                 loads: dict[str, str] | None = None) -> None:
        """``loads``: MAC -> firmware load of the phones that name one (the others run the model's default)."""
        self.clock = clock
        self.loads = loads or {}
        self.connection = connect(path, create=True)
        values = {**run, "host": run.get("host") or socket.gethostname()}
        with self.connection:
            cursor = self.connection.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                [values.get(column) if column != "params" else json.dumps(values.get("params", {}), sort_keys=True)
                 for column in _RUN_COLUMNS])
        self.run_id = cursor.lastrowid

    def start_step(self, index: int, name: str, started: float) -> None:
        with self.connection:
            self.connection.execute("INSERT INTO steps (run_id, step_index, name, started) VALUES (?, ?, ?, ?)",
                                    (self.run_id, index, name, started))

    def finish_step(self, index: int, finished: float, boots: int) -> None:
        with self.connection:
            self.connection.execute("UPDATE steps SET finished = ?, boots = ? WHERE run_id = ? AND step_index = ?",
                                    (finished, boots, self.run_id, index))

    def add_boots(self, step: str, rows: Sequence[BootRow]) -> None:
        """A batch of boot rows, one transaction."""
        files_at = BOOT_FIELDS.index("files")
        boots, files = [], []
        for row in rows:
            values = row_values(row)
            boots.append((self.run_id, values[0], step, *values[1:files_at], *values[files_at + 1:],
                          self.loads.get(row.mac)))
            for name, result, code, via, reason in json.loads(row.files):
                files.append((self.run_id, row.step_index, row.mac, name, result, code, via, reason))
        columns = [field for field in BOOT_FIELDS if field != "files"]
        columns.insert(1, "step")
        columns.append("load")
        with self.connection:
            self.connection.executemany(
                f"INSERT OR REPLACE INTO boots (run_id, {', '.join(columns)}) "
                f"VALUES ({', '.join('?' * (len(columns) + 1))})", boots)
            self.connection.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", files)

    def save_flash(self, phones: Iterable[tuple[str, str, Flash]]) -> None:
        """What each phone keeps after this run, for the next run against the same server (``--tftp``)."""
        rows = [(mac, model, flash.ctl.data if flash.ctl else None, flash.itl.data if flash.itl else None,
                 flash.config, flash.config_name,
                 json.dumps([{"certificate": entry.certificate.hex(), "roles": sorted(entry.roles),
                              "expires": entry.expires} for entry in flash.tvs_cache]), self.run_id)
                for mac, model, flash in phones]
        with self.connection:
            self.connection.executemany("INSERT OR REPLACE INTO flash VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def finish(self, finished: float | None = None) -> None:
        with self.connection:
            self.connection.execute("UPDATE runs SET finished = ? WHERE id = ?", (finished or self.clock.wall(), self.run_id))

    def close(self) -> None:
        self.connection.close()


# -- reading ----------------------------------------------------------------------------


@attrs.frozen
class LastBoot:
    """A phone's boot in the last step it ran (what a report counts)."""

    model: str
    outcome: str
    erase_needed: bool
    through_tvs: bool
    codes: str
    load: str | None = None
    error: str | None = None
    lsc_installed: bool = False
    registration: str | None = None


def load_flash(connection: sqlite3.Connection) -> dict[str, tuple[str, Flash]]:
    """The flash each phone kept at the end of the runs stored here: MAC -> (model, Flash)."""
    kept = {}
    parsed: dict[tuple[bytes | None, bytes | None], Flash] = {}  # phones share their lists: each distinct list is parsed once

    def lists(ctl: bytes | None, itl: bytes | None) -> Flash:
        if (ctl, itl) not in parsed:
            parsed[(ctl, itl)] = Flash(ctl=ctl, itl=itl)
        return parsed[(ctl, itl)]

    for mac, model, ctl, itl, config, config_name, cache in connection.execute(
            "SELECT mac, model, ctl, itl, config, config_name, tvs_cache FROM flash"):
        entries = tuple(CachedCertificate(bytes.fromhex(entry["certificate"]), frozenset(entry["roles"]),
                                          float(entry["expires"])) for entry in json.loads(cache))
        kept[mac] = (model, attrs.evolve(lists(ctl, itl), config=config, config_name=config_name,
                                         tvs_cache=entries))
    return kept


def runs(connection: sqlite3.Connection) -> list[dict[str, Any]]:
    cursor = connection.execute("SELECT * FROM runs ORDER BY started, id")
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def steps(connection: sqlite3.Connection) -> list[dict[str, Any]]:
    cursor = connection.execute("SELECT s.*, (SELECT count(*) FROM boots b WHERE b.run_id = s.run_id AND "
                                "b.step_index = s.step_index) AS stored FROM steps s ORDER BY run_id, step_index")
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def last_boots(connection: sqlite3.Connection, step: str | None = None, *,
               run_id: int | None = None) -> dict[str, LastBoot]:
    """Each phone's last boot (latest run, then highest step), or its last boot in ``step``;
    of run ``run_id`` only when given."""
    last: dict[str, LastBoot] = {}
    conditions = [text for text, value in (("b.step = ?", step), ("b.run_id = ?", run_id)) if value is not None]
    arguments = tuple(value for value in (step, run_id) if value is not None)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    load = "b.load" if has_load(connection) else "NULL"
    lsc = "b.lsc_installed" if has_column(connection, "lsc_installed") else "0"
    registration = "b.registration" if has_registration(connection) else "NULL"
    for mac, model, outcome, erase, tvs, codes, phone_load, error, lsc_installed, registered in connection.execute(
            f"SELECT b.mac, b.model, b.outcome, b.erase_needed, b.through_tvs, b.codes, {load}, b.error, {lsc}, "
            f"{registration} FROM boots b JOIN runs r ON r.id = b.run_id {where}"
            "ORDER BY r.started, r.id, b.step_index", arguments):
        last[mac] = LastBoot(model, outcome, bool(erase), bool(tvs), codes, phone_load, error, bool(lsc_installed),
                             registered)
    return last


def completion_times(connection: sqlite3.Connection) -> Iterator[tuple[int, str, float, float]]:
    """(run id, step name, seconds from the step's start to the boot's end, boot seconds) per boot."""
    yield from connection.execute(
        "SELECT b.run_id, b.step, b.start + b.total_seconds - s.started, b.total_seconds FROM boots b "
        "JOIN steps s ON s.run_id = b.run_id AND s.step_index = b.step_index ORDER BY b.run_id, b.step_index")


@attrs.frozen
class RunIdentity:
    """What makes runs shards of one fleet run: the same target (scenario or server), phone list, MAC
    prefix, jitter seed and number of shards. Read from the columns every run row records."""

    target: str | None
    phones: str
    mac_prefix: str
    seed: int | None
    shards: int

    @classmethod
    def of(cls, run: dict[str, Any]) -> RunIdentity:
        params = json.loads(run["params"] or "{}")
        return cls(run["target"], run["phones"], run["mac_prefix"], params.get("seed"),
                   int(str(run["shard"]).partition("/")[2] or 1))

    def difference(self, other: RunIdentity) -> str:
        """The first field where ``other`` differs, as ``name A vs B``."""
        for field in attrs.fields(RunIdentity):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                return f"{field.name} {mine} vs {theirs}"
        return ""


def _check_shards(sources: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
    """Refuse runs that are not shards of one fleet run, or a shard given twice (one clear line)."""
    first: tuple[str, RunIdentity] | None = None
    shard_from: dict[str, str] = {}
    for name, source_runs in sources:
        for run in source_runs:
            identity = RunIdentity.of(run)
            if first is None:
                first = (name, identity)
            elif identity != first[1]:
                raise UsageError(f"{name}: not a shard of the same run as {first[0]} "
                                 f"({first[1].difference(identity)}); merge only the shards of one run")
        for shard in {run["shard"] for run in source_runs}:
            if shard in shard_from and shard_from[shard] != name:
                raise UsageError(f"{name}: shard {shard} is already in {shard_from[shard]} "
                                 "(the same shard merged twice?)")
            shard_from[shard] = name


def merge(out: str | os.PathLike[str], sources: Iterable[str | os.PathLike[str]]) -> int:
    """Copy every run of ``sources`` into ``out`` (created if missing); returns the runs copied.

    Runs get new ids in ``out``. Every run must be a shard of one fleet run
    (``RunIdentity``), each shard from one source only; a source whose phones
    overlap a run already in ``out`` for the same step is refused.
    """
    sources = list(sources)
    for source in sources:
        if Path(source).resolve() == Path(out).resolve():
            raise UsageError(f"{source}: cannot merge a database into itself")
    listed: list[tuple[str, list[dict[str, Any]]]] = []
    if Path(out).is_file():
        with contextlib.closing(connect(out)) as existing:
            listed.append((str(out), runs(existing)))
    for source in sources:
        with contextlib.closing(connect(source)) as connection:  # checks it is a results database
            listed.append((str(source), runs(connection)))
    _check_shards(listed)
    target = connect(out, create=True)
    copied = 0
    try:
        for source in sources:
            target.execute("ATTACH DATABASE ? AS src", (str(source),))
            try:
                clash = target.execute(
                    "SELECT b.mac, s.name FROM src.boots b JOIN src.steps s ON s.run_id = b.run_id AND "
                    "s.step_index = b.step_index JOIN src.runs sr ON sr.id = b.run_id WHERE EXISTS (SELECT 1 FROM "
                    "main.boots m JOIN main.runs mr ON mr.id = m.run_id WHERE m.mac = b.mac AND "
                    "m.step_index = b.step_index AND mr.phones = sr.phones AND mr.started = sr.started) "
                    "LIMIT 1").fetchone()
                if clash is not None:
                    raise UsageError(f"{source}: phone {clash[0]} in step {clash[1]!r} is already in {out} "
                                     "(the same shard merged twice?)")
                with target:
                    for run in target.execute("SELECT id FROM src.runs ORDER BY id").fetchall():
                        old = run[0]
                        cursor = target.execute(
                            f"INSERT INTO main.runs (started, finished, {', '.join(_RUN_COLUMNS[1:])}) "
                            f"SELECT started, finished, {', '.join(_RUN_COLUMNS[1:])} FROM src.runs WHERE id = ?",
                            (old,))
                        new = cursor.lastrowid
                        for table in ("steps", "boots", "files"):
                            # The columns both hold: an older source has no load column (NULL here).
                            theirs = {row[1] for row in target.execute(f"PRAGMA src.table_info({table})")}
                            columns = [row[1] for row in target.execute(f"PRAGMA main.table_info({table})")]
                            rest = [column for column in columns if column != "run_id" and column in theirs]
                            target.execute(f"INSERT INTO main.{table} (run_id, {', '.join(rest)}) "
                                           f"SELECT ?, {', '.join(rest)} FROM src.{table} WHERE run_id = ?", (new, old))
                        copied += 1
            finally:
                target.execute("DETACH DATABASE src")
    finally:
        target.close()
    return copied
