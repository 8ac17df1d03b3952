"""``summary``: the posterior summary of a saved fit."""

from __future__ import annotations

import argparse

from mbct_bayes.io import dumps_json
from mbct_bayes.model.fit import load_fit


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``summary`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser("summary", help="posterior summary of a saved fit")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args: argparse.Namespace) -> int:
    result = load_fit(args.fit)
    print(dumps_json(result.summary()) if args.json else result.summary_text())
    return 0
