"""``simulate``: synthetic observations with known truth."""

from __future__ import annotations

import argparse
import sys

from mbct_bayes.cli._common import outcome_counts
from mbct_bayes.io import check_output_dir, check_output_path, dumps_json, write_json, write_table
from mbct_bayes.model.simulate import FAMILIES, simulate_observations
from mbct_bayes.spec import ModelSpec


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "simulate",
        help="simulate observations with known truth (shaped like the UK MBCT study)",
        description="Write DIR/observations.csv and DIR/truth.json: sites nested in regions, "
        "several units per site, correlated E, C, F on 1-5, and the outcome drawn from known "
        "parameters (see mbct_bayes.simulate).",
    )
    p.add_argument("--sites", type=int, default=40, help="number of sites (default 40)")
    p.add_argument("--per-site", type=int, default=5, help="units (waves) per site (default 5)")
    p.add_argument(
        "--seed", type=int, default=1, help="random seed (same seed, same data; default 1)"
    )
    p.add_argument("--family", choices=FAMILIES, default="bernoulli", help="outcome type")
    p.add_argument(
        "--regions", type=int, default=4, help="number of regions, 0 for none (default 4)"
    )
    p.add_argument("--trials", type=int, default=8, help="binomial: units per row (default 8)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out)  # the same words as every command writing a folder
    # simulate before touching the disk, so a bad argument leaves nothing behind
    obs, truth = simulate_observations(
        args.sites,
        args.per_site,
        args.family,
        n_regions=args.regions,
        seed=args.seed,
        trials=args.trials,
    )
    out.mkdir(parents=True, exist_ok=True)
    obs_path = check_output_path(out / "observations.csv")
    truth_path = check_output_path(out / "truth.json")
    write_table(obs_path, obs)
    write_json(truth_path, truth)

    summary = {
        "observations": str(obs_path),
        "truth": str(truth_path),
        "family": args.family,
        "rows": len(obs),
        "sites": int(obs["site"].nunique()),
        "regions": int(obs["region"].nunique()) if "region" in obs else 0,
        "seed": args.seed,
        "outcome": outcome_counts(obs, ModelSpec(family=args.family)),
    }
    print(
        f"simulated {summary['rows']} rows ({summary['sites']} sites x {args.per_site} units, "
        f"{summary['regions']} regions, {args.family}) -> {obs_path}, {truth_path}",
        file=sys.stderr,
    )
    if args.json:
        print(dumps_json(summary))
    return 0
