"""The flash keeps its configuration read; a changed configuration is read anew; the machine's own evolve."""

from __future__ import annotations

import attrs
import pytest

from phone.catalogue import get_model
from phone.errors import ConfigFormatError, UsageError
from phone.firmware.machine import Flash, _evolve
from phone.wire import config as config_module
from phone.wire.config import TvsMember, render_config

FIRST = render_config([TvsMember("10.0.0.1", 2445)], device_name="SEP00112233AA01", device_security_mode=1)
SECOND = render_config([TvsMember("10.0.0.2", 2445)], device_name="SEP00112233AA01", device_security_mode=3)


def forget_every_reading() -> None:
    """As a worker with more phones than the reader keeps: nothing read earlier is found again."""
    config_module._read_config.cache_clear()
    config_module._shared.clear()


def test_the_reading_is_kept_with_the_flash_beyond_the_shared_reading_cache() -> None:
    flash = Flash(config=FIRST)
    read = flash.stored_config()
    forget_every_reading()
    assert flash.stored_config() is read


def test_a_flash_made_from_another_keeps_the_reading() -> None:
    flash = Flash(config=FIRST)
    read = flash.stored_config()
    forget_every_reading()
    assert attrs.evolve(flash, config_name="SEP00112233AA01.cnf.xml").stored_config() is read


def test_a_changed_configuration_is_read_anew_not_taken_from_the_old_reading() -> None:
    flash = Flash(config=FIRST)
    assert flash.stored_config().tvs_members[0].address == "10.0.0.1"
    changed = attrs.evolve(flash, config=SECOND)  # carries the old reading along
    assert changed.stored_config().tvs_members[0].address == "10.0.0.2"
    assert changed.stored_config().device_security_mode == 3


def test_an_unreadable_configuration_reads_as_empty_and_stays_so() -> None:
    flash = Flash(config=b"<device><unclosed>")
    assert flash.stored_config().tvs_members == ()
    assert flash.stored_config().tvs_members == ()


def test_the_kept_reading_is_not_part_of_what_the_phone_keeps() -> None:
    read, unread = Flash(config=FIRST), Flash(config=FIRST)
    read.stored_config()
    assert read == unread and hash(read) == hash(unread)
    assert "config_read" not in repr(read)


def test_two_phones_with_different_configurations_never_share_a_reading() -> None:
    one, other = Flash(config=FIRST), Flash(config=SECOND)
    forget_every_reading()
    assert one.stored_config().tvs_members[0].address == "10.0.0.1"
    assert other.stored_config().tvs_members[0].address == "10.0.0.2"


def test_the_machines_evolve_runs_converters_and_keeps_the_other_fields() -> None:
    flash = Flash(config=FIRST, config_name="SEP00112233AA01.cnf.xml")
    evolved = _evolve(flash, ctl=None, config=SECOND)
    assert evolved == attrs.evolve(flash, ctl=None, config=SECOND)
    assert evolved.config_name == "SEP00112233AA01.cnf.xml"
    assert _evolve(flash, ctl=b"not a trust list").ctl is None  # the converter refused the bytes


@pytest.mark.parametrize("device_id", ["00112233AA01", "00:11:22:33:aa:01", "0011.2233.AA01", "SEP00112233aa01"])
def test_every_way_of_writing_a_mac_gives_the_same_device_name(device_id: str) -> None:
    assert get_model("CP-8861").device_name(device_id) == "SEP00112233AA01"


@pytest.mark.parametrize("device_id", ["00112233AA0", "00112233AA0G", "00112233AA011"])
def test_a_string_that_is_not_a_mac_is_still_refused(device_id: str) -> None:
    with pytest.raises(UsageError):
        get_model("CP-8861").device_name(device_id)


def test_a_downloaded_configuration_equal_to_the_stored_one_takes_the_kept_reading() -> None:
    flash = Flash(config=FIRST)
    read = flash.stored_config()
    forget_every_reading()
    assert flash.read_config(bytes(FIRST), source="SEP00112233AA01.cnf.xml") is read


def test_a_downloaded_configuration_that_differs_is_read_from_its_own_bytes() -> None:
    flash = Flash(config=FIRST)
    flash.stored_config()
    assert flash.read_config(SECOND, source="SEP00112233AA01.cnf.xml").device_security_mode == 3


def test_an_unreadable_stored_configuration_never_vouches_for_the_same_bytes_downloaded() -> None:
    garbage = b"<device><unclosed>"
    flash = Flash(config=garbage)
    assert flash.stored_config().tvs_members == ()  # read as empty for the phone's own use
    with pytest.raises(ConfigFormatError, match="SEP00112233AA01.cnf.xml"):
        flash.read_config(garbage, source="SEP00112233AA01.cnf.xml")  # refused, as any unreadable download
