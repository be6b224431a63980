"""The machine's TVS events from a client result: the exchange's sizes live on the attempt that answered."""

from __future__ import annotations

from phone.device.transports import tvs_event
from phone.device.tvs import ConnectionOutcome, TvsConnectionAttempt, TvsResult
from phone.firmware.machine import TvsAnswered, TvsFailed
from phone.wire.tvs import TvsMessage

QUERY = TvsMessage.query_request(1001, "CP-8861-SEPB000B4BA0AEE", "CN=pub", "CN=pub", b"\x01\x02")


def test_the_answering_attempt_carries_the_request_and_answer_sizes_and_the_refused_one_none():
    answer = TvsMessage.answer(QUERY, 0, certificate=b"\x30" * 600, roles=(0, 2), ttl=86400)
    result = TvsResult(QUERY, (
        TvsConnectionAttempt("10.0.0.1:2445", 3, ConnectionOutcome.REFUSED, error="connection refused"),
        TvsConnectionAttempt("10.0.0.2:2445", 3, ConnectionOutcome.ANSWERED, status=0, roles=(0, 2)),
    ), answer)
    event = tvs_event(result)
    assert isinstance(event, TvsAnswered) and event.server == "10.0.0.2:2445"
    refused, answered = event.attempts
    assert (refused.bytes_sent, refused.bytes_received) == (0, 0)
    assert (answered.bytes_sent, answered.bytes_received) == (len(QUERY.encode()), len(answer.encode()))


def test_a_failed_request_has_no_sizes():
    result = TvsResult(QUERY, (TvsConnectionAttempt("10.0.0.1:2445", 3, ConnectionOutcome.DROPPED, error="closed"),),
                       None)
    event = tvs_event(result)
    assert isinstance(event, TvsFailed)
    assert [(a.bytes_sent, a.bytes_received) for a in event.attempts] == [(0, 0)]
