"""What the lab's TFTP servers serve: files made by name, then files in a folder, safely.

The lab's TFTP server (``phone.lab.servers.tftp``) looks files up here; the
path-safety rules: no absolute paths, no backslashes, no
control characters, no empty, ``.`` or ``..`` parts, and nothing that resolves
outside the root (symbolic links included).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from phone.errors import RemoteError, UsageError

#: Makes a file by name for one client (e.g. ``SEP<MAC>.cnf.xml``): its bytes, or None.
Dynamic = Callable[[str, tuple[str, int]], "bytes | None"]


class RefusedName(RemoteError):
    """A requested name that is not served (answered with TFTP error 2, access violation)."""


def unsafe_name(name: str) -> str:
    """Why a requested name is refused, or "" for a plain relative path."""
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute path"
    if "\\" in name:
        return "backslash in name"
    if not name.isprintable():
        return "control character in name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "empty, '.' or '..' path part"
    return ""


def check_server_settings(port: int, timeout: float, retries: int) -> None:
    """The TFTP server's settings, with one-line errors."""
    if not 0 <= port < 65536:
        raise UsageError(f"TFTP port must be 0-65535, not {port}")
    if not timeout > 0 or retries < 1:
        raise UsageError(f"TFTP server timeout must be positive and retries at least 1, not {timeout}, {retries}")


class FileSource:
    """Files made by ``dynamic`` first, then the files of ``root`` (either may be None)."""

    def __init__(self, root: Path | str | None, dynamic: Dynamic | None) -> None:
        if root is not None:
            root = Path(root).resolve()
            if not root.is_dir():
                raise UsageError(f"TFTP root {str(root)!r} is not a folder")
        if dynamic is not None and not callable(dynamic):
            raise UsageError("the dynamic file callback must be callable")
        self.root: Path | None = root
        self.dynamic = dynamic

    def lookup(self, name: str, client: tuple[str, int]) -> bytes | None:
        """The file's bytes, None when there is no such file; ``RefusedName`` for an unsafe name."""
        problem = unsafe_name(name)
        if problem:
            raise RefusedName(problem)
        if self.dynamic is not None:
            data = self.dynamic(name, client)
            if data is not None:
                return bytes(data)
        if self.root is None:
            return None
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):
            raise RefusedName("the name leads out of the root")
        try:
            return path.read_bytes() if path.is_file() else None
        except FileNotFoundError:  # removed since is_file()
            return None
