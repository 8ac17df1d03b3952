"""Vectorised simulation kernel: generate many cluster trials at once and analyse them.

Arrays have shape ``(sims, clusters)``. Randomness is tied to *positions*, not to designs: the
numbers for cluster ``j`` of arm ``a`` in chunk ``i`` come from their own stream,
``SeedSequence(seed, spawn_key=(i, a, j))``. Each stream gives, in a fixed order, the cluster
effect ``z ~ N(0, 1)``, the uniform ``v`` that sets the cluster's count by the binomial inverse
CDF, and (only when sizes vary) a Gamma size factor. So every design evaluated with one seed
reuses the same numbers (common random numbers): a design with ``c`` clusters per arm is the
first ``c`` clusters of any larger one, counts move monotonically with the cluster size and the
cluster probability, and power curves are smooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power._analyses import adjusted_t_test, cluster_t_test, gee_test

ANALYSES = ("t", "welch", "gee", "adjusted")
#: Each analysis in words, for the text beside a number computed with it.
ANALYSIS_TEXT = {
    "t": "pooled two-sample t-test on cluster proportions, 2c - 2 df (Hayes & Moulton 2017, ch. 9)",
    "welch": "Welch's t-test on cluster proportions (Hayes & Moulton 2017, ch. 9)",
    "gee": "logistic GEE, independence working correlation, small-sample corrected robust SE, t(2c - 2)",
    "adjusted": "cluster-level t-test adjusted for baseline E, C, F (two-stage residuals; Hayes & Moulton 2017)",
}
ADJUSTED_NEEDS_BASELINES = (
    "the adjusted analysis (--analysis adjusted) needs each cluster's baseline E, C, F: give a population of "
    "services (a fit's sites or --sites candidates.csv), or use --analysis t"
)
# Binomial quantiles by pmf recursion up to this size; scipy's binom.ppf beyond it.
_RECURSION_MAX_N = 200


def binom_quantile(v: ArrayLike, n: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Smallest ``k`` with ``P(Bin(n, p) <= k) >= v``, elementwise (the binomial inverse CDF).

    Equal to ``scipy.stats.binom.ppf`` but several times faster for small ``n``: the CDF is
    accumulated by the pmf recursion, each element stopping at its own quantile. ``p > 0.5`` is
    mapped to ``1 - p`` so the starting term ``(1 - p)^n`` cannot underflow.
    """
    v, n, p = np.broadcast_arrays(np.asarray(v, float), np.asarray(n, float), np.asarray(p, float))
    flip = p > 0.5
    q = np.where(flip, 1.0 - p, p).ravel()
    u = np.where(flip, 1.0 - v, v).ravel()
    nn = n.ravel()
    out: np.ndarray = np.empty(q.shape, dtype=np.int64)
    small = nn <= _RECURSION_MAX_N
    if small.all():
        out[:] = _quantile_recursion(u, nn, q)
    else:
        out[small] = _quantile_recursion(u[small], nn[small], q[small])
        out[~small] = stats.binom.ppf(u[~small], nn[~small], q[~small]).astype(np.int64)
    out = out.reshape(v.shape)
    return np.where(flip, n.astype(np.int64) - out, out)


def _quantile_recursion(u: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    out = np.zeros(u.shape, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = q / (1.0 - q)
    pmf: np.ndarray = np.exp(n * np.log1p(-q))
    cdf: np.ndarray = pmf.copy()
    # Dense updates on a working set that is compacted once half of it has stopped: fancy
    # indexing every step would cost more than the arithmetic.
    idx: np.ndarray = np.arange(u.size)
    kk: np.ndarray = np.zeros(u.size, dtype=np.int64)
    uu, nn, rr = u, n, ratio
    active = (cdf < uu) & (nn > 0)
    k = 0
    while True:
        n_active = int(active.sum())
        if n_active == 0:
            break
        if n_active < idx.size // 2:
            keep = np.flatnonzero(active)
            out[idx] = kk
            idx, uu, nn, rr, pmf, cdf, kk = (a[keep] for a in (idx, uu, nn, rr, pmf, cdf, kk))
            active = np.ones(keep.size, dtype=bool)
        k += 1
        pmf = pmf * ((nn - k + 1.0) / k) * rr
        cdf = cdf + pmf
        kk = kk + active
        active &= (cdf < uu) & (k < nn)
    out[idx] = kk
    return out


@dataclass(frozen=True)
class Task:
    """One chunk of simulated trials; everything a worker needs (picklable)."""

    seed: int
    chunk: int
    n: int
    logit_p0: np.ndarray  # (n,) or () typical-cluster logit, control arm; or (n, 2, cmax) per cluster
    log_or: np.ndarray  # (n,) or () intervention effect on the logit; or (n, 2, cmax) per cluster
    sigma_b: np.ndarray  # (n,) or () between-cluster SD, logit scale (SD of each cluster's own effect)
    clusters: tuple[int, ...]  # candidate clusters per arm, ascending
    sizes: tuple[int, ...]  # candidate mean cluster sizes
    cv: float
    alpha: float
    analysis: str
    direction: int  # +1: success is a significant increase; -1 decrease; 0 either
    # (n, 2, cmax, p) each cluster's covariates before the intervention (a population of
    # services); None for the all-alike path. Passed to the analysis as baseline_a/baseline_b.
    baseline: np.ndarray | None = None


def column_draws(seed: int, chunk: int, arm: int, column: int, n: int, cv: float):
    """The numbers of one cluster position: effect z, count uniform v, size factor g (or None)."""
    gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk, arm, column)))
    z = gen.standard_normal(n)
    v = gen.random(n)
    g = gen.standard_gamma(1.0 / cv**2, n) * cv**2 if cv > 0 else None
    return z, v, g


def cluster_sizes(m: int, g: np.ndarray | None) -> np.ndarray | int:
    """Cluster sizes with mean about ``m``: ``m`` when equal, else ``max(2, round(m * g))``.

    ``g`` is Gamma with mean 1 and coefficient of variation ``cv`` (shape ``1/cv^2``), so sizes
    have mean ``m`` and CV ``cv`` up to rounding and the floor of 2 (which raise the mean
    slightly when ``m`` is small and ``cv`` large).
    """
    if g is None:
        return m
    return np.maximum(2, np.rint(m * g)).astype(np.int64)


def run_task(task: Task) -> np.ndarray:
    """Simulate and analyse one chunk.

    Returns
    -------
    np.ndarray
        int64 counts of shape ``(2, len(sizes), len(clusters))``: trials that succeeded
        (significant in ``direction``) and trials significant in either direction.
    """
    n, cmax = task.n, max(task.clusters)
    z = np.empty((2, n, cmax))
    v = np.empty((2, n, cmax))
    g = np.empty((2, n, cmax)) if task.cv > 0 else None
    for arm in (0, 1):
        for col in range(cmax):
            zc, vc, gc = column_draws(task.seed, task.chunk, arm, col, n, task.cv)
            z[arm, :, col], v[arm, :, col] = zc, vc
            if g is not None:
                g[arm, :, col] = gc
    sigma = np.asarray(task.sigma_b, float).reshape(-1, 1)
    per_cluster = np.ndim(task.logit_p0) == 3  # a population of services: one logit per cluster
    if per_cluster:
        logits = [task.logit_p0[:, arm] + arm * task.log_or[:, arm] + sigma * z[arm] for arm in (0, 1)]
    else:
        base = np.asarray(task.logit_p0, float).reshape(-1, 1)
        shift = np.asarray(task.log_or, float).reshape(-1, 1)
        logits = [base + arm * shift + sigma * z[arm] for arm in (0, 1)]
    baseline = {}
    if task.baseline is not None:
        baseline = {"baseline_a": task.baseline[:, 0], "baseline_b": task.baseline[:, 1]}
    counts = np.zeros((2, len(task.sizes), len(task.clusters)), dtype=np.int64)
    for i, m in enumerate(task.sizes):
        sizes = [cluster_sizes(m, None if g is None else g[arm]) for arm in (0, 1)]
        ys = [binom_quantile(v[arm], sizes[arm], special.expit(logits[arm])) for arm in (0, 1)]
        significant, diff = analyse(
            ys[0], sizes[0], ys[1], sizes[1], task.clusters, task.alpha, task.analysis, **baseline
        )
        success = significant if task.direction == 0 else significant & (task.direction * diff > 0)
        counts[0, i] = success.sum(axis=0)
        counts[1, i] = significant.sum(axis=0)
    return counts


def analyse(
    y_a,
    n_a,
    y_b,
    n_b,
    clusters,
    alpha: float,
    analysis: str = "t",
    *,
    baseline_a: np.ndarray | None = None,
    baseline_b: np.ndarray | None = None,
):
    """Analyse simulated trials for each number of clusters per arm in ``clusters``.

    Uses the first ``c`` columns of each arm for design ``c``: counts ``y`` of ``n`` members,
    ``(sims, cmax)``, and for ``analysis="adjusted"`` each cluster's baseline covariates
    (E, C, F), ``baseline_a``/``baseline_b`` of shape ``(sims, cmax, p)``. The analyses are in
    :mod:`mbct_bayes.power._analyses`.

    Returns
    -------
    (significant, diff)
        Boolean (sims, len(clusters)): two-sided p < alpha; and the estimated difference
        (intervention minus control) whose sign gives the direction.
    """
    if analysis == "gee":
        return gee_test(y_a, n_a, y_b, n_b, clusters, alpha)
    prop_a = y_a / np.broadcast_to(n_a, y_a.shape)
    prop_b = y_b / np.broadcast_to(n_b, y_b.shape)
    if analysis == "adjusted":
        if baseline_a is None or baseline_b is None:
            raise DataError(ADJUSTED_NEEDS_BASELINES)
        return adjusted_t_test(prop_a, prop_b, baseline_a, baseline_b, clusters, alpha)
    return cluster_t_test(prop_a, prop_b, clusters, alpha, welch=analysis == "welch")


def wilson_interval(successes: int | np.ndarray, n: int, level: float = 0.95):
    """Wilson score interval for a binomial proportion (Monte Carlo interval of a power)."""
    z = stats.norm.ppf(0.5 + level / 2.0)
    phat = np.asarray(successes, float) / n
    centre = (phat + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
