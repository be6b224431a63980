"""The fleet's testbed: a one-node CUCM 10.5 lab (``phone.lab``) in a temporary folder, served.

There is one emulated CUCM, ``phone.lab``; the testbed is a lab made for
fleet tests and benchmarks, with short names for the cluster changes of the
Cisco TAC note 118893 procedure (each one a list of CUCM operations run
through ``Lab.run``)::

    with serving_testbed() as testbed:
        fleet.boot_all("first-boot", tftp=testbed.tftp)
        testbed.apply("mixed-mode")                # utils ctl set-cluster mixed-mode
        fleet.boot_all("mixed-mode", tftp=testbed.tftp)
        testbed.apply("regenerate-callmanager")    # set cert regen CallManager + utils ctl update CTLFile
        fleet.boot_all("regenerate-callmanager", tftp=testbed.tftp)

The lab is served from child processes (``phone.lab.servers.processes``) so
that the fleet's own processes keep their cores; operations run here, on the
folder, and the servers pick them up at ``sync()``. ``REGENERATE_CALLMANAGER``
is the procedure as fleet steps: after it every SBD phone accepts (TVS vouches
for the new signer) and a 7940 rejects (its CTL must be erased by hand).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from phone.errors import UsageError
from phone.lab import Lab
from phone.lab.servers.processes import LabsServer, serving_labs

#: The procedure as fleet steps: (step name, cluster change before the step, or None).
REGENERATE_CALLMANAGER: tuple[tuple[str, str | None], ...] = (
    ("first-boot", None),
    ("mixed-mode", "mixed-mode"),
    ("regenerate-callmanager", "regenerate-callmanager"),
)
#: Each change as CUCM operations; ``ctl update`` after a regeneration runs in mixed mode only.
CHANGES: dict[str, tuple[str, ...]] = {
    "mixed-mode": ("ctl set-cluster mixed-mode",),
    "non-secure-mode": ("ctl set-cluster non-secure-mode",),
    "regenerate-callmanager": ("cert regenerate CallManager", "ctl update"),
    "update-ctl": ("ctl update",),
}
OPERATIONS = tuple(CHANGES)
RELEASE = "10.5"
_KEY = "testbed"


def create_testbed_lab(folder: Path, *, bits: int = 2048, clock=None) -> Lab:
    """The testbed's lab: one CUCM 10.5 publisher in ``folder``, non-secure mode."""
    from phone.scenario.rehearsal import ScenarioClock

    clock = clock or ScenarioClock()
    return Lab.create(folder, nodes=1, release=RELEASE, key_bits=bits, clock=lambda: clock.now)


def apply_change(lab: Lab, change: str) -> None:
    """Run the CUCM operations of ``change`` (one of ``OPERATIONS``) on ``lab``."""
    if change not in CHANGES:
        raise UsageError(f"unknown testbed operation {change!r}: expected one of {', '.join(OPERATIONS)}")
    for words in CHANGES[change]:
        if words == "ctl update" and not lab.state.mixed_mode:
            continue  # outside mixed mode a regenerated certificate needs no CTL
        lab.run(words)


class TestbedServer:
    """The served testbed lab: its TFTP address, ``apply`` between steps, the servers' figures."""

    __test__ = False  # not a pytest class

    def __init__(self, lab: Lab, server: LabsServer, host: str, clock) -> None:
        self.lab = lab
        self._server = server
        self._clock = clock
        self.tftp: tuple[str, int] = (host, server.tftp_ports[_KEY])

    def apply(self, change: str) -> None:
        """A cluster change (``OPERATIONS``), an hour after the last one; served from the next request."""
        self._clock.next_step()
        apply_change(self.lab, change)
        self._server.sync()

    def stats(self) -> dict[str, int]:
        """The TFTP server's counters (requests, served, not_found, …)."""
        return self._server.stats()[_KEY]

    def cpu_seconds(self) -> float:
        """CPU time the serving processes have used so far (user + system)."""
        return self._server.cpu_seconds()


@contextlib.contextmanager
def serving_testbed(*, host: str = "127.0.0.1", bits: int = 2048) -> Iterator[TestbedServer]:
    """A fresh testbed lab served from child processes until the block ends (its folder removed then)."""
    from phone.scenario.rehearsal import ScenarioClock

    with tempfile.TemporaryDirectory(prefix="phonetrust-testbed-") as folder:
        clock = ScenarioClock()
        lab = create_testbed_lab(Path(folder) / "lab", bits=bits, clock=clock)
        with serving_labs({_KEY: lab.path}, host=host) as server:
            yield TestbedServer(lab, server, host, clock)
