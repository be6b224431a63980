"""Shared helpers of the lab tests: a settable clock and template labs made once a session.

Keys are the slow part of a lab: every (release, nodes) template is built
once with 1024-bit keys and copied for each test that needs one.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

from phone.lab import Lab

#: The seed's `utils ctl set-cluster mixed-mode` ran on Fri Mar 06 19:45:13 CET 2015.
SEED_CTL_TIME = datetime.datetime(2015, 3, 6, 18, 45, 13, tzinfo=datetime.timezone.utc)


class FakeClock:
    """A clock that stays where it is told."""

    def __init__(self, start: datetime.datetime = SEED_CTL_TIME) -> None:
        self.now = start

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


class LabFactory:
    """Copies of template labs: ``factory(tmp_path, release="12.5", nodes=2)``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.templates: dict[tuple[str, int], Path] = {}

    def template(self, release: str, nodes: int) -> Path:
        key = (release, nodes)
        if key not in self.templates:
            path = self.root / f"template-{release}-{nodes}"
            Lab.create(path, nodes=nodes, release=release, clock=FakeClock(), key_bits=1024)
            self.templates[key] = path
        return self.templates[key]

    def __call__(self, where: Path, *, release: str = "10.5", nodes: int = 2,
                 clock: FakeClock | None = None) -> Lab:
        target = where / "lab"
        while target.exists():
            target = target.with_name(target.name + "+")
        shutil.copytree(self.template(release, nodes), target)
        return Lab.open(target, clock=clock or FakeClock())


_FACTORY: LabFactory | None = None


def lab_factory() -> LabFactory:
    """One factory for the whole test session (templates live in a temporary folder removed at exit)."""
    global _FACTORY
    if _FACTORY is None:
        import atexit
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="phonetrust-lab-templates-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _FACTORY = LabFactory(root)
    return _FACTORY
