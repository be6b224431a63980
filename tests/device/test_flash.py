"""The flash survives reboots and crashes: either the old or the new complete state, never a mix."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.device.phone import Phone
from phone.device.flash import FlashStore, FlashStoreError
from phone.firmware.machine import Flash
from phone.catalogue import get_model
from phone.firmware.trust import CachedCertificate

TESTS = Path(__file__).resolve().parents[1]


def test_a_new_state_folder_is_an_empty_flash(tmp_path):
    assert FlashStore(tmp_path / "phone").load() == Flash()


def test_flash_round_trips_through_the_state_folder(tmp_path):
    cluster = MiniCluster(mixed_mode=True)
    store = FlashStore(tmp_path)
    flash = Flash(ctl=cluster.ctl(), itl=cluster.itl(), config=b"<device/>", config_name="SEP0.cnf.xml",
                  tvs_cache=(CachedCertificate(b"der", frozenset({0, 2}), 123.5),))
    assert flash.ctl is not None and flash.itl is not None
    store.save(flash, model="CP-8861")
    loaded = FlashStore(tmp_path).load()
    assert loaded == flash and loaded.ctl.data == cluster.ctl()
    assert store.meta()["model"] == "CP-8861"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == ["gen-00000001"]
    cluster.regenerate_tvs()
    store.save(Flash(itl=cluster.itl()))
    assert store.load() == Flash(itl=cluster.itl()) and store.load().itl.data == cluster.itl()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gen-")) == ["gen-00000002"]


def test_a_phone_keeps_its_flash_across_reboots(tmp_path):
    cluster = MiniCluster(mixed_mode=True)
    model = get_model("CP-8861")
    first = Phone(model, MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore(tmp_path))
    first.boot()
    again = Phone(model, MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore(tmp_path))
    assert again.machine.flash == first.machine.flash
    report = again.boot()
    assert {f.result for f in report.files if f.name.endswith(".tlv")} == {"unchanged"}
    assert (tmp_path / "CURRENT").read_text().startswith("gen-")


def test_erase_from_the_menu_is_persisted(tmp_path):
    cluster = MiniCluster(mixed_mode=True)
    phone = Phone(get_model("CP-7975"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore(tmp_path))
    phone.boot()
    phone.erase(ctl=True, itl=False)
    flash = FlashStore(tmp_path).load()
    assert flash.ctl is None and flash.itl is not None
    phone.factory_reset()
    assert FlashStore(tmp_path).load() == Flash()


def test_a_corrupt_marker_is_a_clear_error(tmp_path):
    (tmp_path / "CURRENT").write_text("../../etc")
    with pytest.raises(FlashStoreError, match="not a flash generation"):
        FlashStore(tmp_path).load()


_CHILD = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}]
    from minicluster import MAC, MiniCluster, TvsDouble, serve_files
    from phone.device.phone import Phone
    from phone.device.flash import FlashStore
    from phone.catalogue import get_model
    cluster = MiniCluster(mixed_mode=True)
    phone = Phone(get_model("CP-8861"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                  store=FlashStore({state!r}))
    phone.boot()
    import hashlib
    states = [dict(cluster.files())]
    cluster.regenerate_tvs()
    states.append(dict(cluster.files()))
    itl = "ITLSEP" + MAC + ".tlv"
    print(hashlib.sha1(states[0][itl]).hexdigest(), hashlib.sha1(states[1][itl]).hexdigest(),
          hashlib.sha1(cluster.ctl()).hexdigest(), flush=True)
    turn = 0
    while True:   # each boot installs the other ITL: an install is always under way
        turn += 1
        phone.fetch = serve_files(states[turn % 2])
        phone.boot()
""")


@pytest.mark.slow
def test_flash_survives_kill_9_during_installs(tmp_path):
    random_delay = random.Random(7)
    for round_number in range(8):
        state = tmp_path / f"phone{round_number}"
        child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(TESTS), state=str(state))],
                                 stdout=subprocess.PIPE, text=True)
        first_itl, second_itl, ctl = child.stdout.readline().split()
        time.sleep(random_delay.uniform(0.0, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        flash = FlashStore(state).load()
        assert hashlib.sha1(flash.itl.data).hexdigest() in (first_itl, second_itl), round_number
        assert hashlib.sha1(flash.ctl.data).hexdigest() == ctl
        assert flash.config is not None
