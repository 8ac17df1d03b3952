"""``check``: simulation-based calibration of a model spec at a study's design.

``mbct-bayes check MODEL.toml --like OBS.csv [--responses FILE [--codebook CSV]] [--reps 200] [--out DIR]
[--json] [--scheduler ADDR] [--jobs N] [--seed S]`` draws parameters from the spec's priors, simulates
studies with the design of OBS.csv (a latent spec: and respondents with the design of FILE, as
``fit --responses`` takes it), refits each (compiled once) and prints per-parameter
rank-uniformity tests, interval coverage, divergent fits and the share of single-class studies.
Exit 0 when calibration passes, 1 when some parameter fails the rule, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from mbct_bayes.cli._common import add_responses_args, read_responses_option, sampler_settings_from
from mbct_bayes.io import check_output_dir, dumps_json
from mbct_bayes.selfcheck import _check_reps, check
from mbct_bayes.spec import ModelSpec

EXIT_MISCALIBRATED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check`` to the ``mbct-bayes`` parser."""
    p = subparsers.add_parser(
        "check",
        help="simulation-based calibration: does the model recover its own priors at this design?",
        description=(
            "Draw parameters from the spec's priors, simulate studies with the design of OBS.csv "
            "(its sites, regions, trials, times and E, C, F; its outcome is not used but for a transition "
            "model's first wave per site, which it conditions on), refit each (the "
            "model compiles once) and test that the true values' ranks in their posteriors are "
            "uniform (chi-square, Bonferroni over parameters at family-wise 0.01). Single-class "
            "studies (all 0 / all 1 / one level) cannot be fitted: they are counted, not refitted. "
            "Exit 0 when calibration passes, 1 when it fails."
        ),
    )
    p.add_argument("model", metavar="MODEL.toml", help="model spec TOML (see models/)")
    p.add_argument("--like", required=True, metavar="OBS.csv", help="observations whose design is simulated")
    add_responses_args(
        p,
        "latent specs: respondent-level data (E, C, F scores, or survey items with --codebook) whose "
        "design (sites, respondents, roles) is simulated; every site must be in OBS.csv",
        metavar="FILE",
    )
    p.add_argument("--reps", type=int, default=200, help="simulated studies (≥ 10; default 200)")
    p.add_argument("--out", metavar="DIR", help="write check.json, fits.csv and ecdf.png into DIR")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--scheduler", metavar="ADDR", help="refit on a Dask distributed cluster, e.g. tcp://host:8786")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same numbers; default 1)")
    p.add_argument("--draws", type=int, default=500, help="posterior draws per chain per refit (default 500)")
    p.add_argument("--tune", type=int, default=500, help="tuning steps per chain per refit (default 500)")
    p.add_argument("--chains", type=int, default=4, help="chains per refit (default 4)")
    p.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie", help="NUTS implementation")
    p.set_defaults(func=cmd_check)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    """Run the calibration check, print it (and write DIR); exit 1 when it fails."""

    # bad input fails before any sampling
    _check_reps(args.reps)
    settings = sampler_settings_from(args)
    if args.out:
        check_output_dir(args.out)
    spec = ModelSpec.from_toml(args.model)
    responses = read_responses_option(args)
    result = check(
        spec, like=args.like, responses=responses, reps=args.reps, sampler=settings, n_jobs=args.jobs,
        scheduler=args.scheduler, progress=_say,
    )
    _say(f"check took {result.seconds:.0f} s")
    paths = result.save(args.out) if args.out else None
    if args.json:
        print(dumps_json(result.to_dict()))
    else:
        print(result.summary())
        if paths:
            print(f"wrote {paths['json']}, {paths['fits']}, {paths['plot']}")
    return 0 if result.passed else EXIT_MISCALIBRATED
