"""Sampling, diagnostics, the :class:`Fit` object, save and load.

``compile_model`` builds and compiles the model once; ``CompiledModel.sample`` swaps in new data
(or a subset of rows, as cross-validation needs) and samples without recompiling. ``fit`` is the
one-call version. Every fit is checked (R-hat, bulk and tail ESS, divergences) and a failing fit
says so in its summary and in a :class:`~mbct_bayes.errors.ConvergenceWarning`.

A fit is saved as one NetCDF file: the posterior and sample stats, the fitted data (as exact CSV
text), and attributes naming the spec, the package and the file-schema version, plus a hash of
spec and data that :func:`load_fit` checks, so a modified or foreign file is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io as _io
import json
import math
import os
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mbct_bayes._version import __version__
from mbct_bayes.errors import ConvergenceWarning, DataError, FitFileError
from mbct_bayes.families import family_names, get_family
from mbct_bayes.io import write_atomic
from mbct_bayes.model.build import (
    ModelData,
    attach_site_means,
    baked_coefficient_priors,
    build_model,
    choose_centered,
    data_values,
    prepare_data,
    prior_sources,
)
from mbct_bayes.model.convergence import convergence
from mbct_bayes.model.design import categorical_predictors, reference_notes, resolve
from mbct_bayes.model.panel import modelled_rows
from mbct_bayes.model.posterior import Posterior, stacked_draws
from mbct_bayes.model.sampling import (
    CompiledEntry,
    SamplerSettings,
    cached_model,
    model_defaults,
    sampler_settings,
    structure_key,
)
from mbct_bayes.model.sensitivity import prior_sensitivity, sensitivity_lines
from mbct_bayes.planning.predict import predict
from mbct_bayes.schema import read_table, validate_observations, validate_respondent_scores
from mbct_bayes.spec import ModelSpec

SCHEMA_VERSION = 1
R_HAT_MAX = 1.01
ESS_MIN = 400
#: Parameters the diagnostics gate and the summary look at (those present in the model).
SUMMARY_VARS = (
    "Intercept", "beta", "sigma_site", "sigma_region", "cutpoints", "u_site", "u_region",
    "sigma_slope", "corr_site_slope", "b_site", "latent_mean", "latent_sd", "sigma_measure", "role_offset", "latent",
)
NETCDF_ENGINE = "netcdf4"
#: Deterministic group effects recomputed from z and sigma after sampling instead of by nutpie.
REBUILT_EFFECTS = {"u_site": ("z_site", "sigma_site"), "u_region": ("z_region", "sigma_region")}


# -- compile once, sample many -------------------------------------------------------------------
@dataclass
class CompiledModel:
    """A model compiled once, ready to sample any data of the same shape of parameters.

    Attributes
    ----------
    spec
        The model specification.
    table
        The validated observations the model was built with.
    data
        The arrays the model was built with (fixes site/region labels for refits).
    model
        The ``pm.Model``.
    centered
        Site-effect parametrization in use.
    sampler
        ``"nutpie"`` or ``"pymc"``.
    responses
        Latent measurement only: the validated respondent scores.
    _entry
        Its entry in the one compiled-model cache (:mod:`mbct_bayes.model.sampling`), which holds
        the nutpie module once compiled; a model made by hand gets an entry of its own.
    """

    spec: ModelSpec
    table: pd.DataFrame
    data: ModelData
    model: Any
    centered: bool
    sampler: str = "nutpie"
    responses: pd.DataFrame | None = None
    _entry: CompiledEntry | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._entry is None or self._entry.model is not self.model:
            self._entry = CompiledEntry(key="", model=self.model)

    @property
    def entry(self) -> CompiledEntry:
        """Its entry in the one compiled-model cache (set when made)."""
        if self._entry is None:  # pragma: no cover - __post_init__ sets it
            raise RuntimeError("CompiledModel without a cache entry")
        return self._entry

    def ready(self) -> bool:
        """Compile now what sampling needs (nutpie's module); ``True`` when this call compiled it."""
        return self.sampler == "nutpie" and self._nutpie_model()[1]

    def _nutpie_model(self) -> tuple[Any, bool]:
        # Non-centred group effects u = z * sigma are rebuilt in numpy after sampling
        # (_finish_posterior): leaving them out of nutpie's expansion compiles and samples faster.
        free = [v.name for v in self.model.free_RVs]
        stored = free + [
            d.name for d in self.model.deterministics
            if d.name not in REBUILT_EFFECTS or REBUILT_EFFECTS[d.name][0] not in free
        ]
        return self.entry.nutpie_model(stored)

    def sample(
        self,
        table: pd.DataFrame | None = None,
        *,
        responses: pd.DataFrame | None = None,
        rows: np.ndarray | None = None,
        settings: SamplerSettings | None = None,
        seed: int | None = None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        progress: bool = False,
    ) -> Fit:
        """Sample the posterior for ``table`` (default: the compiled data), optionally a subset.

        Parameters
        ----------
        table
            New observations with the same sites (and regions) as the compiled data (validated
            here). ``None`` reuses the compiled data.
        responses
            Latent measurement only: respondent scores to go with a new ``table``.
        rows
            Boolean mask or integer positions of the rows to fit (cross-validation). Sites with
            no fitted rows keep their place; their effects are then drawn from the population.
        settings
            Seed, draws, tune, chains and target acceptance (default :func:`model_defaults` of the
            spec: seed 1, 1000 draws, 1000 tuning, 4 chains, 0.8; transition models 2000 draws at
            0.85); the NUTS implementation is the compiled model's own (``sampler``).
        seed, draws, tune, chains
            Override single settings; the same seed gives the same draws.
        progress
            Show the sampler's progress bar.

        Returns
        -------
        Fit
        """
        settings = sampler_settings(settings, model_defaults(self.spec), seed=seed, draws=draws, tune=tune, chains=chains)
        seed, draws, tune, chains = settings.seed, settings.draws, settings.tune, settings.chains
        if table is None:
            table, data, responses = self.table, self.data, self.responses
        else:
            table, responses = _validated(table, self.spec, responses)
            data = prepare_data(
                table, self.spec, responses=responses,
                site_labels=self.data.site_labels, region_labels=self.data.region_labels,
            )
            if baked_coefficient_priors(self.spec, data) != baked_coefficient_priors(self.spec, self.data):
                raise DataError(
                    "these data's predictor spread gives other default coefficient priors than the "
                    "compiled model was built with (priors that are not all Normal are compiled in); "
                    "compile a model for these data: compile_model(table, spec)"
                )
        if rows is not None:
            data = _subset(data, rows)
        values = data_values(data, self.spec, centered=self.centered)
        if self.sampler == "nutpie":
            import nutpie  # deferred: the sampler loads its compiled backend on import

            compiled = self._nutpie_model()[0].with_data(**values)
            idata = nutpie.sample(
                compiled, draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=progress,
                save_warmup=False, target_accept=settings.target_accept,
            )
        else:
            import pymc as pm  # deferred: PyMC takes seconds to import; only model building needs it

            with self.entry.lock, self.model:  # set_data swaps data into the one shared model
                pm.set_data(values)
                idata = pm.sample(
                    draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                    progressbar=progress, nuts_sampler="pymc", compute_convergence_checks=False,
                    target_accept=settings.target_accept,
                )
        idata = _finish_posterior(idata, data)
        meta = {
            "seed": seed, "draws": draws, "tune": tune, "chains": chains, "sampler": self.sampler,
            "target_accept": settings.target_accept, "centered": self.centered, "rows_fitted": int(data.n_obs),
        }
        return Fit(spec=self.spec, data=table, idata=idata, model_data=data, meta=meta, responses=responses)


def _finish_posterior(idata, data: ModelData):
    """Rebuild non-centred group effects and name site/region coordinates after this data.

    ``u = z * sigma`` for each non-centred level nutpie did not store, and the coordinates take
    this data's labels (a reused compiled model carries those of the data it was built with).
    """
    post = idata["posterior"].to_dataset()
    for name, (z_name, sigma_name) in REBUILT_EFFECTS.items():
        if name not in post and z_name in post:
            post[name] = post[z_name] * post[sigma_name]
    labels = {"site": list(data.site_labels)}
    if data.region_labels is not None:
        labels["region"] = list(data.region_labels)
    labels = {dim: values for dim, values in labels.items() if dim in post.dims}

    idata["posterior"] = xr.DataTree(post.assign_coords(labels) if labels else post)
    return idata


def validated_inputs(
    table: pd.DataFrame, spec: ModelSpec, responses: pd.DataFrame | None, source: str = "observations"
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Validate observations (and, for latent models, respondent scores) at the edge.

    The observations are returned as given, every wave of a panel kept (``check`` simulates a
    transition panel forward from them); a fit then keeps the rows its model fits (a
    transition panel's lagged rows).
    """
    if spec.measurement == "latent":
        if responses is None:
            raise DataError(
                "measurement = \"latent\" needs respondent scores: pass responses= (Python) or --responses (CLI)"
            )
        responses = validate_respondent_scores(responses, spec)
        table = attach_site_means(table, responses, spec)
    elif responses is not None:
        raise DataError("responses were given but the spec's measurement is \"observed\"; set measurement = \"latent\"")
    return validate_observations(table, spec, source=source), responses


def _validated(
    table: pd.DataFrame, spec: ModelSpec, responses: pd.DataFrame | None, source: str = "observations"
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """:func:`validated_inputs`, then the rows the model fits."""
    table, responses = validated_inputs(table, spec, responses, source)
    # a transition model fits (and a fit keeps) the lagged rows, so stored data, folds and log-likelihood align
    return modelled_rows(table, spec), responses


def _subset(data: ModelData, rows: np.ndarray) -> ModelData:
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    if rows.size == 0:
        raise DataError("no rows left to fit; every observation was held out")
    return dataclasses.replace(
        data, X=data.X[rows], y=data.y[rows], trials=None if data.trials is None else data.trials[rows],
        site_idx=data.site_idx[rows], region_idx=None if data.region_idx is None else data.region_idx[rows],
        time_offset=None if data.time_offset is None else data.time_offset[rows],
        offset=None if data.offset is None else data.offset[rows],
    )


def check_sampler_args(draws: int, tune: int, chains: int) -> None:
    """Refuse draws, tune or chains that :class:`SamplerSettings` refuses (one-line DataError)."""
    SamplerSettings(draws=draws, tune=tune, chains=chains)


def available_sampler(sampler: str | SamplerSettings) -> str:
    """The NUTS implementation to use: ``sampler``'s, or PyMC's (with a warning) when nutpie is missing."""
    name = sampler.sampler if isinstance(sampler, SamplerSettings) else sampler
    if name not in ("nutpie", "pymc"):
        raise DataError(f"sampler {name!r} is not 'nutpie' or 'pymc'")
    if name == "nutpie":
        try:
            import nutpie  # noqa: F401  (deferred: only checks that the sampler is installed)
        except ImportError:
            warnings.warn("nutpie is not installed; falling back to PyMC's NUTS", stacklevel=3)
            return "pymc"
    return name


def compile_model(
    table: pd.DataFrame,
    spec: ModelSpec,
    *,
    responses: pd.DataFrame | None = None,
    sampler: str | SamplerSettings = "nutpie",
    centered: bool | None = None,
    source: str = "observations",
) -> CompiledModel:
    """Validate ``table``, build the model and prepare it for repeated sampling.

    Parameters
    ----------
    table
        Observations (validated here).
    spec
        Model specification.
    responses
        Respondent-level scores, required when ``spec.measurement == "latent"``.
    sampler
        ``"nutpie"`` (default; compiled with numba) or ``"pymc"`` (PyMC's own NUTS), or a
        :class:`SamplerSettings` naming one.
    centered
        Force the site-effect parametrization; ``None`` chooses from the data.
    source
        Name of the observations in error messages (usually the file name).
    """
    name = available_sampler(sampler)
    table, responses = _validated(table, spec, responses, source)
    spec = resolve(spec, table)  # the fit keeps its categorical levels, so a loaded fit rebuilds the same X
    data = prepare_data(table, spec, responses=responses)
    return compiled_for_data(table, data, spec, sampler=name, centered=centered, responses=responses)


def compiled_for_data(
    table: pd.DataFrame,
    data: ModelData,
    spec: ModelSpec,
    *,
    sampler: str,
    centered: bool | None = None,
    responses: pd.DataFrame | None = None,
) -> CompiledModel:
    """The compiled model for observations already validated and prepared, from the one cache.

    A model of the same structure (:func:`mbct_bayes.model.sampling.structure_key`) built before
    in this process is reused: nothing is built or compiled again.
    """
    use_centered = choose_centered(data, spec) if centered is None else bool(centered)
    key = structure_key(spec, data, use_centered, sampler)
    entry = cached_model(key, lambda: build_model(data, spec, centered=use_centered))
    return CompiledModel(
        spec=spec, table=table, data=data, model=entry.model, centered=use_centered, sampler=sampler,
        responses=responses, _entry=entry,
    )


def fit(
    obs: pd.DataFrame | str | os.PathLike[str],
    spec: ModelSpec,
    *,
    responses: pd.DataFrame | str | os.PathLike[str] | None = None,
    seed: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    progress: bool = False,
    sampler: str | SamplerSettings = "nutpie",
) -> Fit:
    """Fit the hierarchical PARIHS model.

    Parameters
    ----------
    obs
        Observations: a DataFrame or a CSV/Parquet path (validated against ``spec``).
    spec
        The model specification.
    responses
        Latent measurement (``spec.measurement == "latent"``) only: respondent-level E, C, F
        scores (a DataFrame or path; e.g. from :func:`mbct_bayes.survey.scoring.score_responses`).
    seed
        Random seed (default 1); the same seed gives the same draws.
    draws, tune, chains
        Posterior draws and tuning steps per chain (default 1000 each; transition models 2000 draws,
        see :func:`~mbct_bayes.model.sampling.model_defaults`); number of chains (default 4).
    progress
        Show the sampler's progress bar.
    sampler
        ``"nutpie"`` (default) or ``"pymc"``, or a :class:`SamplerSettings` holding every sampler
        setting (keywords given beside it override its fields).

    Returns
    -------
    Fit
        With diagnostics checked; a failing gate raises a :class:`ConvergenceWarning`.
    """
    settings = sampler_settings(sampler, model_defaults(spec), seed=seed, draws=draws, tune=tune, chains=chains)
    source = "observations"
    if not isinstance(obs, pd.DataFrame):
        source = str(obs)
        obs = read_table(obs, what="observations")
    if responses is not None and not isinstance(responses, pd.DataFrame):
        responses = read_table(responses, what="responses")
    compiled = compile_model(obs, spec, responses=responses, sampler=settings, source=source)
    result = compiled.sample(settings=settings, progress=progress)
    result.warn_if_failed()
    return result


# -- diagnostics and summaries ----------------------------------------------------------------
def _posterior_vars(idata) -> list[str]:
    names = set(idata["posterior"].data_vars)
    return [v for v in (*SUMMARY_VARS, *family_scalars(idata["posterior"])) if v in names]


def family_scalars(posterior) -> list[str]:
    """The families' own scalar parameters in a posterior (e.g. a dispersion; cutpoints have a dim)."""
    own = dict.fromkeys(p for name in family_names() for p in get_family(name).parameters)
    return [p for p in own if p in posterior.data_vars and p not in SUMMARY_VARS and posterior[p].ndim == 2]


def diagnostics(idata, table: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """R-hat, bulk/tail ESS and divergences over the model's parameters, with a verdict.

    ``table`` is :func:`mbct_bayes.model.convergence.convergence` of the posterior when already
    computed (a :class:`Fit` shares one with its summary).
    """
    if table is None:
        table = convergence(idata["posterior"], _posterior_vars(idata))

    def extreme(key: str, fn) -> float:
        values = [np.asarray(v[key], dtype=float).ravel() for v in table.values()]
        flat = np.concatenate(values) if values else np.array([np.nan])
        flat = flat[np.isfinite(flat)]
        return float(fn(flat)) if flat.size else math.nan

    divergences = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    out: dict[str, Any] = {
        "max_r_hat": extreme("r_hat", np.max),
        "min_ess_bulk": extreme("ess_bulk", np.min),
        "min_ess_tail": extreme("ess_tail", np.min),
        "divergences": divergences,
    }
    problems = []
    if not out["max_r_hat"] <= R_HAT_MAX:
        problems.append(f"max R-hat {out['max_r_hat']:.3f} > {R_HAT_MAX}")
    if not out["min_ess_bulk"] >= ESS_MIN:
        problems.append(f"min bulk ESS {out['min_ess_bulk']:.0f} < {ESS_MIN}")
    if not out["min_ess_tail"] >= ESS_MIN:
        problems.append(f"min tail ESS {out['min_ess_tail']:.0f} < {ESS_MIN}")
    if divergences:
        problems.append(f"{divergences} divergent transitions")
    out["ok"] = not problems
    out["problems"] = problems
    return {"ok": out.pop("ok"), **out}


def _categorical_summary(spec: ModelSpec) -> dict[str, dict[str, Any]]:
    """Each categorical covariate's reference level, levels and where the reference came from."""
    return {
        c: {
            "reference": spec.categorical[c]["reference"],
            "levels": list(spec.categorical[c]["levels"]),
            "default": bool(spec.categorical[c]["default"]),
            "note": note,
        }
        for c, note in zip(categorical_predictors(spec), reference_notes(spec), strict=True)
    }


def time_trend_note(spec: ModelSpec) -> str:
    """One sentence on what a time-trend model's numbers refer to (time origin and units)."""
    return (
        f"coefficient 'time' is the population trend in log-odds per 1 unit of {spec.time!r}; site slopes "
        f"(SD sigma_slope) add to it; time is centred at {spec.time}={spec.time_origin:g} (the latest fitted "
        f"time unless the spec set time_origin), so the intercept and site effects are at {spec.time}="
        f"{spec.time_origin:g}, and a row without {spec.time!r} is predicted at that time"
    )


def _or_unit(name: str, spec: ModelSpec) -> str:
    if "[" in name:
        return "vs reference"
    return f"per 1 {spec.time} unit" if spec.time_trend and name == "time" else "per point"


def posterior_arrays(idata: Any) -> dict[str, np.ndarray]:
    """Posterior draws as numpy arrays with chains stacked: shape (chains * draws, ...)."""
    return stacked_draws(idata["posterior"])


@dataclass
class Fit:
    """A fitted model: spec, the data it saw, the posterior, and how it was sampled.

    Use :meth:`summary` for the numbers, :meth:`predict` for new or known sites, :meth:`save`
    to keep it, :attr:`posterior` for the draws as read-only arrays with named dimensions (what
    prediction, planning and power compute on). Build one with :func:`fit` or :func:`load_fit`.
    """

    spec: ModelSpec
    data: pd.DataFrame
    idata: Any
    model_data: ModelData
    meta: dict[str, Any] = field(default_factory=dict)
    responses: pd.DataFrame | None = None
    _posterior: Posterior | None = field(default=None, repr=False)
    _diagnostics: dict[str, Any] | None = field(default=None, repr=False)
    _convergence: dict[str, dict[str, np.ndarray]] | None = field(default=None, repr=False)
    _prior_sensitivity: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    # -- numbers ------------------------------------------------------------------------------
    @property
    def posterior(self) -> Posterior:
        """The posterior as read-only arrays with named dimensions, spec and model data
        (:class:`~mbct_bayes.model.posterior.Posterior`), built once from ``idata``."""
        if self._posterior is None:
            self._posterior = Posterior.from_idata(self.spec, self.model_data, self.idata)
        return self._posterior

    @property
    def draws(self) -> Mapping[str, np.ndarray]:
        """Posterior draws, chains stacked: ``{"beta": (S, p), "sigma_site": (S,), ...}`` (read-only)."""
        return self.posterior.draws

    @property
    def n_draws(self) -> int:
        """Number of posterior draws S (all chains)."""
        return self.posterior.n_draws

    @property
    def diagnostics(self) -> dict[str, Any]:
        """The diagnostics gate: ``ok``, max R-hat, min bulk/tail ESS, divergences, problems."""
        if self._diagnostics is None:
            self._diagnostics = diagnostics(self.idata, self.convergence)
        return self._diagnostics

    @property
    def convergence(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-parameter R-hat, bulk and tail ESS: ``{name: {"r_hat": array, ...}}``."""
        if self._convergence is None:
            self._convergence = convergence(self.idata["posterior"], _posterior_vars(self.idata))
        return self._convergence

    @property
    def prior_sensitivity(self) -> dict[str, dict[str, Any]]:
        """Power-scaling prior sensitivity per parameter; see :func:`mbct_bayes.model.sensitivity.prior_sensitivity`."""
        if self._prior_sensitivity is None:
            self._prior_sensitivity = prior_sensitivity(self)
        return self._prior_sensitivity

    def warn_if_failed(self) -> None:
        """Issue a :class:`ConvergenceWarning` when the diagnostics gate fails."""
        diag = self.diagnostics
        if not diag["ok"]:
            warnings.warn(
                "fit did not pass the diagnostics gate: " + "; ".join(diag["problems"])
                + " — do not trust these numbers; sample longer (--draws/--tune) or reparametrize",
                ConvergenceWarning,
                stacklevel=3,
            )

    def summary(self) -> dict[str, Any]:
        """Posterior summary as one JSON-ready dict.

        ``{"family", "coefficients": {"Intercept": {...}, "E": {...}, "C:F": {...}},
        "group_sd": {"site": {...}, "region": {...}}, "cutpoints": [{...}], "diagnostics": {...},
        "prior_sensitivity": {param: {"prior", "likelihood", "diagnosis"}}}``
        where each ``{...}`` holds ``mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail``;
        coefficients are log-odds per unit of the centred predictor (a categorical level,
        ``setting[secondary]``: log-odds relative to the reference level); prior sensitivity is
        power-scaling sensitivity (:mod:`mbct_bayes.model.sensitivity`). With categorical covariates,
        ``"categorical": {col: {"reference", "levels", "default", "note"}}`` names each reference
        level and whether it was the default (the most frequent level) or set in the spec.
        A time-trend model adds ``group_sd["slope"]`` (``sigma_slope``: SD of the sites' slopes,
        log-odds per unit of time), ``group_corr: {"site_slope": {...}}`` (``corr_site_slope``:
        correlation of a site's intercept at the time origin with its slope) and
        ``"time_trend": {"time": column, "origin": t0, "note": ...}``; its coefficient ``time`` is
        the population trend per unit of the time column. ``"priors": {param: {"dist", ...,
        "source"}}`` lists every prior in force for these data and where it comes from
        (:func:`mbct_bayes.model.build.prior_sources`; a count model's intercept prior is centred on
        the data's overall log rate).
        """
        post = self.idata["posterior"]
        table = self.convergence

        def stats(name: str, index: dict[str, Any] | None = None) -> dict[str, float]:
            values = post[name].transpose("chain", "draw", ...)
            checks = table[name]
            position: tuple[int, ...] = ()
            if index:
                values = values.isel(index)
                position = tuple(index.values())
            flat = np.asarray(values.values, dtype=float).ravel()
            q05, q50, q95 = np.quantile(flat, [0.05, 0.5, 0.95])
            return {
                "mean": float(flat.mean()), "sd": float(flat.std(ddof=1)), "q05": float(q05),
                "q50": float(q50), "q95": float(q95),
                **{key: float(checks[key][position]) for key in ("r_hat", "ess_bulk", "ess_tail")},
            }

        coefficients = {}
        if "Intercept" in post:
            coefficients["Intercept"] = stats("Intercept")
        for j, name in enumerate(self.spec.coef_names):
            coefficients[name] = stats("beta", {"predictor": j})
        group_sd = {"site": stats("sigma_site")}
        if "sigma_region" in post:
            group_sd["region"] = stats("sigma_region")
        trend: dict[str, Any] = {}
        if "sigma_slope" in post:
            group_sd["slope"] = stats("sigma_slope")
            trend = {
                "group_corr": {"site_slope": stats("corr_site_slope")},
                "time_trend": {"time": self.spec.time, "origin": self.spec.time_origin, "note": time_trend_note(self.spec)},
            }
        cutpoints = []
        if "cutpoints" in post:
            for k, label in enumerate(post["cutpoints"].coords["cutpoint"].values):
                cutpoints.append({"name": str(label), **stats("cutpoints", {"cutpoint": k})})
        measurement = {}
        if "sigma_measure" in post:
            for name in ("sigma_measure", "latent_sd", "latent_mean"):
                measurement[name] = {
                    p: stats(name, {"construct": j}) for j, p in enumerate(self.spec.predictors)
                }
        family_parameters = {name: stats(name) for name in family_scalars(post)}
        diag = self.diagnostics
        return {
            "family": self.spec.family,
            "measurement": self.spec.measurement,
            "n_obs": len(self.data),
            "n_sites": len(self.model_data.site_labels),
            "n_regions": len(self.model_data.region_labels or ()),
            "coefficients": coefficients,
            "group_sd": group_sd,
            "cutpoints": cutpoints,
            **({"family_parameters": family_parameters} if family_parameters else {}),
            **({"measurement_model": measurement} if measurement else {}),
            **({"categorical": _categorical_summary(self.spec)} if self.spec.categorical else {}),
            **trend,
            "diagnostics": {k: diag[k] for k in ("ok", "max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences", "problems")},
            "priors": {name: {**p["prior"], "source": p["source"]} for name, p in prior_sources(self.spec, self.model_data).items()},
            "prior_sensitivity": self.prior_sensitivity,
            "sampler": {
                k: self.meta.get(k) for k in ("sampler", "seed", "draws", "tune", "chains", "target_accept", "centered")
            },
        }

    def summary_table(self) -> pd.DataFrame:
        """The summary's parameters as a DataFrame, one row per parameter."""
        s = self.summary()
        rows = [{"parameter": k, **v} for k, v in s["coefficients"].items()]
        rows += [{"parameter": f"sigma_{k}", **v} for k, v in s["group_sd"].items()]
        rows += [{"parameter": f"corr_{k}", **v} for k, v in s.get("group_corr", {}).items()]
        rows += [{"parameter": f"cutpoint[{c['name']}]", **{k: v for k, v in c.items() if k != "name"}} for c in s["cutpoints"]]
        rows += [{"parameter": k, **v} for k, v in s.get("family_parameters", {}).items()]
        return pd.DataFrame(rows).set_index("parameter")

    def summary_text(self) -> str:
        """A plain-text summary for the terminal: coefficients, odds ratios, diagnostics verdict."""
        s = self.summary()
        table = self.summary_table()
        family = get_family(self.spec.family)
        lines = [
            f"mbct-bayes fit: {s['family']} model, {s['n_obs']} observations, {s['n_sites']} sites"
            + (f", {s['n_regions']} regions" if s["n_regions"] else ""),
            f"predictors centred at {', '.join(f'{p}={c:g}' for p, c in self.spec.center.items())}"
            f" (coefficients: {family.coefficient_scale} per scale point)",
            *(f"categorical {c['note']}" for c in s.get("categorical", {}).values()),
            *([f"time trend: {s['time_trend']['note']}"] if "time_trend" in s else []),
            "",
        ]
        if "Intercept" in s["priors"]:
            intercept = s["priors"]["Intercept"]
            params = ", ".join(f"{k}={v:.3g}" for k, v in intercept.items() if k not in ("dist", "source"))
            lines += [f"Intercept prior: {intercept['dist']}({params}), {intercept['source']}", ""]
        shown = table[["mean", "sd", "q05", "q95", "r_hat", "ess_bulk", "ess_tail"]].copy()
        with pd.option_context("display.width", 120, "display.float_format", "{:.3f}".format):
            lines.append(shown.to_string())
        ors = [
            f"  {name}: {family.ratio_abbreviation} {_or_unit(name, self.spec)} "
            f"{math.exp(v['q50']):.2f} "
            f"(90% {math.exp(v['q05']):.2f}–{math.exp(v['q95']):.2f})"
            for name, v in s["coefficients"].items() if name != "Intercept"
        ]
        lines += ["", f"{family.ratio_name}s:", *ors, ""]
        d = s["diagnostics"]
        verdict = "PASSED" if d["ok"] else "FAILED: " + "; ".join(d["problems"])
        lines.append(
            f"diagnostics {verdict} (max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
            f"min tail ESS {d['min_ess_tail']:.0f}, divergences {d['divergences']})"
        )

        lines += ["", *sensitivity_lines(s["prior_sensitivity"])]
        return "\n".join(lines)

    # -- prediction ---------------------------------------------------------------------------
    def predict(
        self, new: pd.DataFrame, kind: str = "new_site", *, seed: int = 0, region_mode: str = "mixture", **measured: Any
    ) -> pd.DataFrame:
        """P(embedded) for rows of ``new``; see :func:`mbct_bayes.planning.predict.predict`.

        ``measured``: ``responses=`` or ``scores_are_true=`` for a latent fit's new sites.
        """
        return predict(self, new, kind=kind, seed=seed, region_mode=region_mode, **measured)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fit to one NetCDF file, atomically. No pickle is involved."""
        tree = self.idata.copy()
        for group in ("warmup_posterior", "warmup_sample_stats", "fit_data"):
            if group in tree.children:
                del tree[group]
        csv_text = _data_csv(self.data)
        responses_text = _data_csv(self.responses) if self.responses is not None else ""
        spec_json = json.dumps(self.spec.to_dict(), sort_keys=True)

        tree["fit_data"] = xr.DataTree(xr.Dataset({
            "csv": ((), np.array(csv_text, dtype=object)),
            "responses_csv": ((), np.array(responses_text, dtype=object)),
        }))
        tree.attrs = {
            **{k: v for k, v in tree.attrs.items() if isinstance(v, str | int | float)},
            "mbct_bayes_schema": SCHEMA_VERSION,
            "mbct_bayes_version": __version__,
            "spec": spec_json,
            "meta": json.dumps(self.meta, sort_keys=True, default=str),
            "content_hash": _content_hash(spec_json, csv_text + responses_text),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
        }
        _clean_attrs(tree)
        return write_atomic(path, lambda tmp: tree.to_netcdf(tmp, engine=NETCDF_ENGINE))


def _data_csv(table: pd.DataFrame) -> str:
    buffer = _io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue()


def _content_hash(spec_json: str, csv_text: str) -> str:
    return hashlib.sha256((spec_json + "\n" + csv_text).encode("utf-8")).hexdigest()


def _clean_attrs(tree) -> None:
    """NetCDF attributes must be str or numbers; nutpie/ArviZ may leave lists or dicts."""
    for node in tree.subtree:
        node.attrs = {k: (v if isinstance(v, str | int | float) else json.dumps(v, default=str)) for k, v in node.attrs.items()}


def load_fit(path: str | os.PathLike[str]) -> Fit:
    """Load a fit saved by :meth:`Fit.save`, refusing a file it cannot trust.

    Raises
    ------
    FitFileError
        When the file is missing, not NetCDF, not an mbct-bayes fit, from an incompatible
        schema version, or its spec/data no longer match the hash written at save time.
    """
    path = Path(path)
    if not path.exists():
        raise FitFileError(f"{path}: fit file not found; create one with 'mbct-bayes fit ... --out {path.name}'")
    if path.is_dir():
        raise FitFileError(f"{path}: is a directory, not a fit file (.nc)")
    try:
        opened = xr.open_datatree(path, engine=NETCDF_ENGINE)
    except Exception as err:  # netCDF4/HDF5 raise many types for a corrupt file
        raise FitFileError(f"{path}: not a readable NetCDF fit file ({type(err).__name__}); re-create it with 'mbct-bayes fit'") from None
    try:
        tree = opened.load()
    finally:
        # close now: a handle left to the garbage collector can crash a later netCDF open
        opened.close()
    attrs = tree.attrs
    if "mbct_bayes_schema" not in attrs:
        raise FitFileError(f"{path}: NetCDF file is not an mbct-bayes fit (no mbct_bayes_schema attribute); fit with 'mbct-bayes fit'")
    schema = int(attrs["mbct_bayes_schema"])
    if schema != SCHEMA_VERSION:
        raise FitFileError(
            f"{path}: fit file schema version {schema}, this mbct-bayes ({__version__}) reads version {SCHEMA_VERSION}; refit the model"
        )
    for group in ("posterior", "sample_stats", "fit_data"):
        if group not in tree.children:
            raise FitFileError(f"{path}: fit file has no '{group}' group; it is incomplete or was edited — refit the model")
    try:
        spec_json = str(attrs["spec"])
        fit_data = tree["fit_data"].to_dataset()
        csv_text = str(fit_data["csv"].values.item())
        responses_text = str(fit_data["responses_csv"].values.item())
    except (KeyError, ValueError) as err:
        raise FitFileError(f"{path}: fit file lacks its spec or data ({err}); refit the model") from None
    if _content_hash(spec_json, csv_text + responses_text) != attrs.get("content_hash"):
        raise FitFileError(f"{path}: spec or data in the fit file do not match its content hash (modified or corrupt); refit the model")
    spec = ModelSpec.from_dict(json.loads(spec_json), source=str(path))
    id_cols = {c: str for c in (spec.group, spec.region, *spec.categorical) if c}
    table = pd.read_csv(_io.StringIO(csv_text), dtype=id_cols, keep_default_na=True)
    responses = None
    if responses_text:
        responses = pd.read_csv(_io.StringIO(responses_text), dtype={spec.group: str, "role": str, "respondent": str})
    model_data = prepare_data(table, spec, responses=responses)
    sites = tuple(str(s) for s in tree["posterior"]["u_site"].coords["site"].values)
    if sites != model_data.site_labels:
        raise FitFileError(f"{path}: site labels in the posterior do not match the stored data; refit the model")
    meta = json.loads(str(attrs.get("meta", "{}")))
    del tree["fit_data"]
    return Fit(spec=spec, data=table, idata=tree, model_data=model_data, meta=meta, responses=responses)
