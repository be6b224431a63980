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
