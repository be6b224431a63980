"""Phones that download the same CTL or ITL share one parse of it (what a fleet worker does)."""

from __future__ import annotations

from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.catalogue import get_model
from phone.device.boot import SharedParses, run_boot
from phone.firmware.machine import Fetch, FileFetched, Flash, PhoneMachine

NOW = 1_700_000_000.0


def boot(fetch, cluster: MiniCluster):
    return run_boot(PhoneMachine(get_model("CP-8861"), MAC, Flash()), fetch=fetch, ask_tvs=TvsDouble(cluster),
                    clock=lambda: NOW)


def test_phones_fetching_the_same_list_hold_one_parsed_object() -> None:
    cluster = MiniCluster(mixed_mode=True)
    fetch = SharedParses().fetching(serve_files(cluster.files()))
    first, _ = boot(fetch, cluster)
    second, _ = boot(fetch, cluster)
    assert first.flash.itl is second.flash.itl and first.flash.ctl is second.flash.ctl
    assert first.flash.itl.data == cluster.itl()


def test_a_parse_of_other_bytes_is_not_taken_for_the_file() -> None:
    cluster = MiniCluster()
    other = MiniCluster()
    other.regenerate_tvs()
    stale = SharedParses().parse(other.itl())
    event = FileFetched(f"ITLSEP{MAC}.tlv", cluster.itl(), parsed=stale)
    assert event.trust_list().data == cluster.itl()


def test_a_list_that_does_not_parse_is_still_refused_with_its_reason() -> None:
    cluster = MiniCluster()
    files = {**cluster.files(), f"ITLSEP{MAC}.tlv": b"\x01\x00\x02garbage"}
    fetch = SharedParses().fetching(serve_files(files))
    assert fetch(Fetch(f"ITLSEP{MAC}.tlv", "ITLFile.tlv")).parsed is None
    machine, report = boot(fetch, cluster)
    entry = report.result_of(f"ITLSEP{MAC}.tlv")
    assert (entry.result, entry.code) == ("rejected", "format") and machine.flash.itl is None
