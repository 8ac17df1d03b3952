"""``validate``: check an observations file against a model spec, as the model would read it."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import pandas as pd

from mbct_bayes.cli._common import outcome_counts
from mbct_bayes.io import dumps_json
from mbct_bayes.schema import DataWarning, read_table, validate_observations
from mbct_bayes.spec import ModelSpec


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the ``mbct-bayes`` parser."""
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
        "outcome": {} if args.new_data else outcome_counts(df, spec),
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
