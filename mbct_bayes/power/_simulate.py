"""Simulated power of a two-arm cluster trial with a binary outcome (logistic-normal clusters).

Each cluster's probability is ``expit(logit(p_arm) + sigma_b * u)``, ``u ~ N(0, 1)``, where
``p0``/``p1`` are the probabilities of a *typical* cluster (``u = 0``) as clusterPower's
simulation takes them; the marginal arm proportions they imply are reported beside them.
Members' outcomes are binomial given the cluster probability; sizes are fixed or Gamma-varied
with the given coefficient of variation. Power is the share of trials whose analysis is
significant (two-sided ``alpha``) with the estimate in the direction of the effect, with a
Wilson Monte Carlo interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._analytic import _power_dk
from mbct_bayes.power._icc import icc_from_sigma_b, marginal_proportion, sigma_b_from_icc
from mbct_bayes.power._kernel import Task, run_task, wilson_interval
from mbct_bayes.power._parallel import Progress, resolve_jobs, run_tasks
from mbct_bayes.power._results import Curve, PowerResult
from mbct_bayes.power._settings import DEFAULT_CHUNK, SimulationSettings
from mbct_bayes.power._size import SIZE_SIMS, size_check


def model_parameters(
    *,
    p0: float,
    p1: float | None = None,
    odds_ratio: float | None = None,
    icc: float | None = None,
    sigma_b: float | None = None,
    icc_scale: str = "proportion",
) -> dict[str, Any]:
    """Typical-cluster p0/p1, sigma_b (from ``sigma_b`` or ``icc``) and what they imply."""
    p0 = check.probability("p0", p0)
    p1 = check.effect(p0, p1, odds_ratio)
    if p1 is None:
        raise DataError("give the intervention arm's p1 (--p1) or odds_ratio (--odds-ratio)")
    icc_scale = check.choice("icc_scale", icc_scale, ("proportion", "logit"))
    if (icc is None) == (sigma_b is None):
        raise DataError(
            "give exactly one of icc (--icc) and sigma_b (--sigma-b), the between-cluster variation"
        )
    if sigma_b is None:
        assert icc is not None  # exactly one of icc and sigma_b (checked above)
        sigma_b = sigma_b_from_icc(check.icc(icc), p0, scale=icc_scale)
    else:
        sigma_b = check.nonnegative("sigma_b", sigma_b)
    return {
        "p0": p0,
        "p1": p1,
        "odds_ratio": (p1 / (1 - p1)) / (p0 / (1 - p0)),
        "p0_marginal": marginal_proportion(p0, sigma_b),
        "p1_marginal": marginal_proportion(p1, sigma_b),
        "sigma_b": sigma_b,
        "icc": icc_from_sigma_b(p0, sigma_b),
        "icc_p1": icc_from_sigma_b(p1, sigma_b),
        "icc_logit": icc_from_sigma_b(p0, sigma_b, scale="logit"),
        "icc_scale": icc_scale,
    }


def simulate_counts(
    *,
    logit_p0: float | np.ndarray,
    log_or: float | np.ndarray,
    sigma_b: float | np.ndarray,
    sims: int,
    clusters: Iterable[int],
    sizes: Iterable[int],
    cv: float,
    alpha: float,
    analysis: str,
    direction: int,
    seed: int,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
    label: str = "power",
    baseline: np.ndarray | None = None,
) -> np.ndarray:
    """Counts ``(2, len(sizes), len(clusters))`` of successful / two-sided significant trials.

    ``logit_p0``, ``log_or`` and ``sigma_b`` are scalars or arrays with one value per simulated
    trial; or, for a population of services, ``logit_p0`` and ``log_or`` are per cluster,
    ``(sims, 2, max(clusters))``, with ``baseline`` ``(sims, 2, max(clusters), p)`` the clusters'
    covariates before the intervention. Chunk ``i`` holds trials ``i*chunk_size ...`` and has its
    own random streams.
    """
    clusters = tuple(sorted({int(c) for c in clusters}))
    sizes = tuple(int(m) for m in sizes)
    chunk_size = check.integer("chunk_size", chunk_size, 1)
    resolve_jobs(n_jobs)
    per_trial = [np.asarray(a, float) for a in (logit_p0, log_or, sigma_b)]
    tasks = []
    for chunk, start in enumerate(range(0, sims, chunk_size)):
        stop = min(sims, start + chunk_size)
        sliced = [a if a.ndim == 0 else a[start:stop] for a in per_trial]
        tasks.append(
            Task(
                seed,
                chunk,
                stop - start,
                sliced[0],  # logit_p0
                sliced[1],  # log_or
                sliced[2],  # sigma_b
                clusters=clusters,
                sizes=sizes,
                cv=float(cv),
                alpha=float(alpha),
                analysis=analysis,
                direction=direction,
                baseline=None if baseline is None else baseline[start:stop],
            )
        )
    bar = Progress(label, len(tasks), enabled=progress)
    results = run_tasks(run_task, tasks, n_jobs=n_jobs, scheduler=scheduler, progress=bar)
    return np.sum(results, axis=0)


def design_grid(
    clusters: Iterable[int], cluster_sizes: Iterable[int], *, cv: float = 0.0
) -> tuple[list[int], list[int]]:
    """Checked, whole-number candidate designs (clusters ascending, sizes as given)."""
    cs = sorted({check.integer("clusters_per_arm", check.clusters(c), 2) for c in clusters})
    ms = [check.integer("cluster_size", check.cluster_size(m), 1) for m in cluster_sizes]
    if not cs or not ms:
        raise DataError("give at least one number of clusters per arm and one cluster size")
    check.per_cluster_outcome(min(ms), cv=cv)
    return cs, ms


def simulate(
    *,
    p0: float,
    p1: float | None = None,
    odds_ratio: float | None = None,
    clusters_per_arm: int,
    cluster_size: int,
    icc: float | None = None,
    sigma_b: float | None = None,
    icc_scale: str = "proportion",
    cv: float = 0.0,
    alpha: float = 0.05,
    sims: int = 2000,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
) -> PowerResult:
    """Simulated power of a two-arm cluster-randomised trial with a binary outcome.

    Parameters
    ----------
    p0, p1
        Probabilities of a **typical** cluster (cluster effect 0) in the control and intervention
        arms — not the marginal arm proportions, which are reported as ``p0_marginal`` and
        ``p1_marginal``.
    odds_ratio
        Alternative to ``p1``: the typical-cluster odds ratio.
    clusters_per_arm, cluster_size
        Design: clusters per arm and (mean) members per cluster.
    icc, sigma_b
        Between-cluster variation: ``sigma_b``, the SD of cluster effects on the logit scale, or
        an ICC converted to it by :func:`mbct_bayes.power.sigma_b_from_icc`. Give one.
    icc_scale
        ``"proportion"`` (default): ``icc`` is the proportion-scale ICC, matched at ``p0`` (the
        scale the analytic formulas use); ``"logit"``: ``icc = sigma_b^2 / (sigma_b^2 + pi^2/3)``.
    cv
        Coefficient of variation of cluster sizes (sizes ``max(2, round(m * Gamma))`` with mean-1
        Gamma of that CV); 0 = equal sizes.
    alpha
        Two-sided significance level.
    sims
        Simulated trials.
    seed
        Seed; None draws one (reported). Same seed, same numbers — and the same underlying
        random numbers for every design (common random numbers).
    analysis
        ``"t"``: pooled two-sample t-test on cluster proportions, df ``2c - 2`` (default);
        ``"welch"``: Welch's t on cluster proportions; ``"gee"``: logistic GEE, independence working
        correlation, Kauermann–Carroll robust SE, t(2c - 2) (arms at 0 %/100 % decided by the
        t-test). ``"adjusted"`` needs baseline covariates, so is refused here (use assurance
        with a population of services).
    ci_level
        Level of the Wilson Monte Carlo interval.
    chunk_size
        Trials per chunk (the unit of parallel work and of seeding; changing it changes the
        random numbers).
    n_jobs, scheduler
        Local processes, or a Dask scheduler address / Client; results equal the serial run.
    progress
        Progress lines on stderr.

    Returns
    -------
    PowerResult
        A read-only mapping whose ``to_dict()`` is the CLI's JSON:
        ``power`` (significant in the direction of ``p1 - p0``; the two-sided rejection rate
        when ``p1 == p0``), ``power_mc_low``, ``power_mc_high``, ``rejection_rate_two_sided``,
        ``sims``, the design, ``p0``, ``p1``, ``p0_marginal``, ``p1_marginal``, ``odds_ratio``,
        ``sigma_b``, ``icc`` (proportion scale at ``p0``), ``icc_p1``, ``icc_logit``, ``cv``,
        ``dist`` (``"t"``), ``alpha``, ``analysis``, ``seed`` and ``chunk_size``; and the size of
        the analysis at this design (:func:`mbct_bayes.power.size_check`): ``actual_size`` (its
        type-I error at ``p1 = p0``), ``size_mc_low``/``size_mc_high``, ``size_method``
        (``"exact"`` by enumeration with cluster size 1, else ``"simulated"`` with the same
        random numbers and at least 10,000 trials), ``size_sims``, ``size_band`` ([0.035, 0.065]
        at alpha 0.05), ``size_holds`` and ``size_note`` (``None``, or the line saying that the
        size does not hold and which way the power is biased). A power is never reported for an
        analysis whose size fails without ``size_holds: false``.
    """
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    effect = {"p0": p0, "p1": p1, "odds_ratio": odds_ratio, "icc": icc, "sigma_b": sigma_b, "icc_scale": icc_scale}
    curve = simulated_curve(effect, [clusters_per_arm], [cluster_size], cv=cv, settings=settings)
    row = curve.table.iloc[0]
    out = dict(curve.inputs)
    out.update(
        power=float(row["power"]),
        power_mc_low=float(row["power_mc_low"]),
        power_mc_high=float(row["power_mc_high"]),
        rejection_rate_two_sided=float(row["rejection_rate_two_sided"]),
        power_analytic=float(row["power_analytic"]),
        clusters_per_arm=int(clusters_per_arm),
        clusters_per_arm_design=int(clusters_per_arm),
        cluster_size=int(cluster_size),
    )
    # The size of this analysis at this design: exact with one outcome per cluster, else the same
    # simulated trials (common random numbers) with the effect removed, at least SIZE_SIMS of them.

    out.update(
        size_check(
            out["analysis"],
            clusters_per_arm,
            cluster_size,
            out["p0"],
            out["sigma_b"],
            out["alpha"],
            out["cv"],
            sims=max(out["sims"], SIZE_SIMS),
            seed=out["seed"],
            chunk_size=out["chunk_size"],
        )
    )
    return PowerResult.from_values(out)


def power_curve(
    *,
    p0: float,
    p1: float | None = None,
    odds_ratio: float | None = None,
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    icc: float | None = None,
    sigma_b: float | None = None,
    icc_scale: str = "proportion",
    cv: float = 0.0,
    alpha: float = 0.05,
    sims: int = 2000,
    seed: int | None = None,
    analysis: str = "t",
    ci_level: float = 0.95,
    chunk_size: int = DEFAULT_CHUNK,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulated power for every combination of ``clusters`` and ``cluster_sizes``.

    All designs share one set of random numbers (common random numbers): the clusters of a
    smaller design are the first clusters of a larger one, so the curve is smooth and the
    differences between designs carry little Monte Carlo noise. Arguments as :func:`simulate`.

    Returns
    -------
    pandas.DataFrame
        One row per design: ``clusters_per_arm``, ``cluster_size``, ``power``, ``power_mc_low``,
        ``power_mc_high``, ``rejection_rate_two_sided``, ``sims`` and ``power_analytic`` — the
        Donner–Klar t-reference power at the *marginal* proportions with the mean of the two arms'
        proportion-scale ICCs (a reference line, exact only in the many-cluster limit). The inputs
        the rows share are the keys of :func:`simulate`'s result.
    """
    settings = SimulationSettings(sims=sims, alpha=alpha, seed=seed, analysis=analysis, ci_level=ci_level,
                                  chunk_size=chunk_size, n_jobs=n_jobs, scheduler=scheduler, progress=progress)
    effect = {"p0": p0, "p1": p1, "odds_ratio": odds_ratio, "icc": icc, "sigma_b": sigma_b, "icc_scale": icc_scale}
    return simulated_curve(effect, clusters, cluster_sizes, cv=cv, settings=settings).table


def simulated_curve(
    effect: Mapping[str, Any],
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    *,
    cv: float,
    settings: SimulationSettings,
) -> Curve:
    """Simulated power for every combination of ``clusters`` and ``cluster_sizes``, with the inputs.

    ``effect``: the keywords of :func:`model_parameters` (``p0``, ``p1``/``odds_ratio``,
    ``icc``/``sigma_b``, ``icc_scale``). The table is :func:`power_curve`'s.
    """
    params = model_parameters(**effect)
    cv = check.nonnegative("cv", cv)
    settings = settings.checked()
    sims, alpha, ci_level = check.integer("sims", settings.sims, 1), settings.alpha, settings.ci_level
    clusters, sizes = design_grid(clusters, cluster_sizes, cv=cv)
    direction = int(np.sign(params["p1"] - params["p0"]))
    counts = simulate_counts(
        logit_p0=special.logit(params["p0"]),
        log_or=special.logit(params["p1"]) - special.logit(params["p0"]),
        sigma_b=params["sigma_b"],
        sims=sims,
        clusters=clusters,
        sizes=sizes,
        cv=cv,
        direction=direction,
        label="power simulate",
        **settings.kernel_keywords(),
    )
    icc_mean = (params["icc"] + params["icc_p1"]) / 2.0
    rows = []
    for i, m in enumerate(sizes):
        low, high = wilson_interval(counts[0, i], sims, ci_level)
        for j, c in enumerate(clusters):
            rows.append(
                {
                    "clusters_per_arm": c,
                    "cluster_size": m,
                    "power": counts[0, i, j] / sims,
                    "power_mc_low": low[j],
                    "power_mc_high": high[j],
                    "rejection_rate_two_sided": counts[1, i, j] / sims,
                    "sims": sims,
                    "power_analytic": _analytic_reference(params, c, m, icc_mean, cv, alpha),
                }
            )
    inputs = {
        **params,
        "cv": cv,
        "alpha": alpha,
        "sims": sims,
        "seed": settings.seed,
        "analysis": settings.analysis,
        "dist": "t",
        "ci_level": ci_level,
        "ci_method": "wilson",
        "chunk_size": settings.chunk_size,
    }
    return Curve(pd.DataFrame(rows), inputs)


def _analytic_reference(params, c, m, icc, cv, alpha) -> float:
    if params["p1_marginal"] == params["p0_marginal"]:
        return math.nan
    return _power_dk(params["p0_marginal"], params["p1_marginal"], c, m, icc, cv, alpha, "t", False)
