"""`phonetrust completion bash|zsh|fish`: print a shell completion script.

bash: ``source <(phonetrust completion bash)`` (or save it in
~/.local/share/bash-completion/completions/phonetrust); zsh: ``source
<(phonetrust completion zsh)``; fish: ``phonetrust completion fish >
~/.config/fish/completions/phonetrust.fish``.
"""

from __future__ import annotations

import argparse

from phone.completion import SHELLS, completion_script


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "completion", help="print a shell completion script (bash, zsh, fish)",
        description="Print a completion script for SHELL on stdout. bash: source <(phonetrust completion bash); "
        "zsh: source <(phonetrust completion zsh); fish: phonetrust completion fish > "
        "~/.config/fish/completions/phonetrust.fish")
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from phone.cli import build_parser  # the whole tree, this command included

    print(completion_script(args.shell, build_parser()), end="")
    return 0
