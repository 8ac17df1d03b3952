"""``reliability``: Cronbach's alpha, McDonald's omega, item-rest r and ICC(1)/ICC(2) per scale."""

from __future__ import annotations

import argparse
from typing import Any

from mbct_bayes.cli._common import add_survey_args, survey_columns
from mbct_bayes.io import dumps_json
from mbct_bayes.survey.reliability import reliability
from mbct_bayes.survey.scoring import CONSTRUCTS, read_codebook, read_responses


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``reliability`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "reliability",
        help="Cronbach's alpha, McDonald's omega, item-rest r and ICC(1)/ICC(2) per scale",
        description="Reliability of each construct and subscale on the reverse-keyed items: "
        "alpha from pairwise-complete covariances (as psych::alpha) and listwise, one-factor "
        "omega total (minimum residual), item-rest correlations, and ICC(1)/ICC(2) of the "
        "respondents' scores within sites.",
    )
    add_survey_args(p)
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
    responses = read_responses(args.responses, codebook, columns=survey_columns(args))
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
