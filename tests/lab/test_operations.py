"""Lab operations by their command words (``Lab.run``): one table for the CLI, rehearsals, scenarios, fleets."""

from __future__ import annotations

import pytest
from lab_support import lab_factory

from phone.errors import UsageError
from phone.lab import Lab, OperationRefused, texts
from phone.lab.operations import OPERATIONS
from phone.pytest_plugin import assert_accepted, assert_rejected
from phone.scenario.rehearsal import Rehearsal
from phone.wire.tlv import Role


@pytest.fixture
def lab(tmp_path) -> Lab:
    return lab_factory()(tmp_path)


def test_run_returns_cucm_lines_and_the_cluster_afterwards(lab):
    result = lab.run("ctl set-cluster mixed-mode")
    assert result.lines == texts.MIXED_MODE
    assert result.mixed_mode and result.state.security_mode == 1 and result.state.ctl.kind == "tokenless"
    assert lab.run(["rollback", "on"]).state.params.rollback


def test_run_raises_operation_refused_for_what_cucm_refuses(lab):
    with pytest.raises(OperationRefused, match="not in Mixed Mode"):
        lab.run(["ctl", "update"])
    assert lab.ctl() is None


@pytest.mark.parametrize("words, message", [
    ("ctl frobnicate", "no lab operation 'ctl frobnicate'"),
    ("rollback", "takes 1 argument"),
    ("rollback maybe", "rollback is 'on' or 'off'"),
    ("ctl delete --nope 1", "has no option --nope"),
    ("ctl delete --node", "--node needs a value"),
    ("cert regenerate CallManager --key-size big", "--key-size 'big'"),
    ("etoken new t1", "needs --out FILE"),
])
def test_words_that_name_no_operation_or_a_wrong_argument_are_usage_errors(lab, words, message):
    with pytest.raises(UsageError, match=message):
        lab.run(words)


def test_options_are_taken_with_or_without_equals_and_repeated_ones_keep_their_order(lab, tmp_path):
    for name in ("t1", "t2"):
        written = lab.run(["etoken", "new", name, f"--out={tmp_path / name}.pem"]).written
        assert written == (tmp_path / f"{name}.pem",) and written[0].read_bytes().startswith(b"-----BEGIN")
    result = lab.run(["ctl", "client", "--token", "t1", "--token=t2", "--sign-with", "t1"])
    assert result.state.ctl.tokens == ("t1", "t2") and result.state.ctl.signer == "t1"


#: One example of each operation, as a user types it after ``phonetrust lab``.
EXAMPLES = (
    "ctl set-cluster mixed-mode", "ctl update", "ctl delete --node 1", "ctl client --token t1 --sign-with t1",
    "ctl reset localkey", "etoken new t1 --out t1.pem", "cert regenerate TVS --node 1 --key-size 2048",
    "cert upload Phone-SAST-trust t1.pem", "itl reset localkey", "tftp restart", "rollback on",
    "param set tls-min-version 1.2", "cert delete CAPF-trust CAPF-1a2b3c4d", "cert export tomcat --node 1 --out t.pem",
    ("device set SEP001122334455 --model CP-8861 --security-profile encrypted --encrypted-config on "
     "--capf-operation install --capf-auth auth-string:1234 --capf-key ec256"),
    "device show SEP001122334455 --json", "device list --json",
)


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_operation_has_the_same_words_on_the_command_line(example):
    from phone.cli import build_parser
    from phone.lab.operations import find

    operation, _ = find(example.split())
    args = build_parser().parse_args(["lab", *example.split()])
    assert args.func is not None and " ".join(operation.words) in example


def test_the_examples_cover_every_operation_of_the_table():
    from phone.lab.operations import find

    assert {find(example.split())[0].words for example in EXAMPLES} == {op.words for op in OPERATIONS}


# -- utils ctl reset localkey ------------------------------------------------------------------

def test_ctl_reset_localkey_signs_the_ctl_with_the_publisher_callmanager_key(lab, tmp_path):
    lab.run(f"etoken new t1 --out {tmp_path / 't1.pem'}")
    lab.run("ctl client --token t1")
    assert lab.ctl().header.signer_serial != lab.identity("CallManager").serial
    result = lab.run("ctl reset localkey")
    assert result.lines[-1] == texts.RESTART and result.state.ctl.kind == "reset" and result.mixed_mode
    for node in lab.nodes:
        ctl = lab.ctl(node.name)
        assert ctl.header.signer_serial == lab.identity("CallManager").serial
        sast = [record.certificate for _, record in ctl.records_with_role(Role.SAST)]
        assert lab.identity("CallManager").der in sast and lab.etoken("t1").der not in sast


def test_ctl_reset_localkey_is_refused_outside_mixed_mode_and_before_tokenless_releases(tmp_path, lab):
    with pytest.raises(OperationRefused, match="not in Mixed Mode"):
        lab.run("ctl reset localkey")
    old = lab_factory()(tmp_path, release="9.1", nodes=1)
    with pytest.raises(OperationRefused, match="does not exist in CUCM 9.1"):
        old.run("ctl reset localkey")


def test_after_ctl_reset_localkey_a_phone_trusting_callmanager_accepts_and_a_legacy_phone_refuses(tmp_path):
    with Rehearsal.create(tmp_path / "lab", key_size=1024) as cluster:
        sbd, legacy = cluster.phone("CP-8861"), cluster.phone("CP-7940")
        with pytest.raises(OperationRefused, match="not in Mixed Mode"):  # a rehearsal's refusals raise
            cluster.run("ctl reset localkey")
        cluster.run(f"etoken new t1 --out {tmp_path / 't1.pem'}", "ctl client --token t1")
        first = cluster.boot([sbd, legacy])
        assert [r.result("CTL") for r in first] == ["installed", "installed"]  # the eToken CTL, on trust
        cluster.run("ctl reset localkey")
        r8861, r7940 = cluster.boot([sbd, legacy])
    # The 8861's ITL lists CallManager and TVS vouches for it; the 7940 only ever saw the eToken.
    assert_accepted(r8861)
    assert r8861.result("CTL") == "installed"
    assert_rejected(r7940)
    assert r7940.result("CTL") == "rejected" and r7940.verdict.erase_needed
