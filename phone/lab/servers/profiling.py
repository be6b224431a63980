"""CPU profiles of a fleet's child processes, when ``PHONETRUST_PROFILE`` names a folder.

The workers and the serving processes do their work on many threads (boot threads,
TLS handshakes in an executor, a thread per signalling connection), which one
``cProfile.Profile`` does not follow. With the variable set, every thread started
afterwards gets its own profile timed by ``time.thread_time`` (CPU, not wall time,
so a thread waiting for a loaded core costs nothing), and at the end of the process
they are written together to ``<folder>/<process name>-<pid>.prof`` (``pstats``).
Off by default: profiling roughly doubles the CPU per call.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: The environment variable naming the folder profiles are written to.
PROFILE_ENV = "PHONETRUST_PROFILE"


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """Profile every thread of this process until the block ends, when ``PHONETRUST_PROFILE`` is set."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        yield
        return
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(frame: object, event: str, arg: object) -> None:
        sys.setprofile(None)  # replaced by this thread's own profiler
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)
        with lock:
            every = [main, *profiles]
        stats = pstats.Stats(every[0])
        for profile in every[1:]:
            with contextlib.suppress(TypeError):  # a thread that never made a call
                stats.add(profile)
        Path(folder).mkdir(parents=True, exist_ok=True)
        stats.dump_stats(str(Path(folder) / f"{name}-{os.getpid()}.prof"))
