"""A CUCM export's security profile and CAPF columns as the lab's device records (docs/fleet.md,
"Security profiles and CAPF from the export")."""

from __future__ import annotations

import json

import pytest

from phone.cli import main
from phone.lab.devices import CapfSettings, DeviceStore
from phone.scenario.inventory import InventoryError, read_inventory
from phone.scenario.inventory_devices import device_records

EMULATED = {"CP-7975", "CP-8861", "CP-7940"}.__contains__

# "Export Phones - All Details" columns: the first ones as CUCM writes them, then the security
# profile, the device security mode and the CAPF section of the phone page.
HEADER = ("DEVICE NAME,DESCRIPTION,DEVICE POOL,PHONE LOAD NAME,DEVICE TYPE,DEVICE SECURITY PROFILE,"
          "CERTIFICATE OPERATION,AUTHENTICATION MODE,AUTHENTICATION STRING,KEY ORDER,KEY SIZE (BITS),"
          "EC KEY SIZE (BITS),OPERATION COMPLETES BY")
ROWS = (
    "SEP00112233AA01,Desk,DP,,Cisco 8861,Cisco 8861 - Standard SIP Secure Profile,Install/Upgrade,"
    "By Authentication String,123456,RSA Only,2048,,2026-12-31:12",
    "SEP00112233AA02,Desk,DP,,Cisco 8861,Cisco 8861 - Standard SIP Non-Secure Profile,No Pending Operation,"
    "By Null String,,RSA Only,2048,,",
    "SEP00112233AA03,Desk,DP,,Cisco 7975,Universal Device Template - Model-independent Security Profile,"
    "Delete,By Existing Certificate (Precedence to LSC),,RSA Only,1024,,",
    "SEP00112233AA04,Desk,DP,,Cisco 8861,Lab Authenticated 8861,Install/Upgrade,"
    "By Existing Certificate (Precedence to MIC),,EC Only,,384,",
    "SEP00112233AA05,Desk,DP,,Cisco 7940,Branch phones,,,,,,,",
)


def export(header: str = HEADER, rows=ROWS) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def records(text: str) -> dict:
    inventory = read_inventory(text, EMULATED)
    return {record.name: record for record in device_records(inventory.phones, lambda name: name)}


def test_profile_names_map_to_the_device_security_mode_they_say():
    found = records(export())
    assert {name: record.security_profile for name, record in found.items()} == {
        "SEP00112233AA01": "encrypted", "SEP00112233AA02": "non-secure", "SEP00112233AA03": "non-secure",
        "SEP00112233AA04": "authenticated", "SEP00112233AA05": "non-secure"}
    assert found["SEP00112233AA01"].model == "CP-8861"


def test_the_capf_columns_become_the_device_pages_capf_section():
    found = records(export())
    assert found["SEP00112233AA01"].capf == CapfSettings("install", "auth-string", "123456", "rsa2048", "pending")
    assert found["SEP00112233AA02"].capf == CapfSettings()
    assert found["SEP00112233AA03"].capf == CapfSettings("delete", "existing-lsc", None, "rsa1024", "pending")
    assert found["SEP00112233AA04"].capf == CapfSettings("install", "existing-mic", None, "ec384", "pending")


def test_a_device_security_mode_column_wins_over_the_profile_name():
    header = HEADER + ",DEVICE SECURITY MODE,TFTP ENCRYPTED CONFIG"
    rows = [ROWS[0] + ",Authenticated,false", ROWS[1] + ",Encrypted,true"]
    found = records(export(header, rows))
    assert found["SEP00112233AA01"].security_profile == "authenticated"
    assert (found["SEP00112233AA02"].security_profile, found["SEP00112233AA02"].encrypted_config) == (
        "encrypted", True)


def test_an_export_without_security_columns_configures_no_device():
    text = "Device Name,Device Type,Phone Load Name\r\nSEP00112233AA01,Cisco 8861,\r\n"
    assert records(text) == {}


@pytest.mark.parametrize(("column", "value", "message"), [
    (6, "Reinstall", r"SEP00112233AA01: Certificate Operation 'Reinstall' is not one of CUCM's values"),
    (7, "By Password", r"SEP00112233AA01: Authentication Mode 'By Password' is not one of CUCM's values"),
    (8, "12", r"SEP00112233AA01: a CAPF authentication string is 4 to 10 digits"),
    (10, "3000", r"SEP00112233AA01: Key Size \(Bits\) '3000' is not one of CUCM's values"),
])
def test_a_value_cucm_does_not_write_is_one_line_naming_the_device(column, value, message):
    cells = ROWS[0].split(",")
    cells[column] = value
    with pytest.raises(InventoryError, match=message):
        records(export(rows=[",".join(cells)]))


def test_scenario_run_with_an_inventory_puts_its_devices_in_the_lab_before_the_run(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text(export(rows=ROWS[:2]), encoding="utf-8")
    work = tmp_path / "work"
    code = main(["scenario", "run", "nonsecure-to-mixed", "--inventory", str(path), "--work", str(work),
                 "--key-size", "1024", "--json"])
    assert code in (0, 1), capsys.readouterr().err
    assert set(json.loads(capsys.readouterr().out)["phones"]) == {"00112233AA01", "00112233AA02"}
    for lab in ("lab-a",):
        stored = {record.name: record for record in DeviceStore.for_lab(work / lab).list()}
        assert stored["SEP00112233AA01"].security_profile == "encrypted"
        assert stored["SEP00112233AA01"].capf.pending and stored["SEP00112233AA01"].capf.auth_string == "123456"
        assert stored["SEP00112233AA02"].security_profile == "non-secure"
