"""phone.console.parse against the published logs of logs/real (SPEC 7, reference-logs.md)."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path

import attrs
import pytest

from phone.console.parse import DIALECTS, LogEntry, NotALogError, check, decode_log, iter_entries, parse

REAL = Path(__file__).resolve().parents[2] / "logs" / "real"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def entry(**fields: object) -> LogEntry:
    base = dict(dialect=None, seq=None, level=None, date=None, time=None, pid=None, tid=None, process=None)
    return LogEntry(**{**base, **fields})  # type: ignore[arg-type]


def without_lines(entries: list[LogEntry]) -> list[LogEntry]:
    return [attrs.evolve(e, line=0) for e in entries]


# --- exact fields, one representative line per dialect and variation -------------------


def test_java79xx_line_reads_seq_level_time_process_and_message():
    (e,) = parse("8074: NOT 23:00:22.335499 SECD: setupSocketToTvsProxy: Connected to TVS proxy server")
    assert e == entry(
        line=1, dialect="java79xx", seq=8074, level="NOT", time="23:00:22.335499", process="SECD",
        message="setupSocketToTvsProxy: Connected to TVS proxy server",
    )


def test_java79xx_variant_without_colon_two_spaces_and_dash_separator():
    (e,) = parse("7949 NOT 11:04:14.765155  CVM-appLaunchRequest: [thread=AWT-EventQueue-0] Creating")
    assert (e.dialect, e.seq, e.level, e.time, e.process) == ("java79xx", 7949, "NOT", "11:04:14.765155", "CVM")
    assert e.message == "appLaunchRequest: [thread=AWT-EventQueue-0] Creating"


def test_java79xx_secd_error_keeps_its_eror_prefix_in_the_message():
    (e,) = parse("5011: ERR 10:25:10.068387 SECD: EROR:clpState: SSL3 alert read:fatal:handshake failure")
    assert (e.level, e.process, e.message) == ("ERR", "SECD", "EROR:clpState: SSL3 alert read:fatal:handshake failure")


def test_enterprise_line_without_pid_tid_reads_date_and_process_with_pid_suffix():
    (e,) = parse(real("s1a-8861-ctl-download.log"))[1:]
    assert e == entry(
        line=5, dialect="enterprise", seq=3233, level="NOT", date="Nov 29", time="06:33:59.033132",
        process="dgetfile(870)",
        message="GETXXTP [GT870][src=CTLSEPB000B4BA0AEE.tlv][dest=/tmp/CTLFile.tlv][serv=][serv6=][sec=0]",
    )


def test_enterprise_line_with_pid_tid():
    (e,) = parse("3333 NOT Nov 29 06:34:00.411671 (346:1887) SECUREAPP-Hashes match... authentication successful.")
    assert e == entry(
        line=1, dialect="enterprise", seq=3333, level="NOT", date="Nov 29", time="06:34:00.411671",
        pid=346, tid=1887, process="SECUREAPP", message="Hashes match... authentication successful.",
    )


def test_enterprise_date_printed_with_two_spaces_reads_as_one_date():
    entries = parse(real("s1i-8861-itl-verified.log"))
    assert [e.date for e in entries] == ["Nov 29"] * 7
    assert entries[0].time == "06:34:00.499372" and entries[0].message.startswith("Hashes match")


def test_enterprise_message_keeps_quotes_and_inner_dashes():
    e = parse(real("s1b-8861-tvs-connect.log"))[25]
    assert (e.seq, e.level, e.process) == (3312, "ERR", "downd")
    assert e.message == 'SOCKET accept errno=4 "Interrupted system call"'


def test_cucm_tvs_debug_line_and_indented_debug_line():
    a, b = parse("18:01:05.333 | debug Accepted TCP connection from socket 0x00000012, fd = 8\n"
                 "17:21:51.831 |   debug tvsHandleQueryCertReq")
    assert a == entry(line=1, dialect="cucm-tvs", level="debug", time="18:01:05.333",
                      message="Accepted TCP connection from socket 0x00000012, fd = 8")
    assert b == entry(line=2, dialect="cucm-tvs", level="debug", time="17:21:51.831", message="tvsHandleQueryCertReq")


def test_cucm_tvs_entry_and_exit_markers_keep_their_arrow():
    a, b = parse("04:04:15.272 |-->CDefaultCertificateReader::GetIssuerName\n04:04:15.272 |<--debug")
    assert (a.level, a.message) == (None, "-->CDefaultCertificateReader::GetIssuerName")
    assert (b.level, b.message) == (None, "<--debug")


def test_cucm_tvs_line_without_level_word_reads_with_level_none():
    (e,) = parse("04:04:15.272 |   CDefaultCertificateReader::GetIssuerName got issuer name")
    assert (e.dialect, e.level, e.message) == ("cucm-tvs", None, "CDefaultCertificateReader::GetIssuerName got issuer name")


def test_hex_dump_header_and_decoded_phone_msg_belong_to_the_entry_before():
    entries = parse(real("s1e-cucm-tvs-query-req.log"))
    assert entries[0].message == "8:UNKNOWN:Incoming Phone Msg:\nHEX_DUMP: Len = 153:"
    assert entries[1].message == "57 01 03 00 00 00 03 e9"
    decoded = [e for e in entries if e.message.startswith("tvsPhoneDecodeMsg")]
    assert decoded[0].message == "tvsPhoneDecodeMsg -\nDecoded Phone Msg:"
    assert check(real("s1e-cucm-tvs-query-req.log")) == []


def test_tab_indented_line_continues_the_entry_before():
    text = ("4911 NOT Mar 09 18:32:38.805035 (339:1850) downd-DDGETTFTP.RESULT [_2_  File not found\n"
            "\t]\n"
            "4912 NOT Mar 09 18:32:38.832565 (339:1882) downd-AUTH.SRVR look up server - 1 - 0.0.0.0\n")
    first, second = parse(text)
    assert first.message == "DDGETTFTP.RESULT [_2_  File not found\n\t]"
    assert second.line == 3 and check(text) == []


def test_author_comments_are_skipped_by_parse_and_ignored_by_check():
    text = "// what follows is the phone\n ##### 18:32:35 || a note\n8074: NOT 23:00:22.335499 SECD: x\n"
    assert [e.seq for e in parse(text)] == [8074]
    assert check(text) == []


def test_line_no_dialect_reads_comes_back_raw_with_dialect_none():
    text = "8074: NOT 23:00:22.335499 SECD: x\nadmin: show ctl\n"
    assert parse(text)[1] == LogEntry.unread(2, "admin: show ctl")
    assert [(u.line, u.text) for u in check(text)] == [(2, "admin: show ctl")]


def test_entry_line_with_leading_spaces_still_reads():
    (e,) = parse(" 4982 NOT Mar 09 18:32:41.378666 (1902:1902) GHTTP-hdr->HTTP/1.1 200 OK")
    assert (e.seq, e.process, e.message) == (4982, "GHTTP", "hdr->HTTP/1.1 200 OK")


def test_trailing_spaces_are_not_part_of_the_message():
    (_, e) = parse(real("s1h-8861-itl-download.log"))[1:3]
    assert e.message == "XXTP complete - status = 100"


# --- every reference line ---------------------------------------------------------------

REFERENCE_FILES = sorted(p.name for p in REAL.glob("*.log") if not p.name.startswith("seed-"))


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_every_reference_line_reads_in_a_dialect(name):
    text = real(name)
    assert check(text) == []
    entries = parse(text)
    assert entries and all(e.dialect in DIALECTS for e in entries)


@pytest.mark.parametrize("name", [n for n in REFERENCE_FILES if ".as-published" not in n and n.startswith("s")])
def test_one_entry_per_log_line_in_files_with_newlines(name):
    lines = [line for line in real(name).splitlines() if line.strip() and not line.startswith(("#####", "//"))]
    continuations = [line for line in lines if line.startswith(("HEX_DUMP", "Decoded Phone Msg"))]
    assert len(parse(real(name))) == len(lines) - len(continuations)


def test_phone_sequence_numbers_of_a_reference_excerpt_read_in_order():
    seqs = [e.seq for e in parse(real("s1b-8861-tvs-connect.log"))]
    assert seqs == list(range(3287, 3318))


# --- run-on lines -------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["s2-7975-tvs-etoken", "s3a-cucm-tvs-ctl-recache", "s3b-7975-tvs-regenerated"])
def test_run_on_line_splits_into_exactly_the_split_copy(stem):
    published = parse(real(f"{stem}.as-published.log"))
    split = parse(real(f"{stem}.split.log"))
    assert without_lines(published) == without_lines(split)
    assert {e.line for e in published} == {4}


def test_run_on_line_of_s2_has_its_twenty_entries_in_both_dialects():
    entries = parse(real("s2-7975-tvs-etoken.as-published.log"))
    assert [e.dialect for e in entries].count("java79xx") == 6
    assert [e.dialect for e in entries].count("cucm-tvs") == 14
    assert entries[1].message == "tvsReqFlushTvsCertCache: Sent Request to TVS proxy, len: 3708"


def test_number_inside_a_message_is_not_a_split_point():
    text = ("8090: NOT 23:00:22.602785 SECD: processTvsClntReq: Success reading the client TVS request, "
            "len : 3708 8091: NOT 23:00:22.603901 SECD: processTvsClntReq: TVS cache flush 2 ERR x 12:00 | y")
    a, b = parse(text)
    assert a.message.endswith("len : 3708") and b.seq == 8091
    assert b.message == "processTvsClntReq: TVS cache flush 2 ERR x 12:00 | y"


def test_url_in_a_run_on_message_is_not_a_comment():
    a, b = parse("1 NOT 10:00:00.000001 CVM-get http://10.0.0.1/x // note 2 NOT 10:00:00.000002 CVM-y")
    assert a.message == "get http://10.0.0.1/x" and b.message == "y"


def test_text_before_the_first_header_of_a_run_on_line_comes_back_raw():
    first, second = parse("admin: 8074: NOT 23:00:22.335499 SECD: x")
    assert first == LogEntry.unread(1, "admin:")
    assert second.seq == 8074


# --- wrapped web copies (the seed) --------------------------------------------------------


def normalized(entries: list[LogEntry]) -> list[tuple]:
    # The Japanese page differs from the English one in two spellings (CertificateDBCACHE,
    # one space less in "SAST Issuer Name  is"); compare case- and space-insensitively.
    return [(e.dialect, e.seq, e.level, e.time, e.process, " ".join(e.message.split()).casefold()) for e in entries]


def page_text(name: str) -> str:
    """A seed excerpt without our ##### header: the text as the page has it."""
    return "".join(line for line in real(name).splitlines(keepends=True) if not line.startswith("#####"))


@pytest.mark.parametrize(
    ("seed_files", "split_file"),
    [
        (["seed-s2-7975-phone-request", "seed-s2-cucm-tvs", "seed-s2-7975-phone-reply"],
         "s2-7975-tvs-etoken.split.log"),
        (["seed-s3a-cucm-tvs-ctl-recache"], "s3a-cucm-tvs-ctl-recache.split.log"),
        # The page cut S3.b's reply into two code blocks in the middle of entry 2798.
        (["seed-s3b-7975-phone-request", "seed-s3b-cucm-tvs", "seed-s3b-7975-phone-reply.part1",
          "seed-s3b-7975-phone-reply.part2"], "s3b-7975-tvs-regenerated.split.log"),
    ],
)
def test_unwrap_reads_the_seed_wrapped_copy_as_the_split_copy(seed_files, split_file):
    joined = "".join(page_text(f"{name}.wrapped.log") for name in seed_files)
    assert normalized(parse(joined, unwrap=True)) == normalized(parse(real(split_file)))


def test_without_unwrap_a_wrapped_fragment_is_reported_with_the_entry_it_continues():
    text = real("seed-s2-7975-phone-request.wrapped.log")
    assert parse(text)[-1] == LogEntry.unread(6, "len: 3708")
    (unread,) = check(text)
    assert (unread.line, unread.wrapped_from) == (6, 5)
    assert check(text, unwrap=True) == []


def test_unwrap_never_joins_across_an_author_comment():
    text = "8074: NOT 23:00:22.335499 SECD: x\n// comment\nrest of something\n"
    assert parse(text, unwrap=True)[-1] == LogEntry.unread(3, "rest of something")


# --- bad input ----------------------------------------------------------------------------


def test_binary_data_is_refused_with_its_offset():
    with pytest.raises(NotALogError, match=r"binary data \(NUL byte at offset 3\)"):
        decode_log(b"abc\x00def", "x.log")


def test_bytes_that_are_not_utf8_read_as_replacement_characters():
    assert parse(decode_log(b"18:01:06.346 | debug ReasonInfo : 0\xef\xbf0\x82"))[0].message == "ReasonInfo : 0\ufffd0\ufffd"


def test_empty_and_blank_input_have_no_entries():
    assert parse("") == [] and parse("\n \n\t\n") == [] and check("  \n") == []


def test_crlf_line_endings_read_like_lf():
    assert parse("8074: NOT 23:00:22.335499 SECD: x\r\n8075: NOT 23:00:22.336918 SECD: y\r\n")[1].message == "y"


# -- scale: linear and streaming ----------------------------------------------------------
# Not timed: each input is large enough that the former quadratic or cubic code would run
# for minutes and hit the per-test timeout, while the linear code takes a few seconds.


@pytest.mark.timeout(90)
def test_two_million_continuation_lines_are_joined_in_linear_time():
    # Each continuation line used to copy the whole message so far: 500,000 lines took 11.7 s,
    # two million would take over three minutes.
    count = 2_000_000
    lines = itertools.chain(["3333 NOT Nov 29 06:34:00.411671 downd-results:"], itertools.repeat("\tx", count))
    (entry,) = iter_entries(lines)
    assert entry.message.count("\n") == count


def test_memory_for_a_newline_free_log_stays_a_small_multiple_of_its_size():
    line = " ".join(f"{n} NOT 10:00:00.000000 SECD: event {n}" for n in range(5_000))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for entry in iter_entries([line]):
            json.dumps(entry.to_dict())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(line), (peak, len(line))


# --- CUCM SDL/SDI traces and Jabber (CSF) logs ------------------------------------------


def test_a_cucm_sdl_run_on_page_reads_as_its_split_copy():
    published = parse(real("cucm-sdl-211304-invalid-x509-name.as-published.log"))
    split = parse(real("cucm-sdl-211304-invalid-x509-name.split.log"))
    assert without_lines(published) == without_lines(split)
    assert [(e.dialect, e.seq, e.level, e.time) for e in split] == [
        ("cucm-sdl", 8080021, "AppInfo", "16:31:15.937")] * 3 + [("cucm-sdl", 8080021, "AlarmErr", "16:31:15.938")]
    assert split[0].message.startswith("SIPStationD(18400) - validTLSConnection:TLS InvalidX509NameInCertificate")
    assert split[3].message.startswith("AlarmClass: CallManager, AlarmName: ConnectionFailure")
    assert split[2].process is None and split[2].pid is None


def test_jabber_lines_read_with_and_without_a_date_and_keep_multi_line_sip_messages():
    entries = parse(real("jabber-215572-sip-oauth-register.log"))
    assert check(real("jabber-215572-sip-oauth-register.log")) == []
    assert {e.dialect for e in entries} == {"jabber"} and len(entries) == 7
    first, third = entries[0], entries[2]
    assert (first.date, first.time, first.level, first.tid, first.process) == (
        "2020-03-30", "13:03:18,278", "DEBUG", 0x12D8, "csf.ecc")
    assert first.message == "fetchDeviceConfig() retrieved config for CSFrado"
    assert (third.date, third.time, third.level, third.tid) == (None, "13:03:19,013", "INFO", 0x2484)
    challenge = entries[5].message.splitlines()
    assert challenge[0] == "sipio-recv<--- SIP/2.0 407 Proxy Authentication Required"
    assert challenge[-1] == "Content-Length: 0" and "CSeq: 2270 REGISTER" in challenge
    assert entries[6].message.splitlines()[-1] == "Expires: 120"


def test_a_jabber_page_that_lost_its_newlines_and_its_timestamps_splits_per_entry():
    text = ("DEBUG [0x00000dd0] [ents\\ecc\\src\\config\\PhoneConfig.cpp(861)] [csf.ecc] "
            "[csf::ecc::SoftphoneConfig::parseOutConfigurationFileName] - Detected ConfigurationFile=a.xml "
            "DEBUG [0x00001bc8] [pters\\config\\ConfigStoreManager.cpp(169)] [ConfigService-ConfigStoreManager] "
            "[CSFUnified::ConfigStoreManager::x] - second")
    entries = parse(text)
    assert [(e.dialect, e.tid, e.process, e.message, e.time) for e in entries] == [
        ("jabber", 0xDD0, "csf.ecc", "Detected ConfigurationFile=a.xml", None),
        ("jabber", 0x1BC8, "ConfigService-ConfigStoreManager", "second", None)]


def test_a_multi_line_sdl_message_continues_until_the_next_header():
    text = ("00055605.002 |10:39:20.389 |AppInfo  |SIPTcp - wait_SdlReadRsp: Incoming SIP TCP message from "
            "192.0.2.64 on port 49525 index 23320 with 1675 bytes:\n[86118989,NET]\nREGISTER sip:cucm SIP/2.0\n"
            "Via: SIP/2.0/TLS 192.0.2.64:49525\n"
            "00055606.000 |10:39:20.390 |SdlSig   |SIPRegisterInd |wait |SIPHandler(1,100,72,1)\n")
    first, second = parse(text)
    assert first.message.splitlines()[1:] == ["[86118989,NET]", "REGISTER sip:cucm SIP/2.0",
                                              "Via: SIP/2.0/TLS 192.0.2.64:49525"]
    assert (second.seq, second.level, second.message) == (55606, "SdlSig", "SIPRegisterInd |wait |SIPHandler(1,100,72,1)")
    assert check(text) == []


def test_a_web_page_space_before_the_sdl_dot_still_reads():
    (entry,) = parse("82645958 .001 |13:08:46.297 |AppInfo  |SIPTcp - wait_SdlSPISignal: Outgoing SIP TCP message")
    assert (entry.dialect, entry.seq) == ("cucm-sdl", 82645958)


@pytest.mark.parametrize("line, pid, tid, process, message", [
    ("1204 NOT Mar 02 10:11:12.123456 (318-905) SECUREAPP-Hashes match", 318, 905, "SECUREAPP", "Hashes match"),
    ("1204 NOT Mar 02 10:11:12.123456 (318:905) SECUREAPP: -Hashes match", 318, 905, "SECUREAPP", "Hashes match"),
    ("1204 ERR Mar 02 10:11:12.123456 (318-905) SECUREAPP: -check failed", 318, 905, "SECUREAPP", "check failed"),
])
def test_enterprise_reads_pid_dash_tid_and_the_colon_dash_separator(line, pid, tid, process, message):
    (entry,) = parse(line)
    assert (entry.dialect, entry.pid, entry.tid, entry.process, entry.message) == (
        "enterprise", pid, tid, process, message)


def test_the_log_table_prints_a_jabber_thread_in_hex(tmp_path, capsys):
    from phone.cli import main

    log = tmp_path / "jabber.log"
    log.write_text("2020-03-30 13:03:18,278 DEBUG [0x000012d8] [a.cpp(1)] [csf.ecc] [f] - hello\n")
    assert main(["logs", "parse", str(log)]) == 0
    assert "0x000012d8" in capsys.readouterr().out
