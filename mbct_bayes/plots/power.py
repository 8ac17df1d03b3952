"""Power and assurance curves."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from mbct_bayes.errors import DataError


def power_curve_figure(
    curve: pd.DataFrame,
    *,
    x: str | None = None,
    target: float | None = None,
    chosen: float | None = None,
    title: str | None = None,
) -> Figure:
    """Power (or assurance) against clusters per arm or cluster size.

    Parameters
    ----------
    curve
        A table from :func:`mbct_bayes.power.power_curve`, :func:`~mbct_bayes.power.assurance_curve`
        or :func:`~mbct_bayes.power.search` (``result["curve"]``): ``clusters_per_arm``,
        ``cluster_size`` and ``power`` or ``assurance``, optionally ``*_mc_low``/``*_mc_high``
        (drawn as a band), ``power_analytic`` and ``power_at_posterior_mean`` (dashed lines).
    x
        ``"clusters_per_arm"`` or ``"cluster_size"``; default whichever varies.
    target
        Draw the target as a horizontal line.
    chosen
        Mark the chosen design on the x axis.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    metric = "assurance" if "assurance" in curve else "power"
    if metric not in curve or curve.empty:
        raise DataError("power curve table has no 'power' or 'assurance' column (or no rows)")
    if x is None:
        x = "cluster_size" if curve["cluster_size"].nunique() > 1 else "clusters_per_arm"
    if x not in curve:
        raise DataError(f"power curve table has no column {x!r}")
    data = curve.sort_values(x)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    low, high = f"{metric}_mc_low", f"{metric}_mc_high"
    if low in data and high in data:
        ax.fill_between(
            data[x],
            data[low],
            data[high],
            alpha=0.25,
            color="C0",
            linewidth=0,
            label="Monte Carlo 95% interval",
        )
    simulated = low in data
    ax.plot(
        data[x],
        data[metric],
        "o-" if len(data) < 30 else "-",
        color="C0",
        markersize=3,
        label=f"{metric} ({'simulated' if simulated else 'analytic'})",
    )
    if metric == "power" and "power_analytic" in data and simulated:
        ax.plot(
            data[x], data["power_analytic"], "--", color="C1", label="analytic (Donner–Klar, t)"
        )
    if "power_at_posterior_mean" in data:
        ax.plot(
            data[x],
            data["power_at_posterior_mean"],
            "--",
            color="C2",
            label="power at posterior means",
        )
    bound = "p_effect_in_direction" if "p_effect_in_direction" in data else "p_effect_positive"
    if bound in data:
        ax.axhline(
            float(data[bound].iloc[0]),
            color="C2",
            linestyle=":",
            label="P(effect in the intended direction): bound" if bound == "p_effect_in_direction"
            else "P(effect > 0): bound on assurance",
        )
    if target is not None:
        ax.axhline(target, color="grey", linewidth=0.8, label=f"target {target:g}")
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("clusters per arm" if x == "clusters_per_arm" else "cluster size (members)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
