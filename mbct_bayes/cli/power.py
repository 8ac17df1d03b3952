"""``power analytic|simulate|assurance|search|stepped-wedge``: cluster-RCT power and assurance.

``power stepped-wedge`` takes ``--p0/--p1/--tau`` (analytic, and simulated with ``--sims``), or a
fit file: then its assurance over the same population of services as ``power assurance``.

Every subcommand echoes its inputs and names every output; ``--json`` prints one JSON object on
stdout (keys ``power``, ``clusters_per_arm``, ``clusters_per_arm_design``, ``cluster_size``,
``p0``, ``p1``, ``icc``, ``cv``, ``dist``, and per subcommand ``power_mc_low``/``power_mc_high``/
``sims`` or ``assurance``/``p_effect_positive``/``power_at_posterior_mean``; assurance also
``population``, ``p0_marginal``/``p1_marginal``, ``icc``, ``clipped_share``, ``direction``,
``analysis`` and ``assumptions``). Without ``--json`` a short protocol-ready summary is printed
(design, population of services, the answer with its Monte Carlo interval, assumptions,
references). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes.cli._common import add_measured_args, read_responses_option
from mbct_bayes.cli.power_text import (
    analytic_text,
    assurance_text,
    search_text,
    simulate_text,
    stepped_wedge_assurance_text,
    stepped_wedge_text,
)
from mbct_bayes.errors import DataError
from mbct_bayes.io import check_output_path, dumps_json, write_atomic, write_json, write_table
from mbct_bayes.model.fit import load_fit
from mbct_bayes.power import (
    SimulationSettings,
    analytic,
    assurance_from_draws,
    draws_from_fit,
    population_assurance,
    population_from_fit,
    search,
    simulate,
    stepped_wedge,
    stepped_wedge_assurance,
)
from mbct_bayes.power._assurance import assumptions
from mbct_bayes.schema import read_table

if TYPE_CHECKING:  # annotations only
    from mbct_bayes.model.fit import Fit

DRAW_COLUMNS = ("baseline_logit", "sigma_site", "log_odds_ratio")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``power`` and its subcommands."""
    top = sub.add_parser("power", help="cluster-RCT power, sample size and Bayesian assurance")
    inner = top.add_subparsers(dest="power_command", metavar="{analytic,simulate,assurance,search,stepped-wedge}")
    inner.required = True

    p = inner.add_parser(
        "analytic",
        help="closed-form power/sample size; leave one of "
        "--power, --clusters, --cluster-size, --p1 out to solve for it",
    )
    _effect_args(p, marginal=True)
    p.add_argument("--clusters", type=float, help="clusters per arm")
    p.add_argument("--cluster-size", type=float, help="mean members per cluster (1: one yes/no outcome per cluster, e.g. whether each service embeds)")
    p.add_argument("--power", type=float, help="power (the target when solving for another)")
    p.add_argument("--icc", type=float, help="proportion-scale ICC (Donner–Klar)")
    p.add_argument(
        "--cv", type=float, default=0.0, help="coefficient of variation of cluster sizes"
    )
    p.add_argument("--method", choices=("donner-klar", "hayes-bennett"), default="donner-klar")
    p.add_argument(
        "--k", type=float, help="between-cluster coefficient of variation (Hayes–Bennett)"
    )
    p.add_argument(
        "--dist",
        choices=("t", "normal"),
        help="reference distribution (default t; Hayes–Bennett: normal)",
    )
    p.add_argument(
        "--alpha", type=float, default=0.05, help="two-sided significance (default 0.05)"
    )
    p.add_argument(
        "--pooled", action="store_true", help="pooled-variance form (clusterPower 'pooled')"
    )
    p.add_argument("--p1-below", action="store_true", help="solving for p1: look below p0")
    p.add_argument("--max-clusters", type=float, default=1e6)
    p.add_argument("--max-cluster-size", type=float, default=1e6)
    _output_args(p)
    p.set_defaults(func=cmd_analytic)

    p = inner.add_parser("simulate", help="simulated power (logistic-normal clusters)")
    _effect_args(p, marginal=False)
    p.add_argument("--clusters", type=int, required=True, help="clusters per arm")
    p.add_argument("--cluster-size", type=int, required=True, help="mean members per cluster (1: one yes/no outcome per cluster, e.g. whether each service embeds)")
    _variation_args(p)
    _simulation_args(p, sims=2000)
    _output_args(p)
    p.set_defaults(func=cmd_simulate)

    p = inner.add_parser(
        "assurance",
        help="assurance from a fitted posterior over a population of services (the fitted sites, "
        "--sites candidates, or --profile: all alike); or from a draws CSV (all alike)",
    )
    _posterior_args(p)
    p.add_argument("--clusters", type=int, required=True, help="clusters per arm")
    p.add_argument("--cluster-size", type=int, required=True, help="mean members per cluster (1: one yes/no outcome per cluster, e.g. whether each service embeds)")
    p.add_argument(
        "--cv", type=float, default=0.0, help="coefficient of variation of cluster sizes"
    )
    _simulation_args(p, sims=None)
    p.add_argument(
        "--sims-per-draw", type=int, default=1, help="trials per posterior draw (default 1)"
    )
    _output_args(p)
    p.set_defaults(func=cmd_assurance)

    p = inner.add_parser(
        "search",
        help="fewest clusters per arm (or smallest cluster size) "
        "reaching a target power or assurance",
    )
    p.add_argument("--target", type=float, default=0.8, help="target power/assurance (default 0.8)")
    p.add_argument("--solve-for", choices=("clusters", "cluster-size"), default="clusters")
    p.add_argument("--method", choices=("analytic", "simulate", "assurance"), default="simulate")
    _posterior_args(p, required=False)
    p.add_argument("--p0", type=float, help="control proportion (typical cluster when simulating)")
    p.add_argument("--p1", type=float, help="intervention proportion")
    p.add_argument("--odds-ratio", type=float, help="intervention odds ratio (instead of --p1)")
    p.add_argument("--clusters", type=int, help="clusters per arm (when solving for cluster size)")
    p.add_argument(
        "--cluster-size", type=int, help="members per cluster (when solving for clusters)"
    )
    _variation_args(p)
    p.add_argument(
        "--formula",
        choices=("donner-klar", "hayes-bennett"),
        default="donner-klar",
        help="analytic formula (--method analytic)",
    )
    p.add_argument("--k", type=float, help="between-cluster CV of proportions (Hayes–Bennett)")
    p.add_argument("--dist", choices=("t", "normal"), help="analytic reference distribution")
    _simulation_args(p, sims=2000)
    p.add_argument("--max-clusters", type=int, default=100, help="search limit (default 100)")
    p.add_argument("--max-cluster-size", type=int, default=1000, help="search limit (default 1000)")
    p.add_argument("--curve-out", help="write the power curve table (CSV/Parquet)")
    p.add_argument("--figure-out", help="write the power curve figure (PNG/PDF/SVG)")
    _output_args(p)
    p.set_defaults(func=cmd_search)

    p = inner.add_parser(
        "stepped-wedge",
        help="power of a cross-sectional stepped-wedge trial (Hussey & Hughes 2007, as swCRTdesign's swPwr) "
        "from --p0/--p1/--tau; or, given a fit, its assurance over a population of services",
    )
    p.add_argument(
        "fit", nargs="?", help="fit file (.nc): assurance over the fitted sites, --sites candidates or a --profile"
    )
    p.add_argument("--sequences", required=True, help="clusters crossing over at each step, e.g. 6,6,6,6")
    p.add_argument("--periods", type=int, help="periods (default sequences + 1; the first all control)")
    p.add_argument("--cluster-size", type=int, required=True, help="people measured per cluster-period")
    p.add_argument("--p0", type=float, help="control proportion (mean over clusters; without a fit)")
    p.add_argument("--p1", type=float, help="intervention proportion (mean over clusters; without a fit)")
    p.add_argument("--tau", type=float, help="between-cluster SD of the proportion (swPwr's tau), or --icc")
    p.add_argument("--icc", type=float, help="ICC tau^2 / (tau^2 + pbar (1 - pbar)), instead of --tau")
    p.add_argument("--lever", default="F", help="with a fit: predictor the intervention moves (default F)")
    p.add_argument(
        "--delta", type=float, default=1.0, help="with a fit: how far it moves it, in scale points (default 1)"
    )
    p.add_argument("--profile", help="with a fit: all services alike at these predictors, e.g. E=3,C=3,F=2")
    p.add_argument(
        "--sites", help="with a fit: candidate services CSV (site, region, E, C, F), randomised to the sequences"
    )
    p.add_argument("--stratify", choices=("region",), help="randomise the --sites candidates within region strata")
    add_measured_args(p)
    p.add_argument(
        "--direction", choices=("increase", "decrease"), help="with a fit: intended direction of the effect"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided significance (default 0.05)")
    p.add_argument(
        "--time",
        choices=("categorical", "linear"),
        default="categorical",
        help="period fixed effects (default) or a linear time trend",
    )
    p.add_argument(
        "--sims", type=int, help="simulate this many trials (without a fit: also; with a fit default one per draw)"
    )
    p.add_argument("--seed", type=int, help="random seed for --sims (default random, reported)")
    _output_args(p)
    p.set_defaults(func=cmd_stepped_wedge)


# ---------------------------------------------------------------------------- argument groups
def _effect_args(p: argparse.ArgumentParser, *, marginal: bool) -> None:
    kind = "arm proportion" if marginal else "probability of a typical cluster"
    p.add_argument("--p0", type=float, required=True, help=f"control {kind}")
    p.add_argument("--p1", type=float, help=f"intervention {kind}")
    p.add_argument(
        "--odds-ratio", type=float, help="intervention odds ratio on p0 (instead of --p1)"
    )


def _variation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--icc", type=float, help="ICC (proportion scale at p0 unless --icc-scale logit)"
    )
    p.add_argument("--icc-scale", choices=("proportion", "logit"), default="proportion")
    p.add_argument("--sigma-b", type=float, help="between-cluster SD on the logit scale (or --icc)")
    p.add_argument(
        "--cv", type=float, default=0.0, help="coefficient of variation of cluster sizes"
    )


def _simulation_args(p: argparse.ArgumentParser, *, sims: int | None) -> None:
    default = f"default {sims}" if sims else "default one per posterior draw"
    p.add_argument("--sims", type=int, default=sims, help=f"simulated trials ({default})")
    p.add_argument(
        "--seed", type=int, help="random seed (same seed, same numbers; default random, reported)"
    )
    p.add_argument(
        "--alpha", type=float, default=0.05, help="two-sided significance (default 0.05)"
    )
    p.add_argument(
        "--analysis",
        choices=("t", "welch", "gee", "adjusted"),
        default="t",
        help="t: pooled t-test on cluster proportions (default); welch; gee: logistic "
        "GEE with Kauermann–Carroll SE, t(2c-2); adjusted: cluster-level analysis adjusted for "
        "baseline E, C, F (needs a population of services). Simulated power reports the "
        "analysis's type-I error at the design (actual_size, size_holds)",
    )
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (-1: all CPUs)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) to run on")
    p.add_argument("--chunk-size", type=int, default=1000, help="trials per parallel chunk")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _posterior_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("fit", nargs="?", help="fit file (.nc) to take the posterior from")
    p.add_argument(
        "--draws",
        help=f"CSV of posterior draws with columns {', '.join(DRAW_COLUMNS)} (instead of a fit)",
    )
    p.add_argument("--lever", default="F", help="predictor the intervention moves (default F)")
    p.add_argument(
        "--delta", type=float, default=1.0, help="how far it moves it, in scale points (default 1; negative lowers it)"
    )
    p.add_argument(
        "--profile",
        help="all services alike at these predictors, e.g. E=3,C=3,F=2 (others at the midpoints); "
        "default: a population of services (the fitted sites, or --sites)",
    )
    p.add_argument(
        "--sites",
        help="candidate services CSV (site, region, E, C, F; one row each), randomised to the arms "
        "in each simulated trial (default: the fitted data's sites, resampled)",
    )
    p.add_argument(
        "--stratify", choices=("region",), help="randomise the --sites candidates within region strata"
    )
    add_measured_args(p)
    p.add_argument(
        "--direction",
        choices=("increase", "decrease"),
        help="intended direction of the effect on embedding (default: the sign of the posterior-mean effect)",
    )
    p.set_defaults(posterior_required=required)


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--out", help="also write the result as JSON to this file")


# ---------------------------------------------------------------------------- handlers
def cmd_analytic(args: argparse.Namespace) -> int:
    _check_outputs(args)
    result = analytic(
        p0=args.p0,
        p1=args.p1,
        odds_ratio=args.odds_ratio,
        clusters_per_arm=args.clusters,
        cluster_size=args.cluster_size,
        power=args.power,
        icc=args.icc,
        cv=args.cv,
        k=args.k,
        alpha=args.alpha,
        dist=args.dist,
        method=args.method,
        pooled=args.pooled,
        p1_greater=not args.p1_below,
        max_clusters=args.max_clusters,
        max_cluster_size=args.max_cluster_size,
    )
    return _emit(args, result.to_dict(), text=analytic_text)


def cmd_simulate(args: argparse.Namespace) -> int:
    _check_outputs(args)
    result = simulate(
        p0=args.p0,
        p1=args.p1,
        odds_ratio=args.odds_ratio,
        clusters_per_arm=args.clusters,
        cluster_size=args.cluster_size,
        icc=args.icc,
        sigma_b=args.sigma_b,
        icc_scale=args.icc_scale,
        cv=args.cv,
        **_simulation_settings(args).keywords(),
    )
    return _emit(args, result.to_dict(), text=simulate_text)


def cmd_assurance(args: argparse.Namespace) -> int:
    _check_outputs(args)
    posterior, source = _load_posterior(args)
    run = dict(
        clusters_per_arm=args.clusters,
        cluster_size=args.cluster_size,
        cv=args.cv,
        sims_per_draw=args.sims_per_draw,
        direction=args.direction,
        **_simulation_settings(args).keywords(),
    )
    if "population" in posterior:
        result = population_assurance(posterior["population"], **run)
    else:
        result = assurance_from_draws(
            posterior["baseline_logit"], posterior["sigma_site"], posterior["log_odds_ratio"], **run
        )
    result = result.updated(**source)
    if "population" not in posterior:  # all alike: the sentences name the lever and profile now known
        result = result.updated(assumptions=assumptions(result))
    return _emit(args, result.to_dict(), text=assurance_text)


def cmd_search(args: argparse.Namespace) -> int:
    _check_outputs(args, args.curve_out, args.figure_out)
    posterior: dict[str, Any] = {}
    source: dict[str, Any] = {}
    if args.method == "assurance":
        posterior, source = _load_posterior(args)
    elif args.fit or args.draws or args.sites:
        raise DataError("a fit, --draws or --sites is used only with --method assurance")
    population = posterior.pop("population", None)
    result = search(
        target=args.target,
        solve_for="clusters_per_arm" if args.solve_for == "clusters" else "cluster_size",
        method=args.method,
        p0=args.p0,
        p1=args.p1,
        odds_ratio=args.odds_ratio,
        clusters_per_arm=args.clusters,
        cluster_size=args.cluster_size,
        icc=args.icc,
        sigma_b=args.sigma_b,
        icc_scale=args.icc_scale,
        cv=args.cv,
        formula=args.formula,
        k=args.k,
        dist=args.dist,
        draws=posterior or None,
        population=population,
        direction=args.direction,
        max_clusters=args.max_clusters,
        max_cluster_size=args.max_cluster_size,
        **_simulation_settings(args).keywords(),
    )
    result = result.updated(**source)
    curve = result.curve
    if args.curve_out:
        write_table(args.curve_out, curve)
    if args.figure_out:
        chosen = (
            result["clusters_per_arm"] if args.solve_for == "clusters" else result["cluster_size"]
        )
        from mbct_bayes.plots.power import (
            power_curve_figure,  # deferred: it draws figures, and matplotlib takes over a second to import
        )
        fig = power_curve_figure(curve, target=args.target, chosen=chosen)
        fmt = Path(args.figure_out).suffix.lstrip(".").lower() or "png"
        write_atomic(args.figure_out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=150))
    return _emit(args, result.to_dict(), table_key="curve", text=search_text)


# ---------------------------------------------------------------------------- helpers
def _simulation_settings(args: argparse.Namespace) -> Any:
    """The :class:`~mbct_bayes.power.SimulationSettings` of ``--sims/--seed/--alpha/--analysis/--jobs/...``."""
    return SimulationSettings(
        sims=args.sims, alpha=args.alpha, seed=args.seed, analysis=args.analysis, chunk_size=args.chunk_size,
        n_jobs=args.jobs, scheduler=args.scheduler, progress=not args.quiet,
    )


def _check_outputs(args: argparse.Namespace, *paths: str | None) -> None:
    for path in (getattr(args, "out", None), *paths):
        if path:
            check_output_path(path)


def parse_profile(text: str | None) -> dict[str, float] | None:
    """``"E=3,C=2.5"`` -> ``{"E": 3.0, "C": 2.5}``."""
    if not text:
        return None
    profile: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            profile[name.strip()] = float(value)
        except ValueError:
            raise DataError(
                f"--profile {text!r}: write NAME=VALUE pairs separated by commas, e.g. E=3,C=3,F=2"
            ) from None
    return profile


def _load_posterior(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The posterior of a trial: ``{"population": Population}`` or the three draw arrays; and the source.

    From a fit without ``--profile``: a population of services (the fitted sites, or the
    ``--sites`` candidates). With ``--profile`` or ``--draws``: all services alike.
    """
    if bool(args.fit) == bool(args.draws):
        raise DataError("give a fit file (FIT.nc) or --draws CSV for the posterior, one of the two")
    profile = parse_profile(args.profile)
    if (args.sites or args.stratify) and (args.draws or profile is not None):
        raise DataError(
            "--sites/--stratify describe a population of services from a fit; drop --profile (all services "
            "alike) or use a fit file instead of --draws"
        )
    if args.stratify and not args.sites:
        raise DataError("--stratify region randomises candidate services; give them with --sites")
    if args.draws:


        path = Path(args.draws)
        table = read_table(path, what="posterior draws")
        missing = [c for c in DRAW_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"give {', '.join(DRAW_COLUMNS)}, one row per posterior draw"
            )
        draws = {}
        for c in DRAW_COLUMNS:
            values = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():
                rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
                raise DataError(f"{path}: column {c!r} rows {rows}: not a finite number; every draw needs a value")
            draws[c] = values
        return draws, {"draws_file": str(path), "population": "profile"}

    fit = load_fit(args.fit)
    source = {"fit": str(args.fit), "lever": args.lever, "delta": args.delta, "profile": profile}
    if profile is not None:
        return draws_from_fit(fit, lever=args.lever, delta=args.delta, profile=profile), source

    sites = _read_sites(args, fit)
    if args.sites:
        source["sites_file"] = str(args.sites)
    population = population_from_fit(
        fit, lever=args.lever, delta=args.delta, sites=sites, stratify=args.stratify, source=str(args.sites),
        responses=read_responses_option(args), scores_are_true=args.scores_are_true,
    )
    return {"population": population}, source


def _read_sites(args: argparse.Namespace, fit: Fit) -> Any:
    """The ``--sites`` candidates table (None without it)."""
    if not args.sites:
        return None

    spec = fit.spec
    return read_table(Path(args.sites), what="candidate sites", id_columns=(spec.group, spec.region or "region"))


def _emit(
    args: argparse.Namespace, result: dict[str, Any], table_key: str | None = None, text: Any = None
) -> int:
    """Write ``--out``; print JSON with ``--json``, else ``text(result)`` (a summary) or every key."""
    if args.out:
        write_json(args.out, result)
    if args.json:
        print(dumps_json(result))
        return 0
    if text is not None:
        print(text(result))
    else:
        for key, value in result.items():
            if key == table_key or value is None:
                continue
            if isinstance(value, float):
                value = f"{value:.6g}"
            print(f"{key}: {value}")
    if table_key and result.get(table_key):
        print(
            pd.DataFrame(result[table_key]).to_string(
                index=False, float_format=lambda v: f"{v:.3f}"
            )
        )
    if result.get("size_holds") is False:
        print(f"WARNING: {result['size_note']}")
    sys.stdout.flush()
    return 0


def cmd_stepped_wedge(args: argparse.Namespace) -> int:
    """``power stepped-wedge``: analytic (and with --sims simulated) power, or assurance from a fit."""
    _check_outputs(args)
    if args.fit:
        return _stepped_wedge_from_fit(args)
    given = [f"--{name}" for name in ("profile", "sites", "stratify", "direction") if getattr(args, name)]
    if given:
        raise DataError(f"{', '.join(given)} describe a trial from a fit; give the fit file (FIT.nc) first")
    if args.p0 is None or args.p1 is None:
        raise DataError("give --p0 and --p1 (with --tau or --icc), or a fit file (FIT.nc) for assurance")
    result = stepped_wedge(
        sequences=args.sequences,
        periods=args.periods,
        cluster_size=args.cluster_size,
        p0=args.p0,
        p1=args.p1,
        tau=args.tau,
        icc=args.icc,
        alpha=args.alpha,
        time=args.time,
        sims=args.sims,
        seed=args.seed,
    )
    return _emit(args, result.to_dict(), text=stepped_wedge_text)


def _stepped_wedge_from_fit(args: argparse.Namespace) -> int:
    given = [f"--{name}" for name in ("p0", "p1", "tau", "icc") if getattr(args, name) is not None]
    if given:
        raise DataError(
            f"{', '.join(given)}: with a fit the proportions and the between-cluster spread come from its "
            "posterior; drop them (or drop the fit for the analytic power)"
        )
    profile = parse_profile(args.profile)
    if args.stratify and not args.sites:
        raise DataError("--stratify region randomises candidate services; give them with --sites")
    if args.sites and profile is not None:
        raise DataError("--sites describes a population of services; drop --profile (all services alike)")
    fit = load_fit(args.fit)
    result = stepped_wedge_assurance(
        fit,
        lever=args.lever,
        delta=args.delta,
        sites=_read_sites(args, fit),
        stratify=args.stratify,
        profile=profile,
        sequences=args.sequences,
        periods=args.periods,
        cluster_size=args.cluster_size,
        alpha=args.alpha,
        sims=args.sims,
        seed=args.seed,
        time=args.time,
        direction=args.direction,
        responses=read_responses_option(args),
        scores_are_true=args.scores_are_true,
    )
    result = result.updated(fit=str(args.fit), **({"sites_file": str(args.sites)} if args.sites else {}))
    return _emit(args, result.to_dict(), text=stepped_wedge_assurance_text)
