"""The settings a power calculation is threaded with, as two frozen dataclasses.

* :class:`Design` — what the trial is: clusters per arm, members per cluster, CV of cluster sizes.
* :class:`SimulationSettings` — how it is simulated and analysed: trials, significance level,
  seed, analysis, Monte Carlo interval level, chunking and where the chunks run.

The public functions keep their keyword arguments (they build these objects); the internal
steps (the search's scan and bisection, the simulation kernel's arguments) take the objects, so a
setting is named once instead of in every signature it passes through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check
from mbct_bayes.power._kernel import ANALYSES

#: Trials per chunk (the unit of parallel work and of seeding).
DEFAULT_CHUNK = 1000


def resolve_seed(seed: int | None) -> int:
    """The seed to use: ``seed`` itself, or fresh entropy (reported, so the run can be repeated)."""
    if seed is None:
        entropy = np.random.SeedSequence().entropy
        # a SeedSequence made without entropy draws one fresh int (None / sequences are for given entropy)
        assert isinstance(entropy, int)
        return entropy
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed (--seed) = {seed!r} must be a whole number >= 0")
    return int(seed)


@dataclass(frozen=True)
class Design:
    """A two-arm parallel cluster design; a searched-for dimension is left None.

    Attributes
    ----------
    clusters_per_arm
        Clusters in each arm (None while searching for it); the closed form takes a fractional
        number, a simulation rounds it up.
    cluster_size
        Mean members per cluster (None while searching for it); fractional for the closed form.
    cv
        Coefficient of variation of cluster sizes; 0 = equal sizes.
    """

    clusters_per_arm: float | None = None
    cluster_size: float | None = None
    cv: float = 0.0


@dataclass(frozen=True)
class SimulationSettings:
    """How simulated trials are run and analysed (see :func:`mbct_bayes.power.simulate`).

    Attributes
    ----------
    sims
        Simulated trials; None for assurance means one per posterior draw (times ``sims_per_draw``).
    alpha
        Two-sided significance level.
    seed
        Seed; None draws one when the settings are checked (and it is reported).
    analysis
        ``"t"``, ``"welch"``, ``"gee"`` or ``"adjusted"``.
    ci_level
        Level of the Wilson Monte Carlo interval.
    chunk_size
        Trials per chunk (changing it changes the random numbers).
    n_jobs, scheduler, progress
        Where the chunks run (local processes or a Dask scheduler) and whether progress is shown;
        results do not depend on them.
    """

    sims: int | None = 2000
    alpha: float = 0.05
    seed: int | None = None
    analysis: str = "t"
    ci_level: float = 0.95
    chunk_size: int = DEFAULT_CHUNK
    n_jobs: int = 1
    scheduler: Any = None
    progress: bool = False

    def checked(self) -> SimulationSettings:
        """These settings validated, with a seed drawn when none is given (one-line DataError if bad)."""
        return replace(
            self,
            sims=None if self.sims is None else check.integer("sims", self.sims, 1),
            alpha=check.alpha(self.alpha),
            seed=resolve_seed(self.seed),
            analysis=check.choice("analysis", self.analysis, ANALYSES),
            ci_level=check.probability("ci_level", self.ci_level),
            chunk_size=check.integer("chunk_size", self.chunk_size, 1),
        )

    @property
    def resolved_seed(self) -> int:
        """The seed of checked settings (:meth:`checked` always sets one)."""
        if self.seed is None:
            raise ValueError("these settings have no seed yet; use settings.checked()")
        return self.seed

    @property
    def resolved_sims(self) -> int:
        """The number of simulated trials, once known (assurance fills a None from the draws)."""
        if self.sims is None:
            raise ValueError("these settings leave sims to the posterior draws; set it before simulating")
        return self.sims

    def keywords(self) -> dict[str, Any]:
        """Every setting as the public functions' keywords (``simulate(..., **settings.keywords())``)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def parallel(self) -> dict[str, Any]:
        """The keywords saying where chunks run: ``n_jobs``, ``scheduler``, ``progress``."""
        return {"n_jobs": self.n_jobs, "scheduler": self.scheduler, "progress": self.progress}

    def kernel_keywords(self) -> dict[str, Any]:
        """The simulation kernel's keywords these settings fix (``simulate_counts`` but the design and sims)."""
        return {"alpha": self.alpha, "analysis": self.analysis, "seed": self.seed, "chunk_size": self.chunk_size,
                **self.parallel()}

    @classmethod
    def split(cls, keywords: dict[str, Any], **defaults: Any) -> tuple[SimulationSettings, dict[str, Any]]:
        """The settings named in ``keywords`` (a public function's ``**kwargs``; others from ``defaults``)
        and the other keywords."""
        names = set(cls.__dataclass_fields__)
        return cls(**{**defaults, **{k: v for k, v in keywords.items() if k in names}}), {
            k: v for k, v in keywords.items() if k not in names
        }
