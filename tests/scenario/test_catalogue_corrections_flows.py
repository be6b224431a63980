"""Catalogue corrections that show in a rehearsal: the 6901/6911 hold a CTL but have no TVS (docs/models.md,
"Corrections and their sources")."""

from __future__ import annotations

import pytest

from phone.pytest_plugin import assert_accepted, assert_needs_manual_erase, assert_rejected


@pytest.mark.parametrize("model", ["CP-6901", "CP-6911"])
def test_6901_takes_the_first_ctl_on_trust_then_is_stuck_after_a_signer_change_until_erased(
        phonetrust_cluster, model):
    cluster = phonetrust_cluster(release="10.5")
    phone = cluster.phone(model)
    cluster.run("ctl set-cluster mixed-mode")
    [first] = cluster.boot([phone])
    assert_accepted(first, via="leap-of-faith")
    assert first.report.ctl_change == "initial"

    cluster.run("cert regenerate CallManager", "ctl update")
    [after_regenerate] = cluster.boot([phone])
    assert_needs_manual_erase(after_regenerate)
    assert_rejected(after_regenerate, code="no-tvs")
    [still_stuck] = cluster.boot([phone])
    assert_needs_manual_erase(still_stuck)

    phone.erase(ctl=True, itl=False)
    [after_erase] = cluster.boot([phone])
    assert_accepted(after_erase, via="leap-of-faith")


def test_7832_screen_uses_its_own_texts_and_shows_nothing_for_installed_lists(phonetrust_cluster):
    cluster = phonetrust_cluster(release="10.5")
    phone = cluster.phone("CP-7832")
    [itl_only] = cluster.boot([phone])
    # the non-secure cluster has no CTL; the 7832 says so, and shows no "ITL installed"
    assert itl_only.report.status_messages == ("File Not Found <CTLFile.tlv>",)
    cluster.run("ctl set-cluster mixed-mode")
    [with_ctl] = cluster.boot([phone])
    assert with_ctl.report.status_messages == ()          # no "CTL and ITL installed" either

    cluster.run("cert regenerate CallManager", "ctl update")
    cluster.tvs_down()
    [refused] = cluster.boot([phone])
    assert refused.report.status_messages == ("Trust List Update Failed",)   # and no "CTL update failed"
    cluster.tvs_up()
    [updated] = cluster.boot([phone])
    assert_accepted(updated, via="tvs")
    assert updated.report.status_messages == ("Trust List Updated",)
