"""The seed's regeneration replayed only through the command line, as a user at a shell would.

Every step is a separate `phonetrust` process: `lab init`, `lab ctl set-cluster mixed-mode`,
`lab serve` (a server process), `phone boot` for a 7975, an 8861 and a 7940 (each with its own
state folder), `lab cert regenerate CallManager`, `lab ctl update`, `phone boot` again, then
`phone erase --ctl` on the 7940 and one more boot (SPEC 6; the seed, section 4).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from serve_support import lab_serve_process

MACS = {"CP-7975": "0011AA000001", "CP-8861": "0011AA000002", "CP-7940": "0011AA000003"}


def phonetrust(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "phone", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def boot_all(tftp: str, tmp_path) -> dict[str, dict]:
    reports = {}
    for model, mac in MACS.items():
        done = phonetrust("phone", "boot", "--model", model, "--mac", mac, "--tftp", tftp,
                          "--state", str(tmp_path / model), "--json")
        assert done.returncode == 0, done.stderr
        reports[model] = json.loads(done.stdout)
    return reports


def file_result(report: dict, prefix: str) -> str:
    return next(entry["result"] for entry in report["files"] if entry["name"].startswith(prefix))


@pytest.mark.slow
def test_seed_regeneration_replayed_only_through_the_command_line(tmp_path):
    lab = str(tmp_path / "lab")
    assert phonetrust("lab", "init", lab, "--key-size", "1024").returncode == 0
    mixed = phonetrust("lab", "ctl", "set-cluster", "mixed-mode", "--lab", lab)
    assert "Cluster set to Mixed Mode" in mixed.stdout
    with lab_serve_process(lab, "--capf-port", "0", "--http-port", "0", "--https-port", "0", "--sip-port", "0",
                           "--sip-tls-port", "0", "--sccp-port", "0") as (ports, _):
        tftp = f"127.0.0.1:{ports['tftp']['port']}"
        first = boot_all(tftp, tmp_path)
        assert all(file_result(report, "CTL") == "installed" for report in first.values())

        regenerated = phonetrust("lab", "cert", "regenerate", "CallManager", "--lab", lab)
        assert regenerated.returncode == 0, regenerated.stderr
        updated = phonetrust("lab", "ctl", "update", "--lab", lab)
        assert "CTL file Updated" in updated.stdout
        show = phonetrust("lab", "show", "ctl", "--lab", lab)
        assert "The CTL file was verified successfully." in show.stdout

        second = boot_all(tftp, tmp_path)
        for model in ("CP-7975", "CP-8861"):
            assert file_result(second[model], "CTL") == "installed"
            assert second[model]["tvs_requests"][0]["status"] == 0
            assert sorted(second[model]["tvs_requests"][0]["roles"]) == [0, 2]
        legacy = second["CP-7940"]
        assert file_result(legacy, "CTL") == "rejected"
        assert legacy["ctl"]["md5"] == first["CP-7940"]["ctl"]["md5"]  # the old CTL stays
        assert "Trust List Update Failed" in legacy["status_messages"]

        assert phonetrust("phone", "erase", "--state", str(tmp_path / "CP-7940"), "--ctl").returncode == 0
        third = boot_all(tftp, tmp_path)
        assert file_result(third["CP-7940"], "CTL") == "installed"
        assert third["CP-7940"]["ctl"]["md5"] == second["CP-8861"]["ctl"]["md5"]
