"""atheris fuzz target for the configuration reader (SEP<MAC>.cnf.xml, docs/tvs.md).

Any input must give a PhoneConfig (at most five TVS members, each on a TCP
port) or a ConfigFormatError whose message is one line; anything else is a
bug. Seed corpus: fuzz/corpus/config (configurations as CUCM writes them, and
files that reach the reader's refusals).

    .venv/bin/python fuzz/fuzz_config.py fuzz/corpus/config -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["phone", "defusedxml", "xml"]):
    from phone.wire.config import MAX_TVS_MEMBERS, PhoneConfig
    from phone.errors import ConfigFormatError


def test_one_input(data: bytes) -> None:
    try:
        config = PhoneConfig.from_bytes(data)
    except ConfigFormatError as error:
        if "\n" in str(error):
            raise AssertionError(f"a ConfigFormatError of more than one line: {error!r}") from None
        return
    if len(config.tvs_members) > MAX_TVS_MEMBERS:
        raise AssertionError(f"{len(config.tvs_members)} TVS members")
    for member in config.tvs_members:
        if not 0 < member.port < 65536 or not member.address:
            raise AssertionError(f"a TVS member no phone could use: {member!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
