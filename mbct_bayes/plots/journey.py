"""Fan charts of forecast journeys (:func:`mbct_bayes.forecast.journey.forecast`).

Returns a ``matplotlib.figure.Figure`` made without pyplot (save it with ``fig.savefig(path)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import INTERVAL, Forecast


def fan_chart(
    result: Forecast,
    sites: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    panel_size: tuple[float, float] = (2.8, 2.0),
) -> Figure:
    """One panel per site: P(top state) at each future wave, with its 5-95% band over posterior draws.

    The path starts at the site's latest wave (probability 1 or 0: its observed state). With a
    what-if scenario the scenario's path is drawn beside the baseline, dashed.

    Parameters
    ----------
    result
        A :class:`~mbct_bayes.forecast.journey.Forecast`.
    sites
        Which sites to draw (default all, in the forecast's order).
    ncols
        Panels per row.
    panel_size
        Width and height of one panel in inches.
    """
    names = list(result.sites) if sites is None else [str(s) for s in sites]
    unknown = [s for s in names if s not in result.sites]
    if unknown:
        raise DataError(f"fan_chart: site {unknown[0]!r} is not in the forecast; choose from {', '.join(result.sites[:5])} ...")
    if not names:
        raise DataError("fan_chart: no sites to draw")
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    top = len(result.levels) - 1
    for ax, site in zip(axes.ravel(), names, strict=False):
        i = result.sites.index(site)
        t = result.start_time[i] + result.step * np.arange(result.horizon + 1)
        curves = [("baseline", result.p, "-")]
        if result.scenario is not None:
            curves.append(("what-if", result.scenario.p, "--"))
        for label, p, style in curves:
            draws = p[:, i, :, top]
            start = float(result.start_state[i] == top)
            mean = np.concatenate([[start], draws.mean(axis=0)])
            lo, hi = (np.concatenate([[start], q]) for q in np.quantile(draws, INTERVAL, axis=0))
            line = ax.plot(t, mean, style, label=label)[0]
            ax.fill_between(t, lo, hi, alpha=0.2, color=line.get_color())
        ax.set_title(site, fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(f"P({result.levels[top]})")
    if result.scenario is not None:
        axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"forecast journeys: P({result.levels[top]}) with 90% intervals over posterior draws", fontsize=10)
    return fig
