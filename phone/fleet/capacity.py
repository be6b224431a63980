"""Will a fleet fit in memory? An estimate made before any phone exists, against what the machine has.

A fleet keeps every phone for the whole run: in its worker (model, MAC, the
flash with its trust lists, about 1.7 KiB a phone as measured in docs/fleet.md)
and in the parent (the phone list and each phone's last outcome, about 0.25 KiB,
plus about 0.15 KiB a boot for the timeline of the HTML report). A run much
larger than the machine would otherwise grow silently until the system kills
it; ``check_capacity`` refuses it up front, in one line, unless asked to go on.
"""

from __future__ import annotations

import math
from pathlib import Path

from phone.errors import UsageError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

#: Measured (docs/fleet.md, 40,000 phones over 2 workers): per phone in the workers, with its flash.
WORKER_BYTES_PER_PHONE = int(1.7 * KIB)
#: Measured with tracemalloc: the parent's phone list, worker set-ups and last outcome per phone.
PARENT_BYTES_PER_PHONE = 256
#: The parent's timeline entry per boot (one per phone per step).
PARENT_BYTES_PER_BOOT = 160
#: An idle worker process (interpreter, cryptography, tftpy, the catalogue), and the parent with its servers.
WORKER_BASE_BYTES = 70 * MIB
PARENT_BASE_BYTES = 150 * MIB


def phones_in_shard(total: int, number: int, of: int) -> int:
    """How many of ``total`` phones shard ``number``/``of`` holds (indices ``number``-1 modulo ``of``)."""
    return max(0, math.ceil((total - (number - 1)) / of))


def estimate_bytes(phones: int, workers: int, steps: int) -> int:
    """The memory a run of ``phones`` over ``workers`` processes and ``steps`` steps needs, roughly."""
    per_phone = WORKER_BYTES_PER_PHONE + PARENT_BYTES_PER_PHONE + PARENT_BYTES_PER_BOOT * max(1, steps)
    return PARENT_BASE_BYTES + WORKER_BASE_BYTES * max(1, workers) + phones * per_phone


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The kernel's estimate of memory available without swapping (``MemAvailable``), or None if unknown."""
    try:
        text = meminfo.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            number, _, unit = value.strip().partition(" ")
            return int(number) * (KIB if unit.strip().lower() == "kb" else 1)
    return None


def gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / MIB:.0f} MiB"


def check_capacity(phones: int, workers: int, steps: int, *, available: int | None, allowed: bool) -> int:
    """Refuse (one line) a run whose estimate exceeds ``available`` unless ``allowed``; returns the estimate."""
    needed = estimate_bytes(phones, workers, steps)
    if available is not None and needed > available and not allowed:
        raise UsageError(f"{phones} phones over {steps} step(s) need about {gib(needed)} of memory and "
                         f"{gib(available)} is available: run fewer phones (or --shard K/N on several "
                         "machines), or give --yes to run anyway")
    return needed
