"""Forecast evaluation commands: ``score-forecasts`` (and, later, ``evaluate``).

Each subcommand has an ``_add_<name>(sub)`` that builds its parser and a ``_run_<name>(args)``
handler; :func:`register` adds them all.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from mbct_bayes.forecast.saved import score_forecasts
from mbct_bayes.io import check_output_path, dumps_json, write_json
from mbct_bayes.schema import read_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to the ``mbct-bayes`` parser."""
    _add_score_forecasts(subparsers)


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _read(path: str, what: str, id_columns: list[str]) -> pd.DataFrame:
    """Read a CSV/Parquet table through ``schema.read_table`` (ids kept as text)."""
    return read_table(path, what=what, id_columns=id_columns)


def _id_list(values: list[str] | None, default: tuple[str, ...]) -> list[str]:
    """``--id site --id wave`` or ``--id site,wave`` → ``["site", "wave"]``."""
    if not values:
        return list(default)
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    value = float(x)
    return "nan" if value != value else f"{value:.4f}"


def scores_text(result: dict[str, Any]) -> str:
    """A plain-text table of model, baseline and skill scores."""
    model, base, skill = result["model"], result["baseline"], result["skill"]
    lines = [f"{'metric':<24}{'model':>10}{'baseline':>10}   skill [90% site interval]"]
    for key, value in model.items():
        s = skill.get(key)
        s_text = f"{_fmt(s['mean'])} [{_fmt(s['q05'])}, {_fmt(s['q95'])}]" if s else ""
        lines.append(f"{key:<24}{_fmt(value):>10}{_fmt(base.get(key)):>10}   {s_text}")
    lines.append(
        "log_score: mean log predictive density per observation (higher is better); brier, rps, "
        "ece: lower is better; skill > 0 means the model beats the baseline"
    )
    for who, text in result.get("log_score_of", {}).items():
        lines.append(f"log_score of the {who}: {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# score-forecasts
# --------------------------------------------------------------------------------------------


def _add_score_forecasts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score-forecasts",
        help="score forecasts made earlier against outcomes observed later",
        description=(
            "Join FORECASTS (p_mean, or one p_<level> column per level) to OUTCOMES (embedded "
            "or level) by id and print log score, Brier, AUC, calibration and ECE beside a "
            "base-rate baseline taken from the other sites' outcomes. Ids found in only one "
            "file are listed on stderr and not scored. Binomial rows (successes of trials) are "
            "plug-in scored, Binomial(k | n, p_mean), model and baseline alike: a saved p_mean "
            "has no spread, so this is not the log score of the model's predictive mixture "
            "(mbct-bayes evaluate computes that)."
        ),
    )
    p.add_argument("forecasts", metavar="FORECASTS.csv", help="forecast table (CSV or Parquet)")
    p.add_argument("outcomes", metavar="OUTCOMES.csv", help="outcome table (CSV or Parquet)")
    p.add_argument(
        "--id", action="append", metavar="COL",
        help="id column(s) joining the two files (repeat or comma-separate; default: site)",
    )
    p.add_argument("--outcome", help="outcome column (default: embedded, else level)")
    p.add_argument("--trials", default="trials", help="trials column for binomial outcomes")
    p.add_argument("--levels", help="ordered levels, comma-separated, lowest first")
    p.add_argument(
        "--group", help="bootstrap / leave-out unit (default: site if an id column, else the id)"
    )
    p.add_argument(
        "--base-rate", type=float,
        help="fixed baseline probability instead of the other sites' outcome rate",
    )
    p.add_argument("--bins", type=int, default=10, help="equal-width bins for ECE (default 10)")
    p.add_argument("--n-boot", type=int, default=1000, help="site resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    p.add_argument("--out", metavar="SCORES.json", help="also write the scores as JSON")
    p.set_defaults(func=_run_score_forecasts)


def _run_score_forecasts(args: argparse.Namespace) -> int:
    if args.out:
        check_output_path(args.out)
    id_cols = _id_list(args.id, ("site",))
    forecasts = _read(args.forecasts, "forecasts", id_cols)
    outcomes = _read(args.outcomes, "outcomes", id_cols)
    levels = [v.strip() for v in args.levels.split(",")] if args.levels else None
    with warnings.catch_warnings():
        # Unmatched ids are listed below in full; the library's warning would repeat them.
        warnings.simplefilter("ignore", UserWarning)
        scored = score_forecasts(
            forecasts, outcomes,
            id_cols=id_cols,
            outcome=args.outcome, trials=args.trials, levels=levels, group=args.group,
            base_rate=args.base_rate, bins=args.bins, n_boot=args.n_boot, seed=args.seed,
            names=(Path(args.forecasts).name, Path(args.outcomes).name),
        )
    result = scored.to_dict()
    _report_unmatched(result["unmatched"], args)
    if args.out:
        write_json(args.out, result)
    if args.json:
        print(dumps_json(result))
    else:
        print(f"{scored.n} forecasts scored ({scored.family})")
        print(scores_text(result))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _report_unmatched(unmatched: dict[str, list[Any]], args: argparse.Namespace) -> None:
    for key, other in (("forecasts", args.outcomes), ("outcomes", args.forecasts)):
        other = Path(other).name
        ids = unmatched[key]
        if ids:
            shown = ", ".join(
                ", ".join(f"{k}={v}" for k, v in i.items()) if isinstance(i, dict) else str(i)
                for i in ids
            )
            print(
                f"mbct-bayes score-forecasts: {len(ids)} id(s) in {key} not in {other}, not "
                f"scored: {shown}",
                file=sys.stderr,
            )
