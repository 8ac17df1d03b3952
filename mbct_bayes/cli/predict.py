"""``predict``: P(embedded) for new, typical or known sites from a saved fit."""

from __future__ import annotations

import argparse

from mbct_bayes.cli._common import add_measured_args, add_region_mode, note_scores, read_responses_option, say
from mbct_bayes.families import get_family
from mbct_bayes.io import check_output_path, write_table
from mbct_bayes.model.fit import load_fit
from mbct_bayes.schema import read_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "predict",
        help="P(embedded) (a count model: the expected rate per rate_per) for new, typical or known sites",
    )
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("sites", help="CSV/Parquet with the predictors (and site, region columns)")
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--kind", choices=("new_site", "typical_site", "known_site"), default="new_site")
    p.add_argument("--seed", type=int, default=0, help="seed for new-site effect draws")
    add_measured_args(p)
    add_region_mode(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    responses = read_responses_option(args)
    result = load_fit(args.fit)
    sites = read_table(args.sites, what="sites")
    predictions = result.predict(
        sites,
        kind=args.kind,
        seed=args.seed,
        responses=responses,
        scores_are_true=args.scores_are_true,
        region_mode=args.region_mode,
    )
    write_table(out, predictions)
    say(f"{len(predictions)} predictions of {get_family(result.spec.family).planned_label(result.spec)} "
        f"({args.kind}) written to {out}")
    note_scores(predictions)
    return 0
