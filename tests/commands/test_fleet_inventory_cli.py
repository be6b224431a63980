"""`fleet run --inventory`, `--phones MODEL@LOAD=N`, `--erase-list` and `scenario run --inventory`
(docs/fleet.md, "Inventories" and "Erase list")."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from phone.cli import main
from phone.fleet import db as results_db

REHEARSAL = "testbed:regenerate-callmanager"

# A Bulk Administration "Export Phones - All Details" file as CUCM writes it: a byte-order
# mark, CRLF, quoted fields with commas and quotes, rows that are not emulated phones.
EXPORT = "\ufeff" + "\r\n".join([
    "Device Name,Description,Device Pool,Phone Load Name,Device Type,Device Security Profile,Device Protocol",
    ('SEP00112233AA01,"Reception, ""east""",DP_HQ,sip88xx.12-8-1-0001-455,Cisco 8861,'
     "Cisco 8861 - Standard SIP Non-Secure Profile,SIP"),
    "SEP00112233AA02,Lobby,DP_HQ,,Cisco 7940,,SCCP",
    "CSFJDOE,Jabber,DP_HQ,,Cisco Unified Client Services Framework,,SIP",
    "SEP00112233AA03,Warehouse,DP_HQ,SCCP75.9-4-2SR3-1S,Cisco 7975,,SCCP",
    "SEP707070707070,Door,DP_HQ,,Third-party SIP Device (Advanced),,SIP",
    "CSFASMITH,Jabber,DP_HQ,,Cisco Unified Client Services Framework,,SIP",
]) + "\r\n"


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(EXPORT, encoding="utf-8", newline="")
    return path


def test_an_export_becomes_a_fleet_of_its_own_devices_and_loads_with_skipped_rows_counted(tmp_path, export,
                                                                                         capsys):
    db = tmp_path / "r.sqlite"
    erase = tmp_path / "erase.csv"
    assert main(["fleet", "run", REHEARSAL, "--inventory", str(export), "--workers", "0", "--key-size", "1024",
                 "--json", "--db", str(db), "--erase-list", str(erase)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["phones"] == 3 and document["boots"] == 9
    assert document["skipped"] == {"Cisco Unified Client Services Framework": 2,
                                   "Third-party SIP Device (Advanced)": 1}
    assert document["by_model"]["CP-7940"]["erase_needed"] == 1
    rows = sqlite3.connect(db).execute("SELECT mac, model, load FROM boots WHERE step = 'regenerate-callmanager' "
                                       "ORDER BY mac").fetchall()
    assert rows == [("00112233AA01", "CP-8861", "sip88xx.12-8-1-0001-455"), ("00112233AA02", "CP-7940", None),
                    ("00112233AA03", "CP-7975", "SCCP75.9-4-2SR3-1S")]
    # Only the 7940 refuses the regenerated CallManager's CTL: it is the one to walk to.
    listed = list(csv.reader(io.StringIO(erase.read_text(encoding="utf-8"))))
    assert listed[0] == ["device", "model", "load", "reason"]
    assert [row[:3] for row in listed[1:]] == [["SEP00112233AA02", "CP-7940", ""]]
    assert listed[1][3].startswith("no-tvs: ") and "cannot ask TVS" in listed[1][3]
    # The report writes the same list again from the database, and still counts the skipped rows.
    again = tmp_path / "again.csv"
    assert main(["fleet", "report", str(db), "--erase-list", str(again), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"]["Third-party SIP Device (Advanced)"] == 1
    assert again.read_text(encoding="utf-8") == erase.read_text(encoding="utf-8")


def test_phones_can_name_their_load_and_it_is_stored_per_phone(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert main(["fleet", "run", REHEARSAL, "--phones", "CP-8861@sip88xx.12-8-1-0001-455=2,CP-8861=1",
                 "--workers", "0", "--key-size", "1024", "--json", "--db", str(db)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "skipped" not in document or document["skipped"] == {}
    connection = sqlite3.connect(db)
    loads = connection.execute("SELECT mac, load FROM boots WHERE step_index = 0 ORDER BY mac").fetchall()
    assert loads == [("02C15C000000", "sip88xx.12-8-1-0001-455"), ("02C15C000001", "sip88xx.12-8-1-0001-455"),
                     ("02C15C000002", None)]
    assert connection.execute("SELECT phones FROM runs").fetchone()[0] == \
        "CP-8861@sip88xx.12-8-1-0001-455=2,CP-8861=1"


@pytest.mark.parametrize(("text", "message"), [
    ("device,model,load\nSEP00112233AA01,CP-8861,sip88xx.12-8-1-0001-455\nSEP00112233AA02,CP-8861,latest\n",
     "row 3: load 'latest'"),
    ("device,model\nSEP00112233AA01,CP-8861\n00112233AA02,CP-8861\n", "row 3: device name '00112233AA02'"),
    ("device,model\nCSFJDOE,Jabber-CSF\n", "no emulated phone in the file (1 rows skipped"),
])
def test_a_bad_inventory_is_one_line_naming_the_row_before_any_lab_is_built(tmp_path, capsys, text, message):
    path = tmp_path / "phones.csv"
    path.write_text(text, encoding="utf-8")
    work = tmp_path / "work"
    assert main(["fleet", "run", "regenerate-callmanager", "--inventory", str(path), "--work", str(work)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not work.exists()


def test_an_inventory_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "phones.csv"
    path.write_bytes(b"device,model\nSEP00112233AA01,CP-8861\nSEP00112233AA02,CP-\xe9\n")
    assert main(["fleet", "run", REHEARSAL, "--inventory", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "row 3: not UTF-8" in err


def test_inventory_and_phones_are_mutually_exclusive(export, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fleet", "run", REHEARSAL, "--inventory", str(export), "--phones", "CP-8861=1"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_a_database_written_before_loads_were_recorded_still_reports_and_merges(tmp_path, capsys):
    old = tmp_path / "old.sqlite"
    connection = sqlite3.connect(old)
    connection.executescript(results_db.SCHEMA.replace(
        "    load TEXT,                     -- the phone's firmware load; NULL: the model's default\n", "").replace(
        "    lsc_installed INTEGER NOT NULL DEFAULT 0,  -- CAPF installed an LSC in this boot\n", ""))
    connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(results_db.SCHEMA_VERSION),))
    connection.execute("INSERT INTO runs (id, started, finished, phones, phone_count, shard, mac_prefix, workers, "
                       "concurrency, jitter, target, params) VALUES (1, 1.0, 2.0, 'CP-7940=1', 1, '1/1', '02C15C', "
                       "1, 16, 0, 't', '{\"counted_step\": \"s\"}')")
    connection.execute("INSERT INTO steps VALUES (1, 0, 's', 1.0, 2.0, 1)")
    connection.execute("INSERT INTO boots VALUES (1, 0, 's', 0, '02C15C000000', 'CP-7940', 'rejected', 1, 0, "
                       "'no-tvs', '[]', NULL, 1.0, 0.1, 0, 0.2, 2, 0)")
    connection.commit()
    connection.close()
    assert "load" not in [row[1] for row in sqlite3.connect(old).execute("PRAGMA table_info(boots)")]
    erase = tmp_path / "erase.csv"
    assert main(["fleet", "report", str(old), "--json", "--erase-list", str(erase)]) == 0
    assert json.loads(capsys.readouterr().out)["by_model"]["CP-7940"]["erase_needed"] == 1
    assert erase.read_text().splitlines()[1].startswith('SEP02C15C000000,CP-7940,,"no-tvs: ')
    assert main(["fleet", "merge", str(old), "--out", str(tmp_path / "merged.sqlite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phones"] == 1


def test_scenario_run_takes_an_inventory_and_counts_what_it_skipped(tmp_path, capsys):
    path = tmp_path / "phones.csv"
    path.write_text("device,model,load\nSEP00112233AA01,CP-8861,sip88xx.12-8-1-0001-455\n"
                    "SEP00112233AA02,CP-7940,\nCSFJDOE,Jabber-CSF,\n", encoding="utf-8")
    code = main(["scenario", "run", "regenerate-callmanager", "--inventory", str(path), "--key-size", "1024",
                 "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["phones"] == {"00112233AA01": "CP-8861", "00112233AA02": "CP-7940"}
    assert document["skipped"] == {"Jabber-CSF": 1}


def test_the_erase_list_of_a_run_appended_to_a_database_names_that_runs_phones_only(tmp_path, export, capsys):
    db = tmp_path / "r.sqlite"
    assert main(["fleet", "run", REHEARSAL, "--phones", "CP-7940=1", "--workers", "0", "--key-size", "1024",
                 "--db", str(db)]) == 0
    erase = tmp_path / "erase.csv"
    assert main(["fleet", "run", REHEARSAL, "--inventory", str(export), "--workers", "0", "--key-size", "1024",
                 "--db", str(db), "--erase-list", str(erase)]) == 0
    assert [line.split(",")[0] for line in erase.read_text().splitlines()] == ["device", "SEP00112233AA02"]
    # The report of the whole database lists every run's phones.
    assert main(["fleet", "report", str(db), "--erase-list", str(erase)]) == 0
    assert [line.split(",")[0] for line in erase.read_text().splitlines()] == ["device", "SEP00112233AA02",
                                                                               "SEP02C15C000000"]
    capsys.readouterr()


def test_mac_prefix_does_not_apply_to_an_inventory(export, capsys):
    assert main(["fleet", "run", REHEARSAL, "--inventory", str(export), "--mac-prefix", "0AC15C"]) == 2
    assert "keep their own MACs" in capsys.readouterr().err


def test_shards_of_an_inventory_split_its_rows_and_merge_into_the_whole(tmp_path, export, capsys):
    for k in (1, 2):
        assert main(["fleet", "run", REHEARSAL, "--inventory", str(export), "--shard", f"{k}/2", "--workers", "0",
                     "--key-size", "1024", "--db", str(tmp_path / f"s{k}.sqlite")]) == 0
    macs = [{row[0] for row in sqlite3.connect(tmp_path / f"s{k}.sqlite").execute("SELECT mac FROM boots")}
            for k in (1, 2)]
    assert macs == [{"00112233AA01", "00112233AA03"}, {"00112233AA02"}]
    capsys.readouterr()
    assert main(["fleet", "merge", str(tmp_path / "s1.sqlite"), str(tmp_path / "s2.sqlite"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["phones"] == 3 and document["by_model"]["CP-7940"]["erase_needed"] == 1
    # Each shard read the whole file: its skipped rows are counted once.
    assert document["skipped"] == {"Cisco Unified Client Services Framework": 2,
                                   "Third-party SIP Device (Advanced)": 1}
