"""Cluster-RCT power and Bayesian assurance for a binary outcome (two parallel arms of clusters).

* :func:`analytic` — closed forms (Donner–Klar design effect with unequal cluster sizes,
  Hayes–Bennett with k; normal or t reference), solving for any one of power, clusters per arm,
  cluster size and p1. Proportion-scale ICC, as clusterPower and CRTSize take it.
* :func:`simulate` / :func:`power_curve` — vectorised simulation of logistic-normal clusters
  analysed by a cluster-level t-test (or Welch / GEE / covariate-adjusted), with Monte Carlo
  intervals and common random numbers across designs; parallel over local processes or a Dask
  cluster. Each simulated power reports whether its analysis holds its size there.
* :func:`size_check` / :func:`size_grid` — the type-I error of each analysis at a design (exact by
  enumeration with one outcome per cluster, else simulated), and whether it holds ``alpha``.
* :func:`assurance` / :func:`assurance_from_draws` / :func:`assurance_curve` — the same
  simulation with baseline, between-site SD and effect drawn from a fitted posterior; from a fit
  the trial recruits from a population of services (:func:`population_curve`,
  :func:`fitted_sites_population`, :func:`candidates_population`), or all alike (``profile``).
* :func:`search` — fewest clusters per arm (or smallest cluster size) reaching a target; split by
  what it solves as :func:`search_clusters` / :func:`search_cluster_size`, over a :class:`Source`
  (:func:`simulated_power`, :func:`assurance_over`), a :class:`Design`, :class:`SimulationSettings`
  and :class:`SearchLimits`.
* Results: :class:`PowerResult` / :class:`AssuranceResult` (read-only mappings; ``to_dict()`` is the
  CLI's JSON); curves are DataFrames.
* :func:`stepped_wedge` / :func:`stepped_wedge_analytic` / :func:`stepped_wedge_simulate` /
  :func:`stepped_wedge_assurance` (from a fit, over the population of services) /
  :func:`stepped_wedge_population_assurance` / :func:`stepped_wedge_assurance_from_draws` —
  cross-sectional stepped-wedge trials (Hussey & Hughes 2007 via WLS, as swCRTdesign's ``swPwr``;
  simulation analysed by the same model).
* ICC helpers: :func:`icc_from_sigma_b`, :func:`sigma_b_from_icc`, :func:`marginal_proportion`.
"""

from __future__ import annotations

from mbct_bayes.power._analyses import adjusted_t_test
from mbct_bayes.power._analytic import analytic, design_effect, hayes_bennett_clusters
from mbct_bayes.power._assurance import (
    assurance,
    assurance_curve,
    assurance_from_draws,
    draws_from_fit,
    population_assurance,
    population_curve,
    population_from_fit,
)
from mbct_bayes.power._icc import icc_from_sigma_b, marginal_proportion, sigma_b_from_icc
from mbct_bayes.power._kernel import binom_quantile, cluster_t_test, gee_test
from mbct_bayes.power._population import Population, build_population, candidates_population, fitted_sites_population
from mbct_bayes.power._results import AssuranceResult, PowerResult
from mbct_bayes.power._search import (
    SearchLimits,
    Source,
    assurance_over,
    search,
    search_cluster_size,
    search_clusters,
    simulated_power,
)
from mbct_bayes.power._settings import Design, SimulationSettings
from mbct_bayes.power._simulate import power_curve, simulate, wilson_interval
from mbct_bayes.power._size import size_check, size_grid
from mbct_bayes.power._stepped_wedge import (
    stepped_wedge,
    stepped_wedge_analytic,
    stepped_wedge_assurance,
    stepped_wedge_assurance_from_draws,
    stepped_wedge_design,
    stepped_wedge_population_assurance,
    stepped_wedge_simulate,
)

__all__ = [
    "AssuranceResult",
    "Design",
    "Population",
    "PowerResult",
    "SearchLimits",
    "SimulationSettings",
    "Source",
    "adjusted_t_test",
    "analytic",
    "assurance",
    "assurance_curve",
    "assurance_from_draws",
    "assurance_over",
    "binom_quantile",
    "build_population",
    "candidates_population",
    "cluster_t_test",
    "design_effect",
    "draws_from_fit",
    "fitted_sites_population",
    "gee_test",
    "hayes_bennett_clusters",
    "icc_from_sigma_b",
    "marginal_proportion",
    "population_assurance",
    "population_curve",
    "population_from_fit",
    "power_curve",
    "search",
    "search_cluster_size",
    "search_clusters",
    "sigma_b_from_icc",
    "simulate",
    "simulated_power",
    "size_check",
    "size_grid",
    "stepped_wedge",
    "stepped_wedge_analytic",
    "stepped_wedge_assurance",
    "stepped_wedge_assurance_from_draws",
    "stepped_wedge_design",
    "stepped_wedge_population_assurance",
    "stepped_wedge_simulate",
    "wilson_interval",
]
