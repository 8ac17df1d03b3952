"""``loo``: the fast first look — PSIS leave-one-observation-out of saved fits.

``mbct-bayes loo FIT.nc [FIT2.nc ...] [--json] [--out FILE]`` prints elpd, its SE, p_loo and the
Pareto-k counts of each fit, and with two or more fits ArviZ's comparison table. It reuses the
draws already saved, so it takes seconds; it scores fit to *known* sites, not new-site
forecasts — for those run ``mbct-bayes evaluate`` (leave-site-out).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.crossval import check_same_observations, compare_loo, loo
from mbct_bayes.io import check_output_path, dumps_json, write_json
from mbct_bayes.model.fit import load_fit

NOTE = (
    "leave-one-observation-out: each observation is predicted with its own site's other data, "
    "so this measures fit to known sites; for new-site forecasts use 'mbct-bayes evaluate'"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``loo`` to the ``mbct-bayes`` parser."""
    p = subparsers.add_parser(
        "loo",
        help="PSIS-LOO of saved fits (leave-one-observation-out), and their comparison",
        description=(
            "PSIS leave-one-observation-out (ArviZ) of one or more saved fits with Pareto-k "
            "diagnostics; with two or more fits of the same observations, ArviZ's comparison "
            "(stacking weights). " + NOTE + "."
        ),
    )
    p.add_argument("fits", nargs="+", metavar="FIT.nc", help="fits saved by 'mbct-bayes fit'")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--out", metavar="FILE.json", help="also write the JSON result to this file")
    p.set_defaults(func=cmd_loo)


def _names(paths: list[str]) -> list[str]:
    """Short names for the fits: file stems, or the paths when two stems clash."""
    stems = [Path(p).stem for p in paths]
    return stems if len(set(stems)) == len(stems) else list(paths)


def loo_report(paths: list[str]) -> tuple[dict[str, Any], list[str]]:
    """PSIS-LOO of each fit (and their comparison): the JSON object and the warnings raised."""
    if len(set(map(str, paths))) != len(paths):
        raise DataError("the same fit file is given twice; give each fit once")
    fits = dict(zip(_names(paths), (load_fit(p) for p in paths), strict=True))
    if len(fits) > 1:
        check_same_observations(fits)
    out: dict[str, Any] = {"method": NOTE, "fits": {}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = {name: loo(fit) for name, fit in fits.items()}
        out["fits"] = {name: r.to_dict() for name, r in results.items()}
        if len(fits) > 1:
            table = compare_loo(results)
            out["compare"] = [
                {"fit": str(name), **{str(k): _plain(v) for k, v in row.items()}}
                for name, row in table.iterrows()
            ]
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    return out, messages


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _text(report: dict[str, Any]) -> str:
    lines = ["PSIS-LOO (" + report["method"] + ")", ""]
    lines.append(f"{'fit':<24} {'elpd':>10} {'SE':>7} {'p_loo':>7} {'k>0.7':>6}  reliable")
    for name, r in report["fits"].items():
        lines.append(
            f"{name[:24]:<24} {r['elpd']:>10.2f} {r['se']:>7.2f} {r['p_loo']:>7.2f} "
            f"{r['pareto_k']['n_above_0.7']:>6d}  {'yes' if r['reliable'] else 'no'}"
        )
    if "compare" in report:
        lines += ["", f"{'rank':<5}{'fit':<24} {'elpd_diff':>10} {'dse':>7} {'weight':>7}"]
        for position, row in enumerate(report["compare"], start=1):  # best first
            lines.append(
                f"{position:<5}{str(row['fit'])[:24]:<24} "
                f"{float(row.get('elpd_diff', 0.0)):>10.2f} {float(row.get('dse', 0.0)):>7.2f} "
                f"{float(row.get('weight', 0.0)):>7.3f}"
            )
    return "\n".join(lines)


def cmd_loo(args: argparse.Namespace) -> int:
    """Print (and optionally write) PSIS-LOO of the fits."""
    if args.out:
        check_output_path(args.out)
    report, messages = loo_report(args.fits)
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    if args.out:
        write_json(args.out, report)
    print(dumps_json(report) if args.json else _text(report))
    return 0
