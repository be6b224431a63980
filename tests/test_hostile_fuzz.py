"""Short atheris runs of every fuzz target (fuzz/*.py), each in a subprocess, from its seed corpus.

A few seconds each keeps the targets working and catches what a fresh
mutation finds quickly; the long runs and their figures are in
docs/reliability.md. New inputs go to a temporary folder, never into the
committed corpus; a crash leaves its input in the test's temporary folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
SECONDS = 5

#: target -> (seed corpus, libFuzzer dictionary or None)
TARGETS = {
    "fuzz_tlv": ("tlv", None),
    "fuzz_config": ("config", "config.dict"),
    "fuzz_tvs": ("tvs", None),
    "fuzz_phone": ("phone", None),
    "fuzz_encconfig": ("encconfig", None),
    "fuzz_capf": ("capf", None),
}


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_a_short_fuzz_run_finds_nothing(tmp_path, target):
    corpus, dictionary = TARGETS[target]
    found = tmp_path / "found"
    found.mkdir()
    command = [sys.executable, str(FUZZ / f"{target}.py"), str(found), str(FUZZ / "corpus" / corpus),
               f"-max_total_time={SECONDS}", "-seed=1", "-print_final_stats=1", "-rss_limit_mb=1024",
               f"-artifact_prefix={tmp_path}/"]
    if dictionary:
        command.append(f"-dict={FUZZ / dictionary}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS * 10 + 60, cwd=tmp_path)
    crashes = [path.name for path in tmp_path.iterdir() if path.name.startswith(("crash-", "timeout-", "oom-"))]
    assert done.returncode == 0 and not crashes, done.stderr[-4000:]
    executed = int(re.search(r"stat::number_of_executed_units: (\d+)", done.stderr).group(1))
    assert executed > 1000, done.stderr[-2000:]  # the target ran, not only its start-up


def test_every_seed_corpus_is_there_and_the_phone_state_matches_it():
    # fuzz/make_corpus.py writes both; fuzz_phone.py's oracle needs them to come from one run.
    for corpus, _ in TARGETS.values():
        assert len(list((FUZZ / "corpus" / corpus).iterdir())) >= 5, corpus
    assert {path.name for path in (FUZZ / "phone_state").iterdir()} == {
        "ctl.tlv", "itl.tlv", "config.xml", "tvs-knows-1.der", "tvs-knows-2.der"}
