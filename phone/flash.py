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
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from phone.errors import PhonetrustError
from phone.machine import Flash
from phone.trust import CachedCertificate

_CURRENT = "CURRENT"
_GENERATION = re.compile(r"gen-(\d{8})")
_META = "meta.json"
_CACHE = "tvs-cache.json"
_CTL = "CTLFile.tlv"
_ITL = "ITLFile.tlv"


class FlashStoreError(PhonetrustError):
    """A state folder that cannot be read or written."""


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
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
            name = marker.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise FlashStoreError(f"{marker}: {error.strerror}") from None
        if not _GENERATION.fullmatch(name) or not (self.directory / name).is_dir():
            raise FlashStoreError(f"{marker}: names {name!r}, which is not a flash generation here")
        return self.directory / name

    def load(self) -> Flash:
        """The flash as last saved (an empty flash for a new phone)."""
        current = self._current()
        if current is None:
            return Flash()
        meta = self._read_json(current / _META, default={})
        config_name = meta.get("config_name")
        return Flash(
            ctl=self._read_optional(current / _CTL),
            itl=self._read_optional(current / _ITL),
            config=self._read_optional(current / config_name) if config_name else None,
            config_name=config_name,
            tvs_cache=tuple(
                CachedCertificate(base64.b64decode(entry["certificate"]), frozenset(entry["roles"]),
                                  float(entry["expires"]))
                for entry in self._read_json(current / _CACHE, default=[])
            ),
        )

    def meta(self) -> dict[str, Any]:
        current = self._current()
        return {} if current is None else self._read_json(current / _META, default={})

    @staticmethod
    def _read_optional(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    @staticmethod
    def _read_json(path: Path, *, default: Any) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default
        except (ValueError, OSError) as error:
            raise FlashStoreError(f"{path}: unreadable ({error})") from None

    # -- writing ----------------------------------------------------------------------

    def save(self, flash: Flash, **meta: Any) -> None:
        """Make ``flash`` the phone's flash, atomically (see the module docstring)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        current = self._current()
        number = int(_GENERATION.fullmatch(current.name).group(1)) + 1 if current else 1
        generation = self.directory / f"gen-{number:08d}"
        if generation.exists():
            shutil.rmtree(generation)
        generation.mkdir()
        write = _write_file if self.durable else lambda path, data: path.write_bytes(data)
        if flash.ctl is not None:
            write(generation / _CTL, flash.ctl)
        if flash.itl is not None:
            write(generation / _ITL, flash.itl)
        if flash.config is not None and flash.config_name:
            if "/" in flash.config_name or flash.config_name.startswith("."):
                raise FlashStoreError(f"refusing to store a configuration named {flash.config_name!r}")
            write(generation / flash.config_name, flash.config)
        cache = [{"certificate": base64.b64encode(e.certificate).decode(), "roles": sorted(e.roles),
                  "expires": e.expires} for e in flash.tvs_cache]
        write(generation / _CACHE, json.dumps(cache).encode())
        write(generation / _META, json.dumps({**self.meta(), **meta, "config_name": flash.config_name},
                                             indent=2).encode())
        if self.durable:
            _fsync_dir(generation)
        marker = self.directory / f".{_CURRENT}.tmp"
        write(marker, generation.name.encode())
        os.replace(marker, self.directory / _CURRENT)
        if self.durable:
            _fsync_dir(self.directory)
        self._collect(keep={generation.name})

    def _collect(self, keep: set[str]) -> None:
        """Remove generations other than the current one (including those of interrupted saves)."""
        for entry in self.directory.iterdir():
            if _GENERATION.fullmatch(entry.name) and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
