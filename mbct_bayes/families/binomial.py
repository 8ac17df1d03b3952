"""Binomial family: k embedded units out of ``trials`` per observation, logit link."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import binom

from mbct_bayes._validate import _check_count, _err, _values
from mbct_bayes.errors import DataError
from mbct_bayes.families._base import (
    Family,
    Split,
    finite,
    percent,
    refuse_levels,
    stable_expit,
)

if TYPE_CHECKING:
    from mbct_bayes.model.build import ModelData
    from mbct_bayes.spec import ModelSpec

NAME = "binomial"
#: Trials per observation in simulated data unless the truth says otherwise.
DEFAULT_TRIALS = 8


def _trials(trials: np.ndarray | None) -> np.ndarray:
    """The per-row trials array; a binomial model's data always carry one (the spec has a trials column)."""
    if trials is None:
        raise ValueError("a binomial model needs the trials of each row, got none")
    return trials


def configure(trials: str | None, levels: tuple[Any, ...] | None, family: str, source: str):
    refuse_levels(levels, family, source)
    return trials or "trials", None


def outcome_columns(spec: ModelSpec) -> list[str]:
    return [spec.outcome, spec.trials_column]


def check_outcome(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    y = spec.outcome
    n = _check_count(df, spec.trials_column, source, "trials")
    bad = n < 1
    if bad.any():
        raise _err(
            source,
            spec.trials_column,
            bad,
            f"{_values(df[spec.trials_column], bad)} below 1; trials must be >= 1",
        )
    k = _check_count(df, y, source, "outcome")
    bad = k < 0
    if bad.any():
        raise _err(
            source,
            y,
            bad,
            f"{_values(df[y], bad)} negative; the outcome counts embedded units (0 to trials)",
        )
    bad = k > n
    if bad.any():
        raise _err(
            source,
            y,
            bad,
            f"{_values(df[y], bad)} more than {spec.trials_column!r} "
            f"({_values(pd.Series(n), bad, bare=True)}); k of n needs k <= n, fix the counts",
        )
    df[y] = k
    df[spec.trials_column] = n
    if (k == 0).all() or (k == n).all():
        which = "0 (none embedded)" if (k == 0).all() else "equal to trials (all embedded)"
        raise _err(
            source,
            y,
            np.ones(len(df), bool),
            f"every outcome is {which}; a model of P(embedded) needs both outcomes",
        )


def outcome_splits(df: pd.DataFrame, spec: ModelSpec) -> Iterator[Split]:
    """Rows with a failure (k < n) vs rows with a success (k > 0)."""
    k, n = df[spec.outcome].to_numpy(), df[spec.trials_column].to_numpy()
    yield f"{spec.outcome} = 0 from {spec.outcome} = {spec.trials_column}", k < n, k > 0


def encode_outcome(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    return table[spec.outcome].to_numpy(dtype=np.int64)


def likelihood(eta, y, values: Mapping[str, np.ndarray], spec: ModelSpec) -> None:
    import pymc as pm  # deferred: PyMC is slow to import and only model building needs it

    trials = pm.Data("trials", values["trials"])
    pm.Binomial("obs", n=trials, logit_p=eta, observed=y)


def log_likelihood(y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]) -> np.ndarray:
    """``log C(n, k) + k log p + (n − k) log(1 − p)`` with ``p = logit⁻¹ eta``."""
    return binom.logpmf(y, trials, expit(eta))


def event_indicator(y: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return np.asarray(y, dtype=float)


def truth_defaults() -> dict[str, Any]:
    return {"Intercept": -0.3, "trials": DEFAULT_TRIALS}


def resolve_truth(base: dict[str, Any], truth: Mapping[str, Any], trials: int | None) -> None:
    base["trials"] = int(truth.get("trials", DEFAULT_TRIALS)) if trials is None else trials
    if not finite(base["Intercept"]):
        raise DataError(f"truth['Intercept'] must be a finite number, got {base['Intercept']!r}")


def draw_outcome(rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray) -> dict[str, np.ndarray]:
    n = int(params["trials"])
    return {
        "embedded": rng.binomial(n, stable_expit(eta)).astype(np.int64),
        "trials": np.full(eta.shape, n),
    }


def draw_codes(rng: np.random.Generator, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]):
    return rng.binomial(_trials(trials)[None, :], expit(eta)).astype(np.int64)


def single_class(y: np.ndarray, trials: np.ndarray | None) -> np.ndarray:
    """No unit or every unit embedded."""
    return (y == 0).all(axis=1) | (y == _trials(trials)[None, :]).all(axis=1)


def outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    k, n = df[spec.outcome].to_numpy(), df[spec.trials_column].to_numpy()
    return {"embedded": int(k.sum()), "not_embedded": int((n - k).sum())}


def describe(spec: ModelSpec) -> str:
    return f"Binomial: '{spec.outcome}' successes out of '{spec.trials_column}' per observation; logit link."


def describe_outcome(spec: ModelSpec, data: ModelData) -> str:
    k, n = int(np.sum(data.y)), int(np.sum(_trials(data.trials)))
    return f"{k} of {n} units embedded ({percent(k / n if n else float('nan'))}) over {data.n_obs} observations."


FAMILY = Family(
    name=NAME,
    configure=configure,
    outcome_columns=outcome_columns,
    check_outcome=check_outcome,
    outcome_splits=outcome_splits,
    encode_outcome=encode_outcome,
    likelihood=likelihood,
    log_likelihood=log_likelihood,
    event_indicator=event_indicator,
    truth_defaults=truth_defaults,
    resolve_truth=resolve_truth,
    draw_outcome=draw_outcome,
    describe=describe,
    describe_outcome=describe_outcome,
    outcome_counts=outcome_counts,
    log_score_of={
        "evaluate": {
            "model": "predictive mixture: log mean over posterior draws of Binomial(k | n, p_draw), "
            "each draw with its own new-site effect",
            "baseline": "BetaBinomial(k | n) with the training rate and the training rows' "
            "intra-row correlation (ANOVA), so both forecasts carry between-site spread",
        },
        "saved": {
            "model": "plug-in: Binomial(k | n, p_mean); a saved p_mean has no spread, so this is not "
            "the log score of the model's predictive mixture (mbct-bayes evaluate scores that)",
            "baseline": "plug-in: Binomial(k | n, base rate)",
        },
    },
    counts_trials=True,
    draw_codes=draw_codes,
    single_class=single_class,
)
