"""Figures for forecast evaluation: a reliability diagram with counts and a per-site chart.

Both return a ``matplotlib.figure.Figure`` made without pyplot (save it with
``fig.savefig(path)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from mbct_bayes.errors import DataError
from mbct_bayes.forecast import rules as scores


def reliability_diagram(
    p: ArrayLike,
    y: ArrayLike,
    *,
    bins: int = 10,
    sites: ArrayLike | None = None,
    n_boot: int = 500,
    seed: int | None = 0,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 6.0),
) -> Figure:
    """Reliability diagram: observed frequency against mean forecast per bin, with bin counts.

    The top panel shows one point per non-empty bin at (mean forecast, observed frequency) and
    the diagonal of perfect calibration; with ``sites`` it adds a 90% band from resampling whole
    sites. The bottom panel shows the number of forecasts per bin as bars (one bar per non-empty
    bin), each labelled with its count.

    Parameters
    ----------
    p
        Forecast probabilities of ``y = 1``.
    y
        Observed outcomes, 0 or 1.
    bins
        Equal-width bins on [0, 1] (as in :func:`mbct_bayes.forecast.rules.reliability_bins`).
    sites
        Site id per observation; when given, draws the site-bootstrap band.
    n_boot, seed
        Site resamples for the band and their seed.
    title
        Figure title; default states ``n`` and the ECE.
    figsize
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``[calibration, counts]``.
    """
    p_arr = scores._prob(p)
    y_arr = scores._binary(y, p_arr.size)
    rb = scores.reliability_bins(p_arr, y_arr, bins)
    has = rb.count > 0
    B = rb.count.size

    fig = Figure(figsize=figsize, layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")

    if sites is not None:
        lo, hi = _bootstrap_band(p_arr, y_arr, np.asarray(sites), rb.index, B, n_boot, seed)
        ok = has & np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(
            rb.mean_forecast[ok], lo[ok], hi[ok], color="C0", alpha=0.2,
            label="90% site-bootstrap band",
        )
    ax.plot(
        rb.mean_forecast[has], rb.observed[has], marker="o", color="C0", label="forecasts (binned)"
    )
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), ylabel="observed frequency")
    ax.legend(loc="upper left", fontsize="small")
    if title is None:
        title = f"Reliability (n = {p_arr.size}, ECE = {scores.ece(p_arr, y_arr, bins):.3f})"
    ax.set_title(title)

    width = 1.0 / B
    centres = (rb.edges[:-1] + width / 2)[has]
    bars = ax_n.bar(centres, rb.count[has], width=width * 0.9, color="0.6", edgecolor="0.3")
    ax_n.bar_label(bars, labels=[str(c) for c in rb.count[has]], fontsize="small")
    ax_n.set(xlim=(0, 1), xlabel="forecast probability", ylabel="count")
    ax_n.set_ylim(0, rb.count.max() * 1.25)
    return fig


def _bootstrap_band(
    p: np.ndarray,
    y: np.ndarray,
    sites: np.ndarray,
    index: np.ndarray,
    B: int,
    n_boot: int,
    seed: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """5% and 95% quantiles of each bin's observed frequency over whole-site resamples."""
    if sites.shape != p.shape:
        raise DataError(
            f"sites: expected {p.size} site ids (one per forecast), got shape {sites.shape}"
        )
    codes, counts = scores.site_resample_counts(sites, n_boot, seed)
    onehot = np.zeros((p.size, B))
    onehot[np.arange(p.size), index] = 1.0
    weights = counts[:, codes].astype(float)  # (n_boot, n): times each observation is drawn
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = (weights @ (onehot * y[:, None])) / (weights @ onehot)
    lo = np.full(B, np.nan)
    hi = np.full(B, np.nan)
    for k in range(B):  # loop over bins (≤ a few dozen), not over resamples
        finite = freq[np.isfinite(freq[:, k]), k]
        if finite.size:
            lo[k], hi[k] = np.quantile(finite, [0.05, 0.95])
    return lo, hi


def site_forecast_chart(
    sites: Sequence[object] | ArrayLike,
    p: ArrayLike,
    *,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    observed: ArrayLike | None = None,
    title: str | None = "Forecast P(embedded) by site",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Per-site forecasts sorted from lowest to highest, with intervals and observed outcomes.

    Parameters
    ----------
    sites
        One label per row (one row per site).
    p
        Forecast probability per site.
    lower, upper
        Optional interval bounds per site (e.g. ``p_q05`` and ``p_q95``); give both or neither.
    observed
        Optional observed outcome per site (0/1, or the observed fraction embedded), marked
        with a cross; NaN where not yet observed.
    title
        Axes title.
    figsize
        Figure size in inches; default grows with the number of sites.

    Returns
    -------
    matplotlib.figure.Figure
    """
    p_arr = scores._prob(p)
    labels = np.asarray(sites, dtype=object).astype(str)
    n = p_arr.size
    if labels.shape != (n,):
        raise DataError(
            f"sites: expected {n} site labels (one per forecast), got shape {labels.shape}"
        )
    if (lower is None) != (upper is None):
        raise DataError("lower, upper: give both interval bounds or neither")
    order = np.argsort(p_arr, kind="stable")
    pos = np.arange(n)

    fig = Figure(figsize=figsize or (6.0, max(2.5, 0.25 * n + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if lower is not None and upper is not None:
        lo = scores._prob(lower, "lower")
        hi = scores._prob(upper, "upper")
        if lo.size != n or hi.size != n:
            raise DataError(f"lower, upper: expected {n} bounds each, got {lo.size} and {hi.size}")
        bad = (lo > p_arr + 1e-12) | (hi < p_arr - 1e-12)
        if bad.any():
            raise DataError(
                f"lower, upper: rows {scores._first(bad)} do not contain the forecast; "
                "check that lower <= p <= upper"
            )
        ax.hlines(pos, lo[order], hi[order], color="C0", alpha=0.6, linewidth=2, label="interval")
    ax.plot(p_arr[order], pos, "o", color="C0", label="forecast")
    if observed is not None:
        obs = np.asarray(observed, dtype=float)
        if obs.shape != (n,):
            raise DataError(
                f"observed: expected {n} outcomes (one per site), got shape {obs.shape}"
            )
        seen = np.isfinite(obs[order])
        bad = seen & ((obs[order] < 0) | (obs[order] > 1))
        if bad.any():
            raise DataError("observed: outcomes must be 0/1 or fractions in [0, 1]")
        ax.plot(obs[order][seen], pos[seen], "x", color="C3", markersize=8, label="observed")
    ax.set_yticks(pos, labels[order])
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.7, n - 0.3), xlabel="P(embedded)")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return fig
