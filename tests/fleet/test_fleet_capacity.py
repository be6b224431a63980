"""A fleet larger than the machine is refused up front; progress shows when stderr is not a terminal."""

from __future__ import annotations

import io
import resource
import subprocess
import sys

import pytest

from phone.errors import UsageError
from phone.fleet.capacity import GIB, available_bytes, check_capacity, estimate_bytes, phones_in_shard


def test_a_fleet_larger_than_the_memory_available_is_refused_naming_the_estimate_and_yes():
    needed = estimate_bytes(1_000_000, 2, 4)
    with pytest.raises(UsageError) as refused:
        check_capacity(1_000_000, 2, 4, available=needed - 1, allowed=False)
    assert "1000000 phones" in str(refused.value) and "--yes" in str(refused.value)
    assert f"{needed / GIB:.1f} GiB" in str(refused.value)
    assert check_capacity(1_000_000, 2, 4, available=needed - 1, allowed=True) == needed
    assert check_capacity(1_000_000, 2, 4, available=needed, allowed=False) == needed


def test_the_estimate_grows_with_phones_and_steps():
    assert estimate_bytes(2_000, 2, 1) - estimate_bytes(1_000, 2, 1) >= 1_000 * 2 * 1024
    assert estimate_bytes(1_000, 2, 10) > estimate_bytes(1_000, 2, 1)


def test_available_memory_is_the_kernels_mem_available(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683780 kB\nMemFree:  100 kB\nMemAvailable:   23754204 kB\n")
    assert available_bytes(meminfo) == 23754204 * 1024
    assert available_bytes(tmp_path / "missing") is None


@pytest.mark.parametrize(("total", "number", "of", "held"), [(10, 1, 1, 10), (10, 1, 3, 4), (10, 3, 3, 3),
                                                              (2, 3, 3, 0)])
def test_phones_in_a_shard_are_counted_without_allocating_them(total, number, of, held):
    assert phones_in_shard(total, number, of) == held
    assert held == len([i for i in range(total) if i % of == number - 1])


def _limit_memory():  # pragma: no cover - runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))


def test_fleet_run_of_millions_of_phones_is_refused_at_once_not_grown_into():
    # 16 million phones over 1000 steps would need terabytes: the run must say so in one line,
    # before allocating a phone (the child may not use more than 3 GiB of address space).
    done = subprocess.run([sys.executable, "-m", "phone", "fleet", "run", "--tftp", "127.0.0.1", "--phones",
                           "CP-7975=16000000", "--steps", "1000"], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_memory)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "--yes" in done.stderr and "16000000 phones" in done.stderr
    assert done.stdout == ""


def test_progress_is_a_plain_line_every_few_seconds_when_stderr_is_not_a_terminal():
    from phone.commands.fleet import _Progress

    now = [0.0]
    stream = io.StringIO()
    progress = _Progress(False, stream=stream, interval=5.0, clock=lambda: now[0])
    with progress:
        for done in range(1, 13):
            now[0] += 1.0
            progress.update("mixed-mode", done * 10, 120)
    assert stream.getvalue().splitlines() == ["phonetrust: step mixed-mode: 50/120 phones booted",
                                              "phonetrust: step mixed-mode: 100/120 phones booted"]
