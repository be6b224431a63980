"""A phone's console: machine ``Log`` effects written as the model's dialect (docs/logs.md).

The machine says what happened (``Log("tvs.cache_flushed")``); the catalogue
(``phone.console.catalogue``) says which lines that is in the model's dialect; the
writers (``phone.console.writers``) stamp the sequence number and the time from the
injected clock and check each line reads back. Models without a console
(Jabber) write nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from phone.console import catalogue as logtexts
from phone.console.writers import ConsoleLog, UnrenderableMessage, escape_for_console
from phone.firmware.machine import Log
from phone.firmware.models import PhoneModel

#: (pid, tid) per process on firmware that prints them, e.g. "(346:1887) SECUREAPP-…" (the 8861 of Cisco TAC 213407).
_ENTERPRISE_THREADS = {"SECUREAPP": (346, 1887), "downd": (212, 212), "JAVA": (520, 733)}

#: The dgetfile process id an enterprise console shows for each download (Cisco TAC 213407's
#: log: 870 for the CTL, 877 for the per-device ITL); the others are the emulator's own.
_DGETFILE_PIDS = ((lambda name: name.startswith("CTL"), 870),
                  (lambda name: name == "ITLFile.tlv", 878),
                  (lambda name: name.startswith("ITL"), 877),
                  (lambda name: name.endswith(".cnf.xml.enc.sgn"), 883),
                  (lambda name: name.endswith(".cnf.xml.sgn"), 881),
                  (lambda name: name.endswith(".cnf.xml"), 882))


def dgetfile_pid(name: str) -> int | None:
    """The dgetfile process id of the download of file ``name`` (see ``_DGETFILE_PIDS``)."""
    return next((pid for matches, pid in _DGETFILE_PIDS if matches(name)), None)


def _console_fields(effect: Log) -> Mapping[str, object]:
    """The machine's fields plus what only the console shows (the download's process id)."""
    if effect.event.startswith("download.") and "name" in effect.fields:
        return {**effect.fields, "pid": dgetfile_pid(str(effect.fields["name"]))}
    return effect.fields


class PhoneConsole:
    """Renders one phone's console; lines go to ``sink`` and are kept in ``lines`` when ``keep``."""

    def __init__(
        self,
        model: PhoneModel,
        clock: Callable[[], datetime],
        *,
        sink: Callable[[str], object] | None = None,
        keep: bool = True,
        first_seq: int = 1,
        threads: bool = True,
    ) -> None:
        self.dialect = model.log_dialect
        self.lines: list[str] = []
        self._keep = keep
        self._sink = sink
        self._threads = threads and self.dialect == logtexts.ENTERPRISE
        self._writer = None
        if self.dialect is not None:
            self._writer = ConsoleLog(self.dialect, clock, first_seq=first_seq, sink=self._take)

    def _take(self, line: str) -> None:
        if self._keep:
            self.lines.append(line)
        if self._sink is not None:
            self._sink(line)

    def write(self, effect: Log) -> None:
        """Write the lines of one machine log event."""
        if self._writer is None:
            return
        for level, process, message in logtexts.render(effect.event, self.dialect, _console_fields(effect)):
            pid_tid = _ENTERPRISE_THREADS.get(process) if self._threads else None
            try:
                self._writer.emit(level, process, message, pid_tid=pid_tid)
            except UnrenderableMessage:
                # The fields hold text from a peer (a TFTP error message, a signed file's
                # FILENAME) that would split the line or forge an entry: write it escaped.
                self._writer.emit(level, process, escape_for_console(message), pid_tid=pid_tid)
