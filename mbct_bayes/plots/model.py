"""Figures for a fitted model: forest plot of odds ratios, site-effect caterpillar, and a
posterior predictive check of the embedded rate.

Every figure is computed with numpy from the posterior draws (chains stacked) of a
:class:`~mbct_bayes.model.posterior.Posterior` (a fit's ``fit.posterior``; the figures take a fit
too) and returned as a ``matplotlib.figure.Figure`` made without pyplot (save it with
``fig.savefig(path)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from numpy.typing import ArrayLike
from scipy import stats

from mbct_bayes._format import probability
from mbct_bayes.errors import DataError
from mbct_bayes.model.posterior import Posterior, as_posterior

if TYPE_CHECKING:  # only named in annotations: the figures take a fit or its posterior
    from mbct_bayes.model.fit import Fit
from mbct_bayes.families import get_family
from mbct_bayes.model.build import outcome_array
from mbct_bayes.model.predictor import fitted_eta
from mbct_bayes.planning.predict import eta_draws, p_embedded
from mbct_bayes.schema import validate_observations

#: Interval levels drawn everywhere: a thick 50% bar inside a thin 90% line.
INNER, OUTER = 0.50, 0.90
#: Posterior draws used by the posterior predictive check (evenly thinned above this).
PPC_MAX_DRAWS = 1000
#: Labels longer than this are shortened in figures (the HTML tables keep them whole).
MAX_LABEL = 32


# -- small helpers --------------------------------------------------------------------------------
def interval_summary(draws: ArrayLike, inner: float = INNER, outer: float = OUTER) -> dict[str, np.ndarray]:
    """Median and central intervals over draws (axis 0).

    Parameters
    ----------
    draws
        (S,) or (S, k) posterior draws.
    inner, outer
        Probability mass of the inner and outer central intervals.

    Returns
    -------
    dict
        ``median``, ``inner_lo``, ``inner_hi``, ``outer_lo``, ``outer_hi``; each of shape (k,)
        (or a 0-d array for 1-D input).
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError("interval_summary: need at least one posterior draw (axis 0)")
    a, b = (1 - inner) / 2, (1 - outer) / 2
    q = np.quantile(x, [b, a, 0.5, 1 - a, 1 - b], axis=0)
    return {"outer_lo": q[0], "inner_lo": q[1], "median": q[2], "inner_hi": q[3], "outer_hi": q[4]}


def plain_label(text: object, max_len: int = MAX_LABEL) -> str:
    """A user-supplied label safe for matplotlib: ``$`` escaped (no mathtext), long text shortened."""
    s = " ".join(str(text).split())
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    return s.replace("$", r"\$")


def _draws(posterior: Posterior, name: str) -> np.ndarray:
    try:
        return np.asarray(posterior.draws[name], dtype=float)
    except KeyError:
        raise DataError(f"the fit has no posterior draws of {name!r}; is it an mbct-bayes fit?") from None


def _intervals_h(ax, y: np.ndarray, s: dict[str, np.ndarray], color="C0", point_color=None) -> None:
    """Horizontal 90% line, 50% bar and median point at heights ``y``."""
    ax.hlines(y, s["outer_lo"], s["outer_hi"], color=color, linewidth=1.2)
    ax.hlines(y, s["inner_lo"], s["inner_hi"], color=color, linewidth=4.0)
    ax.plot(s["median"], y, "o", color=point_color or "white", markeredgecolor=color, markersize=5, zorder=3)


def _prior_interval(prior: dict, outer: float = OUTER) -> tuple[float, float] | None:
    """Central ``outer`` interval of a coefficient prior on the log-odds scale, if it has one."""
    a = (1 - outer) / 2
    dist = prior.get("dist")
    if dist == "Normal":
        d = stats.norm(prior["mu"], prior["sigma"])
    elif dist == "StudentT":
        d = stats.t(prior["nu"], prior["mu"], prior["sigma"])
    elif dist == "Cauchy":
        d = stats.cauchy(prior["alpha"], prior["beta"])
    else:
        return None
    return float(d.ppf(a)), float(d.ppf(1 - a))


# -- forest plot ------------------------------------------------------------------------------
def forest_plot(fit: Fit | Posterior, *, show_prior: bool = True, title: str | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """Odds ratios of the E, C, F effects (and interactions, covariates) per scale point.

    Each row is one coefficient: the posterior median odds ratio ``exp(beta)`` (point), its 50%
    interval (thick bar) and 90% interval (thin line), on a log axis with a dashed line at 1 (no
    effect). The right-hand labels give the median and 90% interval in numbers. With
    ``show_prior`` a grey line under each row shows the prior's 90% interval, so the reader sees
    how far the data moved it.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit` or its posterior (uses the ``beta`` draws, the spec
        and ``model_data.x_sd`` for the default priors).
    show_prior
        Draw the prior 90% interval (Normal, Student-t and Cauchy priors).
    title, figsize
        Axes title (default says what is drawn) and figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; y tick labels are the coefficient names, top row first.
    """
    posterior = as_posterior(fit)
    beta = _draws(posterior, "beta")
    names = list(posterior.spec.coef_names)
    if beta.ndim != 2 or beta.shape[1] != len(names):
        raise DataError(f"forest_plot: beta draws have shape {beta.shape}, expected (draws, {len(names)})")
    s = interval_summary(beta)
    k = len(names)
    y = np.arange(k)[::-1].astype(float)  # first coefficient on top
    fig = Figure(figsize=figsize or (7.0, 1.0 + 0.55 * k), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    lo, hi = np.exp(s["outer_lo"].min()), np.exp(s["outer_hi"].max())
    if show_prior:
        x_sd = getattr(posterior.model_data, "x_sd", None)
        for j, name in enumerate(names):
            sd = float(x_sd[j]) if x_sd is not None and j < len(x_sd) else None
            interval = _prior_interval(posterior.spec.prior_for(name, sd))
            if interval is not None:
                ax.hlines(y[j] - 0.25, math.exp(interval[0]), math.exp(interval[1]), color="0.7", linewidth=1.5,
                          label="prior 90%" if j == 0 else "_nolegend_")
    ax.axvline(1.0, color="0.4", linestyle="--", linewidth=1)
    _intervals_h(ax, y, {key: np.exp(v) for key, v in s.items()}, color="C0")
    # posterior-driven limits (a wide prior line may run off the axis), always including 1
    lo, hi = min(lo, 1.0) / 1.5, max(hi, 1.0) * 1.5
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y, [plain_label(_coef_label(posterior.spec, n)) for n in names])
    ax.set_ylim(-0.7, k - 0.4)
    right = ax.secondary_yaxis("right")
    right.set_yticks(
        y, [f"{math.exp(m):.2f} ({math.exp(a):.2f}–{math.exp(b):.2f})"
            for m, a, b in zip(s["median"], s["outer_lo"], s["outer_hi"], strict=True)],
    )
    right.tick_params(length=0, labelsize="small")
    ratio = get_family(posterior.spec.family).ratio_name  # odds ratio, or a count model's rate ratio
    ax.set_xlabel(f"{ratio} per scale point (log axis; 1 = no effect)")
    ax.grid(axis="x", which="major", alpha=0.3)
    if show_prior and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.set_title(title or "Effects on the odds of embedding: median, 50% and 90% intervals", fontsize=10)
    return fig


def _coef_label(spec, name: str) -> str:
    if ":" in name:
        return f"{name} (per point of each)"
    if name in spec.previous_columns:  # a transition model's previous state: relative to its lowest state
        return f"{name} (vs previous {spec.state_levels[0]})"
    if name.endswith("]") and "[" in name:  # a categorical level: relative to the reference level
        column = name.split("[", 1)[0]
        return f"{name} (vs {spec.categorical[column]['reference']})"
    if spec.scale.get(name) is None:
        return f"{name} (per unit)"
    return name


# -- caterpillar ------------------------------------------------------------------------------
def site_effects_plot(fit: Fit | Posterior, *, title: str | None = None, width: float = 7.0) -> Figure:
    """Caterpillar plot of the site effects (and region effects, when fitted), sorted.

    Each row is one site's effect on the log-odds of embedding, beyond what its E, C and F
    explain: median (point), 50% (thick) and 90% (thin) intervals, sorted from lowest to highest,
    with 0 (the typical site) dashed. Sites whose 90% interval excludes 0 are drawn in orange.

    Parameters
    ----------
    fit
        A fit with ``u_site`` draws (``u_region`` adds a second panel).
    title, width
        Title of the site panel and figure width in inches (height grows with the sites).

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``[sites]`` or ``[sites, regions]``.
    """
    posterior = as_posterior(fit)
    u = _draws(posterior, "u_site")
    labels = list(posterior.model_data.site_labels)
    if u.ndim != 2 or u.shape[1] != len(labels):
        raise DataError(f"site_effects_plot: u_site draws have shape {u.shape}, expected (draws, {len(labels)})")
    panels = [("site", u, labels)]
    if "u_region" in posterior.draws and posterior.model_data.region_labels:
        panels.append(("region", _draws(posterior, "u_region"), list(posterior.model_data.region_labels)))
    rows = [p[1].shape[1] for p in panels]
    row_h = 0.17 if rows[0] <= 80 else 0.09
    heights = [max(1.2, row_h * n + 0.4) for n in rows]
    fig = Figure(figsize=(width, sum(heights) + 1.0), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, (level, draws, names) in zip(axes, panels, strict=True):
        s = interval_summary(draws)
        order = np.argsort(s["median"], kind="stable")
        so = {key: v[order] for key, v in s.items()}
        y = np.arange(len(names), dtype=float)
        clear = (so["outer_lo"] > 0) | (so["outer_hi"] < 0)
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=1)
        for mask, color in ((~clear, "C0"), (clear, "C1")):
            if mask.any():
                _intervals_h(ax, y[mask], {key: v[mask] for key, v in so.items()}, color=color)
        if len(names) <= 120:
            ax.set_yticks(y, [plain_label(names[i]) for i in order], fontsize=7 if len(names) > 40 else 8)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(names)} {level}s, sorted")
        ax.set_ylim(-0.8, len(names) - 0.2)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(f"{level} effect on the log-odds (0 = typical {level})")
        n_clear = int(clear.sum())
        head = title if level == "site" and title else f"{level.capitalize()} effects (median, 50%, 90%)"
        ax.set_title(f"{head}: {n_clear} of {len(names)} exclude 0 at 90%", fontsize=10)
    return fig


# -- posterior predictive check ----------------------------------------------------------------
@dataclass(frozen=True)
class PosteriorPredictive:
    """Observed embedded rates against rates replicated from the posterior.

    Attributes
    ----------
    sites
        Site labels, one per column of ``replicated_site``.
    observed_site, units_site
        Observed embedded rate and number of units (rows, or binomial trials) per site.
    replicated_site
        (S, J) replicated embedded rate per draw and site.
    observed_overall
        Observed embedded rate over all units.
    replicated_overall
        (S,) replicated overall rate per draw.
    source
        Where the observations came from (for captions).
    """

    sites: tuple[str, ...]
    observed_site: np.ndarray
    units_site: np.ndarray
    replicated_site: np.ndarray
    observed_overall: float
    replicated_overall: np.ndarray
    source: str = "the fitted data"

    @property
    def p_value(self) -> float:
        """Posterior predictive p-value of the overall rate: P(replicated ≥ observed)."""
        return float(np.mean(self.replicated_overall >= self.observed_overall))

    @property
    def site_coverage(self) -> float:
        """Share of sites whose observed rate lies in its central 90% replicated interval."""
        s = interval_summary(self.replicated_site)
        inside = (self.observed_site >= s["outer_lo"] - 1e-12) & (self.observed_site <= s["outer_hi"] + 1e-12)
        return float(np.mean(inside))


def replicate_rates(
    p: ArrayLike,
    event: ArrayLike,
    site_idx: ArrayLike,
    n_sites: int,
    *,
    units: ArrayLike | None = None,
    seed: int | None = 0,
    y_rep: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Replicate outcomes from per-draw probabilities and summarise embedded rates.

    Numpy kernel of the posterior predictive check: ``y_rep ~ Binomial(units, p)`` per draw and
    row (Bernoulli when ``units`` is 1), then rates per site and overall, vectorised over draws.

    Parameters
    ----------
    p
        (S, n) P(embedded) per draw and row.
    event
        (n,) observed embedded count per row (0/1, or successes out of ``units``).
    site_idx
        (n,) site index of each row in ``0 .. n_sites - 1``.
    n_sites
        Number of sites (sites without rows get NaN rates).
    units
        (n,) trials per row; default 1.
    seed
        Seed of the replication; the same seed gives the same numbers.
    y_rep
        (S, n) replicated outcomes drawn elsewhere (a count model's counts, whose ``units`` are
        the rows' exposures in units of ``rate_per``); ``p`` then only gives the shape.

    Returns
    -------
    dict
        ``observed_site`` (J,), ``units_site`` (J,), ``replicated_site`` (S, J),
        ``observed_overall`` (), ``replicated_overall`` (S,).
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 2:
        raise DataError(f"replicate_rates: p must be (draws, rows), got shape {p.shape}")
    n = p.shape[1]
    event = np.asarray(event, dtype=float)
    idx = np.asarray(site_idx, dtype=np.int64)
    units = np.ones(n) if units is None else np.asarray(units, dtype=float)
    if event.shape != (n,) or idx.shape != (n,) or units.shape != (n,):
        raise DataError(f"replicate_rates: event, site_idx and units need one value per row ({n})")
    if n and (idx.min() < 0 or idx.max() >= n_sites):
        raise DataError(f"replicate_rates: site_idx must lie in 0..{n_sites - 1}")
    if y_rep is None:
        rng = np.random.default_rng(seed)
        y_rep = rng.binomial(units.astype(np.int64)[None, :], np.clip(p, 0.0, 1.0))
    y_rep = np.asarray(y_rep)
    units_site = np.bincount(idx, weights=units, minlength=n_sites)
    observed_site = np.bincount(idx, weights=event, minlength=n_sites)
    # per-site sums over rows for every draw at once: sort rows by site, add up each run
    order = np.argsort(idx, kind="stable")
    present = np.flatnonzero(units_site > 0)
    starts = np.searchsorted(idx[order], present)
    rep_site = np.full((p.shape[0], n_sites), np.nan)
    if n:
        rep_site[:, present] = np.add.reduceat(y_rep[:, order], starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "observed_site": observed_site / units_site,
            "units_site": units_site,
            "replicated_site": rep_site / units_site,
            "observed_overall": np.asarray(event.sum() / units.sum()),
            "replicated_overall": y_rep.sum(axis=1) / units.sum(),
        }


def posterior_predictive(
    fit: Fit | Posterior, observations: pd.DataFrame | None = None, *, seed: int = 0, max_draws: int = PPC_MAX_DRAWS
) -> PosteriorPredictive:
    """Posterior predictive check of the embedded rate, per site and overall.

    The event is "embedded" (1 for bernoulli, successes for binomial, the top level for
    ordinal). Rows of a fitted site use that site's own effect (and region's); rows of a site
    the model has not seen (only possible with ``observations``) get a new-site effect drawn from
    the population.

    Parameters
    ----------
    fit
        A fitted model or its posterior.
    observations
        Observations to check against (validated here); default the data the model was fitted to.
    seed
        Seed of the new-site draws and of the replication.
    max_draws
        Use at most this many posterior draws (evenly spaced), to bound time and memory.

    Returns
    -------
    PosteriorPredictive
    """
    posterior = as_posterior(fit)
    spec, md = posterior.spec, posterior.model_data
    n_draws = int(_draws(posterior, "sigma_site").shape[0])
    keep = np.unique(np.linspace(0, n_draws - 1, min(n_draws, max_draws)).round().astype(np.int64))
    sub = posterior.thinned(keep)
    if observations is None:
        eta = fitted_eta(sub)
        y, trials, labels, site_idx = md.y, md.trials, list(md.site_labels), md.site_idx
        source = "the fitted data"
    else:
        table = _validated_observations(posterior, observations)
        eta = _mixed_eta(sub, table, seed)
        y = outcome_array(table, spec)
        trials = table[spec.trials].to_numpy(dtype=np.int64) if spec.trials is not None else None
        sites = table[spec.group].astype(str).to_numpy()
        labels_arr, site_idx = np.unique(sites, return_inverse=True)
        labels = [str(s) for s in labels_arr]
        source = "the observations given"
    family = get_family(spec.family)
    p = p_embedded(sub, eta)
    event = family.event_indicator(y, spec)
    replicated = None
    if family.counts_events:
        # counts: replicate each row's count at its own exposure; rates are per rate_per of exposure
        offset = md.offset if observations is None else family.offset(table, spec)
        exposure = np.exp(offset) if offset is not None else np.ones(len(y))
        replicated = family.draw_codes(np.random.default_rng(seed), eta if offset is None else eta + offset, None,
                                       sub.draws)
        trials = exposure / float(spec.rate_per or 1.0)
    r = replicate_rates(p, event, site_idx, len(labels), units=trials, seed=seed, y_rep=replicated)
    has = r["units_site"] > 0
    return PosteriorPredictive(
        sites=tuple(str(s) for s, h in zip(labels, has, strict=True) if h),
        observed_site=r["observed_site"][has],
        units_site=r["units_site"][has],
        replicated_site=r["replicated_site"][:, has],
        observed_overall=float(r["observed_overall"]),
        replicated_overall=r["replicated_overall"],
        source=source,
    )


def _validated_observations(posterior: Posterior, observations: pd.DataFrame) -> pd.DataFrame:
    return validate_observations(observations, posterior.spec, source="observations")


def _mixed_eta(posterior: Posterior, table: pd.DataFrame, seed: int) -> np.ndarray:
    """Known sites with their own effects, unseen sites as new sites."""
    spec, md = posterior.spec, posterior.model_data
    known = table[spec.group].astype(str).isin(set(md.site_labels)).to_numpy()
    eta = np.empty((posterior.n_draws, len(table)))
    if known.any():
        eta[:, known] = eta_draws(posterior, table[known], "known_site", seed=seed)
    if (~known).any():
        new = table[~known].copy()
        if md.region_labels is not None and spec.region in new.columns:
            # a region the model never saw is drawn from the population of regions
            seen = new[spec.region].astype(str).isin(set(md.region_labels))
            new[spec.region] = new[spec.region].where(seen, None)
        eta[:, ~known] = eta_draws(posterior, new, "new_site", seed=seed)
    return eta


def ppc_plot(ppc: PosteriorPredictive, *, title: str | None = None, max_labels: int = 60) -> Figure:
    """Posterior predictive check: observed embedded rate against its replicated distribution.

    Left: histogram of the replicated overall rate with the observed rate (red line) and the
    posterior predictive p-value. Right: per site, the replicated 50% and 90% intervals (sorted
    by their median) and the observed rate (red when outside the 90% interval).

    Parameters
    ----------
    ppc
        The output of :func:`posterior_predictive`.
    title
        Figure title (default states the source and the coverage).
    max_labels
        Label sites on the x axis when there are at most this many.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``[overall, sites]``.
    """
    J = len(ppc.sites)
    fig = Figure(figsize=(10.0, 4.2 if J <= max_labels else 3.6), layout="constrained")
    ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.6]})
    rep = ppc.replicated_overall
    ax0.hist(rep, bins=min(30, max(5, np.unique(rep).size)), color="C0", alpha=0.6, edgecolor="white")
    ax0.axvline(ppc.observed_overall, color="C3", linewidth=2, label=f"observed {ppc.observed_overall:.2f}")
    ax0.set_xlabel("embedded rate, all sites")
    ax0.set_ylabel("replicated data sets")
    ax0.legend(fontsize="small", loc="upper left")
    ax0.set_title(f"Overall: P(replicated ≥ observed) = {probability(ppc.p_value)}", fontsize=9)

    s = interval_summary(ppc.replicated_site)
    order = np.lexsort((np.arange(J), s["median"]))
    x = np.arange(J, dtype=float)
    so = {key: v[order] for key, v in s.items()}
    ax1.vlines(x, so["outer_lo"], so["outer_hi"], color="C0", linewidth=1.2, label="replicated 90%")
    ax1.vlines(x, so["inner_lo"], so["inner_hi"], color="C0", linewidth=4.0, alpha=0.6, label="replicated 50%")
    obs = ppc.observed_site[order]
    outside = (obs < so["outer_lo"] - 1e-12) | (obs > so["outer_hi"] + 1e-12)
    ax1.plot(x[~outside], obs[~outside], "o", color="k", markersize=4, label="observed")
    if outside.any():
        ax1.plot(x[outside], obs[outside], "o", color="C3", markersize=5, label="observed, outside 90%")
    if J <= max_labels:
        ax1.set_xticks(x, [plain_label(ppc.sites[i], 20) for i in order], rotation=90, fontsize=7)
    else:
        ax1.set_xticks([])
        ax1.set_xlabel(f"{J} sites, sorted by replicated median")
    ax1.set_ylim(-0.03, 1.03)
    ax1.set_xlim(-0.8, J - 0.2)
    ax1.set_ylabel("embedded rate per site")
    ax1.legend(fontsize="small", loc="upper left", ncol=2)
    ax1.set_title(f"By site: {ppc.site_coverage:.0%} of {J} sites inside their 90% interval", fontsize=9)
    fig.suptitle(title or f"Posterior predictive check against {ppc.source}", fontsize=10)
    return fig


__all__: Sequence[str] = (
    "PosteriorPredictive",
    "forest_plot",
    "interval_summary",
    "plain_label",
    "posterior_predictive",
    "ppc_plot",
    "replicate_rates",
    "site_effects_plot",
)
