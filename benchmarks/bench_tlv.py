"""Trust-list files parsed and verified per second, beside the bare RSA verification.

For each signer size (1024, 2048, 4096 bits) a CUCM-layout CTL like Cisco TAC 118893's
(four records) is parsed and its signature checked, and in the same run the
RSA verification of the same signature over the same bytes is timed alone.
The ratio says how much the codec adds on top of the cryptography it cannot avoid.

    .venv/bin/python benchmarks/bench_tlv.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import datetime
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from phone.wire.certs import cucm_subject, generate_rsa_key, make_certificate
from phone.wire.signing import build_trust_list, make_record, verify
from phone.wire.tlv import Role, TrustList

START = datetime.datetime(2015, 3, 6, tzinfo=datetime.timezone.utc)


def rate(action, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            action()
        count += 20
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    args = parser.parse_args()
    print(f"{'signer':>8} {'file bytes':>10} {'parse+verify/s':>15} {'RSA verify/s':>13} {'ratio':>6}")
    for bits in (1024, 2048, 4096):
        key = generate_rsa_key(bits)
        signer = make_certificate(cucm_subject("cucm-pub"), key, not_before=START, serial=0x70CAF64E)
        others = [make_certificate(cucm_subject(f"cucm-sub{i}"), generate_rsa_key(1024), not_before=START, serial=i + 1)
                  for i in range(2)]
        records = [make_record(signer.certificate, Role.SAST, dns_name="cucm-pub"),
                   make_record(signer.certificate, Role.CCM_TFTP, dns_name="cucm-pub")]
        records += [make_record(o.certificate, Role.CCM_TFTP, dns_name=f"sub{i}") for i, o in enumerate(others)]
        data = build_trust_list(records, signer, filename="CTLFile.tlv", timestamp=1425667513).data
        parsed = TrustList.from_bytes(data)
        signed, signature, public_key = parsed.signed_bytes(), parsed.header.signature, key.public_key()

        def full() -> None:
            assert verify(TrustList.from_bytes(data)).valid

        def bare() -> None:
            public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA1())

        full_rate, bare_rate = rate(full, args.seconds), rate(bare, args.seconds)
        print(f"{bits:>8} {len(data):>10} {full_rate:>15.0f} {bare_rate:>13.0f} {bare_rate / full_rate:>5.1f}x")


if __name__ == "__main__":
    main()
