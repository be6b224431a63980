"""Every argument of every command says in --help what it is."""

from __future__ import annotations

import argparse

import pytest

from phone.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def test_every_argument_of_every_command_has_a_description():
    undescribed = [f"phonetrust {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
                   for path, parser in commands(build_parser()) for action in parser._actions
                   if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert undescribed == []


@pytest.mark.parametrize("argv, described", [
    (["fleet", "report", "--help"], ["the results database of `fleet run --db`", "print the summary as JSON",
                                     "also write a self-contained HTML report"]),
    (["phone", "show", "--help"], ["the phone's flash folder", "print one JSON object"]),
])
def test_help_describes_the_arguments_users_asked_about(argv, described, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    text = " ".join(capsys.readouterr().out.split())
    for words in described:
        assert words in text
