"""The machine's tables: which events each step takes, the DeviceTLInfo codes, the flash's parsed lists."""

from __future__ import annotations

import attrs
import pytest
from minicluster import MAC, MiniCluster

from phone.catalogue import get_model
from phone.errors import LocalProtocolError, PhonetrustError
from phone.firmware.machine import (
    DEVICE_TL_STATUS,
    TRANSITIONS,
    Booted,
    Erased,
    FactoryReset,
    FileFailed,
    FileFetched,
    FileMissing,
    Flash,
    MachineError,
    PhoneMachine,
    BootStep,
    RegistrationDone,
    TvsAnswered,
    TvsFailed,
    TvsFailure,
    device_tl_status,
)
from phone.firmware.registration import TransportOutcome
from phone.scenario.steps import selects
from phone.wire.tlv import TrustList

NOW = 1_700_000_000.0
SBD = get_model("CP-8861")
CTL_NAME = f"CTLSEP{MAC}.tlv"

EVENTS = {
    Booted: Booted(),
    Erased: Erased(),
    FactoryReset: FactoryReset(),
    FileFetched: FileFetched(CTL_NAME, b"data"),
    FileMissing: FileMissing(CTL_NAME),
    FileFailed: FileFailed(CTL_NAME, "timeout"),
    TvsAnswered: TvsAnswered("10.0.0.1:2445", 0),
    TvsFailed: TvsFailed(TvsFailure.UNREACHABLE, "refused"),
    RegistrationDone: RegistrationDone(TransportOutcome.ANSWERED_OK),
}

UNTABLED = [(step, kind) for step in BootStep for kind in EVENTS if (step, kind) not in TRANSITIONS]


def test_every_step_takes_power_and_the_menu() -> None:
    assert all((step, kind) in TRANSITIONS for step in BootStep for kind in (Booted, Erased, FactoryReset))


def test_only_the_download_steps_take_files_and_only_the_tvs_step_takes_tvs_answers() -> None:
    file_steps = {step for step, kind in TRANSITIONS if kind is FileFetched}
    assert file_steps == {BootStep.CTL, BootStep.ITL_DEVICE, BootStep.ITL_GENERIC, BootStep.CONFIG_HTTPS,
                          BootStep.CONFIG_SIGNED, BootStep.CONFIG_PLAIN, BootStep.CONFIG_ENCRYPTED,
                          BootStep.REGISTER_CTL}
    assert {step for step, kind in TRANSITIONS if kind in (TvsAnswered, TvsFailed)} == {BootStep.TVS}
    assert {step for step, kind in TRANSITIONS if kind is RegistrationDone} == {BootStep.REGISTER}


@pytest.mark.parametrize("step, kind", UNTABLED, ids=lambda value: getattr(value, "__name__", str(value)))
def test_an_event_the_step_has_no_transition_for_is_a_local_protocol_error(step: BootStep, kind: type) -> None:
    machine = attrs.evolve(PhoneMachine(SBD, MAC), step=step)
    with pytest.raises(LocalProtocolError, match=f"{kind.__name__} while {step.value}"):
        machine.handle(EVENTS[kind], NOW)


def test_a_file_other_than_the_one_asked_for_is_a_local_protocol_error() -> None:
    machine, _ = PhoneMachine(SBD, MAC).handle(Booted(), NOW)
    assert machine.step is BootStep.CTL
    with pytest.raises(LocalProtocolError, match="while waiting for"):
        machine.handle(FileMissing("ITLFile.tlv"), NOW)
    assert issubclass(MachineError, LocalProtocolError) and issubclass(LocalProtocolError, PhonetrustError)


def test_the_device_tl_info_table_holds_the_nine_codes() -> None:
    assert {code: status.name for code, status in DEVICE_TL_STATUS.items()} == {
        1: "TL_SUCCESS", 2: "CTL_INITIAL_SUCCESS", 3: "ITL_INITIAL_SUCCESS", 4: "TL_INITIAL_SUCCESS",
        5: "TL_FAILED_OLD_CTL", 6: "TL_FAILED_NO_TL", 7: "TL_FAILED", 8: "TL_FAILED_OLD_ITL", 9: "TL_FAILED_OLD_TL"}


BOTH = {"ctl", "itl"}


@pytest.mark.parametrize("failed, initial, holds, code", [
    (set(), set(), BOTH, 1),
    (set(), {"ctl"}, BOTH, 2),
    (set(), {"itl"}, {"itl"}, 3),
    (set(), BOTH, BOTH, 4),
    ({"ctl"}, set(), BOTH, 5),
    ({"ctl"}, set(), set(), 6),
    ({"ctl"}, set(), {"itl"}, 7),
    ({"itl"}, set(), {"itl"}, 8),
    ({"itl"}, {"ctl"}, {"ctl"}, 7),
    (BOTH, set(), BOTH, 9),
    (BOTH, set(), {"ctl"}, 7),
    (BOTH, set(), set(), 6),
])
def test_device_tl_status_follows_what_failed_and_what_the_phone_keeps(failed, initial, holds, code) -> None:
    assert device_tl_status(failed=frozenset(failed), initial=frozenset(initial), holds=frozenset(holds)) == code


def test_the_flash_keeps_its_lists_parsed_and_reads_them_without_parsing_again() -> None:
    itl = MiniCluster().itl()
    flash = Flash(itl=itl)
    assert isinstance(flash.itl, TrustList) and flash.itl.data == itl
    assert flash.trusted().itl is flash.itl
    assert Flash(itl=flash.itl).itl is flash.itl  # a parsed list is kept as it is (the fleet shares them)


def test_flash_content_that_no_longer_parses_counts_as_absent() -> None:
    assert Flash(ctl=b"not a trust list", itl=MiniCluster().itl()).ctl is None


def test_security_by_default_needs_the_itl_and_tvs_and_scenarios_use_that_definition() -> None:
    itl_without_tvs = attrs.evolve(SBD, supports_tvs=False)
    assert SBD.security_by_default and not itl_without_tvs.security_by_default
    assert selects("legacy", itl_without_tvs, None) and not selects("sbd", itl_without_tvs, None)
    assert selects("sbd", SBD, None)
