"""``evaluate``: leave-site-out cross-validation of a model spec from the command line.

``mbct-bayes evaluate OBS.csv --model SPEC.toml --folds 10 --out EVAL_DIR [--json]
[--scheduler tcp://host:port] [--jobs N]`` writes ``predictions.csv``, ``metrics.json`` and
``folds.csv`` into ``EVAL_DIR`` and prints the scores (``--json``: the metrics object only).
``--by time [--horizon H] [--min-waves N]`` evaluates a transition model over time instead
(:mod:`mbct_bayes.forecast.overtime`): ``predictions.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mbct_bayes.cli._common import sampler_settings_from
from mbct_bayes.cli.score_forecasts import scores_text
from mbct_bayes.errors import ConvergenceWarning, DataError
from mbct_bayes.forecast.crossval import evaluate
from mbct_bayes.forecast.overtime import evaluate_over_time
from mbct_bayes.io import check_output_dir, dumps_json
from mbct_bayes.schema import read_table
from mbct_bayes.spec import ModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``mbct-bayes`` parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="leave-site-out cross-validation: forecast held-out sites as new sites, score them",
        description=(
            "Grouped K-fold cross-validation holding out whole sites (folds stratified by the "
            "sites' outcome rate). The model is compiled once and refitted per fold; held-out "
            "sites are predicted as new sites and scored (log score, Brier, AUC, calibration, "
            "ECE) beside an intercept-only baseline from the same training folds, with skill "
            "intervals from a bootstrap over sites."
        ),
    )
    p.add_argument("observations", metavar="OBS.csv", help="observations CSV or Parquet")
    p.add_argument(
        "--model", required=True, metavar="SPEC.toml", help="model spec TOML (see models/)"
    )
    p.add_argument(
        "--folds",
        default="10",
        help="number of folds (2 to the number of sites), or 'loo-site' for one site per fold "
        "(default 10)",
    )
    p.add_argument(
        "--out", required=True, metavar="EVAL_DIR", help="output folder (created if missing)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the folds on a Dask distributed cluster, e.g. tcp://host:8786",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="local worker processes (each compiles the model once; default 1)",
    )
    p.add_argument(
        "--seed", type=int, default=1, help="random seed (same seed, same numbers; default 1)"
    )
    p.add_argument(
        "--draws", type=int, default=1000, help="posterior draws per chain per fold (default 1000)"
    )
    p.add_argument(
        "--tune", type=int, default=1000, help="tuning steps per chain per fold (default 1000)"
    )
    p.add_argument("--chains", type=int, default=4, help="chains per fold (default 4)")
    p.add_argument(
        "--sampler", choices=("nutpie", "pymc"), default="nutpie", help="NUTS implementation"
    )
    p.add_argument(
        "--n-boot", type=int, default=1000, help="site resamples for skill intervals (default 1000)"
    )
    p.add_argument(
        "--by", choices=("site", "time"), default="site",
        help="site: leave-site-out folds (default); time: transition models, refit on the waves up to each "
        "time and forecast every site's next waves (expanding window), beside base-rate and persistence baselines",
    )
    p.add_argument("--horizon", type=int, default=1, help="--by time: waves ahead to forecast from each cut (default 1)")
    p.add_argument(
        "--min-waves", dest="min_waves", type=int, default=3,
        help="--by time: the first cut is the panel's N-th distinct time (default 3)",
    )
    p.set_defaults(func=cmd_evaluate)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run the cross-validation, write EVAL_DIR, print the scores."""

    # fail on a bad --out before any sampling, and create nothing until results exist
    check_output_dir(args.out)
    if isinstance(args.n_boot, int) and args.n_boot < 1:
        raise DataError(f"--n-boot must be a whole number ≥ 1, got {args.n_boot}")
    settings = sampler_settings_from(args)
    spec = ModelSpec.from_toml(args.model)
    obs = read_table(args.observations, what="observations")
    if args.by == "time":
        return _evaluate_over_time(args, obs, spec, settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = evaluate(
            obs,
            spec,
            folds=args.folds,
            n_jobs=args.jobs,
            scheduler=args.scheduler,
            progress=_say,
            sampler=settings,
            n_boot=args.n_boot,
        )
    for w in caught:
        _say(f"warning: {w.message}")
    paths = result.save(args.out)
    if args.json:
        print(dumps_json(result.metrics))
    else:
        print(
            f"{result.n_folds}-fold leave-site-out CV of {Path(args.model).name} on "
            f"{len(result.predictions)} observations "
            f"({result.predictions[spec.group].nunique()} sites)"
        )
        print(scores_text(result.metrics))
        print(f"wrote {paths['predictions']}, {paths['metrics']}, {paths['folds']}")
    return 0


def _evaluate_over_time(args: argparse.Namespace, obs, spec: ModelSpec, settings) -> int:
    """``--by time``: expanding-window forecasts of a transition model (forecast.overtime)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = evaluate_over_time(
            obs, spec, horizon=args.horizon, min_waves=args.min_waves, sampler=settings, n_boot=args.n_boot,
            progress=_say, source=str(args.observations),
        )
    for w in caught:
        _say(f"warning: {w.message}")
    paths = result.save(args.out)
    if args.json:
        print(dumps_json(result.metrics))
        return 0
    print(f"evaluation over time of {Path(args.model).name}: {result.metrics['n_forecasts']} forecasts from "
          f"{len(result.metrics['cuts'])} cut(s), {args.horizon} wave(s) ahead")
    print("against the base rate:")
    print(scores_text(result.metrics["vs_base_rate"]))
    print("against persistence (the same state as at the last wave):")
    print(scores_text(result.metrics["vs_persistence"]))
    print(f"wrote {paths['predictions']}, {paths['metrics']}")
    return 0
