"""Bayesian assurance: the chance the trial succeeds, averaged over what the fit still doubts.

Each simulated trial takes one posterior draw and is simulated and analysed by the kernel of
:func:`mbct_bayes.power.simulate` (same seeding). The share of trials significant (two-sided) in
the intended direction is the assurance (O'Hagan, Stevens & Campbell 2005). Two ways to say
which services the trial recruits:

* a **population of services** (:mod:`mbct_bayes.power._population`; the default from a fit):
  each cluster is a service with its own E, C, F (the fitted data's sites resampled, or the
  candidate services randomised to the arms), its own site effect and its region's effect;
* **all alike** (``population="profile"``): every cluster has one baseline logit and differs
  only by ``N(0, sigma_b)`` — the three-array path, also used for draws given as a table.

The intended direction is ``"increase"`` or ``"decrease"`` (default: the sign of the
posterior-mean effect). A trial can only succeed often when the effect lies in that direction,
so assurance is bounded by ``P(direction) + (alpha/2) * (1 - P(direction))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from mbct_bayes.errors import DataError
from mbct_bayes.planning.predict import trial_inputs, trial_refusal
from mbct_bayes.power import _checks as check
from mbct_bayes.power._icc import icc_from_sigma_b, marginal_proportion
from mbct_bayes.power._population import (
    Population,
    candidates_population,
    check_enough_services,
    describe,
    fitted_sites_population,
    implied,
    population_at_means,
    trial_arrays,
)
from mbct_bayes.power._results import AssuranceResult, Curve
from mbct_bayes.power._settings import SimulationSettings
from mbct_bayes.power._simulate import DEFAULT_CHUNK, design_grid, simulate_counts, wilson_interval
from mbct_bayes.power._size import SIZE_SIMS, holds, size_band, size_note

if TYPE_CHECKING:  # power does not import the model stack
    from mbct_bayes.model.fit import Fit

DRAW_KEYS = ("baseline_logit", "sigma_site", "log_odds_ratio")
DIRECTIONS = ("auto", "increase", "decrease")


LOGIT_LIMIT = 30.0
SIGMA_LIMIT = 10.0


def _check_draws(p0_logit_draws: ArrayLike, sigma_b_draws: ArrayLike, log_or_draws: ArrayLike):
    names = ("p0_logit_draws", "sigma_b_draws", "log_or_draws")
    arrays = []
    for name, values in zip(names, (p0_logit_draws, sigma_b_draws, log_or_draws), strict=True):
        a = np.asarray(values, dtype=float).ravel()
        if a.size == 0:
            raise DataError(f"{name} is empty; give one value per posterior draw")
        if not np.isfinite(a).all():
            raise DataError(
                f"{name} has {int((~np.isfinite(a)).sum())} non-finite values; "
                "drop or fix those draws"
            )
        arrays.append(a)
    sizes = {a.size for a in arrays}
    if len(sizes) != 1:
        raise DataError(
            "posterior draws differ in length ("
            + ", ".join(f"{n} {a.size}" for n, a in zip(names, arrays, strict=True))
            + "); give one value per draw in each"
        )
    if (arrays[1] < 0).any():
        raise DataError("sigma_b_draws has negative values; a between-cluster SD is >= 0")
    # Beyond these a draw is not a plausible trial: logit 30 is P = 1 - 1e-13, and a logit-scale
    # SD of 10 puts clusters at 0 and 1. Such values come from a broken file, not a posterior.
    for name, a, limit in zip(names, arrays, (LOGIT_LIMIT, SIGMA_LIMIT, LOGIT_LIMIT), strict=True):
        bad = np.abs(a) > limit
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name} draw {first + 1} is {a[first]:.4g}, beyond the plausible ±{limit:g} on the logit scale; "
                "check the draws (are they on the logit scale?)"
            )
    return arrays


def _resolve_direction(direction: str | None, mean_effect: float) -> int:
    """+1 (success is a significant increase) or -1 (decrease).

    ``None``/``"auto"``: the sign of the posterior-mean effect (an increase when it is 0).
    """
    direction = check.choice("direction", direction or "auto", DIRECTIONS)
    if direction == "auto":
        return -1 if mean_effect < 0 else 1
    return 1 if direction == "increase" else -1


def _draw_order(seed: int, n_draws: int, sims: int) -> np.ndarray:
    """Each trial's posterior draw: the draws cycled in a seeded random order.

    The random order keeps fewer trials than draws from all coming from the first chain.
    """
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x7FFFFFFF,))).permutation(n_draws)
    return order[np.arange(sims) % n_draws]


def _rows(counts, at_mean, clusters, sizes, sims, ci_level, extra) -> list[dict[str, Any]]:
    rows = []
    for i, m in enumerate(sizes):
        low, high = wilson_interval(counts[0, i], sims, ci_level)
        low_m, high_m = wilson_interval(at_mean[0, i], sims, ci_level)
        for j, c in enumerate(clusters):
            row = {
                "clusters_per_arm": c,
                "cluster_size": m,
                "assurance": counts[0, i, j] / sims,
                "assurance_mc_low": low[j],
                "assurance_mc_high": high[j],
                "power_at_posterior_mean": at_mean[0, i, j] / sims,
                "power_at_posterior_mean_mc_low": low_m[j],
                "power_at_posterior_mean_mc_high": high_m[j],
            }
            row.update({k: (v[j] if isinstance(v, np.ndarray) else v) for k, v in extra.items()})
            row["sims"] = sims
            rows.append(row)
    return rows


def _direction_summary(effect: np.ndarray, direction: int, alpha: float) -> dict[str, Any]:
    """Share of draws whose effect is positive / in the intended direction, and the bound.

    A trial can succeed often only where the effect lies in the intended direction, so
    assurance is at most ``P(direction) + alpha/2 * (1 - P(direction))``.
    """
    p_positive = float((effect > 0).mean())
    p_direction = float((direction * effect > 0).mean())
    return {
        "direction": "increase" if direction > 0 else "decrease",
        "p_effect_positive": p_positive,
        "p_effect_in_direction": p_direction,
        "assurance_bound": p_direction + alpha / 2.0 * (1.0 - p_direction),
    }


def assurance_curve(
    p0_logit_draws: ArrayLike,
    sigma_b_draws: ArrayLike,
    log_or_draws: ArrayLike,
    *,
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    cv: float = 0.0,
    alpha: float = 0.05,
    sims: int | None = None,
    sims_per_draw: int = 1,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
    direction: str | None = None,
) -> pd.DataFrame:
    """Assurance and power at the posterior means for every design in a grid (all services alike).

    All designs and both quantities share one set of random numbers, so differences between
    rows are not Monte Carlo noise. Arguments as :func:`assurance_from_draws`.

    Returns
    -------
    pandas.DataFrame
        ``clusters_per_arm``, ``cluster_size``, ``assurance``, ``assurance_mc_low``,
        ``assurance_mc_high``, ``power_at_posterior_mean`` (with ``_mc_low``/``_mc_high``),
        ``p_effect_positive``, ``sims``. (The inputs and posterior summaries the rows share are the keys of
        :func:`assurance_from_draws`'s result; ``draws_curve`` returns them with the table.)
    """
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    draws = (p0_logit_draws, sigma_b_draws, log_or_draws)
    return draws_curve(draws, clusters, cluster_sizes, cv=cv, settings=settings, sims_per_draw=sims_per_draw,
                       direction=direction).table


def _run_settings(n_draws: int, clusters, cluster_sizes, cv, settings: SimulationSettings, sims_per_draw: int):
    """Checked run of an assurance: ``(cv, settings with sims set, sims_per_draw, clusters, sizes)``."""
    cv = check.nonnegative("cv", cv)
    settings = settings.checked()
    sims_per_draw = check.integer("sims_per_draw", sims_per_draw, 1)
    if settings.sims is None:
        settings = replace(settings, sims=n_draws * sims_per_draw)
    clusters, sizes = design_grid(clusters, cluster_sizes, cv=cv)
    return cv, settings, sims_per_draw, clusters, sizes


def _kernel_common(settings: SimulationSettings, clusters, sizes, cv: float, sign: int) -> dict[str, Any]:
    return dict(sims=settings.sims, clusters=clusters, sizes=sizes, cv=cv, direction=sign, **settings.kernel_keywords())


def draws_curve(
    draws: tuple[ArrayLike, ArrayLike, ArrayLike],
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    *,
    cv: float,
    settings: SimulationSettings,
    sims_per_draw: int = 1,
    direction: str | None = None,
) -> Curve:
    """:func:`assurance_curve` with its inputs: ``draws`` is (baseline logits, sigma_b, log odds ratios)."""
    base, sigma, log_or = _check_draws(*draws)
    n_draws = base.size
    cv, settings, sims_per_draw, clusters, sizes = _run_settings(
        n_draws, clusters, cluster_sizes, cv, settings, sims_per_draw
    )
    sims = settings.resolved_sims
    sign = _resolve_direction(direction, float(log_or.mean()))
    index = _draw_order(settings.resolved_seed, n_draws, sims)
    common = _kernel_common(settings, clusters, sizes, cv, sign)
    counts = simulate_counts(
        logit_p0=base[index],
        log_or=log_or[index],
        sigma_b=sigma[index],
        label="power assurance",
        **common,
    )
    means = {"baseline_logit": base.mean(), "sigma_b": sigma.mean(), "log_or": log_or.mean()}
    at_mean = simulate_counts(
        logit_p0=means["baseline_logit"],
        log_or=means["log_or"],
        sigma_b=means["sigma_b"],
        label="power at posterior mean",
        **common,
    )
    directed = _direction_summary(log_or, sign, settings.alpha)
    extra = {key: directed[key] for key in ("p_effect_positive", "p_effect_in_direction")}
    table = pd.DataFrame(_rows(counts, at_mean, clusters, sizes, sims, settings.ci_level, extra))
    p0 = float(special.expit(means["baseline_logit"]))
    p1 = float(special.expit(means["baseline_logit"] + means["log_or"]))
    inputs = {
        "population": "profile",
        "p0": p0,
        "p1": p1,
        "odds_ratio": float(np.exp(means["log_or"])),
        "p0_marginal": marginal_proportion(p0, means["sigma_b"]),
        "p1_marginal": marginal_proportion(p1, means["sigma_b"]),
        "sigma_b": float(means["sigma_b"]),
        "icc": icc_from_sigma_b(p0, means["sigma_b"]),
        "icc_logit": icc_from_sigma_b(p0, means["sigma_b"], scale="logit"),
        "clipped_share": 0.0,
        "log_or_mean": float(means["log_or"]),
        "log_or_sd": float(log_or.std(ddof=1)) if n_draws > 1 else 0.0,
        **directed,
        **_run_inputs(n_draws, sims_per_draw, cv, settings),
    }
    inputs["assumptions"] = assumptions(inputs)
    return Curve(table, inputs)


def _run_inputs(n_draws: int, sims_per_draw: int, cv: float, settings: SimulationSettings) -> dict[str, Any]:
    return {
        "draws_total": n_draws,
        "draws_used": int(min(n_draws, settings.resolved_sims)),
        "sims": settings.sims,
        "sims_per_draw": sims_per_draw,
        "cv": cv,
        "alpha": settings.alpha,
        "seed": settings.seed,
        "analysis": settings.analysis,
        "dist": "t",
        "ci_level": settings.ci_level,
        "ci_method": "wilson",
        "chunk_size": settings.chunk_size,
    }


def population_curve(
    population: Population,
    *,
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    cv: float = 0.0,
    alpha: float = 0.05,
    sims: int | None = None,
    sims_per_draw: int = 1,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
    direction: str | None = None,
) -> pd.DataFrame:
    """Assurance over a population of trial services for every design in a grid.

    Each simulated trial takes one posterior draw and recruits its clusters from ``population``
    (``mbct_bayes.power._population``): each cluster's control logit is the fixed part at its
    own E, C, F plus its region's effect plus its own site effect, and the intervention adds the
    change from moving the lever by delta at that service (so with interactions the effect varies
    by service). Power at the posterior mean uses the same services and random numbers under the
    posterior means. Arguments as :func:`assurance_from_draws`.

    Returns
    -------
    pandas.DataFrame
        As :func:`assurance_curve`, plus ``clipped_share`` per design (share of intervention
        clusters whose move was cut at the end of the scale); the inputs the rows share
        (``services_curve`` returns them with the table; keys of :func:`population_assurance`) add
        ``population``, ``p0_marginal``/``p1_marginal``/``icc`` implied by the population and the
        posterior (posterior means), ``sigma_site``, ``sigma_region``.
    """
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    return services_curve(population, clusters, cluster_sizes, cv=cv, settings=settings, sims_per_draw=sims_per_draw,
                          direction=direction).table


def services_curve(
    population: Population,
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    *,
    cv: float = 0.0,
    settings: SimulationSettings,
    sims_per_draw: int = 1,
    direction: str | None = None,
) -> Curve:
    """:func:`population_curve` with its inputs."""
    n_draws = population.n_draws
    cv, settings, sims_per_draw, clusters, sizes = _run_settings(
        n_draws, clusters, cluster_sizes, cv, settings, sims_per_draw
    )
    sims = settings.resolved_sims
    check_enough_services(population, max(clusters))
    per_draw = implied(population)
    effect = per_draw["p1_marginal"] - per_draw["p0_marginal"]
    sign = _resolve_direction(direction, float(effect.mean()))
    index = _draw_order(settings.resolved_seed, n_draws, sims)
    cmax = max(clusters)
    common = _kernel_common(settings, clusters, sizes, cv, sign)
    counts, clipped = _simulate_population(population, index, cmax, common, "power assurance")
    at_mean, _ = _simulate_population(
        population_at_means(population), np.zeros(sims, dtype=np.int64), cmax, common, "power at posterior mean"
    )
    directed = _direction_summary(effect, sign, settings.alpha)
    cs = np.asarray(clusters)
    clipped_share = np.cumsum(clipped[:, 1].mean(axis=0))[cs - 1] / cs
    extra = {key: directed[key] for key in ("p_effect_positive", "p_effect_in_direction")}
    extra["clipped_share"] = clipped_share
    table = pd.DataFrame(_rows(counts, at_mean, clusters, sizes, sims, settings.ci_level, extra))
    p0m, p1m = float(per_draw["p0_marginal"].mean()), float(per_draw["p1_marginal"].mean())
    log_or = per_draw["log_or_mean"]
    inputs = {
        "population": population.kind,
        "services": population.n_services,
        "lever": population.lever,
        "delta": population.delta,
        "stratify": "region" if population.strata is not None else None,
        # a population has no single typical service: p0/p1 are the population-averaged proportions
        "p0": p0m,
        "p1": p1m,
        "odds_ratio": float(np.exp(log_or.mean())),
        "p0_marginal": p0m,
        "p1_marginal": p1m,
        "icc": float(per_draw["icc"].mean()),
        "sigma_b": float(population.sigma_site.mean()),
        "sigma_site": float(population.sigma_site.mean()),
        "sigma_region": float(population.sigma_region.mean()),
        "clipped_share": float(clipped_share[-1]),
        "log_or_mean": float(log_or.mean()),
        "log_or_sd": float(log_or.std(ddof=1)) if n_draws > 1 else 0.0,
        **directed,
        **_run_inputs(n_draws, sims_per_draw, cv, settings),
    }
    inputs["assumptions"] = assumptions(inputs, describe(population))
    return Curve(table, inputs)


def _simulate_population(population: Population, index: np.ndarray, cmax: int, common: dict, label: str):
    arrays = trial_arrays(population, index, cmax, common["seed"])
    counts = simulate_counts(
        logit_p0=arrays.base,
        log_or=arrays.shift,
        sigma_b=arrays.sigma_site,
        baseline=arrays.baseline,
        label=label,
        **common,
    )
    return counts, arrays.clipped


RESULT_KEYS = (
    "assurance",
    "assurance_mc_low",
    "assurance_mc_high",
    "power_at_posterior_mean",
    "power_at_posterior_mean_mc_low",
    "power_at_posterior_mean_mc_high",
)


def _one_design(curve: Curve) -> dict[str, Any]:
    """The values of a one-design curve's result, in the order of the JSON."""
    row = curve.table.iloc[0]
    out = dict(curve.inputs)
    for key in (*RESULT_KEYS, "clipped_share"):
        if key in row:
            out[key] = float(row[key])
    out.update(
        clusters_per_arm=int(row["clusters_per_arm"]),
        clusters_per_arm_design=int(row["clusters_per_arm"]),
        cluster_size=int(row["cluster_size"]),
    )
    # the JSON has always repeated the assurance as 'power' (the key every power subcommand shares);
    # AssuranceResult keeps one name and writes this key only in to_dict()
    out["power"] = out["assurance"]
    return out


def _null_size(out: Mapping[str, Any], null_counts, parallel: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis's type-I error in the assurance's own trials with the effect removed.

    ``null_counts(sims, index, common)`` returns the kernel's counts for ``sims`` trials under
    draws ``index`` with no effect (the same services, cluster effects and count streams as the
    assurance for the same seed). At least :data:`SIZE_SIMS` trials, as simulate's size check.
    """
    sims = max(int(out["sims"]), SIZE_SIMS)
    index = _draw_order(out["seed"], int(out["draws_total"]), sims)
    common = dict(
        sims=sims,
        clusters=[out["clusters_per_arm"]],
        sizes=[out["cluster_size"]],
        cv=out["cv"],
        alpha=out["alpha"],
        analysis=out["analysis"],
        direction=0,
        seed=out["seed"],
        chunk_size=out["chunk_size"],
        n_jobs=parallel.get("n_jobs", 1),
        scheduler=parallel.get("scheduler"),
        progress=parallel.get("progress", False),
    )
    hits = int(null_counts(index, common)[1, 0, 0])
    low, high = wilson_interval(hits, sims, out["ci_level"])
    size: dict[str, Any] = {
        "actual_size": hits / sims,
        "size_mc_low": float(low),
        "size_mc_high": float(high),
        "size_method": "simulated",
        "size_sims": sims,
        "size_band": list(size_band(out["alpha"])),
    }
    size["size_holds"] = holds(size["actual_size"], out["alpha"])
    size["size_note"] = size_note(out["analysis"], out["clusters_per_arm"], out["cluster_size"], size, out["alpha"])
    return size


def draws_size(
    out: Mapping[str, Any], draws: tuple[ArrayLike, ArrayLike, ArrayLike], settings: SimulationSettings
) -> dict[str, Any]:
    """The size keys of :func:`_null_size` for the design in ``out`` (``clusters_per_arm``, ``cluster_size``,
    ``sims``, ``seed``, ... as :func:`draws_curve` reports them), trials from ``draws`` with the effect removed.

    One code path for :func:`assurance_from_draws` and a search's design found."""
    base, sigma, _ = _check_draws(*draws)

    def null_counts(index, common):
        return simulate_counts(
            logit_p0=base[index], log_or=0.0, sigma_b=sigma[index], label="size (no effect)", **common
        )

    return _null_size(out, null_counts, settings.parallel())


def population_size(out: Mapping[str, Any], population: Population, settings: SimulationSettings) -> dict[str, Any]:
    """As :func:`draws_size`, trials recruiting from ``population`` (:func:`population_assurance` and a search)."""

    def null_counts(index, common):
        arrays = trial_arrays(population, index, int(out["clusters_per_arm"]), common["seed"])
        return simulate_counts(
            logit_p0=arrays.base,
            log_or=np.zeros_like(arrays.shift),
            sigma_b=arrays.sigma_site,
            baseline=arrays.baseline,
            label="size (no effect)",
            **common,
        )

    return _null_size(out, null_counts, settings.parallel())


def assurance_from_draws(
    p0_logit_draws: ArrayLike,
    sigma_b_draws: ArrayLike,
    log_or_draws: ArrayLike,
    *,
    clusters_per_arm: int,
    cluster_size: int,
    cv: float = 0.0,
    alpha: float = 0.05,
    sims: int | None = None,
    sims_per_draw: int = 1,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
    direction: str | None = None,
) -> AssuranceResult:
    """Assurance of a cluster trial from posterior draws (arrays, one value per draw).

    Every service is alike (``population`` ``"profile"``): clusters differ only by an effect
    ``N(0, sigma_b)``.

    Parameters
    ----------
    p0_logit_draws
        (S,) logit of P(outcome) for a typical control cluster.
    sigma_b_draws
        (S,) between-cluster SD on the logit scale.
    log_or_draws
        (S,) effect of the intervention on the logit (log odds ratio).
    clusters_per_arm, cluster_size
        The design.
    cv, alpha, analysis, ci_level, chunk_size, n_jobs, scheduler, progress
        As :func:`mbct_bayes.power.simulate`.
    sims
        Simulated trials; default ``S * sims_per_draw``. Draws are cycled (in a seeded random
        order) to reach it, one trial per draw per cycle.
    sims_per_draw
        Trials per draw when ``sims`` is not given.
    seed
        Seed; None draws one (reported).
    direction
        The intended direction of the effect on the outcome: ``"increase"``, ``"decrease"``, or
        None (default): the sign of the posterior-mean effect. The test is two-sided; a trial
        succeeds when it is significant with the estimate in this direction.

    Returns
    -------
    AssuranceResult
        A read-only mapping whose ``to_dict()`` is the CLI's JSON (which also repeats the
        assurance as ``power``): ``assurance``, ``assurance_mc_low``, ``assurance_mc_high``, ``direction``,
        ``p_effect_positive`` (share of draws with log OR > 0), ``p_effect_in_direction``,
        ``assurance_bound`` (``P(direction) + alpha/2 * (1 - P(direction))``),
        ``power_at_posterior_mean`` (simulated power at the posterior means of the three inputs,
        with the same random numbers) and its interval, ``draws_used``, ``draws_total``,
        ``sims``, ``p0``/``p1``/``odds_ratio``/``sigma_b``/``icc`` at the posterior means,
        ``population`` (``"profile"``), ``assumptions`` and the inputs; and whether the analysis
        holds its size in these trials: ``actual_size`` (the two-sided rejection rate of the same
        trials with the effect removed, at least 10,000 of them, same seed), ``size_mc_low``/
        ``size_mc_high``, ``size_method`` (``"simulated"``), ``size_sims``, ``size_band``,
        ``size_holds`` and ``size_note`` (as :func:`mbct_bayes.power.size_check`).
    """
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    draws = (p0_logit_draws, sigma_b_draws, log_or_draws)
    table = draws_curve(draws, [clusters_per_arm], [cluster_size], cv=cv, settings=settings,
                        sims_per_draw=sims_per_draw, direction=direction)
    out = _one_design(table)
    out.update(draws_size(out, draws, settings))
    return AssuranceResult.from_values(out)


def population_assurance(
    population: Population, *, clusters_per_arm: int, cluster_size: int, **kwargs: Any
) -> AssuranceResult:
    """Assurance of one design over a population of services (:func:`population_curve`).

    Returns
    -------
    AssuranceResult
        As :func:`assurance_from_draws`, with ``population`` (``"fitted_sites"`` or
        ``"candidates"``), ``p0_marginal``/``p1_marginal``/``icc`` implied by the population,
        ``clipped_share``, ``lever``, ``delta``, ``assumptions`` and the size keys (``actual_size``,
        ``size_holds``, ...) for the same population with the effect removed.
    """
    settings, others = SimulationSettings.split(kwargs, sims=None)
    table = services_curve(population, [clusters_per_arm], [cluster_size], settings=settings, **others)
    out = _one_design(table)
    out.update(population_size(out, population, settings))
    return AssuranceResult.from_values(out)


def assumptions(result: Mapping[str, Any], population_text: list[str] | None = None) -> list[str]:
    """The sentences an assurance rests on, for the output beside the number.

    ``result`` needs ``population``, ``direction`` and ``alpha``; ``lever``, ``delta`` and
    ``profile`` when known. ``population_text``: the population's own sentences
    (:func:`mbct_bayes.power._population.describe`).
    """
    lever, delta = result.get("lever"), result.get("delta")
    if lever is not None and delta is not None:
        points = "scale point" if abs(float(delta)) == 1 else "scale points"
        move = (
            f"The intervention moves {lever} by {float(delta):+g} {points} in every intervention cluster "
            "(cut at the end of the scale where it would pass it)."
        )
        causal = (
            f"The fitted association of {lever} with embedding (given the other predictors) is taken as the causal "
            "effect of moving it."
        )
    else:
        move = "The intervention changes the logit of P(outcome) by the given log odds ratio in every intervention cluster."
        causal = "The log odds ratios given are taken as the causal effect of the intervention."
    sentences = [
        move,
        causal,
        "Odds ratios are cluster-specific (conditional on the service); the population-averaged effect on the "
        "proportions is smaller (p0_marginal, p1_marginal).",
    ]
    if result.get("population") == "profile":
        profile = result.get("profile")
        if result.get("lever") is None:
            where = "the baseline logit of the draws given"
        else:
            given = ", ".join(f"{k}={v:g}" for k, v in (profile or {}).items())
            where = f"{given} (other predictors at their centre)" if given else "the predictors' centres"
        sentences.append(
            f"Population of services: all alike, at {where}, differing only by a cluster effect with SD sigma_b "
            "(site and region SDs combined); the spread of E, C, F between real services is ignored, which "
            "overstates assurance when services differ."
        )
    else:
        sentences.extend(population_text or [])
    sentences.append(
        f"Success: the two-sided test at alpha {result['alpha']:g} is significant with the estimate in the intended "
        f"direction ({result['direction']} in embedding)."
    )
    return sentences


def draws_from_fit(
    fit: Fit, *, lever: str = "F", delta: float = 1.0, profile: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """The three posterior arrays a trial depends on (:func:`mbct_bayes.planning.predict.trial_inputs`)."""
    inputs = trial_inputs(fit.posterior, lever=lever, delta=delta, profile=dict(profile) if profile else None)
    missing = [k for k in DRAW_KEYS if k not in inputs]
    if missing:
        raise DataError(
            f"trial inputs from the fit lack {', '.join(missing)}; update mbct_bayes.predict"
        )
    return {k: np.asarray(inputs[k], dtype=float) for k in DRAW_KEYS}


def population_from_fit(
    fit: Fit,
    *,
    lever: str = "F",
    delta: float = 1.0,
    sites: pd.DataFrame | None = None,
    stratify: str | None = None,
    source: str = "candidate sites",
    responses: pd.DataFrame | None = None,
    scores_are_true: bool = False,
) -> Population:
    """The trial's population of services: the fit's sites (default) or the candidates ``sites``.

    ``source`` names the candidates in messages (e.g. the file). ``responses`` and
    ``scores_are_true``: a latent fit's candidates' measured scores (see
    :func:`~mbct_bayes.power.candidates_population`).

    Raises
    ------
    DataError
        A fit no trial design can be planned from (:func:`~mbct_bayes.planning.predict.trial_refusal`:
        count families, transition models).
    """
    refusal = trial_refusal(fit.spec)
    if refusal is not None:
        raise DataError(f"no trial can be planned from this fit: {refusal}")
    if sites is None:
        if stratify is not None:
            raise DataError(
                "stratify (--stratify) randomises candidate services within strata; give the candidates "
                "(sites= / --sites) too"
            )
        if responses is not None:
            raise DataError("responses are the candidate services' measured scores; give the candidates (sites= / --sites) too")
        return fitted_sites_population(fit, lever=lever, delta=delta)
    return candidates_population(
        fit, sites, lever=lever, delta=delta, stratify=stratify, source=source, responses=responses,
        scores_are_true=scores_are_true,
    )


def assurance(
    fit: Fit,
    *,
    lever: str = "F",
    delta: float = 1.0,
    profile: Mapping[str, float] | None = None,
    sites: pd.DataFrame | None = None,
    stratify: str | None = None,
    clusters_per_arm: int,
    cluster_size: int,
    responses: pd.DataFrame | None = None,
    scores_are_true: bool = False,
    **kwargs: Any,
) -> AssuranceResult:
    """Assurance of a cluster trial whose intervention moves ``lever`` by ``delta``, from a fit.

    Parameters
    ----------
    fit
        A fitted model (:func:`mbct_bayes.model.fit.load_fit`).
    lever
        The predictor the implementation support moves (``"F"``: facilitation).
    delta
        How far it is expected to move it, in scale points (negative: lowers it); moves past the
        end of the scale are cut there (``clipped_share``).
    profile
        All services alike at these predictor values (missing ones at the scale midpoints):
        the ``"profile"`` population, the behaviour before populations existed. Default: not used.
    sites
        The candidate services (columns site, region, E, C, F; one row per service): the
        ``"candidates"`` population, randomised to the arms in each simulated trial. Default
        (neither ``profile`` nor ``sites``): the ``"fitted_sites"`` population, the fitted data's
        sites resampled for each trial.
    stratify
        ``"region"``: randomise the candidates within region strata.
    clusters_per_arm, cluster_size
        The design.
    responses, scores_are_true
        Latent-measurement fits: the candidates' E, C, F are measurements (site means with an
        ``n_respondents`` column, or their respondents' scores in ``responses``), taken through
        the fitted measurement model per draw; ``scores_are_true`` takes them as true scores.
    **kwargs
        Passed to :func:`assurance_from_draws` / :func:`population_curve` (``sims``, ``seed``,
        ``cv``, ``alpha``, ``direction``, ...).

    Returns
    -------
    AssuranceResult
        As :func:`assurance_from_draws`, plus ``population``, ``lever``, ``delta``, ``profile``
        and ``assumptions``.
    """
    if profile is not None and (sites is not None or stratify is not None):
        raise DataError("give either a profile (all services alike) or candidate sites, not both")
    if profile is None:
        population = population_from_fit(
            fit, lever=lever, delta=delta, sites=sites, stratify=stratify, responses=responses,
            scores_are_true=scores_are_true,
        )
        out = population_assurance(
            population, clusters_per_arm=clusters_per_arm, cluster_size=cluster_size, **kwargs
        )
        return out.updated(profile=None)
    draws = draws_from_fit(fit, lever=lever, delta=delta, profile=profile)
    out = assurance_from_draws(
        draws["baseline_logit"],
        draws["sigma_site"],
        draws["log_odds_ratio"],
        clusters_per_arm=clusters_per_arm,
        cluster_size=cluster_size,
        **kwargs,
    )
    out = out.updated(lever=lever, delta=delta, profile=dict(profile))
    return out.updated(assumptions=assumptions(out))
