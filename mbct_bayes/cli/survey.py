"""Survey commands: ``score`` (items -> E, C, F scores) and ``reliability`` (alpha, omega, ICC)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mbct_bayes.io import check_output_path, dumps_json, write_table
from mbct_bayes.survey.reliability import reliability
from mbct_bayes.survey.scoring import (
    CONSTRUCTS,
    parse_columns,
    read_codebook,
    read_responses,
    score_responses,
    site_scores,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score`` and ``reliability`` to the ``mbct-bayes`` parser."""
    _add_score(subparsers)
    _add_reliability(subparsers)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("responses", help="responses CSV: site, respondent, role and the item columns")
    p.add_argument(
        "--codebook",
        required=True,
        metavar="CODEBOOK",
        help="codebook CSV (item, construct, subscale, reverse, min, max, text, roles), "
        "e.g. data/codebook_orca_mbct.csv",
    )
    p.add_argument(
        "--columns",
        metavar="MAP",
        help="your file's names for the id columns, e.g. site=Trust,respondent=ID,role=Job "
        "(outputs use site, respondent, role)",
    )
    p.add_argument(
        "--min-answered",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="score a subscale only when at least this share of the items the respondent was "
        "asked is answered (default 0.5, the ORCA rule)",
    )


def _columns(args: argparse.Namespace) -> dict[str, str] | None:
    return parse_columns(args.columns) if getattr(args, "columns", None) else None


# -- score ---------------------------------------------------------------------------------------


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score survey items into E, C, F (respondent or site level)",
        description="Reverse-key items, average them into subscales (at least half the asked "
        "items answered), subscales into E, C, F per respondent, and respondents into sites. "
        "Items a role is not asked are missing by design and counted apart from non-response.",
    )
    _add_common(p)
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
    responses = read_responses(args.responses, codebook, columns=_columns(args))
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


# -- reliability ---------------------------------------------------------------------------------


def _add_reliability(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability",
        help="Cronbach's alpha, McDonald's omega, item-rest r and ICC(1)/ICC(2) per scale",
        description="Reliability of each construct and subscale on the reverse-keyed items: "
        "alpha from pairwise-complete covariances (as psych::alpha) and listwise, one-factor "
        "omega total (minimum residual), item-rest correlations, and ICC(1)/ICC(2) of the "
        "respondents' scores within sites.",
    )
    _add_common(p)
    p.add_argument(
        "--listwise",
        action="store_true",
        help="compute alpha, omega and item-rest r on complete cases only (alpha_listwise is "
        "always reported)",
    )
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=_run_reliability)


def _run_reliability(args: argparse.Namespace) -> int:
    codebook = read_codebook(args.codebook)
    responses = read_responses(args.responses, codebook, columns=_columns(args))
    result = reliability(
        responses, codebook, listwise=args.listwise, min_answered=args.min_answered
    )
    if args.json:
        print(dumps_json(result))
    else:
        print(_format_reliability(result, len(responses), args.listwise))
    return 0


def _f(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else f"{v:.2f}"


def _format_reliability(result: dict[str, Any], n: int, listwise: bool) -> str:
    head = (
        f"{'scale':<34}{'items':>6}{'alpha':>8}{'a_list':>8}{'omega':>8}"
        f"{'ICC1':>7}{'ICC2':>7}{'resp':>6}{'sites':>6}"
    )

    def line(name: str, e: dict[str, Any]) -> str:
        return (
            f"{name:<34}{e['n_items']:>6}{_f(e['alpha']):>8}{_f(e['alpha_listwise']):>8}"
            f"{_f(e['omega']):>8}{_f(e['icc1']):>7}{_f(e['icc2']):>7}"
            f"{e['n_respondents']:>6}{e['n_sites']:>6}"
        )

    lines = [
        f"reliability of {n} respondents ({'listwise' if listwise else 'pairwise'}-complete; "
        "'-' = undefined)",
        head,
    ]
    for c in CONSTRUCTS:
        lines.append(line(c, result[c]))
        for name, sub in result[c]["subscales"].items():
            lines.append(line(f"  {name}", sub))
    return "\n".join(lines)
