"""The services a simulated trial recruits: a population of profiles drawn per posterior draw.

A :class:`Population` holds, per posterior draw ``s`` and service ``i``, the logit of P(outcome)
from the fixed part of the model before the intervention (``before[s, i]``, the service's own
E, C, F; ordinal fits: P(top level), so minus the last cutpoint) and after it (``after[s, i]``,
the lever moved by ``delta`` and clipped at the end of its scale), each service's region, the
fitted region effects and the SDs. :func:`trial_arrays` turns it into the per-cluster arrays of
many simulated trials: each trial recruits its clusters from the population (resampled with
replacement for the fitted data's sites; the candidates randomised to arms, optionally within
region strata), a region effect shared by the clusters of one region in one trial (the fitted
``u_region`` for a fitted region, a fresh ``N(0, sigma_region)`` per trial for any other; a
service whose region is not given is in one of the fitted regions, drawn per cluster in
proportion to their sites, as :func:`mbct_bayes.planning.predict.predict` takes an unknown region), and
the kernel adds each cluster's own site effect ``N(0, sigma_site)`` from its random streams.

Kinds: ``fitted_sites`` (the default from a fit), ``candidates`` (the services one plans to
recruit) and ``profile`` (all services alike; handled by the three-array path in
:mod:`mbct_bayes.power._assurance`, not here).

Randomness: population draws come from streams of their own (``SeedSequence(seed, spawn_key=
(POPULATION_KEY, ...))``), per cluster position for resampling, so a design with ``c`` clusters
per arm recruits the first ``c`` positions of any larger one (common random numbers, as the
kernel), and the same seed gives the same trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.model.design import categorical_predictors, default_reference, numeric_predictors
from mbct_bayes.planning.measured import true_score_draws
from mbct_bayes.planning.predict import check_lever, fixed_part_centred, region_site_shares
from mbct_bayes.schema import validate_observations

if TYPE_CHECKING:  # power does not import the model stack
    from mbct_bayes.model.fit import Fit

KINDS = ("fitted_sites", "candidates", "profile")
# spawn_key head of the population streams; the kernel uses (chunk, arm, column) with small
# chunk numbers and the draw order uses 0x7FFFFFFF, so these never collide.
POPULATION_KEY = 0x7FFFFFFE
NO_REGION = -1
# a service whose region is not given: one of the fitted regions, in proportion to their sites
# (predict's region_mode="mixture"), drawn per cluster in each simulated trial
UNKNOWN_REGION = -2
# Gauss–Hermite (probabilists') nodes for the implied proportions: 32 nodes agree with the 101 of
# _icc within 1e-7 for SDs up to 2 (2e-5 at 3), at a third of the cost over S x N services.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class Population:
    """A population of trial services under each posterior draw (see the module docstring).

    ``S`` is the number of posterior draws, ``N`` the number of services; arrays with a leading
    axis of 1 are the same for every draw (observed E, C, F).
    """

    kind: str
    labels: tuple[str, ...]  # (N,) service ids
    predictors: tuple[str, ...]  # names of the profile columns
    lever: str
    delta: float
    before: np.ndarray  # (S, N) fixed-part logit before the intervention
    after: np.ndarray  # (S, N) with the lever moved by delta (clipped at the scale end)
    profiles: np.ndarray  # (S or 1, N, p) baseline E, C, F (uncentred)
    clipped: np.ndarray  # (S or 1, N) the move was cut short by the end of the scale
    region: np.ndarray  # (N,) region code per service; NO_REGION: no region effect
    region_names: tuple[str, ...]  # names of the region codes
    region_effect: np.ndarray  # (S, number of fitted regions): fitted u_region
    sigma_site: np.ndarray  # (S,) residual between-site SD (logit)
    sigma_region: np.ndarray  # (S,) between-region SD (0 without region effects)
    strata: np.ndarray | None  # (N,) randomisation strata codes; None: unstratified
    resample: bool  # True: each cluster draws a service with replacement (fitted sites)
    # (number of fitted regions,) mixture weights of an UNKNOWN_REGION service: the fitted sites' shares
    region_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_draws(self) -> int:
        return int(self.before.shape[0])

    @property
    def n_services(self) -> int:
        return int(self.before.shape[1])

    @property
    def n_fitted_regions(self) -> int:
        return int(self.region_effect.shape[1])


@dataclass(frozen=True)
class TrialArrays:
    """Per-cluster arrays of ``sims`` simulated trials, arms on axis 1, cluster positions on 2."""

    base: np.ndarray  # (sims, 2, cmax) control logit: fixed part + region effect
    shift: np.ndarray  # (sims, 2, cmax) the intervention's change in that logit
    sigma_site: np.ndarray  # (sims,) SD of the cluster's own site effect (added by the kernel)
    baseline: np.ndarray  # (sims, 2, cmax, p) each cluster's E, C, F before the intervention
    clipped: np.ndarray  # (sims, 2, cmax) bool


# ----------------------------------------------------------------------------- building
def fixed_logit(
    spec: Any,
    draws: Mapping[str, np.ndarray],
    profiles: np.ndarray,
    categories: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Fixed-part logit of P(outcome) per draw for profiles (S or 1, N, q) uncentred: (S, N).

    ``profiles`` hold the spec's numeric predictors; ``categories`` each categorical covariate's
    (N,) levels (one not given: its reference level). ``Intercept + X beta`` with ``X`` from
    :mod:`mbct_bayes.model.design` (as :func:`mbct_bayes.planning.predict.fixed_part_centred`),
    minus the last cutpoint for ordinal fits so that the outcome is P(top level).
    """
    centre = np.array([spec.center[p] for p in numeric_predictors(spec)], dtype=float)
    eta = fixed_part_centred(draws, spec, np.asarray(profiles, float) - centre, categories)
    return get_family(spec.family).event_logit(eta, draws)


def build_population(
    spec: Any,
    draws: Mapping[str, np.ndarray],
    *,
    kind: str,
    profiles: np.ndarray,
    labels: Sequence[str],
    regions: Sequence[Any] | None,
    fitted_regions: Sequence[str] | None,
    lever: str,
    delta: float,
    stratify: bool = False,
    region_weights: Sequence[float] | np.ndarray | None = None,
    categories: Mapping[str, Any] | None = None,
) -> Population:
    """A :class:`Population` from a spec, posterior draws and the services' profiles.

    Parameters
    ----------
    spec
        The model spec (predictors, centre, scale, interactions, family).
    draws
        Posterior arrays, chains stacked: ``beta`` (S, coefs), ``Intercept`` (S,) when fitted,
        ``sigma_site`` (S,), ``sigma_region`` and ``u_region`` (S, R) with regions, ``cutpoints``
        for ordinal fits. A "posterior" concentrated at a truth is one draw (or repeats of it).
    kind
        ``"fitted_sites"`` (resampled with replacement) or ``"candidates"`` (randomised).
    profiles
        (N, q) or (S, N, q) baseline values of the spec's numeric predictors
        (:func:`mbct_bayes.model.design.numeric_predictors`) per service, uncentred.
    labels
        (N,) service ids.
    regions
        (N,) region per service (None or empty: unknown), or None for no regions at all.
    fitted_regions
        The fit's region labels, in the order of ``u_region``'s columns (None: no region effects).
        A region not among them gets a fresh ``N(0, sigma_region)`` per simulated trial; a
        service with no region is in one of the fitted regions, drawn per cluster with
        ``region_weights`` (as :func:`mbct_bayes.planning.predict.predict` with ``region_mode="mixture"``).
    lever, delta
        The predictor the intervention moves and by how much (scale points; negative lowers it).
    stratify
        Randomise within region strata (candidates only).
    region_weights
        Share of the fitted sites in each fitted region (:func:`mbct_bayes.planning.predict.region_site_shares`);
        default equal shares.
    categories
        Each categorical covariate's (N,) level per service (not a lever: the intervention leaves
        it); one not given is at its reference level.
    """
    if kind not in ("fitted_sites", "candidates"):
        raise DataError(f"population kind {kind!r} is not one of fitted_sites, candidates")
    try:
        check_lever(spec, lever)
    except DataError as err:
        raise DataError(f"{err} (--lever)") from None
    delta = float(delta)
    if not np.isfinite(delta) or delta == 0:
        raise DataError(f"delta (--delta) = {delta:g}: give a non-zero move of the lever in scale points")
    profiles = np.asarray(profiles, float)
    if profiles.ndim == 2:
        profiles = profiles[None]
    n = profiles.shape[1]
    labels = tuple(str(s) for s in labels)
    numeric = numeric_predictors(spec)
    j = numeric.index(lever)
    moved = profiles[..., j] + delta
    low, high = spec.scale.get(lever, (-np.inf, np.inf))
    clipped = (moved < low) | (moved > high)
    after_profiles = profiles.copy()
    after_profiles[..., j] = np.clip(moved, low, high)
    stuck = np.isclose(after_profiles[..., j], profiles[..., j])
    if stuck.all():
        side = "top" if delta > 0 else "bottom"
        raise DataError(
            f"delta (--delta) = {delta:g} moves {lever} nowhere: every one of the {n} services is already at the "
            f"{side} of the scale {low:g}-{high:g}; choose a lever or direction with room to move"
        )
    if clipped.all():
        raise DataError(
            f"delta (--delta) = {delta:g} takes {lever} beyond its scale {low:g}-{high:g} for every one of the "
            f"{n} services; choose a smaller --delta"
        )
    before = fixed_logit(spec, draws, profiles, categories)
    after = fixed_logit(spec, draws, after_profiles, categories)
    n_draws = before.shape[0]
    codes, names, strata = _region_codes(regions, fitted_regions, n, labels, stratify)
    if fitted_regions is not None and "u_region" in draws:
        region_effect = np.asarray(draws["u_region"], float)
        sigma_region = np.asarray(draws["sigma_region"], float)
        n_fitted = region_effect.shape[1]
        weights = np.full(n_fitted, 1.0 / n_fitted) if region_weights is None else np.asarray(region_weights, float)
        if weights.shape != (n_fitted,) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
            raise DataError(f"region_weights: give {n_fitted} non-negative shares that sum to 1, one per fitted region")
    else:
        weights = np.zeros(0)
        region_effect = np.zeros((n_draws, 0))
        sigma_region = np.zeros(n_draws)
        codes = np.full(n, NO_REGION, dtype=np.int64)
    return Population(
        kind=kind,
        labels=labels,
        predictors=numeric,
        lever=lever,
        delta=delta,
        before=before,
        after=after,
        profiles=profiles,
        clipped=clipped,
        region=codes,
        region_names=names,
        region_effect=region_effect,
        sigma_site=np.asarray(draws["sigma_site"], float),
        sigma_region=sigma_region,
        strata=strata if kind == "candidates" else None,
        resample=kind == "fitted_sites",
        region_weights=weights,
    )


def _region_codes(regions, fitted_regions, n, labels, stratify):
    """Region codes (fitted regions first, in ``u_region`` order), their names and strata."""
    fitted = [str(r) for r in fitted_regions] if fitted_regions is not None else []
    names = list(fitted)
    codes = np.full(n, NO_REGION, dtype=np.int64)
    strata = None
    if regions is None:
        if stratify:
            raise DataError("stratify='region' needs a region for every service; add a region column")
        return codes, tuple(names), strata
    values = [None if r is None or (isinstance(r, float) and np.isnan(r)) or str(r).strip() == "" else str(r).strip()
              for r in regions]
    if stratify:
        empty = [labels[i] for i, r in enumerate(values) if r is None]
        if empty:
            raise DataError(f"stratify='region': service {empty[0]!r} has no region; give every candidate its region")
        order = list(dict.fromkeys(values))
        strata = np.array([order.index(r) for r in values], dtype=np.int64)
    for i, r in enumerate(values):
        if r is None:  # no region given: one of the fitted regions (a mixture), as predict takes it
            codes[i] = UNKNOWN_REGION if fitted else NO_REGION
            continue
        if r not in names:
            names.append(r)
        codes[i] = names.index(r)
    return codes, tuple(names), strata


def population_at_means(pop: Population) -> Population:
    """The population under the posterior means of its arrays (one draw), for power at the mean."""
    def mean(a: np.ndarray) -> np.ndarray:
        return a.mean(axis=0, keepdims=True)

    return replace(
        pop,
        before=mean(pop.before),
        after=mean(pop.after),
        profiles=mean(pop.profiles),
        clipped=pop.clipped if pop.clipped.shape[0] == 1 else mean(pop.clipped) >= 0.5,
        region_effect=mean(pop.region_effect),
        sigma_site=mean(pop.sigma_site),
        sigma_region=mean(pop.sigma_region),
    )


# ----------------------------------------------------------------------------- from a fit
def _site_regions(fit: Fit, site_index: np.ndarray) -> list[str | None] | None:
    """Each fitted site's region label (None when the fit has no regions)."""
    md = fit.model_data
    if md.region_idx is None or md.region_labels is None:
        return None
    region_of = np.full(len(md.site_labels), -1, dtype=np.int64)
    region_of[md.site_idx] = md.region_idx
    return [md.region_labels[region_of[i]] for i in site_index]


def _fitted_region_weights(fit: Fit) -> np.ndarray | None:
    """The fitted sites' share of each fitted region (None without regions): the unknown-region mixture."""
    md = fit.model_data
    if md.region_idx is None or md.region_labels is None:
        return None
    return region_site_shares(md)


def fitted_sites_population(fit: Fit, *, lever: str = "F", delta: float = 1.0) -> Population:
    """The fitted data's sites as the population (site-level E, C, F and region).

    Observed E, C, F: each site's mean over its rows. Latent-measurement fits: each draw's
    latent (true) site scores.
    """
    spec, md = fit.spec, fit.model_data
    site_index = np.unique(md.site_idx)  # sites with outcome rows (latent fits may list more)
    labels = [md.site_labels[i] for i in site_index]
    categories = None
    if spec.measurement == "latent":
        centre = np.array([spec.center[p] for p in spec.predictors], dtype=float)
        profiles = fit.draws["latent"][:, site_index, :] + centre
    else:
        table = fit.data
        by_site = table.groupby(table[spec.group].astype(str))
        profiles = by_site[list(numeric_predictors(spec))].mean().loc[labels].to_numpy(dtype=float)
        # a site's category: its rows' most frequent level (ties alphabetical), as the reference is chosen
        categories = {
            c: by_site[c].agg(lambda v: default_reference(v.astype(str))).loc[labels].to_numpy(dtype=object)
            for c in categorical_predictors(spec)
        }
    return build_population(
        spec,
        fit.draws,
        kind="fitted_sites",
        profiles=profiles,
        labels=labels,
        regions=_site_regions(fit, site_index),
        fitted_regions=md.region_labels,
        lever=lever,
        delta=delta,
        region_weights=_fitted_region_weights(fit),
        categories=categories,
    )


def candidates_population(
    fit: Fit,
    sites: pd.DataFrame,
    *,
    lever: str = "F",
    delta: float = 1.0,
    stratify: str | None = None,
    source: str = "candidate sites",
    responses: pd.DataFrame | None = None,
    scores_are_true: bool = False,
) -> Population:
    """The services one plans to recruit (``site``, ``region``, E, C, F; one row per service).

    Each simulated trial randomises them to the arms (within region strata when ``stratify`` is
    ``"region"``). A region the fit knows keeps its fitted effect; any other region gets a fresh
    one per trial, shared by that region's services.

    For a latent-measurement fit the candidates' E, C, F are measurements (site means with an
    ``n_respondents`` column, or respondent-level ``responses``): each posterior draw takes the
    services' true scores from the fitted measurement model given what was measured
    (:func:`mbct_bayes.planning.measured.true_score_draws`, with a fixed seed so the same input gives the
    same population), and the lever moves the true score. ``scores_are_true`` takes the table's
    scores as true scores instead.
    """
    spec = fit.spec
    if stratify not in (None, "region"):
        raise DataError(f"stratify (--stratify) = {stratify!r}: the only stratification offered is 'region'")
    if not isinstance(sites, pd.DataFrame):
        raise DataError(f"{source}: expected a table (pandas DataFrame) of services, got {type(sites).__name__}")
    missing = [p for p in (spec.group, *spec.predictors) if p not in sites.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; give one row per candidate service with "
            f"{', '.join((spec.group, 'region', *spec.predictors))}"
        )
    table = validate_observations(sites, spec, source=source, new_data=True)
    dup = table[spec.group].duplicated()
    if dup.any():
        raise DataError(
            f"{source}: service {table[spec.group][dup].iloc[0]!r} is listed more than once; give one row per "
            "candidate service (its site-level E, C, F)"
        )
    region_col = spec.region or "region"
    regions = table[region_col].tolist() if region_col in table.columns else None

    profiles = table[list(numeric_predictors(spec))].to_numpy(dtype=float)
    categories = {c: table[c].to_numpy(dtype=object) for c in categorical_predictors(spec)}
    if spec.measurement == "latent" and not scores_are_true:
        # per draw, the services' true scores given their measured means (not the means themselves,
        # which would make services differ ~1/reliability times too much on the logit scale)
        profiles = true_score_draws(
            fit.posterior, sites, rng=np.random.default_rng(np.random.SeedSequence(0)), responses=responses
        )
    return build_population(
        spec,
        fit.draws,
        kind="candidates",
        profiles=profiles,
        labels=table[spec.group].astype(str).tolist(),
        regions=regions,
        fitted_regions=fit.model_data.region_labels if spec.region else None,
        lever=lever,
        delta=delta,
        stratify=stratify == "region",
        region_weights=_fitted_region_weights(fit),
        categories=categories,
    )


# ----------------------------------------------------------------------------- trials
def check_enough_services(pop: Population, clusters_per_arm: int) -> None:
    """Candidates: a design with ``c`` clusters per arm needs ``2c`` distinct services."""
    if not pop.resample and pop.n_services < 2 * clusters_per_arm:
        raise DataError(
            f"the candidate sites list {pop.n_services} services; {clusters_per_arm} clusters per arm need "
            f"{2 * clusters_per_arm}; add candidates or plan at most {pop.n_services // 2} clusters per arm"
        )


def _positions_resampled(pop: Population, sims: int, cmax: int, seed: int) -> np.ndarray:
    """(sims, 2, cmax) service index per cluster position, with replacement, one stream per position."""
    out = np.empty((sims, 2, cmax), dtype=np.int64)
    for arm in (0, 1):
        for col in range(cmax):
            gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, arm, col)))
            out[:, arm, col] = gen.integers(pop.n_services, size=sims)
    return out


def randomise(rng: np.random.Generator, strata: np.ndarray | None, n: int, sims: int) -> np.ndarray:
    """Allocations of ``n`` services in ``sims`` trials as pairs (sims, P, 2): pair k is cluster k of each arm.

    Within each stratum the services are shuffled and paired, one of each pair per arm; the odd
    ones left over are shuffled and paired across strata; then the pairs are shuffled. The first
    ``c`` pairs are a design with ``c`` clusters per arm, balanced within strata up to one.
    Vectorised over trials (a random sort key per trial and service).
    """
    def shuffled(items: np.ndarray) -> np.ndarray:  # (sims, m): each row a random order of items
        return np.take_along_axis(items, np.argsort(rng.random(items.shape), axis=1), axis=1)

    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == k) for k in np.unique(strata)]
    pairs, leftover = [], []
    for members in groups:
        perm = shuffled(np.broadcast_to(members, (sims, members.size)))
        even = members.size - members.size % 2
        pairs.append(perm[:, :even].reshape(sims, -1, 2))
        leftover.append(perm[:, even:])
    left = shuffled(np.concatenate(leftover, axis=1))
    pairs.append(left[:, : left.shape[1] - left.shape[1] % 2].reshape(sims, -1, 2))
    stacked = np.concatenate(pairs, axis=1)
    order = np.argsort(rng.random(stacked.shape[:2]), axis=1)
    return np.take_along_axis(stacked, order[..., None], axis=1)


def _positions_randomised(pop: Population, sims: int, cmax: int, seed: int) -> np.ndarray:
    check_enough_services(pop, cmax)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 2)))
    pairs = randomise(rng, pop.strata, pop.n_services, sims)  # (sims, P, 2)
    return pairs[:, :cmax].transpose(0, 2, 1)


def trial_arrays(pop: Population, draw_index: np.ndarray, cmax: int, seed: int) -> TrialArrays:
    """Per-cluster arrays of ``len(draw_index)`` trials, trial ``t`` under draw ``draw_index[t]``.

    Parameters
    ----------
    pop
        The population.
    draw_index
        (sims,) posterior draw of each simulated trial (indices into the population's draws).
    cmax
        Cluster positions per arm (the largest design).
    seed
        The run's seed (population streams are spawned from it).
    """
    sims = np.asarray(draw_index).size
    if pop.resample:
        service = _positions_resampled(pop, sims, cmax, seed)
    else:
        service = _positions_randomised(pop, sims, cmax, seed)
    return cluster_arrays(pop, draw_index, service, seed)


def cluster_arrays(pop: Population, draw_index: np.ndarray, service: np.ndarray, seed: int) -> TrialArrays:
    """Per-cluster arrays for clusters that are the given services: ``service`` is (sims, ...).

    Trial ``t`` is under draw ``draw_index[t]``; its clusters of one region share that region's
    effect (fitted, or a fresh one per trial from the population stream of ``seed``).
    """
    draw_index = np.asarray(draw_index, dtype=np.int64)
    sims = draw_index.size
    d = draw_index.reshape((sims,) + (1,) * (service.ndim - 1))
    base = pop.before[d, service]
    shift = pop.after[d, service] - base
    dp = d if pop.profiles.shape[0] > 1 else np.zeros_like(d)
    baseline = pop.profiles[dp, service]
    clipped = pop.clipped[dp, service]
    code = pop.region[service]
    has_region = code != NO_REGION
    if has_region.any():
        n_fitted = pop.n_fitted_regions
        n_fresh = len(pop.region_names) - n_fitted
        effect = np.zeros((sims, n_fitted + n_fresh))
        effect[:, :n_fitted] = pop.region_effect[draw_index]
        if n_fresh:
            # one fresh effect per trial and non-fitted region, shared by that region's clusters
            gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 3)))
            effect[:, n_fitted:] = gen.standard_normal((sims, n_fresh)) * pop.sigma_region[draw_index, None]
        trial = np.broadcast_to(np.arange(sims).reshape(d.shape), code.shape)
        base = base + np.where(code >= 0, effect[trial, np.maximum(code, 0)], 0.0)
        unknown = code == UNKNOWN_REGION
        if unknown.any():
            # each such cluster is in a fitted region drawn with the sites' shares (its own stream)
            gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 6)))
            cumulative = np.cumsum(pop.region_weights)
            u = gen.random(code.shape) * cumulative[-1]
            which = np.minimum(np.searchsorted(cumulative, u, side="right"), cumulative.size - 1)
            base = base + np.where(unknown, pop.region_effect[np.broadcast_to(d, code.shape), which], 0.0)
    return TrialArrays(
        base=base, shift=shift, sigma_site=pop.sigma_site[draw_index], baseline=baseline, clipped=clipped
    )


def sequence_services(pop: Population, sequence: np.ndarray, sims: int, seed: int) -> np.ndarray:
    """(sims, clusters) service of each cluster of a stepped wedge whose cluster ``i`` is in ``sequence[i]``.

    Fitted sites: each cluster a service drawn with replacement (one stream per cluster).
    Candidates: a random subset of them (all when they are as many as the clusters) allocated at
    random to the clusters; with strata, the subset is dealt out in stratum order to the sequences
    in turn, so each stratum is spread over the sequences as evenly as it can be.
    """
    sequence = np.asarray(sequence, dtype=np.int64)
    clusters = sequence.size
    if pop.resample:
        out = np.empty((sims, clusters), dtype=np.int64)
        for col in range(clusters):
            gen = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 4, col)))
            out[:, col] = gen.integers(pop.n_services, size=sims)
        return out
    if pop.n_services < clusters:
        raise DataError(
            f"the candidate sites list {pop.n_services} services; a stepped wedge of {clusters} clusters needs "
            f"{clusters}; add candidates or plan at most {pop.n_services} clusters"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 5)))
    chosen = np.argsort(rng.random((sims, pop.n_services)), axis=1)[:, :clusters]  # random subset, random order
    if pop.strata is None:
        return chosen
    # stratum order (random within a stratum), dealt to the clusters sequence by sequence in turn
    by_stratum = np.argsort(pop.strata[chosen] + rng.random(chosen.shape), axis=1)
    dealt = np.take_along_axis(chosen, by_stratum, axis=1)
    rank = np.zeros(clusters, dtype=np.int64)  # each cluster's place within its sequence
    for s in np.unique(sequence):
        rank[sequence == s] = np.arange((sequence == s).sum())
    turn = np.argsort(rank + rng.random((sims, int(sequence.max()) + 1))[:, sequence], axis=1)
    out = np.empty_like(dealt)
    np.put_along_axis(out, turn, dealt, axis=1)
    return out


# ----------------------------------------------------------------------------- what it implies
def _region_shift_and_var(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and service: the fitted region effect (0 if fresh) and the SD^2 around it."""
    var = np.broadcast_to(pop.sigma_site[:, None] ** 2, pop.before.shape).copy()
    shift = np.zeros(pop.before.shape)
    fitted = (pop.region >= 0) & (pop.region < pop.n_fitted_regions)
    fresh = (pop.region >= pop.n_fitted_regions)
    if fitted.any():
        shift[:, fitted] = pop.region_effect[:, pop.region[fitted]]
    if fresh.any():
        var[:, fresh] += pop.sigma_region[:, None] ** 2
    return shift, var


def _moments(eta: np.ndarray, sd: np.ndarray, *, second: bool = True, chunk: int = 200):
    """E[p] (and E[p^2] when ``second``) of ``p = expit(eta + sd * u)``, u ~ N(0, 1), per element."""
    m1 = np.empty(eta.shape)
    m2 = np.empty(eta.shape) if second else None
    for start in range(0, eta.shape[0], chunk):
        rows = slice(start, start + chunk)
        p = special.expit(eta[rows, ..., None] + sd[rows, ..., None] * _NODES)
        m1[rows] = p @ _WEIGHTS
        if m2 is not None:
            m2[rows] = (p * p) @ _WEIGHTS
    return m1, m2


def implied(pop: Population) -> dict[str, np.ndarray]:
    """Per draw: the population-averaged control and intervention proportions and the ICC.

    A cluster is a service drawn from the population (each equally likely) with its own site
    effect and its region's effect (fitted, or fresh: then part of the spread). ``icc`` is the
    proportion-scale ICC of the control arm: the between-cluster variance of the cluster
    probabilities over ``pbar (1 - pbar)``.

    Returns
    -------
    dict of (S,) arrays
        ``p0_marginal``, ``p1_marginal``, ``icc`` and ``log_or_mean`` (the mean over services of
        the cluster-specific log odds ratio).
    """
    region_shift, var = _region_shift_and_var(pop)
    sd = np.sqrt(var)
    m1_0, m2_0 = _moments(pop.before + region_shift, sd)
    m1_1, _ = _moments(pop.after + region_shift, sd, second=False)
    unknown = pop.region == UNKNOWN_REGION
    if unknown.any():
        # a service of unknown region: the moments of the mixture over the fitted regions
        m1_0[:, unknown] = m2_0[:, unknown] = m1_1[:, unknown] = 0.0
        for r, weight in enumerate(pop.region_weights):
            shift = pop.region_effect[:, r : r + 1]
            a1, a2 = _moments(pop.before[:, unknown] + shift, sd[:, unknown])
            b1, _ = _moments(pop.after[:, unknown] + shift, sd[:, unknown], second=False)
            m1_0[:, unknown] += weight * a1
            m2_0[:, unknown] += weight * a2
            m1_1[:, unknown] += weight * b1
    p0 = m1_0.mean(axis=1)
    p1 = m1_1.mean(axis=1)
    between = np.maximum(m2_0.mean(axis=1) - p0**2, 0.0)
    return {
        "p0_marginal": p0,
        "p1_marginal": p1,
        "icc": between / (p0 * (1.0 - p0)),
        "log_or_mean": (pop.after - pop.before).mean(axis=1),
    }


def describe(pop: Population, allocation: str = "the arms") -> list[str]:
    """Sentences naming the population of services and its regions (assumptions, text output).

    ``allocation``: what the candidates are randomised to (``"the sequences"`` in a stepped wedge).
    """
    if pop.kind == "fitted_sites":
        # region words only for a model with region effects
        own = "its site-level E, C, F and region" if (pop.region != NO_REGION).any() else "its site-level E, C, F"
        text = [
            f"Population of services: like the {pop.n_services} fitted services — each cluster is one of them drawn "
            f"at random ({own}) with a site effect of its own, N(0, sigma_site)."
        ]
    else:
        strat = " within region strata" if pop.strata is not None else ""
        text = [
            f"Population of services: the {pop.n_services} candidate services given, randomised to {allocation}{strat} "
            "in each simulated trial (a random subset when there are more than the design needs), each with a site "
            "effect of its own, N(0, sigma_site)."
        ]
    if (pop.region != NO_REGION).any():
        text.append(
            "Clusters of one region share its effect: the fitted effect for a fitted region, a fresh "
            "N(0, sigma_region) per simulated trial for any other region."
        )
    if (pop.region == UNKNOWN_REGION).any():
        text.append(
            "A service whose region is not given is in one of the fitted regions, drawn for each cluster in "
            "proportion to the regions' numbers of fitted sites (as for a new site in predict)."
        )
    return text
