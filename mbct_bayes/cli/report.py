"""``report``: one self-contained HTML report of a saved fit.

Example::

    mbct-bayes report fit.nc --out report.html --sites new_sites.csv --eval eval/ \
        [--trial-lever F --trial-delta 1 --cluster-size 20 --trial-clusters 4-30 | --no-trial]
"""

from __future__ import annotations

import argparse
import sys
import warnings

from mbct_bayes.cli._common import add_region_mode
from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import check_horizon
from mbct_bayes.io import check_output_path
from mbct_bayes.model.fit import load_fit
from mbct_bayes.schema import read_table
from mbct_bayes.selfcheck import read_check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML report of a fit (opens with no network)",
        description=(
            "Write one HTML file with the model and data in words, the diagnostics verdict, coefficients, "
            "odds-ratio forest plot, site effects, a posterior predictive check, planning for new sites "
            "(--sites), the assurance of a cluster trial over clusters per arm (unless --no-trial) and, with --eval, "
            "forecast scores and a reliability diagram."
        ),
    )
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--data", help="observations CSV/Parquet to check the fit against (default: the data in the fit)")
    p.add_argument("--eval", dest="eval_dir", metavar="EVAL_DIR",
                   help="folder written by 'mbct-bayes evaluate --out' (metrics.json, predictions.csv)")
    p.add_argument("--sites", help="new sites CSV/Parquet for the planning table and lever chart")
    p.add_argument("--check", dest="check_dir", metavar="CHECK_DIR",
                   help="folder written by 'mbct-bayes check --out' (simulation-based calibration)")
    p.add_argument("--seed", type=int, default=0, help="seed of new-site and replication draws (default 0)")
    add_region_mode(p)
    g = p.add_argument_group("journeys (transition models' forecast section)")
    g.add_argument("--forecast-sites", metavar="SITES",
                   help="each site's latest wave to forecast from, as 'mbct-bayes forecast' SITES (default: each fitted "
                        "site's latest wave)")
    g.add_argument("--horizon", type=int, default=3, help="future waves to forecast (default 3)")
    add_trial_args(p)
    p.set_defaults(func=cmd_report)


def add_trial_args(p: argparse.ArgumentParser) -> None:
    """The trial-planning section's options (names as ``mbct-bayes power assurance``'s where they match)."""
    g = p.add_argument_group("trial planning (the report's trial section)")
    g.add_argument("--no-trial", action="store_true", help="leave out the trial-planning section (saves a few seconds)")
    g.add_argument("--trial-lever", help="predictor the trial's intervention moves (default F when the model has it)")
    g.add_argument("--trial-delta", type=float, default=1.0,
                   help="how far it moves it, in scale points (default 1; negative lowers it)")
    g.add_argument("--cluster-size", type=int, default=20, help="members measured per cluster (default 20)")
    g.add_argument("--trial-clusters", default="4-30", metavar="LOW-HIGH",
                   help="clusters per arm of the assurance curve (default 4-30)")
    g.add_argument("--trial-sims", type=int, help="simulated trials per design (default one per posterior draw)")
    g.add_argument("--alpha", type=float, default=0.05, help="two-sided significance of the trial (default 0.05)")
    g.add_argument("--analysis", choices=("t", "welch", "gee", "adjusted"), default="t",
                   help="the trial's analysis, as 'mbct-bayes power --analysis' (default t: pooled t-test on "
                        "cluster proportions)")


def trial_settings_from(args: argparse.Namespace):
    """The :class:`~mbct_bayes.report.TrialSettings` of the options, or None under ``--no-trial``."""
    from mbct_bayes.report import TrialSettings  # deferred: matplotlib takes over a second to import

    if args.no_trial:
        return None
    low, sep, high = str(args.trial_clusters).partition("-")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()) or not 2 <= int(low) <= int(high):
        raise DataError(f"--trial-clusters {args.trial_clusters!r}: give LOW-HIGH clusters per arm with "
                        "2 <= LOW <= HIGH, e.g. 4-30")
    for name, value in (("--cluster-size", args.cluster_size), ("--trial-sims", args.trial_sims)):
        if value is not None and value < 1:
            raise DataError(f"{name} must be a whole number ≥ 1, got {value}")
    return TrialSettings(lever=args.trial_lever, delta=args.trial_delta, cluster_size=args.cluster_size,
                         clusters=(int(low), int(high)), sims=args.trial_sims, alpha=args.alpha,
                         analysis=args.analysis)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_report(args: argparse.Namespace) -> int:
    from mbct_bayes.report import (  # deferred: it draws figures, and matplotlib takes over a second to import
        check_evaluation_dir,
        write_report,
    )

    # every cheap check before loading the fit
    out = check_output_path(args.out)
    if args.eval_dir:
        check_evaluation_dir(args.eval_dir)
    if args.check_dir:
        read_check(args.check_dir)
    trial = trial_settings_from(args)
    check_horizon(args.horizon)
    fit = load_fit(args.fit)
    ids = [c for c in (fit.spec.group, fit.spec.region) if c]
    observations = read_table(args.data, what="observations", id_columns=ids) if args.data else None
    sites = read_table(args.sites, what="new sites", id_columns=ids) if args.sites else None
    journey_sites = (read_table(args.forecast_sites, what="forecast sites", id_columns=ids)
                     if args.forecast_sites else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(fit, out, observations=observations, new_sites=sites, evaluation_dir=args.eval_dir,
                     seed=args.seed, check_dir=args.check_dir, region_mode=args.region_mode, trial=trial,
                     forecast_sites=journey_sites, horizon=args.horizon)
    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught
                                 if not issubclass(w.category, DeprecationWarning | FutureWarning)):
        _say(f"warning: {message}")
    verdict = "PASS" if fit.diagnostics["ok"] else "FAIL"
    _say(f"report written to {out} (diagnostics {verdict})")
    return 0
