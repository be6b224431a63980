"""A phone's state folder under faults: a save killed at any moment.

The kill -9 of a phone mid-boot is tests/test_flash.py; here the save itself
is killed, with state large enough that a kill lands inside it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from phone.flash import FlashStore

# -- kill -9 during FlashStore.save ---------------------------------------------------------

#: Two large flashes, A and B (a 65 KB ITL, a 40 KB config, 300 cached certificates: 0.5 MB in all).
#: Source text, because the child process that saves them builds them too.
_BIG_FLASH = textwrap.dedent("""
    import hashlib
    from phone.machine import Flash
    from phone.trust import CachedCertificate

    def big_flash(tag):
        def blob(name, size):
            return (hashlib.sha256((tag + name).encode()).digest() * (size // 32 + 1))[:size]
        cache = tuple(CachedCertificate(blob(f"cert{i}", 900), frozenset({0, i % 4}), 1e9 + i) for i in range(300))
        return Flash(ctl=blob("ctl", 20_000), itl=blob("itl", 65_000), config=blob("cfg", 40_000),
                     config_name=f"SEP{tag}.cnf.xml", tvs_cache=cache)
""")

_SAVER = _BIG_FLASH + textwrap.dedent("""
    import sys
    from phone.flash import FlashStore
    store = FlashStore(sys.argv[1])
    versions = [big_flash("A"), big_flash("B")]
    store.save(versions[0], model="CP-8861")
    print("ready", flush=True)
    turn = 0
    while True:  # every moment is inside a save or between two
        turn += 1
        store.save(versions[turn % 2], model="CP-8861")
""")


@pytest.mark.slow
def test_kill_9_at_random_moments_of_a_save_leaves_the_old_or_the_new_flash(tmp_path):
    namespace: dict = {}
    exec(_BIG_FLASH, namespace)  # noqa: S102 - the same builder the child runs
    versions = [namespace["big_flash"]("A"), namespace["big_flash"]("B")]
    chooser = random.Random(20240608)
    kills, interrupted = 20, 0
    for round_number in range(kills):
        state = tmp_path / f"state{round_number}"
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(state)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(chooser.uniform(0.0, 0.15))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        # More than CURRENT and one generation: the kill landed inside a save.
        interrupted += len([p for p in state.iterdir() if p.name != "CURRENT"]) > 1
        loaded = FlashStore(state).load()
        assert loaded in versions, round_number
        FlashStore(state).save(loaded)  # the next save clears what the killed one left
        assert sorted(p.name for p in state.iterdir()) == ["CURRENT", (state / "CURRENT").read_text()]
        assert FlashStore(state).load() == loaded
    assert interrupted >= kills // 2, interrupted  # measured: 30 of 30 kills landed inside a save
