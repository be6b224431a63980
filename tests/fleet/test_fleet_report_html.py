"""The fleet's HTML report: run facts, expected vs actual per model, and the per-phone table,
read back with the standard library's HTML parser (what a browser would show)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import phone
from phone.fleet.per_phone import PhoneLine, cucm_releases_of, reason_in_words
from phone.fleet.report import RunAbout, expectation_rows, html_report
from phone.fleet.summary import FleetSummary, StepSummary, count


class _Tables(HTMLParser):
    """Every table's rows as lists of cell texts, by table id; every script's text; the whole page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_script = False
        self._anonymous = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._anonymous += 1
            self._table = dict(attrs).get("id") or f"table-{self._anonymous}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _summary(lines: list[PhoneLine]) -> FleetSummary:
    by_model = count((line.model, line.outcome, line.erase_needed, False) for line in lines)
    step = StepSummary(0, "regenerate", len(lines), 1.0, by_model)
    return FleetSummary(len(lines), len(lines), 1.0, by_model, steps=(step,), counted="regenerate")


LINES = [
    PhoneLine("SEP00112233AA01", "CP-8861", "sip88xx.12-8-1-0001-455", "accepted", False, ""),
    PhoneLine("SEP00112233AA02", "CP-7940", "", "rejected", True, reason_in_words("no-tvs")),
    PhoneLine("SEP00112233AA03", "CP-7975", "", "failed", False, '<script>alert("x")</script> & <b>bold</b>'),
]


def parsed(**kwargs) -> _Tables:
    page = html_report(_summary(LINES), [("regenerate", 0.5)], phones=LINES, **kwargs)
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return parser


def test_the_per_phone_table_lists_each_phone_with_its_load_outcome_and_reason():
    table = parsed().tables["phones"]
    assert table[0] == ["device", "model", "load", "outcome", "reason", "CUCM releases"]
    assert table[1] == ["SEP00112233AA01", "CP-8861", "sip88xx.12-8-1-0001-455", "accepted", "", ""]
    assert table[2][:4] == ["SEP00112233AA02", "CP-7940", "", "rejected"]
    assert table[2][4].startswith("no-tvs: the signer is unknown")
    assert len(table) == 1 + len(LINES)


def test_the_per_phone_table_says_which_cucm_releases_support_each_load_and_who_is_unsupported():
    lines = [PhoneLine("SEP00112233AA04", "CP-7970", "", "unsupported", False,
                       reason_in_words("cucm-unsupported", "CP-7970 is not supported on CUCM 12.5"),
                       cucm_releases_of("CP-7970", None)),
             PhoneLine("SEP00112233AA05", "CP-9861", "", "accepted", False, "", cucm_releases_of("CP-9861", None))]
    page = _Tables()
    page.feed(html_report(_summary(lines), [("regenerate", 0.5)], phones=lines))
    rows = page.tables["phones"][1:]
    assert rows[0][3:] == ["unsupported", "cucm-unsupported: CP-7970 is not supported on CUCM 12.5", "up to 11.5"]
    assert rows[1][5] == "14 and later"
    assert cucm_releases_of("CP-UNKNOWN", None) == "" and cucm_releases_of("CP-8861", "nonsense") == ""


def test_every_text_is_escaped_so_a_phone_error_cannot_become_markup():
    page = parsed(about=RunAbout(scenario='a <i>scenario</i> & "title"', steps=(("step<1>", "t & u"),)))
    # Read back as text, exactly as written; the page's only script is its own.
    assert page.tables["phones"][3][4] == '<script>alert("x")</script> & <b>bold</b>'
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]
    assert 'Scenario: a <i>scenario</i> & "title"' in "".join(page.text)
    assert "step<1>: t & u" in "".join(page.text)


def test_the_page_says_when_which_version_and_which_scenario_steps():
    about = RunAbout(date="2026-12-06 06:00:00 UTC", scenario="regenerate-callmanager: Certificate regeneration",
                     steps=(("first-boot", "Phones boot"), ("regenerate", "Regenerate CallManager")),
                     counted="regenerate")
    text = "".join(parsed(about=about).text)
    assert f"Run 2026-12-06 06:00:00 UTC; phonetrust {phone.__version__}." in text
    assert "first-boot: Phones boot" in text and "regenerate: Regenerate CallManager (counted)" in text


def test_the_table_can_be_searched_and_sorted_in_the_page_itself():
    page = parsed()
    script = page.scripts[0]
    # Filtering hides rows rather than rebuilding them; headers sort.
    assert 'getElementById("phone-search")' in script and ".hidden" in script
    assert 'addEventListener("click"' in script and "aria-sort" in script


def test_expected_vs_actual_per_model_says_whether_each_expectation_held():
    expected = {"CP-7940": {"outcome": "rejected", "erase_needed": True, "code": "no-tvs"},
                "CP-8861": {"outcome": "accepted"}, "CP-7975": {"outcome": "accepted"}}
    rows = expectation_rows(expected, LINES, codes={"SEP00112233AA02": "no-tvs"})
    assert [(model, held) for model, _, _, held in rows] == [("CP-7940", True), ("CP-8861", True),
                                                             ("CP-7975", False)]
    assert rows[0][1] == "outcome rejected, erase needed True, code no-tvs"
    assert rows[0][2] == "1 rejected; 1 need a hand erase"
    assert expectation_rows({"CP-7940": {"code": "tvs-timeout"}}, LINES, codes={"SEP00112233AA02": "no-tvs"})[0][3] \
        is False
    table = parsed(about=RunAbout(expected=expected), codes={"SEP00112233AA02": "no-tvs"}).tables
    shown = next(rows for rows in table.values() if rows and rows[0] == ["model", "expected", "actual", ""])
    assert shown[3] == ["CP-7975", "outcome accepted", "1 failed", "not held"]


# Just enough of a DOM to run the page's script on the parsed table: a search and two sorts.
_DOM = """
const rows = DATA.map(cells => ({cells: cells.map(text => ({textContent: text})), hidden: false, id: cells[0]}));
const body = {rows: rows.slice(), appendChild(fragment) { this.rows = fragment.items.slice(); }};
const on = {};
const heads = DATA[0].map((_, i) => ({a: {}, setAttribute(k, v) { this.a[k] = v; }, getAttribute(k) { return this.a[k]; },
  removeAttribute(k) { delete this.a[k]; }, addEventListener(e, f) { on["head" + i] = f; }}));
const search = {value: "", addEventListener(e, f) { on.search = f; }}, shown = {textContent: ""};
const table = {tBodies: [body], tHead: {rows: [{cells: heads}]}};
global.document = {getElementById: id => ({"phones": table, "phone-search": search, "phone-shown": shown})[id],
  createDocumentFragment: () => ({items: [], appendChild(row) { this.items.push(row); }})};
eval(SCRIPT);
search.value = "NO-TVS"; on.search();
const found = rows.filter(row => !row.hidden).map(row => row.id);
search.value = ""; on.search();
on.head3(); const ascending = body.rows.map(row => row.id);
on.head3(); const descending = body.rows.map(row => row.id);
console.log(JSON.stringify({found, shown: shown.textContent, ascending, descending}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_the_pages_script_filters_rows_by_any_cell_and_sorts_by_a_column_both_ways():
    import json

    page = parsed()
    data = page.tables["phones"][1:]
    program = f"const DATA = {json.dumps(data)}; const SCRIPT = {json.dumps(page.scripts[0])};" + _DOM
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=30, check=True).stdout
    result = json.loads(out)
    assert result["found"] == ["SEP00112233AA02"] and result["shown"] == 3   # all shown again after clearing
    # By outcome: accepted (AA01), failed (AA03), rejected (AA02); a second click reverses.
    assert result["ascending"] == ["SEP00112233AA01", "SEP00112233AA03", "SEP00112233AA02"]
    assert result["descending"] == ["SEP00112233AA02", "SEP00112233AA03", "SEP00112233AA01"]


def test_the_text_table_shows_unsupported_phones_only_when_there_are_some():
    import io

    from phone.fleet.report import print_table

    def header(lines):
        out = io.StringIO()
        print_table(_summary(lines), out, rich_output=False)
        return out.getvalue().splitlines()[1].split()

    assert "unsupported" not in header(LINES)
    unsupported = [PhoneLine("SEP00112233AA04", "CP-7970", "", "unsupported", False, "")]
    assert header(LINES + unsupported)[6] == "unsupported"
