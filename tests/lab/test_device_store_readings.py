"""The device store keeps the records it read until its file is written (the lab's servers ask per request)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from phone.lab.devices import DeviceRecord, DeviceStore

ONE, OTHER = "SEP001122334455", "SEP00112233AA66"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the store read from SQLite (a record answered from memory is not in it)."""
    seen: list[str] = []
    original = DeviceStore._read

    def counting(self: DeviceStore, name: str):
        seen.append(name)
        return original(self, name)

    monkeypatch.setattr(DeviceStore, "_read", counting)
    return seen


def test_a_record_read_once_is_answered_again_without_sqlite(tmp_path, reads) -> None:
    store = DeviceStore.for_lab(tmp_path)
    store.put(DeviceRecord(ONE, "CP-8861", security_profile="encrypted"))
    assert DeviceStore.for_lab(tmp_path).get(ONE).device_security_mode == 3
    assert DeviceStore.for_lab(tmp_path).get(ONE).device_security_mode == 3
    assert reads == [ONE]


def test_a_change_saved_through_another_store_object_is_served(tmp_path) -> None:
    DeviceStore.for_lab(tmp_path).put(DeviceRecord(ONE, "CP-8861"))
    assert DeviceStore.for_lab(tmp_path).get(ONE).security_profile == "non-secure"
    DeviceStore.for_lab(tmp_path).put(DeviceRecord(ONE, "CP-8861", security_profile="authenticated"))
    assert DeviceStore.for_lab(tmp_path).get(ONE).security_profile == "authenticated"


def test_a_change_another_process_commits_is_served(tmp_path) -> None:
    store = DeviceStore.for_lab(tmp_path)
    store.put(DeviceRecord(ONE, "CP-8861"))
    assert store.get(ONE).encrypted_config is False
    script = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
              "db.execute('UPDATE device SET encrypted_config = 1 WHERE name = ?', (sys.argv[2],)); db.commit()")
    subprocess.run([sys.executable, "-c", script, str(store.path), ONE], check=True)
    assert store.get(ONE).encrypted_config is True


def test_a_device_added_after_it_was_asked_for_is_found(tmp_path) -> None:
    store = DeviceStore.for_lab(tmp_path)
    store.put(DeviceRecord(ONE, "CP-8861"))
    assert store.get(OTHER) is None
    store.put(DeviceRecord(OTHER, "CP-7975", security_profile="encrypted"))
    assert store.get(OTHER).model == "CP-7975"


def test_each_device_gets_its_own_record_never_anothers(tmp_path) -> None:
    store = DeviceStore.for_lab(tmp_path)
    store.put_many([DeviceRecord(ONE, "CP-8861", security_profile="encrypted"), DeviceRecord(OTHER, "CP-7975")])
    for _ in range(2):
        assert (store.get(ONE).model, store.get(ONE).device_security_mode) == ("CP-8861", 3)
        assert (store.get(OTHER).model, store.get(OTHER).device_security_mode) == ("CP-7975", 1)


def test_two_labs_never_answer_for_each_other(tmp_path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    DeviceStore.for_lab(tmp_path / "a").put(DeviceRecord(ONE, "CP-8861", security_profile="encrypted"))
    DeviceStore.for_lab(tmp_path / "b").put(DeviceRecord(ONE, "CP-8861"))
    assert DeviceStore.for_lab(tmp_path / "a").get(ONE).device_security_mode == 3
    assert DeviceStore.for_lab(tmp_path / "b").get(ONE).device_security_mode == 1


def test_a_store_in_wal_mode_is_read_every_time(tmp_path, reads) -> None:
    store = DeviceStore.for_lab(tmp_path)
    store.put(DeviceRecord(ONE, "CP-8861"))
    with sqlite3.connect(store.path) as db:
        db.execute("PRAGMA journal_mode=WAL")
    assert store.get(ONE).model == "CP-8861"
    with sqlite3.connect(store.path) as db:  # a WAL commit leaves the main file's change counter alone
        db.execute("UPDATE device SET model = 'CP-7975' WHERE name = ?", (ONE,))
    assert store.get(ONE).model == "CP-7975"
    assert reads == [ONE, ONE]
