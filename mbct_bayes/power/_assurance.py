"""Bayesian assurance: the chance the trial succeeds, averaged over what the fit still doubts.

Each simulated trial takes one posterior draw of the control services' baseline logit, the
between-service SD (logit scale) and the intervention's log odds ratio, and is simulated and
analysed exactly as :func:`mbct_bayes.power.simulate` does (same kernel, same seeding). The
share of trials significant in the direction of benefit is the assurance (O'Hagan, Stevens &
Campbell 2005). A trial can only succeed often when the effect is positive, so assurance is
bounded by ``P(effect > 0) + (alpha/2) * P(effect <= 0)`` — by ``P(effect > 0)`` up to the
alpha/2 chance of a significant result in the right direction when there is no effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from ..errors import DataError
from . import _checks as check
from ._icc import icc_from_sigma_b, marginal_proportion
from ._simulate import (
    DEFAULT_CHUNK,
    _common_checks,
    design_grid,
    resolve_seed,
    simulate_counts,
    wilson_interval,
)

DRAW_KEYS = ("baseline_logit", "sigma_site", "log_odds_ratio")


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
) -> pd.DataFrame:
    """Assurance and power at the posterior means for every design in a grid.

    All designs and both quantities share one set of random numbers, so differences between
    rows are not Monte Carlo noise. Arguments as :func:`assurance_from_draws`.

    Returns
    -------
    pandas.DataFrame
        ``clusters_per_arm``, ``cluster_size``, ``assurance``, ``assurance_mc_low``,
        ``assurance_mc_high``, ``power_at_posterior_mean`` (with ``_mc_low``/``_mc_high``),
        ``p_effect_positive``, ``sims``; inputs and posterior summaries in ``.attrs["inputs"]``.
    """
    base, sigma, log_or = _check_draws(p0_logit_draws, sigma_b_draws, log_or_draws)
    n_draws = base.size
    cv, alpha, _, analysis, ci_level = _common_checks(cv, alpha, 1, analysis, ci_level)
    sims_per_draw = check.integer("sims_per_draw", sims_per_draw, 1)
    sims = n_draws * sims_per_draw if sims is None else check.integer("sims", sims, 1)
    clusters, sizes = design_grid(clusters, cluster_sizes, cv=cv)
    seed = resolve_seed(seed)
    # One trial per draw, cycling through the draws (in a seeded random order, so that using
    # fewer trials than draws does not take them all from the first chain).
    order = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(0x7FFFFFFF,))
    ).permutation(n_draws)
    index = order[np.arange(sims) % n_draws]
    common = dict(
        sims=sims,
        clusters=clusters,
        sizes=sizes,
        cv=cv,
        alpha=alpha,
        analysis=analysis,
        direction=1,
        seed=seed,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress,
    )
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
    p_positive = float((log_or > 0).mean())
    rows = []
    for i, m in enumerate(sizes):
        low, high = wilson_interval(counts[0, i], sims, ci_level)
        low_m, high_m = wilson_interval(at_mean[0, i], sims, ci_level)
        for j, c in enumerate(clusters):
            rows.append(
                {
                    "clusters_per_arm": c,
                    "cluster_size": m,
                    "assurance": counts[0, i, j] / sims,
                    "assurance_mc_low": low[j],
                    "assurance_mc_high": high[j],
                    "power_at_posterior_mean": at_mean[0, i, j] / sims,
                    "power_at_posterior_mean_mc_low": low_m[j],
                    "power_at_posterior_mean_mc_high": high_m[j],
                    "p_effect_positive": p_positive,
                    "sims": sims,
                }
            )
    p0 = float(special.expit(means["baseline_logit"]))
    p1 = float(special.expit(means["baseline_logit"] + means["log_or"]))
    table = pd.DataFrame(rows)
    table.attrs["inputs"] = {
        "p0": p0,
        "p1": p1,
        "odds_ratio": float(np.exp(means["log_or"])),
        "p0_marginal": marginal_proportion(p0, means["sigma_b"]),
        "p1_marginal": marginal_proportion(p1, means["sigma_b"]),
        "sigma_b": float(means["sigma_b"]),
        "icc": icc_from_sigma_b(p0, means["sigma_b"]),
        "icc_logit": icc_from_sigma_b(p0, means["sigma_b"], scale="logit"),
        "log_or_mean": float(means["log_or"]),
        "log_or_sd": float(log_or.std(ddof=1)) if n_draws > 1 else 0.0,
        "p_effect_positive": p_positive,
        "assurance_bound": p_positive + alpha / 2.0 * (1.0 - p_positive),
        "draws_total": n_draws,
        "draws_used": int(min(n_draws, sims)),
        "sims": sims,
        "sims_per_draw": sims_per_draw,
        "cv": cv,
        "alpha": alpha,
        "seed": seed,
        "analysis": analysis,
        "dist": "t",
        "ci_level": ci_level,
        "ci_method": "wilson",
        "chunk_size": chunk_size,
    }
    return table


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
) -> dict[str, Any]:
    """Assurance of a cluster trial from posterior draws (arrays, one value per draw).

    Parameters
    ----------
    p0_logit_draws
        (S,) logit of P(outcome) for a typical control cluster.
    sigma_b_draws
        (S,) between-cluster SD on the logit scale.
    log_or_draws
        (S,) effect of the intervention on the logit (log odds ratio); positive = benefit.
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

    Returns
    -------
    dict
        ``assurance``, ``assurance_mc_low``, ``assurance_mc_high``, ``p_effect_positive``
        (share of draws with log OR > 0), ``assurance_bound`` (``P(effect > 0) + alpha/2 *
        P(effect <= 0)``), ``power_at_posterior_mean`` (simulated power at the posterior means
        of the three inputs, with the same random numbers) and its interval, ``draws_used``,
        ``draws_total``, ``sims``, ``p0``/``p1``/``odds_ratio``/``sigma_b``/``icc`` at the
        posterior means, and the inputs.
    """
    table = assurance_curve(
        p0_logit_draws,
        sigma_b_draws,
        log_or_draws,
        clusters=[clusters_per_arm],
        cluster_sizes=[cluster_size],
        cv=cv,
        alpha=alpha,
        sims=sims,
        sims_per_draw=sims_per_draw,
        seed=seed,
        analysis=analysis,
        ci_level=ci_level,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress,
    )
    row = table.iloc[0]
    out = dict(table.attrs["inputs"])
    for key in (
        "assurance",
        "assurance_mc_low",
        "assurance_mc_high",
        "power_at_posterior_mean",
        "power_at_posterior_mean_mc_low",
        "power_at_posterior_mean_mc_high",
    ):
        out[key] = float(row[key])
    out.update(
        clusters_per_arm=int(row["clusters_per_arm"]),
        clusters_per_arm_design=int(row["clusters_per_arm"]),
        cluster_size=int(row["cluster_size"]),
    )
    out["power"] = out["assurance"]
    return out


def draws_from_fit(
    fit: Any, *, lever: str = "F", delta: float = 1.0, profile: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """The three posterior arrays a trial depends on (:func:`mbct_bayes.predict.trial_inputs`)."""
    from ..predict import trial_inputs  # lazy: the model stack is heavy and power does not need it

    inputs = trial_inputs(fit, lever=lever, delta=delta, profile=dict(profile) if profile else None)
    missing = [k for k in DRAW_KEYS if k not in inputs]
    if missing:
        raise DataError(
            f"trial inputs from the fit lack {', '.join(missing)}; update mbct_bayes.predict"
        )
    return {k: np.asarray(inputs[k], dtype=float) for k in DRAW_KEYS}


def assurance(
    fit: Any,
    *,
    lever: str = "F",
    delta: float = 1.0,
    profile: Mapping[str, float] | None = None,
    clusters_per_arm: int,
    cluster_size: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """Assurance of a cluster trial whose intervention raises ``lever`` by ``delta``, from a fit.

    Parameters
    ----------
    fit
        A fitted model (:func:`mbct_bayes.fit.load_fit`).
    lever
        The predictor the implementation support moves (``"F"``: facilitation).
    delta
        How far it is expected to move it, in scale points; the effect per draw is the change
        in the logit of P(embedded) (a log odds ratio).
    profile
        Predictor values of a typical control service; default the scale midpoints.
    clusters_per_arm, cluster_size
        The design.
    **kwargs
        Passed to :func:`assurance_from_draws` (``sims``, ``seed``, ``cv``, ``alpha``, ...).

    Returns
    -------
    dict
        As :func:`assurance_from_draws`, plus ``lever``, ``delta`` and ``profile``.
    """
    draws = draws_from_fit(fit, lever=lever, delta=delta, profile=profile)
    out = assurance_from_draws(
        draws["baseline_logit"],
        draws["sigma_site"],
        draws["log_odds_ratio"],
        clusters_per_arm=clusters_per_arm,
        cluster_size=cluster_size,
        **kwargs,
    )
    out.update(lever=lever, delta=delta, profile=dict(profile) if profile else None)
    return out
