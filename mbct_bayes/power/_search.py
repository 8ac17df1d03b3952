"""Smallest design reaching a target power or assurance, with its power curve."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._analytic import _power_dk, _power_hb, analytic
from mbct_bayes.power._assurance import (
    DRAW_KEYS,
    assurance_curve,
    draws_from_fit,
    population_curve,
    population_from_fit,
)
from mbct_bayes.power._population import Population, check_enough_services
from mbct_bayes.power._simulate import DEFAULT_CHUNK, power_curve, resolve_seed
from mbct_bayes.power._size import SIZE_SIMS, size_check

if TYPE_CHECKING:  # power does not import the model stack
    from mbct_bayes.model.fit import Fit

METHODS = ("analytic", "simulate", "assurance")
SOLVE_FOR = ("clusters_per_arm", "cluster_size")


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
) -> dict[str, Any]:
    """The fewest clusters per arm (or smallest cluster size) reaching a target power/assurance.

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
    dict
        ``clusters_per_arm`` / ``cluster_size`` found (``clusters_per_arm_design`` rounded up),
        ``power`` (or ``assurance``) there with Monte Carlo interval when simulated, the
        inputs, and ``curve``: a DataFrame of the candidates evaluated (the power curve). With
        ``method="simulate"`` also the found design's analysis size, as
        :func:`mbct_bayes.power.simulate` reports it (``actual_size``, ``size_holds``, ...).

    Notes
    -----
    Clusters: every candidate from 2 to ``max_clusters`` is simulated in one pass (the clusters
    of a smaller design are the first clusters of a larger one) and the first reaching the target
    is returned. Cluster size: bisection over whole sizes, each candidate simulated with the same
    seed; Monte Carlo error can make power non-monotone near the target, so read the curve.
    """
    method = check.choice("method", method, METHODS)
    solve_for = check.choice("solve_for", solve_for, SOLVE_FOR)
    alpha = check.alpha(alpha)
    target = check.target_power(target, alpha, "target")
    max_clusters = check.integer("max_clusters", check.clusters(max_clusters, "max_clusters"), 2)
    max_cluster_size = check.integer(
        "max_cluster_size", check.cluster_size(max_cluster_size, "max_cluster_size"), 1
    )
    if solve_for == "clusters_per_arm":
        if cluster_size is None:
            raise DataError("searching for clusters per arm needs cluster_size (--cluster-size)")
        if clusters_per_arm is not None:
            raise DataError(
                "searching for clusters per arm: leave clusters_per_arm (--clusters) unset"
            )
        cluster_size = check.cluster_size(cluster_size)
    else:
        if clusters_per_arm is None:
            raise DataError("searching for the cluster size needs clusters_per_arm (--clusters)")
        if cluster_size is not None:
            raise DataError(
                "searching for the cluster size: leave cluster_size (--cluster-size) unset"
            )
        clusters_per_arm = check.clusters(clusters_per_arm)
    limits = {
        "target": target,
        "solved_for": solve_for,
        "method": method,
        "max_clusters": max_clusters,
        "max_cluster_size": max_cluster_size,
    }
    if method == "analytic":
        if p0 is None:
            raise DataError("give p0 (--p0), the control arm's proportion")
        return {
            **limits,
            **_search_analytic(
                target,
                solve_for,
                p0=p0,
                p1=p1,
                odds_ratio=odds_ratio,
                clusters_per_arm=clusters_per_arm,
                cluster_size=cluster_size,
                icc=icc,
                cv=cv,
                k=k,
                alpha=alpha,
                dist=dist,
                formula=formula,
                max_clusters=max_clusters,
                max_cluster_size=max_cluster_size,
            ),
        }

    seed = resolve_seed(seed)
    common = dict(
        cv=cv,
        alpha=alpha,
        sims=sims,
        seed=seed,
        analysis=analysis,
        ci_level=ci_level,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress,
    )
    how_to_raise = "raise max_clusters (--max-clusters)"
    if method == "simulate":
        if p0 is None:
            raise DataError("give p0 (--p0), the typical control cluster's probability")
        metric = "power"

        def curve_at(clusters: list[int], sizes: list[int]) -> pd.DataFrame:
            return power_curve(
                p0=p0,
                p1=p1,
                odds_ratio=odds_ratio,
                clusters=clusters,
                cluster_sizes=sizes,
                icc=icc,
                sigma_b=sigma_b,
                icc_scale=icc_scale,
                **common,
            )
    else:
        metric = "assurance"
        if draws is None and fit is None and population is None:
            raise DataError("assurance needs posterior draws or a fit (FIT.nc / --draws)")
        if draws is None and population is None:
            assert fit is not None  # one of draws, fit, population (checked above)
            if profile is None:
                population = population_from_fit(fit, lever=lever, delta=delta)
            else:
                draws = draws_from_fit(fit, lever=lever, delta=delta, profile=profile)
        common.pop("sims")
        common["direction"] = direction
        if population is not None:
            if not population.resample and population.n_services // 2 < max_clusters:
                # candidates: a design can have at most half of them per arm
                check_enough_services(population, 2)
                max_clusters = limits["max_clusters"] = population.n_services // 2
                how_to_raise = f"the {population.n_services} candidate services allow no more; add candidates"

            def curve_at(clusters: list[int], sizes: list[int]) -> pd.DataFrame:
                return population_curve(population, clusters=clusters, cluster_sizes=sizes, sims=sims, **common)
        else:
            assert draws is not None  # given, or drawn from the fit above
            missing = [key for key in DRAW_KEYS if key not in draws]
            if missing:
                raise DataError(f"draws lack {', '.join(missing)}; give {', '.join(DRAW_KEYS)}")

            def curve_at(clusters: list[int], sizes: list[int]) -> pd.DataFrame:
                return assurance_curve(
                    draws["baseline_logit"],
                    draws["sigma_site"],
                    draws["log_odds_ratio"],
                    clusters=clusters,
                    cluster_sizes=sizes,
                    sims=sims,
                    **common,
                )

    if solve_for == "clusters_per_arm":
        assert cluster_size is not None  # required when solving for clusters (checked above)
        size = check.integer("cluster_size", cluster_size, 1)
        curve = curve_at(list(range(2, max_clusters + 1)), [size])
        reached = curve.index[curve[metric] >= target]
        if len(reached) == 0:
            raise DataError(
                f"target {metric} {target:g} is not reached with up to {max_clusters} clusters "
                f"per arm (estimated {curve[metric].iloc[-1]:.3f} there); {how_to_raise} or change the design"
            )
        best = curve.loc[reached[0]]
    else:
        assert clusters_per_arm is not None  # required when solving for the size (checked above)
        curve, best = _bisect_size(
            curve_at, math.ceil(clusters_per_arm), metric, target, max_cluster_size
        )
    out = dict(curve.attrs["inputs"])
    out.update(limits)
    integers = {"clusters_per_arm", "cluster_size", "sims"}
    out.update({key: int(v) if key in integers else float(v) for key, v in best.items()})
    out["clusters_per_arm_design"] = int(best["clusters_per_arm"])
    out["cluster_size_design"] = int(best["cluster_size"])
    if metric == "assurance":
        out["power"] = out["assurance"]
    else:
        # The found design's analysis size (as simulate() reports it): a liberal test finds too
        # few clusters, a conservative one too many.
        out.update(
            size_check(
                out["analysis"], out["clusters_per_arm_design"], out["cluster_size_design"], out["p0"],
                out["sigma_b"], out["alpha"], out["cv"], sims=max(out["sims"], SIZE_SIMS), seed=out["seed"],
                chunk_size=out["chunk_size"],
            )
        )
    out["curve"] = curve.reset_index(drop=True)
    return out


def _bisect_size(curve_at, clusters: int, metric: str, target: float, max_size: int):
    evaluated: list[pd.DataFrame] = []
    attrs: dict[str, Any] = {}

    def value(m: int) -> float:
        table = curve_at([clusters], [m])
        attrs.update(table.attrs)
        evaluated.append(table)
        return float(table[metric].iloc[0])

    if value(max_size) < target:
        raise DataError(
            f"target {metric} {target:g} is not reached with {clusters} clusters per arm at any "
            f"cluster size up to {max_size} (estimated {evaluated[-1][metric].iloc[0]:.3f} "
            "there); add clusters or raise max_cluster_size (--max-cluster-size)"
        )
    lo, hi = 2, max_size  # invariant: hi reaches the target; lo does not (unless lo == 2 does)
    if value(2) >= target:
        hi = 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) >= target:
            hi = mid
        else:
            lo = mid
    curve = pd.concat(evaluated, ignore_index=True).drop_duplicates("cluster_size")
    curve = curve.sort_values("cluster_size", ignore_index=True)
    curve.attrs = attrs
    best = curve.loc[curve["cluster_size"] == hi].iloc[0]
    return curve, best


def _search_analytic(
    target,
    solve_for,
    *,
    p0,
    p1,
    odds_ratio,
    clusters_per_arm,
    cluster_size,
    icc,
    cv,
    k,
    alpha,
    dist,
    formula,
    max_clusters,
    max_cluster_size,
) -> dict[str, Any]:
    result = analytic(
        p0=p0,
        p1=p1,
        odds_ratio=odds_ratio,
        clusters_per_arm=clusters_per_arm,
        cluster_size=cluster_size,
        power=target,
        icc=icc,
        cv=cv,
        k=k,
        alpha=alpha,
        dist=dist,
        method=formula,
        max_clusters=max_clusters,
        max_cluster_size=max_cluster_size,
    )
    q1 = result["p1"]

    def power_at(c: float, m: float) -> float:
        if result["method"] == "hayes-bennett":
            return _power_hb(result["p0"], q1, c, m, result["k"], alpha)
        return _power_dk(
            result["p0"], q1, c, m, result["icc"], result["cv"], alpha, result["dist"], False
        )

    if solve_for == "clusters_per_arm":
        top = min(max_clusters, max(10, 2 * result["clusters_per_arm_design"]))
        grid = [(c, result["cluster_size"]) for c in range(2, top + 1)]
    else:
        top = min(max_cluster_size, max(20, 2 * result["cluster_size_design"]))
        sizes = sorted({round(float(m)) for m in np.geomspace(2, top, 40)})
        grid = [(result["clusters_per_arm"], m) for m in sizes]
    curve = pd.DataFrame(
        [
            {"clusters_per_arm": c, "cluster_size": m, "power_analytic": power_at(c, m)}
            for c, m in grid
        ]
    )
    curve["power"] = curve["power_analytic"]
    result["curve"] = curve
    return result
