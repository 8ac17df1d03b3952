"""Poisson family: a count of events (e.g. patients reached) per observation, log link with exposure.

``count ~ Poisson(exposure · exp(eta))``: the linear predictor is the log *rate per unit of
exposure* (``exposure = "<column>"`` in the spec, e.g. the catchment population, or weeks
observed), entering as the offset ``log(exposure)``; the intercept is the log rate of a site
at the centring values and each coefficient a log rate ratio. Planning reports the expected
count per ``rate_per`` units of exposure (``rate_per = 100000``: per 100,000 population), so a
new site's forecast is a rate and needs no exposure of its own.

The helpers here (checks, offset, rates, words) are shared with
:mod:`~mbct_bayes.families.negbinomial`, which adds an overdispersion parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from mbct_bayes._validate import _check_count, _err, _values
from mbct_bayes.errors import DataError
from mbct_bayes.families._base import Family, Split, fail, finite, refuse_levels, refuse_trials

if TYPE_CHECKING:
    from mbct_bayes.model.build import ModelData
    from mbct_bayes.spec import ModelSpec

NAME = "poisson"
DEFAULT_OUTCOME = "access"
#: Exposure column of simulated count data, and the range its values are drawn from (uniform,
#: whole numbers): catchment populations of 20,000 to 200,000.
SIMULATED_EXPOSURE = "population"
DEFAULT_EXPOSURE_RANGE = (20_000, 200_000)
#: Log rate per person of simulated data: about 30 per 100,000 population at mid-scale scores.
DEFAULT_LOG_RATE = math.log(30 / 100_000)
#: The intercept is a log rate per unit of exposure, far from 0 when the unit is small (one
#: person: log(30 / 100,000) = -8.1), so its default prior is wider than the event families'.
COUNT_INTERCEPT_PRIOR = {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 10.0}
#: Largest expected count a simulation draws from: the self-check's prior draws of a wide intercept
#: reach absurd rates (exp(30) per unit of exposure), which numpy's Poisson sampler refuses.
MAX_SIMULATED_MEAN = 1e9


# -- spec and data checks (shared with negbinomial) ----------------------------------------------
def configure(trials: str | None, levels: tuple[Any, ...] | None, family: str, source: str):
    refuse_trials(trials, family, source)
    refuse_levels(levels, family, source)
    return None, None


def configure_exposure(exposure: str | None, rate_per: Any, family: str, source: str):
    """``exposure`` (a column name or None) and ``rate_per`` (a number > 0, default 1)."""
    if exposure is not None and (not isinstance(exposure, str) or not exposure.strip()):
        raise fail(source, f"exposure must be a column name, got {exposure!r}")
    if rate_per is None:
        return exposure, 1.0
    if not finite(rate_per) or rate_per <= 0:
        raise fail(source, f"rate_per must be a number > 0 (e.g. 100000 for per 100,000), got {rate_per!r}")
    if exposure is None and float(rate_per) != 1.0:
        raise fail(source, "rate_per needs an exposure column (exposure = \"population\"); without one the rate is "
                           "per observation")
    return exposure, float(rate_per)


def outcome_columns(spec: ModelSpec) -> list[str]:
    return [spec.outcome] + ([spec.exposure] if spec.exposure else [])


def check_outcome(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    """Counts are whole numbers ≥ 0, not all 0; exposure a number > 0 on every row."""
    y = spec.outcome
    k = _check_count(df, y, source, "outcome")
    bad = k < 0
    if bad.any():
        raise _err(source, y, bad, f"{_values(df[y], bad)} negative; the outcome counts events (0, 1, 2, ...)")
    if (k == 0).all():
        raise _err(source, y, np.ones(len(df), bool), "every count is 0; a model of rates needs some events")
    df[y] = k
    if spec.exposure:
        df[spec.exposure] = check_exposure(df, spec.exposure, source)


def check_exposure(df: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """The exposure column as float, or a one-line DataError naming the column and rows."""
    raw = df[column]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise _err(source, column, missing, "missing exposure; every row needs its exposure (> 0), or drop the row")
    x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(x)
    if bad.any():
        raise _err(source, column, bad, f"{_values(raw, bad)} not a number; exposure must be a number > 0")
    bad = x <= 0
    if bad.any():
        raise _err(
            source, column, bad,
            f"{_values(raw, bad)} not > 0; exposure (e.g. population or time observed) must be positive",
        )
    return x


def outcome_splits(df: pd.DataFrame, spec: ModelSpec) -> Iterator[Split]:
    """None: a count model's rate is pinned by the sizes of the counts, so a predictor that puts
    every zero count below every positive one still has a finite maximum-likelihood effect."""
    return iter(())


def site_estimates(data: ModelData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per site: empirical log rate ``log((k + ½) / exposure)``, its Poisson variance ``1 / (k + ½)``
    and the information ``k`` (the expected count) about the site's log rate."""
    n_sites = len(data.site_labels)
    exposure = np.exp(data.offset) if data.offset is not None else np.ones(data.n_obs)
    k = np.bincount(data.site_idx, weights=data.y.astype(float), minlength=n_sites)
    total = np.bincount(data.site_idx, weights=exposure, minlength=n_sites)
    seen = total > 0
    k, total = k[seen], total[seen]
    return seen, np.log((k + 0.5) / total), 1.0 / (k + 0.5), k


def encode_outcome(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    return table[spec.outcome].to_numpy(dtype=np.int64)


def offset(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray | None:
    """``log(exposure)`` per row (a validated table), or ``None`` without an exposure column."""
    return np.log(table[spec.exposure].to_numpy(dtype=float)) if spec.exposure else None


def event_indicator(y: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return np.asarray(y, dtype=float)


def outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    k = df[spec.outcome].to_numpy()
    return {"events": int(k.sum()), "rows_with_none": int(np.sum(k == 0)), "rows_with_some": int(np.sum(k > 0))}


# -- planning: the expected rate per rate_per units of exposure ----------------------------------
def rate_unit(spec: ModelSpec) -> str:
    """``"100,000 population"``, ``"2 weeks"``, or ``"observation"`` without an exposure column."""
    if not spec.exposure:
        return "observation"
    per = float(spec.rate_per or 1.0)
    number = f"{int(per):,}" if per.is_integer() else f"{per:g}"
    return f"{number} {spec.exposure}"


def planned(eta: np.ndarray, params: Mapping[str, Any], spec: ModelSpec) -> np.ndarray:
    """Expected count per ``rate_per`` units of exposure: ``rate_per · exp(eta)``."""
    return float(spec.rate_per or 1.0) * np.exp(eta)


def planned_eta(q: np.ndarray, params: Mapping[str, Any], spec: ModelSpec) -> np.ndarray:
    """The linear predictor at which the expected rate per ``rate_per`` is ``q``: ``log(q / rate_per)``."""
    return np.log(np.asarray(q, dtype=float) / float(spec.rate_per or 1.0))


def planned_label(spec: ModelSpec) -> str:
    return f"expected {spec.outcome} per {rate_unit(spec)}"


def eta_words(spec: ModelSpec) -> str:
    """How eta relates to the count, for the report's formula."""
    unit = f"per unit of '{spec.exposure}'" if spec.exposure else "per observation"
    offset_words = f" + log('{spec.exposure}')" if spec.exposure else ""
    return (
        f"; E['{spec.outcome}'] = exp(eta{offset_words}): eta is the log rate {unit}, each coefficient a log "
        f"rate ratio; planning reports {planned_label(spec)}"
    )


def describe_outcome(spec: ModelSpec, data: ModelData) -> str:
    total = int(np.sum(data.y))
    exposure = float(np.exp(data.offset).sum()) if data.offset is not None else float(data.n_obs)
    rate = float(spec.rate_per or 1.0) * total / exposure if exposure > 0 else float("nan")
    return (
        f"{total} events over {data.n_obs} observations ({np.mean(data.y == 0):.0%} with none): "
        f"{rate:.3g} per {rate_unit(spec)} overall."
    )


def truth_defaults() -> dict[str, Any]:
    return {"Intercept": DEFAULT_LOG_RATE, "exposure": list(DEFAULT_EXPOSURE_RANGE)}


def resolve_truth(base: dict[str, Any], truth: Mapping[str, Any], trials: int | None) -> None:
    if not finite(base["Intercept"]):
        raise DataError(f"truth['Intercept'] must be a finite number, got {base['Intercept']!r}")
    low, high = truth.get("exposure", DEFAULT_EXPOSURE_RANGE)
    if not (finite(low) and finite(high) and 0 < low <= high):
        raise DataError(f"truth['exposure'] must be [low, high] with 0 < low <= high, got {[low, high]!r}")
    base["exposure"] = [low, high]


def draw_exposure(rng: np.random.Generator, params: Mapping[str, Any], size: int) -> np.ndarray:
    """Whole-number exposures, uniform over ``params["exposure"]`` (one per row)."""
    low, high = params["exposure"]
    return rng.integers(int(low), int(high), endpoint=True, size=size).astype(float)


# -- the Poisson likelihood ---------------------------------------------------------------------
def likelihood(eta, y, values: Mapping[str, np.ndarray], spec: ModelSpec) -> None:
    import pymc as pm  # deferred: PyMC is slow to import and only model building needs it
    import pytensor.tensor as pt  # deferred: pytensor compiles on import; only model building needs it

    pm.Poisson("obs", mu=pt.exp(eta), observed=y)


def log_likelihood(y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]) -> np.ndarray:
    """``y·eta − exp(eta) − log y!`` (eta including the offset)."""
    return y * eta - np.exp(eta) - gammaln(y + 1.0)


def draw_outcome(rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray) -> dict[str, np.ndarray]:
    exposure = draw_exposure(rng, params, eta.size)
    return {DEFAULT_OUTCOME: rng.poisson(exposure * np.exp(eta)).astype(np.int64), SIMULATED_EXPOSURE: exposure}


def simulated_mean(eta: np.ndarray) -> np.ndarray:
    """``exp(eta)`` capped at :data:`MAX_SIMULATED_MEAN` (numpy refuses larger Poisson means)."""
    return np.exp(np.minimum(eta, math.log(MAX_SIMULATED_MEAN)))


def draw_codes(rng: np.random.Generator, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]):
    return rng.poisson(simulated_mean(eta)).astype(np.int64)


def single_class(y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
    """Simulated data sets without any event (the outcome check refuses them)."""
    return (y == 0).all(axis=1)


def describe(spec: ModelSpec) -> str:
    exposure = f", offset log('{spec.exposure}')" if spec.exposure else ""
    return f"Poisson: '{spec.outcome}' is a count per observation; log link{exposure}."


#: Family fields shared by the two count families.
#: What the log score of a count model's evaluation baseline and of its saved forecasts score
#: (the two count families' ``log_score_of`` share them).
COUNT_BASELINE_SCORED = (
    "NegativeBinomial(y) with the training rows' rate per unit of exposure and their "
    "overdispersion (moments), so both forecasts carry between-site spread"
)
COUNT_SAVED_SCORES = {
    "model": "not scored: saved forecasts are scored as probabilities (score-forecasts); a count "
    "model's rates are scored by mbct-bayes evaluate",
    "baseline": "not scored (see model)",
}
COUNT_FIELDS: dict[str, Any] = dict(
    configure=configure,
    outcome_columns=outcome_columns,
    check_outcome=check_outcome,
    outcome_splits=outcome_splits,
    encode_outcome=encode_outcome,
    event_indicator=event_indicator,
    resolve_truth=resolve_truth,
    describe_outcome=describe_outcome,
    outcome_counts=outcome_counts,
    default_outcome=DEFAULT_OUTCOME,
    eta_label="log rate",
    formula_note=eta_words,
    single_class=single_class,
    configure_exposure=configure_exposure,
    offset=offset,
    planned=planned,
    planned_eta=planned_eta,
    planned_label=planned_label,
    planned_is_probability=False,
    counts_events=True,
    coefficient_scale="log rate ratios",
    eta_scale="log rate",
    ratio_name="rate ratio",
    ratio_abbreviation="RR",
    intercept_words="the log rate per unit of exposure",
    site_estimates=site_estimates,
)

FAMILY = Family(
    name=NAME,
    likelihood=likelihood,
    log_likelihood=log_likelihood,
    truth_defaults=truth_defaults,
    draw_outcome=draw_outcome,
    describe=describe,
    log_score_of={
        "evaluate": {
            "model": "predictive mixture: log mean over posterior draws of Poisson(y | exposure · rate_draw), "
            "each draw with its own new-site effect",
            "baseline": COUNT_BASELINE_SCORED,
        },
        "saved": COUNT_SAVED_SCORES,
    },
    draw_codes=draw_codes,
    default_priors={"Intercept": COUNT_INTERCEPT_PRIOR},
    **COUNT_FIELDS,
)
