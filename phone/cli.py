"""The ``phonetrust`` command.

Each command group lives in its own module under ``phone.commands`` and adds
itself through ``register(subparsers)``; this module only wires them together
and owns the one rule every command shares: bad input ends in one line on
stderr and a non-zero exit, never a traceback (set PHONETRUST_DEBUG=1 to see
one anyway).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from phone import __version__, commands
from phone.errors import PhonetrustError

#: Order in which command groups appear in ``--help``; modules not listed
#: here follow in alphabetical order.
_PREFERRED_ORDER = ("demo", "show", "phone", "tvs", "lab", "scenario", "fleet", "logs")


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (try '{self.prog} --help')\n")


def _command_modules() -> list[str]:
    found = sorted(info.name for info in pkgutil.iter_modules(commands.__path__))
    ranked = [name for name in _PREFERRED_ORDER if name in found]
    return ranked + [name for name in found if name not in ranked]


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="phonetrust",
        description="Emulate the trust side of Cisco IP phones (CTL, ITL, TVS) against CUCM.",
    )
    parser.add_argument("--version", action="version", version=f"phonetrust {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    subparsers.required = True
    for name in _command_modules():
        module = importlib.import_module(f"phone.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PhonetrustError as error:
        print(f"phonetrust: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("phonetrust: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `phonetrust show x | head` closes our stdout early; that is not an error.
        sys.stderr.close()
        return 0
    except OSError as error:
        if os.environ.get("PHONETRUST_DEBUG"):
            raise
        where = f": {error.filename}" if getattr(error, "filename", None) else ""
        print(f"phonetrust: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - the promise is: never a traceback
        if os.environ.get("PHONETRUST_DEBUG"):
            raise
        print(f"phonetrust: internal error: {type(error).__name__}: {error} "
              "(set PHONETRUST_DEBUG=1 for details)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
