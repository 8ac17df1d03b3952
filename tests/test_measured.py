"""True-score draws for a latent fit's new sites, checked against closed forms (no sampling)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import mbct_bayes as mb
from mbct_bayes.planning.measured import conditional_true_scores, latent_population, prepare_sites

PREDICTORS = ("E", "C", "F")
MEAN = np.array([0.2, -0.1, 0.3])  # centred latent population mean
SD = np.array([0.4, 0.3, 0.5])
CORR = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.4], [0.2, 0.4, 1.0]])
SIGMA_MEASURE = np.array([0.9, 0.7, 1.1])
ROLES = ("manager", "teacher")
OFFSET = np.array([[0.3, -0.3], [-0.2, 0.2], [0.1, -0.1]])  # (construct, role), sums to zero


def fake_fit(n_draws: int = 1, *, roles: bool = False) -> SimpleNamespace:
    """A latent fit's posterior with every draw equal to one known parameter set."""
    cov = np.outer(SD, SD) * CORR
    chol = np.linalg.cholesky(cov)
    rows, cols = np.tril_indices(3)
    draws = {
        "latent_mean": np.tile(MEAN, (n_draws, 1)),
        "latent_chol": np.tile(chol[rows, cols], (n_draws, 1)),  # PyMC's packed lower triangle
        "latent_sd": np.tile(SD, (n_draws, 1)),
        "sigma_measure": np.tile(SIGMA_MEASURE, (n_draws, 1)),
        "sigma_site": np.ones(n_draws),
    }
    role_labels, resp_pred, resp_role = None, None, None
    if roles:
        draws["role_offset"] = np.tile(OFFSET, (n_draws, 1, 1))
        role_labels = ROLES
        # fitted respondents: 3 managers and 1 teacher on every construct
        resp_pred = np.repeat(np.arange(3), 4)
        resp_role = np.tile([0, 0, 0, 1], 3)
    spec = mb.ModelSpec(measurement="latent", role_offsets=roles)
    md = SimpleNamespace(region_labels=None, role_labels=role_labels, resp_pred=resp_pred, resp_role=resp_role)
    return SimpleNamespace(spec=spec, draws=draws, model_data=md)


def gaussian_conditional(xbar_centred: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """T | xbar in covariance form: mu + S (S + D)^-1 (xbar - mu), S - S (S + D)^-1 S.

    The textbook conditioning of the joint normal (T, xbar), xbar = T + error with error
    covariance D = diag(sigma^2 / n); a different route from the code's precision form.
    """
    cov = np.outer(SD, SD) * CORR
    measured = counts > 0
    S_oo = cov[np.ix_(measured, measured)] + np.diag(SIGMA_MEASURE[measured] ** 2 / counts[measured])
    gain = cov[:, measured] @ np.linalg.inv(S_oo)
    mean = MEAN + gain @ (xbar_centred[measured] - MEAN[measured])
    return mean, cov - gain @ cov[measured, :]


def test_packed_cholesky_gives_the_fitted_sds():
    mean, cov = latent_population(fake_fit(2))
    np.testing.assert_allclose(mean, np.tile(MEAN, (2, 1)))
    np.testing.assert_allclose(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), np.tile(SD, (2, 1)))
    np.testing.assert_allclose(cov[0], np.outer(SD, SD) * CORR)


@pytest.mark.parametrize("counts", [(3, 3, 3), (1, 5, 2), (3, 0, 2)], ids=["three-each", "uneven", "C-unmeasured"])
def test_draws_follow_the_normal_normal_conditional(counts):
    n_draws = 40_000
    fit = fake_fit(n_draws)
    table = pd.DataFrame({"site": ["A"], "E": [3.6], "C": [2.7], "F": [3.9],
                          **{f"n_{p}": [c] for p, c in zip(PREDICTORS, counts, strict=True)}})
    _, measured = _measured_allowing_zero(fit, table)
    draws = conditional_true_scores(fit, measured, np.random.default_rng(1))[:, 0, :] - 3.0
    want_mean, want_cov = gaussian_conditional(np.array([0.6, -0.3, 0.9]), np.array(counts, float))
    se = np.sqrt(np.diag(want_cov) / n_draws)
    np.testing.assert_allclose(draws.mean(axis=0), want_mean, atol=5 * se.max())
    np.testing.assert_allclose(np.cov(draws.T), want_cov, atol=0.03 * want_cov.max())


def _measured_allowing_zero(fit, table):
    """prepare_sites refuses counts below 1 (a site mean needs a respondent); build the
    zero-count case (a construct nobody scored, as responses can give) directly."""
    from mbct_bayes.planning.measured import MeasuredSites

    if (table[[f"n_{p}" for p in PREDICTORS]].to_numpy() > 0).all():
        return prepare_sites(fit, table, "new_site")
    counts = table[[f"n_{p}" for p in PREDICTORS]].to_numpy(float)
    means = np.where(counts > 0, table[list(PREDICTORS)].to_numpy(float), np.nan)
    return table, MeasuredSites(np.array([0]), np.array(["A"], dtype=object), means, counts, None, "responses")


def test_many_respondents_recover_the_measured_score_and_none_the_population():
    fit = fake_fit(20_000)
    table = pd.DataFrame({"site": ["A", "B"], "E": [4.5, 4.5], "C": [2.0, 2.0], "F": [3.5, 3.5],
                          "n_respondents": [100_000, 1]})
    _, measured = prepare_sites(fit, table, "new_site")
    draws = conditional_true_scores(fit, measured, np.random.default_rng(2))
    np.testing.assert_allclose(draws[:, 0, :].mean(axis=0), [4.5, 2.0, 3.5], atol=0.01)
    assert draws[:, 0, :].std(axis=0).max() < 0.01
    # one respondent: pulled most of the way back to the population mean (reliability < 0.5)
    shrunk = draws[:, 1, :].mean(axis=0) - 3.0
    assert np.all(np.abs(shrunk - MEAN) < np.abs(np.array([1.5, -1.0, 0.5]) - MEAN))


def test_site_means_remove_the_fitted_role_mix_and_responses_each_respondents_role():
    fit = fake_fit(1, roles=True)
    mix = np.array([0.75, 0.25])  # 3 managers to 1 teacher in the fitted responses
    table = pd.DataFrame({"site": ["A"], "E": [3.4], "C": [3.4], "F": [3.4], "n_respondents": [100_000]})
    _, measured = prepare_sites(fit, table, "new_site")
    np.testing.assert_allclose(measured.role_weights[0], np.tile(mix, (3, 1)))
    truth = conditional_true_scores(fit, measured, np.random.default_rng(3))[0, 0]
    np.testing.assert_allclose(truth, 3.4 - OFFSET @ mix, atol=0.01)
    # respondent scores: two teachers, so the teachers' offset comes off
    responses = pd.DataFrame({"site": ["A", "A"], "role": ["teacher", "teacher"],
                              "E": [3.4, 3.4], "C": [3.4, 3.4], "F": [3.4, 3.4]})
    _, measured = prepare_sites(fit, pd.DataFrame({"site": ["A"]}), "new_site", responses=responses)
    np.testing.assert_allclose(measured.role_weights[0], np.tile([0.0, 1.0], (3, 1)))
    np.testing.assert_allclose(measured.counts[0], [2, 2, 2])


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        (dict(E=[3.0]), {}, r"latent-measurement fit.*--responses.*n_respondents.*--scores-are-true"),
        (dict(E=[3.0], n_respondents=[0]), {}, r"'n_respondents' row 1: number of respondents below 1"),
        (dict(E=[3.0], n_respondents=[2.5]), {}, r"'n_respondents' row 1: value 2.5 is not a whole number"),
        (dict(E=[3.0], n_respondents=[None]), {}, r"'n_respondents' row 1: missing number of respondents"),
        (dict(E=[3.0]), dict(responses=pd.DataFrame({"site": ["Z"], "E": [3.0], "C": [3.0], "F": [3.0]})),
         r"responses: site 'Z' is not in the sites table; add a row for it"),
        (dict(E=[3.0]), dict(responses=pd.DataFrame({"site": ["A"], "E": [3.0], "C": [3.0], "F": [3.0]}),
                             scores_are_true=True), r"either responses .* or scores_are_true"),
    ],
    ids=["plain-scores", "zero", "fraction", "blank", "stray-responses", "both"],
)
def test_bad_measured_scores(table, kwargs, message):
    fit = fake_fit(4)
    sites = pd.DataFrame({"site": ["A"], "C": [3.0], "F": [3.0], **table})
    with pytest.raises(mb.DataError, match=message):
        prepare_sites(fit, sites, "new_site", **kwargs)


def test_a_table_site_without_responses_and_an_unknown_role_are_refused():
    fit = fake_fit(4, roles=True)
    responses = pd.DataFrame({"site": ["A"], "role": ["manager"], "E": [3.0], "C": [3.0], "F": [3.0]})
    with pytest.raises(mb.DataError, match=r"sites: site 'B' has no respondent in the responses"):
        prepare_sites(fit, pd.DataFrame({"site": ["A", "B"]}), "new_site", responses=responses)
    with pytest.raises(mb.DataError, match=r"role 'nurse' is not among the fitted roles \(manager, teacher\)"):
        prepare_sites(fit, pd.DataFrame({"site": ["A"]}), "new_site", responses=responses.assign(role="nurse"))


def test_scores_are_true_and_known_sites_need_no_measurement():
    fit = fake_fit(4)
    table, measured = prepare_sites(fit, pd.DataFrame({"site": ["A"], "E": [3.0], "C": [3.0], "F": [3.0]}),
                                    "new_site", scores_are_true=True)
    assert measured is None and len(table) == 1


def test_without_a_stored_population_the_fitted_sites_stand_in():
    """A parametrisation that stores only the sites' latent values: their per-draw mean and covariance."""
    fit = fake_fit(2)
    rng = np.random.default_rng(5)
    sites = rng.multivariate_normal(MEAN, np.outer(SD, SD) * CORR, size=(2, 5000))
    fit.draws = {k: v for k, v in fit.draws.items() if k not in ("latent_mean", "latent_chol")} | {"latent": sites}
    mean, cov = latent_population(fit)
    np.testing.assert_allclose(mean, np.tile(MEAN, (2, 1)), atol=0.03)
    np.testing.assert_allclose(cov[1], np.outer(SD, SD) * CORR, atol=0.02)
