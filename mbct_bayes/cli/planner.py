"""``planner``: the planning page, one self-contained HTML file a service lead can use.

Example::

    mbct-bayes planner fit.nc --out planner.html --sites new_sites.csv
"""

from __future__ import annotations

import argparse

from mbct_bayes.cli._common import say
from mbct_bayes.errors import DataError
from mbct_bayes.io import check_output_path
from mbct_bayes.model.fit import load_fit
from mbct_bayes.planner import write_planner
from mbct_bayes.schema import read_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``planner`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "planner",
        help="one HTML page to try scenarios for a service (opens with no network)",
        description=(
            "Write one self-contained HTML file carrying a thinned set of the fit's posterior draws: set a "
            "service's scores (and region, and respondents for latent fits) and read its chance of embedding "
            "as a new site, the gain from raising each score by a point, the score that reaches a target, and "
            "the assurance of a parallel cluster trial. The scenario lives in the page's address (#E=3.5&C=3...)."
        ),
    )
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--sites", help="CSV/Parquet of services to offer as starting scenarios (site, region, E, C, F; "
                   "latent fits also n_respondents)")
    p.add_argument("--draws", type=int, default=1000, help="posterior draws the page carries (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the new-site draws, as predict's (default 0)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_planner)


def cmd_planner(args: argparse.Namespace) -> int:
    # every cheap check before loading the fit
    out = check_output_path(args.out)
    if out.exists() and not args.force:
        raise DataError(f"{out}: output file exists; remove it, choose another --out, or pass --force to replace it")
    fit = load_fit(args.fit)
    ids = [c for c in (fit.spec.group, fit.spec.region) if c]
    sites = read_table(args.sites, what="sites", id_columns=ids) if args.sites else None
    write_planner(fit, out, sites=sites, n_draws=args.draws, seed=args.seed, force=args.force)
    say(f"planner written to {out} (open it in a browser; it needs no network)")
    return 0
