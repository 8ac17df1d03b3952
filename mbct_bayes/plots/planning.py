"""Figures for planning new sites: the lever chart and P(embedded) against one lever.

Both return a ``matplotlib.figure.Figure`` made without pyplot (save it with
``fig.savefig(path)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mbct_bayes._format import probability
from mbct_bayes.errors import DataError
from mbct_bayes.planning.scenarios import lever_curve, target

if TYPE_CHECKING:  # only named in annotations
    from mbct_bayes.model.fit import Fit

LEVER_COLUMNS = ("site", "lever", "delta_mean", "delta_q05", "delta_q95", "p_positive", "rank")


def lever_chart(
    table: pd.DataFrame,
    sites: Sequence[str] | None = None,
    *,
    ncols: int = 3,
    title: str | None = None,
    panel_size: tuple[float, float] = (3.6, 2.2),
) -> Figure:
    """One panel per site: ΔP(embedded) per lever with its 90% interval, best lever on top.

    Parameters
    ----------
    table
        The output of :func:`mbct_bayes.planning.levers`.
    sites
        Which sites to draw (default all, in table order).
    ncols
        Panels per row.
    title
        Figure title; default names the step and the kind of prediction.
    panel_size
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per site; each point is the posterior mean gain, the bar its 5-95% interval,
        and the label P(Δ > 0).
    """
    missing = [c for c in LEVER_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"lever_chart needs the output of planning.levers; missing {', '.join(missing)}"
        )
    all_sites = list(dict.fromkeys(table["site"].astype(str)))
    chosen = all_sites if sites is None else [str(s) for s in sites]
    unknown = [s for s in chosen if s not in all_sites]
    if unknown:
        raise DataError(f"lever_chart: site {unknown[0]!r} is not in the levers table")
    if not chosen:
        raise DataError("lever_chart: no sites to draw")
    ncols = max(1, min(int(ncols), len(chosen)))
    nrows = math.ceil(len(chosen) / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    for ax, site in zip(axes.ravel(), chosen, strict=False):
        rows = table[table["site"].astype(str) == site].sort_values("rank", ascending=False)
        y = np.arange(len(rows))
        mean = rows["delta_mean"].to_numpy(dtype=float)
        err = np.vstack([
            mean - rows["delta_q05"].to_numpy(dtype=float),
            rows["delta_q95"].to_numpy(dtype=float) - mean,
        ])
        ax.errorbar(mean, y, xerr=err, fmt="o", color="C0", ecolor="C0", capsize=3)
        ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_yticks(y, [str(v) for v in rows["lever"]])
        for yi, (m, pp) in enumerate(zip(mean, rows["p_positive"], strict=True)):
            ax.annotate(f"P(Δ>0) {probability(pp)}", (m, yi), xytext=(0, 6), textcoords="offset points",
                        ha="center", fontsize=7, color="0.3")
        ax.set_ylim(-0.6, len(rows) - 0.3)
        ax.set_title(site, fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("ΔP(embedded)")
    if title is None:
        step = ""
        if "step" in table.columns:
            pairs = table.drop_duplicates("lever")[["lever", "step"]].to_numpy()
            step = ", ".join(f"{lv} +{s:.2g}" for lv, s in pairs)
        kind = f" ({table['kind'].iloc[0].replace('_', '-')})" if "kind" in table.columns else ""
        title = f"Gain in P(embedded) per lever{kind}: {step}; 90% intervals"
    fig.suptitle(title, fontsize=10)
    return fig


def lever_response(
    fit: Fit,
    site: Any,
    lever: str = "F",
    *,
    p: float | None = 0.8,
    prob: float = 0.9,
    kind: str = "new_site",
    seed: int | None = 0,
    n_grid: int = 81,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Figure:
    """P(embedded) of one site against one lever, with its 90% band, current value and target.

    Parameters
    ----------
    fit
        A fitted model.
    site
        One site (a dict or a one-row table, as for :func:`mbct_bayes.planning.target`).
    lever
        The predictor on the x axis, over its whole scale.
    p, prob
        The target (see :func:`mbct_bayes.planning.target`); ``p=None`` draws no target.
    kind, seed
        Site effect and its seed, as in :mod:`mbct_bayes.planning`.
    n_grid
        Number of lever values drawn.
    title, figsize
        Figure title (default names site, kind and target) and size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``[response]``: posterior mean line, 5-95% band, the site's current value (dotted),
        ``p`` (dashed horizontal), the posterior probability of reaching ``p`` (grey
        dash-dot) and the target value (solid vertical) when reachable.
    """
    curve = lever_curve(fit, site, lever, n_grid=n_grid, p=p, kind=kind, seed=seed)
    if curve["site"].nunique() != 1:
        raise DataError("lever_response draws one site; pass a single row")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    x = curve["value"].to_numpy(float)
    ax.fill_between(x, curve["p_q05"], curve["p_q95"], color="C0", alpha=0.25, label="90% interval")
    ax.plot(x, curve["p_mean"], color="C0", label="posterior mean")
    site_id = str(curve["site"].iloc[0])
    current = float(curve["current"].iloc[0])
    found = None
    if p is not None:
        found = target(fit, site, lever, p, prob, kind, seed=seed).iloc[0]
        ax.axhline(p, color="C3", ls="--", lw=1, label=f"P(embedded) = {p:g}")
        # the posterior probability of reaching p, which the target thresholds at prob
        ax.plot(x, curve["prob_reach"], color="0.45", lw=1, ls="-.",
                label=f"P(P(embedded) ≥ {p:g}); target needs ≥ {prob:g}")
        if found["reachable"]:
            ax.axvline(found["target_value"], color="C3", lw=1.5,
                       label=f"target {lever} = {found['target_value']:.2f} (prob ≥ {prob:g})")
    ax.axvline(current, color="0.2", ls=":", lw=1.5, label=f"current {lever} = {current:g}")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(0, 1)
    ax.set_xlabel(lever)
    ax.set_ylabel("P(embedded)")
    ax.legend(fontsize=8, loc="upper left")
    if title is None:
        title = f"{site_id}: P(embedded) against {lever} ({kind.replace('_', '-')})"
        if found is not None and not found["reachable"]:
            title += f"\ntarget not reachable on the scale (best prob {probability(found['best_prob'])})"
    ax.set_title(title, fontsize=10)
    return fig
