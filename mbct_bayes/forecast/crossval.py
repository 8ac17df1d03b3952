"""Out-of-sample evaluation: leave-site-out cross-validation and PSIS-LOO.

Two questions, kept apart on purpose:

:func:`evaluate`
    *How well does the model forecast a service it has never seen?* Grouped K-fold
    cross-validation in which whole sites are held out (folds stratified by the sites' observed
    outcome rate), each held-out site predicted as a **new site** (its effect drawn from the
    fitted population per posterior draw), scored with proper scores against an intercept-only
    baseline fitted to the same training folds (:func:`mbct_bayes.forecast.rules.score_table`).
:func:`loo` and :func:`compare`
    *How well does the model predict one more observation of a site it already knows?*
    Pareto-smoothed importance-sampling leave-one-observation-out (PSIS-LOO, ArviZ) with
    Pareto-k diagnostics. Fast, but it keeps each site's own effect, so it is **not** a new-site
    forecast and usually flatters the model relative to :func:`evaluate`.

Compile once, refit many
------------------------
The model is built and compiled once (the one compiled-model cache of
:mod:`mbct_bayes.model.sampling`) and each fold is a
:meth:`~mbct_bayes.model.fit.CompiledModel.sample` on the training rows: held-out sites keep their
place in the model, with no data, so nothing recompiles. Compiled nutpie models do not pickle, so
parallel workers (local processes or Dask workers, run by :func:`mbct_bayes.runtime.run`) receive
the validated table and the spec once and compile once per process into that cache; every fold a
worker runs after that is a refit.

Same seed, same numbers: the fold assignment comes from ``np.random.default_rng(seed)`` and each
fold's sampler and new-site seeds from ``np.random.SeedSequence(seed).spawn(K)``, so the result
does not depend on how folds are spread over processes or machines.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from mbct_bayes import runtime
from mbct_bayes.errors import ConvergenceWarning, DataError
from mbct_bayes.families import family_names, get_family
from mbct_bayes.families._base import BASELINE_PSEUDO as BASELINE_PSEUDO  # re-exported
from mbct_bayes.forecast import rules as scores
from mbct_bayes.forecast.rules import intra_row_correlation, log_score_beta_binomial, log_score_binomial_mixture
from mbct_bayes.io import check_output_dir, check_output_path, write_json, write_table
from mbct_bayes.model.build import ModelData, choose_centered, outcome_array, prepare_data
from mbct_bayes.model.fit import available_sampler, compile_model, compiled_for_data
from mbct_bayes.model.predictor import log_likelihood
from mbct_bayes.model.sampling import SamplerSettings, clear, sampler_settings
from mbct_bayes.planning.predict import eta_draws, p_embedded
from mbct_bayes.schema import read_table, validate_observations
from mbct_bayes.spec import ModelSpec

if TYPE_CHECKING:  # the model stack is imported where it is used
    from mbct_bayes.model.fit import Fit

#: Pareto-k above which the PSIS estimate of an observation is unreliable (Vehtari et al. 2024).
PARETO_K_BAD = 0.7
LOO_LABEL = (
    "PSIS-LOO: leave-one-observation-out (each site keeps its own effect; not a new-site forecast)"
)
#: What the ``log_score`` of :func:`evaluate` is a score of, per family (``metrics["log_score_of"]``).
LOG_SCORE_OF = {name: dict(get_family(name).log_score_of["evaluate"]) for name in family_names()}


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    predictions
        One row per observation, in the input order: ``fold``, the site (and region) column,
        the predictors, the outcome (and trials), ``p`` (out-of-sample P(embedded) for the
        held-out site as a new site, posterior-predictive mean), ``p_q05``/``p_q95`` (its 90%
        interval over posterior draws), ``p_<level>`` per level for ordinal models, and
        ``p_baseline`` (the intercept-only forecast from the same training folds;
        ``p_baseline_<level>`` for ordinal); binomial models add ``log_score`` and
        ``log_score_baseline``, each row's log predictive density (see ``metrics``).
    metrics
        ``{"folds": K, "model": {...}, "baseline": {...}, "skill": {...}, "log_score_of":
        {"model": ..., "baseline": ...}}`` exactly as the ``evaluate`` command prints it (see
        :func:`mbct_bayes.forecast.rules.score_table`); ``log_score_of`` says in words which predictive
        distribution each ``log_score`` scores (:data:`LOG_SCORE_OF`).
    folds
        One row per fold: sites and rows held out, the seeds used, the diagnostics gate of the
        fold's fit, and its wall time (folds that overlap on threads each count their own time;
        waiting for another fold's compile is not counted).
    spec
        The model specification evaluated.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]
    folds: pd.DataFrame
    spec: ModelSpec

    @property
    def n_folds(self) -> int:
        return int(self.metrics["folds"])

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``predictions.csv``, ``metrics.json`` and ``folds.csv`` into ``directory``.

        The folder is created when missing; each file is written atomically.

        Raises
        ------
        DataError
            When ``directory`` is an existing file.
        """
        paths = output_paths(directory)
        for path in paths.values():
            check_output_path(path)
        write_table(paths["predictions"], self.predictions)
        write_table(paths["folds"], self.folds)
        write_json(paths["metrics"], self.metrics)
        return paths


def output_paths(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """The files :meth:`Evaluation.save` writes, creating ``directory`` when it is missing."""
    folder = check_output_dir(directory)  # the same words as every command writing a folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"{folder}: cannot create the output folder ({err.strerror}); choose another --out"
        ) from None
    return {
        "predictions": folder / "predictions.csv",
        "metrics": folder / "metrics.json",
        "folds": folder / "folds.csv",
    }


# -- fold assignment -------------------------------------------------------------------------------
def site_outcome_rate(table: pd.DataFrame, spec: ModelSpec) -> pd.Series:
    """Each site's observed outcome: mean of 0/1, successes/trials, or mean level code."""
    y = outcome_array(table, spec).astype(float)
    sites = table[spec.group].astype(str)
    if spec.trials is not None:
        n = table[spec.trials].to_numpy(dtype=float)
        frame = pd.DataFrame({"site": sites, "k": y, "n": n}).groupby("site", sort=True).sum()
        return frame["k"] / frame["n"]
    return pd.Series(y, index=sites).groupby(level=0, sort=True).mean()


def _check_folds(folds: int | str, n_sites: int) -> int:
    if isinstance(folds, str):
        if folds.strip().lower() in ("loo-site", "loo", "leave-one-site-out"):
            if n_sites < 2:
                raise DataError("folds='loo-site' needs at least 2 sites; the data have 1")
            return n_sites
        try:
            folds = int(folds)
        except ValueError:
            raise DataError(
                f"folds={folds!r} is not a whole number or 'loo-site'; use e.g. --folds 10"
            ) from None
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer):
        raise DataError(f"folds={folds!r} is not a whole number or 'loo-site'; use e.g. --folds 10")
    if folds < 2:
        raise DataError(
            f"folds={folds} is too few: leave-site-out CV needs at least 2 folds; "
            "use --folds 5 or 10"
        )
    if folds > n_sites:
        raise DataError(
            f"folds={folds} but the data have only {n_sites} sites; each fold holds out whole "
            "sites, "
            f"so use --folds {n_sites} or fewer (or --folds loo-site for one site per fold)"
        )
    return int(folds)


def assign_folds(site_rate: pd.Series, folds: int, seed: int = 1) -> pd.Series:
    """Grouped, stratified K-fold: a fold number for every site.

    Sites are sorted by their observed outcome rate (ties broken at random), cut into blocks of
    ``folds`` consecutive sites, and each block is dealt one site per fold in a random order. So
    every fold gets sites from across the range of outcomes, and fold sizes differ by at most one
    site.

    Parameters
    ----------
    site_rate
        Outcome rate per site, indexed by site id (see :func:`site_outcome_rate`).
    folds
        Number of folds, ``2 <= folds <= number of sites``.
    seed
        Seed of ``np.random.default_rng``.

    Returns
    -------
    pandas.Series
        Fold number ``0..folds-1`` per site, indexed like ``site_rate``.
    """
    n_sites = len(site_rate)
    folds = _check_folds(folds, n_sites)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n_sites)
    order = shuffled[np.argsort(site_rate.to_numpy(dtype=float)[shuffled], kind="stable")]
    fold_of = np.empty(n_sites, dtype=np.int64)
    for start in range(0, n_sites, folds):
        block = order[start : start + folds]
        fold_of[block] = rng.permutation(folds)[: block.size]
    return pd.Series(fold_of, index=site_rate.index, name="fold")


def fold_seeds(seed: int, folds: int) -> list[tuple[int, int]]:
    """``(sampler seed, new-site seed)`` per fold from ``SeedSequence(seed).spawn(folds)``."""
    return [
        (int(state[0]), int(state[1]))
        for state in (child.generate_state(2, dtype=np.uint32) for child in np.random.SeedSequence(seed).spawn(folds))
    ]


# -- the work one fold does (runs in any process) --------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    """What a worker needs to compile the model and refit it: small and picklable.

    ``settings.seed`` is not used: each task carries its own sampler seed.
    """

    table: pd.DataFrame
    data: ModelData
    spec: ModelSpec
    settings: SamplerSettings
    centered: bool


@dataclass(frozen=True)
class _FoldTask:
    fold: int
    test_rows: np.ndarray
    sample_seed: int
    predict_seed: int


@dataclass
class _FoldResult:
    fold: int
    test_rows: np.ndarray
    p: np.ndarray
    p_q05: np.ndarray
    p_q95: np.ndarray
    levels: np.ndarray | None
    #: binomial: per held-out row, log mean_s Binomial(k | n, p_s) over the fold's draws
    log_density: np.ndarray | None
    diagnostics: dict[str, Any]
    seconds: float
    compiled_here: bool


def _compiled_for(problem: _Problem) -> tuple[Any, bool]:
    """The compiled model for ``problem`` from the one cache, and whether this call compiled it."""
    compiled = compiled_for_data(
        problem.table, problem.data, problem.spec, sampler=problem.settings.sampler, centered=problem.centered
    )
    _check_refittable(compiled)
    return compiled, compiled.ready()


def _check_refittable(compiled: Any) -> None:
    """Refuse a model nutpie cannot refit on fewer rows, before it panics mid-sampling.

    nutpie compiles the shapes of stored deterministics; one per observation (PyMC's
    ``OrderedLogistic`` stores ``<name>_probs`` unless built with ``compute_p=False``) then no
    longer fits a training subset.
    """
    if compiled.sampler != "nutpie":
        return
    n_obs = compiled.data.n_obs
    for det in compiled.model.deterministics:
        dims = compiled.model.named_vars_to_dims.get(det.name) or ()
        shape = tuple(det.type.shape)
        if "site" in dims or "region" in dims or "predictor" in dims:
            continue
        if shape and (shape[0] is None or shape[0] == n_obs):
            raise DataError(
                f"the {compiled.spec.family} model stores the per-observation deterministic "
                f"{det.name!r}, which nutpie cannot refit on a subset of rows; cross-validate it "
                "with sampler='pymc' (--sampler pymc)"
            )


def compiled_model(obs: pd.DataFrame, spec: ModelSpec, *, sampler: str = "nutpie") -> Any:
    """The compiled model for ``obs`` and ``spec`` from the one cache (compiled on a miss).

    :func:`evaluate` compiles through the same cache, so fitting the full data after a
    cross-validation (``compiled_model(obs, spec).sample(seed=1)``) does not compile again.

    Returns
    -------
    mbct_bayes.model.fit.CompiledModel
    """
    compiled = compile_model(obs, spec, sampler=sampler, source=spec.source or "observations")
    compiled.ready()
    return compiled


def clear_cache() -> None:
    """Forget this process's compiled models (benchmarks use it to time a cold start)."""
    clear()


def mixture_log_density(family, spec: ModelSpec, rows: pd.DataFrame, eta: np.ndarray, draws) -> np.ndarray:
    """Per row, ``log mean_s p(y | eta_s + offset, params_s)``: the log score of the predictive mixture."""
    offset = family.offset(rows, spec)
    trials = rows[spec.trials].to_numpy(dtype=np.int64) if spec.trials is not None else None
    pointwise = family.log_likelihood(
        outcome_array(rows, spec), eta if offset is None else eta + offset, trials, draws
    )
    return logsumexp(pointwise, axis=0) - math.log(pointwise.shape[0])


def _run_fold(problem: _Problem, task: _FoldTask) -> _FoldResult:
    """Refit without the held-out sites and predict them as new sites."""
    start = time.perf_counter()
    compiled, compiled_here = _compiled_for(problem)
    if not compiled_here:
        start = time.perf_counter()  # a fold's time: its own compile and refit, not waiting for another's compile
    train = np.ones(len(problem.table), dtype=bool)
    train[task.test_rows] = False
    fit = compiled.sample(rows=train, settings=dataclasses.replace(problem.settings, seed=task.sample_seed))
    test = problem.table.iloc[task.test_rows]
    eta = eta_draws(fit.posterior, test, kind="new_site", seed=task.predict_seed)
    p_draws = p_embedded(fit.posterior, eta)
    levels = None
    family = get_family(problem.spec.family)
    if family.ordered_levels:
        levels = family.level_probabilities(eta, fit.draws).mean(axis=0)
        levels = levels / levels.sum(axis=1, keepdims=True)
    q05, q95 = np.quantile(p_draws, [0.05, 0.95], axis=0)
    log_density = None
    if family.counts_events:
        # a count row's forecast is the mixture over draws (each with its new-site effect and the
        # row's own exposure): log mean_s p(y | eta_s + log exposure, params_s)
        log_density = mixture_log_density(family, problem.spec, test, eta, fit.draws)
    elif family.counts_trials:
        # the forecast of a binomial row is the mixture over draws, not Binomial(k | n, mean p):
        # score it here, where the draws are, and keep only one number per row

        log_density = np.asarray(log_score_binomial_mixture(
            p_draws,
            outcome_array(test, problem.spec),
            test[problem.spec.trials].to_numpy(dtype=float),
            pointwise=True,
        ))
    return _FoldResult(
        fold=task.fold,
        test_rows=task.test_rows,
        p=p_draws.mean(axis=0),
        p_q05=q05,
        p_q95=q95,
        levels=levels,
        log_density=log_density,
        diagnostics=fit.diagnostics,
        seconds=time.perf_counter() - start,
        compiled_here=compiled_here,
    )


# -- running folds ---------------------------------------------------------------------------------
def concurrent_folds(problem: _Problem, n_tasks: int) -> int:
    """How many refits to run at once in one process: enough to fill the cores, at least two.

    nutpie refits on threads overlap well: sampling releases the GIL and a fit of 4 chains leaves
    cores idle while chains start and finish and while the last fold's draws are summarised
    (~15-20 % faster on 2 cores). PyMC's sampler swaps data into one shared model, so its folds run
    one at a time. Each fold has its own seeds, so the numbers are the same however many run at once.
    """
    if problem.settings.sampler != "nutpie" or n_tasks <= 1:
        return 1
    cores = os.cpu_count() or 1
    return int(min(n_tasks, max(2, cores // max(problem.settings.chains, 1))))


# -- the public API --------------------------------------------------------------------------------
def evaluate(
    obs: pd.DataFrame | str | os.PathLike[str],
    spec: ModelSpec,
    *,
    folds: int | str = 10,
    seed: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    n_jobs: int = 1,
    scheduler: Any = None,
    progress: bool | Callable[[str], None] = False,
    sampler: str | SamplerSettings = "nutpie",
    n_boot: int = 1000,
    bins: int = 10,
) -> Evaluation:
    """Leave-site-out cross-validation: forecast held-out sites as new sites and score them.

    Parameters
    ----------
    obs
        Observations: a DataFrame or a CSV/Parquet path (validated against ``spec``).
    spec
        The model specification.
    folds
        Number of folds ``K`` (``2 <= K <= number of sites``), or ``"loo-site"`` for one site
        per fold. Folds are stratified by each site's observed outcome rate.
    seed
        Seed (default 1) for the fold assignment, each fold's sampler and new-site draws, and the
        site-bootstrap intervals; the same seed gives the same numbers however folds are run.
    draws, tune, chains
        Sampler settings of every fold's fit (default 1000, 1000, 4).
    n_jobs
        Local worker processes (each compiles the model once); 1 runs folds in this process,
        where the model compiles once and nutpie refits overlap on threads.
    scheduler
        A Dask ``distributed.Client`` or a scheduler address such as ``"tcp://host:8786"``:
        run the folds on that cluster instead (``n_jobs`` is then ignored).
    progress
        ``True`` prints one line per finished fold to stderr; a callable receives that line.
    sampler
        ``"nutpie"`` (default) or ``"pymc"``, or a :class:`~mbct_bayes.model.sampling.SamplerSettings`
        holding every sampler setting (keywords given beside it override its fields).
    n_boot, bins
        Site resamples for the skill intervals; equal-width bins for ECE.

    Returns
    -------
    Evaluation
        Out-of-sample predictions per observation, the metrics and a per-fold table.

    Raises
    ------
    DataError
        Bad data or settings, e.g. more folds than sites.

    Warns
    -----
    ConvergenceWarning
        When a fold's fit fails the diagnostics gate (its scores are then not to be trusted).

    Notes
    -----
    The baseline is the intercept-only forecast made from the same training folds: the
    training outcome rate with a Jeffreys pseudo-count of ½ per class (for ordinal models, the
    training level shares with ½ per level). It is constant within a fold and anti-correlated
    with the held-out outcome across folds by construction, so its ``auc`` and
    ``calibration_slope`` are reported as null.

    Every ``log_score`` here is the score of a full predictive distribution. For binomial rows
    the model's is the mixture ``log mean_s Binomial(k | n, p_s)`` over the fold's posterior
    draws, each with its drawn new-site effect (computed inside the fold, one number per row
    kept). Like with like: the baseline's row forecast is then not a plain Binomial(n, rate),
    which has no between-site spread and would hand the model skill for merely having a site
    effect, but a beta-binomial with the training rate and the training rows' intra-row
    correlation; its Brier, AUC and calibration stay per unit at the rate.
    """
    if not isinstance(spec, ModelSpec):
        raise DataError(
            "spec must be a ModelSpec (e.g. ModelSpec.from_toml('models/bernoulli.toml')), "
            f"got {type(spec).__name__}"
        )
    settings = sampler_settings(sampler, seed=seed, draws=draws, tune=tune, chains=chains)
    seed = settings.seed
    source = "observations"
    if not isinstance(obs, pd.DataFrame):
        source = Path(obs).name
        obs = read_table(obs, what="observations")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise DataError(
            f"n_jobs={n_jobs!r} must be a whole number ≥ 1 (the number of local worker processes)"
        )
    settings = dataclasses.replace(settings, sampler=available_sampler(settings))
    table = validate_observations(obs, spec, source=source)
    site_rate = site_outcome_rate(table, spec)
    k = _check_folds(folds, len(site_rate))
    fold_of_site = assign_folds(site_rate, k, seed)
    sites = table[spec.group].astype(str)
    row_fold = sites.map(fold_of_site).to_numpy(dtype=np.int64)

    data = prepare_data(table, spec)
    problem = _Problem(table=table, data=data, spec=spec, settings=settings, centered=choose_centered(data, spec))
    seeds = fold_seeds(seed, k)
    tasks = [
        _FoldTask(
            fold=f,
            test_rows=np.flatnonzero(row_fold == f),
            sample_seed=seeds[f][0],
            predict_seed=seeds[f][1],
        )
        for f in range(k)
    ]
    say = runtime.printer(progress)
    done: list[int] = []

    def report(result: _FoldResult) -> None:
        done.append(result.fold)
        diag = result.diagnostics
        flag = (
            "" if diag["ok"] else "  [diagnostics gate failed: " + "; ".join(diag["problems"]) + "]"
        )
        note = " (compiled the model first)" if result.compiled_here else ""
        say(
            f"fold {result.fold + 1}/{k} done ({len(done)}/{k}): "
            f"{result.test_rows.size} held-out rows from "
            f"{sites.iloc[result.test_rows].nunique()} sites, {result.seconds:.1f} s{note}{flag}"
        )

    where = {"n_jobs": int(n_jobs), "threads": concurrent_folds(problem, k), "scheduler": scheduler}
    say(f"running {runtime.describe_run(k, 'folds', **where)} (the model compiles once per process, then each fold refits)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # summarised once below
        results = runtime.run(_run_fold, tasks, shared=problem, progress=report, **where)

    n = len(table)
    y = outcome_array(table, spec)
    family = get_family(spec.family)
    trials = table[spec.trials].to_numpy(dtype=np.int64) if family.counts_trials else None
    p = np.empty(n)
    p_q05 = np.empty(n)
    p_q95 = np.empty(n)
    levels = np.empty((n, spec.n_levels)) if family.ordered_levels else None
    log_density = np.empty(n) if family.counts_trials or family.counts_events else None
    for r in results:
        p[r.test_rows], p_q05[r.test_rows], p_q95[r.test_rows] = r.p, r.p_q05, r.p_q95
        if levels is not None:
            levels[r.test_rows] = r.levels
        if log_density is not None:
            log_density[r.test_rows] = r.log_density
    if family.counts_events:
        return _evaluate_counts(table, spec, row_fold, k, results, p, p_q05, p_q95, log_density, sites,
                                n_boot=n_boot, seed=seed)
    baseline = _fold_baseline(y, row_fold, k, spec, trials)
    baseline_log_density = (
        _fold_baseline_log_density(y, trials, row_fold, k, baseline) if trials is not None else None
    )

    table_scores = scores.score_table(
        levels if levels is not None else p,
        y,
        sites.to_numpy(),
        family=spec.family,  # type: ignore[arg-type]  # a str ModelSpec has checked against FAMILIES
        baseline=baseline,
        trials=trials,
        log_density=log_density,
        baseline_log_density=baseline_log_density,
        bins=bins,
        n_boot=n_boot,
        seed=seed,
    )
    # constant within a fold, anti-correlated with the held-out outcome across folds: its AUC and
    # slope are artefacts of leaving data out, not properties of a base rate
    table_scores["baseline"]["auc"] = math.nan
    table_scores["baseline"]["calibration_slope"] = math.nan
    metrics = {
        "folds": k,
        "model": table_scores["model"],
        "baseline": table_scores["baseline"],
        "skill": table_scores["skill"],
        "log_score_of": dict(family.log_score_of["evaluate"]),
    }

    predictions = _predictions_table(table, spec, row_fold, p, p_q05, p_q95, levels, baseline)
    if log_density is not None:
        predictions["log_score"] = log_density
        predictions["log_score_baseline"] = baseline_log_density
    fold_table = _fold_table(results, sites, k, n)
    failed = [r.fold + 1 for r in results if not r.diagnostics["ok"]]
    if failed:
        warnings.warn(
            f"{len(failed)} of {k} fold fits failed the diagnostics gate "
            f"(folds {', '.join(map(str, failed))}; "
            "see Evaluation.folds); their forecasts may be off — raise draws/tune",
            ConvergenceWarning,
            stacklevel=2,
        )
    return Evaluation(predictions=predictions, metrics=metrics, folds=fold_table, spec=spec)


def _evaluate_counts(
    table: pd.DataFrame, spec: ModelSpec, row_fold: np.ndarray, k: int, results: list[_FoldResult],
    p: np.ndarray, p_q05: np.ndarray, p_q95: np.ndarray, log_density: np.ndarray | None, sites: pd.Series,
    *, n_boot: int, seed: int,
) -> Evaluation:
    """Scores of a count model's leave-site-out forecasts: the log score of each row's predictive
    mixture against an intercept-only rate baseline from the same training folds, with the skill's
    paired site-bootstrap interval (a rate forecast has no Brier score, AUC or calibration slope)."""
    assert log_density is not None
    family = get_family(spec.family)
    y = outcome_array(table, spec).astype(float)
    offset = family.offset(table, spec)
    exposure = np.exp(offset) if offset is not None else np.ones(len(table))
    baseline_log_density = np.empty(len(table))
    baseline_rate = np.empty(len(table))
    for f in range(k):
        test, train = row_fold == f, row_fold != f
        baseline_log_density[test] = scores.log_score_count_baseline(y[train], exposure[train], y[test], exposure[test])
        baseline_rate[test] = float(spec.rate_per or 1.0) * y[train].sum() / exposure[train].sum()
    site_ids = sites.to_numpy()
    skill = scores.skill(log_density, baseline_log_density, site_ids, score="log_score", n_boot=n_boot, seed=seed)
    metrics = {
        "folds": k,
        "model": {"log_score": float(np.mean(log_density))},
        "baseline": {"log_score": float(np.mean(baseline_log_density))},
        "skill": {"log_score": skill},
        "log_score_of": dict(family.log_score_of["evaluate"]),
        "quantity": family.planned_label(spec),
    }
    ids = [spec.group] + ([spec.region] if spec.region else [])
    ids += [c for c in ("wave", "unit", "id") if c in table.columns and c not in ids]
    predictions = table[[*ids, *spec.predictors, *family.outcome_columns(spec)]].copy()
    predictions.insert(0, "fold", row_fold + 1)
    predictions["p"], predictions["p_q05"], predictions["p_q95"] = p, p_q05, p_q95
    predictions["p_baseline"] = baseline_rate
    predictions["quantity"] = family.planned_label(spec)
    predictions["log_score"] = log_density
    predictions["log_score_baseline"] = baseline_log_density
    return Evaluation(
        predictions=predictions.reset_index(drop=True), metrics=metrics,
        folds=_fold_table(results, sites, k, len(table)), spec=spec,
    )


def _fold_baseline(
    y: np.ndarray, row_fold: np.ndarray, k: int, spec: ModelSpec, trials: np.ndarray | None
) -> np.ndarray:
    """Intercept-only forecast per row from its fold's training rows (the family's baseline)."""
    return get_family(spec.family).fold_baseline(y, row_fold, k, trials, spec.n_levels)


def _fold_baseline_log_density(
    y: np.ndarray, trials: np.ndarray, row_fold: np.ndarray, k: int, rate: np.ndarray
) -> np.ndarray:
    """Binomial rows: log BetaBinomial(k | n, rate, rho) with rho from the fold's training rows.

    The baseline's spread between rows (the ANOVA intra-row correlation of the training rows,
    :func:`mbct_bayes.forecast.rules.intra_row_correlation`) matches what the model's new-site mixture
    carries through its site effect, so the skill compares forecasts of the same kind and
    measures what the predictors add, not the bonus of having any spread at all.
    """
    rho = np.array([
        intra_row_correlation(y[row_fold != f], trials[row_fold != f]) for f in range(k)
    ])
    return np.asarray(log_score_beta_binomial(rate, rho[row_fold], y, trials, pointwise=True))


def _predictions_table(table, spec, row_fold, p, p_q05, p_q95, levels, baseline) -> pd.DataFrame:
    ids = [spec.group] + ([spec.region] if spec.region else [])
    ids += [c for c in ("wave", "unit", "id") if c in table.columns and c not in ids]
    outcome = get_family(spec.family).outcome_columns(spec)
    out = table[[*ids, *spec.predictors, *outcome]].copy()
    out.insert(0, "fold", row_fold + 1)
    out["p"] = p
    out["p_q05"] = p_q05
    out["p_q95"] = p_q95
    if levels is not None:
        for j, level in enumerate(spec.levels):
            out[f"p_{level}"] = levels[:, j]
        out["p_baseline"] = baseline[:, -1]
        for j, level in enumerate(spec.levels):
            out[f"p_baseline_{level}"] = baseline[:, j]
    else:
        out["p_baseline"] = baseline
    return out.reset_index(drop=True)


def _fold_table(results: list[_FoldResult], sites: pd.Series, k: int, n: int) -> pd.DataFrame:
    rows = []
    for r in results:
        held = sites.iloc[r.test_rows]
        d = r.diagnostics
        rows.append(
            {
                "fold": r.fold + 1,
                "n_sites": int(held.nunique()),
                "n_test": int(r.test_rows.size),
                "n_train": int(n - r.test_rows.size),
                "sites": " ".join(sorted(held.unique())),
                "ok": bool(d["ok"]),
                "max_r_hat": d["max_r_hat"],
                "min_ess_bulk": d["min_ess_bulk"],
                "min_ess_tail": d["min_ess_tail"],
                "divergences": int(d["divergences"]),
                "seconds": round(r.seconds, 3),
            }
        )
    return pd.DataFrame(rows)


# -- PSIS-LOO --------------------------------------------------------------------------------------
@dataclass
class LooResult:
    """PSIS leave-one-**observation**-out of one fit (not a new-site forecast).

    Attributes
    ----------
    elpd, se
        Expected log pointwise predictive density (sum over observations) and its SE.
    p_loo
        Effective number of parameters.
    n
        Number of observations.
    pareto_k
        Pareto-k per observation; above ``good_k`` (ArviZ's sample-size-aware threshold) or
        :data:`PARETO_K_BAD` (0.7) the observation's estimate is unreliable.
    good_k
        ArviZ's threshold ``min(1 - 1/log10(S), 0.7)`` for ``S`` draws.
    elpd_data
        The ArviZ ``ELPDData`` object (for :func:`arviz.compare` and plots).
    """

    elpd: float
    se: float
    p_loo: float
    n: int
    pareto_k: np.ndarray
    good_k: float
    elpd_data: Any = field(repr=False)

    @property
    def n_bad_k(self) -> int:
        """Observations with Pareto-k above 0.7."""
        return int(np.sum(self.pareto_k > PARETO_K_BAD))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``elpd``, ``se``, ``p_loo``, ``elpd_per_obs`` and the Pareto-k counts."""
        k = self.pareto_k
        return {
            "method": LOO_LABEL,
            "elpd": self.elpd,
            "se": self.se,
            "p_loo": self.p_loo,
            "n": self.n,
            # comparable in scale to the log_score of evaluate(), not in meaning
            "elpd_per_obs": self.elpd / self.n,
            "pareto_k": {
                "max": float(np.max(k)),
                "good_k": self.good_k,
                "n_above_good_k": int(np.sum(k > self.good_k)),
                "n_above_0.7": self.n_bad_k,
                "n_above_1": int(np.sum(k > 1.0)),
            },
            "reliable": self.n_bad_k == 0,
        }


def loo_tree(fit: Fit) -> Any:
    """An ArviZ DataTree: the fit's posterior and its pointwise ``log_likelihood`` (``obs``)."""


    posterior = fit.idata["posterior"].to_dataset()
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    ll = log_likelihood(fit.posterior).reshape(n_chains, n_draws, -1)
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        "obs_id": np.arange(ll.shape[-1]),
    }
    log_lik = xr.Dataset({"obs": (("chain", "draw", "obs_id"), ll)}, coords=coords)
    return xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": log_lik})


def loo(fit: Fit) -> LooResult:
    """PSIS-LOO (leave-one-observation-out) with Pareto-k diagnostics, via ArviZ.

    Each observation is predicted from the other observations *of its own site too*, so this
    measures fit to known sites, not the new-site forecast that :func:`evaluate` scores.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit`.

    Returns
    -------
    LooResult

    Warns
    -----
    UserWarning
        When Pareto-k of some observations exceeds 0.7 (the estimate is then unreliable; use
        :func:`evaluate` or refit without those observations).
    """
    import arviz as az  # deferred: ArviZ is only needed for its diagnostics and LOO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # our own message below says what to do
        result = az.loo(loo_tree(fit), pointwise=True, var_name="obs")
    pareto_k = np.asarray(
        result.pareto_k.values if hasattr(result.pareto_k, "values") else result.pareto_k,
        dtype=float,
    )
    out = LooResult(
        elpd=float(result.elpd),
        se=float(result.se),
        p_loo=float(result.p),
        n=int(result.n_data_points),
        pareto_k=pareto_k,
        good_k=float(result.good_k),
        elpd_data=result,
    )
    if out.n_bad_k:
        warnings.warn(
            f"PSIS-LOO: {out.n_bad_k} of {out.n} observations have Pareto k > {PARETO_K_BAD}; "
            "their LOO estimates are unreliable — use evaluate() (leave-site-out) for a "
            "trustworthy comparison",
            UserWarning,
            stacklevel=2,
        )
    return out


def compare(fits: Mapping[str, Any], *, method: str = "stacking") -> pd.DataFrame:
    """Compare fits of the same observations by PSIS-LOO (leave-one-observation-out).

    Parameters
    ----------
    fits
        ``{name: Fit}``, at least two, all fitted to the same observations.
    method
        Weighting method of :func:`arviz.compare` (``"stacking"``, ``"BB-pseudo-BMA"``,
        ``"pseudo-BMA"``).

    Returns
    -------
    pandas.DataFrame
        :func:`arviz.compare`'s table (``rank``, ``elpd``, ``elpd_diff``, ``dse``, ``p``,
        ``weight``, ...; best first) plus ``n_pareto_k_above_0.7``; the ``cv`` column says that this
        is leave-one-observation-out (PSIS-LOO), not a new-site forecast (``LOO_LABEL`` in full;
        the table carries no ``DataFrame.attrs``, which pandas drops on most operations).
    """
    check_same_observations(fits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = {name: loo(fit) for name, fit in fits.items()}
    return compare_loo(results, method=method)


def check_same_observations(fits: Mapping[str, Any]) -> None:
    """Refuse fewer than two fits, or fits of different observations (LOO compares one data set)."""
    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise DataError(
            "compare needs a dict of at least two named fits, e.g. {'ECF': fit1, 'ECF+CxF': fit2}"
        )
    names = list(fits)
    first = fits[names[0]]
    for name in names[1:]:
        other = fits[name]
        if other.model_data.n_obs != first.model_data.n_obs or not np.array_equal(
            other.model_data.y, first.model_data.y
        ):
            raise DataError(
                f"compare: fits {names[0]!r} and {name!r} were made on different observations "
                f"({first.model_data.n_obs} vs {other.model_data.n_obs} rows); "
                "LOO compares models of the same data only"
            )


def compare_loo(results: Mapping[str, LooResult], *, method: str = "stacking") -> pd.DataFrame:
    """:func:`compare`'s table from PSIS-LOO results already computed (``{name: loo(fit)}``)."""
    import arviz as az  # deferred: ArviZ is only needed for its diagnostics and LOO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(
            {name: r.elpd_data for name, r in results.items()}, method=method, round_to="none"
        )
    table = pd.DataFrame(table)
    table["n_pareto_k_above_0.7"] = [results[name].n_bad_k for name in table.index]
    table["cv"] = "leave-one-observation-out (PSIS-LOO)"
    return table
