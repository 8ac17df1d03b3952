"""Stepped-wedge cluster trials with a binary outcome: analytic power, simulation, assurance.

Cross-sectional design: every cluster is observed in every period, with different people each
period (``cluster_size`` per cluster-period), and switches from control to intervention at the
start of its sequence's step, never back. ``sequences=[6, 6, 6, 6]`` is 24 clusters in 4
sequences; with the default ``periods = len(sequences) + 1`` the first period is all control and
the last all intervention; further periods are added at the end, all intervention (as
swCRTdesign's ``swDsn(extra.time=...)``). Any other 0/1 cluster-by-period design can be given
as ``design=`` (Python).

* :func:`stepped_wedge_analytic` — Hussey & Hughes (2007): a linear mixed model for the
  cluster-period proportions, ``y_it = mu + beta_t + theta x_it + a_i + e_it`` with random
  cluster intercepts ``a_i ~ N(0, tau^2)`` (proportion scale), period fixed effects ``beta_t``
  (or a linear time trend) and ``Var(e_it) = pbar (1 - pbar) / m`` with ``pbar = (p0 + p1)/2``.
  The variance of the weighted-least-squares (GLS) estimate of ``theta = p1 - p0`` comes from
  the information matrix summed over clusters, and power is
  ``Phi(|theta|/se - z) + Phi(-|theta|/se - z)``, ``z = z_{1 - alpha/2}``: exactly swCRTdesign's
  ``swPwr`` (random intercepts only, ``eta = rho = gamma = 0``). For the standard design with
  period effects and equal sizes this equals HH's closed form, which is reported beside it.
* :func:`stepped_wedge_simulate` — simulated trials analysed by the same model (see there).
* :func:`stepped_wedge_assurance_from_draws` — the simulation with baseline, between-cluster SD
  and effect drawn from a posterior (logit scale), one profile for all clusters.
* :func:`stepped_wedge_population_assurance` / :func:`stepped_wedge_assurance` — assurance from a
  fit over a population of services (the fitted sites, candidates randomised to the sequences,
  optionally within region strata), as :func:`mbct_bayes.power.assurance` for parallel arms.
* :func:`stepped_wedge` — the analytic answer, plus the simulated one when ``sims`` is given.

The simulation kernel (:func:`simulate_sw_counts`) takes each simulated trial's per-cluster
control logits and per-cluster intervention shifts as ``(sims, clusters)`` arrays, so that a
population of services can be fed in directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._assurance import (
    _check_draws,
    _direction_summary,
    _draw_order,
    _resolve_direction,
    assumptions,
    draws_from_fit,
    population_from_fit,
)
from mbct_bayes.power._icc import icc_from_sigma_b, marginal_proportion
from mbct_bayes.power._kernel import wilson_interval
from mbct_bayes.power._population import cluster_arrays, describe, implied, population_at_means, sequence_services
from mbct_bayes.power._results import AssuranceResult, PowerResult
from mbct_bayes.power._settings import resolve_seed

if TYPE_CHECKING:  # power does not import the model stack
    from mbct_bayes.model.fit import Fit

TIME_MODELS = ("categorical", "linear")
REFERENCE = "Hussey & Hughes 2007 via WLS, as swCRTdesign's swPwr"
SIM_CHUNK = 2000
STREAM = 0x5357  # spawn key of this module's random streams ("SW")
SW_ANALYSIS = "LMM on cluster-period proportions: moment (ANOVA) variance components, GLS, t with within-cluster residual df"


# ---------------------------------------------------------------------------- design
def stepped_wedge_design(sequences: Sequence[int] | str, periods: int | None = None) -> np.ndarray:
    """The ``(clusters, periods)`` 0/1 treatment matrix of a standard stepped-wedge design.

    Parameters
    ----------
    sequences
        Clusters crossing over at each step, e.g. ``[6, 6, 6, 6]`` (or ``"6,6,6,6"``).
    periods
        Number of periods; default ``len(sequences) + 1`` (first all control, last all
        intervention). More periods add all-intervention periods at the end.

    Returns
    -------
    numpy.ndarray
        Rows are clusters in sequence order; sequence ``s`` (0-based) is treated from period
        ``s + 1`` on.
    """
    counts = parse_sequences(sequences)
    steps = len(counts)
    if periods is None:
        periods = steps + 1
    periods = check.integer("periods", periods, 2)
    if periods < steps + 1:
        raise DataError(
            f"periods (--periods) = {periods} is fewer than the {steps} sequences + 1; a stepped "
            f"wedge needs a first all-control period and one period per step: give at least {steps + 1}"
        )
    step = np.repeat(np.arange(steps), counts)  # each cluster's sequence
    return (np.arange(periods)[None, :] > step[:, None]).astype(float)


def parse_sequences(sequences: Sequence[int] | str) -> list[int]:
    """Clusters per sequence as positive whole numbers (a list or ``"6,6,6,6"``)."""
    if isinstance(sequences, list) and all(type(n) is int and n >= 1 for n in sequences) and sequences:
        return list(sequences)  # already clean: the common case from Python, checked cheaply
    text = sequences if isinstance(sequences, str) else None
    parts = text.split(",") if text is not None else list(np.ravel(np.asarray(sequences, dtype=object)))
    counts = []
    for part in parts:
        try:
            number = float(str(part).strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number != int(number) or number < 1:
            raise DataError(
                f"sequences (--sequences) = {text if text is not None else ','.join(map(str, parts))!r}: "
                f"{str(part).strip()!r} is not a positive whole "
                "number; give the clusters crossing over at each step, e.g. 6,6,6,6"
            )
        counts.append(int(number))
    if not counts:
        raise DataError("sequences (--sequences) is empty; give the clusters crossing over at each step, e.g. 6,6,6,6")
    return counts


def _check_design(design: ArrayLike) -> np.ndarray:
    try:
        x = np.asarray(design, dtype=float)
    except (TypeError, ValueError):
        raise DataError("design must be a clusters x periods matrix of 0/1 numbers") from None
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise DataError(
            f"design has shape {x.shape}; give a clusters x periods matrix of 0/1 (at least 2 clusters and 2 periods)"
        )
    if not np.isin(x, (0.0, 1.0)).all():
        raise DataError("design must hold only 0 (control) and 1 (intervention) in each cluster-period")
    return x


def _time_columns(periods: int, time: str) -> np.ndarray:
    """Time fixed effects, without the intercept: ``(periods, k)``."""
    if time == "categorical":
        # One indicator per period but the last (the reference), as swPwr builds Xmat.
        return np.eye(periods)[:, : periods - 1]
    return np.arange(periods, dtype=float)[:, None]


def fixed_effects(design: np.ndarray, time: str) -> np.ndarray:
    """Per-cluster fixed-effects rows ``(clusters, periods, p)``: intercept, time, treatment."""
    clusters, periods = design.shape
    time_cols = np.broadcast_to(_time_columns(periods, time), (clusters, periods, _n_time(periods, time)))
    ones = np.ones((clusters, periods, 1))
    return np.concatenate([ones, time_cols, design[:, :, None]], axis=2)


def _n_time(periods: int, time: str) -> int:
    return periods - 1 if time == "categorical" else 1


# ---------------------------------------------------------------------------- analytic
def gls_variance(design: np.ndarray, cell_variance: ArrayLike, tau: float, time: str = "categorical") -> float:
    """Variance of the GLS treatment estimate under random cluster intercepts.

    ``cell_variance`` is the residual variance of each cluster-period mean (scalar or
    ``(clusters, periods)``); ``tau`` the between-cluster SD. Each cluster's covariance
    ``diag(d) + tau^2 J`` is inverted by Sherman–Morrison, so the information matrix is a sum
    over clusters of p x p terms.
    """
    z = fixed_effects(design, time)
    w = 1.0 / np.broadcast_to(np.asarray(cell_variance, dtype=float), design.shape)
    shrink = tau**2 / (1.0 + tau**2 * w.sum(axis=1))
    zw = z * w[:, :, None]
    u = zw.sum(axis=1)  # (clusters, p)
    p = z.shape[2]
    info = zw.reshape(-1, p).T @ z.reshape(-1, p) - (u * shrink[:, None]).T @ u
    # Var(theta_hat) = 1 / (the treatment's information left after the intercept and time
    # effects), a Schur complement. The intercept-and-time block is always positive definite;
    # the treatment has no information left when its column is a combination of those and of
    # the clusters' own levels (e.g. every cluster switches at the same period).
    rest, cross = info[:-1, :-1], info[:-1, -1]
    remaining = info[-1, -1] - cross @ np.linalg.solve(rest, cross)
    if not remaining > 1e-10 * info[-1, -1]:
        raise DataError(
            "the design cannot separate the intervention from the time effects: "
            "give clusters that cross over at different periods (and some control periods)"
        )
    return float(1.0 / remaining)


def hussey_hughes_variance(design: np.ndarray, sigma2: float, tau: float) -> float:
    """Hussey & Hughes (2007) closed form for ``Var(theta_hat)`` (period effects, equal sizes).

    ``Var = I s (s + T tau^2) / ((I U - W) s + (U^2 + I T U - T W - I V) tau^2)`` with
    ``s = sigma2`` the variance of a cluster-period mean, ``U = sum X``,
    ``W = sum_t (sum_i X_it)^2``, ``V = sum_i (sum_t X_it)^2``.
    """
    clusters, periods = design.shape
    u = design.sum()
    w = (design.sum(axis=0) ** 2).sum()
    v = (design.sum(axis=1) ** 2).sum()
    t2 = tau**2
    numerator = clusters * sigma2 * (sigma2 + periods * t2)
    denominator = (clusters * u - w) * sigma2 + (u**2 + clusters * periods * u - periods * w - clusters * v) * t2
    return float(numerator / denominator)


def two_sided_power(theta: float, variance: float, alpha: float) -> float:
    """``Phi(|theta|/se - z) + Phi(-|theta|/se - z)`` (swPwr's two-sided normal power)."""
    z = special.ndtri(1.0 - alpha / 2.0)  # scipy.special: the same Phi, without stats' overhead
    ratio = abs(theta) / math.sqrt(variance)
    return float(special.ndtr(ratio - z) + special.ndtr(-ratio - z))


def _variation(p0: float, p1: float, tau: float | None, icc: float | None) -> tuple[float, float]:
    """``(tau, icc)`` from one of them, at ``pbar``, as swPwr converts (``cac = 1``)."""
    if tau is not None and icc is not None:
        raise DataError("give tau (--tau) or icc (--icc), not both; each sets the between-cluster variation")
    if tau is None and icc is None:
        raise DataError("give tau (--tau, between-cluster SD of the proportion) or icc (--icc)")
    pbar = (p0 + p1) / 2.0
    bernoulli = pbar * (1.0 - pbar)
    if icc is not None:
        icc = check.icc(icc)
        tau = math.sqrt(bernoulli * icc / (1.0 - icc))
    else:
        assert tau is not None  # tau or icc (checked above)
        tau = check.nonnegative("tau", tau)
        if tau**2 >= bernoulli:
            raise DataError(
                f"tau (--tau) = {tau:g}: tau^2 must be below pbar (1 - pbar) = {bernoulli:.4g} at "
                f"pbar = (p0 + p1)/2 = {pbar:g}; give a smaller between-cluster SD (proportion scale)"
            )
        icc = tau**2 / (tau**2 + bernoulli)
    return tau, icc


def _sizes(cluster_size: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    try:
        sizes = np.broadcast_to(np.asarray(cluster_size, dtype=float), shape)
    except (TypeError, ValueError):
        raise DataError(
            f"cluster_size (--cluster-size) = {cluster_size!r:.40}: give one whole number or "
            f"a clusters x periods {shape} matrix of them"
        ) from None
    bad = ~np.isfinite(sizes) | (sizes < 1) | (sizes != np.round(sizes))
    if bad.any():
        value = float(sizes[bad].flat[0])
        raise DataError(
            f"cluster_size (--cluster-size) = {value:g} must be a whole number >= 1 "
            "(people measured per cluster-period)"
        )
    return sizes


def _resolve_design(sequences, design, periods) -> tuple[np.ndarray, list[int] | None]:
    if (sequences is None) == (design is None):
        raise DataError("give sequences (--sequences, e.g. 6,6,6,6) or a design matrix, one of the two")
    if design is not None:
        if periods is not None:
            raise DataError("periods is set by the design matrix's columns; leave periods out")
        return _check_design(design), None
    counts = parse_sequences(sequences)
    return stepped_wedge_design(counts, periods), counts


def stepped_wedge_analytic(
    *,
    p0: float,
    p1: float,
    cluster_size: ArrayLike,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    tau: float | None = None,
    icc: float | None = None,
    alpha: float = 0.05,
    time: str = "categorical",
) -> PowerResult:
    """Analytic power of a cross-sectional stepped-wedge trial (Hussey & Hughes 2007, as ``swPwr``).

    Parameters
    ----------
    p0, p1
        Mean proportions under control and intervention (proportion scale; ``theta = p1 - p0``).
    cluster_size
        People measured per cluster-period: one number, or a clusters x periods matrix.
    sequences, periods
        The standard design (see :func:`stepped_wedge_design`); or give ``design``.
    design
        Any clusters x periods 0/1 treatment matrix instead of ``sequences``.
    tau, icc
        Between-cluster SD of the proportion (swPwr's ``tau``), or the ICC
        ``tau^2 / (tau^2 + pbar (1 - pbar))`` converted to it (swPwr's ``icc`` with ``cac = 1``).
        Give one.
    alpha
        Two-sided significance level.
    time
        ``"categorical"`` (period fixed effects, default, as swPwr) or ``"linear"`` (a linear
        trend in period instead).

    Returns
    -------
    PowerResult
        ``power``, ``se_theta``, ``var_theta``, ``power_closed_form`` (HH's formula; None unless
        period effects and equal sizes), the design (``sequences``, ``periods``, ``clusters``,
        ``design``), ``cluster_size``, ``p0``, ``p1``, ``theta``, ``pbar``, ``tau``, ``icc``,
        ``alpha``, ``time``, ``dist`` (``"normal"``), ``method``, ``assumptions``.
    """
    p0 = check.probability("p0", p0)
    p1 = check.probability("p1", p1)
    alpha = check.alpha(alpha)
    time = check.choice("time", time, TIME_MODELS)
    x, counts = _resolve_design(sequences, design, periods)
    sizes = _sizes(cluster_size, x.shape)
    tau, icc = _variation(p0, p1, tau, icc)
    pbar = (p0 + p1) / 2.0
    cell_variance = pbar * (1.0 - pbar) / sizes
    variance = gls_variance(x, cell_variance, tau, time)
    theta = p1 - p0
    closed = None
    equal = bool((sizes == sizes.flat[0]).all())
    if time == "categorical" and equal:
        closed = two_sided_power(theta, hussey_hughes_variance(x, float(cell_variance.flat[0]), tau), alpha)
    return PowerResult.from_values({
        "power": two_sided_power(theta, variance, alpha),
        "power_closed_form": closed,
        "se_theta": math.sqrt(variance),
        "var_theta": variance,
        "sequences": counts,
        "periods": int(x.shape[1]),
        "clusters": int(x.shape[0]),
        "design": x.astype(int).tolist(),
        "cluster_size": int(sizes.flat[0]) if equal else sizes.astype(int).tolist(),
        "p0": p0,
        "p1": p1,
        "theta": theta,
        "pbar": pbar,
        "tau": tau,
        "icc": icc,
        "alpha": alpha,
        "time": time,
        "dist": "normal",
        "method": REFERENCE,
        "assumptions": [
            "cross-sectional sampling: different people in each cluster-period",
            "linear model on the proportion scale: p1 - p0 is the same in every cluster and period",
            "random cluster intercepts only (no random treatment or cluster-by-period effects), "
            "tau and the ICC the same in every period",
            "binomial variance of a cluster-period mean taken at pbar = (p0 + p1)/2",
            "time effects: " + ("one fixed effect per period" if time == "categorical" else "a linear trend"),
            "variance components known; normal reference distribution",
        ],
    })


# ---------------------------------------------------------------------------- simulation kernel
def simulate_sw_counts(
    rng: np.random.Generator,
    control_logits: np.ndarray,
    shifts: np.ndarray,
    design: np.ndarray,
    cluster_size: int,
    period_logits: ArrayLike | None = None,
) -> np.ndarray:
    """Cluster-period counts ``(sims, clusters, periods)``.

    Cluster ``i`` of trial ``s`` has probability
    ``expit(control_logits[s, i] + period_logits[t] + shifts[s, i] * design[i, t])`` in period
    ``t``; each cluster-period count is binomial with ``cluster_size`` people. ``control_logits``
    and ``shifts`` are ``(sims, clusters)``: every simulated trial can carry its own clusters,
    drawn from any population of services; or ``(sims, clusters, periods)`` when they also
    change from period to period (e.g. a secular trend).
    """
    control, shift = (np.asarray(a, float) for a in (control_logits, shifts))
    control, shift = (a if a.ndim == 3 else a[:, :, None] for a in (control, shift))
    eta = control + shift * design
    if period_logits is not None:
        eta = eta + np.asarray(period_logits, float)
    return rng.binomial(cluster_size, special.expit(eta))


class SteppedWedgeAnalysis:
    """The HH model fitted to many simulated trials at once (one design, equal sizes).

    Variance components by moments (ANOVA, Henderson's method III): the residual variance
    ``sigma_e^2`` from the within-cluster fit (cluster fixed effects, time, treatment), unbiased;
    ``tau^2`` from the residual sum of squares ``RSS`` of the fit without clusters, whose
    expectation is ``sigma_e^2 (n - p) + tau^2 tr(K' M K)`` (``K`` the cluster indicators, ``M``
    the residual projection), truncated at 0. Then GLS with those components, and a t-test with
    the within-cluster residual degrees of freedom (``(I - 1)(T - 1) - 1`` with period effects).
    Every step works on p x p cross-products, so the cost per trial grows with the number of
    cluster-periods, not its square.
    """

    def __init__(self, design: np.ndarray, time: str = "categorical"):
        clusters, periods = design.shape
        gls_variance(design, 1.0, 1.0, time)  # one-line error if the design cannot estimate theta
        self.periods = periods
        z = fixed_effects(design, time)  # (I, T, p)
        p = z.shape[2]
        n = clusters * periods
        self.z = z.reshape(n, p)
        self.a = self.z.T @ self.z
        self.a_inv = np.linalg.inv(self.a)
        self.g = z.sum(axis=1)  # (I, p): each cluster's column sums of Z, i.e. K'Z
        self.b = self.g.T @ self.g
        self.df_ols = n - p
        self.trace_between = float(n - np.trace(self.g @ self.a_inv @ self.g.T))  # tr(K'MK), K'K = T I
        # Within-cluster fit: time and treatment columns centred within each cluster.
        centred = z[:, :, 1:] - z[:, :, 1:].mean(axis=1, keepdims=True)
        self.zc = centred.reshape(n, p - 1)
        cross = self.zc.T @ self.zc
        self.c_pinv = np.linalg.pinv(cross)
        self.df = int(n - clusters - np.linalg.matrix_rank(cross))
        if self.df < 1:
            raise DataError("the design leaves no residual degrees of freedom; add clusters or periods")

    def test(self, proportions: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(estimate, se, reject)`` for proportions ``(sims, clusters, periods)``."""
        y = proportions.reshape(proportions.shape[0], -1)
        cluster_sums = proportions.sum(axis=2)  # (sims, I): y'K
        total_ss = np.einsum("sn,sn->s", y, y)
        a = y @ self.z
        c = y @ self.zc
        rss_ols = total_ss - np.einsum("sp,pq,sq->s", a, self.a_inv, a)
        rss_within = (
            total_ss
            - np.einsum("si,si->s", cluster_sums, cluster_sums) / self.periods
            - np.einsum("sp,pq,sq->s", c, self.c_pinv, c)
        )
        sigma2 = np.maximum(rss_within, 0.0) / self.df
        tau2 = np.maximum((rss_ols - sigma2 * self.df_ols) / self.trace_between, 0.0)
        # No within-cluster variation at all (e.g. every count 0): the model's test is undefined;
        # such a trial counts as not significant rather than as a division by zero.
        total = sigma2 + self.periods * tau2
        degenerate = sigma2 <= np.maximum(1e-10 * total, 1e-15)  # zero up to rounding
        shrink = np.divide(tau2, total, out=np.zeros_like(total), where=~degenerate)
        matrix = self.a[None] - shrink[:, None, None] * self.b[None]
        rhs = a - shrink[:, None] * (cluster_sums @ self.g)
        unit = np.zeros(self.a.shape[0])
        unit[-1] = 1.0
        solved = np.linalg.solve(matrix, np.stack([rhs, np.broadcast_to(unit, rhs.shape)], axis=2))
        estimate = solved[:, -1, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.where(degenerate, np.nan, np.sqrt(sigma2 * solved[:, -1, 1]))
            statistic = estimate / se
        critical = stats.t.ppf(1.0 - alpha / 2.0, self.df)
        return estimate, se, np.abs(statistic) > critical  # nan (no variation) compares False


def _run(
    control_logits: np.ndarray,
    shifts: np.ndarray,
    design: np.ndarray,
    cluster_size: int,
    time: str,
    alpha: float,
    direction: int,
    seed: int,
) -> tuple[int, int]:
    """``(successes in direction, two-sided rejections)`` over all trials, in seeded chunks."""
    analysis = SteppedWedgeAnalysis(design, time)
    sims = control_logits.shape[0]
    success = rejected = 0
    # Counts per chunk and the trials' clusters come from separate, non-overlapping streams.
    streams = np.random.SeedSequence(seed, spawn_key=(STREAM, 1)).spawn(math.ceil(sims / SIM_CHUNK))
    for chunk, start in enumerate(range(0, sims, SIM_CHUNK)):
        stop = min(sims, start + SIM_CHUNK)
        rng = np.random.default_rng(streams[chunk])
        counts = simulate_sw_counts(rng, control_logits[start:stop], shifts[start:stop], design, cluster_size)
        estimate, _, reject = analysis.test(counts / cluster_size, alpha)
        rejected += int(reject.sum())
        success += int((reject & (np.sign(estimate) == direction)).sum()) if direction else int(reject.sum())
    return success, rejected


def _simulation_inputs(cluster_size, alpha, sims, time, ci_level):
    cluster_size = check.integer("cluster_size", cluster_size, 1)
    return (
        cluster_size,
        check.alpha(alpha),
        check.integer("sims", sims, 1),
        check.choice("time", time, TIME_MODELS),
        check.probability("ci_level", ci_level),
    )


def stepped_wedge_simulate(
    *,
    p0: float,
    p1: float,
    cluster_size: int,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    tau: float | None = None,
    icc: float | None = None,
    alpha: float = 0.05,
    sims: int = 2000,
    seed: int | None = None,
    time: str = "categorical",
    ci_level: float = 0.95,
    period_effects: ArrayLike | None = None,
) -> PowerResult:
    """Simulated power of a cross-sectional stepped-wedge trial, analysed by the HH model.

    Data-generating model — the one the analytic power assumes, on the proportion scale:
    cluster ``i`` has probability ``p0 + a_i`` under control and ``p1 + a_i`` under
    intervention, ``a_i ~ N(0, tau^2)``, clipped into (0, 1) (the share of clipped cluster
    probabilities is reported as ``clipped_share``), plus ``period_effects[t]`` in period ``t``
    (a secular trend; default none); each cluster-period count is binomial with
    ``cluster_size`` people. (Binomial variance is at each cell's own probability, not at
    ``pbar`` as the analytic form takes it.)

    Analysis — ``SteppedWedgeAnalysis``: linear mixed model on the cluster-period
    proportions (random cluster intercepts, period fixed effects or a linear trend), variance
    components estimated per trial by moments, GLS estimate of ``p1 - p0``, t-test with the
    within-cluster residual df. Vectorised over trials.

    Returns
    -------
    PowerResult
        ``power`` (significant in the direction of ``p1 - p0``; the two-sided rejection rate when
        ``p1 == p0``), ``power_mc_low``, ``power_mc_high`` (Wilson), ``rejection_rate_two_sided``,
        ``sims``, ``seed``, ``df``, ``clipped_share`` and the inputs.
    """
    p0 = check.probability("p0", p0)
    p1 = check.probability("p1", p1)
    x, counts = _resolve_design(sequences, design, periods)
    cluster_size, alpha, sims, time, ci_level = _simulation_inputs(cluster_size, alpha, sims, time, ci_level)
    tau, icc = _variation(p0, p1, tau, icc)
    seed = resolve_seed(seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM, 0)))
    offsets = tau * rng.standard_normal((sims, x.shape[0]))
    trend = _period_effects(period_effects, x.shape[1])
    if trend is not None:
        offsets = offsets[:, :, None] + trend  # (sims, clusters, periods)
    eps = 1e-12
    control, treated = p0 + offsets, p1 + offsets
    clipped = float(((control <= 0) | (control >= 1) | (treated <= 0) | (treated >= 1)).mean())
    control_logits = special.logit(np.clip(control, eps, 1 - eps))
    shifts = special.logit(np.clip(treated, eps, 1 - eps)) - control_logits
    direction = int(np.sign(p1 - p0))
    success, rejected = _run(control_logits, shifts, x, cluster_size, time, alpha, direction, seed)
    low, high = wilson_interval(success, sims, ci_level)
    return PowerResult.from_values({
        "power": success / sims,
        "power_mc_low": float(low),
        "power_mc_high": float(high),
        "rejection_rate_two_sided": rejected / sims,
        "sims": sims,
        "seed": seed,
        "df": SteppedWedgeAnalysis(x, time).df,
        "clipped_share": clipped,
        "sequences": counts,
        "periods": int(x.shape[1]),
        "clusters": int(x.shape[0]),
        "cluster_size": cluster_size,
        "p0": p0,
        "p1": p1,
        "tau": tau,
        "icc": icc,
        "alpha": alpha,
        "time": time,
        "ci_level": ci_level,
        "ci_method": "wilson",
        "period_effects": None if trend is None else trend.tolist(),
        "simulation_model": "proportion scale: p0 + a_i / p1 + a_i, a_i ~ N(0, tau^2)"
        + ("" if trend is None else ", plus period_effects[t]")
        + ", binomial counts",
        "analysis": SW_ANALYSIS,
    })


def _period_effects(values: ArrayLike | None, periods: int) -> np.ndarray | None:
    if values is None:
        return None
    try:
        trend = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        trend = np.array([np.nan])
    if trend.size != periods or not np.isfinite(trend).all():
        raise DataError(
            f"period_effects needs {periods} finite numbers, one change of the proportion per period; "
            f"got {values!r:.60}"
        )
    return trend


def stepped_wedge_assurance_from_draws(
    p0_logit_draws: ArrayLike,
    sigma_b_draws: ArrayLike,
    log_or_draws: ArrayLike,
    *,
    cluster_size: int,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    alpha: float = 0.05,
    sims: int | None = None,
    seed: int | None = None,
    time: str = "categorical",
    direction: int = 1,
    ci_level: float = 0.95,
) -> AssuranceResult:
    """Assurance of a stepped-wedge trial from posterior draws (one profile for every cluster).

    Each simulated trial takes one draw (cycled in a seeded random order): cluster ``i`` has
    control logit ``p0_logit + sigma_b u_i`` (``u_i ~ N(0, 1)``) and the intervention adds
    ``log_or`` (a cluster-specific odds ratio, the same in every cluster); counts and analysis as
    :func:`stepped_wedge_simulate`. ``direction`` (+1: the intervention should raise the
    proportion, -1: lower it) says which significant results count as success.

    Returns
    -------
    AssuranceResult
        ``assurance`` with its Wilson interval, ``rejection_rate_two_sided``,
        ``p_effect_in_direction``, ``sims``, ``seed``, design and posterior summaries.
    """
    base, sigma, log_or = _check_draws(p0_logit_draws, sigma_b_draws, log_or_draws)
    if direction not in (1, -1):
        raise DataError(f"direction = {direction!r} must be 1 (raise the proportion) or -1 (lower it)")
    x, counts = _resolve_design(sequences, design, periods)
    sims = base.size if sims is None else sims
    cluster_size, alpha, sims, time, ci_level = _simulation_inputs(cluster_size, alpha, sims, time, ci_level)
    seed = resolve_seed(seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM, 0)))
    index = rng.permutation(base.size)[np.arange(sims) % base.size]
    control_logits = base[index, None] + sigma[index, None] * rng.standard_normal((sims, x.shape[0]))
    shifts = np.broadcast_to(log_or[index, None], control_logits.shape)
    success, rejected = _run(control_logits, shifts, x, cluster_size, time, alpha, direction, seed)
    low, high = wilson_interval(success, sims, ci_level)
    return AssuranceResult.from_values({
        "assurance": success / sims,
        "assurance_mc_low": float(low),
        "assurance_mc_high": float(high),
        "rejection_rate_two_sided": rejected / sims,
        "p_effect_in_direction": float((np.sign(log_or) == direction).mean()),
        "direction": direction,
        "sims": sims,
        "seed": seed,
        "draws_total": int(base.size),
        "sequences": counts,
        "periods": int(x.shape[1]),
        "clusters": int(x.shape[0]),
        "cluster_size": cluster_size,
        "baseline_logit_mean": float(base.mean()),
        "sigma_b_mean": float(sigma.mean()),
        "log_or_mean": float(log_or.mean()),
        "alpha": alpha,
        "time": time,
        "ci_level": ci_level,
        "ci_method": "wilson",
    })


def _sequence_of_clusters(design: np.ndarray) -> np.ndarray:
    """Each cluster's sequence: clusters with the same row of the design share one."""
    _, sequence = np.unique(design, axis=0, return_inverse=True)
    return np.asarray(sequence, dtype=np.int64).ravel()


def stepped_wedge_population_assurance(
    population: Any,
    *,
    cluster_size: int,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    alpha: float = 0.05,
    sims: int | None = None,
    seed: int | None = None,
    time: str = "categorical",
    direction: str | None = None,
    ci_level: float = 0.95,
) -> AssuranceResult:
    """Assurance of a stepped-wedge trial over a population of services (issue 11 item 5).

    Each simulated trial takes one posterior draw (cycled in a seeded random order, as
    :func:`mbct_bayes.power.assurance`) and recruits its clusters from ``population``
    (``sequence_services`` in ``mbct_bayes.power._population``: the fitted sites resampled, or the
    candidates randomised to the sequences, within region strata when the population has them).
    Cluster ``i`` has control logit ``before[service] + region effect + sigma_site z_i`` and the
    intervention adds the change from moving the lever by delta at that service, from its step on;
    cluster-period counts are binomial and analysed by ``SteppedWedgeAnalysis``. Power at the
    posterior mean uses the same services and random numbers under the posterior means.

    Parameters
    ----------
    population
        A :class:`mbct_bayes.power.Population` (fitted sites or candidates).
    cluster_size, sequences, periods, design, alpha, time, ci_level
        As :func:`stepped_wedge_simulate`.
    sims
        Simulated trials (default: one per posterior draw).
    seed
        Seed; None draws one (reported).
    direction
        ``"increase"``, ``"decrease"`` or None (the sign of the population-averaged effect).

    Returns
    -------
    AssuranceResult
        The keys of :func:`mbct_bayes.power.assurance` where they mean the same (``assurance`` and
        ``power_at_posterior_mean`` with Wilson intervals, ``population``, ``services``,
        ``p0_marginal``/``p1_marginal``/``icc``, ``clipped_share``, ``direction``,
        ``p_effect_in_direction``, ``assurance_bound``, ``assumptions``, ``sims``, ``seed``) and the
        stepped-wedge design (``sequences``, ``periods``, ``clusters``, ``cluster_size``, ``time``,
        ``df``, ``method``).
    """
    x, counts = _resolve_design(sequences, design, periods)
    n_draws = population.n_draws
    sims = n_draws if sims is None else sims
    cluster_size, alpha, sims, time, ci_level = _simulation_inputs(cluster_size, alpha, sims, time, ci_level)
    analysis = SteppedWedgeAnalysis(x, time)  # one-line error for a design that cannot estimate the effect
    seed = resolve_seed(seed)
    per_draw = implied(population)
    effect = per_draw["p1_marginal"] - per_draw["p0_marginal"]
    sign = _resolve_direction(direction, float(effect.mean()))
    services = sequence_services(population, _sequence_of_clusters(x), sims, seed)
    # each cluster's own site effect, one stream for the run (the counts have streams of their own)
    z = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM, 2))).standard_normal(services.shape)

    def trials(pop, index):
        arrays = cluster_arrays(pop, index, services, seed)
        control = arrays.base + arrays.sigma_site[:, None] * z
        return _run(control, arrays.shift, x, cluster_size, time, alpha, sign, seed), arrays.clipped

    (success, rejected), clipped = trials(population, _draw_order(seed, n_draws, sims))
    (at_mean, _), _ = trials(population_at_means(population), np.zeros(sims, dtype=np.int64))
    low, high = wilson_interval(success, sims, ci_level)
    low_m, high_m = wilson_interval(at_mean, sims, ci_level)
    log_or = per_draw["log_or_mean"]
    out = {
        "assurance": success / sims,
        "assurance_mc_low": float(low),
        "assurance_mc_high": float(high),
        "power_at_posterior_mean": at_mean / sims,
        "power_at_posterior_mean_mc_low": float(low_m),
        "power_at_posterior_mean_mc_high": float(high_m),
        "rejection_rate_two_sided": rejected / sims,
        "population": population.kind,
        "services": population.n_services,
        "lever": population.lever,
        "delta": population.delta,
        "stratify": "region" if population.strata is not None else None,
        "p0_marginal": float(per_draw["p0_marginal"].mean()),
        "p1_marginal": float(per_draw["p1_marginal"].mean()),
        "icc": float(per_draw["icc"].mean()),
        "sigma_site": float(population.sigma_site.mean()),
        "sigma_region": float(population.sigma_region.mean()),
        # every cluster is an intervention cluster from its step on
        "clipped_share": float(clipped.mean()),
        "log_or_mean": float(log_or.mean()),
        "log_or_sd": float(log_or.std(ddof=1)) if n_draws > 1 else 0.0,
        **_direction_summary(effect, sign, alpha),
        "draws_total": n_draws,
        "draws_used": int(min(n_draws, sims)),
        "sims": sims,
        "seed": seed,
        "sequences": counts,
        "periods": int(x.shape[1]),
        "clusters": int(x.shape[0]),
        "cluster_size": cluster_size,
        "alpha": alpha,
        "time": time,
        "df": analysis.df,
        "analysis": SW_ANALYSIS,
        "method": REFERENCE,
        "ci_level": ci_level,
        "ci_method": "wilson",
    }
    out["assumptions"] = assumptions(out, describe(population, "the sequences")) + SW_ASSUMPTIONS
    return AssuranceResult.from_values(out)


SW_ASSUMPTIONS = [
    "Cross-sectional stepped wedge: different people in each cluster-period; each cluster's probability is the "
    "same in every period but for the intervention (no secular trend in the simulated truth); the analysis "
    "still estimates period effects.",
]


def stepped_wedge_assurance(
    fit: Fit,
    *,
    lever: str = "F",
    delta: float = 1.0,
    sites: Any = None,
    stratify: str | None = None,
    profile: dict[str, float] | None = None,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    cluster_size: int,
    alpha: float = 0.05,
    sims: int | None = None,
    seed: int | None = None,
    time: str = "categorical",
    direction: str | None = None,
    ci_level: float = 0.95,
    responses: Any = None,
    scores_are_true: bool = False,
) -> AssuranceResult:
    """Assurance of a stepped-wedge trial whose intervention moves ``lever`` by ``delta``, from a fit.

    The services are the fitted sites (default, resampled per trial), the candidates ``sites``
    (randomised to the sequences; ``stratify="region"`` within region strata) or, with
    ``profile``, all alike (the one-profile path of :func:`stepped_wedge_assurance_from_draws`).
    Arguments (``responses``/``scores_are_true`` for a latent fit's candidates too) and keys as
    :func:`mbct_bayes.power.assurance` and :func:`stepped_wedge_population_assurance`.
    """
    design_args: dict[str, Any] = dict(sequences=sequences, periods=periods, design=design, cluster_size=cluster_size, alpha=alpha,
                       sims=sims, seed=seed, time=time, ci_level=ci_level)
    if profile is not None and (sites is not None or stratify is not None):
        raise DataError("give either a profile (all services alike) or candidate sites, not both")
    if profile is None:
        population = population_from_fit(
            fit, lever=lever, delta=delta, sites=sites, stratify=stratify, responses=responses,
            scores_are_true=scores_are_true,
        )
        out = stepped_wedge_population_assurance(population, direction=direction, **design_args)
        return out.updated(profile=None)
    draws = draws_from_fit(fit, lever=lever, delta=delta, profile=profile)
    base, sigma, log_or = draws["baseline_logit"], draws["sigma_site"], draws["log_odds_ratio"]
    sign = _resolve_direction(direction, float(log_or.mean()))
    out = stepped_wedge_assurance_from_draws(base, sigma, log_or, direction=sign, **design_args)
    # the posterior means as many times as there are draws: the same draw order and random numbers
    at_mean = stepped_wedge_assurance_from_draws(
        *(np.full(base.size, a.mean()) for a in (base, sigma, log_or)),
        direction=sign,
        **{**design_args, "sims": out["sims"], "seed": out["seed"]},
    )
    p0 = float(special.expit(base.mean()))
    p1 = float(special.expit(base.mean() + log_or.mean()))
    out = out.updated(
        power_at_posterior_mean=at_mean.assurance,
        power_at_posterior_mean_mc_low=at_mean["assurance_mc_low"],
        power_at_posterior_mean_mc_high=at_mean["assurance_mc_high"],
        population="profile",
        profile=dict(profile),
        lever=lever,
        delta=float(delta),
        p0_marginal=marginal_proportion(p0, float(sigma.mean())),
        p1_marginal=marginal_proportion(p1, float(sigma.mean())),
        icc=icc_from_sigma_b(p0, float(sigma.mean())),
        sigma_site=float(sigma.mean()),
        clipped_share=0.0,
        df=SteppedWedgeAnalysis(_resolve_design(sequences, design, periods)[0], out["time"]).df,
        analysis=SW_ANALYSIS,
        method=REFERENCE,
    )
    out = out.updated(**_direction_summary(log_or, sign, out["alpha"]))
    return out.updated(assumptions=assumptions(out) + SW_ASSUMPTIONS)


def stepped_wedge(
    *,
    p0: float,
    p1: float,
    cluster_size: ArrayLike,
    sequences: Sequence[int] | str | None = None,
    periods: int | None = None,
    design: ArrayLike | None = None,
    tau: float | None = None,
    icc: float | None = None,
    alpha: float = 0.05,
    time: str = "categorical",
    sims: int | None = None,
    seed: int | None = None,
    ci_level: float = 0.95,
) -> PowerResult:
    """Power of a stepped-wedge trial: analytic (:func:`stepped_wedge_analytic`), and simulated too
    when ``sims`` is given (:func:`stepped_wedge_simulate`: ``power_simulated``,
    ``power_simulated_mc_low``/``_high``, ``rejection_rate_two_sided``, ``sims``, ``seed``, ``df``,
    ``clipped_share``). Arguments as those two functions.
    """
    common: dict[str, Any] = dict(
        p0=p0,
        p1=p1,
        cluster_size=cluster_size,
        sequences=sequences,
        periods=periods,
        design=design,
        tau=tau,
        icc=icc,
        alpha=alpha,
        time=time,
    )
    result = stepped_wedge_analytic(**common)
    if sims is not None:
        if np.ndim(cluster_size) != 0:
            raise DataError("the simulation takes one cluster_size for every cluster-period; give a single number")
        simulated = stepped_wedge_simulate(**common, sims=sims, seed=seed, ci_level=ci_level)
        result = result.updated(
            power_simulated=simulated.power,
            power_simulated_mc_low=simulated["power_mc_low"],
            power_simulated_mc_high=simulated["power_mc_high"],
            **{
                k: simulated[k]
                for k in (
                    "rejection_rate_two_sided",
                    "sims",
                    "seed",
                    "df",
                    "clipped_share",
                    "ci_level",
                    "ci_method",
                    "simulation_model",
                    "analysis",
                )
            },
        )
    return result
