"""The lab's device store: CUCM's phone page for the trust side, shared by `lab serve` and the CLI."""

import pytest

from phone.errors import UsageError
from phone.lab.devices import CapfSettings, DeviceRecord, DeviceStore
from phone.lab.state import LabError

NAME = "SEP001122334455"


def test_a_device_never_configured_is_auto_registered_non_secure(tmp_path):
    record = DeviceStore.for_lab(tmp_path).effective(NAME, "CP-8861")
    assert (record.security_profile, record.capf.operation, record.configured) == ("non-secure", "none", False)
    assert record.device_security_mode == 1


def test_a_device_round_trips_through_the_store(tmp_path):
    store = DeviceStore.for_lab(tmp_path)
    record = DeviceRecord(NAME, "CP-8861", security_profile="encrypted", encrypted_config=True,
                          capf=CapfSettings("install", "auth-string", "123456", "ec256", "pending"))
    store.put(record)
    assert store.get(NAME) == record
    assert [r.name for r in store.list()] == [NAME]
    assert store.get(NAME).as_json()["capf"] == {"operation": "install", "status": "pending",
                                                 "auth": "auth-string:123456", "key": "ec256"}
    assert record.capf.auth_mode_number == 1 and record.device_security_mode == 3


def test_the_capf_server_records_status_and_lsc(tmp_path):
    store = DeviceStore.for_lab(tmp_path)
    store.put(DeviceRecord(NAME, "CP-8861", capf=CapfSettings("install", status="pending")))
    store.record_capf_result(NAME, status="successful", lsc_der=b"lsc")
    assert store.get(NAME).capf.status == "successful" and store.get(NAME).lsc_der == b"lsc"
    store.record_capf_result(NAME, status="failed", lsc_der=None, keep_lsc=True)
    assert store.get(NAME).lsc_der == b"lsc"
    assert store.get(NAME).capf.auth_mode_number == 0
    store.record_mic(NAME, b"mic")
    assert store.get(NAME).mic_der == b"mic" and store.get(NAME).lsc_der == b"lsc"


@pytest.mark.parametrize("make", [
    lambda: DeviceRecord("SEP00112233445", "CP-8861"),
    lambda: DeviceRecord("sep001122334455", "CP-8861"),
    lambda: DeviceRecord(NAME, "CP-8861", security_profile="secure"),
    lambda: CapfSettings("install", "auth-string", "12a"),
    lambda: CapfSettings("install", "null-string", "1234"),
    lambda: CapfSettings(key="rsa512"),
])
def test_settings_cucm_would_refuse_are_refused(make):
    with pytest.raises(UsageError):
        make()


def test_a_damaged_store_is_one_line(tmp_path):
    (tmp_path / "devices.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(LabError, match="device store"):
        DeviceStore.for_lab(tmp_path).list()
