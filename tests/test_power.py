"""Cluster-RCT power and assurance: closed forms, simulation, assurance, search.

Reference values: clusterPower (Kleinman, Moyer et al.) tests and help pages, read from the
package's public source (github.com/Kenkleinman/clusterPower: R/cpa.binary.R, R/crtpwr.2prop.R,
tests/testthat/testthat.R). Those tests were checked by the clusterPower authors against the
NIH GRT sample-size calculator and PASS 11. R is not available here, so R was not run: each value
is reproduced from the same formula and, where the reference is a rounded number, also worked by
hand below, step by step, with z_{0.975} = 1.959964 and z_{0.80} = 0.841621.
"""

from __future__ import annotations

import contextlib
import math
import types
import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power import (
    adjusted_t_test,
    analytic,
    assurance,
    assurance_curve,
    assurance_from_draws,
    binom_quantile,
    cluster_t_test,
    design_effect,
    gee_test,
    hayes_bennett_clusters,
    icc_from_sigma_b,
    marginal_proportion,
    power_curve,
    search,
    sigma_b_from_icc,
    simulate,
    size_check,
    size_grid,
    wilson_interval,
)
from mbct_bayes.power._analyses import gee_wald
from mbct_bayes.power._assurance import _draw_order
from mbct_bayes.power._kernel import analyse, cluster_sizes, column_draws

Z975, Z80 = 1.959964, 0.841621


# ------------------------------------------------------------------------------- analytic
def test_design_effect_equal_and_unequal_sizes():
    # Donner & Klar (2000): 1 + (m - 1) icc
    # Eldridge, Ashby & Kerry (2006): 1 + ((cv^2 + 1) m - 1) icc
    assert design_effect(150, 0.05) == pytest.approx(1 + 149 * 0.05)  # 8.45
    assert design_effect(20, 0.05, cv=0.65) == pytest.approx(1 + (1.4225 * 20 - 1) * 0.05)  # 2.3725


def test_clusterpower_nih_calculator_reference_t():
    # clusterPower tests/testthat/testthat.R,
    # "binary case matches reference value from NIH calculator":
    # round(cpa.binary(alpha=.05, power=.8, nclusters=NA, nsubjects=150, CV=0, p1=.1, p2=.2,
    #                  ICC=.05, tdist=TRUE)) == 12
    r = analytic(p0=0.1, p1=0.2, cluster_size=150, icc=0.05, power=0.8, dist="t")
    assert round(r["clusters_per_arm"]) == 12
    assert r["clusters_per_arm_design"] == 13  # 12.09 rounded up
    assert r["power_at_design"] >= 0.8 and r["df"] == 24


def test_clusterpower_pass11_reference_normal():
    # clusterPower tests/testthat/testthat.R, "binary case matches reference value from PASS 11":
    # round(cpa.binary(power=NA, nclusters=13, nsubjects=150, CV=0, p1=.1, p2=.2, ICC=.05,
    #                  tdist=FALSE), 3) == 0.86
    # By hand: DE = 1 + 149 * 0.05 = 8.45; var = (0.09 + 0.16) * 8.45 / (13 * 150) = 0.00108333;
    # sd = 0.0329140; |d|/sd = 0.1 / 0.0329140 = 3.03822; power = Phi(3.03822 - 1.959964)
    # = Phi(1.07826) = 0.85955.
    r = analytic(p0=0.1, p1=0.2, clusters_per_arm=13, cluster_size=150, icc=0.05, dist="normal")
    assert round(r["power"], 3) == 0.86
    assert r["power"] == pytest.approx(0.85955, abs=2e-5)


def test_clusterpower_help_example_clusters_normal():
    # clusterPower help for crtpwr.2prop / cpa.binary: nsubjects=10, p1=.1, p2=.2, icc=.1 —
    # "nclusters of greater than 37, suggests 38 clusters per condition". (crtpwr.2prop was
    # normal-only; with cpa.binary's later default tdist=TRUE the answer is 38.27, see below.)
    # By hand: DE = 1 + 9 * 0.1 = 1.9; c = (1.959964 + 0.841621)^2 * (0.09 + 0.16) * 1.9
    # / (10 * 0.1^2) = 7.848877 * 0.475 / 0.1 = 37.2822.
    r = analytic(p0=0.1, p1=0.2, cluster_size=10, icc=0.1, power=0.8, dist="normal")
    assert r["clusters_per_arm"] == pytest.approx(37.2822, abs=1e-3)
    assert r["clusters_per_arm_design"] == 38
    t = analytic(p0=0.1, p1=0.2, cluster_size=10, icc=0.1, power=0.8, dist="t")
    assert 38 < t["clusters_per_arm"] < 38.5  # the t reference asks for slightly more


def test_clusterpower_help_example_detectable_p():
    # cpa.binary help: nsubjects=10, nclusters=38, p1=.1, p2=NA, ICC=.1, p1inc=FALSE ->
    # "p2 greater than 0.198922 can be detected with at least 80% power" (normal reference: the
    # t reference gives 0.2004). clusterPower's uniroot tolerance is ~1.2e-4.
    r = analytic(p0=0.1, clusters_per_arm=38, cluster_size=10, icc=0.1, power=0.8, dist="normal")
    assert r["solved_for"] == "p1"
    assert r["p1"] == pytest.approx(0.198922, abs=1.2e-4)


def test_crtpwr_2prop_solve_cluster_size_by_hand():
    # crtpwr.2prop(alpha=0.05, power=0.8, m=50, cv=0, p1=0.1, p2=0.2, icc=0.1): in that version m is
    # clusters per arm and n (left NA) the cluster size, which it solves for.
    # By hand: needed var = 0.1^2 / 7.848877 = 0.00127407; 0.25 (1 + 0.1 (n - 1)) / (50 n) = var
    # -> (0.9 + 0.1 n) / n = 0.254815 -> n = 0.9 / 0.154815 = 5.8134.
    r = analytic(p0=0.1, p1=0.2, clusters_per_arm=50, icc=0.1, power=0.8, dist="normal")
    assert r["cluster_size"] == pytest.approx(5.8134, abs=1e-3)
    assert r["cluster_size_design"] == 6


def test_unequal_cluster_sizes_by_hand():
    # Eldridge et al. (2006) design effect with cv = 0.65 (their typical value), m = 20, icc = 0.05:
    # DE = 2.3725; c = 7.848877 * 0.25 * 2.3725 / (20 * 0.01) = 23.2768 (normal reference);
    # equal sizes DE = 1.95 -> c = 19.1321.
    equal = analytic(p0=0.1, p1=0.2, cluster_size=20, icc=0.05, power=0.8, dist="normal")
    unequal = analytic(p0=0.1, p1=0.2, cluster_size=20, icc=0.05, cv=0.65, power=0.8, dist="normal")
    assert equal["clusters_per_arm"] == pytest.approx(19.1321, abs=1e-3)
    assert unequal["clusters_per_arm"] == pytest.approx(23.2768, abs=1e-3)
    assert unequal["design_effect"] == pytest.approx(2.3725)
    t_unequal = analytic(p0=0.1, p1=0.2, cluster_size=20, icc=0.05, cv=0.65, power=0.8, dist="t")
    assert t_unequal["clusters_per_arm"] > unequal["clusters_per_arm"]


def test_hayes_bennett_by_hand():
    # Hayes & Bennett (1999), eq. for proportions, unmatched: c = 1 + (z_a/2 + z_b)^2
    # [p0(1-p0)/m + p1(1-p1)/m + k^2 (p0^2 + p1^2)] / (p0 - p1)^2.
    # p0 = .1, p1 = .2, m = 150, k = .25: bracket = 0.25/150 + 0.0625 * 0.05 = 0.00479167;
    # c = 1 + 7.848877 * 0.00479167 / 0.01 = 4.76092.
    assert hayes_bennett_clusters(0.1, 0.2, 150, 0.25) == pytest.approx(4.76092, abs=1e-4)
    r = analytic(p0=0.1, p1=0.2, cluster_size=150, k=0.25, power=0.8, method="hayes-bennett")
    assert r["clusters_per_arm"] == pytest.approx(4.76092, abs=1e-4)
    assert r["clusters_per_arm_design"] == 5 and r["dist"] == "normal"
    back = analytic(
        p0=0.1,
        p1=0.2,
        cluster_size=150,
        k=0.25,
        clusters_per_arm=r["clusters_per_arm"],
        method="hayes-bennett",
    )
    assert back["power"] == pytest.approx(0.8, abs=1e-8)


@pytest.mark.parametrize("dist", ["t", "normal"])
@pytest.mark.parametrize("cv", [0.0, 0.5])
def test_every_unknown_round_trips(dist, cv):
    base = dict(p0=0.25, icc=0.04, cv=cv, dist=dist)
    power = analytic(**base, p1=0.4, clusters_per_arm=11, cluster_size=25)["power"]
    assert analytic(**base, p1=0.4, cluster_size=25, power=power)[
        "clusters_per_arm"
    ] == pytest.approx(11, rel=1e-7)
    assert analytic(**base, p1=0.4, clusters_per_arm=11, power=power)[
        "cluster_size"
    ] == pytest.approx(25, rel=1e-6)
    assert analytic(**base, clusters_per_arm=11, cluster_size=25, power=power)[
        "p1"
    ] == pytest.approx(0.4, rel=1e-7)
    below = analytic(**base, clusters_per_arm=11, cluster_size=25, power=power, p1_greater=False)[
        "p1"
    ]
    assert below < 0.25


def test_pooled_variance_by_hand():
    # clusterPower R/cpa.binary.R, pooled = TRUE: p <- (p1 + p2) / 2;
    # sdd <- sqrt(p * (1 - p) * 2 * DEFF / (nclusters * nsubjects)), DEFF = 1 + (m - 1) ICC
    # (Donner & Klar 2000): the two-proportion variance with one pooled proportion in place of
    # p0 q0 + p1 q1, inflated by the design effect. tdist = FALSE below (normal reference).
    # p0 = .1, p1 = .2, m = 10, icc = .1: pbar = .15, 2 pbar qbar = 0.255, DE = 1.9;
    # c = (1.959964 + 0.841621)^2 * 0.255 * 1.9 / (10 * 0.1^2) = 7.848877 * 4.845 = 38.0278
    # (unpooled 0.25 gives 37.2822, the clusterPower help example above).
    r = analytic(p0=0.1, p1=0.2, cluster_size=10, icc=0.1, power=0.8, dist="normal", pooled=True)
    assert r["clusters_per_arm"] == pytest.approx(38.0278, abs=1e-3)
    assert r["clusters_per_arm_design"] == 39
    # power at 38 clusters per arm: var = 0.255 * 1.9 / 380 = 0.001275, |d| / sd = 2.800560,
    # power = Phi(2.800560 - 1.959964) = Phi(0.840596) = 0.799713
    back = analytic(p0=0.1, p1=0.2, clusters_per_arm=38, cluster_size=10, icc=0.1, dist="normal", pooled=True)
    assert back["power"] == pytest.approx(0.799713, abs=2e-6)


def test_odds_ratio_sets_p1_and_pooled_option():
    r = analytic(p0=0.2, odds_ratio=2.0, clusters_per_arm=10, cluster_size=20, icc=0.05)
    assert r["p1"] == pytest.approx(0.5 / 1.5)  # odds 0.25 * 2 = 0.5
    pooled = analytic(
        p0=0.2, odds_ratio=2.0, clusters_per_arm=10, cluster_size=20, icc=0.05, pooled=True
    )
    assert pooled["power"] != r["power"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(p0=0.0, p1=0.2, cluster_size=20, icc=0.05, power=0.8), r"p0 = 0 is outside \(0, 1\)"),
        (
            dict(p0=0.1, p1=1.2, cluster_size=20, icc=0.05, power=0.8),
            r"p1 = 1.2 is outside \(0, 1\)",
        ),
        (dict(p0=0.1, p1=0.2, cluster_size=20, icc=1.0, power=0.8), r"icc = 1 is outside \[0, 1\)"),
        (
            dict(p0=0.1, p1=0.2, cluster_size=20, icc=-0.1, power=0.8),
            r"icc = -0.1 is outside \[0, 1\)",
        ),
        (
            dict(p0=0.1, p1=0.2, cluster_size=0.5, icc=0.05, power=0.8),
            r"cluster_size \(--cluster-size\) = 0.5 is below 1; .* 1 when the outcome is one yes/no per cluster",
        ),
        (
            dict(p0=0.1, p1=0.2, cluster_size=1, icc=0.05, cv=0.5, power=0.8),
            r"cv \(--cv\) = 0.5 with cluster_size 1: clusters of one member cannot vary in size",
        ),
        (
            dict(p0=0.1, p1=0.2, cluster_size=1, k=0.25, power=0.8, method="hayes-bennett"),
            r"k \(--k\) = 0.25 with cluster_size 1: .* set k to 0",
        ),
        (
            dict(p0=0.1, p1=0.2, icc=0.05, power=0.8),
            r"exactly one of .* clusters_per_arm, cluster_size are unset",
        ),
        (
            dict(p0=0.1, p1=0.2, clusters_per_arm=5, cluster_size=20, icc=0.05, power=0.8),
            r"exactly one of .* none is unset",
        ),
        (
            dict(p0=0.1, p1=0.2, cluster_size=20, icc=0.05, power=0.99, max_clusters=10),
            r"target power 0.99 is not reached with up to 10 clusters per arm",
        ),
        (
            dict(p0=0.1, p1=0.2, clusters_per_arm=4, icc=0.2, power=0.9),
            r"cannot be reached with 4 clusters per arm at any cluster size",
        ),
        (dict(p0=0.1, p1=0.2, odds_ratio=2, cluster_size=20, icc=0.05, power=0.8), r"not both"),
        (
            dict(
                p0=0.1, p1=0.2, cluster_size=20, k=0.2, power=0.8, method="hayes-bennett", dist="t"
            ),
            r"normal reference only",
        ),
        (dict(p0=0.1, p1=0.2, cluster_size=20, power=0.8), r"needs icc"),
    ],
)
def test_analytic_bad_input(kwargs, message):
    with pytest.raises(DataError, match=message):
        analytic(**kwargs)


# ------------------------------------------------------------------------------- ICC helpers
def test_logit_icc_conversion_is_exact():
    s = sigma_b_from_icc(0.1, scale="logit")
    assert s**2 / (s**2 + math.pi**2 / 3) == pytest.approx(0.1)
    assert icc_from_sigma_b(0.3, s, scale="logit") == pytest.approx(0.1)


@pytest.mark.parametrize(("p", "sigma"), [(0.1, 0.3), (0.3, 0.8), (0.7, 1.5), (0.05, 2.5)])
def test_marginal_proportion_and_icc_match_numerical_integration(p, sigma):
    def moment(k):
        f = lambda u: special.expit(special.logit(p) + sigma * u) ** k * stats.norm.pdf(u)  # noqa: E731
        return integrate.quad(f, -12, 12, epsabs=1e-13)[0]

    mean, second = moment(1), moment(2)
    assert marginal_proportion(p, sigma) == pytest.approx(mean, abs=1e-8)
    assert icc_from_sigma_b(p, sigma) == pytest.approx(
        (second - mean**2) / (mean * (1 - mean)), abs=1e-8
    )
    # the proportion-scale ICC is smaller than the logit-scale one for the same sigma_b
    assert icc_from_sigma_b(p, sigma) < icc_from_sigma_b(p, sigma, scale="logit")


def test_sigma_b_from_proportion_icc_round_trips():
    s = sigma_b_from_icc(0.05, 0.3)
    assert icc_from_sigma_b(0.3, s) == pytest.approx(0.05, abs=1e-10)
    assert sigma_b_from_icc(0.0, 0.3) == 0.0
    assert marginal_proportion(0.3, 0.0) == pytest.approx(0.3)
    with pytest.raises(DataError, match="needs the probability p0"):
        sigma_b_from_icc(0.05)


# ------------------------------------------------------------------------------- kernel
def test_binom_quantile_equals_scipy():
    rng = np.random.default_rng(0)
    v = rng.random(20000)
    n = rng.integers(1, 400, 20000)  # both the recursion (<= 200) and the scipy path
    p = rng.uniform(0.0005, 0.9995, 20000)
    np.testing.assert_array_equal(binom_quantile(v, n, p), stats.binom.ppf(v, n, p).astype(int))


def test_cluster_t_test_equals_scipy_per_trial():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 21, (300, 8)) / 20
    b = rng.integers(0, 21, (300, 8)) / 20 + 0.05
    a[0], b[0] = 0.3, 0.3  # no variation, no difference: not significant
    a[1], b[1] = 0.2, 0.4  # no variation, a difference: significant (scipy's t is infinite)
    for welch in (False, True):
        sig, diff = cluster_t_test(a, b, [5, 8], 0.05, welch=welch)
        for j, c in enumerate((5, 8)):
            with _quiet():  # scipy warns about the constant rows
                ref = stats.ttest_ind(b[:, :c], a[:, :c], axis=1, equal_var=not welch)
            expect = np.where(np.isnan(ref.pvalue), False, ref.pvalue < 0.05)
            expect[1] = True
            np.testing.assert_array_equal(sig[:, j], expect)
            np.testing.assert_allclose(diff[:, j], b[:, :c].mean(1) - a[:, :c].mean(1), atol=1e-12)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def test_gee_equals_statsmodels_bias_reduced():
    import statsmodels.api as sm  # declared test dependency: imported, never skipped
    rng = np.random.default_rng(5)
    c = 6
    n_a, n_b = rng.integers(5, 30, (3, c)), rng.integers(5, 30, (3, c))
    y_a, y_b = rng.binomial(n_a, 0.3), rng.binomial(n_b, 0.5)
    sig, _ = gee_test(y_a, n_a, y_b, n_b, [c], 0.05, correction="mancl-derouen")
    for i in range(3):
        rows = []
        for arm, (y, n) in enumerate(((y_a[i], n_a[i]), (y_b[i], n_b[i]))):
            for j in range(c):
                rows += [(arm, 100 * arm + j, 1)] * y[j] + [(arm, 100 * arm + j, 0)] * (n[j] - y[j])
        data = np.array(rows, dtype=float)
        model = sm.GEE(
            data[:, 2],
            sm.add_constant(data[:, 0]),
            groups=data[:, 1],
            family=sm.families.Binomial(),
            cov_struct=sm.cov_struct.Independence(),
        )
        with _quiet():
            fit = model.fit(cov_type="bias_reduced")
        stat = fit.params[1] / fit.bse[1]
        assert sig[i, 0] == (abs(stat) > stats.t.ppf(0.975, 2 * c - 2))


def test_variable_cluster_sizes_have_the_mean_and_cv():
    _, _, g = column_draws(seed=3, chunk=0, arm=0, column=0, n=200_000, cv=0.5)
    sizes = cluster_sizes(40, g)
    assert sizes.min() >= 2
    assert sizes.mean() == pytest.approx(40, rel=0.01)
    assert sizes.std() / sizes.mean() == pytest.approx(0.5, rel=0.03)


# ------------------------------------------------------------------------------- simulation
SIM = dict(p0=0.3, p1=0.45, clusters_per_arm=15, cluster_size=20, icc=0.05, sims=2000, seed=11)


def test_simulation_reports_keys_and_marginal_proportions():
    r = simulate(**SIM)
    for key in (
        "power",
        "power_mc_low",
        "power_mc_high",
        "sims",
        "clusters_per_arm",
        "cluster_size",
        "p0",
        "p1",
        "icc",
        "cv",
        "dist",
        "p0_marginal",
        "p1_marginal",
        "sigma_b",
        "seed",
    ):
        assert key in r
    assert r["power_mc_low"] < r["power"] < r["power_mc_high"]
    # marginal proportions are the typical-cluster ones pulled towards 0.5
    assert r["p0_marginal"] == pytest.approx(marginal_proportion(0.3, r["sigma_b"]))
    assert 0.3 < r["p0_marginal"] < 0.5 and r["icc"] == pytest.approx(0.05, abs=1e-9)
    assert r["icc_logit"] > r["icc"]


def test_same_seed_same_numbers_and_common_random_numbers():
    a, b = simulate(**SIM), simulate(**SIM)
    assert a["power"] == b["power"]
    assert simulate(**{**SIM, "seed": 12})["power"] != a["power"]
    # a design inside a curve gets exactly the numbers it gets alone
    curve = power_curve(
        p0=0.3, p1=0.45, clusters=range(2, 31), cluster_sizes=[20], icc=0.05, sims=2000, seed=11
    )
    assert curve.loc[curve.clusters_per_arm == 15, "power"].item() == a["power"]
    # and the curve is smooth: common random numbers make it (here exactly) non-decreasing
    assert (np.diff(curve["power"]) >= 0).all()


def test_simulation_agrees_with_analytic_when_many_clusters():
    # 40 clusters per arm: the normal approximation behind the closed form holds
    r = simulate(p0=0.3, p1=0.4, clusters_per_arm=40, cluster_size=20, icc=0.05, sims=4000, seed=2)
    assert r["power_mc_low"] <= r["power_analytic"] <= r["power_mc_high"]
    assert r["power_analytic"] == pytest.approx(0.80, abs=0.01)


def test_simulation_shows_where_normal_analytic_fails_few_clusters():
    # 3 clusters per arm: the normal-reference formula promises far more power than the trial has
    r = simulate(p0=0.2, p1=0.45, clusters_per_arm=3, cluster_size=50, icc=0.05, sims=4000, seed=1)
    icc = (r["icc"] + r["icc_p1"]) / 2
    normal = analytic(
        p0=r["p0_marginal"],
        p1=r["p1_marginal"],
        clusters_per_arm=3,
        cluster_size=50,
        icc=icc,
        dist="normal",
    )["power"]
    assert normal > r["power_mc_high"] + 0.1
    # the t reference (df = 2(c - 1)) is the better guide here
    assert abs(r["power_analytic"] - r["power"]) < abs(normal - r["power"])


def test_type_one_error_with_few_clusters():
    r = simulate(p0=0.3, p1=0.3, clusters_per_arm=4, cluster_size=20, icc=0.1, sims=4000, seed=4)
    assert r["power_mc_low"] <= 0.05 <= r["power_mc_high"]


def test_variable_sizes_cost_power_and_analyses_run():
    equal = simulate(**SIM)["power"]
    assert simulate(**SIM, cv=0.7)["power"] < equal
    for analysis in ("welch", "gee"):
        other = simulate(**SIM, analysis=analysis)
        assert abs(other["power"] - equal) < 0.06


def test_parallel_processes_equal_serial():
    serial = simulate(**{**SIM, "sims": 3000}, chunk_size=500)
    parallel = simulate(**{**SIM, "sims": 3000}, chunk_size=500, n_jobs=2)
    assert parallel["power"] == serial["power"]


def test_dask_cluster_equals_serial():
    import distributed  # a declared dependency (dask[distributed]): a missing one fails, never skips
    serial = simulate(**{**SIM, "sims": 3000}, chunk_size=500)
    with distributed.LocalCluster(
        n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        remote = simulate(
            **{**SIM, "sims": 3000}, chunk_size=500, scheduler=cluster.scheduler_address
        )
    assert remote["power"] == serial["power"]


def test_progress_lines_go_to_stderr(capsys):
    simulate(**{**SIM, "sims": 1500}, chunk_size=500, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "3/3 chunks (100%)" in err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(p0=1.0), r"p0 = 1 is outside \(0, 1\)"),
        (dict(icc=1.0), r"icc = 1 is outside \[0, 1\)"),
        (dict(cluster_size=0), r"cluster_size \(--cluster-size\) = 0 is below 1"),
        (dict(cluster_size=1, cv=0.3), r"cv \(--cv\) = 0.3 with cluster_size 1"),
        (dict(clusters_per_arm=1), r"clusters_per_arm \(--clusters\) = 1 is below 2"),
        (dict(sigma_b=0.5), r"exactly one of icc \(--icc\) and sigma_b"),
        (dict(p1=None), r"give the intervention arm's p1"),
        (dict(seed=-1), r"seed \(--seed\) = -1"),
        (dict(scheduler="nowhere"), r"not a Dask scheduler address"),
    ],
)
def test_simulation_bad_input(kwargs, message):
    with pytest.raises(DataError, match=message):
        simulate(**{**SIM, **kwargs})


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("mbct_bayes.runtime.CONNECT_TIMEOUT", "1s")
    with pytest.raises(DataError, match="cannot reach the Dask scheduler"):
        simulate(**{**SIM, "sims": 10}, scheduler="tcp://127.0.0.1:9")


def test_wilson_interval():
    low, high = wilson_interval(50, 100)
    assert (float(low), float(high)) == pytest.approx((0.4038, 0.5962), abs=1e-4)


# ------------------------------------------------------------------------------- assurance
QUANTILES = stats.norm.ppf((np.arange(400) + 0.5) / 400)  # deterministic "posterior" draws
DESIGN = dict(clusters_per_arm=15, cluster_size=20)


def test_point_mass_posterior_equals_simulated_power():
    b, s, lor = special.logit(0.3), 0.5, 0.6
    point = assurance_from_draws(
        np.full(50, b), np.full(50, s), np.full(50, lor), **DESIGN, sims=2000, seed=9
    )
    power = simulate(p0=0.3, odds_ratio=math.exp(lor), sigma_b=s, **DESIGN, sims=2000, seed=9)
    assert point["assurance"] == power["power"]  # same kernel, same seed: identical
    assert point["power_at_posterior_mean"] == point["assurance"]
    other = simulate(p0=0.3, odds_ratio=math.exp(lor), sigma_b=s, **DESIGN, sims=2000, seed=10)
    assert other["power_mc_low"] <= point["assurance"] <= other["power_mc_high"]


def test_assurance_falls_as_the_posterior_widens():
    values = []
    for sd in (0.0, 0.2, 0.5, 1.0):
        r = assurance_from_draws(
            np.full(400, -0.85),
            np.full(400, 0.5),
            0.6 + sd * QUANTILES,
            **DESIGN,
            sims=2000,
            seed=2,
        )
        values.append(r["assurance"])
        assert r["power_at_posterior_mean"] == pytest.approx(values[0], abs=1e-12) or sd == 0.0
    assert values == sorted(values, reverse=True) and values[0] - values[-1] > 0.05


@pytest.mark.parametrize(
    ("mean", "sd", "direction"),
    [(0.2, 0.5, None), (0.0, 1.0, None), (-0.3, 0.5, None), (-0.3, 0.5, "increase"), (0.2, 0.5, "decrease")],
)
def test_assurance_never_exceeds_probability_of_benefit(mean, sd, direction):
    # with many clusters power is near 1 wherever the effect clearly lies in the intended
    # direction, so assurance comes close to its bound P(direction) (+ alpha/2 (1 - P(direction)))
    # but not above it; the default direction is the sign of the posterior-mean effect
    effect = mean + sd * QUANTILES
    r = assurance_from_draws(
        np.full(400, -0.85),
        np.full(400, 0.5),
        effect,
        clusters_per_arm=60,
        cluster_size=50,
        sims=2000,
        seed=2,
        direction=direction,
    )
    sign = {"increase": 1, "decrease": -1, None: 1 if effect.mean() >= 0 else -1}[direction]
    assert r["direction"] == ("increase" if sign > 0 else "decrease")
    p_direction = (sign * effect > 0).mean()
    assert r["p_effect_in_direction"] == pytest.approx(p_direction)
    assert r["p_effect_positive"] == pytest.approx((effect > 0).mean())
    assert r["assurance_bound"] == pytest.approx(p_direction + 0.025 * (1 - p_direction))
    assert r["assurance_mc_low"] <= r["assurance_bound"]


def test_assurance_reaches_its_bound_from_both_sides():
    # Where every draw's effect is either clearly in the intended direction (power ~1) or exactly 0
    # (success = a significant result in that direction by chance, alpha/2), assurance equals its
    # bound P(direction) + alpha/2 (1 - P(direction)) up to Monte Carlo error. Checked from both
    # sides: counting significant results in either direction gives 0.1 + 0.9 * 0.05 = 0.145 (too
    # high); testing at alpha/2 gives 0.1 + 0.9 * 0.0125 = 0.111 (too low); the band here is
    # +-0.007 around 0.1225.
    n, sims = 1000, 20000
    effect = np.where(np.arange(n) < 100, 1.5, 0.0)  # 10 % of draws at log OR 1.5, 90 % at 0
    r = assurance_from_draws(
        np.full(n, -0.85), np.full(n, 0.5), effect, **DESIGN, sims=sims, seed=3, direction="increase"
    )
    bound = 0.1 + 0.025 * 0.9
    assert r["assurance_bound"] == pytest.approx(bound)
    mc_sd = math.sqrt(bound * (1 - bound) / sims)
    assert abs(r["assurance"] - bound) < 3 * mc_sd, (r["assurance"], bound)
    assert r["assurance_mc_low"] <= bound <= r["assurance_mc_high"]


def test_an_effect_below_zero_is_a_decrease_not_a_failure():
    # mirror image: base logit 0 and effect -e is the trial of effect +e with the outcome's
    # labels swapped, so (default direction) assurance is the same within Monte Carlo error;
    # asking for an increase against a decreasing effect succeeds at most alpha/2 of the time
    effect = 0.6 + 0.2 * QUANTILES
    up = assurance_from_draws(np.zeros(400), np.full(400, 0.5), effect, **DESIGN, sims=4000, seed=4)
    down = assurance_from_draws(np.zeros(400), np.full(400, 0.5), -effect, **DESIGN, sims=4000, seed=5)
    assert down["direction"] == "decrease" and up["direction"] == "increase"
    assert down["assurance"] > 0.5
    assert abs(up["assurance"] - down["assurance"]) < 3 * math.sqrt(2 * 0.25 / 4000)
    wrong = assurance_from_draws(
        np.zeros(400), np.full(400, 0.5), -effect, **DESIGN, sims=4000, seed=5, direction="increase"
    )
    p_up = float((-effect > 0).mean())  # a few draws of -effect lie above 0
    assert wrong["assurance"] <= 0.025 and wrong["assurance_bound"] == pytest.approx(p_up + 0.025 * (1 - p_up))
    with pytest.raises(DataError, match="direction"):
        assurance_from_draws(np.zeros(4), np.ones(4), np.ones(4), **DESIGN, direction="up")


def _two_chains(n: int) -> dict[str, np.ndarray]:
    """Draws as two chains in a row: the first half with no effect, the second with log OR 2.5
    (power ~1 at 15 x 20); a trial that took its draws in stored order would see only chain 1."""
    return dict(
        p0_logit_draws=np.full(n, -0.85),
        sigma_b_draws=np.full(n, 0.5),
        log_or_draws=np.where(np.arange(n) < n // 2, 0.0, 2.5),
    )


def test_draw_order_is_a_seeded_permutation_cycled():
    # each trial's draw: a seeded random order of all draws, cycled when trials outnumber draws
    n = 50
    order = _draw_order(7, n, n)
    assert sorted(order) == list(range(n))  # every draw exactly once
    assert not np.array_equal(order, np.arange(n))  # not the stored order
    cycled = _draw_order(7, n, 125)
    np.testing.assert_array_equal(cycled[:n], order)
    np.testing.assert_array_equal(cycled[n : 2 * n], order)
    np.testing.assert_array_equal(cycled[2 * n :], order[:25])
    np.testing.assert_array_equal(_draw_order(7, n, n), order)  # same seed, same order
    assert not np.array_equal(_draw_order(8, n, n), order)  # another seed, another order


def test_fewer_trials_than_draws_sample_every_chain():
    # 200 trials from 1000 draws stored chain after chain: shuffled, about half the trials take a
    # draw with the effect (assurance ~ 0.5 + 0.5 * 0.025; binomial SD 0.035); in stored order all
    # 200 would come from the first chain (assurance ~ 0.025)
    draws = _two_chains(1000)
    r = assurance_from_draws(**draws, **DESIGN, sims=200, seed=5, direction="increase")
    assert 0.38 < r["assurance"] < 0.64, r["assurance"]
    assert assurance_from_draws(**draws, **DESIGN, sims=200, seed=5, direction="increase") == r
    # assurance moves in steps of 1/200, so two seeds may tie; three seeds do not all
    others = {assurance_from_draws(**draws, **DESIGN, sims=200, seed=s, direction="increase")["assurance"] for s in (6, 7)}
    assert others | {r["assurance"]} != {r["assurance"]}
    curve = assurance_curve(**draws, clusters=[15], cluster_sizes=[20], sims=200, seed=5, direction="increase")
    assert curve["assurance"].iloc[0] == pytest.approx(r["assurance"])


def test_assurance_cycles_draws_and_reports_inputs():
    r = assurance_from_draws(
        np.full(10, -1.0),
        np.full(10, 0.4),
        np.linspace(0, 1, 10),
        **DESIGN,
        sims_per_draw=30,
        seed=1,
    )
    assert r["sims"] == 300 and r["draws_used"] == 10 and r["draws_total"] == 10
    assert r["p0"] == pytest.approx(special.expit(-1.0)) and r["sigma_b"] == pytest.approx(0.4)
    r = assurance_from_draws(
        np.zeros(1000), np.full(1000, 0.4), np.zeros(1000), **DESIGN, sims=100, seed=1
    )
    assert r["draws_used"] == 100


def test_assurance_bad_draws():
    with pytest.raises(DataError, match="posterior draws differ in length"):
        assurance_from_draws(np.zeros(5), np.ones(4), np.zeros(5), **DESIGN)
    with pytest.raises(DataError, match="sigma_b_draws has negative values"):
        assurance_from_draws(np.zeros(5), -np.ones(5), np.zeros(5), **DESIGN)
    with pytest.raises(DataError, match="non-finite"):
        assurance_from_draws(np.zeros(5), np.ones(5), np.array([0, 1, np.nan, 0, 0]), **DESIGN)


@pytest.fixture
def fake_predict(monkeypatch):
    """Stand-in for mbct_bayes.planning.predict.trial_inputs: records its arguments, returns fixed draws."""
    calls = []

    def trial_inputs(fit, *, lever="F", delta=1.0, profile=None):
        calls.append((fit, lever, delta, profile))
        return {
            "baseline_logit": np.full(200, -0.8),
            "sigma_site": np.full(200, 0.5),
            "log_odds_ratio": 0.5 + 0.3 * QUANTILES[::2],
        }

    monkeypatch.setattr("mbct_bayes.power._assurance.trial_inputs", trial_inputs)  # where assurance looks it up
    return calls


def test_assurance_from_fit_uses_trial_inputs(fake_predict):
    fit = types.SimpleNamespace(posterior=object())  # trial_inputs takes the fit's posterior
    r = assurance(fit, lever="F", delta=1.0, profile={"E": 3}, **DESIGN, sims=1000, seed=3)
    assert fake_predict == [(fit.posterior, "F", 1.0, {"E": 3})]
    direct = assurance_from_draws(
        np.full(200, -0.8),
        np.full(200, 0.5),
        0.5 + 0.3 * QUANTILES[::2],
        **DESIGN,
        sims=1000,
        seed=3,
    )
    assert r["assurance"] == direct["assurance"]
    assert r["lever"] == "F" and r["delta"] == 1.0 and r["profile"] == {"E": 3}


def test_assurance_curve_over_clusters_rises():
    table = assurance_curve(
        np.full(400, -0.85),
        np.full(400, 0.5),
        0.6 + 0.5 * QUANTILES,
        clusters=[5, 10, 20, 40],
        cluster_sizes=[20],
        sims=1000,
        seed=1,
    )
    assert list(table.clusters_per_arm) == [5, 10, 20, 40]
    assert (np.diff(table["assurance"]) > 0).all()
    assert (table["assurance"] <= table["power_at_posterior_mean"]).iloc[-1]


# ------------------------------------------------------------------------------- search
def test_search_clusters_returns_first_design_reaching_target():
    r = search(
        target=0.8, p0=0.3, p1=0.45, cluster_size=20, icc=0.05, sims=1000, seed=1, max_clusters=40
    )
    curve = r["curve"]
    c = r["clusters_per_arm"]
    assert isinstance(c, int) and r["power"] >= 0.8
    assert curve.loc[curve.clusters_per_arm == c - 1, "power"].item() < 0.8
    assert list(curve.clusters_per_arm) == list(range(2, 41))
    assert {"power_mc_low", "power_mc_high", "power_analytic"} <= set(curve.columns)
    # the found design's size, as simulate() reports it at that design
    alone = simulate(p0=0.3, p1=0.45, clusters_per_arm=c, cluster_size=20, icc=0.05, sims=1000, seed=1)
    assert r["size_holds"] is True and r["actual_size"] == alone["actual_size"]


def test_search_cluster_size_by_bisection():
    r = search(
        target=0.75,
        solve_for="cluster_size",
        p0=0.3,
        p1=0.45,
        clusters_per_arm=25,
        icc=0.05,
        sims=1000,
        seed=1,
        max_cluster_size=200,
    )
    curve = r["curve"]
    m = r["cluster_size"]
    assert r["power"] >= 0.75
    assert curve.loc[curve.cluster_size == m - 1, "power"].item() < 0.75


def test_search_analytic_matches_solver():
    r = search(method="analytic", target=0.8, p0=0.1, p1=0.2, cluster_size=150, icc=0.05)
    assert r["clusters_per_arm_design"] == 13
    assert r["clusters_per_arm"] == pytest.approx(12.0938, abs=1e-3)
    assert (np.diff(r["curve"]["power"]) > 0).all()


def test_search_assurance_from_draws():
    draws = {
        "baseline_logit": np.full(400, -0.85),
        "sigma_site": np.full(400, 0.5),
        "log_odds_ratio": 0.6 + 0.3 * QUANTILES,
    }
    r = search(
        method="assurance",
        target=0.6,
        draws=draws,
        cluster_size=20,
        sims=1000,
        seed=1,
        max_clusters=40,
    )
    assert r["assurance"] >= 0.6 and "power_at_posterior_mean" in r["curve"]


def test_search_unreachable_targets():
    with pytest.raises(
        DataError, match=r"target power 0.95 is not reached with up to 6 clusters per arm"
    ):
        search(
            target=0.95,
            p0=0.3,
            p1=0.45,
            cluster_size=20,
            icc=0.05,
            sims=200,
            seed=1,
            max_clusters=6,
        )
    with pytest.raises(
        DataError, match=r"not reached with 4 clusters per arm at any cluster size up to 300"
    ):
        search(
            target=0.95,
            solve_for="cluster_size",
            p0=0.3,
            p1=0.4,
            clusters_per_arm=4,
            icc=0.1,
            sims=200,
            seed=1,
            max_cluster_size=300,
        )
    with pytest.raises(DataError, match="assurance needs posterior draws or a fit"):
        search(method="assurance", cluster_size=20)


def test_power_curve_figure():
    from matplotlib.figure import Figure

    from mbct_bayes.plots.power import power_curve_figure

    r = search(
        target=0.8, p0=0.3, p1=0.45, cluster_size=20, icc=0.05, sims=300, seed=1, max_clusters=30
    )
    fig = power_curve_figure(r["curve"], target=0.8, chosen=r["clusters_per_arm"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "clusters per arm" and len(ax.lines) >= 3
    table = assurance_curve(
        np.full(50, -0.8),
        np.full(50, 0.5),
        np.full(50, 0.5),
        clusters=[5, 10],
        cluster_sizes=[20],
        sims=200,
        seed=1,
    )
    assert power_curve_figure(table).axes[0].get_ylabel() == "assurance"


# -- one binary outcome per cluster (cluster size 1) ----------------------------------------------
def test_one_outcome_per_cluster_is_the_two_proportion_formula():
    """Whether each service embeds: c services per arm, one yes/no each; the design effect is 1."""
    from scipy import stats as st

    r = analytic(p0=0.3, p1=0.6, clusters_per_arm=40, cluster_size=1, icc=0.05, dist="normal")
    sd = math.sqrt((0.3 * 0.7 + 0.6 * 0.4) / 40)
    assert r["design_effect"] == 1.0
    assert r["cluster_size_design"] == 1
    assert r["power"] == pytest.approx(st.norm.cdf(0.3 / sd - st.norm.ppf(0.975)), rel=1e-12)
    hb = analytic(p0=0.3, p1=0.6, clusters_per_arm=40, cluster_size=1, k=0.0, method="hayes-bennett")
    needed = analytic(p0=0.3, p1=0.6, cluster_size=1, k=0.0, power=r["power"], method="hayes-bennett")
    # Hayes & Bennett count c - 1 clusters' worth of information
    assert hb["power"] == pytest.approx(st.norm.cdf(0.3 * math.sqrt(39 / 0.45) - st.norm.ppf(0.975)), rel=1e-12)
    # Hayes & Bennett's c = 1 + (z_a + z_b)^2 (p0 q0 + p1 q1) / d^2 with m = 1, k = 0
    assert needed["clusters_per_arm"] == pytest.approx(
        1 + (st.norm.ppf(0.975) + st.norm.ppf(r["power"])) ** 2 * (0.21 + 0.24) / 0.09, rel=1e-6
    )


def test_one_outcome_per_cluster_simulated_matches_analytic():
    sim = simulate(p0=0.3, p1=0.6, clusters_per_arm=40, cluster_size=1, sigma_b=0.0, sims=20000, seed=1)
    t_power = analytic(p0=0.3, p1=0.6, clusters_per_arm=40, cluster_size=1, icc=0.0)["power"]
    assert sim["power_mc_low"] <= t_power <= sim["power_mc_high"], (sim["power"], t_power)


def test_one_outcome_per_cluster_assurance_is_power_for_a_point_mass():
    """Per-service yes/no outcome: the site SD now only spreads each service's own probability."""
    a = assurance_from_draws(np.full(500, -0.2), np.full(500, 0.8), np.full(500, 1.0),
                             clusters_per_arm=30, cluster_size=1, sims=20000, seed=3)
    p = simulate(p0=float(special.expit(-0.2)), odds_ratio=math.e, sigma_b=0.8, clusters_per_arm=30,
                 cluster_size=1, sims=20000, seed=4)
    assert a["cluster_size"] == 1
    assert abs(a["assurance"] - p["power"]) < 2.6 * math.sqrt(2 * p["power"] * (1 - p["power"]) / 20000)
    # marginal rates are pulled towards 1/2 by the site spread: the design sees those
    assert abs(a["p0_marginal"] - 0.5) < abs(float(special.expit(-0.2)) - 0.5)


# -- analyses: covariate-adjusted, GEE with Kauermann-Carroll, and whether each holds its size ---
def _adjusted_trials(seed=6, sims=40, c=6, p=3):
    rng = np.random.default_rng(seed)
    prop_a, prop_b = rng.integers(0, 21, (2, sims, c)) / 20
    base_a, base_b = rng.normal(3, 1, (2, sims, c, p))
    prop_b = prop_b + 0.02 * base_b[..., 0]  # the covariate carries signal in some trials
    base_a[0, :, 2] = base_b[0, :, 2] = 2.0  # a constant covariate: dropped, df 2c - 2 - 2
    base_a[1, :, 1], base_b[1, :, 1] = 2 * base_a[1, :, 0], 2 * base_b[1, :, 0]  # collinear
    return prop_a, prop_b, base_a, base_b


def test_adjusted_equals_statsmodels_ols_per_trial():
    """Two-stage residuals equal OLS on the covariates ignoring arm (statsmodels); the stage-2 t
    equals the cluster-level ANCOVA t for arm with 2c - 2 - p df (Frisch-Waugh-Lovell), p the
    covariates of full rank — constant and collinear columns dropped per trial."""
    import statsmodels.api as sm  # declared test dependency: imported, never skipped
    c, sims = 6, 40
    prop_a, prop_b, base_a, base_b = _adjusted_trials(c=c, sims=sims)
    sig, diff = adjusted_t_test(prop_a, prop_b, base_a, base_b, [c], 0.05)
    hits = 0
    for i in range(sims):
        y = np.concatenate([prop_a[i], prop_b[i]])
        covariates = np.concatenate([base_a[i], base_b[i]])
        with _quiet():  # rank-deficient designs (trials 0 and 1) warn; pinv drops the column
            resid = sm.OLS(y, sm.add_constant(covariates, has_constant="add")).fit().resid
        assert diff[i, 0] == pytest.approx(resid[c:].mean() - resid[:c].mean(), abs=1e-10)
        arm = np.repeat([0.0, 1.0], c)[:, None]
        with _quiet():
            ancova = sm.OLS(y, sm.add_constant(np.hstack([arm, covariates]), has_constant="add")).fit()
        assert ancova.df_resid == 2 * c - 2 - (3 if i > 1 else 2)
        assert sig[i, 0] == (ancova.pvalues[1] < 0.05), i
        hits += sig[i, 0]
    assert 0 < hits < sims  # both decisions are exercised


def test_adjusted_without_covariates_is_the_pooled_t():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 21, (2, 500, 8)) / 20
    none = np.empty((500, 8, 0))
    sig, diff = adjusted_t_test(a, b, none, none, [3, 8], 0.05)
    t_sig, t_diff = cluster_t_test(a, b, [3, 8], 0.05)
    np.testing.assert_array_equal(sig, t_sig)
    np.testing.assert_allclose(diff, t_diff, atol=1e-12)


def test_adjusted_through_analyse_and_its_refusals():
    c = 6
    prop_a, prop_b, base_a, base_b = _adjusted_trials(c=c)
    n = np.full(prop_a.shape, 20)
    sig, _ = analyse(prop_a * 20, n, prop_b * 20, n, [3, c], 0.05, "adjusted", baseline_a=base_a, baseline_b=base_b)
    np.testing.assert_array_equal(sig, adjusted_t_test(prop_a, prop_b, base_a, base_b, [3, c], 0.05)[0])
    with pytest.raises(DataError, match=r"needs each cluster's baseline E, C, F: give a population of services"):
        analyse(prop_a, 1, prop_b, 1, [c], 0.05, "adjusted")
    # 2 clusters per arm with 3 covariates: 2c - 2 - p = -1 df
    with pytest.raises(DataError, match=r"3 baseline covariates has 2c - 2 - 3 < 1 .* at least 3 clusters per arm"):
        adjusted_t_test(prop_a, prop_b, base_a, base_b, [2, c], 0.05)
    with pytest.raises(DataError, match=r"baseline covariates have shapes"):
        adjusted_t_test(prop_a, prop_b, base_a[..., 0], base_b[..., 0], [c], 0.05)
    with pytest.raises(DataError, match=r"adjusted analysis \(--analysis adjusted\) needs"):
        simulate(**{**SIM, "sims": 10}, analysis="adjusted")


def _kc_sandwich_by_loops(y, n, groups, arm):
    """Logistic GEE (independence) sandwich with Kauermann-Carroll residuals, written out from
    the general formula: V = B^-1 (sum_j D_j' V_j^-1 (I - H_jj)^-1/2 r_j r_j' (I - H_jj)'^-1/2
    V_j^-1 D_j) B^-1, H_jj = D_j B^-1 D_j' V_j^-1, one row per member (Kauermann & Carroll 2001)."""
    from scipy.linalg import fractional_matrix_power

    x = np.column_stack([np.ones_like(arm), arm])
    beta = np.array([special.logit(y[arm == 0].mean()), 0.0])
    beta[1] = special.logit(y[arm == 1].mean()) - beta[0]
    mu = special.expit(x @ beta)
    bread = sum(
        (x[groups == g] * (mu * (1 - mu))[groups == g, None]).T @ x[groups == g] for g in np.unique(groups)
    )
    bread_inv = np.linalg.inv(bread)
    meat = np.zeros((2, 2))
    for g in np.unique(groups):
        rows = groups == g
        w = mu[rows] * (1 - mu[rows])
        d = x[rows] * w[:, None]
        v_inv = np.diag(1.0 / w)
        h = d @ bread_inv @ d.T @ v_inv
        r = fractional_matrix_power(np.eye(rows.sum()) - h, -0.5) @ (y[rows] - mu[rows])
        u = d.T @ v_inv @ np.real(r)
        meat += np.outer(u, u)
    return np.sqrt((bread_inv @ meat @ bread_inv)[1, 1])


def _members(y_a, n_a, y_b, n_b):
    rows = []
    for arm, (ys, ns) in enumerate(((y_a, n_a), (y_b, n_b))):
        for j, (y, n) in enumerate(zip(ys, ns, strict=True)):
            rows += [(arm, 100 * arm + j, 1)] * int(y) + [(arm, 100 * arm + j, 0)] * int(n - y)
    return np.array(rows, dtype=float)


def test_gee_kauermann_carroll_equals_the_general_formula_and_statsmodels():
    """KC closed form = the general KC sandwich by explicit loops; the Mancl-DeRouen and
    uncorrected forms = statsmodels GEE cov_type "bias_reduced" and "robust"."""
    import statsmodels.api as sm  # declared test dependency: imported, never skipped
    rng = np.random.default_rng(8)
    c = 5
    n_a, n_b = rng.integers(3, 10, (2, 3, c))
    y_a, y_b = rng.binomial(n_a, 0.3), rng.binomial(n_b, 0.5)
    log_or, se_kc = gee_wald(y_a, n_a, y_b, n_b)
    for i in range(3):
        data = _members(y_a[i], n_a[i], y_b[i], n_b[i])
        assert se_kc[i] == pytest.approx(_kc_sandwich_by_loops(data[:, 2], None, data[:, 1], data[:, 0]), rel=1e-8)
        model = sm.GEE(data[:, 2], sm.add_constant(data[:, 0]), groups=data[:, 1],
                       family=sm.families.Binomial(), cov_struct=sm.cov_struct.Independence())
        for correction, cov_type in (("mancl-derouen", "bias_reduced"), ("none", "robust")):
            with _quiet():
                fit = model.fit(cov_type=cov_type)
            _, se = gee_wald(y_a[i : i + 1], n_a[i : i + 1], y_b[i : i + 1], n_b[i : i + 1], correction=correction)
            assert se[0] == pytest.approx(fit.bse[1], rel=1e-6)
            assert log_or[i] == pytest.approx(fit.params[1], rel=1e-6)
    with pytest.raises(DataError, match="correction = 'fay'"):
        gee_wald(y_a, n_a, y_b, n_b, correction="fay")


def test_gee_arm_at_zero_is_decided_by_the_t_test():
    y_a = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 0, 1]])
    y_b = np.array([[3, 4, 2, 5], [0, 1, 0, 0], [2, 3, 1, 2]])
    sig, diff = gee_test(y_a, 5, y_b, 5, [4], 0.05)
    t_sig, _ = cluster_t_test(y_a / 5, y_b / 5, [4], 0.05)
    assert sig[:2, 0].tolist() == t_sig[:2, 0].tolist() == [True, False]
    assert np.isfinite(gee_wald(y_a[2:], 5, y_b[2:], 5)[1]).all() and diff[0, 0] == pytest.approx(0.7)


def test_exact_size_with_one_outcome_per_cluster_matches_review_and_brute_force():
    """Pooled t, 4 x 1 and 15 x 1, proportion-scale ICC 0.05 (REVIEW.md "GEE size": exact sizes
    0.0072, 0.0311 at p0 0.1 and 0.0544 at p0 0.3), and 4 x 1 against all 2^8 outcomes with scipy."""
    for c, p0, expect, holds in ((4, 0.1, 0.0072, False), (15, 0.1, 0.0311, False), (15, 0.3, 0.0544, True)):
        r = size_check("t", c, 1, p0, sigma_b_from_icc(0.05, p0))
        assert round(r["actual_size"], 4) == expect and r["size_method"] == "exact"
        assert r["size_holds"] is holds and (r["size_note"] is None) is holds
    pm = marginal_proportion(0.3, 0.5)
    outcomes = np.array(np.meshgrid(*[[0.0, 1.0]] * 8, indexing="ij")).reshape(8, -1).T
    weight = np.prod(np.where(outcomes == 1, pm, 1 - pm), axis=1)
    for analysis, equal_var in (("t", True), ("welch", False)):
        with _quiet():
            pvalue = stats.ttest_ind(outcomes[:, 4:], outcomes[:, :4], axis=1, equal_var=equal_var).pvalue
        brute = weight @ np.nan_to_num(pvalue < 0.05)
        assert size_check(analysis, 4, 1, 0.3, 0.5)["actual_size"] == pytest.approx(brute, abs=1e-12)


def test_simulated_size_is_the_power_runs_trials_without_the_effect():
    """Common random numbers: the simulated size equals simulate()'s rejection rate at p1 = p0
    with the same seed and number of trials, for each analysis the kernel runs."""
    for analysis in ("t", "welch", "gee"):
        null = simulate(p0=0.2, p1=0.2, clusters_per_arm=6, cluster_size=8, sigma_b=0.5, sims=10_000,
                        seed=21, analysis=analysis)
        assert null["size_method"] == "simulated" and null["size_sims"] == 10_000
        assert null["actual_size"] == null["rejection_rate_two_sided"]
        assert null["size_mc_low"] < null["actual_size"] < null["size_mc_high"]
    exact = simulate(p0=0.3, p1=0.3, clusters_per_arm=8, cluster_size=1, sigma_b=0.5, sims=20_000, seed=2,
                     analysis="gee")
    assert exact["size_method"] == "exact"
    assert exact["power_mc_low"] <= exact["actual_size"] <= exact["power_mc_high"]


def test_analytic_with_one_outcome_per_cluster_reports_the_exact_size():
    """The closed form assumes size alpha; with 4 services per arm at p0 0.1 the pooled t has
    0.0049 (Binomial(4, 0.1) arm counts, enumerated), so the output says so."""
    r = analytic(p0=0.1, p1=0.5, clusters_per_arm=4, cluster_size=1, icc=0.05)
    assert round(r["actual_size"], 4) == 0.0049 and r["size_method"] == "exact" and r["size_holds"] is False
    assert "closed-form power assumes a test of size 0.05" in r["size_note"]
    solved = analytic(p0=0.3, p1=0.6, cluster_size=1, icc=0.0, power=0.8)
    assert solved["clusters_per_arm_design"] == 41 and solved["size_holds"] is True and solved["size_note"] is None
    assert "actual_size" not in analytic(p0=0.3, p1=0.5, clusters_per_arm=10, cluster_size=20, icc=0.05)


def test_simulate_says_when_size_does_not_hold():
    r = simulate(p0=0.1, p1=0.4, clusters_per_arm=4, cluster_size=1, sigma_b=0.5, sims=500, seed=1)
    assert r["size_holds"] is False and r["actual_size"] < 0.035 and r["size_band"] == [0.035, 0.065]
    assert r["size_note"].startswith("size does not hold: the t analysis at 4 clusters per arm x 1 has type-I error")
    assert "conservative" in r["size_note"]


GRID = dict(clusters=[4, 8, 15, 30], cluster_sizes=[1, 5, 20], p0=[0.1, 0.3, 0.5], sigma_b=0.5)


def test_type_one_error_grid_every_analysis():
    """Issue 11: each analysis holds type-I error in [0.035, 0.065] (alpha 0.05) over 4-30 clusters
    per arm, sizes 1, 5, 20, p0 0.1/0.3/0.5 (sigma_b 0.5 on the logit scale), or says it cannot.

    Simulated cells: 10,000 null trials (Wilson half-width ~0.0043 at 0.05, so a true size of
    0.05 lands in the band with ~6 SE to spare); size 1: exact. Where the size holds is pinned
    for the cells that are far from the band's edges (benchmarks/size_grid.py prints them all).
    """
    table = size_grid(**GRID, sims=10_000, seed=1)
    assert len(table) == 4 * 4 * 3 * 3
    band = table["actual_size"].between(0.035, 0.065)
    assert (table["size_holds"] == band).all()
    exact = (table["cluster_size"] == 1) & (table["analysis"] != "adjusted")
    assert (table["size_method"] == np.where(exact, "exact", "simulated")).all()
    holds = table.set_index(["analysis", "cluster_size", "clusters_per_arm", "p0"])["size_holds"].sort_index()
    for analysis in ("t", "welch", "gee", "adjusted"):
        # 20 per cluster: every analysis holds (Welch from 8 clusters per arm; 0.038-0.044 at 4)
        assert holds[analysis, 20].loc[[8, 15, 30] if analysis == "welch" else slice(None)].all(), analysis
        # 5 per cluster: the cluster-level t and adjusted analyses everywhere; GEE and Welch from 15
        assert holds[analysis, 5].loc[slice(None) if analysis in ("t", "adjusted") else [15, 30]].all(), analysis
        # one yes/no per cluster, 4 per arm, p0 0.1: too few outcomes for any test; reported
        assert not holds[analysis, 1, 4, 0.1], analysis
    # the one-outcome cells where the pooled t does hold (exact)
    assert holds["t", 1, 30].all() and holds["t", 1, 15, 0.5] and holds["t", 1, 4, 0.3]
