"""Simulation-based calibration (SBC) of a model spec at a study's design.

:func:`check` asks: *if the world worked exactly as this spec's priors say, would fitting this
model to a study of this design give posteriors that are calibrated?* It draws ``reps`` parameter
sets from the spec's priors, simulates an outcome for every row of the observations table given
as the design (its sites, regions, trials and E, C, F are kept; only the outcome is replaced; a
latent model's respondents are simulated too, below), refits the model to each simulated data set
and records where the true value falls among the posterior draws (its rank). When sampler and model are right, each parameter's ranks are uniform
(Talts et al. 2018); a slope or a U, hump or step in their ECDF shows bias, over- or
under-dispersion.

Panels
    With a ``time`` column the design's sites, times (so its gaps) and each wave's E, C, F are
    kept. A time-trend model (``time_trend = true``) simulates every row from the drawn trend,
    site slopes and their correlation with the intercepts. A transition model (``dynamics =
    "transition"``) is simulated forward, as :func:`mbct_bayes.model.simulate.simulate_panel`
    does: each site's first wave keeps the design's own state (the model conditions on it and
    does not model it) and every later wave is drawn given the state simulated at the wave
    before (:func:`simulate_panel_outcomes`), so the ``previous[...]`` columns the refit sees
    come from the drawn parameters. Its default coefficient prior widths are fixed at the
    design's (:func:`pinned_priors`), because its ``previous[...]`` columns are the outcome
    itself.
Latent measurement (``measurement = "latent"``)
    The design then includes the respondents (``responses=``, as the fit takes them: each
    respondent's site and role and which constructs they scored). Each prior draw is of *all*
    the model's parameters, from the spec's own PyMC model built with the respondents' scores
    left out, so its true site scores are draws of the latent population (``latent_mean``,
    ``latent_sd``, the LKJ correlations) and not their conditional given the user's scores; the
    respondents' scores are then simulated from those true scores, the role offsets and
    ``sigma_measure`` (:func:`simulate_scores`), the outcomes from the true scores
    (:func:`mbct_bayes.model.predictor.rows_eta`). Simulated scores are Normal, as the model says,
    so they are not held to the scale's bounds (real scores are): the check tests the model as
    written. Ranked in addition: ``latent_mean[p]``, ``latent_sd[p]``, ``sigma_measure[p]``,
    ``latent_corr[p,q]`` and ``role_offset[p,role]``
    (:func:`mbct_bayes.model.predictor.measurement_draws`).

What is reported, per parameter (the intercept, each coefficient, ``sigma_site``,
``sigma_region`` with regions, each cutpoint for ordinal models, a latent model's measurement
parameters):

* **Rank-uniformity test**: a chi-square test of the ranks in ``B`` equal bins (``B`` the largest
  divisor of ``L + 1`` that keeps at least 5 expected ranks per bin, at most 20). **Multiplicity
  rule**: Bonferroni across the ``m`` parameters at a family-wise level of 0.01, so a parameter
  fails when its p-value is below ``0.01 / m``; the check passes when no parameter fails.
* **ECDF difference with simultaneous bands** (Säilynoja, Bürkner & Vehtari 2022): the ranks as
  randomised PIT values ``(rank + U) / (L + 1)``; the bands come from
  :func:`arviz_stats.ecdf_utils.ecdf_pit` (the simulation method of that paper) at the same
  level as the test, ``1 - 0.01 / m`` (:func:`mbct_bayes.plots.selfcheck.ecdf_difference`).
  Time-trend models add ``time``, ``sigma_slope`` and ``corr_site_slope``; transition models
  ``previous[<level>]`` and, with unequal gaps, ``gap`` and ``gap:previous[<level>]``.
* **Coverage** of the central 50% and 90% posterior intervals (from all draws, not thinned).

And over all refits: the number of **divergent fits** (at least one divergent transition), fits
whose smallest bulk ESS was below ``L`` (then the thinned draws may still be autocorrelated, which
makes ranks pile up in the middle or tails), and the **degenerate share**.

Ranks
    Each posterior is thinned to ``L`` (default 99) draws spread evenly over all chains, which
    removes the autocorrelation that would otherwise make even a correct sampler's ranks
    non-uniform when ``S / L`` is at least the autocorrelation time (``S / ESS``). Rank =
    the number of thinned draws below the true value, 0..L.

Degenerate data sets
    The default intercept prior puts real mass on P(embedded) near 0 or 1, so some simulated
    studies have every outcome 0, every outcome 1 (binomial: none or all embedded) or, for
    ordinal models, one level only (for a transition model: among the modelled waves, all but
    each site's first). The package refuses to fit such data
    (:func:`mbct_bayes.schema.validate_observations`), so these data sets are **counted and not
    refitted**. The ranks of the others condition on the data set being non-degenerate; a
    parameter that drives degeneracy (the intercept) is then checked against a prior truncated
    to the non-degenerate region, which the fit itself cannot know about. With a degenerate share
    of a few percent this conditioning is small; a large share is itself a finding about the
    priors (they expect studies that cannot be analysed) and is reported, not hidden.

Compile once, refit many
    The refits reuse the cross-validation machinery of :mod:`mbct_bayes.forecast.crossval`: the
    model is compiled once per process (the one cache of :mod:`mbct_bayes.model.sampling`), each
    simulated data set is swapped into it, and refits overlap on threads, run on local processes
    (``n_jobs``) or on a Dask cluster (``scheduler``), all through :func:`mbct_bayes.runtime.run`.

Why not simuk
    ``simuk`` (arviz-devs) runs SBC for PyMC models, but it calls ``pm.sample`` on a re-observed
    model for each simulation, one after another, so every refit compiles again, with no process
    or Dask parallelism; it does not know the package's design (sites, regions, trials kept from
    an observations table), cannot skip data sets the schema refuses, and ranks ordinal
    cutpoints drawn by forward sampling, which ignores their ordering transform (the cutpoints of
    a prior draw come out unsorted). Here the prior draws come from the spec's own PyMC model
    (:func:`pymc.sample_prior_predictive`; cutpoints sorted, which is exactly the ordered prior the
    fit uses: i.i.d. draws sorted have density proportional to the product of the marginals on
    the ordered region), and the outcome is simulated in numpy with the prediction module's
    kernels.

Same seed, same numbers: the prior draws, the outcomes and each refit's sampler seed come from
``np.random.SeedSequence(seed)``, so results do not depend on how refits are spread over threads,
processes or machines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chisquare

from mbct_bayes import runtime
from mbct_bayes.errors import ConvergenceWarning, DataError
from mbct_bayes.families import get_family
from mbct_bayes.forecast.crossval import _compiled_for, _Problem, concurrent_folds
from mbct_bayes.forecast.journey import sample_paths
from mbct_bayes.io import check_output_dir, write_atomic, write_json, write_table
from mbct_bayes.model.build import (
    ModelData,
    build_model,
    choose_centered,
    coefficient_priors,
    outcome_array,
    prepare_data,
    with_fixed_intercept_prior,
)
from mbct_bayes.model.design import design_matrix, resolve
from mbct_bayes.model.fit import available_sampler, posterior_arrays, validated_inputs
from mbct_bayes.model.panel import PREVIOUS, lagged_rows
from mbct_bayes.model.predictor import fixed_part, measurement_draws, own_effects, parameter_draws, rows_eta
from mbct_bayes.model.sampling import SamplerSettings, sampler_settings
from mbct_bayes.schema import DataWarning, read_table
from mbct_bayes.spec import ModelSpec

#: Posterior draws each rank is taken among (after thinning): ranks run 0..RANK_DRAWS.
RANK_DRAWS = 99
#: Family-wise level of the rank-uniformity tests (Bonferroni over parameters).
FAMILY_ALPHA = 0.01
#: Fewer simulated data sets than this cannot test uniformity.
MIN_REPS = 10
#: Central posterior intervals whose coverage is reported.
COVERAGE_LEVELS = (0.5, 0.9)
MAX_BINS = 20
MIN_EXPECTED_PER_BIN = 5
#: Sampler settings of each refit unless told otherwise (fewer draws than a fit: ranks need 99).
CHECK_SAMPLER = SamplerSettings(draws=500, tune=500)


# -- parameters and their draws ----------------------------------------------------------------
def prior_draws(
    table: pd.DataFrame, spec: ModelSpec, reps: int, seed: int, responses: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """``reps`` draws of every parameter and group effect from the spec's priors at this design.

    Drawn by forward sampling the spec's own PyMC model (so the priors are the fitted ones,
    including the default coefficient scales from the design's predictor spread); ordinal
    cutpoints are sorted, which turns forward sampling's i.i.d. draws into the ordered prior.

    A latent model (``responses``: the validated respondent scores whose design is kept) is built
    with its respondents' scores left out (``_without_scores``): the graph's true scores are
    then ``latent_mean + L ζ`` and its site effects ``sigma_site ζ_0`` with ``ζ ~ Normal(0, I)``,
    i.e. draws of the latent population and of the site effects themselves (with the scores in,
    the graph's ``latent`` would be their conditional given the user's scores, not the prior).
    """
    import pymc as pm  # deferred: PyMC takes seconds to import; only model building needs it

    data = prepare_data(table, spec, responses=responses)
    model = build_model(_without_scores(data) if spec.measurement == "latent" else data, spec)
    names = [v.name for v in model.free_RVs] + [d.name for d in model.deterministics]
    with warnings.catch_warnings():
        # the latent model's one potential is its scores' likelihood: with no scores it is 0 exactly
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        idata = pm.sample_prior_predictive(
            draws=reps, model=model, var_names=names, random_seed=seed, compile_kwargs={"mode": "FAST_COMPILE"}
        )
    arrays = posterior_arrays({"posterior": idata["prior"]})
    if "cutpoints" in arrays:
        arrays["cutpoints"] = np.sort(arrays["cutpoints"], axis=1)
    return arrays


def _without_scores(data: ModelData) -> ModelData:
    """``data`` with no respondent score (a latent model's sites, roles and rows kept)."""
    none = np.zeros(0, dtype=np.int64)
    return dataclasses.replace(
        data, resp_value=np.zeros(0), resp_site=none, resp_pred=none,
        resp_role=None if data.resp_role is None else none,
    )


def simulate_outcomes(
    spec: ModelSpec,
    table: pd.DataFrame,
    draws: dict[str, np.ndarray],
    rng: np.random.Generator,
    responses: pd.DataFrame | None = None,
) -> np.ndarray:
    """One simulated outcome per row of ``table`` for each parameter draw: shape (reps, n).

    Bernoulli 0/1, binomial successes out of the row's trials, or ordinal level codes 0..K-1,
    from the fitted rows' linear predictor (:func:`mbct_bayes.model.predictor.rows_eta`: a latent
    model's from each draw's true site scores) and the family's level probabilities.
    """
    if spec.dynamics == "transition":
        return simulate_panel_outcomes(spec, table, draws, rng)
    data = prepare_data(table, spec, responses=responses)
    eta = rows_eta(draws, spec, data)
    return get_family(spec.family).draw_codes(rng, data.add_offset(eta), data.trials, draws)


def _modelled_positions(table: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A transition model's rows (:func:`~mbct_bayes.model.panel.lagged_rows`) and, for each, the panel
    positions of its own wave and of the site's previous wave.

    The positions come from ``lagged_rows`` itself, run on the panel with the outcome replaced by
    the row positions (it carries the previous wave's outcome into ``previous``), so the pairing
    of waves is the fitted model's own.
    """
    rows = lagged_rows(table.assign(**{spec.outcome: np.arange(len(table))}), spec)
    own = rows[spec.outcome].to_numpy(dtype=np.int64)
    before = rows[PREVIOUS].to_numpy(dtype=np.int64)
    return rows, own, before


def simulate_panel_outcomes(
    spec: ModelSpec, table: pd.DataFrame, draws: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Transition models: each site's states simulated forward from its first wave: (reps, n) codes.

    A site's first wave keeps the design's own state (the model conditions on it and does not
    model it). Every later wave is drawn given the state *simulated* at the site's previous wave,
    so the previous states of the refitted data come from the drawn parameters, as in
    :func:`mbct_bayes.model.simulate.simulate_panel`. The transition probabilities are those of
    the rows the model fits (:func:`~mbct_bayes.model.panel.lagged_rows`: E, C, F at the previous
    or current wave as the spec says, the design's own gaps and times), computed for every
    possible previous state through the one design matrix and the family's level probabilities
    (as the journey forecast does), and the paths are drawn by the forecast's inverse-CDF
    sampler (:func:`mbct_bayes.forecast.journey.sample_paths`).
    """
    family = get_family(spec.family)
    levels = spec.state_levels
    n_states = len(levels)
    rows, own, before = _modelled_positions(table, spec)
    n_rows = len(rows)
    data = prepare_data(table, spec)  # the same rows in the same order: site, region and time effects
    # every modelled row once per possible previous state (row-major: row, then state)
    expanded = rows.iloc[np.repeat(np.arange(n_rows), n_states)].reset_index(drop=True)
    expanded[PREVIOUS] = pd.Series(np.asarray(levels, dtype=object)[np.tile(np.arange(n_states), n_rows)]).infer_objects()
    X = design_matrix(expanded, resolve(spec, rows))
    eta = fixed_part(draws, X) + np.repeat(data.add_offset(own_effects(draws, data)), n_states, axis=1)
    probs = family.level_probabilities(eta, draws).reshape(eta.shape[0], n_rows, n_states, n_states)
    # rectangular (site, step) layout; a site with fewer waves is padded with "stay" transitions
    site_index, site_labels = pd.factorize(rows[spec.group].astype(str))
    step = rows.groupby(site_index)[spec.time].rank(method="first").to_numpy(dtype=np.int64) - 1
    n_draws, n_sites, horizon = eta.shape[0], len(site_labels), int(step.max()) + 1
    transitions = np.broadcast_to(np.eye(n_states), (n_draws, n_sites, horizon, n_states, n_states)).copy()
    transitions[:, site_index, step] = probs
    codes = np.broadcast_to(outcome_array(table, spec), (n_draws, len(table))).copy()
    start = np.empty(n_sites, dtype=np.int64)
    start[site_index[step == 0]] = codes[0, before[step == 0]]
    paths = sample_paths(transitions, start, rng.random((n_draws, n_sites, horizon)))
    codes[:, own] = paths[:, site_index, step]
    return codes


def modelled(y: np.ndarray, table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The columns of simulated outcomes ``y`` (reps, n) that the model fits: for a transition
    model every wave but each site's first (which it conditions on), else all."""
    if spec.dynamics != "transition":
        return y
    return y[:, _modelled_positions(table, spec)[1]]


def pinned_priors(spec: ModelSpec, table: pd.DataFrame) -> ModelSpec:
    """A transition spec with every default coefficient prior fixed at this design's width.

    The default prior of a coefficient is Normal(0, 2.5 / sd(x)) of its design column
    (:meth:`mbct_bayes.spec.ModelSpec.prior_for`). In a transition model the ``previous[...]``
    and ``gap:previous[...]`` columns are the outcome's own earlier values, so each simulated
    study would get its own prior width, unlike the width its truth was drawn with, and SBC
    would flag that data-dependence rather than the fit. The check therefore draws and fits
    with the widths of the design given (its observed states), stated in the result's
    ``settings["pinned_priors"]``. Other specs (whose design does not depend on the outcome)
    are returned unchanged.
    """
    if spec.dynamics != "transition":
        return spec
    data = prepare_data(table, spec)
    defaults = dict(zip(data.coef_names, coefficient_priors(spec, data), strict=True))
    return spec.with_changes(priors={**defaults, **spec.priors})


def simulate_scores(data: ModelData, draws: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A latent model's respondent scores for each parameter draw, at ``data``'s respondents: (reps, m).

    The measurement model of ``_latent_design`` (:mod:`mbct_bayes.model.build`), forwards: each of the
    ``m`` scores (long form, as ``data.resp_value``: centred, one per respondent and construct
    scored) is ``latent[site, construct] + role_offset[construct, role] + sigma_measure[construct] ε``,
    ``ε ~ Normal(0, 1)``. The same respondents, roles and constructs scored as the user's survey;
    the scores are Normal, as the model says, so not held to the scale's bounds.
    """
    assert data.resp_site is not None and data.resp_pred is not None  # a latent model's data (prepare_data)
    mean = draws["latent"][:, data.resp_site, data.resp_pred]
    if data.resp_role is not None:
        mean = mean + draws["role_offset"][:, data.resp_pred, data.resp_role]
    return mean + draws["sigma_measure"][:, data.resp_pred] * rng.standard_normal(mean.shape)


def checked_parameters(draws: Mapping[str, np.ndarray], spec: ModelSpec, data: ModelData) -> dict[str, np.ndarray]:
    """Every parameter the check ranks, as flat columns (the same for prior and posterior draws).

    :func:`mbct_bayes.model.predictor.parameter_draws` (intercept, coefficients, group SDs,
    cutpoints, ...) and, for a latent model, :func:`~mbct_bayes.model.predictor.measurement_draws`.
    """
    return parameter_draws(draws, spec) | measurement_draws(draws, spec, data.role_labels)


def degenerate(y: np.ndarray, spec: ModelSpec, trials: np.ndarray | None = None) -> np.ndarray:
    """Which simulated data sets (rows of ``y``) the schema would refuse as single-class.

    Bernoulli: all 0 or all 1; binomial: no unit or every unit embedded; ordinal: one level only.
    """
    return get_family(spec.family).single_class(y, trials)


# -- rank statistics ----------------------------------------------------------------------------
def thinned_rank(truth: float, draws: np.ndarray, n_keep: int = RANK_DRAWS) -> int:
    """Rank of ``truth`` among ``n_keep`` draws spread evenly over ``draws`` (chains stacked)."""
    keep = np.round(np.linspace(0, draws.size - 1, n_keep)).astype(np.int64)
    return int((draws[keep] < truth).sum())


def rank_bins(n_ranks: int, rank_draws: int = RANK_DRAWS) -> int:
    """Bins of the chi-square test: the largest divisor of ``L + 1`` with ≥ 5 ranks expected per bin, ≤ 20."""
    limit = max(1, min(MAX_BINS, n_ranks // MIN_EXPECTED_PER_BIN))
    return max(b for b in range(1, limit + 1) if (rank_draws + 1) % b == 0)


def rank_uniformity_p(ranks: np.ndarray, rank_draws: int = RANK_DRAWS, bins: int | None = None) -> float:
    """Chi-square p-value of the hypothesis that ``ranks`` (0..L) are uniform, in equal bins."""
    ranks = np.asarray(ranks, dtype=np.int64)
    bins = rank_bins(ranks.size, rank_draws) if bins is None else bins
    if bins < 2:
        return math.nan
    counts = np.bincount(ranks * bins // (rank_draws + 1), minlength=bins)
    return float(chisquare(counts).pvalue)


def pit_values(ranks: np.ndarray, rank_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT values ``(rank + U) / (L + 1)``: continuous uniform when ranks are uniform."""
    return (np.asarray(ranks, dtype=float) + rng.random(len(ranks))) / (rank_draws + 1)


# -- the work one refit does (runs in any process) ---------------------------------------------
@dataclass(frozen=True)
class _RepTask:
    rep: int
    outcome: np.ndarray
    truth: dict[str, float]
    sample_seed: int
    rank_draws: int
    #: latent models: the simulated respondent scores (centred, long form as ``ModelData.resp_value``)
    scores: np.ndarray | None = None


@dataclass
class _RepResult:
    rep: int
    ranks: dict[str, int]
    inside: dict[str, dict[float, bool]]
    divergences: int
    min_ess_bulk: float
    max_r_hat: float
    seconds: float
    compiled_here: bool


def _outcome_column(spec: ModelSpec, codes: np.ndarray) -> np.ndarray:
    return get_family(spec.family).decode_outcome(codes, spec)


def _run_rep(problem: Any, task: _RepTask) -> _RepResult:
    """Refit the compiled model to one simulated data set and rank the true values."""
    start = time.perf_counter()
    compiled, compiled_here = _compiled_for(problem)
    table = problem.table.copy()
    table[problem.spec.outcome] = _outcome_column(problem.spec, task.outcome)
    settings = dataclasses.replace(problem.settings, seed=task.sample_seed)
    if task.scores is None:
        fit = compiled.sample(table, settings=settings)
    else:
        # simulated scores are Normal, as the model says, so they may leave the scale that the
        # responses' validation holds real scores to: swap them into the arrays, not a table
        data = dataclasses.replace(problem.data, y=outcome_array(table, problem.spec), resp_value=task.scores)
        fit = dataclasses.replace(compiled, table=table, data=data).sample(settings=settings)
    posterior = checked_parameters(fit.draws, problem.spec, fit.model_data)
    ranks: dict[str, Any] = {}
    inside: dict[str, dict[float, bool]] = {}
    for name, truth in task.truth.items():
        draws = posterior[name]
        ranks[name] = thinned_rank(truth, draws, task.rank_draws)
        inside[name] = {}
        for level in COVERAGE_LEVELS:
            low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
            inside[name][level] = bool(low <= truth <= high)
    diag = fit.diagnostics
    return _RepResult(
        rep=task.rep, ranks=ranks, inside=inside, divergences=int(diag["divergences"]),
        min_ess_bulk=float(diag["min_ess_bulk"]), max_r_hat=float(diag["max_r_hat"]),
        seconds=time.perf_counter() - start, compiled_here=compiled_here,
    )


# -- the result --------------------------------------------------------------------------------
@dataclass
class Calibration:
    """The result of :func:`check`.

    Attributes
    ----------
    spec
        The model specification checked.
    reps
        Simulated data sets drawn from the priors.
    degenerate_reps
        Of those, how many were single-class (not refitted; see the module docstring).
    ranks
        ``{parameter: ranks 0..rank_draws}``, one per refitted data set, in data-set order.
    parameters
        ``{parameter: {"rank_p_value", "coverage_50", "coverage_90", "rejected"}}``.
    fits
        One row per simulated data set: ``rep``, ``degenerate``, ``divergences``,
        ``min_ess_bulk``, ``max_r_hat``, ``seconds`` (empty for degenerate ones).
    rank_draws, bins
        ``L`` (ranks run 0..L) and the chi-square bins.
    seconds
        Wall time of the whole check (not in :meth:`to_dict`, so the same seed gives the same JSON).
    """

    spec: ModelSpec
    reps: int
    degenerate_reps: int
    ranks: dict[str, np.ndarray]
    parameters: dict[str, dict[str, Any]]
    fits: pd.DataFrame
    rank_draws: int = RANK_DRAWS
    bins: int = 0
    seconds: float = 0.0
    seed: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    pit: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def fitted_reps(self) -> int:
        return self.reps - self.degenerate_reps

    @property
    def degenerate_share(self) -> float:
        return self.degenerate_reps / self.reps

    @property
    def divergent_fits(self) -> int:
        return int((self.fits["divergences"].fillna(0) > 0).sum())

    @property
    def low_ess_fits(self) -> int:
        """Refits whose smallest bulk ESS was below ``rank_draws`` (thinned draws may be correlated)."""
        return int((self.fits["min_ess_bulk"] < self.rank_draws).sum())

    @property
    def threshold(self) -> float:
        """Per-parameter p-value below which a parameter fails: ``FAMILY_ALPHA / m`` (Bonferroni)."""
        return FAMILY_ALPHA / max(len(self.parameters), 1)

    @property
    def passed(self) -> bool:
        return not any(p["rejected"] for p in self.parameters.values())

    @property
    def rule(self) -> str:
        m = len(self.parameters)
        return (
            f"chi-square test of {self.fitted_reps} ranks (0..{self.rank_draws}) in {self.bins} equal bins per "
            f"parameter; Bonferroni over {m} parameters at family-wise {FAMILY_ALPHA:g}: a parameter fails "
            f"when p < {self.threshold:.2g}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``reps, divergent_fits, degenerate_share, parameters, ranks, passed`` and the rule."""
        return {
            "reps": self.reps,
            "fitted_reps": self.fitted_reps,
            "degenerate_reps": self.degenerate_reps,
            "degenerate_share": self.degenerate_share,
            "divergent_fits": self.divergent_fits,
            "low_ess_fits": self.low_ess_fits,
            "rank_draws": self.rank_draws,
            "bins": self.bins,
            "family_alpha": FAMILY_ALPHA,
            "threshold": self.threshold,
            "rule": self.rule,
            "parameters": self.parameters,
            "ranks": {k: v.tolist() for k, v in self.ranks.items()},
            "passed": self.passed,
            "settings": self.settings,
        }

    def summary(self) -> str:
        """A plain-text report for the terminal."""
        width = max([24, *(len(name) + 2 for name in self.parameters)])  # role offsets have long names
        lines = [
            f"simulation-based calibration of {self.spec.name or self.spec.family} ({self.spec.family}): "
            f"{self.reps} data sets drawn from the priors at the design given",
            *([f"latent measurement: {self.settings['respondent_scores']} respondent scores per data set, simulated "
               "from the measurement model at the respondents' design (Normal, not held to the scale's bounds)"]
              if "respondent_scores" in self.settings else []),
            f"degenerate (single-class, not refitted): {self.degenerate_reps} of {self.reps} "
            f"({100 * self.degenerate_share:.1f}%); ranks below condition on a non-degenerate study",
            f"refitted: {self.fitted_reps}; divergent fits: {self.divergent_fits}; fits with min bulk ESS < "
            f"{self.rank_draws} (thinned draws may be autocorrelated): {self.low_ess_fits}",
            "",
            f"{'parameter':<{width}}{'rank p':>10}{'cover 50%':>11}{'cover 90%':>11}  verdict",
        ]
        for name, p in self.parameters.items():
            verdict = "FAIL: ranks not uniform" if p["rejected"] else "ok"
            lines.append(
                f"{name:<{width}}{p['rank_p_value']:>10.3g}{p['coverage_50']:>11.2f}{p['coverage_90']:>11.2f}  {verdict}"
            )
        lines += [
            "",
            f"rule: {self.rule}",
            "coverage: share of refits whose central 50% / 90% posterior interval holds the true value "
            f"(±{_coverage_halfwidth(0.9, self.fitted_reps):.2f} at 90% is sampling noise for {self.fitted_reps} refits)",
            ("PASSED: no parameter's ranks depart from uniform under the rule"
             if self.passed else "FAILED: some parameter's posterior is miscalibrated at this design (see above)"),
        ]
        return "\n".join(lines)

    def plot(self, **kwargs: Any):
        """ECDF-difference plot of the ranks with simultaneous bands; see :func:`mbct_bayes.plots.selfcheck.ecdf_difference`."""
        from mbct_bayes.plots.selfcheck import (
            ecdf_difference,  # deferred: it draws figures, and matplotlib takes over a second to import
        )
        return ecdf_difference(self, **kwargs)

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``check.json``, ``fits.csv`` and ``ecdf.png`` into ``directory`` (created if missing)."""
        folder = check_output_dir(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "check.json", "fits": folder / "fits.csv", "plot": folder / "ecdf.png"}
        write_json(paths["json"], self.to_dict())
        write_table(paths["fits"], self.fits)
        figure = self.plot()
        write_atomic(paths["plot"], lambda tmp: figure.savefig(tmp, format="png", dpi=110))
        return paths


def read_check(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``check.json`` from a folder written by ``mbct-bayes check --out`` (for the report).

    Raises
    ------
    DataError
        When the folder or ``check.json`` is missing or is not a check result.
    """
    folder = Path(directory)
    hint = f"make one with 'mbct-bayes check MODEL.toml --like OBS.csv --out {folder}'"
    path = folder / "check.json"
    if not folder.is_dir():
        raise DataError(f"{folder}: check folder not found (or a file); {hint}")
    if not path.is_file():
        raise DataError(f"{folder}: no check.json in the check folder; {hint}")
    try:
        result = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DataError(f"{path}: not valid JSON text; re-create it with 'mbct-bayes check'") from None
    if not isinstance(result, dict) or not isinstance(result.get("parameters"), dict) or "passed" not in result:
        raise DataError(f"{path}: expected a check result with 'parameters' and 'passed'; re-create it with 'mbct-bayes check'")
    return result


def _coverage_halfwidth(level: float, n: int) -> float:
    """Two standard errors of a coverage estimate from ``n`` refits."""
    return 2 * math.sqrt(level * (1 - level) / max(n, 1))


# -- the public API ----------------------------------------------------------------------------
def _check_reps(reps: Any) -> int:
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < MIN_REPS:
        raise DataError(
            f"--reps must be a whole number ≥ {MIN_REPS}, got {reps!r}; fewer simulated data sets cannot test rank uniformity"
        )
    return int(reps)


def check(
    spec: ModelSpec,
    *,
    like: pd.DataFrame | str | os.PathLike[str],
    responses: pd.DataFrame | str | os.PathLike[str] | None = None,
    reps: int = 200,
    seed: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool | Callable[[str], None] = False,
    sampler: str | SamplerSettings = "nutpie",
    rank_draws: int = RANK_DRAWS,
    _simulate_spec: ModelSpec | None = None,
) -> Calibration:
    """Simulation-based calibration of ``spec`` at the design of the observations ``like``.

    Parameters
    ----------
    spec
        The model specification (observed or latent measurement).
    like
        Observations whose design (sites, regions, trials, E, C, F; for panels the times) the
        simulated studies copy; a DataFrame or a CSV/Parquet path. Their outcome is not used,
        except a transition model's first wave of each site (the state it conditions on).
    responses
        Latent models only (required there): respondent-level scores as :func:`mbct_bayes.model.fit.fit`
        takes them (a DataFrame or path; items scored first with a codebook, e.g. by
        :func:`mbct_bayes.survey.scoring.score_responses`). Their design is kept (each
        respondent's site and role, and which constructs they scored); their scores are
        simulated. Every respondent's site must be a site of ``like``.
    reps
        Data sets to simulate from the priors (≥ 10; 200 or more for a real check).
    seed
        Seed (default 1) of the prior draws, outcomes and every refit; same seed, same numbers.
    draws, tune, chains
        Sampler settings of each refit (default 500, 500, 4; draws × chains must be at least
        ``rank_draws``).
    n_jobs, scheduler, progress, sampler
        As in :func:`mbct_bayes.forecast.crossval.evaluate`: local processes, a Dask scheduler address
        or ``distributed.Client``, one progress line per refit, the NUTS implementation or a
        :class:`~mbct_bayes.model.sampling.SamplerSettings` (defaults as above where it is not given).
    rank_draws
        ``L``: each posterior is thinned to this many draws before ranking.
    _simulate_spec
        Test only: simulate from this spec's priors instead of ``spec``'s (a planted mismatch
        the check must detect).

    Returns
    -------
    Calibration
    """
    started = time.perf_counter()
    if not isinstance(spec, ModelSpec):
        raise DataError(
            f"spec must be a ModelSpec (e.g. ModelSpec.from_toml('models/bernoulli.toml')), got {type(spec).__name__}"
        )
    reps = _check_reps(reps)
    settings = sampler_settings(sampler, CHECK_SAMPLER, seed=seed, draws=draws, tune=tune, chains=chains)
    seed, draws, chains = settings.seed, settings.draws, settings.chains
    if isinstance(rank_draws, bool) or not isinstance(rank_draws, int | np.integer) or rank_draws < 9:
        raise DataError(f"rank_draws must be a whole number ≥ 9, got {rank_draws!r}")
    if draws * chains < rank_draws:
        raise DataError(
            f"draws × chains = {draws * chains} is fewer than the {rank_draws} draws each rank is taken among; raise --draws"
        )
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise DataError(f"n_jobs={n_jobs!r} must be a whole number ≥ 1 (the number of local worker processes)")
    settings = dataclasses.replace(settings, sampler=available_sampler(settings))
    source = "observations"
    if not isinstance(like, pd.DataFrame):
        source = Path(like).name
        like = read_table(like, what="observations")
    if responses is not None and not isinstance(responses, pd.DataFrame):
        responses = read_table(responses, what="responses")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the design's own outcome is not used
        # as fit validates them (a latent spec needs responses; an observed one refuses them)
        table, responses = validated_inputs(like, spec, responses, source)
    if responses is not None:
        stray = sorted(set(responses[spec.group]) - set(table[spec.group].astype(str)))
        if stray:
            more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
            raise DataError(
                f"responses: site {stray[0]!r}{more} is not in {source}, whose design the simulated studies copy; "
                "add rows for it there or drop its responses"
            )
    # a count model's intercept prior is centred on the observed data; every simulated data set is
    # refitted with that same prior (the prior the data sets are drawn from)
    spec = with_fixed_intercept_prior(spec, prepare_data(table, spec, responses=responses))

    prior_seq, outcome_seq, sampler_seq, pit_seq = np.random.SeedSequence(seed).spawn(4)
    say = runtime.printer(progress)
    say(f"drawing {reps} parameter sets from the priors and simulating {reps} studies of {len(table)} rows")
    reported_spec = spec
    truth_spec = _simulate_spec if _simulate_spec is not None else spec
    spec, truth_spec = pinned_priors(spec, table), pinned_priors(truth_spec, table)
    prior = prior_draws(table, truth_spec, reps, int(prior_seq.generate_state(1)[0]), responses=responses)
    data = prepare_data(table, spec, responses=responses)
    outcome_rng = np.random.default_rng(outcome_seq)
    outcomes = simulate_outcomes(spec, table, prior, outcome_rng, responses=responses)
    # a latent model's respondents after its outcomes, from the same stream (same seed, same numbers)
    scores = simulate_scores(data, prior, outcome_rng) if responses is not None else None
    trials = table[spec.trials].to_numpy(dtype=np.int64) if spec.trials is not None else None
    is_degenerate = degenerate(modelled(outcomes, table, spec), spec, trials)
    truths = checked_parameters(prior, spec, data)
    sample_seeds = [int(s.generate_state(1)[0]) for s in sampler_seq.spawn(reps)]
    tasks = [
        _RepTask(
            rep=r, outcome=outcomes[r], truth={k: float(v[r]) for k, v in truths.items()},
            sample_seed=sample_seeds[r], rank_draws=int(rank_draws), scores=None if scores is None else scores[r],
        )
        for r in range(reps) if not is_degenerate[r]
    ]
    if len(tasks) < MIN_REPS:
        raise DataError(
            f"{int(is_degenerate.sum())} of {reps} simulated studies were single-class (all one outcome), leaving "
            f"{len(tasks)} to refit (< {MIN_REPS}); raise --reps or revisit the priors (they expect unanalysable studies)"
        )

    centered = choose_centered(data, spec)
    problem = _Problem(table=table, data=data, spec=spec, settings=settings, centered=centered)
    done: list[int] = []

    def report(result: _RepResult) -> None:
        done.append(result.rep)
        note = " (compiled the model first)" if result.compiled_here else ""
        flag = f", {result.divergences} divergent transitions" if result.divergences else ""
        say(f"refit {len(done)}/{len(tasks)} done: data set {result.rep + 1}, {result.seconds:.1f} s{note}{flag}")

    with warnings.catch_warnings():
        # each simulated study's fit is summarised below; separation warnings of simulated data are expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DataWarning)
        where = {"n_jobs": int(n_jobs), "threads": concurrent_folds(problem, len(tasks)), "scheduler": scheduler}
        say(f"refitting {runtime.describe_run(len(tasks), 'simulated studies', **where)} (compiled once per process)")
        results = runtime.run(_run_rep, tasks, shared=problem, progress=report, **where)
    return _summarise(
        reported_spec, results, reps, is_degenerate, int(rank_draws), np.random.default_rng(pit_seq),
        seconds=time.perf_counter() - started, seed=seed,
        settings={
            "draws": draws, "tune": settings.tune, "chains": chains, "sampler": settings.sampler, "centered": centered,
            **({"pinned_priors": {k: v for k, v in spec.priors.items() if k not in reported_spec.priors}}
               if spec.dynamics == "transition" else {}),
            **({"respondent_scores": int(scores.shape[1])} if scores is not None else {}),
        },
    )


def _summarise(
    spec: ModelSpec, results: list[_RepResult], reps: int, is_degenerate: np.ndarray, rank_draws: int,
    rng: np.random.Generator, *, seconds: float, seed: int, settings: dict[str, Any],
) -> Calibration:
    names = list(results[0].ranks)
    ranks = {name: np.array([r.ranks[name] for r in results], dtype=np.int64) for name in names}
    bins = rank_bins(len(results), rank_draws)
    threshold = FAMILY_ALPHA / len(names)
    parameters = {}
    for name in names:
        p_value = rank_uniformity_p(ranks[name], rank_draws, bins)
        parameters[name] = {
            "rank_p_value": p_value,
            **{
                f"coverage_{round(100 * level)}": float(np.mean([r.inside[name][level] for r in results]))
                for level in COVERAGE_LEVELS
            },
            "rejected": bool(p_value < threshold),
        }
    by_rep = {r.rep: r for r in results}
    rows = []
    for rep in range(reps):
        r = by_rep.get(rep)
        rows.append({
            "rep": rep + 1, "degenerate": bool(is_degenerate[rep]),
            "divergences": r.divergences if r else None, "min_ess_bulk": r.min_ess_bulk if r else math.nan,
            "max_r_hat": r.max_r_hat if r else math.nan, "seconds": r.seconds if r else math.nan,
        })
    fits = pd.DataFrame(rows).astype({"divergences": "Int64"})
    return Calibration(
        spec=spec, reps=reps, degenerate_reps=int(is_degenerate.sum()), ranks=ranks, parameters=parameters,
        fits=fits, rank_draws=rank_draws, bins=bins, seconds=seconds, seed=seed,
        settings=settings, pit={name: pit_values(ranks[name], rank_draws, rng) for name in names},
    )
