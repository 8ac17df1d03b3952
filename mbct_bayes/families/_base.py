"""What a family is: the functions that make one outcome type a model, a forecast and a simulation.

A :class:`Family` is a frozen record of plain functions (no class hierarchy): each family module
(:mod:`~mbct_bayes.families.bernoulli`, :mod:`~mbct_bayes.families.binomial`,
:mod:`~mbct_bayes.families.ordinal`) builds one and registers it in :mod:`mbct_bayes.families`.
Code outside ``families/`` asks the family object and never tests the family's name.

Shapes used below: ``S`` posterior draws (or 1), ``n`` observations, ``K`` outcome levels (2 for
a 0/1 event). ``params`` is a mapping with the family's own parameters, either posterior draws
(``params["cutpoints"]`` of shape (S, K-1)) or one set of true values (shape (K-1,)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit, logit

from mbct_bayes.errors import DataError

if TYPE_CHECKING:  # types only: spec imports the families
    import pandas as pd

    from mbct_bayes.model.build import ModelData
    from mbct_bayes.spec import ModelSpec


def binary_level_probabilities(eta: np.ndarray) -> np.ndarray:
    """(S, n, 2): P(no event), P(event) of one trial under a logit link."""
    p = expit(eta)
    return np.stack([1.0 - p, p], axis=-1)


def bernoulli_codes(rng: np.random.Generator, eta: np.ndarray) -> np.ndarray:
    """One 0/1 outcome per entry of ``eta`` (logit link)."""
    return (rng.random(eta.shape) < expit(eta)).astype(np.int64)


#: Pseudo-count per outcome class of the intercept-only baseline (Jeffreys, Beta(½, ½)): the
#: posterior-mean base rate of the training folds, never exactly 0 or 1.
BASELINE_PSEUDO = 0.5


def fold_base_rate(y: np.ndarray, row_fold: np.ndarray, k: int, trials: np.ndarray | None) -> np.ndarray:
    """Each row's rate of events among the other folds' rows (units), with Jeffreys pseudo-counts."""
    n = trials.astype(float) if trials is not None else np.ones(y.size)
    k_fold = np.bincount(row_fold, weights=y.astype(float), minlength=k)
    n_fold = np.bincount(row_fold, weights=n, minlength=k)
    rate = (k_fold.sum() - k_fold + BASELINE_PSEUDO) / (n_fold.sum() - n_fold + 2 * BASELINE_PSEUDO)
    return rate[row_fold]


#: One binary split of the outcome a predictor could separate: (label, low rows, high rows).
Split = tuple[str, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Family:
    """One outcome family: everything the package does differently per outcome type.

    Attributes
    ----------
    name
        The spec's ``family`` value (``"bernoulli"``, ...).
    default_outcome
        Outcome column when the spec names none.
    intercept
        Whether the linear predictor has an ``Intercept`` (ordinal: no, its cutpoints take its place).
    parameters
        The family's own parameters (e.g. ``("cutpoints",)``), named in ``[priors]``.
    default_priors
        Default prior of each of ``parameters``.
    configure
        ``(trials, levels, family_name, source) -> (trials, levels)``: the spec's ``trials`` and
        ``levels`` checked and defaulted; raises :class:`DataError` for one the family does not take.
    outcome_columns
        ``(spec) -> columns`` the observations need for the outcome (outcome, trials).
    check_outcome
        ``(table, spec, source)``: validate the outcome columns in place (counts as int64), raising
        a one-line :class:`DataError` or warning :class:`~mbct_bayes.schema.DataWarning`.
    outcome_splits
        ``(table, spec) -> splits``: binary splits a predictor could separate completely.
    encode_outcome
        ``(table, spec) -> y``: the outcome as int64 (0/1, successes or level codes).
    coords
        ``(spec) -> dict``: the family's model dims (e.g. ``level``, ``cutpoint``).
    likelihood
        ``(eta, y, values, spec)``: add the observed ``obs`` (and the family's parameters) to the
        PyMC model under construction; ``values`` are the ``pm.Data`` values by name.
    log_likelihood
        ``(y, eta, trials, params) -> (S, n)``: the pointwise log-likelihood in numpy, equal to
        PyMC's ``obs`` log-likelihood.
    event_logit
        ``(eta, params) -> logit P(embedded)`` (same shape as ``eta``): the top level for ordinal.
    level_probabilities
        ``(eta, params) -> (S, n, K)``: probability of each outcome level per trial.
    event_indicator
        ``(y, spec) -> (n,)`` float: the events in each observation (0/1; a binomial row's
        count of events; for ordinal whether the outcome is the top level).
    truth_defaults
        ``() -> dict``: the family's own generating parameters for :mod:`mbct_bayes.model.simulate`.
    resolve_truth
        ``(base, truth, trials)``: complete and check ``base`` (in place) from a user's ``truth``.
    draw_outcome
        ``(rng, params, eta) -> columns``: simulated outcome columns for linear predictors ``eta``.
    describe
        ``(spec) -> str``: one sentence naming the likelihood and link, for the report.
    describe_outcome
        ``(spec, data) -> str``: what the fitted outcome looks like, for the report.
    log_score_of
        What the log score of a forecast of this family scores: ``{"evaluate": {"model": ...,
        "baseline": ...}, "saved": {...}}`` for cross-validation and for saved forecasts.
    outcome_counts
        ``(table, spec) -> {value: count}``: how often each outcome occurs in a validated table.
    counts_trials
        Rows are k events of n trials (a ``trials`` column; forecasts score per unit).
    ordered_levels
        The outcome is one of K ordered levels and its forecast a row of K level probabilities.
    counts_events
        The outcome is an unbounded count of events (with an exposure): its forecasts are rates,
        scored by the log score of the predictive mixture against an intercept-only rate baseline.
    draw_codes
        ``(rng, eta, trials, params) -> (S, n)`` int64: one simulated outcome per draw and row,
        as encoded by ``encode_outcome`` (for the calibration check).
    single_class
        ``(y, trials) -> (S,)`` bool: simulated data sets the outcome check would refuse as one class.
    decode_outcome
        ``(codes, spec) -> values``: encoded outcomes back to the table's values.
    fold_baseline
        ``(y, row_fold, k, trials, n_levels) -> forecasts``: the intercept-only forecast of each
        row from its fold's training rows (rates, or level shares for ordered levels).
    configure_exposure
        ``(exposure, rate_per, family_name, source) -> (exposure, rate_per)``: the spec's
        ``exposure`` and ``rate_per`` checked and defaulted (families without exposure refuse them).
    offset
        ``(table, spec) -> (n,) or None``: the known part of each row's linear predictor
        (``log(exposure)`` for counts), added to eta on the fitted rows; ``None`` for no offset.
    planned
        ``(eta, params, spec) -> (S, n)`` or ``None``: the quantity planning reports for linear
        predictors ``eta`` of *new* rows (no offset). ``None`` means P(embedded), ``expit(event_logit)``;
        counts give the expected rate per ``spec.rate_per`` units of exposure. Call
        :meth:`Family.planned_quantity`, which applies the default.
    planned_eta
        ``(q, params, spec) -> (S, 1)`` or ``None``: the linear predictor at which the planned
        quantity equals ``q`` (the inverse of ``planned``; it increases with eta). Call
        :meth:`Family.eta_reaching`.
    planned_label
        ``(spec) -> str``: what the planned quantity is, in words (``"P(embedded)"``,
        ``"expected access per 100,000 population"``).
    site_estimates
        ``(data) -> (seen, estimates, sampling_var, information)`` or ``None``: per site with data
        (``seen``, a mask over sites) a raw estimate of its effect on the eta scale, its sampling
        variance and its Fisher information, for choosing the site-effect parametrization
        (:func:`mbct_bayes.model.build.site_information`); ``None``: empirical logits of events.
    coefficient_scale, eta_scale, ratio_name, ratio_abbreviation
        What coefficients are (``"log-odds"``, ``"log rate ratios"``), the scale of eta and of the
        site effects (``"log-odds"``, ``"log rate"``) and a coefficient's exponential
        (``"odds ratio"``/``"OR"``, ``"rate ratio"``/``"RR"``), for summaries and the report.
    intercept_words
        What the intercept is at the centring values (``"the log-odds of embedding"``).
    planned_is_probability
        Whether the planned quantity is a probability (shown as a share, targets in (0, 1)) or a
        non-negative rate.
    eta_label
        What the linear predictor is, on the left of the report's formula.
    formula_note
        ``(spec) -> str``: text appended to the report's formula (how eta gives the outcome).
    state_levels
        ``(spec) -> levels``: the states a site can be in at a wave, lowest first, in the outcome's
        own values (a transition model's previous state, :mod:`mbct_bayes.model.panel`); ``None``
        for a family whose outcome is not a state (no transition models).
    """

    name: str
    configure: Callable[[str | None, tuple[Any, ...] | None, str, str], tuple[str | None, tuple[Any, ...] | None]]
    outcome_columns: Callable[[ModelSpec], list[str]]
    check_outcome: Callable[[pd.DataFrame, ModelSpec, str], None]
    outcome_splits: Callable[[pd.DataFrame, ModelSpec], Iterator[Split]]
    encode_outcome: Callable[[pd.DataFrame, ModelSpec], np.ndarray]
    likelihood: Callable[[Any, Any, Mapping[str, np.ndarray], ModelSpec], None]
    log_likelihood: Callable[[np.ndarray, np.ndarray, np.ndarray | None, Mapping[str, Any]], np.ndarray]
    event_indicator: Callable[[np.ndarray, ModelSpec], np.ndarray]
    truth_defaults: Callable[[], dict[str, Any]]
    resolve_truth: Callable[[dict[str, Any], Mapping[str, Any], int | None], None]
    draw_outcome: Callable[[np.random.Generator, Mapping[str, Any], np.ndarray], dict[str, np.ndarray]]
    describe: Callable[[ModelSpec], str]
    describe_outcome: Callable[[ModelSpec, ModelData], str]
    log_score_of: Mapping[str, Mapping[str, str]]
    outcome_counts: Callable[[pd.DataFrame, ModelSpec], dict[str, int]]
    # defaults: a 0/1 event per trial with a logit link and an intercept
    counts_trials: bool = False
    ordered_levels: bool = False
    counts_events: bool = False
    default_outcome: str = "embedded"
    intercept: bool = True
    parameters: tuple[str, ...] = ()
    default_priors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    coords: Callable[[ModelSpec], dict[str, list[str]]] = field(default=lambda spec: {})
    event_logit: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray] = field(default=lambda eta, params: eta)
    level_probabilities: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray] = field(
        default=lambda eta, params: binary_level_probabilities(eta)
    )
    eta_label: str = "logit P(embedded)"
    formula_note: Callable[[ModelSpec], str] = field(default=lambda spec: "")
    draw_codes: Callable[[np.random.Generator, np.ndarray, np.ndarray | None, Mapping[str, Any]], np.ndarray] = field(
        default=lambda rng, eta, trials, params: bernoulli_codes(rng, eta)
    )
    single_class: Callable[[np.ndarray, np.ndarray | None], np.ndarray] = field(
        default=lambda y, trials: (y == y[:, :1]).all(axis=1)
    )
    decode_outcome: Callable[[np.ndarray, ModelSpec], np.ndarray] = field(default=lambda codes, spec: codes)
    fold_baseline: Callable[[np.ndarray, np.ndarray, int, np.ndarray | None, int], np.ndarray] = field(
        default=lambda y, row_fold, k, trials, n_levels: fold_base_rate(y, row_fold, k, trials)
    )
    state_levels: Callable[[ModelSpec], tuple[Any, ...]] | None = None
    configure_exposure: Callable[[str | None, float | None, str, str], tuple[str | None, float | None]] = field(
        default=lambda exposure, rate_per, family, source: refuse_exposure(exposure, rate_per, family, source)
    )
    offset: Callable[[pd.DataFrame, ModelSpec], np.ndarray | None] = field(default=lambda table, spec: None)
    planned: Callable[[np.ndarray, Mapping[str, Any], ModelSpec], np.ndarray] | None = None
    planned_eta: Callable[[np.ndarray, Mapping[str, Any], ModelSpec], np.ndarray] | None = None
    planned_label: Callable[[ModelSpec], str] = field(default=lambda spec: "P(embedded)")
    planned_is_probability: bool = True
    coefficient_scale: str = "log-odds"
    eta_scale: str = "log-odds"
    ratio_name: str = "odds ratio"
    ratio_abbreviation: str = "OR"
    intercept_words: str = "the log-odds of embedding"
    site_estimates: Callable[[ModelData], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None

    def planned_quantity(self, eta: np.ndarray, params: Mapping[str, Any], spec: ModelSpec) -> np.ndarray:
        """What planning reports for linear predictors ``eta``: P(embedded), or a count family's rate."""
        if self.planned is None:
            return expit(self.event_logit(eta, params))
        return self.planned(eta, params, spec)

    def eta_reaching(self, q: float, params: Mapping[str, Any], spec: ModelSpec, n_draws: int) -> np.ndarray:
        """Per-draw linear predictor (S, 1) at which the planned quantity equals ``q``."""
        t = np.full((n_draws, 1), float(q))
        if self.planned_eta is None:
            # the event logit is eta minus an offset (ordinal: the top cutpoint); add it back
            return logit(t) - self.event_logit(np.zeros_like(t), params)
        return self.planned_eta(t, params, spec)


# -- small pieces shared by the families -------------------------------------------------------


def fail(source: str, message: str) -> DataError:
    """A :class:`DataError` prefixed with its source (the spec file), as the spec writes them."""
    return DataError(f"{source}: {message}" if source else message)


def refuse_trials(trials: str | None, family: str, source: str) -> None:
    """Refuse a ``trials`` column for a family that has no trials."""
    if trials is not None:
        raise fail(source, f"'trials' is only for family = \"binomial\", not {family!r}; remove it")


def refuse_exposure(exposure: str | None, rate_per: float | None, family: str, source: str) -> tuple[None, None]:
    """Refuse ``exposure`` and ``rate_per`` for a family of events (they are for count families)."""
    for key, value in (("exposure", exposure), ("rate_per", rate_per)):
        if value is not None:
            raise fail(source, f"{key!r} is only for count families (poisson, negbinomial), not {family!r}; remove it")
    return None, None


def refuse_levels(levels: tuple[Any, ...] | None, family: str, source: str) -> None:
    """Refuse ``levels`` for a family without ordered levels."""
    if levels is not None:
        raise fail(source, f"'levels' is only for family = \"ordinal\", not {family!r}; remove it")


def stable_expit(z: np.ndarray) -> np.ndarray:
    """Logistic function written with tanh (no overflow); the simulations' inverse link."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def finite(value: Any) -> bool:
    """A real number (not a bool), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def percent(x: float) -> str:
    """``"42%"``, or a dash for a missing rate."""
    return "–" if not math.isfinite(float(x)) else f"{100 * float(x):.0f}%"
