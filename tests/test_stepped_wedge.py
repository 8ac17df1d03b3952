"""Stepped-wedge power (``mb.power.stepped_wedge`` and ``mbct-bayes power stepped-wedge``).

Analytic values are checked against swCRTdesign's published example and against an independent
GLS computation with explicit n x n matrices; the simulation against the analytic answer within
its Monte Carlo interval, and its type-I error at p1 = p0.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import special, stats

from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.power import (
    stepped_wedge,
    stepped_wedge_analytic,
    stepped_wedge_assurance_from_draws,
    stepped_wedge_design,
    stepped_wedge_simulate,
)
from mbct_bayes.power._stepped_wedge import SteppedWedgeAnalysis, hussey_hughes_variance, simulate_sw_counts

# swCRTdesign, man/swPwr.Rd, "Example 1 (Random Intercepts Only, standard Stepped Wedge (SW)
# design)": swPwr(swDsn(c(6,6,6,6)), distn="binomial", n=120, mu0=0.05, mu1=0.035, tau=0.01,
# eta=0, rho=0, gamma=0, alpha=0.05) — 24 clusters in 4 sequences of 6, 5 periods, 120 per
# cluster-period; its power is 0.786 (the value issue 11's acceptance quotes from swCRTdesign's
# README; swPwr's R/swPwr.R computes var.theta.WLS = solve(t(Xmat) %*% solve(Wmat) %*% Xmat) and
# pwrWLS = pnorm(|theta|/se - z) + pnorm(-|theta|/se - z), which this package follows).
SWPWR_EXAMPLE = dict(sequences=[6, 6, 6, 6], cluster_size=120, p0=0.05, p1=0.035, tau=0.01)
SWPWR_POWER = 0.786


def test_swpwr_published_example():
    result = stepped_wedge_analytic(**SWPWR_EXAMPLE)
    assert round(result["power"], 3) == SWPWR_POWER
    # swPwr's closed form (Hussey & Hughes 2007) agrees with its WLS to rounding
    assert result["power_closed_form"] == pytest.approx(result["power"], abs=1e-12)
    assert result["periods"] == 5 and result["clusters"] == 24 and result["dist"] == "normal"
    assert result["method"] == "Hussey & Hughes 2007 via WLS, as swCRTdesign's swPwr"


def test_hussey_hughes_closed_form_by_hand():
    """HH's formula with U, W, V counted by hand for the 6,6,6,6 design (independent of code)."""
    # U = 6 * (4 + 3 + 2 + 1) = 60; column sums 0, 6, 12, 18, 24 -> W = 36 + 144 + 324 + 576 = 1080;
    # row sums 4, 3, 2, 1 (six each) -> V = 6 * (16 + 9 + 4 + 1) = 180.
    i, t, u, w, v = 24, 5, 60, 1080, 180
    pbar = 0.0425
    s = pbar * (1 - pbar) / 120
    tau2 = 0.01**2
    by_hand = i * s * (s + t * tau2) / ((i * u - w) * s + (u**2 + i * t * u - t * w - i * v) * tau2)
    design = stepped_wedge_design([6, 6, 6, 6])
    assert hussey_hughes_variance(design, s, 0.01) == pytest.approx(by_hand, rel=1e-14)
    assert stepped_wedge_analytic(**SWPWR_EXAMPLE)["var_theta"] == pytest.approx(by_hand, rel=1e-10)
    z = stats.norm.ppf(0.975)
    ratio = 0.015 / math.sqrt(by_hand)
    assert stepped_wedge(**SWPWR_EXAMPLE)["power"] == pytest.approx(
        stats.norm.cdf(ratio - z) + stats.norm.cdf(-ratio - z), abs=1e-10
    )


def _explicit_gls_variance(design, sizes, pbar, tau, time):
    """Var(theta_hat) with the full (I*T) x (I*T) covariance inverted directly."""
    clusters, periods = design.shape
    if time == "categorical":
        time_cols = np.eye(periods)[:, 1:]  # other reference period than the package: same fit
    else:
        time_cols = (np.arange(periods) + 1.0)[:, None]
    rows = [np.concatenate([[1.0], time_cols[t], [design[i, t]]]) for i in range(clusters) for t in range(periods)]
    z = np.asarray(rows)
    same_cluster = np.kron(np.eye(clusters), np.ones((periods, periods)))
    cov = np.diag(pbar * (1 - pbar) / np.asarray(sizes, float).ravel()) + tau**2 * same_cluster
    return np.linalg.inv(z.T @ np.linalg.inv(cov) @ z)[-1, -1]


@pytest.mark.parametrize("time", ["categorical", "linear"])
def test_general_design_equals_explicit_gls(time):
    """A non-standard design (a cluster that never crosses, one that starts treated, one that
    crosses back) with unequal cluster-period sizes: the package's per-cluster GLS equals the
    explicit matrix computation."""
    design = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 1, 1],
            [0, 0, 1, 1, 1, 1],
            [0, 0, 0, 1, 1, 1],
            [0, 0, 0, 0, 1, 1],
            [1, 1, 1, 1, 1, 1],
            [0, 0, 1, 1, 0, 0],
        ]
    )
    sizes = np.random.default_rng(3).integers(20, 200, size=design.shape)
    p0, p1, tau = 0.3, 0.4, 0.04
    result = stepped_wedge_analytic(design=design, cluster_size=sizes, p0=p0, p1=p1, tau=tau, time=time)
    explicit = _explicit_gls_variance(design, sizes, (p0 + p1) / 2, tau, time)
    assert result["var_theta"] == pytest.approx(explicit, rel=1e-10)
    assert result["power_closed_form"] is None  # HH's closed form needs equal sizes


@pytest.mark.parametrize("sequences,periods", [([3, 1, 2], None), ([2, 2, 2], 6), ([5, 5], 3)])
def test_closed_form_equals_gls_for_standard_designs(sequences, periods):
    result = stepped_wedge_analytic(sequences=sequences, periods=periods, cluster_size=40, p0=0.2, p1=0.3, icc=0.05)
    assert result["power_closed_form"] == pytest.approx(result["power"], abs=1e-12)


def test_design_layout_and_extra_periods():
    design = stepped_wedge_design("2,1", periods=4)
    assert design.tolist() == [[0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]]


def test_icc_is_swpwr_conversion():
    """swPwr with icc and cac = 1: tau = sqrt(pbar (1 - pbar) icc / (1 - icc))."""
    pbar = 0.0425
    icc = 0.01**2 / (0.01**2 + pbar * (1 - pbar))
    by_icc = stepped_wedge_analytic(**{**SWPWR_EXAMPLE, "tau": None}, icc=icc)
    assert by_icc["tau"] == pytest.approx(0.01, rel=1e-12)
    assert by_icc["power"] == pytest.approx(stepped_wedge_analytic(**SWPWR_EXAMPLE)["power"], abs=1e-12)


def test_linear_time_uses_fewer_parameters():
    """A linear trend (2 time parameters instead of T) can only shrink the variance; for the
    standard equal-sequence design the share treated rises linearly, so the two coincide."""
    common = dict(sequences=[3, 1, 2], periods=6, cluster_size=50, p0=0.3, p1=0.4, icc=0.05)
    categorical = stepped_wedge_analytic(**common)
    linear = stepped_wedge_analytic(**common, time="linear")
    assert linear["var_theta"] < categorical["var_theta"] * 0.99
    standard = [stepped_wedge_analytic(**SWPWR_EXAMPLE, time=t)["power"] for t in ("categorical", "linear")]
    assert standard[0] == pytest.approx(standard[1], abs=1e-10)


def _explicit_analysis(y, design, time):
    """Moment variance components and GLS with explicit n x n projections and covariance."""
    clusters, periods = design.shape
    n = clusters * periods
    time_cols = np.eye(periods)[:, 1:] if time == "categorical" else np.arange(periods, dtype=float)[:, None]
    z = np.asarray(
        [np.concatenate([[1.0], time_cols[t], [design[i, t]]]) for i in range(clusters) for t in range(periods)]
    )
    k = np.kron(np.eye(clusters), np.ones((periods, 1)))
    within = np.hstack([k, z[:, 1:]])
    m_ols = np.eye(n) - z @ np.linalg.pinv(z)
    m_within = np.eye(n) - within @ np.linalg.pinv(within)
    df = n - np.linalg.matrix_rank(within)
    sigma2 = y @ m_within @ y / df
    tau2 = max((y @ m_ols @ y - sigma2 * (n - z.shape[1])) / np.trace(k.T @ m_ols @ k), 0.0)
    cov_inv = np.linalg.inv(sigma2 * np.eye(n) + tau2 * k @ k.T)
    info_inv = np.linalg.inv(z.T @ cov_inv @ z)
    beta = info_inv @ z.T @ cov_inv @ y
    return beta[-1], math.sqrt(info_inv[-1, -1]), df


@pytest.mark.parametrize("sequences,periods,time", [([2, 1, 2], None, "categorical"), ([2, 1, 1], 5, "linear")])
def test_analysis_equals_explicit_matrices(sequences, periods, time):
    design = stepped_wedge_design(sequences, periods)
    rng = np.random.default_rng(7)
    cluster_p = 0.2 + 0.1 * rng.random((20, design.shape[0], 1))
    proportions = rng.binomial(40, cluster_p + 0.05 * design, size=(20, *design.shape)) / 40
    analysis = SteppedWedgeAnalysis(design, time)
    estimate, se, reject = analysis.test(proportions, 0.05)
    for s in range(20):
        est, s_e, df = _explicit_analysis(proportions[s].ravel(), design, time)
        assert estimate[s] == pytest.approx(est, rel=1e-9, abs=1e-12)
        assert se[s] == pytest.approx(s_e, rel=1e-9)
        assert df == analysis.df
        assert reject[s] == (abs(est / s_e) > stats.t.ppf(0.975, df))


def test_simulation_agrees_with_analytic_swpwr_example():
    """Simulated (proportion-scale truth, moment variance components, GLS, t(91)) vs analytic.
    Measured with 20,000 trials: 0.788 (0.783-0.794) against the analytic 0.786."""
    sim = stepped_wedge_simulate(**SWPWR_EXAMPLE, sims=4000, seed=11)
    assert sim["power_mc_low"] <= SWPWR_POWER <= sim["power_mc_high"]
    assert sim["df"] == 91 and sim["clipped_share"] < 0.001
    assert sim["power_mc_high"] - sim["power_mc_low"] < 0.03


def test_simulation_between_t_and_normal_references_for_a_small_design():
    """6 clusters (df 24): the simulated test pays for estimating the variance components, so its
    power lies between the normal-reference analytic answer (0.570, variance known) and the
    noncentral-t one with the same df (0.536). Measured with 20,000 trials: 0.560
    (0.553-0.567)."""
    common = dict(sequences=[3, 1, 2], periods=6, cluster_size=50, p0=0.3, p1=0.4, icc=0.05)
    analytic = stepped_wedge_analytic(**common)
    sim = stepped_wedge_simulate(**common, sims=4000, seed=11)
    ncp, critical = abs(analytic["theta"]) / analytic["se_theta"], stats.t.ppf(0.975, sim["df"])
    t_reference = stats.nct.sf(critical, sim["df"], ncp) + stats.nct.cdf(-critical, sim["df"], ncp)
    assert sim["df"] == 24 and t_reference == pytest.approx(0.536, abs=0.001)
    assert sim["power_mc_high"] >= t_reference and sim["power_mc_low"] <= analytic["power"]


@pytest.mark.parametrize(
    "design,seed",
    [
        (dict(SWPWR_EXAMPLE, p1=0.05), 2),
        (dict(sequences=[3, 1, 2], periods=6, cluster_size=50, p0=0.3, p1=0.3, icc=0.05), 12),
    ],
)
def test_type_one_error_near_nominal(design, seed):
    """p1 = p0: the rejection rate holds 0.05 within Monte Carlo error plus a small excess
    (20,000 trials: the swPwr example 0.051, the 6-cluster design 0.052)."""
    sim = stepped_wedge_simulate(**design, sims=4000, seed=seed)
    assert sim["power"] == sim["rejection_rate_two_sided"]
    assert 0.035 <= sim["rejection_rate_two_sided"] <= 0.065


def test_secular_trend_needs_period_effects():
    """A step in the outcome when most clusters cross over (sequences 6,1,1; +0.06 from period 2
    on, no intervention effect): period fixed effects keep the size, a linear trend does not
    (measured with 4,000 trials: 0.054 and 0.217)."""
    common = dict(sequences=[6, 1, 1], cluster_size=120, p0=0.3, p1=0.3, icc=0.02, sims=2000, seed=1)
    step = [0.0, 0.06, 0.06, 0.06]
    categorical = stepped_wedge_simulate(**common, period_effects=step)
    linear = stepped_wedge_simulate(**common, period_effects=step, time="linear")
    assert categorical["power_mc_low"] <= 0.05 <= categorical["power_mc_high"] + 0.01
    assert linear["power_mc_low"] > 0.15
    assert categorical["period_effects"] == step and "period_effects[t]" in categorical["simulation_model"]
    with pytest.raises(DataError, match="period_effects needs 4 finite numbers"):
        stepped_wedge_simulate(**common, period_effects=[0.0, 0.1])


def test_simulation_is_reproducible():
    a = stepped_wedge(**SWPWR_EXAMPLE, sims=300, seed=5)
    b = stepped_wedge(**SWPWR_EXAMPLE, sims=300, seed=5)
    c = stepped_wedge(**SWPWR_EXAMPLE, sims=300, seed=6)
    assert a == b and a["power_simulated"] != c["power_simulated"]
    assert a["power"] == stepped_wedge_analytic(**SWPWR_EXAMPLE)["power"]


def test_kernel_takes_per_cluster_logits_and_shifts():
    """Each simulated trial's clusters carry their own control logit and intervention shift."""
    design = stepped_wedge_design([1, 1, 1])
    control = np.tile([-2.0, 0.0, 1.0], (4000, 1))
    shifts = np.tile([0.0, 1.0, -1.0], (4000, 1))
    counts = simulate_sw_counts(np.random.default_rng(0), control, shifts, design, 50)
    assert counts.shape == (4000, 3, 4)
    observed = counts.mean(axis=0) / 50
    expected = special.expit(control[0][:, None] + shifts[0][:, None] * design)
    np.testing.assert_allclose(observed, expected, atol=0.005)


def test_assurance_concentrated_posterior_is_power():
    """Draws all at one truth with no between-cluster spread: assurance equals the simulated power
    of the same trials (proportions expit(-2), expit(-2.4), tau 0; other random numbers) within
    Monte Carlo error; a lowering effect counts with direction -1 only."""
    draws = dict(p0_logit_draws=np.full(50, -2.0), sigma_b_draws=np.zeros(50), log_or_draws=np.full(50, -0.4))
    design = dict(sequences=[4, 4, 4], cluster_size=60)
    result = stepped_wedge_assurance_from_draws(**draws, **design, sims=4000, seed=1, direction=-1)
    power = stepped_wedge_simulate(**design, p0=special.expit(-2.0), p1=special.expit(-2.4), tau=0.0, sims=4000, seed=9)
    assert 0.3 < power["power"] < 0.8
    both = math.sqrt(2 * power["power"] * (1 - power["power"]) / 4000)
    assert abs(result["assurance"] - power["power"]) < 3 * both
    # The analytic answer (normal reference, variance components known) lies above the t(32) test's
    # simulated power for this 12-cluster design: 0.570 against about 0.53.
    analytic = stepped_wedge_analytic(**design, p0=special.expit(-2.0), p1=special.expit(-2.4), tau=0.0)
    assert analytic["power"] == pytest.approx(0.570, abs=0.001) and analytic["power"] > power["power_mc_high"]
    wrong_way = stepped_wedge_assurance_from_draws(**draws, **design, sims=2000, seed=1, direction=1)
    assert wrong_way["assurance"] < 0.01 and wrong_way["p_effect_in_direction"] == 0.0


def test_assurance_draws_are_shuffled_by_seed():
    """Draws stored chain after chain (first half no effect, second half log OR 2.5): 200 trials
    from 1000 draws take about half their draws from each chain only if the draws are shuffled
    (assurance ~ 0.5 + 0.5 * 0.025; binomial SD 0.035); in stored order all come from the first
    chain (~0.025). Same seed, same result; another seed, other draws."""
    n = 1000
    draws = dict(
        p0_logit_draws=np.full(n, -1.0),
        sigma_b_draws=np.full(n, 0.3),
        log_or_draws=np.where(np.arange(n) < n // 2, 0.0, 2.5),
    )
    design = dict(sequences=[4, 4, 4], cluster_size=60, sims=200)
    r = stepped_wedge_assurance_from_draws(**draws, **design, seed=5)
    assert 0.38 < r["assurance"] < 0.64, r["assurance"]
    assert stepped_wedge_assurance_from_draws(**draws, **design, seed=5) == r
    # assurance moves in steps of 1/200, so two seeds may tie; three seeds do not all
    others = {stepped_wedge_assurance_from_draws(**draws, **design, seed=s)["assurance"] for s in (6, 7)}
    assert others | {r["assurance"]} != {r["assurance"]}


def test_assurance_below_power_when_effect_uncertain():
    rng = np.random.default_rng(0)
    n = 2000
    design = dict(sequences=[4, 4, 4], cluster_size=60, sims=2000, seed=3)
    fixed = stepped_wedge_assurance_from_draws(np.full(n, -1.0), np.full(n, 0.3), np.full(n, 0.6), **design)
    doubt = stepped_wedge_assurance_from_draws(
        np.full(n, -1.0), np.full(n, 0.3), 0.6 + 0.4 * rng.standard_normal(n), **design
    )
    assert doubt["assurance"] < fixed["assurance"] - 0.05


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(sequences="6,0,6"), r"'0' is not a positive whole number"),
        (dict(sequences="6,2.5"), r"'2.5' is not a positive whole number"),
        (dict(sequences=[6, -1]), r"'-1' is not a positive whole number"),
        (dict(sequences=""), r"is not a positive whole number|is empty"),
        (dict(icc=0.01), r"give tau \(--tau\) or icc \(--icc\), not both"),
        (dict(tau=None), r"give tau \(--tau, between-cluster SD"),
        (dict(p0=1.2), r"p0 = 1.2 is outside \(0, 1\)"),
        (dict(p1=0.0), r"p1 = 0 is outside \(0, 1\)"),
        (dict(periods=4), r"periods \(--periods\) = 4 is fewer than the 4 sequences \+ 1"),
        (dict(tau=0.3), r"tau\^2 must be below pbar \(1 - pbar\)"),
        (dict(cluster_size=0), r"cluster_size \(--cluster-size\) = 0 must be a whole number >= 1"),
        (dict(cluster_size="abc"), r"cluster_size \(--cluster-size\) = 'abc': give one whole number"),
        (dict(cluster_size=[10, 20, 30]), r"or a clusters x periods \(24, 5\) matrix of them"),
        (dict(time="quadratic"), r"time = 'quadratic' is not one of"),
        (dict(alpha=1.5), r"alpha = 1.5 is outside \(0, 1\)"),
    ],
)
def test_bad_input_is_one_line_data_error(kwargs, message):
    with pytest.raises(DataError, match=message) as info:
        stepped_wedge(**{**SWPWR_EXAMPLE, **kwargs})
    assert "\n" not in str(info.value)


def test_bad_design_matrix():
    with pytest.raises(DataError, match="matrix of 0/1 numbers"):
        stepped_wedge_analytic(design=[["a", "b"], [0, 1]], cluster_size=10, p0=0.2, p1=0.3, tau=0.01)
    with pytest.raises(DataError, match="only 0 \\(control\\) and 1"):
        stepped_wedge_analytic(design=[[0, 2], [0, 1]], cluster_size=10, p0=0.2, p1=0.3, tau=0.01)
    with pytest.raises(DataError, match="cannot separate the intervention from the time effects"):
        stepped_wedge_analytic(design=[[0, 1], [0, 1]], cluster_size=10, p0=0.2, p1=0.3, tau=0.01)
    with pytest.raises(DataError, match="or a design matrix, one of the two"):
        stepped_wedge_analytic(design=[[0, 1], [0, 0]], sequences=[1], cluster_size=10, p0=0.2, p1=0.3, tau=0.01)


# ---------------------------------------------------------------------------- CLI
SWPWR_ARGS = ["--sequences", "6,6,6,6", "--cluster-size", "120", "--p0", "0.05", "--p1", "0.035", "--tau", "0.01"]


def run(capsys, *argv):
    code = main(["power", "stepped-wedge", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_echoes_inputs(capsys):
    code, out, _ = run(capsys, *SWPWR_ARGS, "--sims", "500", "--seed", "4", "--json")
    assert code == 0
    result = json.loads(out)
    assert round(result["power"], 3) == SWPWR_POWER
    expected = dict(sequences=[6, 6, 6, 6], periods=5, clusters=24, cluster_size=120, p0=0.05, p1=0.035)
    assert {k: result[k] for k in expected} == expected
    assert result["tau"] == 0.01 and result["alpha"] == 0.05 and result["time"] == "categorical"
    assert result["sims"] == 500 and result["seed"] == 4
    assert result["power_simulated_mc_low"] <= result["power_simulated"] <= result["power_simulated_mc_high"]


def test_cli_text_is_a_protocol_summary(capsys):
    code, out, _ = run(capsys, *SWPWR_ARGS)
    assert code == 0
    assert "24 clusters in 4 sequences (6,6,6,6) over 5 periods" in out
    assert "Power: 0.786" in out
    assert "Reference: Hussey & Hughes 2007 via WLS, as swCRTdesign's swPwr." in out
    assert "None" not in out and len(out.splitlines()) <= 8


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sequences", "6,x,6"], r"'x' is not a positive whole number"),
        (["--sequences", "6,0"], r"'0' is not a positive whole number"),
        (["--icc", "0.01"], r"not both"),
        (["--p0", "1.5"], r"p0 = 1.5 is outside \(0, 1\)"),
        (["--periods", "3"], r"fewer than the 4 sequences \+ 1"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *SWPWR_ARGS, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mbct-bayes power: error: ")
    assert re.search(message, err)


def test_cli_unknown_time_model_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["power", "stepped-wedge", *SWPWR_ARGS, "--time", "cubic"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "invalid choice: 'cubic'" in err
