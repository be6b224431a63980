"""pytest plugin: rehearse a cluster change in your own regression tests.

Installed with phonetrust (entry point ``pytest11``), it gives:

- ``phonetrust_cluster``: a factory for served emulated clusters on free
  loopback ports (``phonetrust_cluster(release="10.5", nodes=1)`` returns a
  ``phone.scenario.rehearsal.Rehearsal``, stopped at the end of the test);
- ``assert_accepted``, ``assert_rejected``, ``assert_needs_manual_erase``: checks
  on a boot result with a message that says what the phone did instead.

Example::

    from phone.pytest_plugin import assert_accepted, assert_needs_manual_erase

    def test_callmanager_regeneration(phonetrust_cluster):
        cluster = phonetrust_cluster(release="10.5")
        phones = [cluster.phone(m) for m in ("CP-7975", "CP-8861", "CP-7940")]
        cluster.run("ctl set-cluster mixed-mode")
        cluster.boot(phones)
        cluster.run("cert regenerate CallManager", "ctl update")
        r7975, r8861, r7940 = cluster.boot(phones)
        assert_accepted(r7975, via="tvs")
        assert_accepted(r8861, via="tvs")
        assert_needs_manual_erase(r7940)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from phone.scenario.rehearsal import BootResult, Rehearsal


def _describe(result: BootResult) -> str:
    files = ", ".join(f"{e.name}={e.result}" + (f" ({e.reason})" if e.reason else "") for e in result.report.files)
    return f"{result.model.name} {result.phone.machine.device_name}: {result.outcome.value}; {files}"


def assert_accepted(result: BootResult, *, via: str | None = None) -> None:
    """The boot installed a new trust list and refused nothing (``via="tvs"``: TVS vouched for it)."""
    __tracebackhide__ = True
    if result.outcome.value != "accepted":
        raise AssertionError(f"expected the new trust list to be accepted; {_describe(result)}")
    if via is not None:
        vias = {e.via for e in result.report.files if e.result == "installed"}
        if via not in vias:
            raise AssertionError(f"expected acceptance via {via}, got {sorted(v for v in vias if v)}; "
                                 f"{_describe(result)}")


def assert_rejected(result: BootResult, *, code: str | None = None) -> None:
    """The boot refused a file and kept what was installed (``code``: the cause, see REJECTION_CODES)."""
    __tracebackhide__ = True
    if result.outcome.value != "rejected":
        raise AssertionError(f"expected a rejection; {_describe(result)}")
    if code is not None and code not in result.verdict.codes:
        raise AssertionError(f"expected rejection code {code}, got {list(result.verdict.codes)}; {_describe(result)}")


def assert_needs_manual_erase(result: BootResult) -> None:
    """The phone refused the new trust list for a cause only a hand erase of its CTL/ITL fixes."""
    __tracebackhide__ = True
    if not result.verdict.erase_needed:
        raise AssertionError(f"expected the phone to need a manual CTL/ITL erase; {_describe(result)}")


@pytest.fixture
def phonetrust_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Rehearsal]]:
    """A factory of served emulated clusters; every cluster stops when the test ends."""
    from phone.scenario.rehearsal import Rehearsal

    with contextlib.ExitStack() as stack:
        def make(*, release: str = "10.5", nodes: int = 1, key_size: int = 1024) -> Rehearsal:
            folder = tmp_path_factory.mktemp("phonetrust-lab") / "lab"
            return stack.enter_context(Rehearsal.create(folder, release=release, nodes=nodes, key_size=key_size))

        yield make
