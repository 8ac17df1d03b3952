"""Does an analysis hold its size? The actual type-I error of each analysis at a design.

A test "holds its size" here when its type-I error at ``p1 = p0`` is within 30 % of the nominal
``alpha`` — [0.035, 0.065] at ``alpha = 0.05``, the band of issue 11. A power computed with a
test that rejects less often than ``alpha`` under the null understates what a valid test would
give; one that rejects more often overstates it. So every simulated power reports the size of
its analysis at its design, and says when it does not hold.

* **Exact** when each cluster contributes one yes/no outcome (cluster size 1, up to about 270
  clusters per arm): clusters are then independent Bernoulli draws with the *marginal*
  probability (the cluster effect integrated out,
  :func:`mbct_bayes.power.marginal_proportion`), the t, Welch and GEE decisions depend only
  on the numbers of successes per arm, and the size is a sum over the ``(c + 1)^2`` pairs of
  binomial counts. With few clusters no test can reach its size there: the pooled t holds 0.0072
  at 4 clusters per arm with ``p0 = 0.1`` (proportion-scale ICC 0.05), because only a handful of
  outcomes are possible.
* **Simulated** otherwise, with the kernel's own random numbers at ``p1 = p0``: the size of a
  design is the rejection rate of the same simulated trials as its power with the effect
  removed (common random numbers), with a Wilson interval.

Nothing is refused for its size: a power computed with an analysis that misses its size is
still that analysis's power, so it is reported with ``size_holds: false`` and a note saying which
way it is biased (the CLI's text output ends with a ``WARNING:`` line). Only the adjusted
analysis refuses designs, those with fewer than one degree of freedom (``2c - 2 - p < 1``).

The adjusted analysis needs covariates; its size is simulated with ``covariates`` independent
standard-normal baseline scores per cluster that together explain ``SIZE_R2`` of the
between-cluster variance on the logit scale (the total SD stays ``sigma_b``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._icc import marginal_proportion
from mbct_bayes.power._kernel import (
    ANALYSES,
    Task,
    analyse,
    binom_quantile,
    cluster_sizes,
    column_draws,
    run_task,
    wilson_interval,
)

SIZE_TOLERANCE = 0.3  # holds when |size - alpha| <= 0.3 alpha: [0.035, 0.065] at alpha = 0.05
SIZE_SIMS = 10_000  # fewest simulated null trials behind a reported size (Wilson half-width ~0.004)
SIZE_COVARIATES = 3  # E, C, F
SIZE_R2 = 0.5  # share of the between-cluster logit variance the covariates explain (adjusted only)
SIZE_CHUNK = 1000
# Exact enumeration runs the analysis on (c + 1)^2 trials of c clusters per arm; beyond this many
# cluster values (c about 270) the size is simulated instead.
EXACT_MAX_VALUES = 20_000_000


def size_band(alpha: float) -> tuple[float, float]:
    """The type-I errors that count as holding the nominal ``alpha``."""
    # Rounded so that 0.05 gives exactly (0.035, 0.065), not 0.034999999999999996.
    return round(alpha * (1.0 - SIZE_TOLERANCE), 12), round(alpha * (1.0 + SIZE_TOLERANCE), 12)


def holds(actual_size: float, alpha: float) -> bool:
    """Whether a type-I error counts as holding the nominal ``alpha`` (inside :func:`size_band`)."""
    low, high = size_band(alpha)
    return bool(low <= actual_size <= high)


def exact_size(analysis: str, clusters_per_arm: int, p_marginal: float, alpha: float) -> float:
    """Exact type-I error with one yes/no outcome per cluster, by enumerating the arm counts.

    Each arm's number of successes is Binomial(``c``, ``p_marginal``), independent between arms;
    ``analysis`` (``t``, ``welch`` or ``gee``) is run once on each of the ``(c + 1)^2`` pairs.
    """
    if analysis not in ("t", "welch", "gee"):
        raise DataError(f"exact size is for the t, welch and gee analyses, not {analysis!r}")
    c = int(clusters_per_arm)
    counts = np.arange(c + 1)
    k_a, k_b = (k.ravel() for k in np.meshgrid(counts, counts, indexing="ij"))
    # The analyses are symmetric in the clusters of an arm: the successes can come first.
    y_a = (np.arange(c) < k_a[:, None]).astype(float)
    y_b = (np.arange(c) < k_b[:, None]).astype(float)
    significant, _ = analyse(y_a, 1, y_b, 1, [c], alpha, analysis)
    weight = stats.binom.pmf(k_a, c, p_marginal) * stats.binom.pmf(k_b, c, p_marginal)
    return float(weight @ significant[:, 0])


def _enumerable(clusters_per_arm: int) -> bool:
    return (clusters_per_arm + 1) ** 2 * clusters_per_arm <= EXACT_MAX_VALUES


def _adjusted_rejections(task: Task, covariates: int) -> np.ndarray:
    """Two-sided rejections ``(len(sizes), len(clusters))`` of the adjusted analysis at the null.

    Same cluster effects and count uniforms as :func:`run_task` (``column_draws``), with the
    baseline covariates from a stream of their own per cluster position.
    """
    n, cmax = task.n, max(task.clusters)
    z = np.empty((2, n, cmax))
    v = np.empty((2, n, cmax))
    g = np.empty((2, n, cmax)) if task.cv > 0 else None
    x = np.empty((2, n, cmax, covariates))
    for arm in (0, 1):
        for col in range(cmax):
            z[arm, :, col], v[arm, :, col], gc = column_draws(task.seed, task.chunk, arm, col, n, task.cv)
            if g is not None:
                g[arm, :, col] = gc
            stream = np.random.SeedSequence(task.seed, spawn_key=(task.chunk, arm, col, 1))
            x[arm, :, col] = np.random.default_rng(stream).standard_normal((n, covariates))
    explained = x.sum(axis=3) / np.sqrt(covariates)
    effect = np.sqrt(SIZE_R2) * explained + np.sqrt(1.0 - SIZE_R2) * z
    prob = special.expit(task.logit_p0 + task.sigma_b * effect)
    out = np.zeros((len(task.sizes), len(task.clusters)), dtype=np.int64)
    for i, m in enumerate(task.sizes):
        sizes = [cluster_sizes(m, None if g is None else g[arm]) for arm in (0, 1)]
        ys = [binom_quantile(v[arm], sizes[arm], prob[arm]) for arm in (0, 1)]
        significant, _ = analyse(
            ys[0], sizes[0], ys[1], sizes[1], task.clusters, task.alpha, "adjusted",
            baseline_a=x[0], baseline_b=x[1],
        )
        out[i] = significant.sum(axis=0)
    return out


def _simulated_rejections(
    analysis, clusters, sizes, logit_p0, sigma_b, cv, alpha, sims, seed, chunk_size, covariates
) -> np.ndarray:
    total = np.zeros((len(sizes), len(clusters)), dtype=np.int64)
    for chunk, start in enumerate(range(0, sims, chunk_size)):
        task = Task(
            seed=seed,
            chunk=chunk,
            n=min(sims, start + chunk_size) - start,
            logit_p0=np.asarray(logit_p0),
            log_or=np.asarray(0.0),
            sigma_b=np.asarray(sigma_b),
            clusters=clusters,
            sizes=sizes,
            cv=cv,
            alpha=alpha,
            analysis=analysis,
            direction=0,
        )
        total += _adjusted_rejections(task, covariates) if analysis == "adjusted" else run_task(task)[1]
    return total


def size_grid(
    *,
    analyses: Iterable[str] = ANALYSES,
    clusters: Iterable[int],
    cluster_sizes: Iterable[int],
    p0: Iterable[float],
    sigma_b: float,
    alpha: float = 0.05,
    cv: float = 0.0,
    sims: int = SIZE_SIMS,
    seed: int = 0,
    chunk_size: int = SIZE_CHUNK,
    covariates: int = SIZE_COVARIATES,
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """Type-I error of each analysis at each design (``p1 = p0``), exact where feasible.

    Parameters
    ----------
    analyses
        Among ``t``, ``welch``, ``gee``, ``adjusted``.
    clusters, cluster_sizes, p0
        Clusters per arm, (mean) cluster sizes and typical-cluster control probabilities.
    sigma_b
        Between-cluster SD on the logit scale.
    alpha
        Nominal two-sided level.
    cv
        Coefficient of variation of cluster sizes (0 with cluster size 1).
    sims, seed, chunk_size
        Simulated null trials per design and their seeding (as :func:`simulate`'s).
    covariates
        Baseline covariates per cluster for the adjusted analysis (module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per analysis, design and ``p0``: ``actual_size``, ``size_mc_low``/``size_mc_high``
        (equal to ``actual_size`` when exact), ``size_method`` (``"exact"`` | ``"simulated"``),
        ``size_holds``, ``sims`` (0 when exact) and the inputs.
    """
    analyses = [check.choice("analysis", a, ANALYSES) for a in analyses]
    clusters = tuple(sorted({check.integer("clusters_per_arm", c, 2) for c in clusters}))
    sizes = tuple(check.integer("cluster_size", m, 1) for m in cluster_sizes)
    alpha, sigma_b, cv = check.alpha(alpha), check.nonnegative("sigma_b", sigma_b), check.nonnegative("cv", cv)
    sims = check.integer("sims", sims, 1)
    rows = []
    for p in p0:
        p = check.probability("p0", p)
        for analysis in analyses:
            exact_m = [m for m in sizes if m == 1 and cv == 0 and analysis != "adjusted"]
            simulated_m = tuple(m for m in sizes if m not in exact_m or not all(map(_enumerable, clusters)))
            if simulated_m:
                rejections = _simulated_rejections(
                    analysis, clusters, simulated_m, special.logit(p), sigma_b, cv, alpha, sims, seed,
                    chunk_size, covariates,
                )
            for m in sizes:
                for j, c in enumerate(clusters):
                    if m in exact_m and _enumerable(c):
                        size = exact_size(analysis, c, float(marginal_proportion(p, sigma_b)), alpha)
                        low = high = size
                        method, n = "exact", 0
                    else:
                        hits = rejections[simulated_m.index(m), j]
                        size, method, n = hits / sims, "simulated", sims
                        low, high = (float(b) for b in wilson_interval(hits, sims, ci_level))
                    rows.append(
                        {
                            "analysis": analysis,
                            "clusters_per_arm": c,
                            "cluster_size": m,
                            "p0": p,
                            "sigma_b": sigma_b,
                            "cv": cv,
                            "alpha": alpha,
                            "actual_size": size,
                            "size_mc_low": low,
                            "size_mc_high": high,
                            "size_method": method,
                            "size_holds": holds(size, alpha),
                            "sims": n,
                        }
                    )
    return pd.DataFrame(rows)


def size_check(
    analysis: str,
    clusters_per_arm: int,
    cluster_size: int,
    p0: float,
    sigma_b: float,
    alpha: float = 0.05,
    cv: float = 0.0,
    sims: int = SIZE_SIMS,
    seed: int = 0,
    *,
    chunk_size: int = SIZE_CHUNK,
    covariates: int = SIZE_COVARIATES,
) -> dict[str, Any]:
    """Type-I error of ``analysis`` at one design, and whether it holds the nominal ``alpha``.

    Exact by enumeration with cluster size 1 (t, welch, gee), else simulated at ``p1 = p0`` with
    ``sims`` trials and the kernel's random numbers for ``seed`` (module docstring).

    Returns
    -------
    dict
        ``actual_size``, ``size_mc_low``, ``size_mc_high``, ``size_method`` (``"exact"`` |
        ``"simulated"``), ``size_sims``, ``size_holds``, ``size_band`` (the interval counted as
        holding) and ``size_note``: ``None`` when the size holds, else one line saying so and
        what it does to a power computed with this analysis.
    """
    row = size_grid(
        analyses=[analysis],
        clusters=[clusters_per_arm],
        cluster_sizes=[cluster_size],
        p0=[p0],
        sigma_b=sigma_b,
        alpha=alpha,
        cv=cv,
        sims=sims,
        seed=seed,
        chunk_size=chunk_size,
        covariates=covariates,
    ).iloc[0]
    out = {
        "actual_size": float(row["actual_size"]),
        "size_mc_low": float(row["size_mc_low"]),
        "size_mc_high": float(row["size_mc_high"]),
        "size_method": str(row["size_method"]),
        "size_sims": int(row["sims"]),
        "size_holds": bool(row["size_holds"]),
        "size_band": list(size_band(float(row["alpha"]))),
    }
    out["size_note"] = size_note(analysis, int(clusters_per_arm), int(cluster_size), out, float(row["alpha"]))
    return out


def size_note(
    analysis: str, clusters_per_arm: int, cluster_size: int, size: dict, alpha: float, *, formula: bool = False
) -> str | None:
    """One line saying that the analysis does not hold its size here, or ``None`` when it does.

    ``formula=True``: the power beside it is a closed form, which assumes a test of size alpha.
    """
    if size["size_holds"]:
        return None
    low, high = size["size_band"]
    kind = "conservative" if size["actual_size"] < low else "liberal"
    if formula:
        effect = f"{kind}, and the closed-form power assumes a test of size {alpha:g}, which this trial cannot have"
    elif kind == "conservative":
        effect = "conservative: power computed with it is lower than a valid test's"
    else:
        effect = "liberal: power computed with it is higher than a valid test's"
    why = (
        "; with one yes/no outcome per cluster only a few results are possible, so a test's size can be far "
        "from alpha"
        if cluster_size == 1
        else ""
    )
    return (
        f"size does not hold: the {analysis} analysis at {clusters_per_arm} clusters per arm x {cluster_size} "
        f"has type-I error {size['actual_size']:.4f} ({size['size_method']}) at nominal {alpha:g}, outside "
        f"[{low:.3f}, {high:.3f}]; it is {effect}{why}"
    )
