"""Entry point of ``mbct-bayes``: builds the parser from each area's ``register`` and runs it.

Errors the user can fix (bad data, bad spec, bad paths) end as one line on stderr and exit
code 2, never a traceback. A fit that fails its diagnostics under ``--strict`` exits 3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from mbct_bayes._version import __version__
from mbct_bayes.errors import DataError, one_line

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3

# Each module is named after its command and defines ``register(subparsers)``; the order here is
# the order of commands in ``--help``. A module that fails to import is an error, not a
# skip: a command that silently vanished would look like a typo to the user and a pass to the tests.
AREAS = (
    "simulate", "validate", "score", "reliability", "fit", "summary", "predict", "demo",
    "plan", "forecast", "score_forecasts", "evaluate", "loo", "check", "power", "report", "planner",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse's own code too)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``mbct-bayes`` parser with every available subcommand."""
    parser = _Parser(
        prog="mbct-bayes",
        description="Bayesian implementation science for MBCT services (PARIHS: SI = f(E, C, F)).",
    )
    parser.add_argument("--version", action="version", version=f"mbct-bayes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for area in AREAS:
        importlib.import_module(f"mbct_bayes.cli.{area}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except DataError as err:
        print(f"mbct-bayes {args.command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, UnicodeError) as err:
        print(f"mbct-bayes {args.command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mbct-bayes {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
