"""Attacks on the phone itself: tampered, swapped, replayed and mis-signed files (SPEC 2.5, 4.2).

Every attack runs through the phone's state machine and boot loop
(``phone.firmware.machine``, ``phone.device.boot.run_boot``) as in tests/test_machine_rules.py,
with a lab's files served from memory and a TVS double (tests/minicluster.py). What each
test pins: the file is not installed (or the config not applied), what was
installed stays byte for byte, and a genuine file in the same situation *is*
accepted (so that a test cannot pass because nothing is ever accepted).

The every-bit tests use files of one record (1.4 KB, 1024-bit keys as in CUCM
10.x): each mutation is parsed once (``parse_cached``) and fed to every
situation's waiting machine.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import attrs
import pytest
from conftest import SEED_TIME, node_identity, rsa_key
from minicluster import MAC, PUB_IP, MiniCluster, TvsDouble, serve_files

from phone.device.boot import run_boot
from phone.wire.certs import Identity, make_certificate
from phone.wire.config import TvsMember, render_config
from phone.firmware.machine import AskTvs, Booted, Fetch, FileFetched, Flash, Install, PhoneMachine, TvsAnswered
from phone.catalogue import get_model
from phone.wire.signing import build_signed_file, build_trust_list, make_record
from phone.wire.tlv import Element, Record, RecordTag, Role, TrustList
from phone.firmware.trust import REJECTION_CODES, Item

NOW = 1_700_000_000.0
CTL = f"CTLSEP{MAC}.tlv"
ITL = f"ITLSEP{MAC}.tlv"
SGN = f"SEP{MAC}.cnf.xml.sgn"
PLAIN = f"SEP{MAC}.cnf.xml"
SBD = "CP-8861"
LEGACY = "CP-7940"


# -- helpers ------------------------------------------------------------------------------


def small_cluster(**settings) -> MiniCluster:
    """A MiniCluster (a lab with 1024-bit node keys, as CUCM 10.x): a one-record file is about 1.4 KB."""
    return MiniCluster(**settings)


def namesake(identity: Identity, label: str) -> Identity:
    """Another key under ``identity``'s subject and serial: a forged certificate."""
    certificate = identity.certificate
    return make_certificate(certificate.subject, rsa_key(1024, label), not_before=SEED_TIME,
                            serial=certificate.serial_number)


def boot(model: str, cluster: MiniCluster, flash: Flash = Flash(), *, files=None, tvs=None):
    """One boot; returns the machine after it, the report and the Install effects."""
    installs: list[Install] = []
    machine, report = run_boot(
        PhoneMachine(get_model(model), MAC, flash),
        fetch=serve_files(cluster.files() if files is None else files),
        ask_tvs=tvs if tvs is not None else TvsDouble(cluster),
        clock=lambda: NOW,
        observe=lambda effect: installs.append(effect) if isinstance(effect, Install) else None,
    )
    return machine, report, installs


def settled(model: str, cluster: MiniCluster) -> Flash:
    """The flash of a phone that booted once against ``cluster`` and took everything it serves."""
    machine, report, _ = boot(model, cluster)
    assert {f.result for f in report.files} <= {"installed", "applied", "not_found"}, report.files
    return machine.flash


def result(report, name: str) -> tuple[str | None, str | None]:
    entry = report.result_of(name)
    return (None, None) if entry is None else (entry.result, entry.reason)


def signed_itl(signer: Identity, *certificates_and_roles, timestamp: int = 10) -> bytes:
    records = [make_record(c.certificate, role, dns_name="pub", ip_address=PUB_IP) for c, role in certificates_and_roles]
    return build_trust_list(records, signer, filename="ITLFile.tlv", timestamp=timestamp).data


def signed_ctl(signer: Identity, *certificates_and_roles, timestamp: int = 11) -> bytes:
    records = [make_record(c.certificate, role, dns_name="pub", ip_address=PUB_IP) for c, role in certificates_and_roles]
    return build_trust_list(records, signer, filename="CTLFile.tlv", timestamp=timestamp).data


def signed_config(signer: Identity, xml: bytes, timestamp: int = 12) -> bytes:
    return build_signed_file(xml, signer, filename=PLAIN, timestamp=timestamp).data


def tvs_answering(certificate: bytes | None, roles: tuple[int, ...], status: int = 0):
    """A genuine TVS server (pinned) that answers every request the same way."""

    def ask(request: AskTvs) -> TvsAnswered:
        return TvsAnswered("127.0.0.1:2445", status=status, roles=roles, ttl=86400,
                           certificate=certificate if request.message_type == 3 else None)

    return ask


# -- every single bit ---------------------------------------------------------------------


def waiting_for(machine: PhoneMachine, name: str, files: dict[str, bytes]) -> PhoneMachine:
    """Boot ``machine`` against ``files`` until it asks for ``name``: that machine waits for the file."""
    machine, effects = machine.handle(Booted(), NOW)
    fetch = serve_files(files)
    while True:
        request = next(effect for effect in effects if isinstance(effect, Fetch))
        if request.name == name:
            return machine
        machine, effects = machine.handle(fetch(request), NOW)


@attrs.frozen
class Situation:
    """A phone waiting for one file, and the TVS it would ask."""

    label: str
    machine: PhoneMachine
    tvs: object


def feed(situation: Situation, name: str, data: bytes):
    """Give ``data`` as ``name`` to the waiting phone, answer its TVS requests, stop at its decision.

    The decision is made once the machine asks for its next file (or ends the
    boot); the rest of the boot cannot change what it did with this one.
    """
    installs: list[Install] = []
    machine, effects = situation.machine.handle(FileFetched(name, data), NOW)
    while True:
        installs += [effect for effect in effects if isinstance(effect, Install)]
        ask = next((effect for effect in effects if isinstance(effect, AskTvs)), None)
        if ask is None:
            return machine, machine.report, installs
        machine, effects = machine.handle(situation.tvs(ask), NOW)


def single_bit_flips(data: bytes, *, every_bit: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """Each bit of ``data`` flipped in turn; or one bit per byte (bit ``position % 8``)."""
    for position in range(len(data)):
        for bit in range(8) if every_bit else (position % 8,):
            mutated = bytearray(data)
            mutated[position] ^= 1 << bit
            yield position, bit, bytes(mutated)


_STORED = {Item.CTL: "ctl", Item.ITL: "itl", Item.CONFIG: "config"}


def assert_no_flip_is_accepted(situation: Situation, name: str, genuine: bytes, item: Item, *,
                               every_bit: bool = True) -> collections.Counter[str]:
    """Flipped copies of ``genuine`` are refused and the flash untouched; the genuine file is accepted.

    Returns how many refusals there were of each rejection code (``phone.firmware.trust.REJECTION_CODES``)."""
    field = _STORED[item]
    _, _, installs = feed(situation, name, genuine)
    assert [i.item for i in installs] == [item], situation.label
    kinds: collections.Counter[str] = collections.Counter()
    for position, bit, mutated in single_bit_flips(genuine, every_bit=every_bit):
        machine, report, installs = feed(situation, name, mutated)
        assert not installs, (situation.label, position, bit)
        assert getattr(machine.flash, field) == getattr(situation.machine.flash, field), (situation.label, position)
        entry = report.result_of(name)
        assert entry.result == "rejected", (situation.label, position, bit, entry)
        assert entry.code in REJECTION_CODES, entry
        kinds[entry.code] += 1
    assert sum(kinds.values()) == len(genuine) * (8 if every_bit else 1)
    return kinds


def phone(flash: Flash = Flash(), model: str = SBD) -> PhoneMachine:
    return PhoneMachine(get_model(model), MAC, flash)


def without_tvs(cluster: MiniCluster) -> Flash:
    """An SBD phone holding an ITL with no TVS record (SAST and CCM+TFTP only): it cannot ask TVS."""
    cm = cluster.callmanager
    return Flash(itl=signed_itl(cm, (cm, Role.SAST), (cm, Role.CCM_TFTP), timestamp=1), config=cluster.config(),
                 config_name=PLAIN)


@pytest.mark.slow
def test_no_single_bit_flip_of_an_itl_is_accepted():
    cluster = small_cluster()
    update = signed_itl(cluster.callmanager, (cluster.callmanager, Role.SAST))  # new content, same signer
    assert_no_flip_is_accepted(Situation("ITL-only phone, signer must be a SAST of the installed ITL",
                                         waiting_for(phone(without_tvs(cluster)), ITL, {}), TvsDouble(cluster)),
                               ITL, update, Item.ITL)
    assert_no_flip_is_accepted(Situation("empty phone, first ITL on trust", waiting_for(phone(), ITL, {}),
                                         TvsDouble(cluster)), ITL, update, Item.ITL, every_bit=False)
    flash = settled(SBD, cluster)
    cluster.regenerate_callmanager()  # TVS now vouches for the new key only
    by_tvs = signed_itl(cluster.callmanager, (cluster.callmanager, Role.SAST))
    for mode in ("cucm", "type1-only"):
        assert_no_flip_is_accepted(Situation(f"ITL-only phone, signer vouched for by TVS ({mode})",
                                             waiting_for(phone(flash), ITL, {}), TvsDouble(cluster, mode)),
                                   ITL, by_tvs, Item.ITL, every_bit=False)


@pytest.mark.slow
def test_no_single_bit_flip_of_a_ctl_is_accepted():
    cluster = small_cluster(mixed_mode=True)
    update = signed_ctl(cluster.callmanager, (cluster.callmanager, Role.SAST))  # new content, same signer
    legacy = settled(LEGACY, cluster)
    assert_no_flip_is_accepted(Situation("legacy phone, signer must be a SAST of the installed CTL",
                                         waiting_for(phone(legacy, LEGACY), CTL, {}), TvsDouble(cluster)),
                               CTL, update, Item.CTL)
    assert_no_flip_is_accepted(Situation("empty phone, first CTL on trust", waiting_for(phone(), CTL, {}),
                                         TvsDouble(cluster)), CTL, update, Item.CTL, every_bit=False)
    assert_no_flip_is_accepted(Situation("SBD phone, CTL installed, TVS asked when its SAST does not verify",
                                         waiting_for(phone(settled(SBD, cluster)), CTL, {}), TvsDouble(cluster)),
                               CTL, update, Item.CTL, every_bit=False)


@pytest.mark.slow
def test_no_single_bit_flip_of_a_signed_config_is_applied():
    cluster = small_cluster()
    xml = render_config([TvsMember("10.0.0.9")], device_name=f"SEP{MAC}")
    flash = without_tvs(cluster)
    assert_no_flip_is_accepted(Situation("signer must hold CCM+TFTP in the ITL",
                                         waiting_for(phone(flash), SGN, {ITL: flash.itl.data}), TvsDouble(cluster)),
                               SGN, signed_config(cluster.callmanager, xml), Item.CONFIG)
    flash = settled(SBD, cluster)
    cluster.regenerate_callmanager()
    assert_no_flip_is_accepted(Situation("signer vouched for by TVS", waiting_for(phone(flash), SGN, {ITL: flash.itl.data}),
                                         TvsDouble(cluster)),
                               SGN, signed_config(cluster.callmanager, xml), Item.CONFIG, every_bit=False)


# -- swapped records and files ------------------------------------------------------------


def spliced(header_from: bytes, records_from: bytes) -> bytes:
    """The header of one signed file on the records of another."""
    return (header_from[: TrustList.from_bytes(header_from).header.header_length]
            + records_from[TrustList.from_bytes(records_from).header.header_length:])


def with_records(data: bytes, records: list[Record]) -> bytes:
    return spliced(data, data)[: TrustList.from_bytes(data).header.header_length] + b"".join(r.encode() for r in records)


@pytest.fixture(scope="module")
def mixed():
    """A mixed-mode cluster, an SBD phone settled on it, and a new CTL and ITL signed by the same key."""
    cluster = small_cluster(mixed_mode=True)
    flash = settled(SBD, cluster)
    cluster.regenerate_capf()  # content changes, signers do not
    return cluster, flash


def refused_and_kept(name: str, data: bytes, cluster: MiniCluster, flash: Flash, model: str = SBD, tvs=None):
    files = cluster.files()
    files[name] = data
    machine, report, installs = boot(model, cluster, flash, files=files, tvs=tvs)
    outcome, reason = result(report, name)
    item = {CTL: Item.CTL, ITL: Item.ITL, SGN: Item.CONFIG, PLAIN: Item.CONFIG}[name]
    assert outcome == "rejected", (outcome, reason)
    assert item not in [i.item for i in installs]
    assert getattr(machine.flash, _STORED[item]) == getattr(flash, _STORED[item])
    return reason


def test_genuine_updates_of_the_mixed_fixture_are_accepted(mixed):
    cluster, flash = mixed
    _, report, _ = boot(SBD, cluster, flash)
    assert result(report, CTL)[0] == "installed" and result(report, ITL)[0] == "installed"


def test_the_header_of_a_new_ctl_on_the_records_of_a_new_itl_is_refused(mixed):
    cluster, flash = mixed
    reason = refused_and_kept(CTL, spliced(cluster.ctl(), cluster.itl()), cluster, flash)
    assert "does not verify the file" in reason  # TVS vouches for the signer, not for this content


def test_the_header_of_the_installed_itl_on_the_records_of_a_new_itl_is_refused(mixed):
    cluster, flash = mixed
    refused_and_kept(ITL, spliced(flash.itl.data, cluster.itl()), cluster, flash)


def test_records_in_another_order_are_refused(mixed):
    cluster, flash = mixed
    itl = TrustList.from_bytes(cluster.itl())
    refused_and_kept(ITL, with_records(itl.data, list(reversed(itl.records))), cluster, flash)


def test_a_record_taken_from_another_signed_file_is_refused(mixed):
    cluster, flash = mixed
    itl = TrustList.from_bytes(cluster.itl())
    old_capf = flash.itl.records_with_role(Role.CAPF)[0][1]  # from the installed ITL
    records = [old_capf if record.function == Role.CAPF else record for record in itl.records]
    assert records != list(itl.records)
    refused_and_kept(ITL, with_records(itl.data, records), cluster, flash)


def test_an_extra_record_appended_to_a_signed_file_is_refused(mixed):
    cluster, flash = mixed
    extra = make_record(node_identity("rogue-tvs", serial=0x666).certificate, Role.TVS)
    refused_and_kept(ITL, cluster.itl() + extra.encode(), cluster, flash)


def test_a_signed_itl_served_as_the_ctl_and_the_ctl_as_the_itl_are_refused(mixed):
    cluster, flash = mixed
    assert "ITL file where a CTL was expected" in refused_and_kept(CTL, cluster.itl(), cluster, flash)
    assert "CTL file where an ITL was expected" in refused_and_kept(ITL, cluster.ctl(), cluster, flash)


def test_a_signed_config_served_as_a_trust_list_is_refused(mixed):
    cluster, flash = mixed
    sgn = cluster.files()[SGN]
    assert "a signed file where a CTL was expected" in refused_and_kept(CTL, sgn, cluster, flash)


def test_a_signed_trust_list_served_as_the_config_is_not_applied(mixed):
    cluster, flash = mixed
    # Signed by the CallManager key, which holds CCM+TFTP: the signature is fine, but the file signs
    # another name (ITLFile.tlv) and its payload is no config. Either check refuses it on its own.
    reason = refused_and_kept(SGN, cluster.itl(), cluster, flash)
    assert f"it signs ITLFile.tlv, not {SGN}" in reason
    model = get_model(SBD)
    lenient = attrs.evolve(model, settings=attrs.evolve(model.settings, signed_config_name_must_match=False))
    files = {**cluster.files(), SGN: cluster.itl()}
    machine, report = run_boot(PhoneMachine(lenient, MAC, flash), fetch=serve_files(files),
                               ask_tvs=TvsDouble(cluster), clock=lambda: 1e9)
    outcome = report.result_of(SGN)
    assert outcome.result == "rejected" and "not well-formed XML" in outcome.reason
    assert machine.flash.config == flash.config


# -- replays of files from a signer that is no longer trusted ------------------------------


def test_an_old_itl_and_config_from_the_replaced_callmanager_are_refused_after_regeneration():
    cluster = small_cluster()
    flash = settled(SBD, cluster)
    old_files = cluster.files()
    cluster.regenerate_callmanager()
    machine, report, _ = boot(SBD, cluster, flash)  # the new ITL comes in through TVS
    assert result(report, ITL)[0] == "installed" and result(report, SGN)[0] == "applied"
    after = machine.flash
    # TVS now knows only the new CallManager certificate (SPEC 3.3): the old signer is nobody.
    assert "TVS does not vouch" in refused_and_kept(ITL, old_files[ITL], cluster, after)
    files = cluster.files()
    files[SGN] = old_files[SGN]
    machine, report, _ = boot(SBD, cluster, after, files=files)
    assert result(report, SGN)[0] == "rejected" and machine.flash.config == after.config


def test_an_old_ctl_from_the_replaced_callmanager_is_refused_after_regeneration():
    cluster = small_cluster(mixed_mode=True)
    flash = settled(SBD, cluster)
    old_ctl = cluster.ctl()
    cluster.regenerate_callmanager()
    machine, report, _ = boot(SBD, cluster, flash)
    assert result(report, CTL)[0] == "installed"
    reason = refused_and_kept(CTL, old_ctl, cluster, machine.flash)
    assert "TVS does not vouch" in reason


def test_a_legacy_phone_refuses_the_old_ctl_once_it_took_the_new_one():
    cluster = small_cluster(mixed_mode=True)
    old_ctl = cluster.ctl()
    cluster.regenerate_callmanager()
    flash = settled(LEGACY, cluster)
    assert "does not use TVS" in refused_and_kept(CTL, old_ctl, cluster, flash, model=LEGACY)


# -- a SAST record whose serial matches but whose key does not ----------------------------


def test_a_first_itl_whose_sast_record_is_the_genuine_certificate_but_signed_by_another_key_is_refused():
    cluster = small_cluster()
    forger = namesake(cluster.callmanager, "forger")
    forged = build_trust_list([make_record(cluster.callmanager.certificate, Role.SAST)], forger,
                              filename="ITLFile.tlv", timestamp=20).data
    reason = refused_and_kept(ITL, forged, cluster, Flash())
    assert "own SAST record does not verify" in reason


@pytest.mark.parametrize("tvs_mode", ["cucm", "type1-only"])
def test_an_itl_signed_by_a_namesake_of_the_installed_sast_is_refused(tvs_mode):
    cluster = small_cluster()
    flash = settled(SBD, cluster)
    forger = namesake(cluster.callmanager, "forger")
    forged = signed_itl(forger, (forger, Role.SAST), (forger, Role.CCM_TFTP),
                        (node_identity("rogue-tvs", serial=0x666), Role.TVS))
    parsed = TrustList.from_bytes(forged)
    assert parsed.header.signer_serial == flash.itl.header.signer_serial
    double = TvsDouble(cluster, tvs_mode)
    reason = refused_and_kept(ITL, forged, cluster, flash, tvs=double)
    # type 3: TVS returns the genuine certificate, which does not verify the forgery;
    # type 1: the phone sends the forger's certificate, which TVS does not know as a whole.
    assert [r.message_type for r in double.requests] == ([3] if tvs_mode == "cucm" else [3, 1])
    assert ("does not verify the file" if tvs_mode == "cucm" else "TVS does not vouch") in reason


def test_a_record_whose_publickey_is_not_its_certificates_never_vouches():
    cluster = small_cluster()
    forger = namesake(cluster.callmanager, "forger")
    genuine = make_record(cluster.callmanager.certificate, Role.SAST)
    forged_key = make_record(forger.certificate, Role.SAST).public_key
    record = Record.from_elements([Element(RecordTag.PUBLIC_KEY, forged_key) if e.tag == RecordTag.PUBLIC_KEY else e
                                   for e in genuine.elements])
    forged = build_trust_list([record], forger, filename="ITLFile.tlv", timestamp=21).data
    assert "PUBLICKEY is not its certificate's key" in refused_and_kept(ITL, forged, cluster, Flash())


# -- a signer claiming a role it does not hold --------------------------------------------


@pytest.mark.parametrize("mixed_mode", [True, False], ids=["mixed-mode", "itl-only"])
@pytest.mark.parametrize("tvs", ["cucm", "answers-capf"])
def test_the_capf_key_cannot_replace_the_itl(mixed_mode, tvs):
    # Found by this attack: with a CTL installed, any record of the CTL vouched for a new
    # ITL, so the CAPF key could install an ITL naming its own certificate as TVS.
    cluster = small_cluster(mixed_mode=mixed_mode)
    flash = settled(SBD, cluster)
    capf = cluster.capf
    forged = signed_itl(capf, (capf, Role.SAST), (capf, Role.TVS))
    answer = TvsDouble(cluster) if tvs == "cucm" else tvs_answering(capf.der, (Role.CAPF,))
    reason = refused_and_kept(ITL, forged, cluster, flash, tvs=answer)
    assert ("TVS does not vouch" if tvs == "cucm" else "without a required role") in reason


def test_an_itl_signed_by_the_ccm_tftp_key_of_the_installed_ctl_is_still_accepted():
    # The other side of the fix above: the ITL's real signers keep working through the CTL.
    cluster = small_cluster(mixed_mode=True)
    flash = settled(SBD, cluster)
    cluster.regenerate_capf()
    machine, report, installs = boot(SBD, cluster, attrs.evolve(flash, itl=None), tvs=tvs_answering(None, (), 1))
    assert result(report, ITL)[0] == "installed" and machine.flash.itl.data == cluster.itl()


@pytest.mark.parametrize("tvs", ["cucm", "answers-tvs-role"])
def test_the_tvs_key_cannot_sign_a_config(tvs):
    cluster = small_cluster()
    flash = settled(SBD, cluster)
    forged = signed_config(cluster.tvs, render_config([TvsMember("10.6.6.6")], device_name=f"SEP{MAC}"))
    answer = TvsDouble(cluster) if tvs == "cucm" else tvs_answering(cluster.tvs.der, (Role.TVS,))
    reason = refused_and_kept(SGN, forged, cluster, flash, tvs=answer)
    assert ("TVS does not vouch" if tvs == "cucm" else "without a required role") in reason


def test_a_sast_only_etoken_cannot_sign_a_config():
    cluster = MiniCluster(etokens=("SAST-ADN00000001",))
    flash = settled(SBD, cluster)
    forged = signed_config(cluster.etoken("SAST-ADN00000001"), cluster.config())
    # TVS finds the eToken in its CTL cache with role SAST only (SPEC 3.3); a config needs TFTP.
    reason = refused_and_kept(SGN, forged, cluster, flash)
    assert "without a required role (roles: 0)" in reason


def test_a_ctl_signed_by_a_ccm_tftp_record_that_is_not_sast_is_refused():
    cluster = MiniCluster(etokens=("SAST-ADN00000002",))
    flash = settled(SBD, cluster)
    cluster.tokenless()  # the publisher's CallManager key: CCM+TFTP in the installed CTL, not SAST
    answer = tvs_answering(cluster.callmanager.der, (Role.CCM_TFTP,))
    assert "without a required role" in refused_and_kept(CTL, cluster.ctl(), cluster, flash, tvs=answer)


# -- untrusted XML through the phone -------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<device><TVS><members><member priority="0"><address>&lol2;</address></member></members></TVS></device>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE device [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<device><TVS><members><member priority="0"><address>&xxe;</address></member></members></TVS></device>
"""
UNREADABLE_PORT = (f'<device><TVS><members><member priority="0"><port>{"9" * 5000}</port>'
                   "<address>10.6.6.6</address></member></members></TVS></device>").encode()


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_a_hostile_plain_config_is_not_applied_and_the_old_one_stays(xml):
    cluster = MiniCluster()
    flash = settled(LEGACY, cluster)  # no trust list: plain configs are applied
    assert flash.config == cluster.config()
    reason = refused_and_kept(PLAIN, xml, cluster, flash, model=LEGACY)
    assert reason == f"{PLAIN}: refused unsafe XML (DTDForbidden)"


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, UNREADABLE_PORT],
                         ids=["billion-laughs", "external-entity", "5000-digit-port"])
def test_a_hostile_config_signed_by_the_genuine_tftp_key_is_not_applied_and_the_old_one_stays(xml):
    cluster = small_cluster()
    flash = settled(SBD, cluster)
    reason = refused_and_kept(SGN, signed_config(cluster.callmanager, xml), cluster, flash)
    assert reason.startswith(f"{SGN}: ")
    machine, report, _ = boot(SBD, cluster, flash)  # and the next genuine config is applied again
    assert result(report, SGN)[0] == "applied"


# -- a signer name larger than a TVS request can carry ------------------------------------


def test_an_itl_whose_unknown_signer_name_cannot_be_sent_to_tvs_is_rejected_with_a_code():
    # 25,000 bytes of 0xFF decode to 25,000 U+FFFD, 75,000 bytes in UTF-8: over TVS's
    # 16-bit element length. The phone rejects the file; it neither crashes nor asks.
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from conftest import SEED_TIME as NOT_BEFORE

    cluster = small_cluster()
    flash = settled(SBD, cluster)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "X" * 25_000)])
    stranger = make_certificate(subject, rsa_key(1024, "stranger"), not_before=NOT_BEFORE, serial=0x5A)
    itl = signed_itl(stranger, (cluster.capf, Role.SAST))  # records small; only the header names the signer
    assert b"X" * 25_000 in itl  # SIGNERNAME (and CANAME: the certificate is self-signed)
    forged = itl.replace(b"X" * 25_000, b"\xff" * 25_000)
    double = TvsDouble(cluster)
    reason = refused_and_kept(ITL, forged, cluster, flash, tvs=double)
    assert "TVS cannot be asked" in reason and "16-bit length" in reason
    machine, report, _ = boot(SBD, cluster, flash, files={**cluster.files(), ITL: forged}, tvs=double)
    assert report.result_of(ITL).code == "tvs-unsendable"
    assert double.requests == []
