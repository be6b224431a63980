"""What users read cites Cisco documents or the project's own docs/, never files they do not have.

The README, docs/, logs/README.md, the bundled scenarios and models, and the command line's
sources and rendered --help texts must not point at the project's internal notes ("SPEC 4.2",
"SPEC.md", "DESIGN.md", "reference-logs") or at issue numbers: a user has none of them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from phone.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]

INTERNAL_REFERENCE = re.compile(
    r"\bSPEC(?:-[a-z]+)?(?:\s+(?:section\s+)?\d|\.md\b)"   # SPEC 4.2, SPEC section 3, SPEC.md, SPEC-secure.md
    r"|\bDESIGN\.md\b"
    r"|\breference-logs\b"
    r"|\bissue\s+#?\d",
    re.IGNORECASE,
)


def user_facing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "logs" / "README.md", ROOT / "phone" / "cli.py"]
    files += sorted((ROOT / "docs").glob("*.md"))
    files += sorted((ROOT / "phone" / "commands").glob("*.py"))
    files += sorted((ROOT / "scenarios").glob("*.toml"))
    files += sorted((ROOT / "models").glob("*.toml"))
    return files


def internal_references(text: str) -> list[str]:
    return [f"{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), start=1)
            if INTERNAL_REFERENCE.search(line)]


@pytest.mark.parametrize("path", user_facing_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_user_facing_file_cites_no_internal_document(path):
    assert internal_references(path.read_text(encoding="utf-8")) == []


def rendered_help(parser: argparse.ArgumentParser) -> str:
    """The --help of a parser and of every sub-command below it, as users see them."""
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                texts.append(rendered_help(subparser))
    return "\n".join(texts)


def test_command_line_help_cites_no_internal_document():
    assert internal_references(rendered_help(build_parser())) == []


@pytest.mark.parametrize("text", ["(SPEC 4.2)", "see SPEC.md", "DESIGN.md's contract", "SPEC section 3",
                                  "reference-logs S2", "GitHub issue 8", "issue 6's mix", "SPEC-secure.md"])
def test_the_check_catches_each_kind_of_internal_reference(text):
    assert internal_references(f"a line with {text} in it")


@pytest.mark.parametrize("text", ["Cisco TAC 118893", "docs/phone.md, \"Acceptance rules\"", "--seed N",
                                  "the SPECIAL case", "an issue with 2 phones"])
def test_the_check_lets_real_citations_and_ordinary_words_through(text):
    assert not internal_references(text)
