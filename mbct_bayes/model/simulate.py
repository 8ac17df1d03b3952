"""Synthetic observations with known truth, shaped like the UK MBCT implementation study.

The UK study (Rycroft-Malone et al., BMJ Open) surveyed 40 service providers across the four UK
nations. Here sites nest in regions, each site contributes several assessed units (waves), and
E, C, F are correlated scores on the 1-5 scale. The outcome follows the package's model exactly:

    eta = Intercept + sum_j beta_j * (x_j - center) + u_site + u_region
    u_site ~ Normal(0, sigma_site),  u_region ~ Normal(0, sigma_region)

With a time trend (``truth["time_trend"]``, see :func:`default_time_trend`) each row's wave
number ``t`` (1, 2, ...) adds ``(beta_time + b_site) * (t - t0)``, with ``(u_site, b_site)``
bivariate normal per site (SDs ``sigma_site``, ``sigma_slope``; correlation ``corr``) and ``t0``
the latest wave unless the truth sets ``origin`` — the model fitted with ``time = "wave"`` and
``time_trend = true`` (:mod:`mbct_bayes.model.build`).

- bernoulli: ``embedded ~ Bernoulli(expit(eta))``
- binomial:  ``embedded ~ Binomial(trials, expit(eta))``
- ordinal:   cumulative logit, ``P(level > k) = expit(eta - cutpoint_k)`` (no intercept).

Every random draw comes from one ``np.random.default_rng(seed)`` in a fixed order (regions, sites,
predictors, with a time trend the slopes' own normals, then the outcome), so the same seed gives
the same table, and the families share the same sites, effects and scores for a given seed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.families import family_names, get_family
from mbct_bayes.families._base import finite, stable_expit
from mbct_bayes.families.ordinal import DEFAULT_LEVELS
from mbct_bayes.model.design import design_from_parts, numeric_predictors
from mbct_bayes.spec import ModelSpec

FAMILIES = family_names()  # the registered families (mbct_bayes.families)
PREDICTORS = ("E", "C", "F")
UK_REGIONS = ("England-North", "England-South", "Scotland", "Wales")
#: Share of sites per UK-like region (England holds most services), used when n_regions == 4.
UK_REGION_WEIGHTS = (0.4, 0.3, 0.15, 0.15)
ORDINAL_LEVELS = DEFAULT_LEVELS
SCALE = (1.0, 5.0)
CENTER = 3.0


def region_names(n_regions: int) -> list[str]:
    """Region labels: UK-nation-like names for 4 regions, ``R1``, ``R2``, ... otherwise."""
    if n_regions == len(UK_REGIONS):
        return list(UK_REGIONS)
    return [f"R{i + 1}" for i in range(n_regions)]


def default_truth(family: str = "bernoulli", n_regions: int = 4) -> dict[str, Any]:
    """Default generating parameters, in the spirit of the UK study.

    Facilitation matters most (beta F = 0.9 per scale point), context next (0.5), evidence least
    (0.3); sites differ more than regions (sigma_site = 0.8, sigma_region = 0.3).

    Parameters
    ----------
    family
        ``"bernoulli"``, ``"binomial"`` or ``"ordinal"``.
    n_regions
        Number of regions (0 for none); sets ``regions`` and the region weights.

    Returns
    -------
    dict
        JSON-serialisable parameters without site or region effects (those are drawn by
        :func:`simulate_observations`). ``Intercept`` is ``None`` for ordinal, which has
        ``cutpoints`` and ``levels`` instead; binomial has ``trials``.
    """
    _check_family(family)
    n_regions = _check_int(n_regions, "n_regions", 0)
    own = get_family(family).truth_defaults()  # the family's parameters (Intercept, cutpoints, trials)
    truth: dict[str, Any] = {
        "family": family,
        "Intercept": own.pop("Intercept"),
        "beta": {"E": 0.3, "C": 0.5, "F": 0.9},
        "sigma_site": 0.8,
        "sigma_region": 0.3 if n_regions else 0.0,
        "center": CENTER,
        "scale": list(SCALE),
        # Predictor distribution: site means ~ MVN(mean, diag(sd) R diag(sd)), then each unit
        # adds Normal(0, unit_sd) noise; values are clipped to the scale and rounded to 2 dp.
        "predictors": {
            "names": list(PREDICTORS),
            "mean": [3.4, 3.0, 2.8],
            "site_sd": [0.7, 0.7, 0.7],
            "corr": [[1.0, 0.3, 0.4], [0.3, 1.0, 0.5], [0.4, 0.5, 1.0]],
            "unit_sd": 0.4,
            "decimals": 2,
        },
        "regions": region_names(n_regions),
        "region_weights": _region_weights(n_regions),
    }
    truth.update(own)
    return truth


def default_time_trend() -> dict[str, Any]:
    """Default generating time trend, to set as ``truth["time_trend"]`` (it is off unless set).

    ``beta``: the population trend, log-odds per wave (0.25); ``sigma_slope``: SD of the sites'
    own slopes around it (0.3); ``corr``: correlation of a site's intercept at the origin with its
    slope (-0.4: sites that embed most now have been gaining least); ``origin``: the wave at
    which the intercept and site effects are defined, ``None`` for the latest wave (the fitted
    model's default time origin, :mod:`mbct_bayes.model.design`).
    """
    return {"beta": 0.25, "sigma_slope": 0.3, "corr": -0.4, "origin": None}


def simulate_observations(
    n_sites: int = 40,
    per_site: int = 5,
    family: str | None = None,
    *,
    n_regions: int = 4,
    seed: int | None = 1,
    truth: Mapping[str, Any] | None = None,
    trials: int = 8,
    site_prefix: str = "S",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate observations (one row per site and wave) and return them with the truth.

    Parameters
    ----------
    n_sites, per_site
        Number of sites and of assessed units (waves) per site, each >= 1.
    family
        ``"bernoulli"`` (column ``embedded`` 0/1), ``"binomial"`` (``embedded`` = k of
        ``trials``) or ``"ordinal"`` (``level`` in ``none < partial < embedded``).
        Default: the family of ``truth`` if given, else ``"bernoulli"``.
    n_regions
        Number of regions; sites are spread over them (UK-like shares for 4). 0 drops the
        ``region`` column and the region effect.
    seed
        Seed of ``np.random.default_rng``; the same seed gives an identical table.
    truth
        Parameters to reuse (``beta``, ``sigma_site``, ``sigma_region``, ``Intercept`` or
        ``cutpoints``, predictor distribution, ``time_trend``), e.g. the truth of an earlier call. Site and
        region effects and predictors are always drawn afresh, so this simulates a new
        population of sites from the same process. Default :func:`default_truth`.
    trials
        Binomial: units per row (n), >= 1.
    site_prefix
        Site ids are ``prefix`` + zero-padded number, e.g. ``S01`` ... ``S40``.

    Returns
    -------
    (DataFrame, dict)
        Columns ``site``, ``region`` (when ``n_regions > 0``), ``wave``, ``E``, ``C``, ``F`` and
        the outcome (plus ``trials`` for binomial); and the JSON-serialisable truth, including
        ``site_effects`` and ``region_effects`` by id (with a time trend also ``site_slopes`` by
        id, and ``time_trend["origin"]`` resolved to a wave number).

    Raises
    ------
    DataError
        For a bad argument.
    """
    n_sites = _check_int(n_sites, "n_sites", 1)
    per_site = _check_int(per_site, "per_site", 1)
    n_regions = _check_int(n_regions, "n_regions", 0)
    trials = _check_int(trials, "trials", 1)
    if truth is not None and not isinstance(truth, Mapping):
        raise DataError(
            f"truth must be a dict such as default_truth() returns, got {type(truth).__name__}"
        )
    if family is None:
        family = str(truth.get("family", "bernoulli")) if truth is not None else "bernoulli"
    _check_family(family)
    params = _resolve_truth(truth, family, n_regions, trials)

    rng = np.random.default_rng(seed)
    regions = params["regions"]
    width = max(2, len(str(n_sites)))
    sites = [f"{site_prefix}{i + 1:0{width}d}" for i in range(n_sites)]
    site_region = _assign_regions(rng, n_sites, params["region_weights"])  # index per site or None
    u_region = (
        rng.normal(0.0, params["sigma_region"], size=len(regions)) if regions else np.zeros(0)
    )
    u_site = rng.normal(0.0, params["sigma_site"], size=n_sites)
    x = _draw_predictors(rng, params["predictors"], n_sites, per_site)  # (n_sites*per_site, 3)

    site_idx = np.repeat(np.arange(n_sites), per_site)
    waves = np.tile(np.arange(1, per_site + 1), n_sites)
    eta = _linear_predictor(params, x) + u_site[site_idx]
    if regions:
        eta = eta + u_region[site_region][site_idx]
    trend = params.get("time_trend")
    if trend is not None:
        trend["origin"] = float(per_site if trend["origin"] is None else trend["origin"])
        slopes = _site_slopes(rng, trend, u_site, params["sigma_site"])
        eta = eta + (trend["beta"] + slopes[site_idx]) * (waves - trend["origin"])

    data: dict[str, Any] = {"site": np.asarray(sites, dtype=object)[site_idx]}
    if regions:
        data["region"] = np.asarray(regions, dtype=object)[site_region][site_idx]
    data["wave"] = waves
    for j, name in enumerate(params["predictors"]["names"]):
        data[name] = x[:, j]
    data.update(_draw_outcome(rng, params, eta))
    df = pd.DataFrame(data)
    for col in ("site", "region"):
        if col in df:
            df[col] = df[col].astype(str)

    out = dict(params)
    out.update(
        {
            "site_effects": {s: float(u) for s, u in zip(sites, u_site, strict=True)},
            "region_effects": {r: float(u) for r, u in zip(regions, u_region, strict=True)},
            "site_regions": (
                {s: regions[r] for s, r in zip(sites, site_region, strict=True)} if regions else {}
            ),
            **({"site_slopes": {s: float(b) for s, b in zip(sites, slopes, strict=True)}} if trend is not None else {}),
            "n_sites": n_sites,
            "per_site": per_site,
            "n_regions": n_regions,
            "seed": seed,
        }
    )
    return df, out


def simulate_new_site_rate(
    truth: Mapping[str, Any],
    E: float,
    C: float,
    F: float,
    n_sites: int = 100_000,
    seed: int | None = 12345,
    *,
    region: str | None = None,
) -> float:
    """P(embedded) over a large fresh population of new sites with fixed scores E, C, F.

    Each new site draws its own effect from Normal(0, sigma_site); its region effect is drawn
    from Normal(0, sigma_region) too unless ``region`` names a region in
    ``truth["region_effects"]``, whose effect is then used. The rate is the average of each
    site's probability (a Rao-Blackwellised Monte Carlo estimate, less noisy than averaging 0/1
    draws). For ordinal truth, P(embedded) is the probability of the top level. With both SDs 0
    it equals ``expit(eta)`` exactly.

    Parameters
    ----------
    truth
        Parameters as returned by :func:`default_truth` or :func:`simulate_observations`.
    E, C, F
        The scores of the new sites (on the instrument's scale).
    n_sites
        Size of the simulated population.
    seed
        Seed of ``np.random.default_rng``.
    region
        Optional known region of the new sites.

    Returns
    -------
    float
        The population's expected embedded rate.
    """
    n_sites = _check_int(n_sites, "n_sites", 1)
    params = _resolve_truth(truth, str(truth.get("family", "bernoulli")), None, None)
    x = np.array([[E, C, F]], dtype=float)
    if not np.all(np.isfinite(x)):
        raise DataError(f"E, C, F must be finite numbers, got {E!r}, {C!r}, {F!r}")
    eta0 = float(_linear_predictor(params, x)[0])
    rng = np.random.default_rng(seed)
    eta = eta0 + rng.normal(0.0, params["sigma_site"], size=n_sites)
    effects = truth.get("region_effects") or {}
    if region is not None and region in effects:
        eta = eta + float(effects[region])
    elif params["sigma_region"] > 0:
        eta = eta + rng.normal(0.0, params["sigma_region"], size=n_sites)
    # P(embedded) is P(top level) = expit(eta - last cutpoint) for ordinal
    return float(np.mean(stable_expit(get_family(params["family"]).event_logit(eta, params))))


# -- internals ----------------------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DataError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _check_family(family: Any) -> None:
    if family not in family_names():
        raise DataError(f"family {family!r} is not one of {', '.join(family_names())}")


def _region_weights(n_regions: int) -> list[float]:
    if n_regions == len(UK_REGION_WEIGHTS):
        return list(UK_REGION_WEIGHTS)
    return [1.0 / n_regions] * n_regions if n_regions else []


def _resolve_truth(
    truth: Mapping[str, Any] | None, family: str, n_regions: int | None, trials: int | None
) -> dict[str, Any]:
    """Complete, checked parameters: ``truth`` over :func:`default_truth`.

    ``n_regions``/``trials`` of None keep what ``truth`` says (used for new-site rates).
    """
    truth = dict(truth or {})
    if "family" in truth and truth["family"] != family:
        raise DataError(
            f"truth is for family {truth['family']!r} but family={family!r} was asked; "
            "pass the matching family or omit it"
        )
    if n_regions is None:
        n_regions = len(truth.get("regions", UK_REGIONS))
    base = default_truth(family, n_regions)
    keep = ["Intercept", "beta", "sigma_site", "sigma_region", "center", "scale", "predictors", "time_trend"]
    for key in keep:
        if key in truth and truth[key] is not None:
            base[key] = copy.deepcopy(truth[key])
    if n_regions == 0:
        base["sigma_region"] = 0.0

    beta = base["beta"]
    names = base["predictors"]["names"]
    if not isinstance(beta, Mapping) or sorted(beta) != sorted(names):
        raise DataError(f"truth['beta'] must give a number for each of {', '.join(names)}")
    for key in ("sigma_site", "sigma_region"):
        if not finite(base[key]) or base[key] < 0:
            raise DataError(f"truth[{key!r}] must be a finite number >= 0, got {base[key]!r}")
    get_family(family).resolve_truth(base, truth, trials)
    if base.get("time_trend") is not None:
        base["time_trend"] = _resolve_time_trend(base["time_trend"])
    return base


def _resolve_time_trend(given: Any) -> dict[str, Any]:
    """``truth["time_trend"]`` over :func:`default_time_trend`, checked."""
    if not isinstance(given, Mapping):
        raise DataError(f"truth['time_trend'] must be a dict such as default_time_trend() returns, got {given!r}")
    unknown = sorted(set(given) - set(default_time_trend()))
    if unknown:
        raise DataError(f"truth['time_trend'] has unknown key {unknown[0]!r}; use {', '.join(default_time_trend())}")
    trend = {**default_time_trend(), **given}
    if not finite(trend["beta"]):
        raise DataError(f"truth['time_trend']['beta'] must be a finite number, got {trend['beta']!r}")
    if not finite(trend["sigma_slope"]) or trend["sigma_slope"] < 0:
        raise DataError(f"truth['time_trend']['sigma_slope'] must be a finite number >= 0, got {trend['sigma_slope']!r}")
    if not finite(trend["corr"]) or not -1.0 < trend["corr"] < 1.0:
        raise DataError(f"truth['time_trend']['corr'] must be a number strictly between -1 and 1, got {trend['corr']!r}")
    if trend["origin"] is not None and not finite(trend["origin"]):
        raise DataError(f"truth['time_trend']['origin'] must be a wave number or None, got {trend['origin']!r}")
    return {k: (float(v) if v is not None else None) for k, v in trend.items()}


def _site_slopes(
    rng: np.random.Generator, trend: Mapping[str, Any], u_site: np.ndarray, sigma_site: float
) -> np.ndarray:
    """Each site's slope given its intercept effect: the pair is bivariate normal with correlation ``corr``.

    ``b = sigma_slope (corr z + sqrt(1 - corr²) z2)`` with ``z = u_site / sigma_site`` (the
    intercept's standard normal) and fresh ``z2``; with ``sigma_site = 0`` the intercepts carry no
    normal, and ``b = sigma_slope z2``.
    """
    z2 = rng.standard_normal(u_site.size)
    if sigma_site <= 0:
        return trend["sigma_slope"] * z2
    rho = trend["corr"]
    return trend["sigma_slope"] * (rho * u_site / sigma_site + math.sqrt(1.0 - rho**2) * z2)



def _assign_regions(rng: np.random.Generator, n_sites: int, weights: Sequence[float]) -> np.ndarray:
    """Region index per site: counts by largest remainder of the weights, order shuffled."""
    if not weights:
        return np.zeros(n_sites, dtype=int)
    w = np.asarray(weights, dtype=float)
    raw = w / w.sum() * n_sites
    counts = np.floor(raw).astype(int)
    short = n_sites - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    labels = np.repeat(np.arange(len(w)), counts)
    return rng.permutation(labels)


def _draw_predictors(
    rng: np.random.Generator, dist: Mapping[str, Any], n_sites: int, per_site: int
) -> np.ndarray:
    mean = np.asarray(dist["mean"], dtype=float)
    sd = np.asarray(dist["site_sd"], dtype=float)
    # Cholesky of the correlation (not the covariance), so a zero sd (fixed scores) is allowed
    chol = np.linalg.cholesky(np.asarray(dist["corr"], dtype=float))
    site_means = mean + (rng.standard_normal((n_sites, len(mean))) @ chol.T) * sd
    noise = rng.normal(0.0, float(dist["unit_sd"]), size=(n_sites * per_site, len(mean)))
    x = np.repeat(site_means, per_site, axis=0) + noise
    return np.round(np.clip(x, *SCALE), int(dist.get("decimals", 2)))


def _linear_predictor(params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    names = params["predictors"]["names"]
    beta = np.array([float(params["beta"][n]) for n in names])
    eta = (x - float(params["center"])) @ beta
    if params["Intercept"] is not None:
        eta = eta + float(params["Intercept"])
    return eta


def _draw_outcome(
    rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray
) -> dict[str, Any]:
    return get_family(params["family"]).draw_outcome(rng, params, eta)


# -- panels: waves of the same sites, each state depending on the previous one -------------------

#: Default generating values of :func:`simulate_panel` (log-odds): the intercept of a family that
#: has one (few sites embed from the lowest state), and the gap's own effect (a longer gap gives
#: more time to move up).
PANEL_INTERCEPT = -1.5
PANEL_GAP_EFFECT = 0.3


def panel_state_effects(spec: ModelSpec) -> dict[str, float]:
    """Default effects of the previous state in :func:`simulate_panel`, by coefficient name.

    A 0/1 state: ``previous[1]`` 2.5 (being embedded last wave keeps a site embedded:
    sustainment) and ``gap:previous[1]`` -0.6 (its pull weakens over a longer gap). Ordered states:
    1.5 per level above the lowest (``previous[partial]`` 1.5, ``previous[embedded]`` 3.0 for the
    default levels) and -0.3 per level for the gap products.
    """
    columns = spec.previous_columns
    if len(columns) == 1:
        effects = {columns[0]: 2.5, f"gap:{columns[0]}": -0.6}
    else:
        effects = {name: 1.5 * (k + 1) for k, name in enumerate(columns)}
        effects |= {f"gap:{name}": -0.3 * (k + 1) for k, name in enumerate(columns)}
    return {**effects, "gap": PANEL_GAP_EFFECT}


def simulate_panel(
    n_sites: int = 40,
    n_waves: int = 6,
    family: str = "bernoulli",
    *,
    gaps: Sequence[float] = (1.0,),
    start: float = 2020.0,
    n_regions: int = 0,
    predictors_at: str = "previous",
    seed: int | None = 1,
    truth: Mapping[str, Any] | None = None,
    site_prefix: str = "S",
    initial_site_effect: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate a panel (every site at ``n_waves`` times) from a transition model with known truth.

    The model is the one a ``dynamics = "transition"`` spec fits (:mod:`mbct_bayes.model.panel`):
    the state at a site's wave is drawn given the site's state at its previous wave, E, C, F (at
    the previous or the current wave, as ``predictors_at``), the gap since the previous wave, a
    site effect ``u_site ~ Normal(0, sigma_site)`` and a region effect. The linear predictor is
    built by :func:`mbct_bayes.model.design.design_from_parts` from the returned spec, so the data
    follow the fitted model exactly. A site's first wave is drawn as one reference gap after a
    start at the lowest state; it supplies the previous state of the second wave and is not
    modelled. By default it is drawn without the site and region effects, so a site's first state
    is independent of its effect: the transition model's assumption (it conditions on the first
    state). ``initial_site_effect=True`` draws it with them, as a panel that starts mid-journey
    would be; a transition model then overstates the previous state's effect and understates
    ``sigma_site`` (the initial-conditions problem; Heckman 1981, Wooldridge 2005, J. Applied
    Econometrics 20:39-54).

    E, C, F change over waves: each site has its own mean scores (correlated across E, C, F) and
    each wave adds independent noise, as in :func:`simulate_observations`.

    Parameters
    ----------
    n_sites, n_waves
        Number of sites (>= 1) and of waves per site (>= 2).
    family
        A family with states: ``"bernoulli"`` (``embedded`` 0/1) or ``"ordinal"`` (``level``).
    gaps
        The possible times between consecutive waves; each step of each site draws one uniformly.
        ``(1,)`` (default) gives annual waves; ``(1, 2)`` unequal gaps (the model then has gap
        terms, centred at the median of ``gaps``).
    start
        Time of every site's first wave.
    n_regions
        Number of regions (0: no ``region`` column and no region effect).
    predictors_at
        ``"previous"`` (default) or ``"current"``: which wave's E, C, F drive a transition.
    seed
        Seed of ``np.random.default_rng``; the same seed gives an identical table.
    truth
        Overrides of the generating parameters: ``beta`` (by coefficient name, e.g. ``{"F": 1.2,
        "previous[1]": 2.0}``; names not given keep their defaults), ``sigma_site``, ``sigma_region``, ``Intercept`` or
        ``cutpoints``, ``predictors`` (their distribution, as in :func:`default_truth`). Defaults:
        :func:`panel_state_effects`, ``Intercept`` :data:`PANEL_INTERCEPT`, the rest as
        :func:`default_truth`.
    site_prefix
        Site ids are ``prefix`` + zero-padded number, e.g. ``S01`` ... ``S40``.
    initial_site_effect
        Draw the first wave with the site (and region) effect too (default: without).

    Returns
    -------
    (DataFrame, dict)
        Columns ``site``, ``region`` (with regions), ``time``, ``wave`` (1..n_waves), ``E``, ``C``,
        ``F`` and the outcome; and the truth: ``beta`` by coefficient name (every name of the
        spec's ``coef_names``), ``Intercept`` (bernoulli) or ``cutpoints``, ``sigma_site``,
        ``sigma_region``, ``site_effects``, ``region_effects`` and ``spec`` (the dict of the
        :class:`~mbct_bayes.spec.ModelSpec` whose model generated the data; fit it with
        ``ModelSpec.from_dict(truth["spec"])``).

    Raises
    ------
    DataError
        For a bad argument, or a family without states.
    """
    n_sites = _check_int(n_sites, "n_sites", 1)
    n_waves = _check_int(n_waves, "n_waves", 2)
    n_regions = _check_int(n_regions, "n_regions", 0)
    _check_family(family)
    gap_values = np.asarray(list(gaps), dtype=float)
    if gap_values.size == 0 or not np.all(np.isfinite(gap_values)) or np.any(gap_values <= 0):
        raise DataError(f"gaps must be a list of positive numbers (times between waves), got {list(gaps)!r}")
    if truth is not None and not isinstance(truth, Mapping):
        raise DataError(f"truth must be a dict such as simulate_panel returns, got {type(truth).__name__}")
    truth = dict(truth or {})
    unequal = bool(gap_values.max() > gap_values.min())
    spec = ModelSpec(
        family=family, time="time", dynamics="transition", predictors_at=predictors_at,
        region="region" if n_regions else None,
        gaps={"terms": unequal, "center": float(np.median(gap_values))},
    )  # a family without states, or a bad predictors_at, is refused here with the spec's message
    params = _resolve_truth({k: v for k, v in truth.items() if k != "beta"}, family, n_regions, None)
    state_effects = panel_state_effects(spec)
    if params["Intercept"] is not None and "Intercept" not in truth:
        params["Intercept"] = PANEL_INTERCEPT
    beta_given = dict(truth.get("beta") or {})
    unknown = sorted(set(beta_given) - set(spec.coef_names))
    if unknown:
        raise DataError(f"truth['beta'] names {unknown[0]!r}, not a coefficient of this model ({', '.join(spec.coef_names)})")
    beta = {name: float(beta_given.get(name, params["beta"].get(name, state_effects.get(name, 0.0))))
            for name in spec.coef_names}

    rng = np.random.default_rng(seed)
    regions = params["regions"]
    width = max(2, len(str(n_sites)))
    sites = [f"{site_prefix}{i + 1:0{width}d}" for i in range(n_sites)]
    site_region = _assign_regions(rng, n_sites, params["region_weights"])
    u_region = rng.normal(0.0, params["sigma_region"], size=len(regions)) if regions else np.zeros(0)
    u_site = rng.normal(0.0, params["sigma_site"], size=n_sites)
    x = _draw_predictors(rng, params["predictors"], n_sites, n_waves).reshape(n_sites, n_waves, -1)
    steps = rng.choice(gap_values, size=(n_sites, n_waves - 1))
    times = start + np.concatenate([np.zeros((n_sites, 1)), np.cumsum(steps, axis=1)], axis=1)
    effects = u_site + (u_region[site_region] if regions else 0.0)
    intercept = float(params["Intercept"]) if params["Intercept"] is not None else 0.0
    beta_vec = np.array([beta[name] for name in spec.coef_names])
    centre = np.array([spec.center[p] for p in numeric_predictors(spec)])
    outcome = get_family(family)
    previous = np.array([spec.state_levels[0]] * n_sites, dtype=object)
    gap = np.full(n_sites, float(spec.gaps["center"]))
    columns: list[dict[str, np.ndarray]] = []
    for wave in range(n_waves):
        # the first wave has no earlier scores: it uses its own
        at = wave - 1 if predictors_at == "previous" and wave > 0 else wave
        X = design_from_parts(spec, x[:, at, :] - centre, None, {"previous": previous, "gap": gap})
        with_effects = wave > 0 or initial_site_effect
        drawn = outcome.draw_outcome(rng, params, X @ beta_vec + intercept + (effects if with_effects else 0.0))
        columns.append(drawn)
        previous = np.asarray(drawn[spec.outcome], dtype=object)
        if wave + 1 < n_waves:
            gap = steps[:, wave]

    data: dict[str, Any] = {"site": np.repeat(np.asarray(sites, dtype=object), n_waves)}
    if regions:
        data["region"] = np.repeat(np.asarray(regions, dtype=object)[site_region], n_waves)
    data["time"] = times.ravel()
    data["wave"] = np.tile(np.arange(1, n_waves + 1), n_sites)
    for j, name in enumerate(params["predictors"]["names"]):
        data[name] = x[:, :, j].ravel()
    data[spec.outcome] = np.stack([c[spec.outcome] for c in columns], axis=1).ravel()
    df = pd.DataFrame(data)
    for col in ("site", "region"):
        if col in df:
            df[col] = df[col].astype(str)
    out = dict(params)
    out.update({
        "beta": beta,
        "site_effects": {s: float(u) for s, u in zip(sites, u_site, strict=True)},
        "region_effects": {r: float(u) for r, u in zip(regions, u_region, strict=True)},
        "spec": spec.to_dict(),
        "n_sites": n_sites, "n_waves": n_waves, "gaps": gap_values.tolist(), "start": float(start),
        "n_regions": n_regions, "seed": seed, "initial_site_effect": initial_site_effect,
    })
    return df, out
