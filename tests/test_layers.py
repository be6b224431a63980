"""The pure layers stay pure: phone/wire (bytes <-> records) and phone/firmware (the sans-I/O phone).

Nothing in them may reach a socket, a file, a thread, a process or a clock: the
machine is fed events and a ``now``, and the device layer does the I/O. The
check reads each module's source with ``ast``, so a forbidden import is caught
even where it is never executed (inside a function, under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("phone/wire", "phone/firmware")

#: Modules whose import means I/O, concurrency or a clock.
FORBIDDEN_MODULES = frozenset({
    "socket", "ssl", "asyncio", "threading", "subprocess", "time", "os", "pathlib", "shutil", "tempfile", "io",
})
#: Built-in calls that do I/O.
FORBIDDEN_CALLS = frozenset({"open"})


def impurities(source: str, filename: str = "<module>") -> list[str]:
    """What in ``source`` breaks purity, one "line: what" per finding (empty when pure)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else (
                function.attr if isinstance(function, ast.Attribute) else None)
            if name in FORBIDDEN_CALLS:
                found.append(f"{node.lineno}: calls {name}()")
            continue
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{node.lineno}: imports {name}")
    return found


def pure_modules() -> list[Path]:
    return sorted(path for package in PURE_PACKAGES for path in (ROOT / package).glob("*.py"))


@pytest.mark.parametrize("path", pure_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_pure_layers_do_no_io(path: Path) -> None:
    assert impurities(path.read_text(), str(path)) == []


def test_both_pure_packages_are_walked() -> None:
    walked = {path.parent.name for path in pure_modules()}
    assert walked == {"wire", "firmware"}
    assert {"machine.py", "trust.py", "models.py", "tlv.py", "certs.py"} <= {path.name for path in pure_modules()}


@pytest.mark.parametrize("source, finding", [
    ("import socket\n", "1: imports socket"),
    ("def f():\n    import os.path\n", "2: imports os.path"),
    ("from pathlib import Path\n", "1: imports pathlib"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import io\n", "3: imports io"),
    ("x = 1\ndata = open('f').read()\n", "2: calls open()"),
    ("import io\n", "1: imports io"),
    ("import builtins\nbuiltins.open('f')\n", "2: calls open()"),
])
def test_the_purity_check_flags_io(source: str, finding: str) -> None:
    assert finding in impurities(source)


def test_the_purity_check_lets_pure_code_through() -> None:
    source = "import hashlib\nimport logging\nfrom phone.wire.tlv import TrustList\nfrom . import x\nopened = 1\n"
    assert impurities(source) == []
