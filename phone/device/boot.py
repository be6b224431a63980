"""Carrying a phone machine through one boot: the loop between effects and transports.

The machine (``phone.firmware.machine``) says what to do; this loop does it through the
transports it is given and feeds the outcome back. Real phones pass TFTP, TVS and
CAPF clients (``phone.device.phone``); tests of the machine pass in-memory functions.
The loop is the same either way, so what the tests drive is what runs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import attrs

from phone.errors import TrustListFormatError
from phone.firmware.capf_plan import EnrolCapf
from phone.firmware.capf_session import CapfOutcome
from phone.firmware.machine import (
    AskTvs,
    Booted,
    BootFinished,
    BootReport,
    CapfFinished,
    Effect,
    Event,
    Fetch,
    FileFailed,
    FileFetched,
    FileMissing,
    PhoneMachine,
    RegistrationDone,
    TvsAnswered,
    TvsFailed,
)
from phone.firmware.registration import Register

from phone.wire.tlv import TrustList

FetchFile = Callable[[Fetch], "FileFetched | FileMissing | FileFailed"]
AskTvsServer = Callable[[AskTvs], TvsAnswered | TvsFailed]
EnrolWithCapf = Callable[[EnrolCapf], CapfFinished]


def no_capf_client(plan: EnrolCapf) -> CapfFinished:
    """For phones run without a CAPF client: the operation fails and nothing changes."""
    return CapfFinished(CapfOutcome("failed", "this phone was started without a CAPF client"))
RegisterWithCallManager = Callable[[Register], RegistrationDone]


def run_boot(
    machine: PhoneMachine,
    *,
    fetch: FetchFile,
    ask_tvs: AskTvsServer,
    clock: Callable[[], float],
    observe: Callable[[Effect], None] = lambda effect: None,
    start: Event | None = None,
    enrol_capf: EnrolWithCapf = no_capf_client,
    register: RegisterWithCallManager | None = None,
    client_certificate: str | None = None,
) -> tuple[PhoneMachine, BootReport]:
    """Boot ``machine`` to its end; every effect is shown to ``observe`` in order.

    With ``register`` the boot ends with the registration (docs/registration.md),
    the phone presenting ``client_certificate`` ("lsc", "mic" or None) over TLS.
    Returns the machine after the boot (its ``flash`` is what the phone now
    keeps) and the boot report.
    """
    first = start or Booted(register=register is not None, client_certificate=client_certificate)
    machine, effects = machine.handle(first, clock())
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
        elif isinstance(effect, EnrolCapf):
            event = enrol_capf(effect)
        elif isinstance(effect, Register):
            assert register is not None  # the machine registers only when the boot asked for it
            event = register(effect)
        else:
            continue
        machine, more = machine.handle(event, clock())
        queue.extend(more)
    raise RuntimeError("the boot ended without BootFinished")  # pragma: no cover - a machine bug


class SharedParses:
    """Parses each downloaded CTL or ITL once for many phones (a fleet's phones fetch the same lists).

    Wrap a fetch function with it; a ``FileFetched`` of a ``.tlv`` file comes back carrying the
    parsed list (``FileFetched.parsed``), shared with every other phone that got the same bytes.
    Parsed lists are immutable, so sharing is safe; only the last ``limit`` distinct lists are
    kept, so a server sending ever different files cannot fill memory.
    """

    def __init__(self, limit: int = 16) -> None:
        self._parsed: dict[bytes, TrustList | None] = {}
        self._limit = limit
        self._lock = threading.Lock()  # a fleet worker boots phones from several threads

    def parse(self, data: bytes) -> TrustList | None:
        with self._lock:
            if data in self._parsed:
                return self._parsed[data]
            if len(self._parsed) >= self._limit:
                self._parsed.pop(next(iter(self._parsed)))
            try:
                parsed: TrustList | None = TrustList.from_bytes(data)
            except TrustListFormatError:
                parsed = None  # the machine parses it again and refuses it with the reason
            self._parsed[data] = parsed
            return parsed

    def fetching(self, fetch: FetchFile) -> FetchFile:
        def fetch_and_parse(request: Fetch) -> FileFetched | FileMissing | FileFailed:
            event = fetch(request)
            if isinstance(event, FileFetched) and event.name.endswith(".tlv") and event.parsed is None:
                return attrs.evolve(event, parsed=self.parse(event.data))
            return event
        return fetch_and_parse
