"""Each condition of the acceptance rules (phone.firmware.trust), pinned on its own.

Every test here sets up a file that one condition alone must stop (or let
through): a record holding the signer's serial but another issuer, a cached
TVS answer one second past its life, and so on. Certificates made from the
same common name share a key (the tests' key cache), so a namesake with
another serial or issuer still verifies the file: only the condition under
test stands between it and an accepted list.
"""

from __future__ import annotations

import functools

import attrs
import pytest
from conftest import SEED_TIME, rsa_key
from minicluster import MAC, MiniCluster, serve_files

from phone.catalogue import get_model
from phone.device.boot import run_boot
from phone.firmware.machine import AskTvs, Flash, PhoneMachine, TvsAnswered
from phone.firmware.trust import (
    CachedCertificate,
    Item,
    Trusted,
    assess,
    assess_tvs_answer,
    rule_for,
)
from phone.wire.certs import Identity, Profile, cucm_subject, make_certificate
from phone.wire.signing import build_signed_file, build_trust_list, make_record
from phone.wire.tlv import Role, TrustList

NOW = 1_700_000_000.0
SBD = get_model("CP-8861")
SERIAL = 0x5161E5
#: The answer's lifetime of the TVS cache tests (a day, as CUCM's TVS gives).
TTL = 86_400


class Outcome:
    """The decision values of ``phone.firmware.trust`` (compared by value: the enum's name may change)."""

    ACCEPT, REJECT, ASK_TVS = "accept", "reject", "ask_tvs"


@functools.cache
def certificate(common_name: str, serial: int, *, issued_by: str | None = None, key_name: str | None = None,
                bits: int = 1024) -> Identity:
    """A node certificate; its key is the one of ``key_name`` (default: its common name)."""
    issuer = certificate(issued_by, 0xCA, bits=2048) if issued_by else None
    key = rsa_key(bits, key_name or common_name)
    return make_certificate(cucm_subject(common_name), key, not_before=SEED_TIME, serial=serial,
                            issuer=issuer, profile=Profile.CA if issuer is None and common_name.startswith("ca") else
                            Profile.SERVER)


SIGNER = certificate("cucm-pub", SERIAL)
#: The signer's key and serial under another issuer (a record CUCM never wrote for it).
OTHER_ISSUER = certificate("cucm-pub", SERIAL, issued_by="ca-elsewhere")
#: The signer's key and issuer under another serial.
OTHER_SERIAL = certificate("cucm-pub", SERIAL + 1)
#: The signer's name, serial and issuer with another key.
IMPOSTOR = certificate("cucm-pub", SERIAL, key_name="impostor")
TVS = certificate("cucm-pub-tvs", 0x7F5)


def trust_list(*records, signer: Identity = SIGNER, digest: str = "sha1", filename: str = "ITLFile.tlv",
               timestamp: int = 2) -> TrustList:
    return TrustList.from_bytes(build_trust_list(list(records), signer, filename=filename, timestamp=timestamp,
                                                 digest=digest).data)


def new_itl(signer: Identity = SIGNER, **options) -> TrustList:
    """A new ITL whose signer is ``signer`` (its own SAST record is the signer's certificate)."""
    return trust_list(make_record(signer.certificate, Role.SAST), make_record(signer.certificate, Role.CCM_TFTP),
                      make_record(TVS.certificate, Role.TVS), signer=signer, **options)


def installed_itl(*vouchers: tuple[Identity, int]) -> Trusted:
    """An installed ITL (with a TVS record, so TVS may be asked) holding ``vouchers`` as (certificate, role)."""
    records = [make_record(identity.certificate, role) for identity, role in vouchers]
    return Trusted(itl=trust_list(*records, make_record(TVS.certificate, Role.TVS), signer=TVS, timestamp=1))


def outcome(new: TrustList, trusted: Trusted, model=SBD, item: Item = Item.ITL, now: float = NOW):
    return assess(new, item, trusted, model, now)


def with_settings(model, **settings):
    return attrs.evolve(model, settings=attrs.evolve(model.settings, **settings))


# --- vouching records: role, serial, issuer, signature, key size ---------------------------------


def test_a_sast_record_of_the_installed_itl_vouches_for_a_new_itl() -> None:
    assessment = outcome(new_itl(), installed_itl((SIGNER, Role.SAST)))
    assert (assessment.outcome.value, assessment.via) == (Outcome.ACCEPT, "itl")


def test_a_record_without_the_required_role_does_not_vouch() -> None:
    assessment = outcome(new_itl(), installed_itl((SIGNER, Role.CCM_TFTP), (SIGNER, Role.CAPF)))
    assert assessment.outcome.value == Outcome.ASK_TVS


def test_a_capf_record_of_the_installed_ctl_does_not_vouch_for_a_new_itl() -> None:
    ctl = trust_list(make_record(TVS.certificate, Role.SAST), make_record(SIGNER.certificate, Role.CAPF),
                     signer=TVS, filename="CTLFile.tlv", timestamp=1)
    trusted = attrs.evolve(installed_itl(), ctl=ctl)
    assert rule_for(Item.ITL, trusted, SBD).name == "new-itl-ctl"
    assert outcome(new_itl(), trusted).outcome.value == Outcome.ASK_TVS


def test_a_record_with_another_serial_does_not_vouch_even_with_the_signers_key() -> None:
    assessment = outcome(new_itl(), installed_itl((OTHER_SERIAL, Role.SAST)))
    assert assessment.outcome.value == Outcome.ASK_TVS


def test_a_record_with_the_signers_serial_but_another_issuer_does_not_vouch() -> None:
    assert OTHER_ISSUER.certificate.issuer != SIGNER.certificate.issuer
    assessment = outcome(new_itl(), installed_itl((OTHER_ISSUER, Role.SAST)))
    assert assessment.outcome.value == Outcome.ASK_TVS


def test_a_record_whose_key_does_not_verify_the_file_does_not_vouch() -> None:
    assessment = outcome(new_itl(IMPOSTOR), installed_itl((SIGNER, Role.SAST)))
    assert assessment.outcome.value == Outcome.ASK_TVS


def test_a_vouched_file_signed_with_a_key_size_the_model_lacks_is_not_accepted() -> None:
    model = attrs.evolve(SBD, rsa_key_sizes=frozenset({2048}))
    assessment = outcome(new_itl(), installed_itl((SIGNER, Role.SAST)), model=with_settings(model))
    assert assessment.outcome.value == Outcome.ASK_TVS


# --- checks made before any rule -----------------------------------------------------------------


def test_a_digest_the_model_does_not_verify_is_rejected_as_such() -> None:
    assessment = outcome(new_itl(digest="sha256"), installed_itl((SIGNER, Role.SAST)), model=get_model("CP-7975"))
    assert (assessment.outcome.value, assessment.code) == (Outcome.REJECT, "digest-unsupported")


def test_an_itl_over_the_models_size_limit_is_rejected() -> None:
    new = new_itl()
    model = with_settings(SBD, max_itl_bytes=new.length - 1)
    assert outcome(new, installed_itl((SIGNER, Role.SAST)), model=model).code == "too-large"
    assert outcome(new, installed_itl((SIGNER, Role.SAST)), model=with_settings(SBD, max_itl_bytes=new.length)
                   ).outcome.value == Outcome.ACCEPT


def test_more_sast_records_than_the_model_accepts_are_rejected() -> None:
    model = with_settings(SBD, max_sast_records=1)
    two_sast = trust_list(make_record(SIGNER.certificate, Role.SAST), make_record(TVS.certificate, Role.SAST),
                          make_record(TVS.certificate, Role.TVS))
    assert outcome(two_sast, installed_itl((SIGNER, Role.SAST)), model=model).code == "too-many-sast"
    assert outcome(new_itl(), installed_itl((SIGNER, Role.SAST)), model=model).outcome.value == Outcome.ACCEPT


@pytest.mark.parametrize("item, filename", [(Item.CTL, "ITLFile.tlv"), (Item.ITL, "CTLFile.tlv")])
def test_a_file_of_the_other_kind_is_rejected(item: Item, filename: str) -> None:
    assessment = outcome(new_itl(filename=filename), Trusted(), item=item)
    assert (assessment.outcome.value, assessment.code) == (Outcome.REJECT, "wrong-kind")


# --- the leap of faith ---------------------------------------------------------------------------


def test_a_first_list_is_taken_on_trust_when_its_own_sast_record_verifies_it() -> None:
    assert outcome(new_itl(), Trusted()).via == "leap-of-faith"


def test_a_first_list_its_own_sast_record_does_not_verify_is_rejected() -> None:
    forged = trust_list(make_record(SIGNER.certificate, Role.SAST), make_record(TVS.certificate, Role.TVS),
                        signer=IMPOSTOR)
    assert outcome(forged, Trusted()).code == "bad-signature"
    lenient = with_settings(SBD, first_list_requires_own_signature=False)
    assert outcome(forged, Trusted(), model=lenient).outcome.value == Outcome.ACCEPT


def test_a_first_list_signed_with_a_key_size_the_model_lacks_is_rejected() -> None:
    model = attrs.evolve(SBD, rsa_key_sizes=frozenset({2048}))
    assert outcome(new_itl(), Trusted(), model=model).code == "key-size"


# --- when TVS may be asked -----------------------------------------------------------------------


def test_a_model_without_tvs_rejects_an_unknown_signer() -> None:
    model = attrs.evolve(SBD, supports_tvs=False)
    assessment = outcome(new_itl(), installed_itl((OTHER_SERIAL, Role.SAST)), model=model)
    assert (assessment.outcome.value, assessment.code) == (Outcome.REJECT, "no-tvs")


def test_an_itl_without_tvs_records_means_an_unknown_signer_is_rejected() -> None:
    trusted = Trusted(itl=trust_list(make_record(OTHER_SERIAL.certificate, Role.SAST),
                                     make_record(TVS.certificate, Role.CCM_TFTP), signer=TVS, timestamp=1))
    assert rule_for(Item.ITL, trusted, SBD).name == "new-itl-itl-only"  # not a rollback ITL
    assessment = outcome(new_itl(), trusted)
    assert (assessment.outcome.value, assessment.code) == (Outcome.REJECT, "no-tvs")


# --- the TVS cache -------------------------------------------------------------------------------


def cached(identity: Identity, roles=(Role.SAST,), expires: float = NOW + TTL) -> Trusted:
    return attrs.evolve(installed_itl(), tvs_cache=(CachedCertificate(identity.der, frozenset(roles), expires),))


def test_a_cached_tvs_answer_vouches_for_its_certificate() -> None:
    assessment = outcome(new_itl(), cached(SIGNER))
    assert (assessment.outcome.value, assessment.via) == (Outcome.ACCEPT, "tvs-cache")


def test_a_cached_certificate_with_another_serial_does_not_vouch() -> None:
    assert outcome(new_itl(), cached(OTHER_SERIAL)).outcome.value == Outcome.ASK_TVS


def test_a_cached_certificate_with_the_signers_serial_but_another_issuer_does_not_vouch() -> None:
    assert outcome(new_itl(), cached(OTHER_ISSUER)).outcome.value == Outcome.ASK_TVS


def test_a_cached_answer_without_the_rules_role_does_not_vouch() -> None:
    assert outcome(new_itl(), cached(SIGNER, roles=(Role.CCM_TFTP,))).outcome.value == Outcome.ASK_TVS


def test_a_cached_certificate_that_does_not_verify_the_file_does_not_vouch() -> None:
    assert outcome(new_itl(IMPOSTOR), cached(SIGNER)).outcome.value == Outcome.ASK_TVS


@pytest.mark.parametrize("age, vouches", [(TTL - 1, True), (TTL, False), (TTL + 1, False)])
def test_a_cached_answer_lives_ttl_seconds_not_one_more(age: int, vouches: bool) -> None:
    """An answer given at T with a TTL of N seconds vouches at T+N-1 and no longer at T+N:
    ``expires`` is T+N and an entry counts while ``expires > now`` (the cache holds it for
    [T, T+N), exactly N seconds)."""
    trusted = cached(SIGNER, expires=NOW + TTL)
    assessment = outcome(new_itl(), trusted, now=NOW + age)
    assert assessment.outcome.value == (Outcome.ACCEPT if vouches else Outcome.ASK_TVS)


# --- TVS's answer --------------------------------------------------------------------------------


def answer(new: TrustList, *, status: int = 0, roles=(Role.SAST,), identity: Identity | None = SIGNER, model=SBD):
    rule = rule_for(Item.ITL, installed_itl(), model)
    return assess_tvs_answer(new, rule, model, status=status, roles=roles,
                             certificate=identity.der if identity else None)


def test_tvs_vouching_with_the_signers_certificate_and_role_accepts() -> None:
    assert answer(new_itl()).via == "tvs"


def test_a_tvs_answer_other_than_trusted_rejects() -> None:
    assert answer(new_itl(), status=1).code == "tvs-not-trusted"


def test_a_tvs_answer_without_the_required_role_rejects_unless_the_setting_is_off() -> None:
    assert answer(new_itl(), roles=(Role.CCM_TFTP,)).code == "tvs-missing-role"
    lenient = with_settings(SBD, tvs_answer_requires_sast_role=False)
    assert answer(new_itl(), roles=(Role.CCM_TFTP,), model=lenient).outcome.value == Outcome.ACCEPT


def test_a_tvs_answer_without_a_certificate_rejects() -> None:
    assert answer(new_itl(), identity=None).code == "tvs-no-certificate"


def test_a_tvs_certificate_with_another_serial_rejects_even_when_its_key_verifies() -> None:
    assert answer(new_itl(), identity=OTHER_SERIAL).code == "tvs-wrong-certificate"


def test_a_tvs_certificate_that_does_not_verify_the_file_rejects() -> None:
    assert answer(new_itl(IMPOSTOR)).code == "tvs-certificate-fails"


# --- the cache through the machine: accepted without asking TVS, until the TTL runs out ----------


#: A TFTP node whose certificate is in no trust list: only TVS can vouch for its configurations.
OTHER_TFTP = certificate("cucm-sub-tftp", 0x5B7F7)


@attrs.define
class CountingTvs:
    """A TVS that vouches for OTHER_TFTP (TFTP role) with TTL and counts the requests."""

    requests: list = attrs.field(factory=list)

    def __call__(self, ask: AskTvs) -> TvsAnswered:
        self.requests.append(ask)
        return TvsAnswered(f"{ask.members[0].address}:2445", 0, (Role.CCM_TFTP,), TTL, OTHER_TFTP.der)


def boot_with_foreign_config(flash: Flash, tvs: CountingTvs, now: float) -> tuple[PhoneMachine, object]:
    cluster = MiniCluster()
    files = {f"ITLSEP{MAC}.tlv": cluster.itl(),
             f"SEP{MAC}.cnf.xml.sgn": build_signed_file(cluster.config(), OTHER_TFTP, filename=f"SEP{MAC}.cnf.xml",
                                                        timestamp=3).data}
    return run_boot(PhoneMachine(SBD, MAC, flash), fetch=serve_files(files), ask_tvs=tvs, clock=lambda: now)


@pytest.fixture(scope="module")
def vouched_once() -> tuple[Flash, int]:
    """A phone with its ITL and configuration whose configuration TVS vouched for at NOW."""
    cluster = MiniCluster()
    tvs = CountingTvs()
    flash = Flash(itl=cluster.itl(), config=cluster.config(), config_name=f"SEP{MAC}.cnf.xml.sgn")
    machine, report = boot_with_foreign_config(flash, tvs, NOW)
    assert report.result_of(f"SEP{MAC}.cnf.xml.sgn").result == "applied"
    assert len(tvs.requests) == 1 and len(machine.flash.tvs_cache) == 1
    return machine.flash


@pytest.mark.parametrize("age, asks_tvs", [(0, False), (TTL - 1, False), (TTL, True), (TTL + 1, True)])
def test_a_configuration_is_accepted_from_the_tvs_cache_until_the_ttl_runs_out(vouched_once, age, asks_tvs) -> None:
    tvs = CountingTvs()
    machine, report = boot_with_foreign_config(vouched_once, tvs, NOW + age)
    assert report.result_of(f"SEP{MAC}.cnf.xml.sgn").result == "applied"
    assert len(tvs.requests) == (1 if asks_tvs else 0)
