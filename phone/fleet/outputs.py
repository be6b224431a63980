"""Output files checked before a long run starts, so a bad path does not lose its results.

``check_outputs`` opens each named file for appending (creating it, then
removing what it created) the way the run will write it at the end: a folder
that does not exist, a path that is a folder, a read-only place or a full
disk is one clear line before any lab is built or any phone boots, not an
error after the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from phone.errors import UsageError


def check_writable(path: Path, option: str) -> None:
    """Refuse ``path`` (given to ``option``) unless a file can be written there."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder, not a file")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot be written ({error.strerror or error})") from None
    if not existed:
        os.unlink(path)


def check_outputs(outputs: Mapping[str, Path | None]) -> None:
    """Check every output file named (option -> path; None: not asked for)."""
    for option, path in outputs.items():
        if path is not None:
            check_writable(Path(path), option)


def check_folder(path: Path | None, option: str) -> None:
    """Refuse a folder option whose path is an existing file."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, not a folder")
