"""HTTP provisioning through separate `phonetrust` processes: `lab serve` and `phone boot` (docs/http.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from serve_support import free_tcp_ports, lab_serve_process


def phonetrust(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "phone", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_lab_serve_and_phone_boot_provision_an_8861_over_http_and_a_7965_over_tftp(tmp_path) -> None:
    lab = str(tmp_path / "lab")
    assert phonetrust("lab", "init", lab, "--key-size", "1024").returncode == 0
    assert phonetrust("lab", "ctl", "set-cluster", "mixed-mode", "--lab", lab).returncode == 0
    [http_port] = free_tcp_ports(1)
    with lab_serve_process(lab, "--http-port", str(http_port), "--https-port", "0", "--capf-port", "0",
                           "--sip-port", "0", "--sip-tls-port", "0", "--sccp-port", "0") as (ports, _):
        assert ports["http"] == {"host": "127.0.0.1", "port": http_port} and ports["https"] is None
        tftp = f"127.0.0.1:{ports['tftp']['port']}"
        reports = {}
        for model, mac in (("CP-8861", "0011AA000002"), ("CP-7965", "0011AA000003")):
            done = phonetrust("phone", "boot", "--model", model, "--mac", mac, "--tftp", tftp, "--state",
                              str(tmp_path / model), "--json", "--http-port", str(http_port))
            assert done.returncode == 0, done.stderr
            reports[model] = json.loads(done.stdout)
    assert [entry["transport"] for entry in reports["CP-8861"]["files"]] == ["http", "http", "http"]
    assert reports["CP-8861"]["config"] | {"tvs": None} == {
        "name": "SEP0011AA000002.cnf.xml.sgn", "applied": True, "encrypted": False, "transport": "http", "tvs": None}
    assert [entry["transport"] for entry in reports["CP-7965"]["files"]] == ["tftp", "tftp", "tftp"]


def test_phone_boot_rejects_a_port_out_of_range_in_one_line(tmp_path) -> None:
    done = phonetrust("phone", "boot", "--model", "CP-8861", "--mac", "0011AA000002", "--tftp", "127.0.0.1:69",
                      "--state", str(tmp_path / "phone"), "--http-port", "70000")
    assert done.returncode == 2
    assert done.stderr == "phonetrust: --http-port must be a TCP port (0 to turn it off), not 70000\n"


def test_lab_serve_rejects_a_port_out_of_range_in_one_line(tmp_path) -> None:
    done = phonetrust("lab", "serve", "--lab", str(tmp_path), "--https-port", "-1")
    assert done.returncode == 2
    assert done.stderr == "phonetrust: --https-port -1 is not a port\n"


def test_commands_start_without_importing_the_http_libraries() -> None:
    # aiohttp and urllib3 cost most of a second to import on a loaded machine: only the servers
    # and phones that speak HTTP pay it, not every `phonetrust` invocation.
    probe = ("import sys, phone.cli; phone.cli.build_parser(); "
             "print(sorted(name for name in ('aiohttp', 'urllib3') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr
