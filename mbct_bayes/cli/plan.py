"""``plan``: what-if changes, levers, targets and ranking for new sites from a saved fit.

Examples::

    mbct-bayes plan FIT.nc SITES.csv --what-if F=+1 --what-if C=+0.5 --out PLAN.csv
    mbct-bayes plan FIT.nc SITES.csv --levers --step sd --out LEVERS.csv
    mbct-bayes plan FIT.nc SITES.csv --target F --p 0.8 --prob 0.9 --out TARGET.csv
    mbct-bayes plan FIT.nc SITES.csv --rank --json
"""

from __future__ import annotations

import argparse
import math
import sys

from mbct_bayes.cli._common import add_measured_args, add_region_mode, note_scores, read_responses_option
from mbct_bayes.errors import DataError, problem
from mbct_bayes.families import get_family
from mbct_bayes.io import check_output_path, dumps_json, write_table
from mbct_bayes.model.fit import load_fit
from mbct_bayes.planning import scenarios as planning
from mbct_bayes.schema import read_table

MAX_MESSAGES = 10  # target messages shown on stderr; the table has them all


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="plan new sites: what-if, levers, targets, ranking",
        description=(
            "Posterior planning for the sites in SITES (one row per site with the predictors, "
            "a site id and, for models with regions, a region; empty = unknown). Choose one of "
            "--what-if, --levers, --target, --rank."
        ),
    )
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("sites", help="CSV/Parquet, one row per site: site id, predictors (and region)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--what-if", dest="what_if", action="append", metavar="X=DELTA",
        help="change a predictor by DELTA scale points, e.g. F=+1 (repeat for several)",
    )
    mode.add_argument(
        "--levers", action="store_true", help="ΔP for one step on each predictor, ranked"
    )
    mode.add_argument(
        "--target", metavar="LEVER", help="smallest LEVER value reaching --p with --prob"
    )
    mode.add_argument(
        "--rank", action="store_true", help="order the sites by P(embedded), with P(best)"
    )
    p.add_argument("--step", default="1", help="--levers step: scale points or 'sd' (default 1)")
    p.add_argument(
        "--p", type=float, default=None,
        help="--target: P(embedded) to reach (default 0.8); for a count model the expected rate per "
        "rate_per units of exposure to reach (required), e.g. 40 for 40 per 100,000 population"
    )
    p.add_argument(
        "--prob", type=float, default=0.9,
        help="--target: posterior probability required (default 0.9)",
    )
    p.add_argument(
        "--kind", choices=("new_site", "typical_site", "known_site"), default="new_site",
        help="site effect: drawn for a new site (default), 0 for a typical one, fitted for a "
        "known one",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the new-site effect draws (default 0)"
    )
    add_measured_args(p)
    add_region_mode(p)
    p.add_argument("--out", help="table to write (CSV, or Parquet for .parquet)")
    p.add_argument(
        "--json", action="store_true", help="print the list of records as JSON on stdout"
    )
    p.set_defaults(func=cmd_plan)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_change(items: list[str]) -> dict[str, float]:
    """``["F=+1", "C=0.5"]`` -> ``{"F": 1.0, "C": 0.5}``, with one-line errors."""
    change: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        where = f"--what-if {item!r}"
        if not sep or not name or not value:
            raise problem("not PREDICTOR=CHANGE", where=where, fix="write e.g. F=+1")
        try:
            number = float(value)
        except ValueError:
            raise problem(f"{value!r} is not a number", where=where, fix=f"write e.g. {name}=+1") from None
        if not math.isfinite(number):
            raise problem("the change must be a finite number", where=where, fix=f"write e.g. {name}=+1")
        if name in change:
            raise problem(f"names {name!r} twice", where="--what-if", fix="give each predictor once")
        change[name] = number
    return change


def parse_step(text: str) -> float | str:
    """``"sd"`` or a positive number of scale points."""
    if text.strip().lower() == "sd":
        return "sd"
    try:
        value = float(text)
    except ValueError:
        raise problem("not a number", where=f"--step {text!r}", fix="give a number of scale points (e.g. 1) or 'sd'") from None
    if not math.isfinite(value) or value <= 0:
        raise problem("the step must be a positive number of scale points", where=f"--step {text!r}",
                      fix="give e.g. 1, or 'sd'")
    return value


def default_goal(fit) -> float:
    """--target's default --p: P(embedded) 0.8; a count model's rate has no default."""
    if get_family(fit.spec.family).planned_is_probability:
        return 0.8
    raise DataError(
        f"--target on a count model needs --p RATE: the {get_family(fit.spec.family).planned_label(fit.spec)} "
        "to reach, e.g. --p 40"
    )


def cmd_plan(args: argparse.Namespace) -> int:
    if not args.out and not args.json:
        raise DataError("give --out FILE to write the table, or --json to print the records")
    out = check_output_path(args.out) if args.out else None
    # parse every option before the (slower) fit loading, so typos fail fast
    change = parse_change(args.what_if) if args.what_if else None
    step = parse_step(args.step)
    responses = read_responses_option(args)
    fit = load_fit(args.fit)
    id_columns = [c for c in (fit.spec.group, fit.spec.region) if c]
    sites = read_table(args.sites, what="sites", id_columns=id_columns)
    options = {"seed": args.seed, "responses": responses, "scores_are_true": args.scores_are_true,
               "region_mode": args.region_mode}
    if change is not None:
        mode, table = "what_if", planning.what_if(fit, sites, change, args.kind, **options)
    elif args.levers:
        mode, table = "levers", planning.levers(fit, sites, step, args.kind, **options)
    elif args.target:
        mode = "target"
        goal = args.p if args.p is not None else default_goal(fit)
        table = planning.target(fit, sites, args.target, goal, args.prob, args.kind, **options)
    else:
        mode, table = "rank", planning.rank(fit, sites, args.kind, **options)
    if out is not None:
        write_table(out, table)
        _say(f"{mode.replace('_', '-')}: {len(table)} rows ({args.kind}) written to {out}")
    if mode == "target":
        shown = MAX_MESSAGES
        for site, message in zip(table["site"][:shown], table["message"][:shown], strict=True):
            _say(f"{site}: {message}")
        if len(table) > shown:
            _say(f"... and {len(table) - shown} more sites (see column 'message')")
    note_scores(table)
    if "quantity" in table.columns:
        _say(f"note: p_* and delta_* are {table['quantity'].iloc[0]} (rates, not probabilities)")
    if mode == "what_if" and table["clipped"].any():
        n = int(table["clipped"].sum())
        _say(f"note: the change was clipped to the scale for {n} site(s); see column 'clipped'")
    if args.json:
        print(dumps_json(planning.records(table, mode)))
    return 0
