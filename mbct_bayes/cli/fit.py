"""``fit``: fit a model spec to observations and save the fit."""

from __future__ import annotations

import argparse

from mbct_bayes.cli._common import (
    add_responses_args,
    add_sampler_args,
    fit_model,
    read_responses_option,
    sampler_settings_from,
    say,
)
from mbct_bayes.io import check_output_path, dumps_json
from mbct_bayes.schema import read_table
from mbct_bayes.spec import ModelSpec

EXIT_NOT_CONVERGED = 3


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fit`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser("fit", help="fit a model spec to observations and save the fit (.nc)")
    p.add_argument("observations", help="observations CSV or Parquet")
    p.add_argument("--model", required=True, help="model spec TOML (see models/)")
    p.add_argument("--out", required=True, help="fit file to write (.nc)")
    add_responses_args(p, "latent models: respondent-level data (E, C, F scores, or survey items with --codebook)")
    add_sampler_args(p)
    p.add_argument("--strict", action="store_true", help="exit 3 when the diagnostics gate fails")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)
    sampler_settings_from(args)  # a bad --draws etc. fails here, before any file is read
    spec = ModelSpec.from_toml(args.model)
    settings = sampler_settings_from(args, spec)
    table = read_table(args.observations, what="observations")
    responses = read_responses_option(args)
    result = fit_model(table, spec, settings, quiet=args.json, responses=responses, source=args.observations)
    result.save(out)
    if args.json:
        print(dumps_json(result.summary()))
    else:
        print(result.summary_text())
        say(f"fit written to {out}")
    if args.strict and not result.diagnostics["ok"]:
        say("error: --strict: the fit failed the diagnostics gate (it was still written, for inspection)")
        return EXIT_NOT_CONVERGED
    return 0
