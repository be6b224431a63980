"""The dgetfile process ids an enterprise console shows are the console's business, not the machine's."""

from __future__ import annotations

import datetime

import pytest

from phone.catalogue import get_model
from phone.console.phone import PhoneConsole, dgetfile_pid
from phone.firmware.machine import Log

MAC = "B000B4BA0AEE"


@pytest.mark.parametrize("name, pid", [
    (f"CTLSEP{MAC}.tlv", 870), (f"ITLSEP{MAC}.tlv", 877), ("ITLFile.tlv", 878),
    (f"SEP{MAC}.cnf.xml.sgn", 881), (f"SEP{MAC}.cnf.xml", 882),
])
def test_each_download_has_its_dgetfile_process(name: str, pid: int) -> None:
    assert dgetfile_pid(name) == pid


def test_the_enterprise_console_writes_the_process_id_the_machine_does_not_send() -> None:
    console = PhoneConsole(get_model("CP-8861"), lambda: datetime.datetime(2024, 3, 9, 18, 32, 40))
    console.write(Log("download.start", {"name": f"CTLSEP{MAC}.tlv", "store_as": "CTLFile.tlv"}))
    assert any("dgetfile(870)" in line and "[GT870][src=CTLSEP" in line for line in console.lines)
