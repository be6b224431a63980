"""The CAPF step of the phone machine and the sans-I/O session, without sockets.

Boots run through ``run_boot`` with a lab's files (tests/minicluster.py) whose signed
configuration asks for a CAPF operation, and an in-memory CAPF transport.
"""

from __future__ import annotations

import attrs
import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from conftest import SEED_TIME, rsa_key
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.catalogue import get_model
from phone.device.boot import run_boot
from phone.errors import LocalProtocolError
from phone.firmware.capf_plan import EnrolCapf, ec_capable, phone_version
from phone.firmware.capf_session import (
    CapfCredentials,
    CapfOutcome,
    CapfSession,
    KeySpec,
    names_device,
)
from phone.firmware.machine import CapfFinished, DropLsc, Flash, Install, KeepLsc, Log, PhoneMachine
from phone.firmware.trust import Item
from phone.wire.capf import CapfMessage, CapfProtocolError, Command, Tag
from phone.wire.certs import make_certificate, simple_subject
from phone.wire.config import TvsMember, render_config
from phone.wire.signing import build_signed_file

NOW = 1_700_000_000.0
DEVICE = f"SEP{MAC}"
SGN = f"{DEVICE}.cnf.xml.sgn"


def capf_files(cluster: MiniCluster, mode: int, servers=("127.0.0.1",), port: int = 3804) -> dict[str, bytes]:
    """The lab's files with a signed configuration that names CAPF ``servers`` in ``mode``."""
    config = render_config([TvsMember("127.0.0.1", cluster.tvs_port)], device_name=DEVICE, capf_servers=servers,
                           capf_port=port, capf_auth_mode=mode)
    files = cluster.files()
    files[SGN] = build_signed_file(config, cluster.callmanager, filename=SGN, timestamp=int(NOW)).data
    return files


def an_lsc():
    return make_certificate(simple_subject(CN=DEVICE), rsa_key(1024, "machine-lsc"), not_before=SEED_TIME, serial=7)


def boot(files, cluster, outcome: CapfOutcome | None = None, model="CP-8861", flash=Flash()):
    plans: list[EnrolCapf] = []

    def enrol(plan: EnrolCapf) -> CapfFinished:
        plans.append(plan)
        return CapfFinished(outcome or CapfOutcome("nothing_pending", "END_SESSION reason 0"), "127.0.0.1:3804")

    effects = []
    machine = PhoneMachine(get_model(model), MAC, flash)
    machine, report = run_boot(machine, fetch=serve_files(files), ask_tvs=TvsDouble(cluster), clock=lambda: NOW,
                               observe=effects.append, enrol_capf=enrol)
    return machine, report, effects, plans


def test_a_configuration_without_a_pending_operation_never_calls_capf():
    cluster = MiniCluster()
    _, report, effects, plans = boot(capf_files(cluster, 0), cluster)
    assert report.result_of(SGN).result == "applied"
    assert plans == [] and report.capf is None
    assert not any(isinstance(e, EnrolCapf) for e in effects)


def test_the_operation_comes_after_the_configuration_and_pins_the_itl_capf_record():
    cluster = MiniCluster()
    _, report, effects, plans = boot(capf_files(cluster, 2, servers=("capf-a", "capf-b"), port=3805), cluster)
    config_applied = next(i for i, e in enumerate(effects) if isinstance(e, Install) and e.item is Item.CONFIG)
    enrolment = next(i for i, e in enumerate(effects) if isinstance(e, EnrolCapf))
    assert config_applied < enrolment
    (plan,) = plans
    assert [(s.address, s.port) for s in plan.servers] == [("capf-a", 3805), ("capf-b", 3805)]
    assert plan.pinned == (cluster.capf.der,)
    assert (plan.device_name, plan.auth_mode) == (DEVICE, 2)
    assert plan.tvs_pinned == (cluster.tvs.der,)
    assert report.capf is not None and report.capf.result == "nothing_pending"


def test_an_installed_lsc_is_kept_and_reported():
    cluster = MiniCluster()
    lsc = an_lsc()
    _, report, effects, _ = boot(capf_files(cluster, 2), cluster,
                                 CapfOutcome("installed", None, "install", lsc, "rsa1024"))
    kept = [e for e in effects if isinstance(e, KeepLsc)]
    assert [e.lsc for e in kept] == [lsc]
    assert attrs.astuple(report.capf) == ("127.0.0.1:3804", "install", "installed", None, "rsa1024")
    assert any(isinstance(e, Log) and e.event == "capf.installed" for e in effects)


@pytest.mark.parametrize("result", ["failed", "refused", "nothing_pending", "fetched"])
def test_nothing_is_kept_or_dropped_unless_the_operation_succeeded(result):
    cluster = MiniCluster()
    _, report, effects, _ = boot(capf_files(cluster, 2), cluster, CapfOutcome(result, "why", None, an_lsc()))
    assert not any(isinstance(e, (KeepLsc, DropLsc)) for e in effects)
    assert report.capf.result == result
    assert any(isinstance(e, Log) and e.event == f"capf.{result}" for e in effects)


def test_a_delete_drops_the_lsc():
    cluster = MiniCluster()
    _, _, effects, _ = boot(capf_files(cluster, 2), cluster, CapfOutcome("deleted", None, "delete"))
    assert sum(isinstance(e, DropLsc) for e in effects) == 1


def test_capf_finished_outside_the_capf_step_is_a_local_error():
    machine = PhoneMachine(get_model("CP-8861"), MAC)
    with pytest.raises(LocalProtocolError, match="CapfFinished while off"):
        machine.handle(CapfFinished(CapfOutcome("failed")), NOW)


def test_capf_version_and_ec_follow_the_model_and_the_itl_version():
    cluster = MiniCluster()
    machine, _, _, _ = boot(capf_files(cluster, 2), cluster)
    trusted = machine.flash.trusted()
    assert phone_version(get_model("CP-8861")) == 3 and phone_version(get_model("CP-7965")) == 2
    assert not ec_capable(get_model("CP-8861"), trusted)  # the lab's ITL is version 1.0's
    relaxed = attrs.evolve(get_model("CP-8861"), settings=attrs.evolve(get_model("CP-8861").settings,
                                                                       capf_ec_needs_itl_1_1=False))
    assert ec_capable(relaxed, trusted)
    assert not ec_capable(get_model("CP-7965"), trusted)


# -- the session on its own ---------------------------------------------------------------


def session(**options) -> CapfSession:
    values = dict(phone_version=3, ec_capable=False, keys=lambda spec: rsa_key(spec.size, "session"))
    values.update(options)
    return CapfSession(DEVICE, 2, CapfCredentials(), **values)


def test_the_session_echoes_the_server_session_id_and_refuses_another():
    capf = session()
    (answer,) = capf.receive(CapfMessage.build(Command.AUTH_REQUEST, 0x42, version=3))
    assert answer.session_id == 0x42 and answer.command == Command.AUTH_RESPONSE
    with pytest.raises(CapfProtocolError, match="session id 0x00000043"):
        capf.receive(CapfMessage.build(Command.KEY_GENERATE_REQUEST, 0x43, key_size=1024))


def test_the_session_takes_nothing_after_its_end():
    capf = session()
    capf.receive(CapfMessage.build(Command.AUTH_REQUEST, 1, version=3))
    capf.receive(CapfMessage.build(Command.END_SESSION, 1, reason=0))
    assert capf.outcome == CapfOutcome("nothing_pending", "END_SESSION reason 0")
    with pytest.raises(CapfProtocolError, match="after the session ended"):
        capf.receive(CapfMessage.build(Command.END_SESSION, 1, reason=1))


def test_a_server_ending_while_the_phone_waits_for_its_lsc_is_a_failure():
    capf = session()
    capf.receive(CapfMessage.build(Command.AUTH_REQUEST, 1, version=3))
    capf.receive(CapfMessage.build(Command.KEY_GENERATE_REQUEST, 1, key_size=1024))
    capf.receive(CapfMessage.build(Command.END_SESSION, 1, reason=1))
    assert (capf.outcome.result, capf.outcome.operation, capf.outcome.lsc) == ("failed", "install", None)


@pytest.mark.parametrize(("name", "expected"), [
    (DEVICE, True), (f"CP-8861-{DEVICE}", True), (DEVICE.lower(), True),
    ("SEP000000000001", False), (f"{DEVICE}-X", False), (f"X{DEVICE}", False),
])
def test_an_lsc_is_for_this_device_by_its_cn(name, expected):
    made = make_certificate(simple_subject(CN=name), rsa_key(1024, "names"), not_before=SEED_TIME, serial=9)
    assert names_device(made.certificate, DEVICE) is expected


def test_key_labels_name_kind_and_size():
    assert (KeySpec("rsa", 2048).label, KeySpec("ec", 384).label) == ("rsa2048", "ec384")


_COMMANDS = st.sampled_from([Command.AUTH_REQUEST, Command.KEY_GENERATE_REQUEST, Command.STORE_CERTIFICATE_REQUEST,
                             Command.FETCH_CERTIFICATE_REQUEST, Command.DELETE_CERTIFICATE_REQUEST,
                             Command.END_SESSION, Command.RETRY_LATER, Command.STATUS_REQUEST])
_ELEMENTS = st.dictionaries(st.sampled_from([Tag.REASON, Tag.VERSION, Tag.KEY_SIZE, Tag.KEY_TYPE, Tag.CURVE,
                                             Tag.CERTIFICATE_TYPE, Tag.CERTIFICATE, Tag.REASON_INFO]),
                            st.binary(max_size=12), max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_COMMANDS, st.sampled_from([1, 2]), _ELEMENTS), max_size=6))
def test_whatever_a_server_sends_the_session_ends_cleanly_or_refuses_and_never_keeps_a_foreign_lsc(script):
    """Any message sequence: answers, or CapfProtocolError (a CAPF frame error included); an LSC kept is
    always for the key this session generated."""
    capf = CapfSession(DEVICE, 2, CapfCredentials(lsc=an_lsc()), phone_version=3, ec_capable=True,
                       keys=lambda spec: rsa_key(1024, "fuzz"))
    for command, session_id, elements in script:
        try:
            message = CapfMessage.decode(CapfMessage(command, session_id, elements).encode())
            capf.receive(message)
        except CapfProtocolError:
            return
    if capf.outcome is not None and capf.outcome.lsc is not None:
        assert capf.outcome.lsc.private_key.private_numbers() == rsa_key(1024, "fuzz").private_numbers()
