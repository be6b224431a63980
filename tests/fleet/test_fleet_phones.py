"""Fleet phone lists: --phones parsing, deterministic MACs, shards, start schedules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.errors import UsageError
from phone.fleet.phones import (DEFAULT_MAC_PREFIX, PhoneGroup, Shard, allocate, check_prefix, describe, groups_of,
                                 inventory_phones, parse_phones)
from phone.fleet.worker import StepOrder, jitter_delay, schedule


def test_phone_list_is_read_in_order_with_catalogue_names():
    assert parse_phones("cp-7975=300, CP-8861=600,CP-7940=100") == (
        PhoneGroup("CP-7975", 300), PhoneGroup("CP-8861", 600), PhoneGroup("CP-7940", 100))


def test_a_phone_count_can_name_the_load_the_phones_run():
    groups = parse_phones("CP-8861@sip88xx.12-8-1-0001-455=20,CP-8861=5,cp-8861@sip88xx.14-2-1-0001-14=1")
    assert groups == (PhoneGroup("CP-8861", 20, "sip88xx.12-8-1-0001-455"), PhoneGroup("CP-8861", 5),
                      PhoneGroup("CP-8861", 1, "sip88xx.14-2-1-0001-14"))
    phones = allocate(groups)
    assert [phone.load for phone in phones[19:22]] == ["sip88xx.12-8-1-0001-455", None, None]
    assert describe(groups) == "CP-8861@sip88xx.12-8-1-0001-455=20,CP-8861=5,CP-8861@sip88xx.14-2-1-0001-14=1"
    assert describe(groups_of(phones)) == describe(groups)


@pytest.mark.parametrize(("text", "message"), [
    ("", "no phones"),
    ("CP-8861", "expected MODEL=COUNT"),
    ("CP-8861=0", "at least 1"),
    ("CP-8861=ten", "whole number"),
    ("CP-0000=5", "CP-0000"),
    ("CP-8861=1,cp-8861=2", "named twice"),
    ("CP-8861=16777217", "more than"),
    ("CP-8861@newest=3", r"'CP-8861@newest=3': load 'newest': expected <family>.<version>"),
    ("CP-8861@sip88xx.12-8-1-0001-455=1,CP-8861@sip88xx.12-8-1-0001-455=2", "CP-8861@sip88xx.12-8-1-0001-455 is "
                                                                            "named twice"),
])
def test_bad_phone_lists_say_which_part_is_wrong(text, message):
    with pytest.raises(UsageError, match=message):
        parse_phones(text)


def test_macs_are_the_prefix_then_the_phone_index_in_the_order_given():
    phones = allocate((("CP-7975", 2), ("CP-7940", 1)))
    assert [(p.index, p.model, p.mac) for p in phones] == [
        (0, "CP-7975", f"{DEFAULT_MAC_PREFIX}000000"), (1, "CP-7975", f"{DEFAULT_MAC_PREFIX}000001"),
        (2, "CP-7940", f"{DEFAULT_MAC_PREFIX}000002")]
    assert allocate((("CP-8861", 1),), prefix="b0:00:b4")[0].mac == "B000B4000000"


def test_inventory_phones_keep_their_own_macs_and_loads_and_shard_by_file_order():
    devices = [("00112233AA01", "CP-8861", "sip88xx.12-8-1-0001-455"), ("00112233AA02", "CP-7940", None),
               ("00112233AA03", "CP-8861", None)]
    assert [(p.index, p.mac, p.load) for p in inventory_phones(devices)] == [
        (0, "00112233AA01", "sip88xx.12-8-1-0001-455"), (1, "00112233AA02", None), (2, "00112233AA03", None)]
    assert [p.mac for p in inventory_phones(devices, shard=Shard(2, 2))] == ["00112233AA02"]


def test_default_prefix_is_locally_administered_so_no_real_phone_has_it():
    assert int(DEFAULT_MAC_PREFIX[:2], 16) & 0x02


@pytest.mark.parametrize("prefix", ["02F1E", "02C15CAA", "XYZXYZ"])
def test_bad_prefix_is_refused(prefix):
    with pytest.raises(UsageError, match="MAC prefix"):
        check_prefix(prefix)


@pytest.mark.parametrize(("text", "shard"), [("1/4", Shard(1, 4)), (" 4 / 4 ", Shard(4, 4)), ("1/1", Shard())])
def test_shard_is_k_of_n(text, shard):
    assert Shard.parse(text) == shard


@pytest.mark.parametrize("text", ["0/4", "5/4", "1", "a/b", "1/0"])
def test_bad_shard_is_refused(text):
    with pytest.raises(UsageError, match="shard"):
        Shard.parse(text)


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=3), shards=st.integers(1, 7))
def test_shards_split_the_fleet_without_overlap_and_keep_the_model_mix(counts, shards):
    models = ("CP-7975", "CP-8861", "CP-7940")
    fleet = tuple(zip(models, counts))
    whole = allocate(fleet)
    parts = [allocate(fleet, shard=Shard(k, shards)) for k in range(1, shards + 1)]
    assert sorted((p for part in parts for p in part), key=lambda p: p.index) == whole
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


def test_describe_gives_back_the_phone_list():
    assert describe(parse_phones("CP-7975=3,CP-7940=1")) == "CP-7975=3,CP-7940=1"


def test_jitter_is_the_same_for_the_same_seed_mac_and_step_and_stays_in_range():
    delays = [jitter_delay(7, f"02C15C{i:06X}", 1, 30.0) for i in range(200)]
    assert delays == [jitter_delay(7, f"02C15C{i:06X}", 1, 30.0) for i in range(200)]
    assert all(0 <= d < 30 for d in delays) and max(delays) > 20 and min(delays) < 10
    assert delays != [jitter_delay(7, f"02C15C{i:06X}", 2, 30.0) for i in range(200)]
    assert jitter_delay(7, "02C15C000000", 1, 0.0) == 0.0


def test_rate_limit_spaces_the_starts():
    order = StepOrder(0, "s", "127.0.0.1", 69, 0.0, jitter=0.0, rate=50.0)
    starts = [start for start, _ in schedule(list(range(100)), order, 0, lambda i: f"02C15C{i:06X}")]
    assert starts == sorted(starts)
    assert all(b - a >= 1 / 50 - 1e-9 for a, b in zip(starts, starts[1:]))
    assert starts[-1] == pytest.approx(99 / 50)


def test_a_scenario_mix_with_several_phones_of_a_model_gets_distinct_macs_the_fleets_own():
    from phone.catalogue import load_catalogue
    from phone.scenario.rehearsal import scenario_phones

    catalogue = load_catalogue()
    mix = {"CP-7965": 2, "CP-8845": 2, "CP-7960": 1}
    specs = scenario_phones(mix, catalogue)
    assert len({spec.mac for spec in specs}) == 5
    fleet = allocate(parse_phones("CP-7965=2,CP-8845=2,CP-7960=1", catalogue))
    assert [(spec.model.name, spec.mac) for spec in specs] == [(phone.model, phone.mac) for phone in fleet]


def test_the_readme_scenario_example_with_two_phones_of_a_model_passes(capsys):
    from phone.cli import main

    code = main(["scenario", "run", "regenerate-callmanager", "--phones", "CP-7965=2,CP-8845=2,CP-7960=1",
                 "--key-size", "1024", "--json"])
    assert code == 0, capsys.readouterr().out[-2000:]
