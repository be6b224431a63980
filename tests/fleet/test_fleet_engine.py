"""The fleet engine against the self-served testbed cluster over loopback: real TFTP, real TLS TVS."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from phone.fleet import Fleet, parse_phones
from phone.fleet import worker as worker_module
from phone.fleet.testbed import REGENERATE_CALLMANAGER, serving_testbed
from phone.fleet.worker import StepOrder, Worker, WorkerSetup
from phone.console.parse import parse

FLEET = "CP-7975=4,CP-8861=6,CP-7940=3"


@pytest.fixture(scope="module")
def testbed():
    with serving_testbed(bits=1024) as server:
        yield server


def rehearse(fleet, testbed):
    summaries = []
    for step, change in REGENERATE_CALLMANAGER:
        if change:
            testbed.apply(change)
        summaries.append(fleet.boot_all(step, tftp=testbed.tftp))
    return summaries


def test_sbd_phones_accept_a_regenerated_callmanager_and_7940s_need_a_hand_erase(tmp_path):
    # Its own testbed: the rehearsal changes the cluster.
    with serving_testbed(bits=1024) as testbed, Fleet(parse_phones(FLEET), workers=2, concurrency=6,
                                                      db=tmp_path / "r.sqlite") as fleet:
        first, mixed, regenerated = rehearse(fleet, testbed)
        summary = fleet.summary()
    assert first.by_model["CP-8861"]["accepted"] == 6 and first.by_model["CP-7940"]["unchanged"] == 3
    assert mixed.by_model["CP-7940"]["accepted"] == 3  # the first CTL, on trust
    last = summary.by_model
    assert last["CP-7975"] == {"accepted": 4, "rejected": 0, "unchanged": 0, "failed": 0, "unsupported": 0,
                               "erase_needed": 0, "through_tvs": 4, "lsc_installed": 0, "registered": 4,
                               "registration_failed": 0, "phones": 4}
    assert last["CP-8861"]["accepted"] == 6 and last["CP-8861"]["through_tvs"] == 6
    assert last["CP-7940"]["rejected"] == 3 and last["CP-7940"]["erase_needed"] == 3
    document = summary.to_json()
    assert {"phones", "boots", "seconds", "by_model"} <= set(document)
    assert document["phones"] == 13 and document["boots"] == 39
    assert [step["name"] for step in document["steps"]] == [name for name, _ in REGENERATE_CALLMANAGER]
    assert regenerated.boots == 13


def test_every_boot_is_a_row_with_its_timings_tvs_answers_and_files(tmp_path):
    with serving_testbed(bits=1024) as testbed, Fleet(parse_phones("CP-8861=3,CP-7940=2"), workers=0,
                                                      db=tmp_path / "r.sqlite") as fleet:
        rehearse(fleet, testbed)
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    rows = connection.execute("SELECT step, mac, model, outcome, erase_needed, codes, tvs, start, tftp_seconds, "
                              "tvs_seconds, total_seconds, downloads FROM boots ORDER BY step_index, mac").fetchall()
    assert len(rows) == 15
    regenerated = {row[1]: row for row in rows if row[0] == "regenerate-callmanager"}
    sbd = regenerated["02C15C000000"]
    assert sbd[2] == "CP-8861" and sbd[3] == "accepted"
    answers = json.loads(sbd[6])
    assert answers[0]["status"] == 0 and set(answers[0]["roles"]) == {0, 2} and answers[0]["type"] == 3
    assert sbd[8] > 0 and sbd[9] > 0 and sbd[10] >= sbd[8] + sbd[9] and sbd[11] == 3
    legacy = regenerated["02C15C000003"]
    assert legacy[3] == "rejected" and legacy[4] == 1 and legacy[5] and legacy[6] == "[]"
    files = connection.execute("SELECT name, result FROM files WHERE mac = '02C15C000003' AND step_index = 2"
                               ).fetchall()
    assert ("CTLSEP02C15C000003.tlv", "rejected") in files
    run = connection.execute("SELECT phones, phone_count, shard, finished FROM runs").fetchone()
    assert run[:3] == ("CP-8861=3,CP-7940=2", 5, "1/1") and run[3] is not None
    assert [r[0] for r in connection.execute("SELECT name FROM steps ORDER BY step_index")] == [
        name for name, _ in REGENERATE_CALLMANAGER]


def test_consoles_are_written_per_phone_in_the_model_dialect_and_continue_across_steps(tmp_path, testbed):
    with Fleet(parse_phones("CP-7975=1,CP-8861=1"), workers=0, console_dir=tmp_path / "consoles") as fleet:
        fleet.boot_all("one", tftp=testbed.tftp)
        fleet.boot_all("two", tftp=testbed.tftp)
    logs = {path.name: path.read_text() for path in (tmp_path / "consoles").iterdir()}
    assert set(logs) == {"SEP02C15C000000.log", "SEP02C15C000001.log"}
    parsed = parse(logs["SEP02C15C000000.log"])
    assert {entry.dialect for entry in parsed} == {"java79xx"}
    sequence = [int(entry.seq) for entry in parsed]
    assert sequence == list(range(1, len(sequence) + 1)) and len(sequence) > 10
    assert {entry.dialect for entry in parse(logs["SEP02C15C000001.log"])} == {"enterprise"}


def test_a_boot_that_raises_is_a_failed_row_and_the_others_go_on(monkeypatch, testbed):
    calls = {"n": 0}
    real = worker_module.run_boot

    def flaky(machine, **kwargs):
        calls["n"] += 1
        if machine.device_id.endswith("1"):
            raise RuntimeError("a bug in one phone")
        return real(machine, **kwargs)

    monkeypatch.setattr(worker_module, "run_boot", flaky)
    phones = ((0, "CP-8861", "02C15C000000"), (1, "CP-8861", "02C15C000001"), (2, "CP-8861", "02C15C000002"))
    worker = Worker(WorkerSetup(0, phones, concurrency=2))
    rows = []
    worker.run_step(StepOrder(0, "s", *testbed.tftp, start_at=time.time()), rows.extend)
    outcomes = {row.mac: (row.outcome, row.error) for row in rows}
    assert outcomes["02C15C000001"][0] == "failed" and "a bug in one phone" in outcomes["02C15C000001"][1]
    assert outcomes["02C15C000000"] == ("accepted", None) and outcomes["02C15C000002"] == ("accepted", None)


def test_phones_sharing_a_trust_list_share_one_copy_of_it(testbed):
    phones = tuple((i, "CP-8861", f"02C15C{i:06X}") for i in range(4))
    worker = Worker(WorkerSetup(0, phones, concurrency=4))
    worker.run_step(StepOrder(0, "s", *testbed.tftp, start_at=time.time()), lambda rows: None)
    assert len({id(phone.flash.itl) for phone in worker.phones}) == 1
    assert worker.phones[0].flash.itl is not None


def test_a_step_with_jitter_spreads_the_starts(testbed):
    phones = tuple((i, "CP-7940", f"02C15C{i:06X}") for i in range(6))
    worker = Worker(WorkerSetup(0, phones, concurrency=6))
    rows = []
    began = time.time()
    worker.run_step(StepOrder(0, "s", *testbed.tftp, start_at=began, jitter=1.0), rows.extend)
    starts = sorted(row.start - began for row in rows)
    assert starts[-1] - starts[0] > 0.2 and starts[-1] < 1.5


def test_a_fleet_against_the_emulated_lab_sees_the_seeds_regeneration(tmp_path):
    from phone.lab.servers.processes import serving_labs
    from phone.lab import Lab

    lab = Lab.create(tmp_path / "lab", nodes=2, release="10.5", key_bits=1024)
    with serving_labs({"a": tmp_path / "lab"}) as servers, \
            Fleet(parse_phones("CP-7975=2,CP-8861=3,CP-7940=2"), workers=2, concurrency=4) as fleet:
        tftp = ("127.0.0.1", servers.tftp_ports["a"])
        first = fleet.boot_all("non-secure", tftp=tftp)
        lab.set_cluster_mixed_mode()
        servers.sync()
        mixed = fleet.boot_all("mixed-mode", tftp=tftp)
        lab.regenerate_certificate("CallManager")
        lab.ctl_update()
        servers.sync()
        regenerated = fleet.boot_all("regenerate", tftp=tftp)
        servers.tvs(None, up=False)
        fleet.act("erase-ctl", ["CP-7940"])
        erased = fleet.boot_all("erase-legacy", tftp=tftp)
        summary = fleet.summary("regenerate")
    assert first.by_model["CP-8861"]["accepted"] == 3 and first.by_model["CP-7940"]["unchanged"] == 2
    assert mixed.by_model["CP-7940"]["accepted"] == 2 and mixed.by_model["CP-7975"]["accepted"] == 2
    assert regenerated.by_model["CP-7975"]["through_tvs"] == 2 and regenerated.by_model["CP-8861"]["accepted"] == 3
    assert regenerated.by_model["CP-7940"]["erase_needed"] == 2
    # after the hand erase the 7940s take the new CTL on trust; nothing asks TVS (it is down)
    assert erased.by_model["CP-7940"]["accepted"] == 2 and erased.by_model["CP-8861"]["unchanged"] == 3
    assert summary.counted == "regenerate" and summary.by_model["CP-7940"]["rejected"] == 2


class VirtualWall:
    """Wall time that moves only when the worker sleeps (one boot thread, so in schedule order)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept = 0.0

    def wall(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_a_worker_reads_the_clock_it_is_given_so_a_long_jitter_waits_no_real_time(testbed):
    from phone.fleet.clock import Clock
    from phone.fleet.worker import schedule

    virtual = VirtualWall()
    phones = tuple((i, "CP-8861", f"02C15C{i:06X}") for i in range(5))
    worker = Worker(WorkerSetup(0, phones, concurrency=1, seed=3),
                    clock=Clock(wall=virtual.wall, sleep=virtual.sleep))
    order = StepOrder(0, "s", *testbed.tftp, start_at=virtual.now, jitter=3600.0)
    rows = []
    stats = worker.run_step(order, rows.extend)
    planned = schedule(list(worker.phones), order, 3, lambda phone: phone.mac)
    assert [row.start - order.start_at for row in rows] == pytest.approx([delay for delay, _ in planned])
    assert virtual.slept == pytest.approx(max(delay for delay, _ in planned)) and virtual.slept > 60
    assert stats.boots == 5 and all(row.outcome == "accepted" for row in rows)


def test_boot_rows_are_frozen_records_named_by_field():
    import attrs

    from phone.fleet.rows import BOOT_FIELDS, BootRow, row_values

    row = BootRow.failed(2, 7, "02C15C000007", "CP-8861", "RuntimeError: x", 1.5)
    assert row.outcome == "failed" and row.error == "RuntimeError: x" and row.files == "[]"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        row.outcome = "accepted"
    assert dict(zip(BOOT_FIELDS, row_values(row)))["mac"] == "02C15C000007"
