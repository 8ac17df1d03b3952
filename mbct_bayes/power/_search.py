"""Smallest design reaching a target power or assurance, with its power curve.

A search is two choices, kept apart:

* **what is computed at a candidate design** — a :class:`Source`: simulated power
  (:func:`simulated_power`) or assurance from posterior draws or over a population of services
  (:func:`assurance_over`);
* **what is solved for** — :func:`search_clusters` (fewest clusters per arm: every candidate
  simulated in one pass, since with common random numbers the clusters of a smaller design are the
  first clusters of a larger one) or :func:`search_cluster_size` (smallest cluster size, by
  bisection over whole sizes). Both go through one helper, :func:`smallest_reaching`.

:func:`search` is the one-call form with every setting as a keyword (the CLI's ``power search``);
``method="analytic"`` solves the closed form (:func:`mbct_bayes.power.analytic`) instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._analytic import _power_dk, _power_hb, analytic
from mbct_bayes.power._assurance import (
    DRAW_KEYS,
    draws_curve,
    draws_from_fit,
    draws_size,
    population_from_fit,
    population_size,
    services_curve,
)
from mbct_bayes.power._population import Population, check_enough_services
from mbct_bayes.power._results import AssuranceResult, Curve, PowerResult
from mbct_bayes.power._settings import DEFAULT_CHUNK, Design, SimulationSettings
from mbct_bayes.power._simulate import simulated_curve
from mbct_bayes.power._size import SIZE_SIMS, size_check

if TYPE_CHECKING:  # power does not import the model stack
    from mbct_bayes.model.fit import Fit

METHODS = ("analytic", "simulate", "assurance")
SOLVE_FOR = ("clusters_per_arm", "cluster_size")
RAISE_MAX_CLUSTERS = "raise max_clusters (--max-clusters)"


@dataclass(frozen=True)
class SearchLimits:
    """The largest designs a search tries; a target not reached within them is a DataError."""

    max_clusters: int = 100
    max_cluster_size: int = 1000

    def checked(self) -> SearchLimits:
        """These limits as whole numbers (at least 2 clusters, 1 member), or a one-line DataError."""
        return SearchLimits(
            check.integer("max_clusters", check.clusters(self.max_clusters, "max_clusters"), 2),
            check.integer("max_cluster_size", check.cluster_size(self.max_cluster_size, "max_cluster_size"), 1),
        )


@dataclass(frozen=True)
class Source:
    """What a search computes at its candidate designs.

    Attributes
    ----------
    method
        ``"simulate"`` (power) or ``"assurance"``.
    metric
        The column compared with the target: ``"power"`` or ``"assurance"``.
    curve_at
        ``curve_at(clusters, sizes, cv)``: the :class:`~mbct_bayes.power._results.Curve` of every
        combination (the same settings and seed for each call: common random numbers).
    settings
        The simulation settings (seed resolved), reported with the answer.
    max_clusters
        The most clusters per arm the source allows (candidate services: half of them), or None.
    how_to_raise
        What to do when the target is not reached within the clusters allowed.
    size_at
        ``size_at(values)``: the analysis's size at the design found (keys ``actual_size``,
        ``size_holds``, ...), from the result's values; None when the source reports none.
    """

    method: str
    metric: str
    curve_at: Callable[[list[int], list[int], float], Curve]
    settings: SimulationSettings
    max_clusters: int | None = None
    how_to_raise: str = RAISE_MAX_CLUSTERS
    size_at: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


def smallest_reaching(
    curve_at: Callable[[list[int]], Curve],
    column: str,
    metric: str,
    target: float,
    lo: int,
    hi: int,
    *,
    one_pass: bool,
) -> tuple[int | None, Curve]:
    """The smallest whole number in ``[lo, hi]`` whose ``metric`` reaches ``target``, and the curve tried.

    ``curve_at(candidates)`` evaluates candidate values of ``column`` (``"clusters_per_arm"`` or
    ``"cluster_size"``). ``one_pass``: every candidate in one call, and the first reaching the
    target (needs no monotonicity). Otherwise bisection (``hi`` first, then ``lo``, then midpoints),
    which takes the metric as non-decreasing; Monte Carlo error can break that near the target, so
    read the curve. None when ``hi`` does not reach the target. The curve holds each evaluated
    candidate once, ascending.
    """
    if one_pass:
        curve = curve_at(list(range(lo, hi + 1)))
        reached = curve.table.index[curve.table[metric] >= target]
        return (int(curve.table.loc[reached[0], column]) if len(reached) else None), curve
    evaluated: list[pd.DataFrame] = []
    inputs: dict[str, Any] = {}

    def reaches(value: int) -> bool:
        curve = curve_at([value])
        inputs.update(curve.inputs)
        evaluated.append(curve.table)
        return bool(curve.table[metric].iloc[0] >= target)

    def tried() -> Curve:
        table = pd.concat(evaluated, ignore_index=True).drop_duplicates(column)
        return Curve(table.sort_values(column, ignore_index=True), inputs)

    if not reaches(hi):
        return None, tried()
    if reaches(lo):
        return lo, tried()
    while hi - lo > 1:  # invariant: hi reaches the target, lo does not
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi, tried()


def search_clusters(
    source: Source, design: Design, *, target: float = 0.8, limits: SearchLimits | None = None
) -> PowerResult | AssuranceResult:
    """The fewest clusters per arm reaching ``target`` at ``design.cluster_size`` (and ``design.cv``).

    Every candidate from 2 to ``limits.max_clusters`` (or the source's own cap) is simulated in
    one pass and the first reaching the target is returned, with the whole curve.

    Returns
    -------
    PowerResult or AssuranceResult
        As :func:`search` (``curve``: the candidates).
    """
    def unreached(target: float, limits: SearchLimits, estimate: float) -> str:
        return (
            f"target {source.metric} {target:g} is not reached with up to {limits.max_clusters} clusters per arm "
            f"(estimated {estimate:.3f} there); {source.how_to_raise} or change the design"
        )

    return _search_along("clusters_per_arm", source, design, target, limits, unreached)


def search_cluster_size(
    source: Source, design: Design, *, target: float = 0.8, limits: SearchLimits | None = None
) -> PowerResult | AssuranceResult:
    """The smallest cluster size reaching ``target`` with ``design.clusters_per_arm`` (and ``design.cv``).

    Bisection over whole sizes from 2 to ``limits.max_cluster_size``, each candidate simulated with
    the same seed (common random numbers).

    Returns
    -------
    PowerResult or AssuranceResult
        As :func:`search` (``curve``: the sizes evaluated).
    """
    def unreached(target: float, limits: SearchLimits, estimate: float) -> str:
        assert design.clusters_per_arm is not None  # _search_along refused a design without it
        return (
            f"target {source.metric} {target:g} is not reached with {math.ceil(design.clusters_per_arm)} clusters "
            f"per arm at any cluster size up to {limits.max_cluster_size} (estimated {estimate:.3f} there); add "
            "clusters or raise max_cluster_size (--max-cluster-size)"
        )

    return _search_along("cluster_size", source, design, target, limits, unreached)


#: What is searched for: its words and flag in messages, the other dimension (held fixed).
UNKNOWNS = {
    "clusters_per_arm": ("clusters per arm", "--clusters", "cluster_size"),
    "cluster_size": ("the cluster size", "--cluster-size", "clusters_per_arm"),
}


def _check_unknown(design: Design, column: str) -> None:
    """The searched-for dimension of ``design`` unset and the other given, or a one-line DataError."""
    words, flag, other = UNKNOWNS[column]
    if getattr(design, other) is None:
        raise DataError(f"searching for {words} needs {other} ({UNKNOWNS[other][1]})")
    if getattr(design, column) is not None:
        raise DataError(f"searching for {words}: leave {column} ({flag}) unset")


def _search_along(
    column: str,
    source: Source,
    design: Design,
    target: float,
    limits: SearchLimits | None,
    unreached: Callable[[float, SearchLimits, float], str],
) -> PowerResult | AssuranceResult:
    """Clusters per arm in one pass, or the cluster size by bisection, through :func:`smallest_reaching`."""
    _check_unknown(design, column)
    target, limits = _checked(target, source, limits)
    if column == "clusters_per_arm":
        size = check.integer("cluster_size", check.cluster_size(design.cluster_size), 1)
        found, curve = smallest_reaching(
            lambda clusters: source.curve_at(clusters, [size], design.cv),
            column, source.metric, target, 2, limits.max_clusters, one_pass=True,
        )
    else:
        clusters = math.ceil(check.clusters(design.clusters_per_arm))
        found, curve = smallest_reaching(
            lambda sizes: source.curve_at([clusters], sizes, design.cv),
            column, source.metric, target, 2, limits.max_cluster_size, one_pass=False,
        )
    if found is None:
        raise DataError(unreached(target, limits, float(curve.table[source.metric].iloc[-1])))
    return _found(source, curve, column, found, target, limits)


def _checked(target: float, source: Source, limits: SearchLimits | None) -> tuple[float, SearchLimits]:
    target = check.target_power(target, source.settings.alpha, "target")
    limits = (limits or SearchLimits()).checked()
    if source.max_clusters is not None and source.max_clusters < limits.max_clusters:
        limits = replace(limits, max_clusters=source.max_clusters)
    return target, limits


def _found(
    source: Source, curve: Curve, column: str, found: int, target: float, limits: SearchLimits
) -> PowerResult | AssuranceResult:
    """The result at the design found: the curve's inputs, the limits, the design's row, its size."""
    best = curve.table.loc[curve.table[column] == found].iloc[0]
    out = dict(curve.inputs)
    out.update(
        target=target,
        solved_for=column,
        method=source.method,
        max_clusters=limits.max_clusters,
        max_cluster_size=limits.max_cluster_size,
    )
    integers = {"clusters_per_arm", "cluster_size", "sims"}
    out.update({key: int(v) if key in integers else float(v) for key, v in best.items()})
    out["clusters_per_arm_design"] = int(best["clusters_per_arm"])
    out["cluster_size_design"] = int(best["cluster_size"])
    table = curve.table.reset_index(drop=True)
    if source.metric == "assurance":
        out["power"] = out["assurance"]  # the JSON's legacy key; the result has one name
    if source.size_at is not None:
        out.update(source.size_at(out))
    if source.metric == "assurance":
        return AssuranceResult.from_values(out, curve=table)
    return PowerResult.from_values(out, curve=table)


def _simulated_size(out: Mapping[str, Any]) -> dict[str, Any]:
    """The found design's analysis size, as simulate() reports it: a liberal test finds too few
    clusters, a conservative one too many."""
    return size_check(
        out["analysis"], out["clusters_per_arm_design"], out["cluster_size_design"], out["p0"],
        out["sigma_b"], out["alpha"], out["cv"], sims=max(out["sims"], SIZE_SIMS), seed=out["seed"],
        chunk_size=out["chunk_size"],
    )


def simulated_power(settings: SimulationSettings, **effect: Any) -> Source:
    """Simulated power as a search's source; ``effect``: ``p0``, ``p1``/``odds_ratio``, ``icc``/``sigma_b``,
    ``icc_scale`` (as :func:`mbct_bayes.power.simulate`)."""
    if effect.get("p0") is None:
        raise DataError("give p0 (--p0), the typical control cluster's probability")
    settings = settings.checked()

    def curve_at(clusters: list[int], sizes: list[int], cv: float) -> Curve:
        return simulated_curve(effect, clusters, sizes, cv=cv, settings=settings)

    return Source("simulate", "power", curve_at, settings, size_at=_simulated_size)


def assurance_over(
    settings: SimulationSettings,
    *,
    draws: Mapping[str, np.ndarray] | None = None,
    population: Population | None = None,
    direction: str | None = None,
) -> Source:
    """Assurance as a search's source: from ``draws`` (``baseline_logit``, ``sigma_site``,
    ``log_odds_ratio``; all services alike) or over a ``population`` of services, one of the two."""
    settings = settings.checked()
    if population is not None:
        cap, how = None, RAISE_MAX_CLUSTERS
        if not population.resample:
            # candidates: a design can have at most half of them per arm
            check_enough_services(population, 2)
            cap = population.n_services // 2
            how = f"the {population.n_services} candidate services allow no more; add candidates"

        def curve_at(clusters: list[int], sizes: list[int], cv: float) -> Curve:
            return services_curve(population, clusters, sizes, cv=cv, settings=settings, direction=direction)

        return Source("assurance", "assurance", curve_at, settings, cap, how,
                      size_at=lambda out: population_size(out, population, settings))
    if draws is None:
        raise DataError("assurance needs posterior draws or a fit (FIT.nc / --draws)")
    missing = [key for key in DRAW_KEYS if key not in draws]
    if missing:
        raise DataError(f"draws lack {', '.join(missing)}; give {', '.join(DRAW_KEYS)}")
    baseline_logit, sigma_site, log_odds_ratio = (draws[key] for key in DRAW_KEYS)
    arrays = (baseline_logit, sigma_site, log_odds_ratio)

    def curve_from_draws(clusters: list[int], sizes: list[int], cv: float) -> Curve:
        return draws_curve(arrays, clusters, sizes, cv=cv, settings=settings, direction=direction)

    return Source("assurance", "assurance", curve_from_draws, settings,
                  size_at=lambda out: draws_size(out, arrays, settings))


def search(
    *,
    target: float = 0.8,
    solve_for: str = "clusters_per_arm",
    method: str = "simulate",
    p0: float | None = None,
    p1: float | None = None,
    odds_ratio: float | None = None,
    clusters_per_arm: float | None = None,
    cluster_size: float | None = None,
    icc: float | None = None,
    sigma_b: float | None = None,
    icc_scale: str = "proportion",
    cv: float = 0.0,
    alpha: float = 0.05,
    formula: str = "donner-klar",
    k: float | None = None,
    dist: str | None = None,
    draws: Mapping[str, np.ndarray] | None = None,
    fit: Fit | None = None,
    lever: str = "F",
    delta: float = 1.0,
    profile: Mapping[str, float] | None = None,
    population: Population | None = None,
    direction: str | None = None,
    sims: int = 2000,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    max_clusters: int = 100,
    max_cluster_size: int = 1000,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
) -> PowerResult | AssuranceResult:
    """The fewest clusters per arm (or smallest cluster size) reaching a target power/assurance.

    The one-call form of :func:`search_clusters` / :func:`search_cluster_size` with a source from
    :func:`simulated_power` or :func:`assurance_over`; or the closed form (``method="analytic"``).

    Parameters
    ----------
    target
        Target power (``method`` ``"analytic"``/``"simulate"``) or assurance.
    solve_for
        ``"clusters_per_arm"`` (give ``cluster_size``) or ``"cluster_size"`` (give
        ``clusters_per_arm``).
    method
        ``"analytic"``: :func:`mbct_bayes.power.analytic` (``formula``, ``icc``/``k``,
        ``dist``; ``p0`` and ``p1`` are marginal proportions). ``"simulate"``: simulated power
        (:func:`mbct_bayes.power.simulate` arguments; ``p0``/``p1`` typical-cluster).
        ``"assurance"``: assurance from ``draws`` (mapping with ``baseline_logit``, ``sigma_site``,
        ``log_odds_ratio``; all services alike), from a ``population`` of services
        (:func:`mbct_bayes.power.population_from_fit`), or from ``fit`` with ``lever``/``delta``:
        over the fitted sites, or all alike at ``profile`` when one is given.
    direction
        Assurance: ``"increase"``/``"decrease"``; default the sign of the posterior-mean effect.
    max_clusters, max_cluster_size
        Search limits; a target not reached within them is a :class:`DataError`.
    sims, seed, analysis, ci_level, chunk_size, n_jobs, scheduler, progress
        As :func:`mbct_bayes.power.simulate`. Every candidate design uses the same seed and
        hence the same random numbers (common random numbers).

    Returns
    -------
    PowerResult or AssuranceResult
        A read-only mapping whose ``to_dict()`` is the CLI's JSON: ``clusters_per_arm`` /
        ``cluster_size`` found (``clusters_per_arm_design`` rounded up), ``power`` (or
        ``assurance``, which the JSON repeats as ``power``) there with Monte Carlo interval when
        simulated, the inputs, and ``curve`` (also the attribute ``.curve``): a DataFrame of the
        candidates evaluated (the power curve). With ``method="simulate"`` also the found design's
        analysis size, as :func:`mbct_bayes.power.simulate` reports it (``actual_size``,
        ``size_holds``, ...); with ``method="assurance"`` the same keys as
        :func:`~mbct_bayes.power.assurance_from_draws` / :func:`~mbct_bayes.power.population_assurance`
        report at the found design (its trials with the effect removed, same seed).

    Notes
    -----
    Clusters: every candidate from 2 to ``max_clusters`` is simulated in one pass (the clusters
    of a smaller design are the first clusters of a larger one) and the first reaching the target
    is returned. Cluster size: bisection over whole sizes, each candidate simulated with the same
    seed; Monte Carlo error can make power non-monotone near the target, so read the curve.
    """
    method = check.choice("method", method, METHODS)
    solve_for = check.choice("solve_for", solve_for, SOLVE_FOR)
    limits = SearchLimits(max_clusters, max_cluster_size)
    design = Design(clusters_per_arm, cluster_size, cv)
    if method == "analytic":
        if p0 is None:
            raise DataError("give p0 (--p0), the control arm's proportion")
        return search_analytic(
            design, solve_for, target=target, limits=limits, p0=p0, p1=p1, odds_ratio=odds_ratio, icc=icc, k=k,
            alpha=alpha, dist=dist, formula=formula,
        )
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    if method == "simulate":
        source = simulated_power(settings, p0=p0, p1=p1, odds_ratio=odds_ratio, icc=icc, sigma_b=sigma_b,
                                 icc_scale=icc_scale)
    else:
        if draws is None and population is None and fit is not None:
            if profile is None:
                population = population_from_fit(fit, lever=lever, delta=delta)
            else:
                draws = draws_from_fit(fit, lever=lever, delta=delta, profile=profile)
        source = assurance_over(settings, draws=draws, population=population, direction=direction)
    solve = search_clusters if solve_for == "clusters_per_arm" else search_cluster_size
    return solve(source, design, target=target, limits=limits)


def search_analytic(
    design: Design,
    solve_for: str,
    *,
    target: float,
    limits: SearchLimits | None = None,
    p0: float,
    p1: float | None = None,
    odds_ratio: float | None = None,
    icc: float | None = None,
    k: float | None = None,
    alpha: float = 0.05,
    dist: str | None = None,
    formula: str = "donner-klar",
) -> PowerResult:
    """:func:`search` by the closed form: :func:`mbct_bayes.power.analytic` solved at ``target``,
    with the power curve around the answer (``power_analytic`` = ``power`` per candidate)."""
    solve_for = check.choice("solve_for", solve_for, SOLVE_FOR)
    alpha = check.alpha(alpha)
    target = check.target_power(target, alpha, "target")
    limits = (limits or SearchLimits()).checked()
    _check_unknown(design, solve_for)
    result = analytic(
        p0=p0,
        p1=p1,
        odds_ratio=odds_ratio,
        clusters_per_arm=design.clusters_per_arm,
        cluster_size=design.cluster_size,
        power=target,
        icc=icc,
        cv=design.cv,
        k=k,
        alpha=alpha,
        dist=dist,
        method=formula,
        max_clusters=limits.max_clusters,
        max_cluster_size=limits.max_cluster_size,
    )
    q1 = result["p1"]

    def power_at(c: float, m: float) -> float:
        if result["method"] == "hayes-bennett":
            return _power_hb(result["p0"], q1, c, m, result["k"], alpha)
        return _power_dk(result["p0"], q1, c, m, result["icc"], result["cv"], alpha, result["dist"], False)

    grid: Sequence[tuple[float, float]]
    if solve_for == "clusters_per_arm":
        top = min(limits.max_clusters, max(10, 2 * result["clusters_per_arm_design"]))
        grid = [(c, result["cluster_size"]) for c in range(2, top + 1)]
    else:
        top = min(limits.max_cluster_size, max(20, 2 * result["cluster_size_design"]))
        sizes = sorted({round(float(m)) for m in np.geomspace(2, top, 40)})
        grid = [(result["clusters_per_arm"], m) for m in sizes]
    curve = pd.DataFrame(
        [{"clusters_per_arm": c, "cluster_size": m, "power_analytic": power_at(c, m)} for c, m in grid]
    )
    curve["power"] = curve["power_analytic"]
    limits_out = {
        "target": target,
        "solved_for": solve_for,
        "method": "analytic",
        "max_clusters": limits.max_clusters,
        "max_cluster_size": limits.max_cluster_size,
    }
    return PowerResult.from_values({**limits_out, **result}, curve=curve)
