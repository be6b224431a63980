"""Every registration event writes lines that read back in the model's dialect (docs/logs.md)."""

from __future__ import annotations

import datetime

import pytest

from phone.catalogue import get_model
from phone.console.parse import parse
from phone.console.phone import PhoneConsole
from phone.firmware.machine import Log

EVENTS = [
    Log("registration.start", {"server": "10.0.0.1:5060", "protocol": "SIP", "transport": "TCP"}),
    Log("registration.start_tls", {"server": "10.0.0.1:5061", "protocol": "SIP", "transport": "TLS",
                               "certificate": "MIC"}),
    Log("registration.registered", {"server": "10.0.0.1:5061", "protocol": "SIP", "code": "registered-authenticated",
                                    "reason": "200 OK"}),
    Log("registration.failed", {"server": "10.0.0.1:5061", "protocol": "SIP", "code": "client-untrusted",
                                "reason": "TLS handshake: TLSV1_ALERT_UNKNOWN_CA"}),
    Log("registration.waiting", {"server": "", "protocol": "SCCP", "code": "waiting-trust-list",
                                 "reason": "no CTL after 4 tries\nforged 12 NOT 10:00:00.000000 X: -y"}),
]


@pytest.mark.parametrize("model, dialect", [("CP-8861", "enterprise"), ("CP-7965", "java79xx")])
def test_registration_lines_read_back_as_one_entry_each(model: str, dialect: str) -> None:
    clock = lambda: datetime.datetime(2026, 1, 1, 10, 0, tzinfo=datetime.timezone.utc)  # noqa: E731
    console = PhoneConsole(get_model(model), clock)
    for event in EVENTS:
        console.write(event)
    assert len(console.lines) == (6 if dialect == "java79xx" else 5)
    for line in console.lines:
        (entry,) = parse(line)
        assert entry.dialect == dialect
    assert "certificate [MIC]" in console.lines[1] or "using MIC for TLS" in console.lines[1]
    assert "client-untrusted" in console.lines[-2] and "UNKNOWN_CA" in console.lines[-2]
