"""Reading a CUCM phone export or a plain device list into emulated phones (docs/fleet.md, "Inventories")."""

from __future__ import annotations

import pytest

from phone.scenario.inventory import InventoryError, catalogue_name, read_inventory

EMULATED = {"CP-7975", "CP-8861", "CP-8845", "CP-7940", "CP-DX80", "CP-7832"}.__contains__

# The first columns of a Bulk Administration "Export Phones - All Details" file, as CUCM
# writes them, then the ones phonetrust reads further along the row.
BAT_HEADER = ("Device Name,Description,Device Pool,Phone Button Template,CSS,AAR CSS,Location,Extension Mobility,"
              "Phone Load Name,Module 1 Load Name,Device Type,User ID 1,Device Security Profile,"
              "Certificate Operation,Authentication String,Operation Completes By,Device Protocol")


def bat(*rows: str, bom: bool = False) -> str:
    return ("\ufeff" if bom else "") + "\r\n".join([BAT_HEADER, *rows]) + "\r\n"


def test_device_types_map_to_catalogue_names():
    assert catalogue_name("Cisco 8861") == "CP-8861"
    assert catalogue_name("Cisco DX80") == "CP-DX80"
    assert catalogue_name("Cisco 7975") == "CP-7975"
    assert catalogue_name("Cisco Unified Client Services Framework") is None
    assert catalogue_name("Third-party SIP Device (Advanced)") is None


def test_bat_export_rows_become_phones_with_model_load_and_security_settings():
    text = bat(
        'SEP00112233AABB,"Reception, ground floor",DP_HQ,Standard 8861 SIP,,,Hub_None,f,sip88xx.14-2-1-0001-14,,'
        'Cisco 8861,jdoe,Cisco 8861 - Standard SIP Secure Profile,Install/Upgrade,1234,2026-12-31,SIP',
        "SEP0011223344CC,Lobby,DP_HQ,Standard 7975 SCCP,,,Hub_None,f,,,Cisco 7975,,,No Pending Operation,,,SCCP",
        bom=True,
    )
    inventory = read_inventory(text, EMULATED)
    assert inventory.form == "bat"
    first, second = inventory.phones
    assert (first.device, first.mac, first.model, first.load) == ("SEP00112233AABB", "00112233AABB", "CP-8861",
                                                                   "sip88xx.14-2-1-0001-14")
    assert first.security_profile == "Cisco 8861 - Standard SIP Secure Profile"
    assert (first.certificate_operation, first.authentication_string) == ("Install/Upgrade", "1234")
    assert (second.model, second.load, second.security_profile) == ("CP-7975", None, None)
    assert inventory.skipped == {}


def test_rows_that_are_not_emulated_phones_are_counted_by_type_not_dropped():
    text = bat(
        "CSFJDOE,Jabber,DP_HQ,,,,,,,,Cisco Unified Client Services Framework,,,,,,SIP",
        "SEP707070707070,Third party,DP_HQ,,,,,,,,Third-party SIP Device (Advanced),,,,,,SIP",
        "SEP0011223344DD,Conference,DP_HQ,,,,,,,,Cisco 8832,,,,,,SIP",
        "CSFASMITH,Jabber,DP_HQ,,,,,,,,Cisco Unified Client Services Framework,,,,,,SIP",
        "SEP0011223344EE,Desk,DP_HQ,,,,,,,,Cisco 8845,,,,,,SIP",
    )
    inventory = read_inventory(text, EMULATED)
    assert [phone.device for phone in inventory.phones] == ["SEP0011223344EE"]
    assert inventory.skipped == {"Cisco Unified Client Services Framework": 2,
                                 "Third-party SIP Device (Advanced)": 1, "Cisco 8832": 1}


def test_columns_are_found_by_name_in_any_order_as_specific_details_exports_them():
    text = "Device Type,Phone Load Name,Device Name\nCisco 8845,,sep0011223344ff\n"
    (phone,) = read_inventory(text, EMULATED).phones
    assert (phone.device, phone.model, phone.load) == ("SEP0011223344FF", "CP-8845", None)


def test_plain_device_model_load_csv():
    text = "device,model,load\nSEP001122334401,CP-8861,sip88xx.12-8-1-0001-455\nSEP001122334402,Cisco 7975,\n"
    inventory = read_inventory(text, EMULATED)
    assert inventory.form == "plain"
    assert [(p.model, p.load) for p in inventory.phones] == [("CP-8861", "sip88xx.12-8-1-0001-455"), ("CP-7975", None)]


def test_blank_lines_are_ignored():
    text = "device,model\n\nSEP001122334401,CP-8861\n,\n"
    assert len(read_inventory(text, EMULATED).phones) == 1


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("name,type\nx,y\n", r"row 1: expected a CUCM phone export"),
    ("device,model\nSEP0011223344,CP-8861\n", r"row 2: device name 'SEP0011223344' is not SEP followed by 12 hex"),
    ("device,model\nSEP001122334401,\n", r"row 2: 'model' is empty"),
    ("device,model\nSEP001122334401,CP-8861\nsep001122334401,CP-7975\n", r"row 3: device SEP001122334401 already "
                                                                         r"appears in row 2"),
    ('device,model\nSEP001122334401,"CP-8861\n', r"row 2: unexpected end of data"),
    (bat("SEP001122334401,x,DP,,,,,,,,,,,,,,SIP"), r"row 2: 'Device Type' is empty"),
    ("device,model,load\nSEP001122334401,CP-8861,sip88xx.14-2-1\nSEP001122334402,CP-8861,latest\n",
     r"row 3: load 'latest': expected <family>.<version>"),
])
def test_malformed_inventories_are_one_line_naming_the_row(text, message):
    with pytest.raises(InventoryError, match=message):
        read_inventory(text, EMULATED, source="phones.csv")


def test_thousands_of_rows_read_in_one_pass():
    rows = [f"SEP{index:012X},{'CP-8861' if index % 3 else 'Cisco 7975'}" for index in range(20000)]
    inventory = read_inventory("device,model\n" + "\n".join(rows) + "\n", EMULATED)
    assert inventory.counts() == {"CP-8861": 13333, "CP-7975": 6667}
