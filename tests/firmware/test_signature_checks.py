"""Signature checks remembered per (file, signing key, model's digests) never answer for another key."""

from __future__ import annotations

import pytest
from test_acceptance_conditions import (
    IMPOSTOR,
    SBD,
    SIGNER,
    Outcome,
    installed_itl,
    new_itl,
    outcome,
)

from phone.catalogue import get_model
from phone.firmware import trust
from phone.firmware.trust import SignatureChecks
from phone.wire.tlv import Role


@pytest.fixture
def counted_checks(monkeypatch):
    """A fresh memory of checks, and the list of real signature checks made behind it."""
    made = []
    original = trust.check_signature

    def counting(*args, **options):
        made.append(args[0].data)
        return original(*args, **options)

    monkeypatch.setattr(trust, "check_signature", counting)
    monkeypatch.setattr(trust, "SIGNATURE_CHECKS", SignatureChecks())
    return made


def test_phones_assessing_the_same_list_with_the_same_anchor_check_its_signature_once(counted_checks):
    shared = new_itl()
    for _phone in range(3):
        assert outcome(shared, installed_itl((SIGNER, Role.SAST))).outcome.value == Outcome.ACCEPT
    assert counted_checks == [shared.data]


def test_a_check_made_with_one_anchor_never_answers_for_another(counted_checks):
    shared = new_itl()
    assert outcome(shared, installed_itl((SIGNER, Role.SAST))).outcome.value == Outcome.ACCEPT
    # Same name, serial and issuer as the signer, another key: the remembered check must not vouch.
    assert outcome(shared, installed_itl((IMPOSTOR, Role.SAST))).outcome.value != Outcome.ACCEPT
    assert len(counted_checks) == 2


def test_a_failed_check_is_remembered_as_failed(counted_checks):
    shared = new_itl()
    for _phone in range(2):
        assert outcome(shared, installed_itl((IMPOSTOR, Role.SAST))).outcome.value != Outcome.ACCEPT
    assert outcome(shared, installed_itl((SIGNER, Role.SAST))).outcome.value == Outcome.ACCEPT
    assert len(counted_checks) == 2


def test_a_model_with_other_digests_gets_its_own_check(counted_checks):
    shared = new_itl()
    assert outcome(shared, installed_itl((SIGNER, Role.SAST))).outcome.value == Outcome.ACCEPT
    assert outcome(shared, installed_itl((SIGNER, Role.SAST)), model=get_model("CP-7975")).outcome.value == \
        Outcome.ACCEPT
    assert SBD.digests != get_model("CP-7975").digests and len(counted_checks) == 2


def test_only_the_last_checks_up_to_the_limit_are_kept(counted_checks, monkeypatch):
    monkeypatch.setattr(trust, "SIGNATURE_CHECKS", SignatureChecks(limit=1))
    first, second = new_itl(timestamp=3), new_itl(timestamp=4)
    for shared in (first, second, first):
        assert outcome(shared, installed_itl((SIGNER, Role.SAST))).outcome.value == Outcome.ACCEPT
    assert counted_checks == [first.data, second.data, first.data]
