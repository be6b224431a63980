"""Firmware rows in model files: a fact's value per firmware range, and ``PhoneModel.at_load``."""

from __future__ import annotations

import pytest

from phone.catalogue import default_catalogue
from phone.firmware.loads import LoadFormatError, parse_load
from phone.firmware.models import ModelFileError, PhoneModel, models_from_text

PATH = "lab/lab.toml"

HEADER = """
[models.CP-LAB]
description = "lab phone"
supports_ctl = true
supports_itl = true
supports_tvs = true
digests = ["sha1"]
rsa_key_sizes = [2048]
tls_versions = ["1.2"]
ec_certificates = true
checksum = "sha1"
log_dialect = "enterprise"
firmware = "sip88xx.14-2-1-0101-26"
"""


def lab_model(rows: str) -> PhoneModel:
    (model,) = models_from_text(HEADER + f"firmware_rows = [\n{rows}\n]\n", PATH, family="lab")
    return model


def file_error(rows: str) -> str:
    with pytest.raises(ModelFileError) as caught:
        lab_model(rows)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{PATH}: [models.CP-LAB] firmware_rows:")
    return message


def test_a_range_that_does_not_parse_is_refused_naming_the_file_model_and_row() -> None:
    message = file_error('{ range = "> 12.5(1)", ec_certificates = true, source = "doc" },')
    assert "row 1: range:" in message and "'> 12.5(1)'" in message


def test_overlapping_rows_of_one_fact_are_refused() -> None:
    message = file_error('{ range = ">= 12.0", ec_certificates = true, source = "doc" },\n'
                         '{ range = "< 12.5(1)", ec_certificates = false, source = "doc" },')
    assert "row 2 (< 12.5(1)) overlaps row 1 (>= 12.0) for ec_certificates" in message


def test_rows_of_different_facts_may_overlap() -> None:
    model = lab_model('{ range = "< 14.0", ec_certificates = false, source = "doc" },\n'
                      '{ range = "< 14.0", tls_versions = ["1.0", "1.2"], source = "doc" },')
    older = model.at_load(parse_load("sip88xx.12-1-1-1"))
    assert (older.ec_certificates, older.tls_versions) == (False, ("1.0", "1.2"))


def test_a_row_field_that_is_not_a_firmware_fact_is_refused() -> None:
    message = file_error('{ range = "< 14.0", checksum = "md5", source = "doc" },')
    assert "row 1: unknown field 'checksum'" in message


def test_a_row_needs_a_source_or_a_choice() -> None:
    assert "exactly one of 'source'" in file_error('{ range = "< 14.0", ec_certificates = false },')


def test_a_choice_row_is_recorded_as_a_choice() -> None:
    model = lab_model('{ range = "< 14.0", ec_certificates = false, choice = "no document says" },')
    assert model.firmware_rows[0].source == "choice: no document says"


def test_a_row_covering_the_default_load_must_agree_with_the_model() -> None:
    message = file_error('{ range = ">= 14.0", ec_certificates = false, source = "doc" },')
    assert "covers the default load sip88xx.14-2-1-0101-26 but sets ec_certificates = False" in message


def test_a_firmware_in_no_row_keeps_the_family_default_with_a_note() -> None:
    model = lab_model('{ range = ">= 12.5(1)", ec_certificates = true, source = "doc" },')
    older = model.at_load(parse_load("sip88xx.11-0-1-1"))
    assert older.ec_certificates is True
    assert older.load_notes == ("outside documented firmware: ec_certificates keep the family default",)


def test_a_load_above_the_last_release_uses_the_highest_row_with_a_note() -> None:
    model = lab_model('{ range = "< 12.5(1)", ec_certificates = false, source = "doc" },\n'
                      '{ range = ">= 12.5(1), < 14.3", ec_certificates = true, source = "doc" },')
    newer = model.at_load(parse_load("sip88xx.15-0-1-1"))
    assert newer.ec_certificates is True
    assert newer.load_notes == ("newer than the last known release 14.2(1): using the highest row",)


def test_a_load_of_another_load_family_is_refused() -> None:
    model = default_catalogue().get("CP-8861")
    with pytest.raises(LoadFormatError, match="CP-8861 runs sip88xx loads"):
        model.at_load(parse_load("sip78xx.14-2-1-0101-26"))


def test_8861_has_no_ec_on_10_3_1() -> None:
    model = default_catalogue().get("CP-8861")
    assert model.at_load(parse_load("sip88xx.10-3-1-20")).ec_certificates is False


def test_8861_has_ec_from_12_5_1_service_releases() -> None:
    model = default_catalogue().get("CP-8861")
    assert model.at_load(parse_load("sip88xx.12-5-1SR1-2")).ec_certificates is True


def test_every_bundled_model_is_unchanged_on_its_default_load() -> None:
    for model in default_catalogue():
        if model.firmware_rows:
            assert model.at_load(model.default_load()) == model, model.name


def test_7821_offers_tls_1_0_to_1_2_below_14_0() -> None:
    model = default_catalogue().get("CP-7821")
    assert model.at_load(parse_load("sip78xx.12-1-1-12")).tls_versions == ("1.0", "1.1", "1.2")


def test_7821_offers_tls_1_2_only_on_14_x() -> None:
    model = default_catalogue().get("CP-7821")
    assert model.at_load(parse_load("sip78xx.14-2-1-0101-26")).tls_versions == ("1.2",)


def test_7821_above_the_last_release_uses_the_highest_row_with_a_note() -> None:
    newer = default_catalogue().get("CP-7821").at_load(parse_load("sip78xx.15-0-1-1"))
    assert newer.tls_versions == ("1.2",)
    assert newer.load_notes == ("newer than the last known release 14.2(1): using the highest row",)


def test_firmware_changes_name_the_field_both_values_and_the_source() -> None:
    changes = default_catalogue().get("CP-8861").firmware_changes(parse_load("sip88xx.10-3-1-20"))
    by_field = {change.field: change for change in changes}
    assert set(by_field) == {"digests", "ec_certificates"}
    change = by_field["ec_certificates"]
    assert (change.field, change.value, change.default_value) == ("ec_certificates", False, True)
    assert "8800 Series Release Notes" in change.source
    assert (by_field["digests"].value, by_field["digests"].source.startswith("choice:")) == (["sha1"], True)
