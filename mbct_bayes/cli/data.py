"""Data commands: ``simulate`` (synthetic observations with known truth) and ``validate``."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import pandas as pd

from mbct_bayes.families import get_family
from mbct_bayes.io import check_output_dir, check_output_path, dumps_json, write_json, write_table
from mbct_bayes.model.simulate import FAMILIES, simulate_observations
from mbct_bayes.schema import DataWarning, read_table, validate_observations
from mbct_bayes.spec import ModelSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate`` and ``validate`` to the ``mbct-bayes`` parser."""
    _add_simulate(subparsers)
    _add_validate(subparsers)


# -- simulate ------------------------------------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction) -> None:
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
        "outcome": _outcome_counts(obs, _spec_for(args.family)),
    }
    print(
        f"simulated {summary['rows']} rows ({summary['sites']} sites x {args.per_site} units, "
        f"{summary['regions']} regions, {args.family}) -> {obs_path}, {truth_path}",
        file=sys.stderr,
    )
    if args.json:
        print(dumps_json(summary))
    return 0


def _spec_for(family: str) -> ModelSpec:
    return ModelSpec(family=family)


# -- validate ------------------------------------------------------------------------------------


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check an observations file against a model spec",
        description="Read and validate observations as the model would; exit 0 when the data "
        "are usable (warnings are shown), 2 with a one-line error when they are not.",
    )
    p.add_argument("observations", help="observations CSV or Parquet")
    p.add_argument("--model", required=True, metavar="SPEC", help="model spec TOML (see models/)")
    p.add_argument(
        "--new-data",
        action="store_true",
        help="the file lists sites to predict for: no outcome needed, an empty region is unknown",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    spec = ModelSpec.from_toml(args.model)
    ids = [c for c in (spec.group, spec.region) if c]
    what = "new sites" if args.new_data else "observations"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        raw = read_table(args.observations, what=what, id_columns=ids)
        df = validate_observations(raw, spec, source=str(args.observations), new_data=args.new_data)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    report: dict[str, Any] = {
        "ok": True,
        "file": str(args.observations),
        "family": spec.family,
        "rows": len(df),
        "sites": int(df[spec.group].nunique()),
        "regions": int(df[spec.region].nunique()) if spec.region else 0,
        "outcome": {} if args.new_data else _outcome_counts(df, spec),
        "predictors": {
            p: {"mean": float(df[p].mean()), "min": float(df[p].min()), "max": float(df[p].max())}
            if pd.api.types.is_numeric_dtype(df[p])
            else {"levels": {str(k): int(v) for k, v in df[p].value_counts().sort_index().items()}}  # categorical
            for p in spec.predictors
        },
        "warnings": messages,
    }
    if args.json:
        print(dumps_json(report))
    else:
        print(_format_report(report, spec))
    return 0


def _outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    """Counts of each outcome value: 0/1, embedded/not embedded units, or each level in order."""
    return get_family(spec.family).outcome_counts(df, spec)


def _format_report(report: dict[str, Any], spec: ModelSpec) -> str:
    lines = [
        f"{report['file']}: OK for {spec.name or 'the ' + spec.family + ' model'}",
        f"  rows {report['rows']}, sites {report['sites']}"
        + (f", regions {report['regions']}" if spec.region else ""),
    ]
    if report["outcome"]:
        counts = ", ".join(f"{k}: {v}" for k, v in report["outcome"].items())
        lines.append(f"  outcome {spec.outcome!r}: {counts}")
    for p, s in report["predictors"].items():
        if "levels" in s:
            lines.append(f"  {p} (categorical): " + ", ".join(f"{k} {v}" for k, v in s["levels"].items()))
        else:
            lines.append(f"  {p}: mean {s['mean']:.2f}, range {s['min']:g}-{s['max']:g}")
    if report["warnings"]:
        lines += [f"  warning: {m}" for m in report["warnings"]]
    else:
        lines.append("  no warnings")
    return "\n".join(lines)
