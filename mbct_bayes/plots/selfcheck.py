"""Figure for simulation-based calibration: ECDF differences of the ranks with simultaneous bands."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure


def ecdf_difference(
    result: Any,
    *,
    prob: float | None = None,
    n_simulations: int = 2000,
    seed: int = 214,
    columns: int = 3,
) -> Figure:
    """ECDF of each parameter's PIT values minus the uniform CDF, with simultaneous bands.

    One panel per parameter of a :class:`mbct_bayes.selfcheck.Calibration`. The line is
    ``ECDF(u) - u`` of the randomised PIT values ``(rank + U) / (L + 1)``; the grey band is the
    simultaneous ``prob`` band of that difference for uniform values (Säilynoja, Bürkner &
    Vehtari 2022, simulation method, from :func:`arviz_stats.ecdf_utils.ecdf_pit`). A line that
    leaves its band is a rank distribution that is not uniform: above zero early means the true
    values sit low in their posteriors (posteriors too high), a U (below, then above) means
    posteriors too narrow, a hump too wide.

    Parameters
    ----------
    result
        A :class:`~mbct_bayes.selfcheck.Calibration`.
    prob
        Band level; default ``1 - 0.01 / m`` (the check's Bonferroni level per parameter).
    n_simulations, seed
        Simulations behind the band and their seed.
    columns
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from arviz_stats.ecdf_utils import ecdf_pit  # deferred: ArviZ is only needed when a figure is drawn

    names = list(result.pit)
    prob = 1 - result.threshold if prob is None else prob
    cols = min(columns, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        x, ecdf, lower, upper = ecdf_pit(result.pit[name], prob, n_simulations, rng=np.random.default_rng(seed))
        outside = (ecdf < lower) | (ecdf > upper)
        ax.fill_between(x, lower - x, upper - x, step="post", color="0.85", lw=0)
        ax.step(x, ecdf - x, where="post", color="C3" if outside.any() else "C0", lw=1.4)
        ax.axhline(0.0, color="0.4", lw=0.6)
        p = result.parameters[name]["rank_p_value"]
        ax.set_title(f"{name}  (p = {p:.2g})", fontsize=9, color="C3" if result.parameters[name]["rejected"] else "k")
        ax.tick_params(labelsize=8)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.supxlabel("fractional rank of the true value in its posterior", fontsize=9)
    fig.supylabel("ECDF − uniform", fontsize=9)
    fig.suptitle(
        f"SBC: {result.fitted_reps} refits ({result.degenerate_reps} single-class studies not refitted); "
        f"grey: simultaneous {100 * prob:.4g}% band",  # 4 digits: 1 - 0.01 / 32 is 99.97%, not 100.0%
        fontsize=9,
    )
    return fig
