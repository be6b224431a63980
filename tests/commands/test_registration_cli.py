"""Secure registration through the command line only: `lab serve` and `phone boot` as separate processes.

A mixed-mode lab whose device has an authenticated profile serves a CallManager
on SIP and SIP over TLS. A phone whose MIC comes from the manufacturing CA the
cluster trusts registers over TLS with it; a phone whose MIC comes from a CA
the cluster does not trust is refused with OpenSSL's "unknown CA" alert, and
the lab writes the refusal to its SDL trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import free_tcp_ports, lab_serve_process

from phone.lab.devices import DeviceRecord, DeviceStore

TRUSTED_MAC, FOREIGN_MAC, TCP_MAC = "0011AA000011", "0011AA000012", "0011AA000013"


def phonetrust(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "phone", *argv], capture_output=True, text=True, timeout=120,
                          env=env)


def boot(mac: str, tftp: str, tmp_path: Path, env: dict[str, str], *extra: str) -> dict:
    done = phonetrust("phone", "boot", "--model", "CP-8861", "--mac", mac, "--tftp", tftp,
                      "--state", str(tmp_path / mac), "--json", *extra, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_phone_registers_by_tls_with_its_mic_and_one_from_an_untrusted_ca_is_refused(tmp_path) -> None:
    # The emulated manufacturing CA lives per installation (XDG data folder): the lab trusts it,
    # the phones' MICs come from it. A private folder keeps the test apart from the user's.
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PYTHONUNBUFFERED": "1"}
    lab = str(tmp_path / "lab")
    assert phonetrust("lab", "init", lab, "--key-size", "2048", env=env).returncode == 0
    assert phonetrust("lab", "ctl", "set-cluster", "mixed-mode", "--lab", lab, env=env).returncode == 0
    DeviceStore.for_lab(Path(lab)).put_many([  # what `lab device set … --security-profile authenticated` stores
        DeviceRecord(name=f"SEP{mac}", model="CP-8861", security_profile="authenticated")
        for mac in (TRUSTED_MAC, FOREIGN_MAC, TCP_MAC)])
    foreign = phonetrust("lab", "init", str(tmp_path / "other-lab"), "--key-size", "1024", env=env)
    assert foreign.returncode == 0
    other_ca = tmp_path / "other-lab" / "certs"  # any CA the cluster does not trust: another lab's CAPF
    capf = next(other_ca.glob("*/CAPF.pem"))

    sip, sip_tls = free_tcp_ports(2)
    with lab_serve_process(lab, "--sip-port", str(sip), "--sip-tls-port", str(sip_tls), "--sccp-port", "0",
                           "--capf-port", "0", "--http-port", "0", "--https-port", "0", env=env) as (announced, _):
        assert announced["callmanager"][0]["sip"] == sip and announced["callmanager"][0]["sip-tls"] == sip_tls
        tftp = f"127.0.0.1:{announced['tftp']['port']}"

        trusted = boot(TRUSTED_MAC, tftp, tmp_path, env)
        assert trusted["registration"] == {
            "server": f"127.0.0.1:{sip_tls}", "protocol": "SIP", "mode": "authenticated", "result": "registered",
            "code": "registered-authenticated", "client_certificate": "mic", "server_certificate_trusted": True,
            "reason": "200 OK"}

        refused = boot(FOREIGN_MAC, tftp, tmp_path, env, "--mic-ca", str(capf), "--mic-ca-key",
                       str(capf.with_suffix(".key")))
        registration = refused["registration"]
        assert (registration["result"], registration["code"]) == ("failed", "client-untrusted")
        assert "UNKNOWN_CA" in registration["reason"]

        skipped = boot(TCP_MAC, tftp, tmp_path, env, "--no-register")
        assert skipped["registration"] is None and skipped["config"]["applied"]
    trace = (Path(lab) / "callmanager-sdl.txt").read_text().splitlines()
    assert any("|AppInfo  |" in line and f"SEP{TRUSTED_MAC} registered over TLS" in line for line in trace)
    assert any("|AlarmErr |AuthenticationFailed" in line for line in trace)
    sdl = re.compile(r"[0-9]{8}\.[0-9]{3} \|[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} \|(AppInfo  |AlarmErr )\|.+")
    assert all(sdl.fullmatch(line) for line in trace)  # whole SDL lines, no prefix: `logs parse` reads them


LSC_MAC, MOVED_MAC = "0011AA000021", "0011AA000022"


@contextlib.contextmanager
def serving(lab: str, env: dict[str, str]) -> Iterator[str]:
    """`lab serve` in its own process with CAPF and SIP over TCP and TLS on free ports; yields its TFTP."""
    capf, sip, sip_tls = free_tcp_ports(3)
    with lab_serve_process(lab, "--capf-port", str(capf), "--http-port", "0", "--https-port", "0",
                           "--sip-port", str(sip), "--sip-tls-port", str(sip_tls), "--sccp-port", "0",
                           env=env) as (announced, _):
        yield f"127.0.0.1:{announced['tftp']['port']}"


def secure_lab(path: Path, env: dict[str, str], *devices: tuple[str, str]) -> str:
    """A mixed-mode lab (`lab init`, `lab ctl set-cluster mixed-mode`) whose devices, saved with `lab device
    set`, have an authenticated profile and the given CAPF operation."""
    lab = str(path)
    assert phonetrust("lab", "init", lab, "--key-size", "1024", env=env).returncode == 0
    assert phonetrust("lab", "ctl", "set-cluster", "mixed-mode", "--lab", lab, env=env).returncode == 0
    for mac, operation in devices:
        saved = phonetrust("lab", "device", "set", f"SEP{mac}", "--lab", lab, "--model", "CP-8861",
                           "--security-profile", "authenticated", "--capf-operation", operation,
                           "--capf-auth", "null-string", env=env)
        assert saved.returncode == 0, saved.stderr
    return lab


@pytest.mark.slow
def test_lab_serve_registers_a_phone_by_its_lsc_and_refuses_one_whose_lsc_another_cluster_issued(tmp_path) -> None:
    """Cisco TAC 200860: the CallManager checks an LSC against CallManager-trust, which holds its own
    cluster's CAPF certificate; an LSC from another cluster's CAPF gets the fatal "unknown CA" alert."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PYTHONUNBUFFERED": "1"}
    home = secure_lab(tmp_path / "home", env, (LSC_MAC, "install"), (MOVED_MAC, "none"))
    other = secure_lab(tmp_path / "other", env, (MOVED_MAC, "install"))

    with serving(other, env) as tftp:  # the moved phone gets its LSC from the other cluster's CAPF
        assert boot(MOVED_MAC, tftp, tmp_path, env)["capf"]["result"] == "installed"
        assert boot(MOVED_MAC, tftp, tmp_path, env)["registration"]["code"] == "registered-authenticated"
    erased = phonetrust("phone", "erase", "--state", str(tmp_path / MOVED_MAC), env=env)
    assert erased.returncode == 0, erased.stderr  # so that it takes the home cluster's CTL on trust

    with serving(home, env) as tftp:
        enrolled = boot(LSC_MAC, tftp, tmp_path, env)
        assert enrolled["capf"]["result"] == "installed"
        # It registers with the LSC this boot's CAPF session installed, and again at the next boot.
        assert (enrolled["registration"]["code"], enrolled["registration"]["client_certificate"]) == (
            "registered-authenticated", "lsc")
        registered = boot(LSC_MAC, tftp, tmp_path, env)["registration"]
        assert (registered["result"], registered["code"], registered["client_certificate"]) == (
            "registered", "registered-authenticated", "lsc")

        moved = boot(MOVED_MAC, tftp, tmp_path, env)
        assert moved["files"][0]["result"] == "installed"  # CTL on trust: the server is the one it trusts
        refused = moved["registration"]
        assert (refused["result"], refused["code"], refused["client_certificate"]) == (
            "failed", "client-untrusted", "lsc")
        assert "UNKNOWN_CA" in refused["reason"]
    trace = (Path(home) / "callmanager-sdl.txt").read_text().splitlines()
    assert any(f"SEP{LSC_MAC} registered over TLS" in line for line in trace)
    assert any("|AlarmErr |AuthenticationFailed" in line for line in trace)
