"""Configurations that differ only in what the phone does not read share one reading."""

from __future__ import annotations

from phone.wire import config as config_module
from phone.wire.config import PhoneConfig, TvsMember, render_config, _Shared


def _config(device: str, tvs: str = "10.0.0.1", mode: int = 1) -> bytes:
    return render_config([TvsMember(tvs, 2445)], device_name=device, device_security_mode=mode)


def test_two_devices_configurations_read_as_one_shared_object() -> None:
    config_module._read_config.cache_clear()
    one = PhoneConfig.from_bytes(_config("SEP00112233AA01"))
    other = PhoneConfig.from_bytes(_config("SEP00112233AA02"))
    assert one is other


def test_configurations_that_differ_in_what_the_phone_reads_are_never_shared() -> None:
    one = PhoneConfig.from_bytes(_config("SEP00112233AA01", tvs="10.0.0.1"))
    moved = PhoneConfig.from_bytes(_config("SEP00112233AA02", tvs="10.0.0.2"))
    secure = PhoneConfig.from_bytes(_config("SEP00112233AA03", mode=3))
    assert moved.tvs_members[0].address == "10.0.0.2" and one.tvs_members[0].address == "10.0.0.1"
    assert secure.device_security_mode == 3 and one.device_security_mode == 1


def test_past_its_limit_the_sharing_starts_again_and_still_answers_equal_values() -> None:
    shared = _Shared(limit=2)
    first = PhoneConfig(device_security_mode=1)
    assert shared(first) is first
    shared(PhoneConfig(device_security_mode=2))
    third = PhoneConfig(device_security_mode=3)
    assert shared(third) is third  # the held readings were forgotten, not grown past the limit
    again = PhoneConfig(device_security_mode=1)
    assert shared(again) is again and again == first
