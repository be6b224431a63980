"""What a CAPF enrolment costs a fleet next to a boot, same machine, same run.

Baseline: boots/s of the bare machine (bench_fleet's: in-memory transports, one
process). Then, per key: generating an RSA-2048 key (what a real phone does for
each install), RSA-1024 and EC P-256, and taking a key from a ``KeyPool`` folder
that an earlier run filled (what fleet workers do, docs/capf.md); and a whole
install session without sockets (``CapfSession`` against a scripted server in
memory) with a fresh key and with a pooled one.

    .venv/bin/python benchmarks/bench_capf_keygen.py [--keys 10] [--baseline-phones 300]

The machine is shared: compare each figure to the boot of the same run, not
absolute figures between runs.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from bench_fleet import bare_machine  # noqa: E402
from phone.device.capf_keys import KeyPool  # noqa: E402
from phone.firmware.capf_session import CapfCredentials, CapfSession, KeySpec  # noqa: E402
from phone.wire.capf import CapfMessage, Command  # noqa: E402
from phone.wire.certs import Profile, generate_rsa_key, make_certificate, simple_subject  # noqa: E402

DEVICE = "SEPB000B4BA0AEE"


def per_item_ms(action, count: int) -> float:
    """Median milliseconds of ``action()`` over ``count`` runs."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times)


def install_session(capf, keys) -> None:
    """One install, the server's side scripted in memory: auth, key request, the LSC, the end."""
    session = CapfSession(DEVICE, 2, CapfCredentials(), phone_version=3, ec_capable=False, keys=keys)
    session.receive(CapfMessage.build(Command.AUTH_REQUEST, 1, version=3, auth_type=0))
    answers = session.receive(CapfMessage.build(Command.KEY_GENERATE_REQUEST, 1, key_size=2048))
    public = serialization.load_der_public_key(answers[-1].public_key)
    now = datetime.datetime.now(datetime.timezone.utc)
    lsc = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE)]))
           .issuer_name(capf.certificate.subject).public_key(public).serial_number(x509.random_serial_number())
           .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
           .sign(capf.private_key, hashes.SHA256()))
    session.receive(CapfMessage.build(Command.STORE_CERTIFICATE_REQUEST, 1, certificate_type=1,
                                      certificate_der=lsc.public_bytes(serialization.Encoding.DER)))
    session.receive(CapfMessage.build(Command.END_SESSION, 1, reason=1))
    assert session.outcome is not None and session.outcome.result == "installed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10, help="keys per figure")
    parser.add_argument("--baseline-phones", type=int, default=300, help="phones in the bare-machine baseline")
    args = parser.parse_args()
    print(f"CAPF benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, {args.keys} keys per figure")
    rate, _ = bare_machine(f"CP-8861={args.baseline_phones}", args.baseline_phones)
    boot_ms = 1e3 / rate
    print(f"baseline: bare machine boot {boot_ms:.2f} ms ({rate:.0f} boots/s)")
    capf = make_certificate(simple_subject(CN="CAPF-bench"), generate_rsa_key(2048),
                            not_before=datetime.datetime.now(datetime.timezone.utc), serial=1, profile=Profile.CA)
    rows = []
    for label, spec in (("generate RSA-2048", KeySpec("rsa", 2048)), ("generate RSA-1024", KeySpec("rsa", 1024)),
                        ("generate EC P-256", KeySpec("ec", 256))):
        rows.append((label, per_item_ms(spec.generate, args.keys)))
    with tempfile.TemporaryDirectory(prefix="bench-capf-") as folder:
        filler = KeyPool(Path(folder))
        for _ in range(2 * args.keys + 1):
            filler(KeySpec("rsa", 2048))
        pool = KeyPool(Path(folder))
        rows.append(("RSA-2048 from a filled KeyPool", per_item_ms(lambda: pool(KeySpec("rsa", 2048)), args.keys)))
        rows.append(("install session, fresh RSA-2048", per_item_ms(lambda: install_session(capf, KeySpec.generate),
                                                                     args.keys)))
        rows.append(("install session, pooled RSA-2048", per_item_ms(lambda: install_session(capf, pool), args.keys)))
        assert pool.generated == 0, "the pool ran dry: the figure would include generation"
    print(f"{'':<36}{'ms':>9}{'boots':>9}")
    for label, ms in rows:
        print(f"{label:<36}{ms:>9.2f}{ms / boot_ms:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
