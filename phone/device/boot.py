"""Carrying a phone machine through one boot: the loop between effects and transports.

The machine (``phone.firmware.machine``) says what to do; this loop does it through the
transports it is given and feeds the outcome back. Real phones pass TFTP and
TVS clients (``phone.device.phone``); tests of the machine pass in-memory functions.
The loop is the same either way, so what the tests drive is what runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from phone.firmware.machine import (
    AskTvs,
    Booted,
    BootFinished,
    BootReport,
    Effect,
    Event,
    Fetch,
    FileFailed,
    FileFetched,
    FileMissing,
    PhoneMachine,
    TvsAnswered,
    TvsFailed,
)

FetchFile = Callable[[Fetch], "FileFetched | FileMissing | FileFailed"]
AskTvsServer = Callable[[AskTvs], "TvsAnswered | TvsFailed"]


def run_boot(
    machine: PhoneMachine,
    *,
    fetch: FetchFile,
    ask_tvs: AskTvsServer,
    clock: Callable[[], float],
    observe: Callable[[Effect], None] = lambda effect: None,
    start: Event | None = None,
) -> tuple[PhoneMachine, BootReport]:
    """Boot ``machine`` to its end; every effect is shown to ``observe`` in order.

    Returns the machine after the boot (its ``flash`` is what the phone now
    keeps) and the boot report.
    """
    machine, effects = machine.handle(start or Booted(), clock())
    queue = deque(effects)
    while queue:
        effect = queue.popleft()
        observe(effect)
        if isinstance(effect, BootFinished):
            return machine, effect.report
        if isinstance(effect, Fetch):
            event: Event = fetch(effect)
        elif isinstance(effect, AskTvs):
            event = ask_tvs(effect)
        else:
            continue
        machine, more = machine.handle(event, clock())
        queue.extend(more)
    raise RuntimeError("the boot ended without BootFinished")  # pragma: no cover - a machine bug
