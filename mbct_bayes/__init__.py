"""mbct-bayes: Bayesian implementation science for MBCT services.

Hierarchical PARIHS models of P(embedded) from Evidence, Context and Facilitation scores,
posterior-predictive planning for new sites, honest forecast evaluation, and cluster-RCT power
and assurance drawn from the fitted posterior.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConvergenceWarning, DataError, FitFileError
from .fit import CompiledModel, Fit, compile_model, fit, load_fit
from .schema import read_observations, read_table, validate_observations
from .spec import ModelSpec

__all__ = [
    "CompiledModel",
    "ConvergenceWarning",
    "DataError",
    "Fit",
    "FitFileError",
    "ModelSpec",
    "__version__",
    "compile_model",
    "fit",
    "load_fit",
    "read_observations",
    "read_table",
    "validate_observations",
]
