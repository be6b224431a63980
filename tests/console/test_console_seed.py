"""The emulated phones' consoles: the seed's SECD lines on a 7975, S1's SECUREAPP lines on an 8861."""

from __future__ import annotations

import datetime
import re

from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.device.phone import Phone
from phone.console.parse import parse
from phone.catalogue import get_model

SEED_SECD = [
    "setupSocketToTvsProxy: Connected to TVS proxy server",
    "tvsReqFlushTvsCertCache: Sent Request to TVS proxy, len: 3708",
    "clpTvsInit: Client message received on TVS proxy socket",
    "processTvsClntReq: Success reading the client TVS request, len : 3708",
    "processTvsClntReq: TVS Certificate cache flush request received",
    "tvsFlushCertCache: Completed TVS Certificate cache flush request",
]


class Ticking:
    """A clock that moves 1.4 ms a reading, from the seed's 17:21:51."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2015, 3, 9, 17, 21, 51, 794615, tzinfo=datetime.timezone.utc)

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(microseconds=1406)
        return self.now


def regenerated_boot(model_name: str):
    cluster = MiniCluster(mixed_mode=True)
    clock = Ticking()
    model = get_model(model_name)
    phone = Phone(model, MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster), clock=clock)
    phone.boot()
    cluster.regenerate_callmanager()
    phone.fetch = serve_files(cluster.files())
    phone.console.lines.clear()
    phone.boot()
    return phone.console.lines


def test_7975_console_shows_the_seeds_six_secd_lines_for_the_regeneration():
    lines = regenerated_boot("CP-7975")
    entries = [e for e in parse("\n".join(lines)) if e.process == "SECD"]
    messages = [e.message for e in entries]
    positions = [messages.index(text) for text in SEED_SECD]
    assert positions == sorted(positions)  # in the seed's order
    for entry in entries:
        assert entry.dialect == "java79xx" and entry.level in ("NOT", "ERR", "WRN", "INF", "DEB")
    assert all(re.fullmatch(r"\d+: (NOT|ERR|WRN|INF|DEB) \d\d:\d\d:\d\d\.\d{6} \w+: .+", line) for line in lines)


def test_8861_console_shows_the_tvs_exchange_of_cisco_213407():
    lines = regenerated_boot("CP-8861")
    messages = [e.message for e in parse("\n".join(lines))]
    for text in [
        "Attempting connect to TVS server addr [127.0.0.1], mode [IPv4]",
        "SSL session setup Cert Verification - Role is = 21",
        "Sec SSL Connection - Handshake successful.",
        "TVS process request - processing TVS Query Certificate request.",
        "TVS process request - Successfully sent the TVS request to TVS server, bytes written : 153",
        "TVS Service receives 1480 bytes of data",
        "TVS added cert to TVS cache - expires in 24 hours",
        "Hashes match... authentication successful.",
        "AUTH: hdr ver 1.2 (knows only upto 1.1)",
        "updateFromFile: TL parse to table: CTL_SUCCESS",
        "TL file updated.",
    ]:
        assert text in messages, text


def test_every_line_an_emulated_phone_writes_parses_in_its_models_dialect():
    for model_name in ("CP-7975", "CP-7940", "CP-8861", "CP-7841", "CP-DX80", "CP-9971", "CP-6941"):
        lines = regenerated_boot(model_name)
        dialect = get_model(model_name).log_dialect
        assert lines, model_name
        for entry in parse("\n".join(lines)):
            assert entry.dialect == dialect, (model_name, entry)
