"""Shared test fixtures: keys and certificates are expensive, so they are made once a session."""

from __future__ import annotations

import datetime
import functools

import pytest

pytest_plugins = ["pytester"]

from phone.wire.certs import Identity, Profile, cucm_subject, generate_ec_key, generate_rsa_key, make_certificate, simple_subject

#: The seed's certificates were made on this day; every test certificate starts then.
SEED_TIME = datetime.datetime(2014, 6, 5, 16, 31, 39, tzinfo=datetime.timezone.utc)


@functools.cache
def rsa_key(bits: int, label: str = "default"):
    """One RSA key per (size, label) for the whole session."""
    return generate_rsa_key(bits)


@functools.cache
def node_identity(common_name: str, bits: int = 1024, serial: int = 0x70CAF64E090751B9DF22F49F754FC5BB,
                  profile: Profile = Profile.SERVER) -> Identity:
    """A CUCM node certificate like the seed's (self-signed, CUCM profile)."""
    return make_certificate(cucm_subject(common_name), rsa_key(bits, common_name), not_before=SEED_TIME,
                            serial=serial, profile=profile)


@functools.cache
def manufacturing_ca() -> Identity:
    return make_certificate(simple_subject(O="Cisco Systems", CN="Cisco Manufacturing CA"), rsa_key(2048, "cmca"),
                            not_before=SEED_TIME, serial=0x6A6967B3000000000003, profile=Profile.CA)


@functools.cache
def etoken_identity(name: str = "SAST-ADN008580ef ", serial: int = 0x83E9080000005545AF31) -> Identity:
    """An eToken certificate as in the seed (issued by the manufacturing CA)."""
    return make_certificate(simple_subject(O="Cisco Systems, Inc.", OU="IPCBU", CN=name), rsa_key(1024, name),
                            not_before=SEED_TIME, serial=serial, profile=Profile.ETOKEN, issuer=manufacturing_ca())


@functools.cache
def ec_identity(common_name: str = "cucm-pub-EC") -> Identity:
    return make_certificate(cucm_subject(common_name), generate_ec_key(), not_before=SEED_TIME, serial=0x1234567)


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory):
    """Phones booted by tests get their MIC from a manufacturing CA of the test session, never the user's."""
    folder = tmp_path_factory.mktemp("xdg-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(folder))
        yield folder


@pytest.fixture(scope="session")
def seed_time() -> datetime.datetime:
    return SEED_TIME
