"""A model's TLS versions against a TVS limited to TLS 1.0, as a CUCM before 11.5(1)SU3 (docs/models.md,
"Corrections and their sources": a 7800 on 14.x offers TLS 1.2 only)."""

from __future__ import annotations

import pytest
from tvs_support import DEVICE, identity

from phone.catalogue import get_model
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, ask_tvs
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.wire.names import cucm_name, serial_to_bytes
from phone.wire.tvs import TvsMessage


@pytest.fixture(scope="module")
def tvs_identity():
    return identity("tvs-cucm-pub", bits=2048)


@pytest.fixture
def tls_1_0_tvs(tmp_path, tvs_identity):
    cert, key = tvs_identity.write(tmp_path, "tvs")
    with running_tvs_server(cert, key, settings=TvsServerSettings(port=0, min_tls="1.0", max_tls="1.0")) as running:
        yield running


def ask_as(model_name: str, server, tvs_identity):
    model = get_model(model_name)
    cert = identity("cucm-1051-a-pub").certificate
    query = TvsMessage.query_request(1, DEVICE, cucm_name(cert.subject), cucm_name(cert.issuer),
                                     serial_to_bytes(cert.serial_number))
    settings = TvsClientSettings(tls_versions=model.tls_versions, connect_timeout=2, handshake_timeout=2,
                                 response_timeout=2)
    return ask_tvs([TvsMember("127.0.0.1", server.port)], query, [tvs_identity.der], settings)


@pytest.mark.parametrize("model", ["CP-7811", "CP-7821", "CP-7832", "CP-7841", "CP-7861"])
def test_7800_on_14_x_fails_its_tvs_handshake_with_a_tls_1_0_only_cucm(tls_1_0_tvs, tvs_identity, model):
    assert get_model(model).tls_versions == ("1.2",)
    result = ask_as(model, tls_1_0_tvs, tvs_identity)
    assert result.outcome is ConnectionOutcome.TLS_FAILED


def test_an_8861_still_completes_its_handshake_with_a_tls_1_0_only_cucm(tls_1_0_tvs, tvs_identity):
    result = ask_as("CP-8861", tls_1_0_tvs, tvs_identity)
    assert result.outcome is ConnectionOutcome.ANSWERED
    assert result.attempts[0].tls_version == "TLSv1"
