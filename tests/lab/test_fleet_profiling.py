"""PHONETRUST_PROFILE: every thread of a fleet's child process profiled by its CPU, written at the end."""

from __future__ import annotations

import pstats
import threading

from phone.lab.servers.profiling import PROFILE_ENV, profiled


def _spin_in_a_thread() -> None:
    total = 0
    for number in range(20_000):
        total += number * number


def test_every_thread_started_in_the_block_is_in_the_written_profile(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, str(tmp_path / "profiles"))
    with profiled("fleet-worker-0"):
        thread = threading.Thread(target=_spin_in_a_thread)
        thread.start()
        thread.join()
    written = list((tmp_path / "profiles").glob("fleet-worker-0-*.prof"))
    assert len(written) == 1
    functions = {name for _, _, name in pstats.Stats(str(written[0])).stats}
    assert "_spin_in_a_thread" in functions


def test_without_the_variable_nothing_is_profiled_or_written(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with profiled("fleet-worker-0"):
        assert threading._profile_hook is None  # noqa: SLF001 - no profiler was installed for new threads
    assert list(tmp_path.rglob("*.prof")) == []
