"""Assurance over a population of trial services (issue 11, items 1, 4, 6).

The acceptance test simulates trials from a known truth with code of its own (numpy and
scipy's t-test, not the package kernel) and checks that assurance from a posterior concentrated
at that truth equals the realised power within Monte Carlo error, for the fitted-sites
population, a candidates list and a design stratified by region.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.power import assurance, build_population, population_assurance
from mbct_bayes.power._population import randomise, trial_arrays
from mbct_bayes.spec import ModelSpec

# ------------------------------------------------------------------------- the simulated world
SPEC = ModelSpec(family="binomial", region="region", interactions=(("C", "F"),))
TRUTH = {
    "Intercept": -0.4,
    "beta": np.array([0.35, 0.25, 1.2, 0.5]),  # E, C, F, C:F (log-odds per centred point)
    "sigma_site": 0.5,
    "sigma_region": 1.0,
    "u_region": np.array([0.5]),  # the fitted region R1; R2 and R3 are not among the fitted
}
FITTED_REGIONS = ("R1",)
DELTA = 1.0
C, M = 12, 20  # clusters per arm, members per cluster
TRIALS = 4000


def _services() -> tuple[np.ndarray, np.ndarray]:
    """24 services, 8 per region, spread over the scale (some at F = 4.6: the move is clipped)."""
    rng = np.random.default_rng(20261201)
    profiles = np.clip(rng.normal(3.0, 0.9, size=(24, 3)), 1.0, 5.0).round(1)
    profiles[:3, 2] = 4.6
    regions = np.repeat(np.array(["R1", "R2", "R3"]), 8)
    return profiles, regions


def _truth_draws(n: int = 1) -> dict[str, np.ndarray]:
    """A posterior concentrated at the truth: ``n`` identical draws."""
    return {
        "Intercept": np.full(n, TRUTH["Intercept"]),
        "beta": np.tile(TRUTH["beta"], (n, 1)),
        "sigma_site": np.full(n, TRUTH["sigma_site"]),
        "sigma_region": np.full(n, TRUTH["sigma_region"]),
        "u_region": np.tile(TRUTH["u_region"], (n, 1)),
    }


def _linear(x: np.ndarray) -> np.ndarray:
    e, c, f = (x[..., k] - 3.0 for k in range(3))
    b = TRUTH["beta"]
    return TRUTH["Intercept"] + b[0] * e + b[1] * c + b[2] * f + b[3] * c * f


def _allocate(kind: str, regions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(TRIALS, 2, C) service of each cluster, drawn as the design says."""
    n = regions.size
    if kind == "fitted_sites":
        return rng.integers(n, size=(TRIALS, 2, C))
    if kind == "candidates":
        order = np.argsort(rng.random((TRIALS, n)), axis=1)[:, : 2 * C]
        return np.stack([order[:, :C], order[:, C:]], axis=1)
    # stratified: within each region half of its services to each arm (regions have even sizes)
    arms = [[], []]
    for r in np.unique(regions):
        members = np.flatnonzero(regions == r)
        shuffled = members[np.argsort(rng.random((TRIALS, members.size)), axis=1)]
        half = members.size // 2
        arms[0].append(shuffled[:, :half])
        arms[1].append(shuffled[:, half:])
    return np.stack([np.concatenate(a, axis=1) for a in arms], axis=1)


def realised_power(kind: str, profiles: np.ndarray, regions: np.ndarray, seed: int) -> float:
    """Share of trials simulated from the truth whose cluster-level t-test shows an increase."""
    rng = np.random.default_rng(seed)
    service = _allocate(kind, regions, rng)
    moved = profiles.copy()
    moved[:, 2] = np.minimum(moved[:, 2] + DELTA, 5.0)
    region_effect = np.empty((TRIALS, 3))
    region_effect[:, 0] = TRUTH["u_region"][0]
    region_effect[:, 1:] = rng.normal(0.0, TRUTH["sigma_region"], (TRIALS, 2))  # R2, R3: fresh per trial
    code = np.searchsorted(np.array(["R1", "R2", "R3"]), regions)[service]
    eta = np.where(np.arange(2)[None, :, None] == 1, _linear(moved)[service], _linear(profiles)[service])
    eta = eta + np.take_along_axis(region_effect, code.reshape(TRIALS, -1), axis=1).reshape(code.shape)
    eta = eta + rng.normal(0.0, TRUTH["sigma_site"], eta.shape)
    prop = rng.binomial(M, special.expit(eta)) / M
    test = stats.ttest_ind(prop[:, 1], prop[:, 0], axis=1)
    return float(((test.pvalue < 0.05) & (test.statistic > 0)).mean())


def _population(kind: str, stratify: bool = False, n_draws: int = 1):
    profiles, regions = _services()
    return build_population(
        SPEC,
        _truth_draws(n_draws),
        kind=kind,
        profiles=profiles,
        labels=[f"S{i:02d}" for i in range(len(regions))],
        regions=regions,
        fitted_regions=FITTED_REGIONS,
        lever="F",
        delta=DELTA,
        stratify=stratify,
    )


@pytest.mark.parametrize(
    ("kind", "stratify"), [("fitted_sites", False), ("candidates", False), ("candidates", True)]
)
def test_assurance_at_the_truth_equals_power_in_a_simulated_world(kind, stratify):
    profiles, regions = _services()
    world = realised_power("stratified" if stratify else kind, profiles, regions, seed=11)
    result = population_assurance(
        _population(kind, stratify), clusters_per_arm=C, cluster_size=M, sims=TRIALS, seed=3
    )
    assert result["population"] == kind and result["stratify"] == ("region" if stratify else None)
    # two independent estimates of the same power: difference within 3.5 SE
    p = (world + result["assurance"]) / 2
    se = math.sqrt(2 * p * (1 - p) / TRIALS)
    assert abs(result["assurance"] - world) < 3.5 * se, (result["assurance"], world)
    # at a point-mass posterior, power at the posterior mean is the assurance itself
    assert result["power_at_posterior_mean"] == result["assurance"]
    # services above F = 4 (three set at 4.6) have their move of +1 cut at 5
    expected_clipped = float((profiles[:, 2] + DELTA > 5).mean())
    assert 0.1 < expected_clipped < 0.5
    assert abs(result["clipped_share"] - expected_clipped) < 4 * math.sqrt(expected_clipped / (TRIALS * C))


def test_implied_proportions_and_icc_match_the_simulated_world():
    # the marginal proportions and proportion-scale ICC that the population implies, against
    # a brute-force simulation of many clusters of the fitted-sites population
    result = population_assurance(_population("fitted_sites"), clusters_per_arm=4, cluster_size=M, sims=200, seed=3)
    profiles, regions = _services()
    rng = np.random.default_rng(5)
    n = 400_000
    service = rng.integers(len(regions), size=n)
    code = np.searchsorted(np.array(["R1", "R2", "R3"]), regions)[service]
    region = np.where(code == 0, TRUTH["u_region"][0], rng.normal(0, TRUTH["sigma_region"], n))
    noise = region + rng.normal(0, TRUTH["sigma_site"], n)
    p0 = special.expit(_linear(profiles)[service] + noise)
    moved = profiles.copy()
    moved[:, 2] = np.minimum(moved[:, 2] + DELTA, 5.0)
    p1 = special.expit(_linear(moved)[service] + noise)
    assert result["p0_marginal"] == pytest.approx(p0.mean(), abs=0.003)
    assert result["p1_marginal"] == pytest.approx(p1.mean(), abs=0.003)
    assert result["icc"] == pytest.approx(p0.var() / (p0.mean() * (1 - p0.mean())), abs=0.005)


def test_randomisation_balances_strata_and_designs_nest():
    rng = np.random.default_rng(1)
    strata = np.array([0, 0, 0, 1, 1, 1, 1, 2])  # odd strata: leftovers paired across strata
    allocations = randomise(rng, strata, strata.size, 500)
    assert allocations.shape == (500, 4, 2)
    for pairs in allocations:
        assert sorted(pairs.ravel()) == list(range(8))
        per_arm = [np.bincount(strata[pairs[:, arm]], minlength=3) for arm in (0, 1)]
        assert (np.abs(per_arm[0] - per_arm[1]) <= 1).all()
    # every service is equally likely in either arm and in any pair position
    arm_one = np.zeros(8)
    np.add.at(arm_one, allocations[:, :, 1].ravel(), 1)
    assert np.allclose(arm_one / 500, 0.5, atol=0.08)
    # common random numbers: a design with fewer clusters recruits the first positions of a larger one
    pop = _population("fitted_sites", n_draws=3)
    small = trial_arrays(pop, np.array([0, 1, 2, 0]), 3, seed=8)
    large = trial_arrays(pop, np.array([0, 1, 2, 0]), 6, seed=8)
    assert np.array_equal(small.baseline, large.baseline[:, :, :3])
    assert np.array_equal(small.base, large.base[:, :, :3])


def test_region_effects_are_shared_within_a_trial():
    pop = _population("candidates")
    arrays = trial_arrays(pop, np.zeros(3000, dtype=np.int64), C, seed=2)
    service = np.argmin(np.abs(arrays.baseline[..., None, :] - pop.profiles[0]).sum(-1), axis=-1)
    effect = arrays.base - pop.before[0, service]  # the region effect each cluster carries
    region = pop.region[service]
    assert np.allclose(effect[region == 0], TRUTH["u_region"][0])  # the fitted region: its fitted effect
    for code in (1, 2):  # other regions: one fresh draw per trial, shared by its clusters
        rows = [e[r == code] for e, r in zip(effect, region, strict=True)]
        assert all(np.ptp(v) < 1e-12 for v in rows if v.size)
        first = np.array([v[0] for v in rows if v.size])
        assert first.std() == pytest.approx(TRUTH["sigma_region"], rel=0.06)


def test_same_seed_same_numbers():
    a = population_assurance(_population("candidates", True), clusters_per_arm=6, cluster_size=M, sims=300, seed=4)
    b = population_assurance(_population("candidates", True), clusters_per_arm=6, cluster_size=M, sims=300, seed=4)
    c = population_assurance(_population("candidates", True), clusters_per_arm=6, cluster_size=M, sims=300, seed=5)
    assert a == b and a["assurance"] != c["assurance"]


def test_a_lowering_intervention_is_a_decrease():
    pop = build_population(
        SPEC,
        _truth_draws(),
        kind="fitted_sites",
        profiles=_services()[0],
        labels=[f"S{i}" for i in range(24)],
        regions=_services()[1],
        fitted_regions=FITTED_REGIONS,
        lever="F",
        delta=-1.0,
    )
    r = population_assurance(pop, clusters_per_arm=C, cluster_size=M, sims=2000, seed=3)
    assert r["direction"] == "decrease" and r["p1_marginal"] < r["p0_marginal"]
    assert r["assurance"] > 0.3 and r["p_effect_in_direction"] == 1.0
    wrong = population_assurance(pop, clusters_per_arm=C, cluster_size=M, sims=2000, seed=3, direction="increase")
    assert wrong["assurance"] < 0.01 and wrong["assurance_bound"] == pytest.approx(0.025)


# ------------------------------------------------------------------------- bad input
def test_population_bad_input():
    profiles, regions = _services()
    with pytest.raises(DataError, match=r"24 services; 13 clusters per arm need 26"):
        population_assurance(_population("candidates"), clusters_per_arm=13, cluster_size=M, sims=10, seed=1)
    at_top = profiles.copy()
    at_top[:, 2] = 4.5
    with pytest.raises(DataError, match=r"beyond its scale 1-5 for every one of the 24 services; choose a smaller"):
        build_population(
            SPEC, _truth_draws(), kind="fitted_sites", profiles=at_top, labels=list("x" * 24), regions=regions,
            fitted_regions=FITTED_REGIONS, lever="F", delta=1.0,
        )
    at_top[:, 2] = 5.0
    with pytest.raises(DataError, match="moves F nowhere"):
        build_population(
            SPEC, _truth_draws(), kind="fitted_sites", profiles=at_top, labels=list("x" * 24), regions=regions,
            fitted_regions=FITTED_REGIONS, lever="F", delta=1.0,
        )


# ------------------------------------------------------------------------- from a fit
def _candidates(fit, n: int) -> pd.DataFrame:
    means = fit.data.groupby("site")[["E", "C", "F"]].mean().reset_index().head(n)
    means["region"] = np.where(np.arange(len(means)) % 2 == 0, "North", "South")
    return means


def test_example_fit_population_assurance_is_below_all_alike(example_fit):
    # the services in a trial differ in E, C, F as the fitted ones do; an unadjusted analysis
    # sees that spread, so assurance over the fitted sites is well below the all-alike profile
    # (review: about 0.29 vs 0.65 at 15 x 20 on the full example fit)
    design = dict(clusters_per_arm=15, cluster_size=20, sims=800, seed=1)
    sites = assurance(example_fit, **design)
    alike = assurance(example_fit, profile={}, **design)
    assert sites["population"] == "fitted_sites" and alike["population"] == "profile"
    assert sites["assurance_mc_high"] < alike["assurance_mc_low"]
    assert sites["icc"] > alike["icc"]
    assert any("all alike" in s for s in alike["assumptions"])
    assert any("40 fitted services" in s for s in sites["assumptions"])
    for words in ("causal", "cluster-specific", "moves F by +1"):
        assert any(words in s for s in sites["assumptions"]), words


def test_example_fit_candidates_and_their_errors(example_fit):
    design = dict(clusters_per_arm=5, cluster_size=20, sims=200, seed=1)
    r = assurance(example_fit, sites=_candidates(example_fit, 10), stratify="region", **design)
    assert r["population"] == "candidates" and r["services"] == 10 and r["stratify"] == "region"
    with pytest.raises(DataError, match=r"list 9 services; 5 clusters per arm need 10; add candidates or plan at most 4"):
        assurance(example_fit, sites=_candidates(example_fit, 9), **design)
    with pytest.raises(DataError, match=r"candidate sites: missing column\(s\) C; give one row per candidate service"):
        assurance(example_fit, sites=_candidates(example_fit, 10).drop(columns="C"), **design)
    with pytest.raises(DataError, match="give the candidates"):
        assurance(example_fit, stratify="region", **design)
    with pytest.raises(DataError, match="either a profile"):
        assurance(example_fit, profile={"E": 3}, sites=_candidates(example_fit, 10), **design)
    with pytest.raises(DataError, match="beyond its scale 1-5 for every one of the 40 services"):
        assurance(example_fit, delta=4.5, **design)


def test_ordinal_population_is_p_top_level(ordinal_fit):
    # the population-averaged control proportion is the new-site forecast of P(top level)
    # averaged over the fitted sites' profiles (mbct_bayes.predict, an independent path)
    from mbct_bayes.planning.predict import predict

    fit = ordinal_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = assurance(fit, clusters_per_arm=6, cluster_size=10, sims=200, seed=2)
    table = fit.data.groupby("site")[["E", "C", "F"]].mean().reset_index()
    forecast = predict(fit, table, kind="new_site", seed=1)
    assert r["population"] == "fitted_sites"
    assert r["p0_marginal"] == pytest.approx(forecast["p_mean"].mean(), abs=0.01)


def test_population_runs_in_parallel_processes_as_serially():
    pop = _population("candidates", True)
    kw = dict(clusters_per_arm=6, cluster_size=M, sims=600, seed=4, chunk_size=200)
    assert population_assurance(pop, **kw, n_jobs=2) == population_assurance(pop, **kw)


# ------------------------------------------------------------------------- stepped wedge from a population
SW_SIZE = 3  # people per cluster-period: keeps the realised power mid-range
SW_DESIGNS = {"fitted_sites": [6, 6, 6, 6], "candidates": [4, 4, 4], "stratified": [6, 6, 6, 6]}


def _sw_services(kind: str, regions: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """(TRIALS, clusters) service of each cluster (rows in sequence order), drawn as the design says."""
    n = regions.size
    if kind == "fitted_sites":
        return rng.integers(n, size=(TRIALS, clusters))
    if kind == "candidates":  # a random subset of the candidates in a random order
        return np.argsort(rng.random((TRIALS, n)), axis=1)[:, :clusters]
    # stratified, all 24 candidates over 4 sequences of 6: each region's 8 services two to each sequence
    out = np.empty((TRIALS, 4, 6), dtype=np.int64)
    for r, name in enumerate(np.unique(regions)):
        members = np.flatnonzero(regions == name)
        shuffled = members[np.argsort(rng.random((TRIALS, members.size)), axis=1)]
        out[:, :, 2 * r: 2 * r + 2] = shuffled.reshape(TRIALS, 4, 2)
    return out.reshape(TRIALS, 24)


def realised_sw_power(kind: str, profiles: np.ndarray, regions: np.ndarray, seed: int) -> float:
    """Share of stepped-wedge trials simulated from the truth whose analysis shows an increase.

    Trials are generated here (services, region and site effects, binomial cluster-period counts)
    and analysed by the package's HH analysis (itself checked against explicit matrices in
    test_stepped_wedge.py).
    """
    from mbct_bayes.power._stepped_wedge import SteppedWedgeAnalysis, stepped_wedge_design

    design = stepped_wedge_design(SW_DESIGNS[kind])
    clusters = design.shape[0]
    rng = np.random.default_rng(seed)
    service = _sw_services(kind, regions, clusters, rng)
    moved = profiles.copy()
    moved[:, 2] = np.minimum(moved[:, 2] + DELTA, 5.0)
    region_effect = np.empty((TRIALS, 3))
    region_effect[:, 0] = TRUTH["u_region"][0]
    region_effect[:, 1:] = rng.normal(0.0, TRUTH["sigma_region"], (TRIALS, 2))
    code = np.searchsorted(np.array(["R1", "R2", "R3"]), regions)[service]
    noise = np.take_along_axis(region_effect, code, axis=1) + rng.normal(0.0, TRUTH["sigma_site"], code.shape)
    before = (_linear(profiles)[service] + noise)[:, :, None]
    after = (_linear(moved)[service] + noise)[:, :, None]
    eta = np.where(design[None] == 1, after, before)
    prop = rng.binomial(SW_SIZE, special.expit(eta)) / SW_SIZE
    estimate, _, reject = SteppedWedgeAnalysis(design).test(prop, 0.05)
    return float((reject & (estimate > 0)).mean())


@pytest.mark.parametrize("kind", ["fitted_sites", "candidates", "stratified"])
def test_stepped_wedge_assurance_at_the_truth_equals_power_in_a_simulated_world(kind):
    from mbct_bayes.power import stepped_wedge_population_assurance

    profiles, regions = _services()
    world = realised_sw_power(kind, profiles, regions, seed=21)
    pop = _population("fitted_sites" if kind == "fitted_sites" else "candidates", kind == "stratified")
    result = stepped_wedge_population_assurance(
        pop, sequences=SW_DESIGNS[kind], cluster_size=SW_SIZE, sims=TRIALS, seed=5
    )
    assert 0.15 < world < 0.85, world  # mid-range: the comparison has power to see a wrong model
    p = (world + result["assurance"]) / 2
    se = math.sqrt(2 * p * (1 - p) / TRIALS)
    assert abs(result["assurance"] - world) < 3.5 * se, (result["assurance"], world)
    assert result["assurance_mc_low"] < result["assurance"] < result["assurance_mc_high"]
    assert result["power_at_posterior_mean"] == result["assurance"]  # a point-mass posterior
    assert result["population"] == pop.kind and result["stratify"] == ("region" if kind == "stratified" else None)
    assert result["clusters"] == sum(SW_DESIGNS[kind]) and result["direction"] == "increase"
    if kind != "fitted_sites":  # every candidate in the trial: 8 of the 24 have their move cut at 5
        assert any("randomised to the sequences" in s for s in result["assumptions"])
    if kind == "stratified":
        assert result["clipped_share"] == pytest.approx(8 / 24)


def test_stepped_wedge_stratified_allocation_spreads_each_region_over_the_sequences():
    from mbct_bayes.power._population import sequence_services

    pop = _population("candidates", stratify=True)
    sequence = np.repeat(np.arange(4), 3)  # 12 of the 24 candidates
    service = sequence_services(pop, sequence, 500, seed=2)
    assert all(len(set(row)) == 12 for row in service)  # distinct services
    for row in service:
        for s in range(4):
            counts = np.bincount(pop.strata[row[sequence == s]], minlength=3)
            chosen = np.bincount(pop.strata[row], minlength=3)
            # each region spread as evenly as it can be: per sequence floor or ceil of its share
            assert (np.abs(counts - chosen / 4) < 1).all(), (counts, chosen)
    with pytest.raises(DataError, match=r"list 24 services; a stepped wedge of 28 clusters needs 28; add candidates"):
        sequence_services(pop, np.repeat(np.arange(4), 7), 10, seed=2)


# ------------------------------------------------------------------------- does the assurance's analysis hold its size?
def test_assurance_reports_the_size_of_its_analysis_for_the_same_population():
    # one yes/no outcome per cluster and 4 clusters per arm: few outcomes are possible, the t-test
    # cannot reach its size (exactly 0.0072 at p0 = 0.1, _size's docstring; here, with the
    # population's proportions near one half, liberal); 15 x 20 holds
    few = population_assurance(_population("fitted_sites"), clusters_per_arm=4, cluster_size=1, sims=500, seed=3)
    assert few["size_holds"] is False and not 0.035 <= few["actual_size"] <= 0.065
    assert few["size_method"] == "simulated"
    assert few["size_sims"] == 10_000 and few["size_mc_low"] <= few["actual_size"] <= few["size_mc_high"]
    assert "size does not hold: the t analysis at 4 clusters per arm x 1" in few["size_note"]
    big = population_assurance(_population("fitted_sites"), clusters_per_arm=15, cluster_size=20, sims=500, seed=3)
    assert big["size_holds"] is True and big["size_note"] is None
    assert 0.035 <= big["actual_size"] <= 0.065 and big["assurance"] > big["actual_size"]


def test_profile_assurance_size_is_simulates_size_with_the_same_random_numbers():
    # draws at one point: the assurance's null trials are simulate's size-check trials (same
    # seed, chunks and streams), so the two rejection rates are equal, not just close
    from mbct_bayes.power import assurance_from_draws, simulate, size_check

    draws = (np.full(300, -1.2), np.full(300, 0.6), np.full(300, 0.5))
    r = assurance_from_draws(*draws, clusters_per_arm=6, cluster_size=20, sims=2000, seed=7)
    check = size_check("t", 6, 20, float(special.expit(-1.2)), 0.6, sims=10_000, seed=7)
    assert r["actual_size"] == check["actual_size"] and r["size_holds"] == check["size_holds"]
    power = simulate(p0=float(special.expit(-1.2)), odds_ratio=math.exp(0.5), sigma_b=0.6, clusters_per_arm=6,
                     cluster_size=20, sims=2000, seed=7)
    assert r["actual_size"] == power["actual_size"]
    few = assurance_from_draws(*draws, clusters_per_arm=4, cluster_size=1, sims=500, seed=7)
    exact = size_check("t", 4, 1, float(special.expit(-1.2)), 0.6)  # exact by enumeration
    assert few["size_holds"] is False and exact["size_holds"] is False
    assert few["size_mc_low"] <= exact["actual_size"] <= few["size_mc_high"]


def test_stepped_wedge_a_lowering_intervention_is_a_decrease():
    from mbct_bayes.power import stepped_wedge_population_assurance

    profiles, regions = _services()
    pop = build_population(
        SPEC, _truth_draws(), kind="fitted_sites", profiles=profiles, labels=[f"S{i}" for i in range(24)],
        regions=regions, fitted_regions=FITTED_REGIONS, lever="F", delta=-1.0,
    )
    design = dict(sequences=[4, 4, 4], cluster_size=SW_SIZE, sims=1500, seed=3)
    down = stepped_wedge_population_assurance(pop, **design)
    assert down["direction"] == "decrease" and down["p1_marginal"] < down["p0_marginal"]
    assert down["assurance"] > 0.2 and down["p_effect_in_direction"] == 1.0
    wrong = stepped_wedge_population_assurance(pop, **design, direction="increase")
    assert wrong["assurance"] < 0.01 and wrong["assurance_bound"] == pytest.approx(0.025)


def test_a_service_without_a_region_is_in_a_fitted_region_by_their_sites():
    # issue 12 item 4 in trial populations: a candidate whose region is not given is in one of the
    # fitted regions, drawn per cluster with the fitted sites' shares (predict's region_mode
    # "mixture"), not a region of its own
    draws = _truth_draws() | {"u_region": np.array([[-2.0, 2.0]])}
    profiles, _ = _services()
    pop = build_population(
        SPEC, draws, kind="candidates", profiles=profiles, labels=[f"s{i}" for i in range(24)],
        regions=[None] * 24, fitted_regions=("R1", "R2"), lever="F", delta=DELTA, region_weights=[0.75, 0.25],
    )
    arrays = trial_arrays(pop, np.zeros(4000, dtype=np.int64), C, seed=2)
    service = np.argmin(np.abs(arrays.baseline[..., None, :] - pop.profiles[0]).sum(-1), axis=-1)
    effect = arrays.base - pop.before[0, service]
    assert np.isin(np.round(effect, 9), [-2.0, 2.0]).all()  # always one of the fitted regions' effects
    assert (effect < 0).mean() == pytest.approx(0.75, abs=0.01)  # in proportion to the regions' sites
    assert np.ptp((effect < 0).mean(axis=(1, 2))) > 0  # drawn per cluster, not one region per trial
    # the implied proportions are those of the mixture (brute force over many clusters)
    result = population_assurance(pop, clusters_per_arm=4, cluster_size=M, sims=200, seed=3)
    rng = np.random.default_rng(6)
    n = 400_000
    s = rng.integers(24, size=n)
    region = np.where(rng.random(n) < 0.75, -2.0, 2.0)
    p0 = special.expit(_linear(profiles)[s] + region + rng.normal(0, TRUTH["sigma_site"], n))
    assert result["p0_marginal"] == pytest.approx(p0.mean(), abs=0.003)
    assert result["icc"] == pytest.approx(p0.var() / (p0.mean() * (1 - p0.mean())), abs=0.005)
    with pytest.raises(DataError, match="region_weights: give 2 non-negative shares"):
        build_population(SPEC, draws, kind="candidates", profiles=profiles, labels=[f"s{i}" for i in range(24)],
                         regions=[None] * 24, fitted_regions=("R1", "R2"), lever="F", delta=DELTA,
                         region_weights=[0.5, 0.6])
