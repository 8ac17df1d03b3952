"""Closed-form power and sample size: two-arm parallel cluster-randomised trial, binary outcome.

Two formulas:

``"donner-klar"`` (default)
    Donner & Klar (2000): the variance of the difference in arm proportions is
    ``(p0(1-p0) + p1(1-p1)) * DE / (c * m)`` with design effect
    ``DE = 1 + ((cv^2 + 1) m - 1) * icc`` (Eldridge, Ashby & Kerry 2006; ``cv = 0`` gives the
    classic ``1 + (m - 1) icc``). Power is ``Phi(|p1 - p0| / sd - z_{1-alpha/2})`` under the normal
    reference, or ``P(T' > t_{1-alpha/2, df})`` with ``T'`` noncentral t, ``df = 2(c - 1)`` and
    noncentrality ``|p1 - p0| / sd`` under the t reference. This is exactly the power function of
    clusterPower's ``cpa.binary`` (formerly ``crtpwr.2prop``), including its ``pooled`` option.
    The ICC is on the *proportion* scale, as in clusterPower and CRTSize.

``"hayes-bennett"``
    Hayes & Bennett (1999), between-cluster coefficient of variation ``k`` of the true cluster
    proportions: ``c = 1 + (z_{alpha/2} + z_beta)^2 [p0(1-p0)/m + p1(1-p1)/m + k^2 (p0^2 + p1^2)]
    / (p0 - p1)^2``. Normal reference only (the ``1 +`` is the paper's small-sample allowance).

Exactly one of ``power``, ``clusters_per_arm``, ``cluster_size`` and ``p1`` is left unset (None)
and solved for, by :func:`scipy.optimize.brentq` on the power function (so every unknown uses
the same equation); the exact (fractional) value is reported with the design value rounded up.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._results import PowerResult
from mbct_bayes.power._size import exact_size, holds, size_band, size_note

METHODS = ("donner-klar", "hayes-bennett")
DISTS = ("t", "normal")
UNKNOWNS = ("power", "clusters_per_arm", "cluster_size", "p1")
_XTOL = 1e-10
# Rounding up tolerates the root finder's last digits: 12.0000000001 designs 12 clusters.
_CEIL_SLACK = 1e-6


def design_effect(cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """Design effect ``1 + ((cv^2 + 1) m - 1) icc`` (Eldridge, Ashby & Kerry 2006).

    Parameters
    ----------
    cluster_size
        Mean cluster size ``m``.
    icc
        Intracluster correlation on the proportion scale.
    cv
        Coefficient of variation of the cluster sizes; 0 (equal sizes) gives ``1 + (m - 1) icc``.
    """
    return 1.0 + ((cv**2 + 1.0) * cluster_size - 1.0) * icc


def _power_from_ncp(ncp: float, clusters: float, alpha: float, dist: str) -> float:
    if dist == "normal":
        return float(stats.norm.cdf(ncp - stats.norm.ppf(1.0 - alpha / 2.0)))
    df = 2.0 * (clusters - 1.0)
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    return float(stats.nct.sf(crit, df, ncp))


def _power_dk(
    p0: float,
    p1: float,
    c: float,
    m: float,
    icc: float,
    cv: float,
    alpha: float,
    dist: str,
    pooled: bool,
) -> float:
    deff = design_effect(m, icc, cv)
    if pooled:
        pbar = (p0 + p1) / 2.0
        var = 2.0 * pbar * (1.0 - pbar) * deff / (c * m)
    else:
        var = (p0 * (1.0 - p0) + p1 * (1.0 - p1)) * deff / (c * m)
    return _power_from_ncp(abs(p1 - p0) / math.sqrt(var), c, alpha, dist)


def _power_hb(p0: float, p1: float, c: float, m: float, k: float, alpha: float) -> float:
    var = (p0 * (1.0 - p0) + p1 * (1.0 - p1)) / m + k**2 * (p0**2 + p1**2)
    z_beta = abs(p1 - p0) * math.sqrt(max(c - 1.0, 0.0) / var) - stats.norm.ppf(1.0 - alpha / 2.0)
    return float(stats.norm.cdf(z_beta))


def hayes_bennett_clusters(
    p0: float, p1: float, cluster_size: float, k: float, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Clusters per arm by the Hayes & Bennett (1999) closed form (unrounded).

    ``c = 1 + (z_{alpha/2} + z_beta)^2 [p0(1-p0)/m + p1(1-p1)/m + k^2 (p0^2 + p1^2)]
    / (p0 - p1)^2``.
    """
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    var = (p0 * (1.0 - p0) + p1 * (1.0 - p1)) / cluster_size + k**2 * (p0**2 + p1**2)
    return float(1.0 + z**2 * var / (p0 - p1) ** 2)


def _ceil(value: float, minimum: int = 2) -> int:
    return max(minimum, math.ceil(value - _CEIL_SLACK))


def analytic(
    *,
    p0: float,
    p1: float | None = None,
    odds_ratio: float | None = None,
    clusters_per_arm: float | None = None,
    cluster_size: float | None = None,
    power: float | None = None,
    icc: float | None = None,
    cv: float = 0.0,
    k: float | None = None,
    alpha: float = 0.05,
    dist: str | None = None,
    method: str = "donner-klar",
    pooled: bool = False,
    p1_greater: bool = True,
    max_clusters: float = 1e6,
    max_cluster_size: float = 1e6,
) -> PowerResult:
    """Closed-form power or sample size for a two-arm cluster trial with a binary outcome.

    Leave exactly one of ``power``, ``clusters_per_arm``, ``cluster_size`` and ``p1`` (with
    ``odds_ratio``) as None; it is solved for.

    Parameters
    ----------
    p0, p1
        Outcome proportions in the control and intervention arms (marginal, i.e. averaged over
        clusters, as the formulas take them).
    odds_ratio
        Alternative to ``p1``: ``p1`` has odds ``odds_ratio * p0 / (1 - p0)``.
    clusters_per_arm
        Clusters per arm ``c``.
    cluster_size
        Mean cluster size ``m``.
    power
        Power (target when solving for something else).
    icc
        Intracluster correlation on the **proportion** scale (as clusterPower and CRTSize take it),
        for ``method="donner-klar"``. Not the logit-scale ICC sigma^2 / (sigma^2 + pi^2/3); see
        :func:`mbct_bayes.power.icc_from_sigma_b` to convert.
    cv
        Coefficient of variation of cluster sizes (Donner–Klar only).
    k
        Between-cluster coefficient of variation of the true proportions (Hayes–Bennett only).
    alpha
        Two-sided significance level.
    dist
        ``"t"`` (df = 2(c - 1), noncentral t) or ``"normal"``; default ``"t"`` for Donner–Klar and
        ``"normal"`` for Hayes–Bennett (which is normal only).
    method
        ``"donner-klar"`` or ``"hayes-bennett"``.
    pooled
        Donner–Klar: use the pooled variance ``2 pbar (1 - pbar)`` (clusterPower's ``pooled``).
    p1_greater
        When solving for ``p1``: look above ``p0`` (True) or below it.
    max_clusters, max_cluster_size
        Search limits; a target not reached within them is an error.

    Returns
    -------
    PowerResult
        A read-only mapping whose ``to_dict()`` is the CLI's JSON: every input echoed and ``power``, ``clusters_per_arm`` (exact, fractional when solved),
        ``clusters_per_arm_design`` (rounded up, at least 2), ``cluster_size`` (exact),
        ``cluster_size_design``, ``p0``, ``p1``, ``odds_ratio``, ``design_effect``, ``df`` (t
        only, at the design value), ``power_at_design`` and ``solved_for``. With one outcome per
        cluster (``cluster_size_design`` 1) also the exact type-I error of the pooled t-test on
        the clusters' yes/no outcomes at ``p1 = p0``: ``actual_size``, ``size_method``
        (``"exact"``), ``size_band``, ``size_holds`` and ``size_note`` (see
        :func:`mbct_bayes.power.size_check`).

    Raises
    ------
    DataError
        Bad inputs, not exactly one unknown, or a target that cannot be reached.
    """
    method = check.choice("method", method, METHODS)
    dist = dist or ("normal" if method == "hayes-bennett" else "t")
    dist = check.choice("dist", dist, DISTS)
    if method == "hayes-bennett" and dist != "normal":
        raise DataError("method 'hayes-bennett' uses the normal reference only; use --dist normal")
    alpha = check.alpha(alpha)
    p0 = check.probability("p0", p0)
    p1 = check.effect(p0, p1, odds_ratio)
    unknown = [
        name
        for name, value in zip(UNKNOWNS, (power, clusters_per_arm, cluster_size, p1), strict=True)
        if value is None
    ]
    if len(unknown) != 1:
        raise DataError(
            "leave exactly one of power, clusters_per_arm (--clusters), cluster_size "
            f"(--cluster-size), p1 (--p1/--odds-ratio) unset to solve for it; "
            f"{'none is' if not unknown else ', '.join(unknown) + ' are'} unset"
        )
    solve = unknown[0]
    if power is not None:
        power = check.target_power(power, alpha)
    if clusters_per_arm is not None:
        clusters_per_arm = check.clusters(clusters_per_arm)
    if cluster_size is not None:
        cluster_size = check.cluster_size(cluster_size)
    cv = check.nonnegative("cv", cv)
    max_clusters = check.clusters(max_clusters, "max_clusters")
    max_cluster_size = check.cluster_size(max_cluster_size, "max_cluster_size")
    if method == "donner-klar":
        if icc is None:
            raise DataError("method 'donner-klar' needs icc (--icc), the proportion-scale ICC")
        icc = check.icc(icc)
        if k is not None:
            raise DataError("k (--k) belongs to method 'hayes-bennett'; give icc for 'donner-klar'")
    else:
        if k is None:
            raise DataError(
                "method 'hayes-bennett' needs k (--k), the between-cluster coefficient of variation"
            )
        k = check.nonnegative("k", k)
        if icc is not None or cv:
            raise DataError(
                "method 'hayes-bennett' takes k, not icc or cv; drop --icc/--cv or use donner-klar"
            )
    check.per_cluster_outcome(cluster_size, cv=cv, k=k)
    if p1 is not None and p1 == p0 and solve != "power":
        raise DataError("p1 equals p0: there is no effect to detect; give p1 different from p0")

    def fn(c: float, m: float, q1: float) -> float:
        if method == "hayes-bennett":
            assert k is not None  # hayes-bennett needs k (checked above)
            return _power_hb(p0, q1, c, m, k, alpha)
        assert icc is not None  # donner-klar needs icc (checked above)
        return _power_dk(p0, q1, c, m, icc, cv, alpha, dist, pooled)

    values: dict[str, float | None] = {
        "power": power,
        "clusters_per_arm": clusters_per_arm,
        "cluster_size": cluster_size,
        "p1": p1,
    }
    if solve == "power":
        assert clusters_per_arm is not None and cluster_size is not None and p1 is not None  # one unknown: power
        values["power"] = fn(clusters_per_arm, cluster_size, p1)
    else:
        values[solve] = _solve(
            solve, fn, values, p0, alpha, dist, method, p1_greater, max_clusters, max_cluster_size
        )
    c, m, q1 = values["clusters_per_arm"], values["cluster_size"], values["p1"]
    assert c is not None and m is not None and q1 is not None  # every unknown is solved by now
    c_design = _ceil(c)
    m_design = _ceil(m, minimum=1)
    result: dict[str, Any] = {
        "method": method,
        "dist": dist,
        "solved_for": solve,
        "alpha": alpha,
        "power": values["power"],
        "clusters_per_arm": c,
        "clusters_per_arm_design": c_design,
        "cluster_size": m,
        "cluster_size_design": m_design,
        "p0": p0,
        "p1": q1,
        "odds_ratio": (q1 / (1 - q1)) / (p0 / (1 - p0)),
        "icc": icc,
        "cv": cv,
        "k": k,
        "pooled": pooled,
        "p1_greater": p1_greater,
        "max_clusters": max_clusters,
        "max_cluster_size": max_cluster_size,
        "design_effect": design_effect(m, icc, cv) if method == "donner-klar" and icc is not None else None,
        "df": 2 * (c_design - 1) if dist == "t" else None,
    }
    result["power_at_design"] = fn(c_design, m_design, q1)
    if m_design == 1:
        # One yes/no outcome per cluster: the exact type-I error of the pooled t-test at the design
        # (arm counts binomial at p0), which with few clusters is far from alpha.
        result.update(_exact_size_one_outcome(c_design, p0, alpha))
    return PowerResult.from_values(result)


def _exact_size_one_outcome(clusters_per_arm: int, p0: float, alpha: float) -> dict[str, Any]:
    size: dict[str, Any] = {"actual_size": exact_size("t", clusters_per_arm, p0, alpha), "size_method": "exact"}
    size["size_band"] = list(size_band(alpha))
    size["size_holds"] = holds(size["actual_size"], alpha)
    size["size_note"] = size_note("t", clusters_per_arm, 1, size, alpha, formula=True)
    return size


def _solve(
    solve, fn, values, p0, alpha, dist, method, p1_greater, max_clusters, max_cluster_size
) -> float:
    target = values["power"]

    def gap(x: float) -> float:
        args = dict(values)
        args[solve] = x
        return fn(args["clusters_per_arm"], args["cluster_size"], args["p1"]) - target

    if solve == "clusters_per_arm":
        # The normal formula holds for any c > 0 and Hayes–Bennett's for c >= 1. The noncentral t
        # is unreliable as df -> 0 (scipy's nct returns garbage there), so start at df = 1.
        lo = {"t": 1.5, "normal": 1.0 if method == "hayes-bennett" else 1e-6}[dist]
        hi = float(max_clusters)
        if gap(hi) < 0:
            raise DataError(
                f"target power {target:g} is not reached with up to {max_clusters:g} clusters "
                f"per arm (power there {gap(hi) + target:.3f}); raise max_clusters "
                "(--max-clusters) or change the design"
            )
    elif solve == "cluster_size":
        lo, hi = 1.0, float(max_cluster_size)
        if gap(hi) < 0:
            raise DataError(
                f"target power {target:g} cannot be reached with {values['clusters_per_arm']:g} "
                f"clusters per arm at any cluster size up to {max_cluster_size:g} (power there "
                f"{gap(hi) + target:.3f}: between-cluster variation caps what larger clusters "
                "add); add clusters instead"
            )
    else:
        eps = 1e-9
        lo, hi = (p0 + eps, 1 - eps) if p1_greater else (p0 - eps, eps)
        if gap(hi) < 0:
            side = "above" if p1_greater else "below"
            raise DataError(
                f"target power {target:g} is not reached by any p1 {side} p0 = {p0:g} with this "
                "design; add clusters or members, or lower the target"
            )
    if gap(lo) >= 0:
        return lo
    lo, hi = min(lo, hi), max(lo, hi)
    return float(
        optimize.brentq(gap, lo, hi, xtol=_XTOL, rtol=4 * np.finfo(float).eps, maxiter=500)
    )
