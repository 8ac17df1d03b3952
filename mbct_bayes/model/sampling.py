"""How a model is sampled: the sampler settings, and the one cache of compiled models.

:class:`SamplerSettings` is the one object that carries seed, draws, tune, chains and the NUTS
implementation from the command line through :func:`mbct_bayes.model.fit.fit`,
:func:`mbct_bayes.forecast.crossval.evaluate` and :func:`mbct_bayes.selfcheck.check`.

The compiled-model cache
------------------------
Building the PyMC model and compiling it for nutpie take seconds; sampling new data of the same
shape of parameters does not need either again. One cache per process holds each built model
(and, once compiled, its nutpie module) under :func:`structure_key`, which names every field the
compiled graph depends on:

* the spec (family, formula, priors, centring, measurement, levels, time trend, ...), as
  ``spec.to_dict()`` without ``time_origin``: a time-trend model's row offsets ``t - t0`` are data,
  so windows of a panel with different latest times share one compiled model;
* the number of sites, regions and respondent roles, and of coefficients (shapes in the graph);
* the site-effect parametrization (centred or not) and the sampler (``"nutpie"``/``"pymc"``);
* the coefficient priors compiled into the graph (:func:`~mbct_bayes.model.build.baked_coefficient_priors`:
  empty when all are Normal, which are data containers swapped at each refit).

What is *not* in the key is swapped in at each sample: the outcome, trials, design matrix, site
and region indices. Fit, cross-validation folds and the calibration check's refits all go
through this cache, so a second fit of the same structure (new data, a training fold, a simulated
study) neither builds nor compiles again.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mbct_bayes.errors import DataError
from mbct_bayes.model.build import baked_coefficient_priors

#: NUTS implementations a model can be sampled with.
SAMPLERS = ("nutpie", "pymc")
#: Compiled models kept per process (each nutpie one holds a compiled numba module).
CACHE_SIZE = 8


# -- sampler settings ------------------------------------------------------------------------------
def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise DataError(f"--{name} must be a whole number ≥ {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample one posterior; checked when made (a bad value is a one-line DataError).

    Attributes
    ----------
    draws
        Posterior draws per chain (≥ 1).
    tune
        Tuning steps per chain (≥ 0).
    chains
        Number of chains (≥ 1).
    sampler
        ``"nutpie"`` (compiled with numba) or ``"pymc"`` (PyMC's own NUTS).
    seed
        Random seed (≥ 0); the same seed gives the same draws.
    target_accept
        NUTS's target acceptance rate during tuning (0 < value < 1; a higher one takes smaller steps).

    A model's own defaults (:func:`model_defaults`) can differ from these: transition models
    sample more draws at a higher target acceptance.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    sampler: str = "nutpie"
    seed: int = 1
    target_accept: float = 0.8

    def __post_init__(self) -> None:
        for name, low in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
            object.__setattr__(self, name, _whole(name, getattr(self, name), low))
        if self.sampler not in SAMPLERS:
            raise DataError(f"sampler {self.sampler!r} is not 'nutpie' or 'pymc'")
        target = self.target_accept
        if isinstance(target, bool) or not isinstance(target, int | float | np.number) or not 0 < target < 1:
            raise DataError(f"target_accept must be a number between 0 and 1 (exclusive), got {target!r}")
        object.__setattr__(self, "target_accept", float(target))

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "draws": self.draws, "tune": self.tune, "chains": self.chains, "sampler": self.sampler,
                "target_accept": self.target_accept}


#: What transition models (``dynamics = "transition"``) sample by default instead of
#: :class:`SamplerSettings`'s 1000 draws at target acceptance 0.8. Why (benchmarks/RESULTS.md §12b,
#: "Default for transition fits"): with few waves per site the site SD ``sigma_site`` lies on a ridge
#: with the previous-state effect, and 4 × 1000 at 0.8 failed the gate on 3 of 4 simulated
#: 200-site × 6-wave bernoulli panels (bulk ESS 333–370 at ``sigma_site``, or a divergence);
#: 4 × 2000 at 0.85 passed on 12 of 12 (8 panels, 2 sampler seeds) for ~3 CPU s more.
TRANSITION_DEFAULTS: dict[str, Any] = {"draws": 2000, "target_accept": 0.85}


def model_defaults(spec: Any) -> SamplerSettings:
    """The sampler settings a fit of ``spec`` uses where the caller says nothing.

    :class:`SamplerSettings`'s defaults, except for transition models (:data:`TRANSITION_DEFAULTS`).
    """
    if getattr(spec, "dynamics", "none") == "transition":
        return SamplerSettings(**TRANSITION_DEFAULTS)
    return SamplerSettings()


def sampler_settings(
    sampler: str | SamplerSettings | None = None, base: SamplerSettings | None = None, **given: Any
) -> SamplerSettings:
    """The settings a public function samples with, from its ``sampler=`` and keyword arguments.

    ``sampler`` is a :class:`SamplerSettings` or the name of the NUTS implementation; keywords
    that are not ``None`` (``seed``, ``draws``, ``tune``, ``chains``) override it, and anything
    left unsaid comes from ``base`` (the function's defaults).
    """
    if isinstance(sampler, SamplerSettings):
        start = sampler
    else:
        start = base or SamplerSettings()
        if sampler is not None:
            given["sampler"] = sampler
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return start
    unknown = set(changes) - set(SamplerSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"not a sampler setting: {', '.join(sorted(unknown))}")
    return SamplerSettings(**{**start.to_dict(), **changes})


# -- the compiled-model cache ----------------------------------------------------------------------
@dataclass(eq=False)
class CompiledEntry:
    """One cached model: the ``pm.Model`` and, for nutpie, its compiled module once compiled.

    ``lock`` guards compiling (two threads never compile one model twice) and PyMC sampling,
    which swaps data into the one shared ``pm.Model``.
    """

    key: str
    model: Any
    nutpie: Any = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def nutpie_model(self, var_names: list[str]) -> tuple[Any, bool]:
        """The compiled nutpie module (compiling it on first use) and whether this call compiled it."""
        with self.lock:
            if self.nutpie is not None:
                return self.nutpie, False
            import nutpie  # deferred: the sampler loads its compiled backend on import

            self.nutpie = nutpie.compile_pymc_model(self.model, var_names=var_names)
            return self.nutpie, True


_CACHE: OrderedDict[str, CompiledEntry] = OrderedDict()
_CACHE_LOCK = threading.Lock()
#: Lookups answered from the cache and models built, since the process started (or :func:`clear`).
STATS = {"hits": 0, "builds": 0}


def structure_key(spec: Any, data: Any, centered: bool, sampler: str) -> str:
    """The cache key: every field the compiled graph depends on (see the module docstring).

    Parameters
    ----------
    spec
        The :class:`~mbct_bayes.spec.ModelSpec`.
    data
        The :class:`~mbct_bayes.model.build.ModelData` the model is built from.
    centered, sampler
        Site-effect parametrization and NUTS implementation.
    """
    parts = {
        "spec": {k: v for k, v in spec.to_dict().items() if k != "time_origin"},
        "n_sites": len(data.site_labels),
        "n_regions": len(data.region_labels or ()),
        "n_roles": len(data.role_labels or ()),
        "n_coefficients": int(data.X.shape[1]),
        "centered": bool(centered),
        "sampler": sampler,
        "baked_priors": baked_coefficient_priors(spec, data),
    }
    return json.dumps(parts, sort_keys=True, default=str)


def cached_model(key: str, build: Callable[[], Any]) -> CompiledEntry:
    """The cache entry for ``key``, calling ``build()`` for its ``pm.Model`` on a miss."""
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            STATS["hits"] += 1
            _CACHE.move_to_end(key)
            return entry
        entry = CompiledEntry(key=key, model=build())
        STATS["builds"] += 1
        _CACHE[key] = entry
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return entry


def clear() -> None:
    """Forget this process's compiled models (benchmarks use it to time a cold start)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        STATS.update(hits=0, builds=0)
