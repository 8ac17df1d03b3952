"""Bernoulli family: a 0/1 outcome per observation, logit link."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mbct_bayes._validate import _check_count, _err, _values
from mbct_bayes.errors import DataError
from mbct_bayes.families._base import (
    Family,
    Split,
    finite,
    percent,
    refuse_levels,
    refuse_trials,
    stable_expit,
)

if TYPE_CHECKING:
    import pandas as pd

    from mbct_bayes.model.build import ModelData
    from mbct_bayes.spec import ModelSpec

NAME = "bernoulli"


def configure(trials: str | None, levels: tuple[Any, ...] | None, family: str, source: str):
    refuse_trials(trials, family, source)
    refuse_levels(levels, family, source)
    return None, None


def outcome_columns(spec: ModelSpec) -> list[str]:
    return [spec.outcome]


def check_outcome(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    y = spec.outcome
    k = _check_count(df, y, source, "outcome")
    bad = (k != 0) & (k != 1)
    if bad.any():
        raise _err(
            source,
            y,
            bad,
            f"{_values(df[y], bad)} not 0 or 1; a bernoulli outcome is 0/1 (for k of n "
            'use family = "binomial" with a trials column, for ordered categories '
            'family = "ordinal")',
        )
    df[y] = k
    if k.min() == k.max():
        raise _err(
            source,
            y,
            np.ones(len(df), bool),
            f"every outcome is {k[0]}; a model of P(embedded) needs both 0s and 1s",
        )


def outcome_splits(df: pd.DataFrame, spec: ModelSpec) -> Iterator[Split]:
    values = df[spec.outcome].to_numpy()
    yield f"{spec.outcome} = 0 from 1", values == 0, values == 1


def encode_outcome(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    return table[spec.outcome].to_numpy(dtype=np.int64)


def likelihood(eta, y, values: Mapping[str, np.ndarray], spec: ModelSpec) -> None:
    bernoulli_logit("obs", eta, y)


def bernoulli_logit(name: str, eta, y):
    """Bernoulli(logit⁻¹ eta) written as ``y·eta − softplus(eta)``.

    The same density as ``pm.Bernoulli(logit_p=eta)``, with a cheaper gradient graph: about half
    the cost per gradient at 8,000 rows (benchmarks/RESULTS_fit.md).
    """
    import pymc as pm  # deferred: PyMC is slow to import and only model building needs it
    import pytensor.tensor as pt  # deferred: pytensor compiles on import; only model building needs it

    def logp(value, eta):
        return value * eta - pt.softplus(eta)

    def random(eta, rng=None, size=None):
        return rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)), size=size)

    return pm.CustomDist(name, eta, logp=logp, random=random, observed=y, dtype="int64")


def log_likelihood(y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]) -> np.ndarray:
    # log expit(eta) = -log1p(exp(-eta)), written stably
    return -np.logaddexp(0.0, np.where(y == 1, -eta, eta))


def event_indicator(y: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return np.asarray(y, dtype=float)


def truth_defaults() -> dict[str, Any]:
    return {"Intercept": -0.3}


def resolve_truth(base: dict[str, Any], truth: Mapping[str, Any], trials: int | None) -> None:
    if not finite(base["Intercept"]):
        raise DataError(f"truth['Intercept'] must be a finite number, got {base['Intercept']!r}")


def draw_outcome(rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray) -> dict[str, np.ndarray]:
    return {"embedded": (rng.random(eta.shape) < stable_expit(eta)).astype(np.int64)}


def outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    k = df[spec.outcome].to_numpy()
    return {"0": int(np.sum(k == 0)), "1": int(np.sum(k == 1))}


def describe(spec: ModelSpec) -> str:
    return f"Bernoulli: '{spec.outcome}' is 0/1 per observation; logit link."


def describe_outcome(spec: ModelSpec, data: ModelData) -> str:
    k, n = int(np.sum(data.y)), data.n_obs
    return f"'{spec.outcome}' = 1 in {k} of {n} observations ({percent(k / n if n else float('nan'))})."


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
    state_levels=lambda spec: (0, 1),
    log_score_of={
        "evaluate": {
            "model": "predictive distribution: Bernoulli(mean p over posterior draws), which is the "
            "whole predictive of a 0/1 outcome",
            "baseline": "Bernoulli(training rate)",
        },
        "saved": {
            "model": "predictive distribution: Bernoulli(p_mean), the whole predictive of a 0/1 outcome",
            "baseline": "Bernoulli(base rate)",
        },
    },
)
