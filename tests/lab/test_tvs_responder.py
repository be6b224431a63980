"""The TVS responder without sockets: answers remembered per question, and forgotten when the store changes."""

from __future__ import annotations

from datetime import datetime

import pytest
from tvs_support import DEVICE, identity

from phone.console.tvs_trace import TvsTraceWriter
from phone.lab.servers import tvs_responder
from phone.lab.servers.tvs_responder import TvsResponder
from phone.lab.tvs_store import TvsStore
from phone.wire.names import cucm_name, serial_to_bytes
from phone.wire.tvs import Status, TvsMessage

NOON = datetime(2016, 11, 29, 12, 0, 0)


def query(name: str, request_id: int = 1) -> TvsMessage:
    cert = identity(name).certificate
    return TvsMessage.query_request(request_id, DEVICE, cucm_name(cert.subject), cucm_name(cert.issuer),
                                    serial_to_bytes(cert.serial_number))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "tvs.sqlite3"
    with TvsStore(path) as store:
        store.add(identity("cucm-1051-a-pub").der, [0, 2])
    return path


@pytest.fixture
def responder(db):
    store = TvsStore(db)
    yield TvsResponder(store, None, TvsTraceWriter(None))
    store.close()


def test_a_remembered_answer_is_forgotten_when_another_connection_changes_the_store(db, responder):
    before = responder.answer(query("cucm-1051-a-pub"))
    assert (before.status, before.roles, before.ttl) == (Status.TRUSTED, (0, 2), 86400)
    with TvsStore(db) as lab:
        lab.add(identity("cucm-1051-a-pub").der, [0, 3], ttl=600)  # the same certificate, new roles
    changed = responder.answer(query("cucm-1051-a-pub"))
    assert (changed.roles, changed.ttl) == ((0, 3), 600)
    with TvsStore(db) as lab:
        lab.delete(serial=serial_to_bytes(identity("cucm-1051-a-pub").certificate.serial_number))
    assert responder.answer(query("cucm-1051-a-pub")).status == Status.NOT_TRUSTED


def test_a_remembered_answer_carries_each_requests_own_id(responder):
    first, second = responder.reply(query("cucm-1051-a-pub", 7)), responder.reply(query("cucm-1051-a-pub", 8))
    assert TvsMessage.decode(first.frame(7)) == responder.answer(query("cucm-1051-a-pub", 7))
    assert TvsMessage.decode(second.frame(8)).request_id == 8
    assert TvsMessage.decode(second.frame(8)).certificate == identity("cucm-1051-a-pub").der


def test_a_remembered_answer_is_traced_as_the_first_lookup_was(db):
    lines: list[str] = []
    with TvsStore(db) as store:
        responder = TvsResponder(store, None, TvsTraceWriter(lines.append, lambda: NOON))
        for _ in range(2):
            responder.answer(query("cucm-1051-a-pub"))
            responder.answer(query("stranger"))
    half = len(lines) // 2
    assert lines[:half] == lines[half:]
    assert any("CertificateDBCache::getCertificateInformation - Found entry {rolecount : 2}" in line
               for line in lines[half:])
    assert sum("ERROR:CertificateCTLCache::getCertificateInformation - Cannot find" in line
               for line in lines[half:]) == 1


def test_remembered_questions_are_bounded(monkeypatch, responder):
    monkeypatch.setattr(tvs_responder, "MEMO_LIMIT", 3)
    for number in range(10):
        assert responder.answer(query(f"stranger-{number}")).status == Status.NOT_TRUSTED
        assert len(responder._found) <= 3
    assert responder.answer(query("cucm-1051-a-pub")).status == Status.TRUSTED
