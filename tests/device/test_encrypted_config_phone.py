"""The phone reads the encrypted configuration the lab serves it, and refuses every damaged or foreign one.

The lab is real (tests/minicluster.py: CallManager-signed files, the device
store); the phone is real (``Phone`` with its MIC in an identity store, or a
machine given an LSC made here). Files travel through a fetch function over
``Lab.device_file``: the TFTP transport is tested over sockets elsewhere.
"""

from __future__ import annotations

import pytest
from conftest import SEED_TIME, manufacturing_ca, rsa_key
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from minicluster import MAC, START, MiniCluster

from phone.catalogue import get_model
from phone.device.boot import run_boot
from phone.device.identity import IdentityStore
from phone.device.phone import Phone, boot_json
from phone.firmware.encrypted import PhoneKeys
from phone.firmware.machine import (
    AskTvs,
    Booted,
    BootStep,
    Fetch,
    FileFetched,
    FileMissing,
    PhoneMachine,
    TvsFailed,
    TvsFailure,
)
from phone.lab.devices import DeviceRecord, DeviceStore
from phone.wire.certs import make_certificate, simple_subject
from phone.wire.encconfig import EncryptedConfig, build_encrypted_config

DEVICE = f"SEP{MAC}"
ENC = f"{DEVICE}.cnf.xml.enc.sgn"
STUB = f"{DEVICE}.cnf.xml.sgn"
NOW = START.timestamp()
MODEL = get_model("CP-8861")


def certificate(label: str, bits: int = 2048):
    return make_certificate(simple_subject(CN=f"CP-8861-{label}"), rsa_key(bits, label), not_before=SEED_TIME,
                            serial=0x1500 + len(label))


class LabFiles:
    """A fetch function over the lab's per-device files; ``replace`` swaps one file's bytes."""

    def __init__(self, cluster: MiniCluster) -> None:
        self.cluster = cluster
        self.asked: list[str] = []
        self.replace: dict[str, bytes | None] = {}

    def __call__(self, request: Fetch):
        self.asked.append(request.name)
        if request.name in self.replace:
            data = self.replace[request.name]
        else:
            data = self.cluster.lab.device_file(request.name, tvs_addresses=[("127.0.0.1", 2445)])
        return FileMissing(request.name) if data is None else FileFetched(request.name, data, server="lab")


def no_tvs(ask: AskTvs):
    return TvsFailed(TvsFailure.UNREACHABLE, "no TVS in this test")


@pytest.fixture
def cluster():
    return MiniCluster()


def devices(cluster) -> DeviceStore:
    return DeviceStore.for_lab(cluster.lab.path)


def encrypt_for(cluster, *, mic_der=None, lsc_der=None) -> None:
    store = devices(cluster)
    store.put(DeviceRecord(DEVICE, "CP-8861", encrypted_config=True, lsc_der=lsc_der))
    if mic_der is not None:
        store.record_mic(DEVICE, mic_der)


def boot(machine: PhoneMachine, files: LabFiles):
    return run_boot(machine, fetch=files, ask_tvs=no_tvs, clock=lambda: NOW)


def results(report) -> list[tuple[str, str]]:
    return [(entry.name, entry.result) for entry in report.files]


@pytest.fixture
def phone(cluster, tmp_path):
    files = LabFiles(cluster)
    return Phone(MODEL, MAC, fetch=files, ask_tvs=no_tvs, identity=IdentityStore(tmp_path / "identity"),
                 mic_authority=manufacturing_ca, clock=lambda: START), files


def test_the_phone_decrypts_what_the_lab_encrypts_to_the_mic_it_presented(cluster, phone):
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    report = phone.boot()
    assert results(report)[-2:] == [(STUB, "unchanged"), (ENC, "applied")]
    assert report.config_encrypted and report.capf_needed is None
    stored = phone.machine.flash.stored_config()
    assert stored.full_config and stored.encrypted_config and stored.tvs_members
    assert boot_json(phone.machine, report, phone.identity)["config"]["encrypted"] is True

    files.asked.clear()
    report = phone.boot()
    assert [name for name in files.asked if "cnf" in name] == [ENC], "encrConfig stored: the .enc.sgn comes first"
    assert report.config_encrypted


def test_the_phone_decrypts_with_its_lsc_when_the_lab_issued_one(cluster):
    mic, lsc = certificate("enc-phone-mic"), certificate("enc-phone-lsc")
    encrypt_for(cluster, mic_der=mic.der, lsc_der=lsc.der)
    _, report = boot(PhoneMachine(MODEL, MAC, keys=PhoneKeys(mic=mic, lsc=lsc)), LabFiles(cluster))
    assert results(report)[-1] == (ENC, "applied") and report.config_encrypted
    only_mic, report = boot(PhoneMachine(MODEL, MAC, keys=PhoneKeys(mic=mic)), LabFiles(cluster))
    assert results(report)[-1][1] == "rejected" and report.capf_needed is not None
    assert not report.config_applied and only_mic.flash.config is None


def test_a_stub_with_an_empty_cert_hash_keeps_the_old_configuration_and_asks_for_capf(cluster, phone):
    phone, files = phone
    first = phone.boot()
    assert first.config_applied and not first.config_encrypted
    previous = phone.machine.flash.config
    encrypt_for(cluster)  # the lab knows no certificate of this phone
    report = phone.boot()
    stub = report.result_of(STUB)
    assert (stub.result, stub.code) == ("rejected", "capf-needed") and "empty certHash" in stub.reason
    assert ENC not in files.asked
    assert phone.machine.flash.config == previous and not report.config_applied
    assert report.capf_needed is not None and [s.address for s in report.capf_needed.capf_list] == [
        cluster.lab.state.publisher.name]
    assert boot_json(phone.machine, report, phone.identity)["config"]["encrypted"] is False


def test_a_stub_naming_another_certificate_asks_for_capf(cluster, phone):
    phone, files = phone
    encrypt_for(cluster, mic_der=certificate("someone-else").der)
    report = phone.boot()
    assert report.result_of(STUB).code == "capf-needed" and "is not the phone's MIC" in report.result_of(STUB).reason
    assert ENC not in files.asked and report.capf_needed is not None


def test_a_file_encrypted_to_another_key_is_refused_and_the_old_configuration_kept(cluster, phone):
    phone, _ = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    phone.boot()
    previous = phone.machine.flash.config
    encrypt_for(cluster, mic_der=certificate("someone-else").der)  # CUCM now holds another certificate
    report = phone.boot()
    enc = report.result_of(ENC)
    assert (enc.result, enc.code) == ("rejected", "decrypt-failed")
    assert phone.machine.flash.config == previous and report.capf_needed is not None


def test_a_file_signed_by_a_key_the_phone_does_not_trust_is_never_decrypted(cluster, phone):
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    stranger = make_certificate(simple_subject(CN="cucm-1051-a-pub"), rsa_key(1024, "enc-stranger"),
                                not_before=SEED_TIME, serial=0x5151)
    files.replace[ENC] = build_encrypted_config(b"<device><fullConfig>true</fullConfig></device>\n", stranger,
                                                phone.identity.mic.certificate, filename=ENC, timestamp=1)
    report = phone.boot()
    enc = report.result_of(ENC)
    assert (enc.result, enc.code) == ("rejected", "no-tvs-server") and "unknown" in enc.reason
    assert not report.config_applied and report.capf_needed is None, "an untrusted file is no reason for CAPF"


def test_an_encrypted_file_for_another_device_is_refused(cluster, phone):
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    other = "SEP0011223344FF.cnf.xml.enc.sgn"
    devices(cluster).put(DeviceRecord("SEP0011223344FF", "CP-8861", encrypted_config=True,
                                      mic_der=phone.identity.mic.der))
    files.replace[ENC] = cluster.lab.device_file(other)
    report = phone.boot()
    assert report.result_of(ENC).code == "wrong-file" and not report.config_applied


def test_a_missing_encrypted_file_ends_the_boot_without_asking_twice(cluster, phone):
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    phone.boot()
    files.asked.clear()
    files.replace[ENC] = None
    report = phone.boot()
    assert [name for name in files.asked if "cnf" in name] == [ENC, STUB]
    assert not report.config_applied and phone.machine.flash.stored_config().encrypted_config


def test_a_model_without_encrypted_configurations_applies_the_stub_as_it_is(cluster):
    model = get_model("CP-DX80")
    encrypt_for(cluster, mic_der=certificate("enc-phone-mic").der)
    machine, report = boot(PhoneMachine(model, MAC, keys=PhoneKeys(mic=certificate("enc-phone-mic"))),
                           LabFiles(cluster))
    assert results(report)[-1] == (STUB, "applied") and not report.config_encrypted
    assert not machine.flash.stored_config().full_config


# -- every damaged file is refused ----------------------------------------------------------------


@pytest.fixture
def waiting_for_the_encrypted_file(cluster, phone):
    """A phone that holds the ITL and an earlier configuration and now asks for its ``.enc.sgn``."""
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    phone.boot()
    good = cluster.lab.device_file(ENC)
    machine, effects = phone.machine.handle(Booted(), NOW)
    while not any(isinstance(effect, Fetch) and effect.name == ENC for effect in effects):
        request = next(effect for effect in effects if isinstance(effect, Fetch))
        machine, effects = machine.handle(files(request), NOW)
    assert machine.step is BootStep.CONFIG_ENCRYPTED
    return machine, good


def refused_keeping_the_old_configuration(machine: PhoneMachine, data: bytes) -> bool:
    before = machine.flash.config
    machine, _ = machine.handle(FileFetched(ENC, data, server="lab"), NOW)
    if machine.step is BootStep.TVS:  # a changed signer name or serial: TVS is asked, and says no
        machine, _ = machine.handle(TvsFailed(TvsFailure.UNREACHABLE, "no TVS in this test"), NOW)
    entry = machine.report.result_of(ENC)
    return entry is not None and entry.result == "rejected" and machine.flash.config == before \
        and not machine.report.config_applied


def test_the_untouched_file_is_applied(waiting_for_the_encrypted_file):
    machine, good = waiting_for_the_encrypted_file
    machine, _ = machine.handle(FileFetched(ENC, good, server="lab"), NOW)
    assert machine.report.config_applied and machine.report.config_encrypted


@pytest.mark.slow
def test_every_single_bit_flip_of_the_header_and_of_sampled_ciphertext_is_refused(waiting_for_the_encrypted_file):
    machine, good = waiting_for_the_encrypted_file
    header_length = EncryptedConfig.from_bytes(good).signed.header.header_length
    ciphertext_bits = range(header_length * 8, len(good) * 8)
    # Every bit of the header; of the ciphertext, every bit of its first and last blocks and every 13th bit
    # between them (CBC: the first block's bits reach the IV's role, the last ones the padding).
    sampled = [bit for bit in ciphertext_bits
               if bit < (header_length + 16) * 8 or bit >= (len(good) - 16) * 8 or bit % 13 == 0]
    kept = [bit for bit in [*range(header_length * 8), *sampled]
            if not refused_keeping_the_old_configuration(machine, _flip(good, bit))]
    assert kept == [], f"bit flips that were not refused: {kept[:20]}"


def test_every_truncation_is_refused(waiting_for_the_encrypted_file):
    machine, good = waiting_for_the_encrypted_file
    lengths = [*range(64), *range(64, len(good), 7), len(good) - 1]
    assert [n for n in lengths if not refused_keeping_the_old_configuration(machine, good[:n])] == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.integers(min_value=0, max_value=40))
def test_any_rewritten_bytes_are_refused(waiting_for_the_encrypted_file, changes, cut):
    """Several bytes rewritten at once, and the file shortened: never applied, never a crash."""
    machine, good = waiting_for_the_encrypted_file
    damaged = bytearray(good)
    for position, value in changes:
        damaged[position % len(good)] = value
    damaged = bytes(damaged[:len(damaged) - cut])
    assume(damaged != good)
    assert refused_keeping_the_old_configuration(machine, damaged)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(flipped)


def test_a_phone_without_any_certificate_gets_no_configuration_from_a_matching_stub(cluster):
    """No LSC and no MIC (a fleet phone without identity store): nothing to open the file with."""
    encrypt_for(cluster, mic_der=certificate("enc-phone-mic").der)
    _, report = boot(PhoneMachine(MODEL, MAC), LabFiles(cluster))
    assert report.result_of(STUB).code == "capf-needed" and "no certificate" in report.result_of(STUB).reason



def test_a_phone_without_a_trust_list_reads_the_stub_but_never_decrypts_an_unverifiable_file(cluster, phone):
    """No ITL: the plain configuration is the stub, and the .enc.sgn has no installed signer to check against."""
    phone, files = phone
    encrypt_for(cluster, mic_der=phone.identity.mic.der)
    files.replace.update({f"ITL{DEVICE}.tlv": None, "ITLFile.tlv": None})
    report = phone.boot()
    assert results(report)[-2:] == [(f"{DEVICE}.cnf.xml", "unchanged"), (ENC, "rejected")]
    assert report.result_of(ENC).code == "no-tvs" and not report.config_applied
