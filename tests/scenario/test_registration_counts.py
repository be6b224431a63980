"""`scenario run --json` counts, per model, the phones that registered and those whose registration did not."""

from __future__ import annotations

from phone.catalogue import get_model
from phone.firmware.machine import BootReport
from phone.firmware.outcome import classify
from phone.firmware.registration import Registration
from phone.scenario.rehearsal import PhoneSpec
from phone.scenario.report import model_summary
from phone.scenario.runner import PhoneResult


def _phone(mac: str, registration: Registration | None) -> PhoneResult:
    report = BootReport(registration=registration)
    return PhoneResult(PhoneSpec(get_model("CP-8861"), mac), report, classify(report))


def test_registered_and_failed_registrations_are_counted_apart_from_phones_that_did_not_register() -> None:
    phones = [
        _phone("000000000001", Registration("10.0.0.1:5061", "SIP", "authenticated", "registered",
                                            "registered-authenticated")),
        _phone("000000000002", Registration("10.0.0.1:5061", "SIP", "authenticated", "failed", "client-untrusted")),
        _phone("000000000003", Registration(None, "SIP", "authenticated", "waiting", "waiting-trust-list")),
        _phone("000000000004", None),
    ]
    summary = model_summary(phones)
    assert (summary["registered"], summary["registration_failed"], summary["phones"]) == (1, 2, 4)
