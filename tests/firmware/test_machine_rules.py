"""The phone machine against every row of SPEC 4.2, for an SBD model and a legacy one.

Boots run through ``phone.device.boot.run_boot`` with the files of a lab in a
temporary folder and a TVS double (tests/minicluster.py); no sockets.
"""

from __future__ import annotations

import attrs
import pytest
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.device.boot import run_boot
from phone.firmware.machine import Flash, Install, Keep, PhoneMachine
from phone.catalogue import get_model
from phone.firmware.trust import Item

NOW = 1_700_000_000.0
ITL = f"ITLSEP{MAC}.tlv"
CTL = f"CTLSEP{MAC}.tlv"
SGN = f"SEP{MAC}.cnf.xml.sgn"
PLAIN = f"SEP{MAC}.cnf.xml"


def boot(model, cluster, flash=Flash(), tvs="cucm", files=None, now=NOW):
    machine = PhoneMachine(get_model(model), MAC, flash)
    double = TvsDouble(cluster, tvs)
    effects = []
    machine, report = run_boot(machine, fetch=serve_files(files if files is not None else cluster.files()),
                               ask_tvs=double, clock=lambda: now, observe=effects.append)
    return machine, report, effects, double


def result(report, name):
    entry = report.result_of(name)
    return None if entry is None else entry.result


def settled(model, cluster):
    """A phone that booted once against ``cluster`` and holds what it serves."""
    machine, report, _, _ = boot(model, cluster)
    return machine.flash


# -- no trust list at all: the first list is taken on trust ---------------------------------


@pytest.mark.parametrize("model", ["CP-8861", "CP-7975"])
def test_sbd_phone_takes_the_first_itl_on_trust(model):
    cluster = MiniCluster()
    machine, report, effects, double = boot(model, cluster)
    assert result(report, ITL) == "installed"
    assert result(report, CTL) == "not_found"
    assert result(report, SGN) == "applied"
    assert machine.flash.itl.data == cluster.itl()
    assert not double.requests
    assert report.device_tl_info[0].name == "ITL_INITIAL_SUCCESS"
    assert report.status_messages[-1] in ("ITL installed",)


def test_legacy_phone_never_asks_for_an_itl_and_takes_the_plain_config():
    cluster = MiniCluster()
    machine, report, _, _ = boot("CP-7940", cluster)
    assert [f.name for f in report.files] == [CTL, PLAIN]
    assert result(report, PLAIN) == "applied"
    assert machine.flash.itl is None and machine.flash.ctl is None
    assert report.device_tl_info == ()


@pytest.mark.parametrize("model", ["CP-8861", "CP-7975", "CP-7940"])
def test_first_ctl_is_taken_on_trust(model):
    cluster = MiniCluster(mixed_mode=True)
    machine, report, _, _ = boot(model, cluster)
    assert result(report, CTL) == "installed"
    assert machine.flash.ctl.data == cluster.ctl()


def test_a_first_list_whose_own_signature_fails_is_refused():
    cluster = MiniCluster()
    files = cluster.files()
    tampered = bytearray(files[ITL])
    tampered[-40] ^= 0x40
    files[ITL] = bytes(tampered)
    machine, report, effects, _ = boot("CP-8861", cluster, files=files)
    assert result(report, ITL) == "rejected"
    assert "own SAST record does not verify" in report.result_of(ITL).reason
    assert machine.flash.itl is None
    assert report.device_tl_info[0].name == "TL_FAILED_NO_TL"
    assert any(isinstance(e, Keep) for e in effects)


# -- ITL only, new ITL -------------------------------------------------------------------------


def test_itl_signed_by_an_installed_itl_sast_is_accepted_without_tvs():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_tvs()  # ITL content changes, signer (CallManager) does not
    machine, report, _, double = boot("CP-8861", cluster, flash)
    assert result(report, ITL) == "installed"
    assert not double.requests
    assert machine.flash.itl.data == cluster.itl()
    assert report.device_tl_info[0].name == "TL_SUCCESS"
    assert "Trust List updated" in report.status_messages


def test_itl_signed_by_an_unknown_certificate_is_accepted_when_tvs_vouches_for_it():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    machine, report, effects, double = boot("CP-8861", cluster, flash)
    assert [r.message_type for r in double.requests] == [3]
    assert result(report, ITL) == "installed"
    assert machine.flash.itl.data == cluster.itl()
    assert report.tvs_requests[0].status == 0 and report.tvs_requests[0].roles == (0, 2)
    install = [e for e in effects if isinstance(e, Install) and e.item is Item.ITL]
    assert install[0].via == "tvs"
    assert machine.flash.tvs_cache == ()  # flushed after the update


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("not-found", "TVS does not vouch for signer"),
        ("down", "TVS failed: connection refused"),
        ("no-sast", "TVS answered without a required role"),
        ("wrong-cert", "not the signer's"),
    ],
)
def test_itl_from_an_unknown_signer_is_rejected_and_the_old_itl_kept(mode, reason):
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    old_itl = flash.itl
    cluster.regenerate_callmanager()
    machine, report, _, _ = boot("CP-8861", cluster, flash, tvs=mode)
    assert result(report, ITL) == "rejected"
    assert reason in report.result_of(ITL).reason
    assert machine.flash.itl == old_itl
    assert report.device_tl_info[0].name == "TL_FAILED_OLD_ITL"


def test_tvs_whose_certificate_is_not_in_the_itl_is_not_trusted():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    cluster.regenerate_tvs()  # the running TVS now presents a certificate the phone's ITL lacks
    machine, report, _, _ = boot("CP-8861", cluster, flash)
    assert result(report, ITL) == "rejected"
    assert "not a TVS record of the ITL" in report.result_of(ITL).reason
    assert machine.flash.itl == flash.itl


def test_tvs_that_drops_query_gets_a_certificate_verification_request():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    machine, report, _, double = boot("CP-8861", cluster, flash, tvs="type1-only")
    assert [r.message_type for r in double.requests] == [3, 1]
    assert double.requests[1].certificate == cluster.callmanager.der
    assert result(report, ITL) == "installed"


def test_fallback_to_verify_can_be_switched_off():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    model = get_model("CP-8861")
    model = attrs.evolve(model, settings=attrs.evolve(model.settings, tvs_fallback_to_verify=False))
    machine = PhoneMachine(model, MAC, flash)
    double = TvsDouble(cluster, "type1-only")
    machine, report = run_boot(machine, fetch=serve_files(cluster.files()), ask_tvs=double, clock=lambda: NOW)
    assert double.requests and all(r.message_type == 3 for r in double.requests)  # no type-1 retry
    assert result(report, ITL) == "rejected"


def test_tvs_is_not_asked_by_a_phone_whose_itl_has_no_tvs_record():
    cluster = MiniCluster(rollback=True)  # an ITL without TVS entries
    flash = attrs.evolve(settled("CP-8861", MiniCluster()), itl=cluster.itl())
    cluster.regenerate_callmanager()
    cluster.rollback = False
    machine, report, _, double = boot("CP-8861", cluster, flash)
    # the installed ITL is a rollback ITL: any new ITL is accepted without TVS
    assert result(report, ITL) == "installed" and not double.requests


# -- ITL only, first CTL (OPEN: trust by default, or verify) ------------------------------------


def test_first_ctl_on_a_phone_with_an_itl_is_taken_on_trust_by_default():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.mixed_mode = True
    machine, report, _, double = boot("CP-8861", cluster, flash)
    assert result(report, CTL) == "installed" and not double.requests
    assert report.device_tl_info[0].name == "CTL_INITIAL_SUCCESS"
    assert "CTL and ITL installed" in report.status_messages


def test_first_ctl_can_be_checked_against_the_itl_instead():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.ctl_client("SAST-ADN00000001")  # a first CTL signed by an eToken the ITL does not list
    model = get_model("CP-8861")
    model = attrs.evolve(model, settings=attrs.evolve(model.settings, first_ctl_with_itl="verify"))
    double = TvsDouble(cluster, "cucm")
    machine, report = run_boot(PhoneMachine(model, MAC, flash), fetch=serve_files(cluster.files()),
                               ask_tvs=double, clock=lambda: NOW)
    assert [r.message_type for r in double.requests] == [3]  # the eToken is in the server's CTL cache
    assert result(report, CTL) == "installed"


# -- CTL installed, new CTL ---------------------------------------------------------------------


def test_ctl_signed_by_a_sast_of_the_installed_ctl_is_accepted():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-7940", cluster)
    cluster.regenerate_capf()  # content change, same signer
    machine, report, _, _ = boot("CP-7940", cluster, flash)
    assert result(report, CTL) == "installed" and machine.flash.ctl.data == cluster.ctl()


def test_sbd_phone_accepts_a_ctl_from_a_regenerated_callmanager_through_tvs():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-7975", cluster)
    cluster.regenerate_callmanager()
    machine, report, effects, double = boot("CP-7975", cluster, flash)
    assert result(report, CTL) == "installed"
    assert double.requests[0].serial == cluster.callmanager.serial
    assert result(report, ITL) == "installed"  # verified through the new CTL
    assert len(double.requests) == 1
    assert result(report, SGN) == "applied"


def test_legacy_phone_is_stuck_with_its_old_ctl_until_erased():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-7940", cluster)
    old = flash.ctl
    cluster.regenerate_callmanager()
    machine, report, _, double = boot("CP-7940", cluster, flash)
    assert result(report, CTL) == "rejected" and machine.flash.ctl == old
    assert "does not use TVS" in report.result_of(CTL).reason
    assert not double.requests
    assert result(report, SGN) == "rejected"  # the config is signed by the new key too
    assert report.device_tl_info[0].name == "TL_FAILED_OLD_CTL"
    assert any(text in report.status_messages for text in ("CTL update failed", "Trust List Update Failed"))
    again, report, _, _ = boot("CP-7940", cluster, machine.flash)
    assert result(report, CTL) == "rejected"
    erased, _ = again.handle(__import__("phone.firmware.machine", fromlist=["Erased"]).Erased(ctl=True, itl=False), NOW)
    assert erased.flash.ctl is None
    after, report, _, _ = boot("CP-7940", cluster, erased.flash)
    assert result(report, CTL) == "installed" and after.flash.ctl.data == cluster.ctl()
    assert result(report, SGN) == "applied"


# -- CTL installed, new ITL ---------------------------------------------------------------------


def test_itl_is_verified_through_the_installed_ctl():
    cluster = MiniCluster(mixed_mode=True)
    flash = attrs.evolve(settled("CP-8861", cluster), itl=None)
    machine, report, _, double = boot("CP-8861", cluster, flash)
    assert result(report, ITL) == "installed" and not double.requests


def test_itl_whose_signer_is_not_in_the_ctl_goes_to_tvs():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-8861", cluster)
    cluster.mixed_mode = False  # the CTL is no longer served, the phone keeps its old one
    cluster.regenerate_callmanager()
    machine, report, _, double = boot("CP-8861", cluster, flash)
    assert result(report, ITL) == "installed"
    assert [r.message_type for r in double.requests] == [3]


# -- signed configuration -----------------------------------------------------------------------


def test_signed_config_from_a_tftp_role_signer_is_applied():
    cluster = MiniCluster()
    machine, report, _, _ = boot("CP-8861", cluster)
    assert result(report, SGN) == "applied"
    assert machine.flash.config == cluster.config()


def test_signed_config_from_an_unknown_signer_is_not_applied_and_the_old_one_kept():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    files = cluster.files()
    files[ITLSEP := f"ITLSEP{MAC}.tlv"] = flash.itl.data  # the server still serves the old ITL
    machine, report, _, double = boot("CP-8861", cluster, flash, files=files, tvs="not-found")
    assert result(report, ITLSEP) == "unchanged"
    assert result(report, SGN) == "rejected"
    assert machine.flash.config == flash.config


def test_signed_config_signer_is_asked_about_with_tftp_roles():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    files = cluster.files()
    files[f"ITLSEP{MAC}.tlv"] = flash.itl.data
    machine, report, _, double = boot("CP-8861", cluster, flash, files=files)
    assert result(report, SGN) == "applied"  # TVS: CallManager {0, 2} includes CCM+TFTP


def test_unsigned_config_is_not_applied_once_a_trust_list_is_installed():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    files = cluster.files()
    del files[SGN]
    machine, report, _, _ = boot("CP-8861", cluster, flash, files=files)
    assert result(report, SGN) == "not_found"
    assert result(report, PLAIN) == "rejected"


# -- rollback ITL ----------------------------------------------------------------------------------


def test_rollback_itl_lets_any_itl_and_unsigned_configs_in():
    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.rollback = True
    machine, report, _, _ = boot("CP-8861", cluster, flash)
    assert result(report, ITL) == "installed"  # signed by the known CallManager
    cluster.rollback = False
    cluster.regenerate_callmanager()
    files = cluster.files()
    del files[SGN]
    machine, report, _, double = boot("CP-8861", cluster, machine.flash, files=files)
    assert result(report, ITL) == "installed" and not double.requests
    cluster.rollback = True
    files = cluster.files()
    del files[SGN]
    machine, report, _, _ = boot("CP-8861", cluster, machine.flash, files=files)
    assert result(report, PLAIN) == "applied"


# -- limits ----------------------------------------------------------------------------------------


def test_an_itl_over_64_kb_is_refused():
    from conftest import node_identity

    from phone.wire.signing import build_trust_list, make_record
    from phone.wire.tlv import Role

    cluster = MiniCluster()
    cm = cluster.callmanager
    records = [make_record(cm.certificate, Role.SAST)] + [
        make_record(node_identity(f"tvs-{i}", serial=0x1000 + i).certificate, Role.TVS) for i in range(60)]
    big = build_trust_list(records, cm, filename="ITLFile.tlv", timestamp=1).data
    assert len(big) > 65535
    files = cluster.files()
    files[ITL] = big
    machine, report, effects, _ = boot("CP-8861", cluster, files=files)
    assert result(report, ITL) == "rejected"
    assert "over the 65535-byte limit" in report.result_of(ITL).reason


def test_a_phone_without_sha512_rejects_a_sha512_ctl_and_a_newer_phone_accepts_it():
    cluster = MiniCluster(mixed_mode=True, digest="sha512")
    _, report, _, _ = boot("CP-7975", cluster)
    assert result(report, CTL) == "rejected" and "SHA512 digest is not supported" in report.result_of(CTL).reason
    _, report, _, _ = boot("CP-8861", cluster)
    assert result(report, CTL) == "installed"


def test_a_tampered_ctl_update_is_refused_and_the_old_ctl_kept():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-8861", cluster)
    cluster.regenerate_capf()
    files = cluster.files()
    tampered = bytearray(files[CTL])
    tampered[len(tampered) // 2] ^= 0x01
    files[CTL] = bytes(tampered)
    machine, report, _, _ = boot("CP-8861", cluster, flash, files=files)
    assert result(report, CTL) == "rejected" and machine.flash.ctl == flash.ctl


def test_unchanged_files_are_reported_unchanged():
    cluster = MiniCluster(mixed_mode=True)
    flash = settled("CP-8861", cluster)
    machine, report, _, double = boot("CP-8861", cluster, flash)
    assert result(report, CTL) == "unchanged" and result(report, ITL) == "unchanged"
    assert machine.flash == flash and not double.requests
    assert report.device_tl_info[0].name == "TL_SUCCESS"


# -- verdicts ---------------------------------------------------------------------------------------


def test_verdicts_for_the_seeds_regeneration_name_who_needs_a_hand_erase():
    from phone.firmware.outcome import PhoneOutcome, classify

    verdicts = {}
    for model in ("CP-7975", "CP-8861", "CP-7940"):
        cluster = MiniCluster(mixed_mode=True)
        flash = settled(model, cluster)
        cluster.regenerate_callmanager()
        _, report, _, _ = boot(model, cluster, flash)
        verdicts[model] = classify(report)
    assert verdicts["CP-7975"].outcome is PhoneOutcome.ACCEPTED and verdicts["CP-7975"].through_tvs
    assert verdicts["CP-8861"].outcome is PhoneOutcome.ACCEPTED and verdicts["CP-8861"].through_tvs
    assert verdicts["CP-7940"].outcome is PhoneOutcome.REJECTED and verdicts["CP-7940"].erase_needed
    assert verdicts["CP-7940"].codes[0] == "no-tvs"


def test_a_signer_tvs_does_not_know_is_rejected_but_fixable_from_the_cluster():
    from phone.firmware.outcome import PhoneOutcome, classify

    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    cluster.regenerate_callmanager()
    _, report, _, _ = boot("CP-8861", cluster, flash, tvs="not-found")
    verdict = classify(report)
    assert verdict.outcome is PhoneOutcome.REJECTED and not verdict.erase_needed
    assert verdict.codes[0] == "tvs-not-trusted"


# -- settings the hostile-input review asked for ---------------------------------------------------


def test_a_signed_configuration_for_another_phone_is_not_applied():
    from phone.wire.signing import build_signed_file

    cluster = MiniCluster()
    flash = settled("CP-8861", cluster)
    files = cluster.files()
    other = build_signed_file(b"<device><TVS/></device>", cluster.callmanager, filename="SEP0000DEADBEEF.cnf.xml",
                              timestamp=9)
    files[SGN] = other.data
    machine, report, _, _ = boot("CP-8861", cluster, flash, files=files)
    assert result(report, SGN) == "rejected" and report.result_of(SGN).code == "wrong-file"
    assert machine.flash.config == flash.config
    model = get_model("CP-8861")
    lenient = attrs.evolve(model, settings=attrs.evolve(model.settings, signed_config_name_must_match=False))
    machine, report = run_boot(PhoneMachine(lenient, MAC, flash), fetch=serve_files(files),
                               ask_tvs=TvsDouble(cluster), clock=lambda: NOW)
    assert result(report, SGN) == "applied"


def _itl_with_digest_code(cluster, code: int) -> bytes:
    """An ITL whose DIGESTALGORITHM byte is ``code``, signed with SHA-256."""
    from phone.wire.signing import assemble, make_record
    from phone.wire.tlv import Element, HeaderTag, Role

    cm = cluster.callmanager
    elements = [
        Element.container(HeaderTag.SIGNER_ID, [Element(HeaderTag.SERIAL_NUMBER, cm.serial)]),
        Element.container(HeaderTag.SIGNATURE_INFO, [Element.uint(HeaderTag.DIGEST_ALGORITHM, code, 1)]),
        Element(HeaderTag.SIGNATURE),
        Element.text(HeaderTag.FILENAME, "ITLFile.tlv"),
    ]
    return assemble((1, 2), elements, make_record(cm.certificate, Role.SAST).encode(), cm.private_key,
                    digest="sha256").data


def test_the_sha256_digest_code_is_a_model_setting():
    """SPEC 2.2: code 2 for SHA-256 was never seen in a real file; sha256_digest_code moves it."""
    cluster = MiniCluster()
    model = get_model("CP-8861")
    moved = attrs.evolve(model, settings=attrs.evolve(model.settings, sha256_digest_code=4))

    def first_itl(phone_model, code):
        files = {**cluster.files(), ITL: _itl_with_digest_code(cluster, code)}
        _, report = run_boot(PhoneMachine(phone_model, MAC), fetch=serve_files(files), ask_tvs=TvsDouble(cluster),
                             clock=lambda: NOW)
        return report.result_of(ITL)

    assert first_itl(model, 2).result == "installed"
    assert first_itl(model, 4).code == "digest-unsupported"
    assert first_itl(moved, 4).result == "installed"
    assert first_itl(moved, 2).code == "digest-unsupported"


# -- the seed's two eToken procedures at machine level -------------------------------------------


@pytest.mark.parametrize("model", ["CP-7975", "CP-8861", "CP-7940"])
def test_seed_etoken_to_tokenless(model):
    """Seed §2: the eToken CTL is replaced by a tokenless one signed by the CallManager certificate."""
    cluster = MiniCluster(etokens=("SAST-ADN00000001", "SAST-ADN00000002"))  # the second one signs
    flash = settled(model, cluster)
    assert flash.ctl.data == cluster.ctl()
    cluster.tokenless()
    machine, report, _, _ = boot(model, cluster, flash)
    if model == "CP-7940":
        assert result(report, CTL) == "rejected" and machine.flash.ctl == flash.ctl
    else:
        assert result(report, CTL) == "installed" and report.result_of(CTL).via == "tvs"
        assert report.tvs_requests[-1].roles == (0, 2)  # the cluster's own CallManager (SPEC 3.3)


@pytest.mark.parametrize("model", ["CP-7975", "CP-8861", "CP-7940"])
def test_seed_tokenless_to_etoken(model):
    """Seed §3: after `file delete tftp CTLFile.tlv`, the CTL client signs a CTL with an eToken."""
    cluster = MiniCluster(mixed_mode=True)
    flash = settled(model, cluster)
    cluster.ctl_client("SAST-ADN00000003", "SAST-ADN00000004")  # delete, upload both, the CTL client
    machine, report, _, _ = boot(model, cluster, flash)
    if model == "CP-7940":
        assert result(report, CTL) == "rejected" and machine.flash.ctl == flash.ctl
    else:
        assert result(report, CTL) == "installed" and report.result_of(CTL).via == "tvs"
        assert report.tvs_requests[-1].roles == (0,)  # found in the CTL cache (reference-logs S2)
