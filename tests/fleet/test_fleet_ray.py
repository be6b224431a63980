"""The Ray engine (`fleet run --engine ray`): the local engine's outcomes, from Ray actors.

One local Ray instance of 2 CPUs serves the whole module (Ray takes 5-10 s to
start); runs inside it join it and leave it running, and it is shut down at
the end of the module. The interrupt test starts its own, in its own process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys

import pytest

from phone.cli import main
from phone.fleet import parse_phones
from phone.fleet.ray_engine import INSTALL_HINT, RayFleet, refusal, start_local_ray
from phone.fleet.testbed import REGENERATE_CALLMANAGER, serving_testbed

HERE = "10.0.0.1"


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    start_local_ray(ray, num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()
    assert {number: signal.getsignal(number) for number in handlers} == handlers  # pytest's own, kept


def run_json(argv, capsys):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def outcomes(document):
    return document["by_model"], [(step["name"], step["by_model"]) for step in document["steps"]]


@pytest.mark.parametrize(("scenario", "phones"), [
    ("regenerate-callmanager", ["--phones", "CP-7975=2,CP-8861=2,CP-7940=2"]),
    ("move-to-another-cluster", []),  # two labs, the phones moved from one TFTP to the other: its own mix
])
def test_a_bundled_scenario_gives_the_same_outcomes_on_both_engines(local_ray, tmp_path, capsys, scenario, phones):
    common = ["fleet", "run", scenario, *phones, "--key-size", "1024", "--json"]
    local = run_json([*common, "--engine", "local", "--workers", "1"], capsys)
    # served on another loopback address, as a lab on a multi-node cluster is on this machine's own
    on_ray = run_json([*common, "--engine", "ray", "--workers", "2", "--advertise", "127.0.0.2",
                       "--db", str(tmp_path / "r.sqlite"), "--html", str(tmp_path / "r.html")], capsys)
    assert outcomes(on_ray) == outcomes(local)
    assert on_ray["boots"] == local["boots"] > 0 and on_ray["counted_step"] == local["counted_step"]
    # the results streamed to the same database and report as locally
    assert run_json(["fleet", "report", str(tmp_path / "r.sqlite"), "--json"], capsys)["by_model"] == \
        on_ray["by_model"]
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    connection = sqlite3.connect(tmp_path / "r.sqlite")
    run = connection.execute("SELECT workers, params FROM runs").fetchone()
    assert run[0] == 2 and json.loads(run[1])["engine"] == "ray"
    # --advertise: the lab listened there, and its configurations named its TVS there
    answers = [json.loads(row[0]) for row in connection.execute("SELECT tvs FROM boots")]
    servers = {answer["server"].rsplit(":", 1)[0] for attempts in answers for answer in attempts}
    assert servers == {"127.0.0.2"}


def test_each_actor_keeps_its_phones_flash_between_steps_in_its_own_process(local_ray):
    with serving_testbed(bits=1024) as testbed, \
            RayFleet(parse_phones("CP-8861=3,CP-7940=2"), workers=2, concurrency=4) as fleet:
        summaries = []
        for step, change in REGENERATE_CALLMANAGER:
            if change:
                testbed.apply(change)
            summaries.append(fleet.boot_all(step, tftp=testbed.tftp))
        flash = fleet.flash()
        assert set(fleet.pids) == {0, 1} and os.getpid() not in fleet.pids.values()
        assert len(set(fleet.pids.values())) == 2
        assert fleet.act("erase-ctl", ["CP-7940"]) == 2
        assert all(peak > 0 for peak in fleet.memory_kib().values())
    # the regenerated CTL was refused by the 7940s because they kept the first one: flash lived on
    assert summaries[-1].by_model["CP-7940"]["erase_needed"] == 2
    assert summaries[-1].by_model["CP-8861"]["through_tvs"] == 3
    assert len(flash) == 5 and all(kept.ctl is not None for _, _, kept in flash)
    assert all(kept.itl is not None for _, model, kept in flash if model == "CP-8861")  # a 7940 has no ITL


def test_phones_in_ray_actors_boot_as_their_load_and_unsupported_ones_do_not_boot(local_ray):
    # A 7965 on 8.5(4) has no ITL (before the catalogue's first 9.0(1) ITL load): stuck after the
    # regeneration, as a 7940; on 9.4(2)SR3 it asks TVS. A 7970 is not supported from CUCM 12.0.
    phones = parse_phones("CP-7965@SCCP45.8-5-4-1S=2,CP-7965=2,CP-7970=2")
    with serving_testbed(bits=1024) as testbed, RayFleet(phones, workers=2, concurrency=4) as fleet:
        summaries = []
        for step, change in REGENERATE_CALLMANAGER:
            if change:
                testbed.apply(change)
            summaries.append(fleet.boot_all(step, tftp=testbed.tftp, cucm_release="12.5"))
    last = summaries[-1].by_model
    assert (last["CP-7965"]["accepted"], last["CP-7965"]["rejected"], last["CP-7965"]["erase_needed"]) == (2, 2, 2)
    assert last["CP-7970"]["unsupported"] == 2 and last["CP-7970"]["phones"] == 2


def test_an_actor_that_dies_ends_the_step_with_one_error_naming_it(local_ray):
    from phone.fleet import FleetError

    with serving_testbed(bits=1024) as testbed, \
            RayFleet(parse_phones("CP-8861=2"), workers=2, concurrency=2) as fleet:
        local_ray.kill(fleet._actors[1], no_restart=True)
        with pytest.raises(FleetError, match=r"^fleet actor 1 on \S+ died while starting step 'first-boot': "):
            fleet.boot_all("first-boot", tftp=testbed.tftp)


def test_one_actor_per_cpu_by_default_and_more_actors_than_cpus_are_refused(local_ray):
    from phone.errors import UsageError

    fleet = RayFleet(parse_phones("CP-8861=5"))
    fleet.connect()
    assert fleet.workers == 2 and [len(setup.phones) for setup in fleet._setups] == [3, 2]
    fleet.close()
    assert local_ray.is_initialized()  # a Ray the fleet did not start is left running
    with pytest.raises(UsageError, match=r"^--workers 3: the Ray cluster has 2 CPU\(s\)"):
        RayFleet(parse_phones("CP-8861=5"), workers=3).connect()


def test_without_ray_the_ray_engine_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds when Ray is not installed
    work = tmp_path / "work"
    assert main(["fleet", "run", "regenerate-callmanager", "--phones", "CP-8861=1", "--key-size", "1024",
                 "--work", str(work), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and INSTALL_HINT in err and "Traceback" not in err
    assert not work.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--advertise", "0.0.0.0"], "is every address"),
    (["--tftp", "127.0.0.1", "--advertise", "127.0.0.2"], "--advertise is where a SCENARIO's lab is served"),
    (["--ray-address", "127.0.0.1:6379"], "--ray-address is for --engine ray"),
    (["--engine", "ray", "--workers", "0"], "--workers must be at least 1"),
])
def test_bad_ray_and_advertise_arguments_are_one_line(argv, message, capsys):
    scenario = [] if "--tftp" in argv else ["testbed:regenerate-callmanager"]
    assert main(["fleet", "run", *scenario, "--phones", "CP-8861=1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_ray_address_where_no_cluster_answers_is_one_line_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work = tmp_path / "work"
    assert main(["fleet", "run", "regenerate-callmanager", "--phones", "CP-8861=1", "--work", str(work),
                 "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"]) != 0
    err = capsys.readouterr().err
    assert err == f"phonetrust: no Ray cluster answers at 127.0.0.1:{port}: Connection refused\n"
    assert not work.exists()


def node(address, alive=True):
    return {"NodeID": address.replace(".", ""), "Alive": alive, "NodeManagerAddress": address}


def test_a_loopback_lab_is_refused_when_the_cluster_has_nodes_at_other_addresses():
    problem = refusal("127.0.0.1", [node(HERE), node("10.0.0.2")], HERE)
    assert "10.0.0.2" in problem and "--advertise" in problem and "\n" not in problem
    assert refusal("localhost", [node(HERE), node("10.0.0.2")], HERE) is not None


@pytest.mark.parametrize(("host", "nodes"), [
    ("127.0.0.1", [node(HERE)]),                              # a one-node cluster: this machine
    ("127.0.0.1", [node(HERE), node("10.0.0.2", alive=False)]),  # the other node is gone
    ("127.0.0.1", []),
    ("10.0.0.1", [node(HERE), node("10.0.0.2")]),             # an address the other nodes reach
])
def test_a_lab_the_nodes_reach_is_not_refused(host, nodes):
    assert refusal(host, nodes, HERE) is None


@pytest.mark.slow
def test_ctrl_c_stops_the_ray_run_its_actors_and_its_ray_instance_quietly(tmp_path):
    from commands.test_fleet_cli import _group_is_gone, _wait_for_second_step

    database = tmp_path / "r.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "phone", "fleet", "run", "regenerate-callmanager", "--phones",
         "CP-8861=20,CP-7940=5", "--workers", "2", "--concurrency", "4", "--jitter", "3", "--key-size", "1024",
         "--engine", "ray",
         "--db", str(database)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_second_step(database, process)
        pids = _ray_processes_of(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C at a terminal: the whole foreground group gets it
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == 130, err
    assert err.splitlines()[-1] == "phonetrust: interrupted after step non-secure" and "Traceback" not in err
    assert out == ""
    assert _group_is_gone(process.pid), "a Ray service outlived the run"
    assert pids and not [pid for pid in pids if _alive(pid)], "a Ray actor outlived the run"
    connection = sqlite3.connect(database)
    assert connection.execute("SELECT name FROM steps WHERE finished IS NOT NULL").fetchall() == [("non-secure",)]


def _ray_processes_of(session: int) -> list[int]:
    """The actor processes of the run (Ray puts each in its own process group, in the run's session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    command = cmdline.read()
            except OSError:
                continue
            if int(fields[3]) == session and command.startswith(b"ray::PhoneActor"):
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
