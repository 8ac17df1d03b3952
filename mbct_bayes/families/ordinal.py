"""Ordinal family: ordered levels (default none < partial < embedded), cumulative logit.

``P(level <= k) = logit⁻¹(cutpoint_k − eta)``; the linear predictor has no intercept (the
cutpoints take its place) and P(embedded) is the probability of the top level.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from mbct_bayes._validate import _err, _plural, _warn, level_codes
from mbct_bayes.errors import DataError
from mbct_bayes.families._base import BASELINE_PSEUDO, Family, Split, fail, refuse_trials

if TYPE_CHECKING:
    import pandas as pd

    from mbct_bayes.model.build import ModelData
    from mbct_bayes.spec import ModelSpec

NAME = "ordinal"
DEFAULT_LEVELS = ("none", "partial", "embedded")
#: Cutpoints of simulated data unless the truth says otherwise (for DEFAULT_LEVELS).
DEFAULT_CUTPOINTS = (-0.8, 0.9)


def configure(trials: str | None, levels: tuple[Any, ...] | None, family: str, source: str):
    refuse_trials(trials, family, source)
    levels = tuple(levels) if levels is not None else DEFAULT_LEVELS
    if len(levels) < 3:
        raise fail(source, f"levels needs at least 3 ordered values (2 is bernoulli), got {list(levels)}")
    if len(set(map(str, levels))) != len(levels):
        raise fail(source, f"levels has duplicates: {list(levels)}")
    return None, levels


def outcome_columns(spec: ModelSpec) -> list[str]:
    return [spec.outcome]


def check_outcome(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    y = spec.outcome
    codes = level_codes(df[y], spec.ordinal_levels, source)
    seen = np.unique(codes)
    if len(seen) < 2:
        raise _err(
            source,
            y,
            np.ones(len(df), bool),
            f"every row has the same level {spec.ordinal_levels[seen[0]]!r}; an ordinal model "
            "needs at least 2 observed levels",
        )
    unseen = [str(lv) for i, lv in enumerate(spec.ordinal_levels) if i not in seen]
    if unseen:
        names = ", ".join(map(repr, unseen))
        _warn(
            f"{source}: column {y!r}: {_plural(unseen, 'level')} {names} never observed; "
            "its cutpoint rests on the prior"
        )


def outcome_splits(df: pd.DataFrame, spec: ModelSpec) -> Iterator[Split]:
    """For each cutpoint, the levels at or below it vs those above."""
    codes = level_codes(df[spec.outcome], spec.ordinal_levels, "observations")
    for j in range(len(spec.ordinal_levels) - 1):
        low, high = codes <= j, codes > j
        if low.any() and high.any():
            yield f"{spec.outcome} up to {spec.ordinal_levels[j]!r} from above it", low, high


def encode_outcome(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    return level_codes(table[spec.outcome], spec.ordinal_levels)


def coords(spec: ModelSpec) -> dict[str, list[str]]:
    return {
        "level": [str(v) for v in spec.ordinal_levels],
        "cutpoint": [f"{spec.ordinal_levels[k]}|{spec.ordinal_levels[k + 1]}" for k in range(len(spec.ordinal_levels) - 1)],
    }


def likelihood(eta, y, values: Mapping[str, np.ndarray], spec: ModelSpec) -> None:
    import pymc as pm  # deferred: PyMC is slow to import and only model building needs it
    from pymc.distributions.transforms import (
        ordered,  # deferred: PyMC takes seconds to import; only model building needs it
    )

    n_cut = len(spec.ordinal_levels) - 1
    cut_prior = {k: v for k, v in spec.prior_for("cutpoints").items() if k != "dist"}
    cutpoints = getattr(pm, spec.prior_for("cutpoints")["dist"])(
        "cutpoints",
        **cut_prior,
        dims="cutpoint",
        transform=ordered,
        initval=np.linspace(-1.0, 1.0, n_cut),
    )
    # compute_p=False: no per-observation probabilities in the trace (they also break data swaps)
    pm.OrderedLogistic("obs", eta=eta, cutpoints=cutpoints, observed=y, compute_p=False)


def cumulative_logit_probabilities(cutpoints: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Cumulative-logit level probabilities (S, n, K) from cutpoints (S, K-1) and eta (S, n)."""
    cum = expit(cutpoints[:, None, :] - eta[:, :, None])  # P(y <= k), k = 0..K-2
    lower = np.concatenate([np.zeros_like(cum[..., :1]), cum], axis=-1)
    upper = np.concatenate([cum, np.ones_like(cum[..., :1])], axis=-1)
    return np.clip(upper - lower, 0.0, 1.0)


def level_probabilities(eta: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    return cumulative_logit_probabilities(params["cutpoints"], eta)


def log_likelihood(y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]) -> np.ndarray:
    probs = cumulative_logit_probabilities(params["cutpoints"], eta)
    return np.log(np.take_along_axis(probs, y[None, :, None], axis=-1)[..., 0])


def event_logit(eta: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Logit of the top level: ``eta`` minus the last cutpoint (per draw)."""
    top = np.asarray(params["cutpoints"], dtype=float)[..., -1:]
    return eta - top


def event_indicator(y: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return (np.asarray(y) == spec.n_levels - 1).astype(float)


def truth_defaults() -> dict[str, Any]:
    return {"Intercept": None, "cutpoints": list(DEFAULT_CUTPOINTS), "levels": list(DEFAULT_LEVELS)}


def resolve_truth(base: dict[str, Any], truth: Mapping[str, Any], trials: int | None) -> None:
    for key in ("cutpoints", "levels"):
        if key in truth and truth[key] is not None:
            base[key] = copy.deepcopy(truth[key])
    cuts = [float(c) for c in base["cutpoints"]]
    n_cuts = len(base["levels"]) - 1
    if len(cuts) != n_cuts or any(b <= a for a, b in itertools.pairwise(cuts)):
        raise DataError(f"truth['cutpoints'] must be {n_cuts} strictly ascending numbers, got {cuts}")
    base["cutpoints"] = cuts
    base["Intercept"] = None


def draw_outcome(rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray) -> dict[str, np.ndarray]:
    # level = number of cutpoints the latent eta + logistic noise exceeds, which gives
    # P(level > k) = expit(eta - c_k)
    cuts = np.asarray(params["cutpoints"], dtype=float)
    latent = eta + rng.logistic(0.0, 1.0, size=eta.shape)
    code = (latent[:, None] > cuts[None, :]).sum(axis=1)
    return {"level": np.asarray(params["levels"], dtype=object)[code]}


def draw_codes(rng: np.random.Generator, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]):
    """Level codes: a uniform draw against the cumulative level probabilities."""
    cumulative = np.cumsum(cumulative_logit_probabilities(params["cutpoints"], eta), axis=-1)[..., :-1]
    return (rng.random(eta.shape)[..., None] > cumulative).sum(axis=-1).astype(np.int64)


def decode_outcome(codes: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return np.asarray(spec.ordinal_levels, dtype=object)[codes]


def fold_baseline(y: np.ndarray, row_fold: np.ndarray, k: int, trials: np.ndarray | None, n_levels: int) -> np.ndarray:
    """Each row's level shares among the other folds' rows, with Jeffreys pseudo-counts."""
    counts = np.zeros((k, n_levels))
    np.add.at(counts, (row_fold, y.astype(np.int64)), 1.0)
    train = counts.sum(axis=0)[None, :] - counts + BASELINE_PSEUDO
    shares = train / train.sum(axis=1, keepdims=True)
    return shares[row_fold]


def outcome_counts(df: pd.DataFrame, spec: ModelSpec) -> dict[str, int]:
    codes = level_codes(df[spec.outcome], spec.ordinal_levels)
    return {str(level): int(np.sum(codes == i)) for i, level in enumerate(spec.ordinal_levels)}


def describe(spec: ModelSpec) -> str:
    levels = " < ".join(str(v) for v in spec.ordinal_levels)
    return (f"Ordinal (cumulative logit) on '{spec.outcome}' with levels {levels}; "
            f"P(embedded) is the probability of the top level, '{spec.ordinal_levels[-1]}'.")


def describe_outcome(spec: ModelSpec, data: ModelData) -> str:
    counts = np.bincount(np.asarray(data.y, dtype=np.int64), minlength=spec.n_levels)
    parts = ", ".join(f"{lv}: {c}" for lv, c in zip(spec.ordinal_levels, counts, strict=True))
    return f"Observations per level — {parts}."


def formula_note(spec: ModelSpec) -> str:
    return ";   P(level ≤ k) = logit⁻¹(cutpoint_k − η)"


FAMILY = Family(
    name=NAME,
    default_outcome="level",
    intercept=False,
    parameters=("cutpoints",),
    default_priors={"cutpoints": {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 2.5}},
    configure=configure,
    outcome_columns=outcome_columns,
    check_outcome=check_outcome,
    outcome_splits=outcome_splits,
    encode_outcome=encode_outcome,
    coords=coords,
    likelihood=likelihood,
    log_likelihood=log_likelihood,
    event_logit=event_logit,
    level_probabilities=level_probabilities,
    event_indicator=event_indicator,
    truth_defaults=truth_defaults,
    resolve_truth=resolve_truth,
    draw_outcome=draw_outcome,
    describe=describe,
    describe_outcome=describe_outcome,
    outcome_counts=outcome_counts,
    eta_label="η",
    formula_note=formula_note,
    log_score_of={
        "evaluate": {
            "model": "predictive distribution: mean level probabilities over posterior draws, which "
            "are the whole predictive of one ordinal outcome",
            "baseline": "training level shares",
        },
        "saved": {
            "model": "predictive distribution: the p_<level> columns, the whole predictive of one level",
            "baseline": "level shares",
        },
    },
    ordered_levels=True,
    draw_codes=draw_codes,
    decode_outcome=decode_outcome,
    fold_baseline=fold_baseline,
    state_levels=lambda spec: spec.ordinal_levels,
)
