"""The planning page: one self-contained HTML file where a service lead tries scenarios.

:func:`write_planner` (``mbct-bayes planner FIT.nc --out planner.html``) writes one HTML file that
carries a thinned set of the fit's posterior draws (:func:`planner_draws`) and a script that
computes, in the browser and with the formulas of :mod:`mbct_bayes.planning` and
:mod:`mbct_bayes.power`, what a person asks about one service:

* P(embedded) as a new site (:func:`~mbct_bayes.planning.predict.predict`, ``kind="new_site"``):
  mean, 90% interval and a histogram of its draws; the typical site beside it
  (``kind="typical_site"``, :func:`~mbct_bayes.planning.predict.typical_part`);
* the gain from raising each lever by one point and P(gain > 0)
  (:func:`~mbct_bayes.planning.scenarios.levers`, ``step=1``);
* the smallest value of a lever that reaches a probability with a certainty
  (:func:`~mbct_bayes.planning.scenarios.target`, the exact search
  :func:`~mbct_bayes.planning.scenarios.smallest_reaching`);
* the assurance of a parallel cluster trial recruiting from the fitted sites (the population of
  :func:`mbct_bayes.power.fitted_sites_population`), by an analytic approximation per posterior
  draw (below).

Same draws, same numbers: the page embeds the thinned draws *and* the common random numbers that
``predict``/``levers``/``target`` draw from ``np.random.default_rng(seed)`` in the order the
planning modules document (unknown region, then the new site's effect, then a latent fit's
true scores), so for the same scenario the page and Python agree to rounding.
``tests/test_planner.py`` checks this in headless Chromium.

The trial's assurance on the page is not simulated: per posterior draw, the cluster proportions
of each arm have the mean and variance implied by the population (between-service spread, the
site effect and binomial sampling of ``m`` per cluster, Gauss-Hermite moments as
``mbct_bayes.power._population.implied``), and the pooled cluster-level t-test (the
package's default analysis) succeeds with the probability that a noncentral t with ``2c - 2``
degrees of freedom and noncentrality ``delta / se`` passes the critical value (Abramowitz & Stegun
26.7.10's normal approximation); the mean over draws is the assurance. ``ASSURANCE_AGREEMENT`` is the largest difference from the
package's simulation measured by the tests, stated on the page.

Values on the page are numbers in ``data-value`` attributes (full precision, ``NaN`` for a target
no value on the scale reaches); the visible text rounds probabilities to two decimals and shows
those that round to 0 or 1 as ``< 0.01`` / ``> 0.99``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes._version import __version__
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.io import check_output_path, write_text
from mbct_bayes.model.design import categorical_predictors, design_from_parts, numeric_predictors
from mbct_bayes.model.fit import Fit
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.planning.measured import latent_population, prepare_sites
from mbct_bayes.planning.predict import region_site_shares
from mbct_bayes.power._population import fitted_sites_population

#: Posterior draws the page carries by default (evenly spaced over all chains).
N_DRAWS = 1000
#: The agreement of the page's assurance with the package's simulation that tests/test_planner.py
#: requires (stated on the page). Measured on the bundled examples (bernoulli, binomial with regions,
#: ordinal, latent; 5-30 clusters per arm, 1-20 per cluster; 6,000 simulated trials): at most 0.011,
#: the page about 0.008 lower on average.
ASSURANCE_AGREEMENT = 0.03
#: Gauss-Hermite (probabilists') nodes for the implied cluster proportions, as power._population.
GH_NODES = 32
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
_ASSETS = Path(__file__).with_name("_planner_assets")


def planner_draws(fit: Fit, n_draws: int = N_DRAWS) -> Posterior:
    """The posterior the page embeds: at most ``n_draws`` draws, evenly spaced over all chains.

    Wrap it as a fit (``dataclasses.replace(fit, _posterior=planner_draws(fit))``, see
    :func:`planner_fit`) to compute in Python what the page shows.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 10:
        raise DataError(f"n_draws must be a whole number of at least 10, got {n_draws!r}")
    return fit.posterior.thinned(_kept_draws(fit.posterior.n_draws, n_draws))


def _kept_draws(total: int, n_draws: int) -> np.ndarray:
    """Positions of at most ``n_draws`` of ``total`` draws, evenly spaced (as the posterior predictive check's)."""
    return np.unique(np.linspace(0, total - 1, min(total, int(n_draws))).round().astype(np.int64))


def planner_fit(fit: Fit, n_draws: int = N_DRAWS) -> Fit:
    """``fit`` with its posterior replaced by :func:`planner_draws` (for ``predict``, ``levers``, ``target``)."""
    return replace(fit, _posterior=planner_draws(fit, n_draws))


# -- the embedded data ------------------------------------------------------------------------------
def _b64(values: Any) -> str:
    """Float64 little-endian bytes, base64: exact and about 11 characters a number."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _column_recipes(fit: Fit) -> list[list[int] | None]:
    """Per column of ``X``: the numeric predictors (indices) whose centred values it multiplies.

    ``None`` for a column of a categorical covariate, which the page holds at its reference level
    (the column is 0). Checked against :func:`~mbct_bayes.model.design.design_from_parts`.
    """
    spec = fit.spec
    numeric = numeric_predictors(spec)
    blocks: dict[str, list[list[int] | None]] = {p: [[numeric.index(p)]] for p in numeric}
    for c in categorical_predictors(spec):
        width = len(spec.categorical[c]["levels"]) - 1
        blocks[c] = [None] * width
    recipes = [r for p in spec.predictors for r in blocks[p]]
    for a, b in spec.interactions:
        for ra in blocks[a]:
            for rb in blocks[b]:
                recipes.append(None if ra is None or rb is None else ra + rb)
    # the recipe must rebuild X exactly (a design change would otherwise go unnoticed)
    rng = np.random.default_rng(0)
    centred = rng.normal(size=(4, len(numeric)))
    X = design_from_parts(spec, centred)
    rebuilt = np.column_stack([
        np.prod(centred[:, r], axis=1) if r is not None else np.zeros(len(centred)) for r in recipes
    ]) if recipes else np.zeros((4, 0))
    if X.shape != rebuilt.shape or not np.allclose(X, rebuilt):
        raise DataError("the planner cannot rebuild this model's design matrix; plan with 'mbct-bayes plan' instead")
    return recipes


def _event_offset(fit: Fit, posterior: Posterior) -> np.ndarray:
    """Per draw, ``event_logit(eta) - eta`` (0, or minus the top cutpoint); refused if not a shift."""
    family = get_family(fit.spec.family)
    zero = family.event_logit(np.zeros((posterior.n_draws, 1)), posterior.draws)[:, 0]
    one = family.event_logit(np.ones((posterior.n_draws, 1)), posterior.draws)[:, 0]
    if not np.allclose(one - zero, 1.0):
        raise DataError(f"the planner needs P(embedded) = expit(eta + offset); family {fit.spec.family!r} is not")
    return zero


def _random_numbers(posterior: Posterior, seed: int, latent: bool) -> dict[str, dict[str, str]]:
    """The common random numbers of ``predict``/``levers``/``target`` for one new or typical site.

    The draw order of :mod:`mbct_bayes.planning.predict` (module docstring): with an unknown
    region in a region model, ``rng.random((S, 1))`` first; for a new site then
    ``rng.standard_normal((S, 1))`` (its effect); for a latent fit then
    ``rng.standard_normal((S, 1, P))`` (its true scores, :func:`conditional_true_scores`).
    """
    n_draws, n_pred = posterior.n_draws, len(posterior.spec.predictors)
    regions = posterior.model_data.region_labels is not None
    out: dict[str, dict[str, str]] = {}
    for where in ("known", "unknown") if regions else ("known",):
        for kind in ("new", "typical"):
            rng = np.random.default_rng(seed)
            streams: dict[str, str] = {}
            if where == "unknown":
                streams["u"] = _b64(rng.random((n_draws, 1)))
            if kind == "new":
                streams["z_site"] = _b64(rng.standard_normal((n_draws, 1)))
            if latent:
                streams["z_truth"] = _b64(rng.standard_normal((n_draws, 1, n_pred)))
            out[f"{kind}_{where}"] = streams
    return out


def _latent_data(fit: Fit, posterior: Posterior) -> dict[str, Any] | None:
    """Per draw, what the conditional true scores of a measured site need (planning.measured)."""
    spec = posterior.spec
    if spec.measurement != "latent":
        return None
    mean, cov = latent_population(posterior)
    prec_pop = np.linalg.inv(cov)
    prior_term = np.einsum("spq,sq->sp", prec_pop, mean)
    # the roles behind a site mean are unknown: the fitted role mix, as prepare_sites assumes
    probe = pd.DataFrame([{spec.group: "probe", **{p: spec.center[p] for p in spec.predictors}, "n_respondents": 1}])
    _, measured = prepare_sites(posterior, probe, "new_site")
    assert measured is not None  # a latent fit's new site is measured
    role_adjust = np.zeros_like(mean)
    if measured.role_weights is not None:
        role_adjust = np.einsum("spr,pr->sp", posterior.draws["role_offset"], measured.role_weights[0])
    return {
        "prec_pop": _b64(prec_pop),
        "prior_term": _b64(prior_term),
        "noise_var": _b64(posterior.draws["sigma_measure"] ** 2),
        "role_adjust": _b64(role_adjust),
    }


def _population_data(fit: Fit, posterior: Posterior, keep: np.ndarray) -> dict[str, Any]:
    """The fitted sites as the trial's population (:func:`mbct_bayes.power.fitted_sites_population`)."""
    lever = numeric_predictors(fit.spec)[-1]
    try:
        pop = fitted_sites_population(fit, lever=lever, delta=1.0)
    except DataError:  # every site at the top of the scale: the profiles are the same either way
        pop = fitted_sites_population(fit, lever=lever, delta=-1.0)
    profiles = pop.profiles if pop.profiles.shape[0] == 1 else pop.profiles[keep]
    nodes, weights = np.polynomial.hermite_e.hermegauss(GH_NODES)
    return {
        "n_services": pop.n_services,
        "per_draw": bool(profiles.shape[0] > 1),
        "profiles": _b64(profiles),
        "region": [int(r) for r in pop.region],  # index into the fitted regions; -1: no region effect
        "nodes": _b64(nodes),
        "weights": _b64(weights / weights.sum()),
    }


def planner_data(fit: Fit, *, sites: pd.DataFrame | None = None, n_draws: int = N_DRAWS, seed: int = 0) -> dict[str, Any]:
    """Everything the page computes from, as JSON-ready values (arrays base64 float64)."""
    if not isinstance(fit, Fit):
        raise DataError(f"planner: expected a fit (mbct_bayes.load_fit), got {type(fit).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise DataError(f"seed must be a whole number, got {seed!r}")
    spec = fit.spec
    posterior = planner_draws(fit, n_draws)
    total = fit.posterior.n_draws
    keep = _kept_draws(total, n_draws)
    draws, md = posterior.draws, posterior.model_data
    numeric = numeric_predictors(spec)
    scales = []
    for p in numeric:
        bounds = spec.scale.get(p)
        if bounds is None:
            raise DataError(f"predictor {p!r} has no scale in the spec; the planner's sliders need scale.{p} = [min, max]")
        scales.append([float(bounds[0]), float(bounds[1])])
    latent = spec.measurement == "latent"
    if latent and categorical_predictors(spec):
        raise DataError("the planner does not take a latent-measurement fit with categorical covariates")
    family = get_family(spec.family)
    n_pred = len(numeric)
    intercept = draws["Intercept"] if "Intercept" in draws else np.zeros(posterior.n_draws)
    beta = draws["beta"] if "beta" in draws else np.zeros((posterior.n_draws, 0))
    regions = None
    if md.region_labels is not None:
        regions = {
            "labels": [str(r) for r in md.region_labels],
            "u_region": _b64(draws["u_region"]),
            "shares": _b64(region_site_shares(md)),
        }
    outcome = family.describe(spec)
    if family.counts_trials:
        outcome += " P(embedded) on this page is the chance that one unit (one trial) embeds."
    diag = fit.diagnostics
    return {
        "version": __version__,
        "title": spec.name or "mbct-bayes model",
        "description": spec.description or "",
        "outcome": outcome,
        "diagnostics_ok": bool(diag.get("ok")),
        "draws_total": int(total),
        "S": int(posterior.n_draws),
        "seed": int(seed),
        "predictors": list(numeric),
        "categorical": list(categorical_predictors(spec)),
        "scale": scales,
        "center": [float(spec.center[p]) for p in numeric],
        "recipes": _column_recipes(fit),
        "intercept": _b64(intercept),
        "beta": _b64(beta),
        "offset": _b64(_event_offset(fit, posterior)),
        "sigma_site": _b64(draws["sigma_site"]),
        "regions": regions,
        "latent": _latent_data(fit, posterior),
        "n_pred": n_pred,
        "crn": _random_numbers(posterior, int(seed), latent),
        "population": _population_data(fit, posterior, keep),
        "presets": _presets(fit, sites),
        "assurance_agreement": ASSURANCE_AGREEMENT,
    }


def _presets(fit: Fit, sites: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Named services the page offers as starting scenarios (``--sites``)."""
    if sites is None:
        return []
    if not isinstance(sites, pd.DataFrame):
        raise DataError(f"sites: expected a table (pandas DataFrame), got {type(sites).__name__}")
    spec = fit.spec
    latent = spec.measurement == "latent"
    need = [spec.group, *numeric_predictors(spec)] + (["n_respondents"] if latent else [])
    missing = [c for c in need if c not in sites.columns]
    if missing and not (latent and missing == ["n_respondents"]):
        # the package's own checks first: they name a table that was read with the wrong separator
        prepare_sites(fit.posterior, sites, "new_site", source="sites")
    if missing:
        raise DataError(
            f"sites: missing column(s) {', '.join(missing)}; give one row per service with {', '.join(need)}"
            + (" (and region)" if spec.region else "")
        )
    table, _ = prepare_sites(fit.posterior, sites, "new_site", source="sites")
    out = []
    for _, row in table.iterrows():
        item: dict[str, Any] = {"site": str(row[spec.group])}
        item.update({p: float(row[p]) for p in numeric_predictors(spec)})
        if spec.region and spec.region in table.columns and not pd.isna(row[spec.region]):
            item["region"] = str(row[spec.region]).strip()
        if latent:
            item["n"] = int(row["n_respondents"])
        out.append(item)
    return out


# -- the page ---------------------------------------------------------------------------------------
def render_planner(fit: Fit, *, sites: pd.DataFrame | None = None, n_draws: int = N_DRAWS, seed: int = 0) -> str:
    """The planning page's HTML text (see the module docstring)."""
    data = planner_data(fit, sites=sites, n_draws=n_draws, seed=seed)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = (_ASSETS / "planner.html").read_text(encoding="utf-8")
    script = (_ASSETS / "planner.js").read_text(encoding="utf-8")
    style = (_ASSETS / "planner.css").read_text(encoding="utf-8")
    parts = {
        "CSP": CSP,
        "TITLE": html.escape(f"Planner: {data['title']}"),
        "STYLE": style,
        "DATA": payload,
        "SCRIPT": script,
    }
    # one pass, so nothing inserted (a spec's name, say) is read as a placeholder
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], page)


def write_planner(
    fit: Fit,
    path: str | os.PathLike[str],
    *,
    sites: pd.DataFrame | None = None,
    n_draws: int = N_DRAWS,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write the planning page to ``path`` atomically.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit`.
    path
        The HTML file to write; an existing file is refused unless ``force``.
    sites
        Services to offer as starting scenarios (site, region, E, C, F; latent fits also
        ``n_respondents``); each is a link on the page.
    n_draws
        Posterior draws the page carries (evenly spaced; :func:`planner_draws`).
    seed
        Seed of the new-site draws, as ``predict``'s ``seed``.
    force
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = check_output_path(path)
    if target.exists() and not force:
        raise DataError(f"{target}: output file exists; remove it, choose another --out, or pass --force to replace it")
    write_text(target, render_planner(fit, sites=sites, n_draws=n_draws, seed=seed))
    return target


__all__ = ["planner_data", "planner_draws", "planner_fit", "render_planner", "write_planner"]
