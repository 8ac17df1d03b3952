"""``forecast``: each service's state at its next waves from a transition model (or a count model's rate), and what if.

``mbct-bayes forecast FIT.nc SITES.csv --horizon 3 [--step S] [--what-if F=-1.5@2 ...] [--json]
[--out CSV] [--seed N] [--region-mode mixture|new]``. SITES holds each site's latest wave (site,
time, state, E, C, F, region). See :mod:`mbct_bayes.forecast.journey` for the method.
"""

from __future__ import annotations

import argparse

from mbct_bayes.cli._common import add_region_mode, say
from mbct_bayes.forecast.journey import CountForecast, Forecast, check_horizon, forecast, parse_change
from mbct_bayes.io import check_output_path, dumps_json, write_table
from mbct_bayes.model.fit import load_fit
from mbct_bayes.schema import read_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``forecast`` to the ``mbct-bayes`` parser."""
    p = sub.add_parser(
        "forecast",
        help="forecast each site's state (transition models) or access rate (count models) at its next waves, with what-ifs",
        description=(
            "Posterior-predictive forecasts of each site's state at the next --horizon waves from a "
            "transition model, starting from each site's latest wave. E, C, F stay at their latest values "
            "unless --what-if changes them from a wave on; the what-if is forecast with common random "
            "numbers, so its change in P(embedded at the horizon) has no simulation noise. A count model "
            "(poisson, negbinomial) fitted to a panel gives the expected rate per rate_per units of exposure "
            "instead, and the what-if its change in the rate at the horizon."
        ),
    )
    p.add_argument("fit", metavar="FIT.nc", help="a saved transition-model fit, or a count model fitted to a panel")
    p.add_argument(
        "sites", metavar="SITES.csv",
        help="each site's latest wave: site, time, state (the outcome), predictors, region",
    )
    p.add_argument("--horizon", type=int, required=True, help="number of future waves (1 or more)")
    p.add_argument(
        "--step", type=float,
        help="time between future waves (default: the median gap between the fitted panel's waves)",
    )
    p.add_argument(
        "--what-if", dest="what_if", action="append", default=[], metavar="X=CHANGE@WAVE",
        help="change a predictor from a future wave on, e.g. F=-1.5@2 (the champion leaves before wave 2); "
        "repeat for several changes applied together",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the new-site and path draws (default 0)")
    add_region_mode(p)
    p.add_argument("--out", help="table to write, one row per site and future wave (CSV, or Parquet)")
    p.add_argument("--json", action="store_true", help="print the forecast as one JSON object")
    p.set_defaults(func=cmd_forecast)


def rate_text(result: CountForecast) -> str:
    """A count forecast as plain text: the expected rate with its 90% interval per site and wave."""
    lines = [f"{result.label} at the next {result.horizon} wave(s), every {result.step:g} time units "
             "(posterior mean [5%, 95%] over draws)"]
    for row in result.summary().to_dict(orient="records"):
        lines.append(f"{row['site']}  wave {row['wave']} (time {row['time']:g}): "
                     f"{row['rate']:.4g} [{row['rate_q05']:.4g}, {row['rate_q95']:.4g}]")
    per_site = result.scenario_summary()
    if per_site is not None and result.scenario is not None:
        labels = ", ".join(c.label() for c in result.scenario.changes)
        lines.append(f"what if {labels}: change in the rate at wave {result.horizon} (mean [5%, 95%])")
        for row in per_site.to_dict(orient="records"):
            lines.append(
                f"{row['site']}  {row['rate_baseline']:.4g} -> {row['rate_scenario']:.4g}: "
                f"{row['delta_rate']:+.4g} [{row['delta_rate_q05']:+.4g}, {row['delta_rate_q95']:+.4g}]"
            )
    return "\n".join(lines)


def forecast_text(result: Forecast | CountForecast) -> str:
    """The forecast as a plain-text table: P(each state) (or the rate) with its 90% interval per site and wave."""
    if isinstance(result, CountForecast):
        return rate_text(result)
    table = result.summary()
    names = [str(level) for level in result.levels]
    lines = [f"state probabilities at the next {result.horizon} wave(s), every {result.step:g} time units "
             "(posterior mean [5%, 95%] over draws)"]
    for row in table.to_dict(orient="records"):
        cells = "  ".join(f"{n} {row[f'p_{n}']:.2f} [{row[f'p_{n}_q05']:.2f}, {row[f'p_{n}_q95']:.2f}]" for n in names)
        lines.append(f"{row['site']}  wave {row['wave']} (time {row['time']:g}): {cells}")
    per_site = result.scenario_summary()
    if per_site is not None and result.scenario is not None:
        labels = ", ".join(c.label() for c in result.scenario.changes)
        lines.append(f"what if {labels}: change in P({names[-1]} at wave {result.horizon}) (mean [5%, 95%])")
        for row in per_site.to_dict(orient="records"):
            lines.append(
                f"{row['site']}  {row['p_baseline']:.2f} -> {row['p_scenario']:.2f}: "
                f"{row['delta_p']:+.3f} [{row['delta_p_q05']:+.3f}, {row['delta_p_q95']:+.3f}]"
            )
    return "\n".join(lines)


def cmd_forecast(args: argparse.Namespace) -> int:
    # every option is checked before the (slower) fit is read, so a typo fails at once
    check_horizon(args.horizon)
    changes = [parse_change(text) for text in args.what_if]
    out = check_output_path(args.out) if args.out else None
    fit = load_fit(args.fit)
    id_columns = [c for c in (fit.spec.group, fit.spec.region) if c]
    sites = read_table(args.sites, what="sites", id_columns=id_columns)
    result = forecast(
        fit, sites, horizon=args.horizon, step=args.step, scenarios=changes, seed=args.seed,
        region_mode=args.region_mode, source=str(args.sites),
    )
    if out is not None:
        write_table(out, result.summary())
        say(f"forecast: {len(result.sites)} site(s) × {result.horizon} wave(s) written to {out}")
    for note in result.notes:
        say(f"note: {note}")
    if result.scenario is not None:
        for note in result.scenario.notes:
            say(f"note: {note}")
    print(dumps_json(result.to_dict()) if args.json else forecast_text(result))
    return 0
