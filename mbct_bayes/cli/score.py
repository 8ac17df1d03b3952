"""``score``: survey items -> E, C, F scores per respondent or per site."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mbct_bayes.cli._common import add_survey_args, survey_columns
from mbct_bayes.io import check_output_path, dumps_json, write_table
from mbct_bayes.survey.scoring import CONSTRUCTS, read_codebook, read_responses, score_responses, site_scores


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "score",
        help="score survey items into E, C, F (respondent or site level)",
        description="Reverse-key items, average them into subscales (at least half the asked "
        "items answered), subscales into E, C, F per respondent, and respondents into sites. "
        "Items a role is not asked are missing by design and counted apart from non-response.",
    )
    add_survey_args(p)
    p.add_argument("--out", required=True, metavar="SCORES", help="output CSV (or .parquet)")
    p.add_argument(
        "--level",
        choices=("respondent", "site"),
        default="respondent",
        help="respondent scores (default) or site means with the number of respondents",
    )
    p.add_argument("--sd", action="store_true", help="site level: add each scale's SD in the site")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    codebook = read_codebook(args.codebook)
    responses = read_responses(args.responses, codebook, columns=survey_columns(args))
    scores = score_responses(responses, codebook, min_answered=args.min_answered)
    table = site_scores(scores, sd=args.sd) if args.level == "site" else scores
    write_table(out, table)
    summary: dict[str, Any] = {
        "out": str(out),
        "level": args.level,
        "rows": len(table),
        "respondents": len(scores),
        "sites": int(scores["site"].nunique()),
        "scored": {c: int(scores[c].notna().sum()) for c in CONSTRUCTS},
        "status": {
            c: {k: int(v) for k, v in scores[f"status_{c}"].value_counts().items()}
            for c in CONSTRUCTS
        },
    }
    scored = ", ".join(f"{c} {summary['scored'][c]}" for c in CONSTRUCTS)
    print(
        f"scored {summary['respondents']} respondents in {summary['sites']} sites "
        f"(with a score: {scored}) -> {out} ({args.level} level, {len(table)} rows)",
        file=sys.stderr,
    )
    if args.json:
        print(dumps_json(summary))
    return 0
