"""mbct-bayes: Bayesian implementation science for MBCT services.

Hierarchical PARIHS models of P(embedded) from Evidence, Context and Facilitation scores,
posterior-predictive planning for new sites, honest forecast evaluation, and cluster-RCT power
and assurance drawn from the fitted posterior.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import power
from .check import Calibration, check
from .errors import ConvergenceWarning, DataError, FitFileError
from .evaluate import compare, evaluate, loo
from .fit import CompiledModel, Fit, compile_model, fit, load_fit
from .planning import levers, rank, target, what_if
from .schema import DataWarning, read_observations, read_table, validate_observations
from .scoring import read_codebook, read_responses, score_responses, site_scores
from .simulate import simulate_observations
from .spec import ModelSpec

__all__ = [
    "Calibration",
    "CompiledModel",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "Fit",
    "FitFileError",
    "ModelSpec",
    "__version__",
    "check",
    "compare",
    "compile_model",
    "evaluate",
    "fit",
    "levers",
    "load_fit",
    "loo",
    "power",
    "rank",
    "read_codebook",
    "read_observations",
    "read_responses",
    "read_table",
    "score_responses",
    "simulate_observations",
    "site_scores",
    "target",
    "validate_observations",
    "what_if",
]
