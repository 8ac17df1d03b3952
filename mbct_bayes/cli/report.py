"""``report``: one self-contained HTML report of a saved fit.

Example::

    mbct-bayes report fit.nc --out report.html --sites new_sites.csv --eval eval/
"""

from __future__ import annotations

import argparse
import sys
import warnings

from mbct_bayes.cli._common import add_region_mode
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
            "(--sites) and, with --eval, forecast scores and a reliability diagram."
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
    p.set_defaults(func=cmd_report)


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
    fit = load_fit(args.fit)
    ids = [c for c in (fit.spec.group, fit.spec.region) if c]
    observations = read_table(args.data, what="observations", id_columns=ids) if args.data else None
    sites = read_table(args.sites, what="new sites", id_columns=ids) if args.sites else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(fit, out, observations=observations, new_sites=sites, evaluation_dir=args.eval_dir,
                     seed=args.seed, check_dir=args.check_dir, region_mode=args.region_mode)
    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught
                                 if not issubclass(w.category, DeprecationWarning | FutureWarning)):
        _say(f"warning: {message}")
    verdict = "PASS" if fit.diagnostics["ok"] else "FAIL"
    _say(f"report written to {out} (diagnostics {verdict})")
    return 0
