"""Where the bundled data (models/, scenarios/) lives.

In a wheel or a plain ``pip install .`` the build copies the repository's
top-level ``models/`` and ``scenarios/`` into ``phone/_bundled/`` (see
pyproject.toml). In a source checkout or an editable install they are still
beside the package, so both places are looked at, installed copy first.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(name: str) -> Path:
    """Return the folder holding the bundled data set ``name`` ("models" or "scenarios")."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled data folder {name!r} is missing from this installation")
