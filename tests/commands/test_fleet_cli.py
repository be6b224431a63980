"""`phonetrust fleet run|report|merge`: the JSON contract, tables, shards, HTML, a killed run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from phone.cli import main
from phone.fleet.testbed import serving_testbed

REHEARSAL = "testbed:regenerate-callmanager"


def run_json(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_fleet_run_prints_designs_summary_for_the_testbed_rehearsal(tmp_path, capsys):
    document = run_json(["fleet", "run", REHEARSAL, "--phones", "CP-7975=3,CP-8861=3,CP-7940=2", "--workers", "2",
                         "--key-size", "1024",
                         "--json", "--db", str(tmp_path / "r.sqlite"), "--html", str(tmp_path / "r.html")], capsys)
    assert document["phones"] == 8 and document["boots"] == 24 and document["seconds"] > 0
    assert document["by_model"]["CP-7940"]["rejected"] == 2 and document["by_model"]["CP-7940"]["erase_needed"] == 2
    assert document["by_model"]["CP-8861"]["accepted"] == 3 and document["by_model"]["CP-7975"]["accepted"] == 3
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 4  # outcome chart + one timeline per step
    # Self-contained: its one inline script and no file, font or page from elsewhere.
    assert page.count("<script") == 1 and "<script src" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "@import" not in page and "url(" not in page
    # the report re-prints the same counts from the database
    assert run_json(["fleet", "report", str(tmp_path / "r.sqlite"), "--json"], capsys)["by_model"] == \
        document["by_model"]


def test_plain_table_when_not_a_terminal(tmp_path, capsys):
    assert main(["fleet", "run", REHEARSAL, "--phones", "CP-8861=2,CP-7940=1", "--workers", "1",
                 "--key-size", "1024"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Fleet outcome (after step: regenerate-callmanager)"
    assert lines[1].split() == ["model", "phones", "accepted", "rejected", "unchanged", "failed", "erase", "needed",
                                "via", "TVS"]
    assert lines[2].split() == ["CP-7940", "1", "0", "1", "0", "0", "1", "0"]
    assert lines[4].split()[:3] == ["total", "3", "2"]
    assert "\x1b[" not in out


def test_shards_merge_into_the_whole_fleets_table(tmp_path, capsys):
    whole = "CP-7975=3,CP-8861=4,CP-7940=2"
    for k in (1, 2):
        run_json(["fleet", "run", REHEARSAL, "--phones", whole, "--shard", f"{k}/2", "--workers", "1", "--json",
                  "--key-size", "1024",
                  "--db", str(tmp_path / f"s{k}.sqlite")], capsys)
    merged = run_json(["fleet", "merge", str(tmp_path / "s1.sqlite"), str(tmp_path / "s2.sqlite"),
                       "--out", str(tmp_path / "all.sqlite"), "--json"], capsys)
    assert merged["phones"] == 9 and merged["boots"] == 27
    assert merged["by_model"]["CP-7940"]["erase_needed"] == 2 and merged["by_model"]["CP-7975"]["accepted"] == 3
    connection = sqlite3.connect(tmp_path / "all.sqlite")
    assert connection.execute("SELECT count(DISTINCT mac) FROM boots").fetchone()[0] == 9
    assert sorted(r[0] for r in connection.execute("SELECT shard FROM runs")) == ["1/2", "2/2"]
    # without --out: printed, nothing written
    assert run_json(["fleet", "merge", str(tmp_path / "s1.sqlite"), str(tmp_path / "s2.sqlite"), "--json"],
                    capsys)["by_model"] == merged["by_model"]
    assert main(["fleet", "merge", str(tmp_path / "s1.sqlite"), str(tmp_path / "s1.sqlite")]) == 2
    assert "already in" in capsys.readouterr().err


def test_against_a_tftp_server_each_step_is_one_boot_of_every_phone(tmp_path, capsys):
    with serving_testbed(bits=1024) as testbed:
        host, port = testbed.tftp
        document = run_json(["fleet", "run", "--tftp", f"{host}:{port}", "--steps", "2", "--phones",
                             "CP-8861=3,CP-7940=1", "--json", "--db", str(tmp_path / "r.sqlite")], capsys)
    assert document["boots"] == 8 and [s["name"] for s in document["steps"]] == ["boot-1", "boot-2"]
    first = document["steps"][0]["by_model"]
    assert first["CP-8861"]["accepted"] == 3 and first["CP-7940"]["unchanged"] == 1
    assert document["by_model"]["CP-8861"]["unchanged"] == 3  # nothing new the second time
    run = sqlite3.connect(tmp_path / "r.sqlite").execute("SELECT target, rate FROM runs").fetchone()
    assert run == (f"{host}:{port}", None)  # loopback: no default rate limit


@pytest.mark.parametrize(("argv", "message"), [
    (["fleet", "run", "--phones", "CP-0000=1", "--tftp", "127.0.0.1"], "CP-0000"),
    (["fleet", "run", "--phones", "CP-8861=1"], "give a SCENARIO"),
    (["fleet", "run", REHEARSAL, "--phones", "CP-8861=1", "--tftp", "127.0.0.1"], "not both"),
    (["fleet", "run", "nosuch.toml", "--phones", "CP-8861=1"], "scenario"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1:0"], "port"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--steps", "0"], "steps"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--mac-prefix", "zz"], "MAC prefix"),
    (["fleet", "report", "/nonexistent/r.sqlite"], "no such results database"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--shard", "0/4"], "shard"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--rate", "-1"], "rate"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--workers", "-1"], "workers"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--concurrency", "0"], "concurrency"),
    (["fleet", "run", "--phones", "CP-8861=1", "--tftp", "127.0.0.1", "--jitter", "-2"], "jitter"),
])
def test_bad_fleet_arguments_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("phonetrust: ") and message in err


def test_a_file_that_is_not_a_results_database_is_refused(tmp_path, capsys):
    (tmp_path / "x.sqlite").write_bytes(b"not sqlite at all" * 100)
    assert main(["fleet", "report", str(tmp_path / "x.sqlite")]) == 2
    assert "not a fleet results database" in capsys.readouterr().err


@pytest.mark.slow
def test_results_committed_before_a_kill_9_survive_it(tmp_path):
    database = tmp_path / "r.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "phone", "fleet", "run", REHEARSAL, "--phones", "CP-8861=150,CP-7940=50",
         "--workers", "2", "--concurrency", "4", "--jitter", "20", "--key-size", "1024", "--db", str(database)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and stored < 20:
            time.sleep(0.3)
            if database.exists():
                try:
                    stored = sqlite3.connect(database).execute("SELECT count(*) FROM boots").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
        assert stored >= 20, "the run stored nothing in time"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    connection = sqlite3.connect(database)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = connection.execute("SELECT count(*) FROM boots").fetchone()[0]
    assert kept >= stored
    assert connection.execute("SELECT finished FROM runs").fetchone()[0] is None
    out = subprocess.run([sys.executable, "-m", "phone", "fleet", "report", str(database), "--json"],
                         capture_output=True, text=True, timeout=60)
    document = json.loads(out.stdout)
    assert document["complete"] is False and document["phones"] == kept


def test_fleet_run_of_the_seeds_scenario_counts_its_last_cluster_change(tmp_path, capsys):
    document = run_json(["fleet", "run", "regenerate-callmanager", "--phones", "CP-7975=2,CP-8861=2,CP-7940=2",
                         "--key-size", "1024", "--workers", "2", "--json", "--db", str(tmp_path / "r.sqlite"),
                         "--work", str(tmp_path / "work"), "--console-dir", str(tmp_path / "consoles")], capsys)
    assert [step["name"] for step in document["steps"]] == ["non-secure", "mixed-mode", "regenerate", "erase-legacy"]
    assert document["counted_step"] == "regenerate" and document["boots"] == 24
    assert document["by_model"]["CP-7940"]["rejected"] == 2 and document["by_model"]["CP-7940"]["erase_needed"] == 2
    assert document["by_model"]["CP-8861"]["through_tvs"] == 2 and document["by_model"]["CP-7975"]["accepted"] == 2
    erased = document["steps"][-1]["by_model"]
    assert erased["CP-7940"]["accepted"] == 2 and erased["CP-8861"]["unchanged"] == 2  # the hand erase worked
    assert (tmp_path / "work" / "lab-a" / "lab.json").is_file()
    assert "Erasing" in (tmp_path / "consoles" / "SEP02C15C000004.log").read_text() or \
        "erase" in (tmp_path / "consoles" / "SEP02C15C000004.log").read_text().lower()
    # the report counts the same step from the database
    again = run_json(["fleet", "report", str(tmp_path / "r.sqlite"), "--json"], capsys)
    assert again["by_model"] == document["by_model"] and again["counted_step"] == "regenerate"


def test_fleet_run_of_a_scenario_defaults_to_its_own_phone_mix(capsys):
    document = run_json(["fleet", "run", "nonsecure-to-mixed", "--key-size", "1024", "--workers", "1", "--json"],
                        capsys)
    assert document["phones"] >= 1 and all(c["failed"] == 0 for c in document["by_model"].values())


def test_a_scenario_step_with_tvs_down_is_refused_by_sbd_phones_without_a_hand_erase(capsys):
    document = run_json(["fleet", "run", "regenerate-callmanager-tvs-down", "--phones", "CP-8861=2,CP-7940=1",
                         "--key-size", "1024", "--workers", "1", "--tvs-timeout", "2", "--json"], capsys)
    steps = {step["name"]: step["by_model"] for step in document["steps"]}
    assert steps["regenerate-tvs-down"]["CP-8861"]["rejected"] == 2
    assert steps["regenerate-tvs-down"]["CP-8861"]["erase_needed"] == 0
    assert steps["tvs-back"]["CP-8861"]["accepted"] == 2 and steps["tvs-back"]["CP-7940"]["rejected"] == 1
    assert document["counted_step"] == "regenerate-tvs-down"


def test_against_a_server_each_invocation_resumes_from_the_flash_the_database_kept(tmp_path, capsys):
    database = str(tmp_path / "lab.sqlite")
    phones = ["--phones", "CP-8861=2,CP-7940=1", "--json", "--db", database]
    with serving_testbed(bits=1024) as testbed:
        target = ["fleet", "run", "--tftp", "{}:{}".format(*testbed.tftp)]
        run_json([*target, *phones], capsys)                      # first boot
        testbed.apply("mixed-mode")
        run_json([*target, *phones], capsys)                      # the first CTL, on trust
        testbed.apply("regenerate-callmanager")                   # changed by hand on the server
        third = run_json([*target, *phones], capsys)
        fresh = run_json([*target, *phones, "--fresh"], capsys)
    assert third["by_model"]["CP-8861"]["through_tvs"] == 2        # it knew the old CTL: TVS vouched
    assert third["by_model"]["CP-7940"]["erase_needed"] == 1
    assert fresh["by_model"]["CP-7940"]["accepted"] == 1           # a new phone takes any CTL on trust
    report = run_json(["fleet", "report", database, "--json"], capsys)
    assert report["by_model"] == fresh["by_model"] and len(report["steps"]) == 4


@pytest.mark.parametrize("option", ["--db", "--html", "--erase-list"])
def test_a_bad_output_path_is_refused_before_any_lab_is_built(tmp_path, capsys, option):
    work = tmp_path / "work"
    assert main(["fleet", "run", "regenerate-callmanager", "--phones", "CP-8861=1", "--key-size", "1024",
                 "--work", str(work), option, str(tmp_path / "missing" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and "cannot be written" in err
    assert not work.exists()


def test_scenario_run_refuses_a_bad_junit_path_before_any_lab_is_built(tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["scenario", "run", "regenerate-callmanager", "--phones", "CP-8861=1", "--key-size", "1024",
                 "--work", str(work), "--junit", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--junit" in err and "is a folder" in err
    assert not work.exists()


def test_merge_refuses_a_shard_and_an_unrelated_run_with_the_same_macs(tmp_path, capsys):
    common = ["fleet", "run", REHEARSAL, "--phones", "CP-8861=2", "--workers", "1", "--key-size", "1024", "--json"]
    run_json([*common, "--shard", "1/2", "--db", str(tmp_path / "shard.sqlite")], capsys)
    run_json([*common, "--db", str(tmp_path / "whole.sqlite")], capsys)
    out = tmp_path / "merged.sqlite"
    assert main(["fleet", "merge", str(tmp_path / "shard.sqlite"), str(tmp_path / "whole.sqlite"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a shard of the same run" in err and "shards 2 vs 1" in err
    assert not out.exists()


def _wait_for_second_step(database, process, timeout=90.0):
    """Until the run is booting its second step (the first one finished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        if not database.exists():
            continue
        try:
            connection = sqlite3.connect(database)
            finished = connection.execute("SELECT count(*) FROM steps WHERE finished IS NOT NULL").fetchone()[0]
            booting = connection.execute("SELECT count(*) FROM boots WHERE step_index = 1").fetchone()[0]
            connection.close()
        except sqlite3.OperationalError:
            continue
        if finished == 1 and booting > 0:
            return
    raise AssertionError("the run did not reach its second step in time")


def _group_is_gone(group, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(("signal_number", "whole_group", "exit_code"), [
    (signal.SIGINT, True, 130),    # Ctrl-C at a terminal: the whole foreground group gets it
    (signal.SIGTERM, False, 143),  # kill, a service manager: only the fleet run itself
])
def test_an_interrupted_run_stops_its_children_quietly_and_reports_the_last_finished_step(
        tmp_path, signal_number, whole_group, exit_code):
    database = tmp_path / "r.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "phone", "fleet", "run", "regenerate-callmanager", "--phones",
         "CP-8861=60,CP-7940=20", "--workers", "2", "--concurrency", "4", "--jitter", "4", "--key-size", "1024",
         "--db", str(database)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_second_step(database, process)
        if whole_group:
            os.killpg(process.pid, signal_number)
        else:
            os.kill(process.pid, signal_number)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == exit_code, err
    assert "Traceback" not in err and "leaked" not in err
    assert err.splitlines()[-1] == "phonetrust: interrupted after step non-secure"
    assert [line for line in err.splitlines() if "interrupted" in line] == [err.splitlines()[-1]]
    assert out == ""
    assert _group_is_gone(process.pid), "a worker or lab process outlived the run"
    connection = sqlite3.connect(database)
    assert connection.execute("SELECT finished FROM runs").fetchone()[0] is None
    assert connection.execute("SELECT name FROM steps WHERE finished IS NOT NULL").fetchall() == [("non-secure",)]
    report = subprocess.run([sys.executable, "-m", "phone", "fleet", "report", str(database)],
                            capture_output=True, text=True, timeout=60)
    lines = report.stdout.splitlines()
    assert lines[0] == "Fleet outcome (after step: non-secure)"
    assert lines[2].split()[:2] == ["CP-7940", "20"] and lines[3].split()[:2] == ["CP-8861", "60"]
    assert "the run stopped after step non-secure (incomplete" in lines[-1]
