"""The bundled catalogue's corrections from Cisco's documents (docs/models.md, "Corrections and their sources")."""

from __future__ import annotations

import re

import pytest

from phone.catalogue import load_catalogue
from phone.firmware.loads import parse_load, parse_version
from phone.firmware.models import Catalogue, ModelFileError, models_from_text

#: The load families each catalogue family's firmware lines use (Cisco's Device Package
#: Compatibility Matrix): a default load outside its model's line is a catalogue mistake.
LOAD_FAMILIES = {
    "7900": r"P003|SCCP(11|31|41|42|45|70|75)",
    "6900": r"SCCP(6901|6911|69xx|6945)",
    "7800": r"sip78xx|sip7832",
    "8800": r"sip88xx|sip8845_65|sip8831|sip8832",
    "8900": r"SCCP894x|sip8961",
    "9900": r"sip9951|sip9971",
    "dx": r"sipdx|sipdx650",
    "wireless": r"CP792[56]G|sip8821",
    "legacy": r"apps37sccp|SIP3905",
    "phoneos": r"PHONEOS",
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(environ={})


def test_every_default_load_parses_and_belongs_to_its_models_firmware_line(catalogue):
    checked = 0
    for model in catalogue:
        if model.firmware is None:
            continue
        load = parse_load(model.firmware)
        assert re.fullmatch(LOAD_FAMILIES[model.family], load.family), (model.name, model.firmware)
        checked += 1
    assert checked == len(catalogue) - 1      # every model but Jabber names a load


@pytest.mark.parametrize(("model", "load_family"), [
    ("CP-7811", "sip78xx"), ("CP-7861", "sip78xx"), ("CP-7832", "sip7832"),
    ("CP-8811", "sip88xx"), ("CP-8861", "sip88xx"), ("CP-8845", "sip8845_65"), ("CP-8865", "sip8845_65"),
])
def test_7800_and_8800_default_to_the_documented_14_2_1_build(catalogue, model, load_family):
    load = parse_load(catalogue.get(model).firmware)
    assert (load.family, str(load.version), load.version.build) == (load_family, "14.2(1)", "0101-26")


@pytest.mark.parametrize("model", ["CP-7940", "CP-7960"])
def test_7940_and_7960_default_to_their_last_release_8_1_2_sr2(catalogue, model):
    assert parse_load(catalogue.get(model).firmware).version == parse_version("8.1(2)SR2")


@pytest.mark.parametrize("model", ["CP-8811", "CP-8841", "CP-8845", "CP-8851", "CP-8861", "CP-8865"])
def test_8800_default_load_is_ec_capable_because_ecdsa_arrived_in_12_5_1(catalogue, model):
    found = catalogue.get(model)
    assert parse_load(found.firmware).version >= parse_version("12.5(1)")
    assert found.ec_certificates


def test_7832_shows_its_own_texts_and_none_for_installed_lists(catalogue):
    model = catalogue.get("CP-7832")
    assert model.messages == {
        "no_trust_list": "No Trust List Installed",
        "trust_list_updated": "Trust List Updated",
        "update_failed": "Trust List Update Failed",
        "erasing": "Erasing CTL and ITL files",
        "file_not_found": "File Not Found <{file}>",
        "key_size_not_fips": "Phone failed to register. Cert key size is not FIPS compliant.",
    }
    assert model.message("ctl_installed") is None and model.message("ctl_update_failed") is None


@pytest.mark.parametrize("model", ["CP-DX70", "CP-DX80", "CP-DX650"])
def test_dx_shows_only_the_two_texts_its_guide_documents(catalogue, model):
    assert catalogue.get(model).messages == {
        "no_trust_list": "No Trust List installed",
        "update_failed": "Trust List update failed, verification failure",
    }


@pytest.mark.parametrize("model", ["CP-7970", "CP-7971"])
def test_7970_and_7971_end_with_cucm_11_5(catalogue, model):
    assert catalogue.get(model).cucm_max_release == "11.5"


def test_models_without_a_known_cucm_limit_have_none(catalogue):
    assert catalogue.get("CP-7975").cucm_max_release is None


MINIMAL = '''
[defaults]
supports_ctl = true
supports_itl = false
supports_tvs = false
digests = ["sha1"]
rsa_key_sizes = [1024]
tls_versions = []
checksum = false
log_dialect = false
[models.CP-LAB]
description = "lab"
cucm_max_release = {value}
'''


def test_a_cucm_release_that_is_not_major_dot_minor_is_refused():
    with pytest.raises(ModelFileError, match=r"\[models.CP-LAB\] cucm_max_release: expected a CUCM release"):
        models_from_text(MINIMAL.format(value='"eleven"'), "lab.toml", family="lab")
    [model] = models_from_text(MINIMAL.format(value='"12.5"'), "lab.toml", family="lab")
    assert model.cucm_max_release == "12.5"
