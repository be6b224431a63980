"""Firmware load names, version order and ranges (docs/models.md, "Firmware")."""

from __future__ import annotations

import pytest

from phone.firmware.loads import (
    CE,
    LoadFormatError,
    parse_load,
    parse_range,
    parse_version,
)


@pytest.mark.parametrize("name, family, version, build", [
    ("sip88xx.14-2-1-0001-14", "sip88xx", "14.2(1)", "0001-14"),
    ("sip78xx.12-1-1-12", "sip78xx", "12.1(1)", "12"),
    ("SCCP75.9-4-2SR3-1S", "SCCP75", "9.4(2)SR3", "1S"),
    ("SCCP75.9-3-1SR4-1S", "SCCP75", "9.3(1)SR4", "1S"),
    ("SCCP69xx.9-4-1-3SR3", "SCCP69xx", "9.4(1)SR3", "3"),
    ("sip8845_65.14-2-1-0101-26", "sip8845_65", "14.2(1)", "0101-26"),
    ("sip88xx.10-3-1-20", "sip88xx", "10.3(1)", "20"),
    ("sipdx80.ce-9.15.3.22", "sipdx80", "CE9.15.3", "22"),
    ("P00308010200", "P003", "8.1(2)", "00"),
    ("P00308001000", "P003", "8.0(10)", "00"),
    ("P0030801SR02", "P003", "8.1(2)SR2", ""),
    ("P0S3-8-12-00", "P0S3", "8.12(0)", ""),
])
def test_load_names_read_as_family_version_and_build(name, family, version, build):
    load = parse_load(name)
    assert (load.family, str(load.version), load.version.build, load.text) == (family, version, build, name)


def test_load_names_are_case_insensitive_and_keep_their_text():
    load = parse_load("SIP88XX.14-2-1SR1-3")
    assert str(load.version) == "14.2(1)SR1"
    assert load.text == "SIP88XX.14-2-1SR1-3"


@pytest.mark.parametrize("name", ["", "sip88xx", "sip88xx.14", "sip88xx.x-2-1", "P0030901SR02", "88xx.14-2-1"])
def test_unreadable_load_names_say_which_forms_are_understood(name):
    with pytest.raises(LoadFormatError, match="expected|no known maintenance"):
        parse_load(name)


def test_versions_order_by_release_then_service_release_and_ignore_builds():
    assert parse_version("12.5(1)") < parse_version("12.5(1)SR1") < parse_version("12.5(1)SR2") < parse_version("14.0")
    assert parse_version("9.4(2)SR3") < parse_version("9.4(2)SR4")
    assert parse_load("sip88xx.14-2-1-0001-14").version == parse_load("sip88xx.14-2-1-0101-26").version
    assert parse_version("14.0") == parse_version("14.0(0)")


def test_ce_versions_do_not_compare_with_enterprise_versions():
    ce = parse_version("CE9.15.3")
    assert ce.line == CE and str(ce) == "CE9.15.3"
    with pytest.raises(LoadFormatError, match="different firmware lines"):
        _ = ce < parse_version("12.0(1)")


def test_range_bounds_include_below_and_exclude_above():
    span = parse_range(">= 12.5(1), < 14.0")
    assert parse_version("12.5(1)") in span
    assert parse_version("12.5(1)SR3") in span
    assert parse_version("12.1(1)SR9") not in span
    assert parse_version("14.0") not in span
    assert parse_version("14.2(1)") not in span


def test_an_upper_bound_at_a_service_release_covers_the_release_before_it():
    assert parse_version("12.5(1)") in parse_range("< 12.5(1)SR1")
    assert parse_version("12.5(1)SR1") not in parse_range("< 12.5(1)SR1")


def test_any_covers_every_version_of_the_line_and_ce_stays_outside_enterprise_bounds():
    assert parse_version("1.0") in parse_range("any")
    assert parse_version("CE9.15.3") not in parse_range(">= 9.0")


@pytest.mark.parametrize("text", ["", ">= ", "> 12.0", ">= 12.0, >= 13.0", "< 12.0, < 13.0", ">= 14.0, < 12.0",
                                  ">= 12.0, < 12.0"])
def test_bad_ranges_are_refused(text):
    with pytest.raises(LoadFormatError):
        parse_range(text)


def test_overlap_of_ranges():
    assert not parse_range("< 12.0").overlaps(parse_range(">= 12.0"))
    assert parse_range("< 12.0(1)SR1").overlaps(parse_range(">= 12.0(1)"))
    assert parse_range("any").overlaps(parse_range(">= 14.0"))
    assert not parse_range(">= 12.0, < 12.5(1)").overlaps(parse_range(">= 12.5(1)"))
