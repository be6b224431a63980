"""What the fleet and its worker processes say to each other (pickled through a pipe and a queue).

To a worker, on its pipe: ``BootStep``, ``Act``, ``SendFlash``, ``SendMemory``,
``Stop``. From every worker, on the one results queue: ``Ready``, ``Rows``
(batches during a step), ``StepDone``, ``Acted``, ``FlashOf``, ``Memory``,
``WorkerFailed``. Each reply names its worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from phone.firmware.machine import Flash
    from phone.fleet.rows import BootRow
    from phone.fleet.worker import StepOrder


# -- to a worker -------------------------------------------------------------------------------

@attrs.frozen
class BootStep:
    """Boot every phone once."""

    order: StepOrder


@attrs.frozen
class Act:
    """A phone action (erase-ctl, erase-itl, erase, factory-reset) on every phone of ``models``."""

    action: str
    models: frozenset[str]


@attrs.frozen
class SendFlash:
    """Send every phone's flash (between steps)."""


@attrs.frozen
class SendMemory:
    """Send the worker's peak resident memory."""


@attrs.frozen
class Stop:
    """End the worker process."""


# -- from a worker -----------------------------------------------------------------------------

@attrs.frozen
class Ready:
    worker: int
    pid: int


@attrs.frozen
class Rows:
    worker: int
    rows: list[BootRow]


@attrs.frozen
class StepStats:
    boots: int
    cpu_seconds: float
    peak_rss_kib: int = 0


@attrs.frozen
class StepDone:
    worker: int
    step_index: int
    stats: StepStats


@attrs.frozen
class Acted:
    worker: int
    phones: int


@attrs.frozen
class FlashOf:
    worker: int
    phones: list[tuple[str, str, Flash]]  # (MAC, model, Flash)


@attrs.frozen
class Memory:
    worker: int
    peak_rss_kib: int


@attrs.frozen
class WorkerFailed:
    worker: int
    error: str
