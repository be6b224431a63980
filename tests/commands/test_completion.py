"""`phonetrust completion bash|zsh|fish`: scripts written from the parser tree, run in a real bash."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from phone.cli import build_parser, main


def script(capsys, shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def every_command_path(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name)
                yield from every_command_path(child, (*path, name))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_names_every_subcommand(shell, capsys):
    text = script(capsys, shell)
    missing = [" ".join(path) for path in every_command_path(build_parser())
               if f"phonetrust {' '.join(path)}" not in text]
    assert missing == []


def complete(script_text: str, *words: str) -> list[str]:
    """What bash offers after ``words`` (the last one being the word under the cursor)."""
    program = (script_text + '\nCOMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()\n'
               '_phonetrust; printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "-c", program, "bash", "phonetrust", *words], capture_output=True, text=True,
                          check=True, timeout=30)
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_bash_completes_commands_options_and_choices(capsys):
    text = script(capsys, "bash")
    assert complete(text, "") == [path[0] for path in every_command_path(build_parser()) if len(path) == 1]
    assert {"show", "phone", "tvs", "lab", "scenario", "fleet", "completion"} <= set(complete(text, ""))
    assert complete(text, "tvs", "") == ["serve", "add", "list", "delete", "query"]
    assert complete(text, "tvs", "query", "--tls", "") == ["1.0", "1.1", "1.2", "1.3"]
    assert complete(text, "lab", "show", "") == ["ctl", "itl"]
    assert complete(text, "phone", "boot", "--dead") == ["--deadline"]
    assert complete(text, "phone", "boot", "--state", "") == []  # a folder: the shell's own completion
    assert complete(text, "show", "") == []  # a file


def test_fish_completes_option_choices_under_their_command(capsys):
    text = script(capsys, "fish")
    assert ("complete -c phonetrust -n \"__phonetrust_at 'phonetrust tvs query'\" -l tls -x -a '1.0 1.1 1.2 1.3'"
            in text)


def test_an_unknown_shell_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["completion", "tcsh"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
