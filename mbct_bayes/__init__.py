"""mbct-bayes: Bayesian implementation science for MBCT services.

Hierarchical PARIHS models of P(embedded) from Evidence, Context and Facilitation scores,
posterior-predictive planning for new sites, honest forecast evaluation, and cluster-RCT power
and assurance drawn from the fitted posterior.
"""

from __future__ import annotations

from mbct_bayes import _moved, power
from mbct_bayes._version import __version__
from mbct_bayes.errors import ConvergenceWarning, DataError, FitFileError
from mbct_bayes.forecast.crossval import compare, evaluate, loo
from mbct_bayes.forecast.journey import Forecast, forecast
from mbct_bayes.model.fit import CompiledModel, Fit, compile_model, fit, load_fit
from mbct_bayes.model.sampling import SamplerSettings
from mbct_bayes.model.simulate import simulate_observations
from mbct_bayes.planner import write_planner as planner
from mbct_bayes.planning.scenarios import levers, rank, target, what_if
from mbct_bayes.schema import DataWarning, read_observations, read_table, validate_observations
from mbct_bayes.selfcheck import Calibration, check
from mbct_bayes.spec import ModelSpec
from mbct_bayes.survey.scoring import read_codebook, read_responses, score_responses, site_scores

_moved.install()

__all__ = [
    "Calibration",
    "CompiledModel",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "Fit",
    "FitFileError",
    "Forecast",
    "ModelSpec",
    "SamplerSettings",
    "__version__",
    "check",
    "compare",
    "compile_model",
    "evaluate",
    "fit",
    "forecast",
    "levers",
    "load_fit",
    "loo",
    "planner",
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
