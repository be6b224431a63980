"""Trust-list files parsed and verified per second, beside the bare RSA verification.

For each signer size (1024, 2048, 4096 bits) an ITL as a CUCM node serves it
(the signer as SAST and as CCM+TFTP, a TVS record) is parsed and its signature
checked with ``verify`` (signer found from the header, its record's certificate,
PUBLICKEY and serial cross-checked); a 10 KB ITL (seven records) with a 2048-bit
signer follows. In the same run, interleaved, the bare RSA verification of the
same signature over the same bytes with the same key object is timed alone:
the cryptography the codec cannot avoid. ``ratio`` is codec rate / bare rate
(1.0 would mean parsing and checking the records cost nothing), the median of
the interleaved rounds.

``first sight`` times the same work with the certificate caches emptied before
every file: a file whose signer certificate the process has never loaded (a
phone's first boot). A phone or a fleet meets the same certificates again and
again, which the first columns measure.

    .venv/bin/python benchmarks/bench_tlv.py [--seconds 1.0]

With ``PYTHONPATH`` pointing at another checkout, the same script measures
that checkout's codec (the figures of an older version, for comparison).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from phone.wire import certs, signing, tlv
from phone.wire.certs import Profile, cucm_subject, generate_rsa_key, make_certificate
from phone.wire.signing import build_trust_list, make_record, verify
from phone.wire.tlv import Role, TrustList

START = datetime.datetime(2015, 3, 6, tzinfo=datetime.UTC)
ROUNDS = 5


def rate(action: Callable[[], object], seconds: float) -> float:
    """Calls per second of CPU time (the machine is shared: CPU time moves less than wall time)."""
    count, started = 0, time.process_time()
    deadline = started + seconds
    while time.process_time() < deadline:
        for _ in range(20):
            action()
        count += 20
    return count / (time.process_time() - started)


def forget_certificates() -> None:
    """Empty the caches of loaded certificates, keys, header and record layouts and names (names differ between versions)."""
    for holder, name in ((certs, "_load_certificate"), (signing, "_cached_certificate_key"),
                         (signing, "_bare_public_key"), (signing, "_key_of_record_bytes"),
                         (signing, "_remembered_name_key"), (tlv, "_known_record"), (tlv, "_RECORDS"), (tlv, "_HEADERS")):
        cached = getattr(holder, name, None)
        if cached is not None:
            cached.cache_clear()


def node(name: str, bits: int, serial: int, profile: Profile = Profile.SERVER):
    return make_certificate(cucm_subject(name), generate_rsa_key(bits), not_before=START, serial=serial,
                            profile=profile)


def itl(bits: int, *, large: bool = False) -> bytes:
    """An ITL signed by a ``bits``-bit CallManager certificate; ``large``: a 3-node cluster's (about 10 KB)."""
    callmanager = node("cucm-pub", bits, 0x70CAF64E)
    records = [make_record(callmanager.certificate, Role.SAST, dns_name="cucm-pub", ip_address="10.0.0.1"),
               make_record(callmanager.certificate, Role.CCM_TFTP, dns_name="cucm-pub", ip_address="10.0.0.1")]
    tvs_nodes = ("cucm-pub", "cucm-sub1", "cucm-sub2") if large else ("cucm-pub",)
    for index, name in enumerate(tvs_nodes):
        tvs = node(f"{name}-tvs", bits, 0x100 + index)
        records.append(make_record(tvs.certificate, Role.TVS, dns_name=name, ip_address=f"10.0.0.{index + 1}"))
    if large:
        recovery = node("ITLRECOVERY_cucm-pub", bits, 0x200)
        capf = node("CAPF-cucm-pub", bits, 0x300, Profile.CAPF)
        records.insert(0, make_record(recovery.certificate, Role.SAST, dns_name="cucm-pub", ip_address="10.0.0.1"))
        records.append(make_record(capf.certificate, Role.CAPF, dns_name="cucm-pub", ip_address="10.0.0.1"))
    return build_trust_list(records, callmanager, filename="ITLFile.tlv", timestamp=1425667513).data


def measure(label: str, data: bytes, seconds: float) -> None:
    parsed = TrustList.from_bytes(data)
    verification = verify(parsed)
    assert verification.valid, verification.reason
    signed, signature = parsed.signed_bytes(), parsed.header.signature
    public_key = signing.record_key(parsed.records[verification.signed_by])
    pkcs1, sha1 = padding.PKCS1v15(), hashes.SHA1()

    def full() -> None:
        assert verify(TrustList.from_bytes(data)).valid

    def bare() -> None:
        public_key.verify(signature, signed, pkcs1, sha1)

    def first_sight() -> None:
        forget_certificates()
        assert verify(TrustList.from_bytes(data)).valid

    full_rates, bare_rates, ratios = [], [], []
    for _ in range(ROUNDS):
        full_rates.append(rate(full, seconds / ROUNDS))
        bare_rates.append(rate(bare, seconds / ROUNDS))
        ratios.append(full_rates[-1] / bare_rates[-1])
    cold = rate(first_sight, seconds / ROUNDS)
    print(f"{label:>12} {len(data):>6} {max(full_rates):>15,.0f} {max(bare_rates):>13,.0f} "
          f"{statistics.median(ratios):>6.2f} {cold:>12,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    args = parser.parse_args()
    print(f"{'ITL':>12} {'bytes':>6} {'parse+verify/s':>15} {'RSA verify/s':>13} {'ratio':>6} {'first sight/s':>12}")
    for bits in (1024, 2048, 4096):
        measure(f"RSA-{bits}", itl(bits), args.seconds)
    measure("10 KB, 2048", itl(2048, large=True), args.seconds)


if __name__ == "__main__":
    main()
