"""A phone's flash in a state folder: kept across reboots, never half-written.

Layout::

    STATE/
      CURRENT            name of the generation in use ("gen-00000007")
      gen-00000007/      one complete flash: CTLFile.tlv, ITLFile.tlv, the config,
                         tvs-cache.json, meta.json (model, device id, config name)

Saving writes a new generation folder (every file fsync'ed), then replaces
``CURRENT`` atomically (write a temporary file, fsync, ``os.replace``, fsync the
folder). A crash at any moment leaves ``CURRENT`` naming a complete generation:
the phone boots with either the old or the new flash, never a mix. Leftover
folders of an interrupted save are removed at the next save.

``meta.json`` lists the SHA-256 of every file it saved with the generation.
Loading checks them: a folder damaged after the fact (a truncated or edited
file, one that went missing, junk where JSON was) is a ``FlashStoreError``,
never a flash with a piece missing. A CTL that no longer parsed would count as
absent, and the next CTL would be taken on trust.

Nothing in the folder is trusted to be what its name says: every file is opened
without following a symbolic link (``O_NOFOLLOW``) and without waiting (a FIFO
named ``CURRENT`` would block a plain open forever), must be a regular file, and
is read only up to a bound (``ITLFile.tlv`` linked to ``/dev/zero`` would fill
memory). Writes create their file afresh (``O_CREAT | O_EXCL | O_NOFOLLOW``), so a
symbolic link planted as ``.CURRENT.tmp`` is removed, never written through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from phone.errors import RemoteError
from phone.firmware.machine import Flash
from phone.firmware.trust import CachedCertificate

_CURRENT = "CURRENT"
_GENERATION = re.compile(r"gen-(\d{8})")
_META = "meta.json"
_CACHE = "tvs-cache.json"
_CTL = "CTLFile.tlv"
_ITL = "ITLFile.tlv"
_FILES = "files"  # meta.json: {file name: SHA-256 hex} of what the save wrote


class FlashStoreError(RemoteError):
    """A state folder that cannot be read or written."""


#: The largest file a generation holds: configurations are refused over 1 MB when fetched,
#: trust lists over 64 KB; the TVS cache and meta.json are a few KB. ``CURRENT`` holds a name.
MAX_FILE_BYTES = 4 * 1024 * 1024
_MAX_CURRENT_BYTES = 64

_OPEN_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_OPEN_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def read_regular_file(path: Path, limit: int, *, cut: bool = False) -> bytes:
    """The bytes of the regular file ``path``, read without following a link or blocking.

    Raises FileNotFoundError when there is none, FlashStoreError for a link, a FIFO, a
    device or a folder in its place, or for more than ``limit`` bytes (with ``cut``, the
    first ``limit + 1`` bytes are returned instead, for the caller to judge)."""
    try:
        descriptor = os.open(path, _OPEN_READ)
    except FileNotFoundError:
        raise
    except OSError as error:
        if os.path.islink(path):
            raise FlashStoreError(f"{path}: a symbolic link, not a file the store wrote") from None
        raise FlashStoreError(f"{path}: {error.strerror}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise FlashStoreError(f"{path}: not a regular file ({kind}), not something the store wrote")
        chunks, size = [], 0
        while True:
            chunk = os.read(descriptor, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                if cut:
                    break
                raise FlashStoreError(f"{path}: more than {limit} bytes, more than the store ever writes")
        return b"".join(chunks)
    except OSError as error:
        raise FlashStoreError(f"{path}: {error.strerror}") from None
    finally:
        os.close(descriptor)


def create_file(path: Path, data: bytes, *, durable: bool) -> None:
    """Write ``data`` to a new file ``path``; whatever was there (a planted link) is removed first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    descriptor = os.open(path, _OPEN_WRITE, 0o644)
    with open(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain_name(name: object) -> bool:
    """A file name that stays inside its generation folder."""
    return isinstance(name, str) and bool(name) and "/" not in name and not name.startswith(".")


def is_real_folder(path: Path) -> bool:
    """A folder itself, not a symbolic link to one (a generation must live in the state folder)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FlashStore:
    """The flash of one phone, in ``directory`` (created when missing)."""

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        self.directory = Path(directory)
        #: fsync every write (a real crash-safe store); tests of thousands of phones may turn it off.
        self.durable = durable

    # -- reading ----------------------------------------------------------------------

    def _current(self) -> Path | None:
        marker = self.directory / _CURRENT
        try:
            name = read_regular_file(marker, _MAX_CURRENT_BYTES, cut=True).decode("ascii", "replace").strip()
        except FileNotFoundError:
            return None
        if not _GENERATION.fullmatch(name) or not is_real_folder(self.directory / name):
            raise FlashStoreError(f"{marker}: names {name[:40]!r}, which is not a flash generation here")
        return self.directory / name

    def _damaged(self, path: Path, what: str) -> FlashStoreError:
        return FlashStoreError(f"{path}: {what}; the flash generation is damaged and is not used "
                               f"('phonetrust phone factory-reset --state {self.directory}' starts this phone afresh)")

    def load(self) -> Flash:
        """The flash as last saved (an empty flash for a new phone)."""
        current = self._current()
        if current is None:
            return Flash()
        meta = self._read_json(current / _META, default=None)
        if not isinstance(meta, dict) or not isinstance(meta.get(_FILES), dict):
            raise self._damaged(current / _META, "missing, or without the list of the files saved")
        config_name = meta.get("config_name")
        if config_name is not None and not _plain_name(config_name):
            raise self._damaged(current / _META, f"names the configuration {str(config_name)[:60]!r}")
        contents = {}
        for name in (_CTL, _ITL, _CACHE, *([config_name] if config_name else [])):
            data = self._read_optional(current / name)
            saved = meta[_FILES].get(name)
            if saved is None and data is None:
                continue
            if saved is None:
                raise self._damaged(current / name, "a file the save did not write")
            if data is None:
                raise self._damaged(current / name, "missing")
            if _sha256(data) != saved:
                raise self._damaged(current / name, f"{len(data)} bytes whose SHA-256 is not the one saved")
            contents[name] = data
        return Flash(
            ctl=contents.get(_CTL),
            itl=contents.get(_ITL),
            config=contents.get(config_name) if config_name else None,
            config_name=config_name,
            tvs_cache=self._cache_entries(current / _CACHE, contents.get(_CACHE)),
        )

    def _cache_entries(self, path: Path, data: bytes | None) -> tuple[CachedCertificate, ...]:
        if data is None:
            return ()
        try:
            return tuple(
                CachedCertificate(base64.b64decode(entry["certificate"], validate=True),
                                  frozenset(int(role) for role in entry["roles"]), float(entry["expires"]))
                for entry in json.loads(data)
            )
        except (ValueError, TypeError, KeyError, binascii.Error) as error:
            raise self._damaged(path, f"not a list of cached certificates ({type(error).__name__})") from None

    def meta(self) -> dict[str, Any]:
        current = self._current()
        if current is None:
            return {}
        meta = self._read_json(current / _META, default={})
        if not isinstance(meta, dict):
            raise self._damaged(current / _META, "not a JSON object")
        return meta

    @staticmethod
    def _read_optional(path: Path) -> bytes | None:
        try:
            return read_regular_file(path, MAX_FILE_BYTES)
        except FileNotFoundError:
            return None

    @staticmethod
    def _read_json(path: Path, *, default: Any) -> Any:
        try:
            return json.loads(read_regular_file(path, MAX_FILE_BYTES))
        except FileNotFoundError:
            return default
        except (ValueError, RecursionError) as error:
            raise FlashStoreError(f"{path}: unreadable ({type(error).__name__})") from None

    # -- writing ----------------------------------------------------------------------

    def save(self, flash: Flash, **meta: Any) -> None:
        """Make ``flash`` the phone's flash, atomically (see the module docstring)."""
        if flash.config_name is not None and not _plain_name(flash.config_name):
            raise FlashStoreError(f"refusing to store a configuration named {flash.config_name!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        current = self._current()
        number = int(_GENERATION.fullmatch(current.name).group(1)) + 1 if current else 1
        generation = self.directory / f"gen-{number:08d}"
        if generation.is_symlink() or generation.is_file():
            generation.unlink()
        elif generation.exists():
            shutil.rmtree(generation)
        generation.mkdir()
        durable = self.durable

        def write(path: Path, data: bytes) -> None:
            create_file(path, data, durable=durable)

        written: dict[str, str] = {}

        def put(name: str, data: bytes) -> None:
            write(generation / name, data)
            written[name] = _sha256(data)

        if flash.ctl is not None:
            put(_CTL, flash.ctl.data)
        if flash.itl is not None:
            put(_ITL, flash.itl.data)
        if flash.config is not None and flash.config_name:
            put(flash.config_name, flash.config)
        cache = [{"certificate": base64.b64encode(e.certificate).decode(), "roles": sorted(e.roles),
                  "expires": e.expires} for e in flash.tvs_cache]
        put(_CACHE, json.dumps(cache).encode())
        write(generation / _META, json.dumps({**self.meta(), **meta, "config_name": flash.config_name,
                                              _FILES: written}, indent=2).encode())
        if self.durable:
            fsync_dir(generation)
        marker = self.directory / f".{_CURRENT}.tmp"
        write(marker, generation.name.encode())
        os.replace(marker, self.directory / _CURRENT)
        if self.durable:
            fsync_dir(self.directory)
        self._collect(keep={generation.name})

    def wipe(self) -> None:
        """Forget this phone's flash, readable or not: the factory reset of a damaged folder.

        Only the store's own entries go (``CURRENT`` and the generations); anything else
        a user put in the folder stays.
        """
        if not self.directory.is_dir():
            return
        for entry in self.directory.iterdir():
            if _GENERATION.fullmatch(entry.name) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name in (_CURRENT, f".{_CURRENT}.tmp"):
                entry.unlink()

    def _collect(self, keep: set[str]) -> None:
        """Remove generations other than the current one (including those of interrupted saves)."""
        for entry in self.directory.iterdir():
            if _GENERATION.fullmatch(entry.name) and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
