"""Forecasting journeys: where each service will be at its next waves, and what if its champion leaves.

:func:`forecast` takes a fitted **transition model** (``dynamics = "transition"``,
:mod:`mbct_bayes.model.panel`) and each service's latest wave (site, time, state, E, C, F,
region), and forecasts the state at each of the next ``horizon`` waves.

How a journey is forecast
-------------------------
Future waves come every ``step`` time units (default: the median gap between consecutive waves of
the fitted panel), so future wave ``k`` of a site last seen at time ``t0`` is at ``t0 + k·step``.
E, C, F (and covariates) stay at their latest values unless a what-if change moves a predictor
from a wave on (:class:`Change`, e.g. ``F=-1.5@2``: F drops by 1.5 from future wave 2 on, as when
the champion leaves); changed values are clamped to the spec's scale and the result says so.

Per posterior draw ``s`` the transition model gives, for each site, future wave ``k`` and previous
state ``l``, the probability of each state ``m`` at wave ``k``: ``T_s[i, k, l, m]``, from the rows
a transition model is fitted to (predictors at the previous or current wave as the spec says,
``previous = l``, ``gap = step``) through the one design matrix
(:func:`mbct_bayes.model.design.design_matrix`). The site's effects come from
:mod:`mbct_bayes.planning.predict`: a site in the fit keeps its own fitted effect (and region's);
any other site draws one per posterior draw from the fitted population, and an empty region is
the package's mixture of the fitted regions (``region_mode``, see that module). A site whose
only fitted wave was its first has no modelled transition, so it counts as not in the fit. In a
time-trend model each future wave is at its own time, so the population trend and the site's
slope (its own, or drawn with its intercept for a new site) move it wave by wave.

Counts
------
A family without states (poisson, negbinomial: access counts with ``exposure`` and
``rate_per``) has no transitions; its panel fit (``time = "<column>"``) is forecast as the
expected **rate** at each future wave (:class:`CountForecast`): per draw ``s``, site ``i`` and
future wave ``k`` at time ``t0 + k·step``, ``rate_s = family.planned_quantity(eta_s)`` (for
counts ``rate_per · exp(eta)``: events per ``rate_per`` units of exposure, so no exposure is
needed) with ``eta_s = Intercept + X beta + u_site + (time + b_site)(t - t_origin)`` from the same
design matrix and site effects as above, and the predictors at wave ``k``'s values (a count
model relates each wave's count to the same wave's scores). The rate is the posterior mean over
draws with its 5%/95% quantiles. A count fit **without** a time trend is forecast too: its
rate is flat over waves except where a what-if changes E, C or F (the result says so), which is
honest about what that model knows. A what-if gives Δrate at the horizon per draw with the same
site draws (common random numbers): a zero change gives exactly zero.

The state probabilities are the posterior predictive of the simulated path, computed exactly per
draw: starting from the observed state, ``pi_k = pi_{k-1} · T_s[k]`` (a Markov chain given the
draw's parameters and site effect), which is what infinitely many paths simulated with that draw
would give (Rao-Blackwellised: no Monte Carlo noise inside a draw). P(level at wave k) is the
mean of ``pi_k`` over draws and its 5%/95% interval the quantiles over draws, so the interval
says how sure the model is of the probability. One path per draw is also simulated
(``Forecast.paths``, from uniforms drawn once), for trajectories and fan charts.

A what-if scenario is forecast with **common random numbers**: the same parameter draws, the same
new-site and region draws (one generator, same order) and the same path uniforms as the baseline,
so only the change itself differs; a zero change gives exactly zero ΔP. ΔP(embedded at the
horizon) is the scenario's minus the baseline's probability of the top state at the last wave,
per draw, summarised by its mean and 5%/95% quantiles.

Draw order of ``np.random.default_rng(seed)``: the group effects of sites not in the fit
(:func:`mbct_bayes.planning.predict.group_part` with ``kind="new_site"``: unknown regions, then
site effects), then the path uniforms ``rng.random((S, n_sites, horizon))``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes._validate import level_codes
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.model.design import design_matrix, numeric_predictors
from mbct_bayes.model.panel import GAP, PREVIOUS, modelled_rows
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.model.predictor import fixed_part
from mbct_bayes.planning.predict import check_lever, check_region_mode, group_part
from mbct_bayes.schema import validate_observations
from mbct_bayes.spec import ModelSpec

if TYPE_CHECKING:  # annotations only; forecast functions take a fitted model
    from mbct_bayes.model.fit import Fit

#: Quantiles of the intervals over posterior draws.
INTERVAL = (0.05, 0.95)
#: ``PREDICTOR=CHANGE`` or ``PREDICTOR=CHANGE@WAVE`` (the wave defaults to 1).
CHANGE_SYNTAX = re.compile(r"^\s*([^=@\s]+)\s*=\s*([^@]+?)\s*(?:@\s*(\S+)\s*)?$")


@dataclass(frozen=True)
class Change:
    """One what-if change: ``predictor`` moves by ``change`` scale points from future wave ``from_wave`` on."""

    predictor: str
    change: float
    from_wave: int = 1

    def label(self) -> str:
        """The change as written on the command line, e.g. ``F=-1.5@2``."""
        return f"{self.predictor}={self.change:+g}@{self.from_wave}"


def parse_change(text: str) -> Change:
    """A :class:`Change` from ``"F=-1.5@2"`` (``@WAVE`` optional: from the first future wave).

    Raises
    ------
    DataError
        One line saying what is wrong with the text and showing the syntax.
    """
    syntax = "write PREDICTOR=CHANGE@WAVE, e.g. F=-1.5@2 (F drops by 1.5 from future wave 2 on)"
    match = CHANGE_SYNTAX.match(str(text))
    if match is None:
        raise DataError(f"what-if {text!r} is not a change; {syntax}")
    name, amount, wave = match.groups()
    try:
        change = float(amount)
    except ValueError:
        raise DataError(f"what-if {text!r}: the change {amount!r} is not a number; {syntax}") from None
    if not math.isfinite(change):
        raise DataError(f"what-if {text!r}: the change must be a finite number; {syntax}")
    from_wave = 1
    if wave is not None:
        try:
            from_wave = int(wave)
        except ValueError:
            raise DataError(f"what-if {text!r}: the wave {wave!r} is not a whole number; {syntax}") from None
        if from_wave < 1:
            raise DataError(f"what-if {text!r}: the wave must be 1 or later (1 = the first future wave); {syntax}")
    return Change(predictor=name, change=change, from_wave=from_wave)


def check_changes(changes: Sequence[Change | str], spec: ModelSpec, horizon: int) -> tuple[Change, ...]:
    """The changes parsed and checked: a numeric predictor each (a lever), from a wave within the horizon."""
    out = []
    for item in changes:
        change = item if isinstance(item, Change) else parse_change(item)
        check_lever(spec, change.predictor)
        if change.from_wave > horizon:
            raise DataError(
                f"what-if {change.label()}: wave {change.from_wave} is after the horizon ({horizon}); "
                f"choose a wave from 1 to {horizon} or a longer --horizon"
            )
        out.append(change)
    return tuple(out)


def check_horizon(horizon: Any) -> int:
    """``horizon`` as a whole number >= 1, or a one-line DataError."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise DataError(f"horizon must be a whole number of future waves, 1 or more; got {horizon!r}")
    return int(horizon)


def predictor_paths(
    last: np.ndarray,
    names: Sequence[str],
    horizon: int,
    changes: Sequence[Change],
    scale: Mapping[str, tuple[float, float] | None],
) -> tuple[np.ndarray, list[str]]:
    """Numeric predictor values at waves 0 (the latest, observed) to ``horizon``: (n, horizon + 1, q).

    Every value stays at its latest one, except that each change adds its amount from its wave
    on; a value pushed off the scale is clamped to it. Returns the values and one note per
    clamped predictor (empty when nothing was clamped).
    """
    last = np.asarray(last, dtype=float)
    values = np.repeat(last[:, None, :], horizon + 1, axis=1)
    notes = []
    for change in changes:
        j = list(names).index(change.predictor)
        values[:, change.from_wave :, j] += change.change
        bounds = scale.get(change.predictor)
        if bounds is None:
            continue
        lo, hi = bounds
        off = (values[:, :, j] < lo) | (values[:, :, j] > hi)
        if off.any():
            n_sites = int(off.any(axis=1).sum())
            notes.append(
                f"{change.label()} takes {change.predictor} of {n_sites} site(s) off the scale {lo:g}-{hi:g}; "
                f"clamped to the scale (the change there is smaller than {change.change:+g})"
            )
            values[:, :, j] = np.clip(values[:, :, j], lo, hi)
    return values, notes


def state_distribution(transitions: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per-draw probability of each state at each future wave: (S, n, H, K).

    Parameters
    ----------
    transitions
        ``T[s, i, k, l, m]`` (S, n, H, K, K): P(state m at future wave k+1 | state l at the wave
        before), each row summing to 1.
    start
        (n,) state codes at the latest wave.

    The forward recursion ``pi_k = pi_{k-1} · T[k]`` of a Markov chain from a known start.
    """
    n_draws, n_sites, horizon, n_states, _ = transitions.shape
    pi = np.zeros((n_draws, n_sites, n_states))
    pi[:, np.arange(n_sites), start] = 1.0
    out = np.empty((n_draws, n_sites, horizon, n_states))
    for k in range(horizon):
        pi = np.einsum("sil,silm->sim", pi, transitions[:, :, k])
        out[:, :, k] = pi
    return out


def sample_paths(transitions: np.ndarray, start: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One simulated path per draw and site: state codes (S, n, H).

    The state at wave k is the first state whose cumulative transition probability from the
    state at wave k-1 exceeds ``uniforms[s, i, k]`` (inverse CDF), so two calls with the same
    uniforms (common random numbers) differ only where the transition probabilities do.
    """
    n_draws, n_sites, horizon = transitions.shape[:3]
    state = np.broadcast_to(np.asarray(start, dtype=np.int64), (n_draws, n_sites)).copy()
    paths = np.empty((n_draws, n_sites, horizon), dtype=np.int64)
    for k in range(horizon):
        rows = np.take_along_axis(transitions[:, :, k], state[:, :, None, None], axis=2)[:, :, 0, :]
        cumulative = np.cumsum(rows, axis=-1)[..., :-1]
        state = (uniforms[:, :, k, None] >= cumulative).sum(axis=-1)
        paths[:, :, k] = state
    return paths


def fitted_gaps(fit_data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The gaps between consecutive waves of the fitted panel: the modelled rows' ``gap`` (one per transition)."""
    gaps = modelled_rows(fit_data, spec)[GAP].to_numpy(dtype=float)
    return gaps[np.isfinite(gaps)]


def has_states(spec: ModelSpec) -> bool:
    """Whether the fit's family has states (the family says: ``Family.state_levels``); counts do not."""
    return get_family(spec.family).state_levels is not None


def panel_gaps(fit_data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The gaps between consecutive waves of each site in the fitted panel (transition or not)."""
    if spec.dynamics == "transition":
        return fitted_gaps(fit_data, spec)
    time = _time_column(spec)
    ordered = fit_data.sort_values([spec.group, time])
    gaps = ordered.groupby(spec.group)[time].diff().to_numpy(dtype=float)
    return gaps[np.isfinite(gaps) & (gaps > 0)]


def _time_column(spec: ModelSpec) -> str:
    if spec.time is None:
        raise DataError("forecast needs a panel fit (a spec with time = \"<column>\"); this fit has no time column")
    return spec.time


def check_transition_fit(spec: ModelSpec) -> None:
    """A one-line DataError unless ``spec`` is a transition model."""
    if spec.dynamics != "transition" or spec.time is None:
        raise DataError(
            "forecast needs a transition model (a panel fit with time = \"<column>\" and dynamics = \"transition\"); "
            f"this fit has no transitions (dynamics = {spec.dynamics!r}), so it cannot say where a site goes from its "
            "state now: refit with those keys"
        )


def prepare_sites(posterior: Posterior, fit_data: pd.DataFrame, sites: pd.DataFrame, source: str = "sites") -> pd.DataFrame:
    """SITES checked: one row per site (its latest wave) with time, state, predictors (and region).

    A site in the fit may not be dated before its last fitted wave (its state there would be a
    step back in its own journey). Returns the validated table with ``_state`` (state codes)
    added (states families only; a count forecast needs no latest count).
    """
    spec = posterior.spec
    time = _time_column(spec)
    if not isinstance(sites, pd.DataFrame) or len(sites) == 0:
        raise DataError(f"{source}: has no rows; give each site's latest wave (site, {time}, {spec.outcome}, predictors)")
    states = has_states(spec)  # a count forecast needs no latest count: the rate does not depend on it
    outcome = [spec.outcome] if states else []
    required = [spec.group, time, *outcome, *spec.predictors] + ([spec.region] if spec.region else [])
    missing = [c for c in dict.fromkeys(required) if c not in sites.columns]
    regions = posterior.model_data.region_labels
    # the site and predictor columns (and how the file was read) first, in the package's words
    table = validate_observations(
        sites, spec, source=source, new_data=True, known_regions=list(regions) if regions else None
    )
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; a forecast starts from each site's latest "
            f"wave: {', '.join(dict.fromkeys(required))}" + (" (leave the region empty if unknown)" if spec.region else "")
        )
    twice = table[spec.group].duplicated(keep=False).to_numpy()
    if twice.any():
        site = table[spec.group][twice].iloc[0]
        raise DataError(
            f"{source}: site {site!r} has {int((table[spec.group] == site).sum())} rows; give each site's latest wave "
            "only (one row per site)"
        )
    if states:
        table["_state"] = level_codes(table[spec.outcome], spec.state_levels, source)
    last = fit_data.groupby(spec.group)[time].max()
    known = table[spec.group].isin(last.index).to_numpy()
    before = known & (table[time].to_numpy(dtype=float) < last.reindex(table[spec.group]).to_numpy(dtype=float))
    if before.any():
        i = int(np.flatnonzero(before)[0])
        site = table[spec.group].iloc[i]
        raise DataError(
            f"{source}: site {site!r} is at {time} {table[time].iloc[i]:g}, before its last fitted wave "
            f"({last[site]:g}); give its latest wave (at or after {last[site]:g})"
        )
    return table


def transition_rows(
    posterior: Posterior, table: pd.DataFrame, values: np.ndarray, step: float
) -> pd.DataFrame:
    """The hypothetical rows of every (site, future wave, previous state): n · H · K rows.

    Each row is what the transition model is fitted to: the site's predictors at the previous or
    current wave (as ``predictors_at`` says), ``previous`` = that state (in the outcome's own
    values), ``gap`` = ``step`` and the wave's time. Row order: site, then wave, then state.
    """
    spec = posterior.spec
    time = _time_column(spec)
    levels = list(spec.state_levels)
    n_sites, n_waves = values.shape[0], values.shape[1] - 1
    n_states = len(levels)
    shift = 0 if spec.predictors_at == "previous" else 1  # wave k's transition uses wave k-1's or k's predictors
    site_i = np.repeat(np.arange(n_sites), n_waves * n_states)
    wave_k = np.tile(np.repeat(np.arange(n_waves), n_states), n_sites)
    state_l = np.tile(np.arange(n_states), n_sites * n_waves)
    rows = table.iloc[site_i].reset_index(drop=True).drop(columns=["_state"], errors="ignore")
    for j, name in enumerate(numeric_predictors(spec)):
        rows[name] = values[site_i, wave_k + shift, j]
    rows[PREVIOUS] = pd.Series(np.asarray(levels, dtype=object)[state_l]).infer_objects()
    rows[GAP] = float(step)
    rows[time] = table[time].to_numpy(dtype=float)[site_i] + (wave_k + 1) * float(step)
    return rows


def transition_matrices(posterior: Posterior, rows: pd.DataFrame, group_effects: np.ndarray) -> np.ndarray:
    """``T[s, i, k, l, m]`` (S, n, H, K, K) of the rows of :func:`transition_rows`.

    The fixed part comes from the one design matrix; ``group_effects`` (S, n·H·K) are the rows'
    site and region effects (:func:`site_effects`).
    """
    spec, draws = posterior.spec, posterior.draws
    family = get_family(spec.family)
    n_states = len(spec.state_levels)
    n_sites = rows[spec.group].nunique()
    eta = fixed_part(draws, design_matrix(rows, spec)) + group_effects
    probs = family.level_probabilities(eta, draws)
    return probs.reshape(eta.shape[0], n_sites, -1, n_states, n_states)


def site_effects(posterior: Posterior, rows: pd.DataFrame, rng: np.random.Generator, region_mode: str) -> np.ndarray:
    """Site and region effects (S, n_rows) of each row, from :func:`mbct_bayes.planning.predict.group_part`.

    A site in the fit keeps its own effects; a site not in the fit gets one draw per posterior
    draw, shared by all its rows (group_part draws one per distinct site id). Known sites draw
    nothing, so the generator's draws depend on the new sites only.
    """
    known = rows[posterior.spec.group].astype(str).isin(set(posterior.model_data.site_labels)).to_numpy()
    effects = np.zeros((posterior.n_draws, len(rows)))
    if known.any():
        effects[:, known] = group_part(posterior, rows[known], "known_site", rng, region_mode)
    if (~known).any():
        effects[:, ~known] = group_part(posterior, rows[~known], "new_site", rng, region_mode)
    return effects


def resolve_step(fit_data: pd.DataFrame, spec: ModelSpec, step: float | None, notes: list[str]) -> float:
    """The time between future waves: ``step`` checked, or the median gap of the fitted panel; says which in ``notes``."""
    gaps = panel_gaps(fit_data, spec)
    if step is None:
        if gaps.size == 0:
            raise DataError("the fitted panel has no site with two waves, so it has no usual interval; give --step")
        step = float(np.median(gaps))
        notes.append(f"future waves every {step:g} {spec.time} (the median gap between the fitted panel's waves)")
        return step
    if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step) or step <= 0:
        raise DataError(f"step must be a positive number of {spec.time} units; got {step!r}")
    step = float(step)
    notes.append(f"future waves every {step:g} {spec.time} (given)")
    if spec.dynamics == "transition" and not spec.gap_columns and gaps.size and not np.isclose(step, gaps[0]):
        notes.append(
            f"the fitted gaps were all {gaps[0]:g}, so the model has no gap terms: a step of {step:g} is forecast "
            f"as if it were {gaps[0]:g}"
        )
    return step


@dataclass(frozen=True)
class Scenario:
    """A what-if forecast beside the baseline, with common random numbers.

    Attributes
    ----------
    changes
        The changes applied together.
    p
        (S, n, H, K) per-draw state probabilities under the scenario.
    paths
        (S, n, H) simulated state codes, from the baseline's uniforms.
    delta
        (S, n) ΔP(top state at the horizon): scenario minus baseline, per draw.
    notes
        What was clamped to the scale.
    """

    changes: tuple[Change, ...]
    p: np.ndarray
    paths: np.ndarray
    delta: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Forecast:
    """The forecast journeys of a set of sites (what :func:`forecast` returns).

    Attributes
    ----------
    sites
        Site ids, in the order of the arrays' site axis.
    start_time
        (n,) each site's latest time (wave 0).
    start_state
        (n,) each site's state code at its latest wave.
    levels
        The states, lowest first (the outcome's own values); the last is "embedded".
    step, horizon
        Time between future waves, and the number of future waves.
    p
        (S, n, H, K) per-draw probability of each state at each future wave.
    paths
        (S, n, H) one simulated path per draw (state codes).
    scenario
        The what-if forecast, or None.
    known
        (n,) whether each site was in the fit (its own effect) or drawn as a new site.
    notes
        Assumptions and adjustments the numbers rest on, in words.
    """

    sites: tuple[str, ...]
    start_time: np.ndarray
    start_state: np.ndarray
    levels: tuple[Any, ...]
    step: float
    horizon: int
    p: np.ndarray
    paths: np.ndarray
    known: np.ndarray
    scenario: Scenario | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> pd.DataFrame:
        """One row per site and future wave: ``site, wave, time, known_site`` and per state
        ``p_<level>`` (posterior mean) with ``p_<level>_q05``, ``p_<level>_q95``."""
        n_sites, horizon = len(self.sites), self.horizon
        out = pd.DataFrame({
            "site": np.repeat(self.sites, horizon),
            "wave": np.tile(np.arange(1, horizon + 1), n_sites),
            "time": (self.start_time[:, None] + self.step * np.arange(1, horizon + 1)[None, :]).ravel(),
            "known_site": np.repeat(self.known, horizon),
        })
        mean = self.p.mean(axis=0)
        lo, hi = np.quantile(self.p, INTERVAL, axis=0)
        for m, level in enumerate(self.levels):
            out[f"p_{level}"] = mean[..., m].ravel()
            out[f"p_{level}_q05"] = lo[..., m].ravel()
            out[f"p_{level}_q95"] = hi[..., m].ravel()
        return out

    def scenario_summary(self) -> pd.DataFrame | None:
        """Per site: P(top state at the horizon) without and with the change, and ΔP with its interval."""
        if self.scenario is None:
            return None
        top = len(self.levels) - 1
        delta = self.scenario.delta
        lo, hi = np.quantile(delta, INTERVAL, axis=0)
        return pd.DataFrame({
            "site": list(self.sites),
            "p_baseline": self.p[:, :, -1, top].mean(axis=0),
            "p_scenario": self.scenario.p[:, :, -1, top].mean(axis=0),
            "delta_p": delta.mean(axis=0),
            "delta_p_q05": lo,
            "delta_p_q95": hi,
        })

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``forecasts`` (one record per site and wave), ``scenario``, and the inputs."""
        table = self.summary()
        names = [str(level) for level in self.levels]
        records = []
        for row in table.itertuples(index=False):
            values = row._asdict()
            records.append({
                "site": values["site"],
                "wave": int(values["wave"]),
                "time": float(values["time"]),
                "known_site": bool(values["known_site"]),
                "p": {name: values[f"p_{name}"] for name in names},
                "p_q05": {name: values[f"p_{name}_q05"] for name in names},
                "p_q95": {name: values[f"p_{name}_q95"] for name in names},
            })
        scenario = None
        if self.scenario is not None:
            per_site = self.scenario_summary()
            assert per_site is not None
            top = self.p.shape[-1] - 1
            mean_delta = self.scenario.delta.mean(axis=1)  # the sites' average change per draw
            scenario = {
                "changes": [
                    {"predictor": c.predictor, "change": c.change, "from_wave": c.from_wave} for c in self.scenario.changes
                ],
                "outcome": f"P({names[top]} at wave {self.horizon})",
                "sites": per_site.to_dict(orient="records"),
                "mean_delta_p": float(mean_delta.mean()),
                "mean_delta_p_q05": float(np.quantile(mean_delta, INTERVAL[0])),
                "mean_delta_p_q95": float(np.quantile(mean_delta, INTERVAL[1])),
                "notes": list(self.scenario.notes),
            }
        return {
            "levels": names,
            "horizon": self.horizon,
            "step": self.step,
            "n_draws": int(self.p.shape[0]),
            "forecasts": records,
            "scenario": scenario,
            "notes": list(self.notes),
        }


def forecast(
    fit: Fit,
    sites: pd.DataFrame,
    *,
    horizon: int,
    step: float | None = None,
    scenarios: Sequence[Change | str] = (),
    seed: int = 0,
    region_mode: str = "mixture",
    source: str = "sites",
) -> Forecast | CountForecast:
    """Forecast each site's state (or a count model's rate) at its next ``horizon`` waves, optionally under a what-if.

    Parameters
    ----------
    fit
        A fitted transition model (``dynamics = "transition"``), or a count model fitted to a panel
        (``time = "<column>"``, with or without ``time_trend``).
    sites
        Each site's latest wave: site, time, state (the outcome column; not needed for counts), the
        predictors, and the region when the model has regions (empty: unknown, the fitted regions'
        mixture).
    horizon
        Number of future waves, >= 1.
    step
        Time between future waves; default the median gap between consecutive waves of the fitted
        panel.
    scenarios
        What-if changes applied together (``"F=-1.5@2"`` or :class:`Change`); empty for none.
    seed
        Seed of the new-site, region and path draws (same seed, same numbers).
    region_mode
        Where a site with an empty region is (:mod:`mbct_bayes.planning.predict`).
    source
        Name of ``sites`` in messages.

    Returns
    -------
    Forecast or CountForecast
        Per-draw state probabilities and paths (or, for counts, rates); ``summary()`` and
        ``to_dict()`` for tables and JSON. See the module docstring for the method.
    """
    posterior = fit.posterior
    spec = posterior.spec
    if has_states(spec):
        check_transition_fit(spec)
    else:
        _time_column(spec)
    horizon = check_horizon(horizon)
    check_region_mode(region_mode)
    changes = check_changes(scenarios, spec, horizon)
    notes: list[str] = []
    step = resolve_step(fit.data, spec, step, notes)
    table = prepare_sites(posterior, fit.data, sites, source)
    names = numeric_predictors(spec)
    last = table[list(names)].to_numpy(dtype=float)
    states = has_states(spec)
    notes.append(
        f"{', '.join(names)} stay at each site's latest values"
        + (" unless the what-if changes them" if changes else "")
        + (f"; predictors enter at the {spec.predictors_at} wave, as fitted" if states
           else "; each wave's rate uses that wave's values, as fitted")
    )
    known = table[spec.group].astype(str).isin(set(posterior.model_data.site_labels)).to_numpy()
    if (~known).any():
        notes.append(f"{int((~known).sum())} site(s) not in the fit: a site effect drawn from the fitted population per draw")
    if not states:
        return forecast_rates(
            posterior, table, last, known, horizon=horizon, step=step, changes=changes, seed=seed,
            region_mode=region_mode, notes=notes,
        )
    start = table["_state"].to_numpy(dtype=np.int64)
    values, _ = predictor_paths(last, names, horizon, (), spec.scale)
    rows = transition_rows(posterior, table, values, step)
    rng = np.random.default_rng(seed)
    effects = site_effects(posterior, rows, rng, region_mode)  # shared by baseline and scenario
    transitions = transition_matrices(posterior, rows, effects)
    uniforms = rng.random((posterior.n_draws, len(table), horizon))
    p = state_distribution(transitions, start)
    paths = sample_paths(transitions, start, uniforms)
    scenario = None
    if changes:
        changed, clamped = predictor_paths(last, names, horizon, changes, spec.scale)
        t_changed = transition_matrices(posterior, transition_rows(posterior, table, changed, step), effects)
        p_changed = state_distribution(t_changed, start)
        scenario = Scenario(
            changes=changes,
            p=p_changed,
            paths=sample_paths(t_changed, start, uniforms),
            delta=p_changed[:, :, -1, -1] - p[:, :, -1, -1],
            notes=tuple(clamped),
        )
    return Forecast(
        sites=tuple(table[spec.group].astype(str)),
        start_time=table[spec.time].to_numpy(dtype=float),
        start_state=start,
        levels=spec.state_levels,
        step=step,
        horizon=horizon,
        p=p,
        paths=paths,
        known=known,
        scenario=scenario,
        notes=tuple(notes),
    )


def rate_rows(table: pd.DataFrame, spec: ModelSpec, values: np.ndarray, step: float) -> pd.DataFrame:
    """The rows of every (site, future wave) of a count forecast: n · H rows, site then wave.

    Each row holds the site's predictors at that wave (``values[:, k]``, wave 0 the latest) and the
    wave's time ``t0 + k·step``.
    """
    n_sites, horizon = values.shape[0], values.shape[1] - 1
    site_i = np.repeat(np.arange(n_sites), horizon)
    wave_k = np.tile(np.arange(1, horizon + 1), n_sites)
    rows = table.iloc[site_i].reset_index(drop=True)
    for j, name in enumerate(numeric_predictors(spec)):
        rows[name] = values[site_i, wave_k, j]
    time = _time_column(spec)
    rows[time] = table[time].to_numpy(dtype=float)[site_i] + wave_k * float(step)
    return rows


def expected_rates(posterior: Posterior, rows: pd.DataFrame, group_effects: np.ndarray, n_sites: int) -> np.ndarray:
    """The family's planned quantity (S, n, H) of :func:`rate_rows`: the expected rate per ``rate_per`` for counts."""
    spec, draws = posterior.spec, posterior.draws
    eta = fixed_part(draws, design_matrix(rows, spec)) + group_effects
    rate = get_family(spec.family).planned_quantity(eta, draws, spec)
    return np.asarray(rate, dtype=float).reshape(eta.shape[0], n_sites, -1)


@dataclass(frozen=True)
class CountScenario:
    """A what-if count forecast beside the baseline, with common random numbers.

    Attributes
    ----------
    changes
        The changes applied together.
    rate
        (S, n, H) per-draw expected rate under the scenario.
    delta
        (S, n) Δrate at the horizon: scenario minus baseline, per draw.
    notes
        What was clamped to the scale.
    """

    changes: tuple[Change, ...]
    rate: np.ndarray
    delta: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CountForecast:
    """The forecast rates of a count model for a set of sites (what :func:`forecast` returns for counts).

    Attributes
    ----------
    sites
        Site ids, in the order of the arrays' site axis.
    start_time
        (n,) each site's latest time (wave 0).
    label
        What the rate is, in words (the family's ``planned_label``, e.g. "expected count per 100,000 population").
    step, horizon
        Time between future waves, and the number of future waves.
    rate
        (S, n, H) per-draw expected rate at each future wave.
    known
        (n,) whether each site was in the fit (its own effect) or drawn as a new site.
    scenario
        The what-if forecast, or None.
    notes
        Assumptions and adjustments the numbers rest on, in words.
    """

    sites: tuple[str, ...]
    start_time: np.ndarray
    label: str
    step: float
    horizon: int
    rate: np.ndarray
    known: np.ndarray
    scenario: CountScenario | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> pd.DataFrame:
        """One row per site and future wave: ``site, wave, time, known_site, rate, rate_q05, rate_q95``."""
        n_sites, horizon = len(self.sites), self.horizon
        lo, hi = np.quantile(self.rate, INTERVAL, axis=0)
        return pd.DataFrame({
            "site": np.repeat(self.sites, horizon),
            "wave": np.tile(np.arange(1, horizon + 1), n_sites),
            "time": (self.start_time[:, None] + self.step * np.arange(1, horizon + 1)[None, :]).ravel(),
            "known_site": np.repeat(self.known, horizon),
            "rate": self.rate.mean(axis=0).ravel(),
            "rate_q05": lo.ravel(),
            "rate_q95": hi.ravel(),
        })

    def scenario_summary(self) -> pd.DataFrame | None:
        """Per site: the rate at the horizon without and with the change, and Δrate with its interval."""
        if self.scenario is None:
            return None
        delta = self.scenario.delta
        lo, hi = np.quantile(delta, INTERVAL, axis=0)
        return pd.DataFrame({
            "site": list(self.sites),
            "rate_baseline": self.rate[:, :, -1].mean(axis=0),
            "rate_scenario": self.scenario.rate[:, :, -1].mean(axis=0),
            "delta_rate": delta.mean(axis=0),
            "delta_rate_q05": lo,
            "delta_rate_q95": hi,
        })

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``forecasts`` (one record per site and wave, ``rate`` with quantiles), ``scenario``."""
        records = [
            {
                "site": row["site"], "wave": int(row["wave"]), "time": float(row["time"]),
                "known_site": bool(row["known_site"]), "rate": float(row["rate"]),
                "rate_q05": float(row["rate_q05"]), "rate_q95": float(row["rate_q95"]),
            }
            for row in self.summary().to_dict(orient="records")
        ]
        scenario = None
        if self.scenario is not None:
            per_site = self.scenario_summary()
            assert per_site is not None
            mean_delta = self.scenario.delta.mean(axis=1)  # the sites' average change per draw
            scenario = {
                "changes": [
                    {"predictor": c.predictor, "change": c.change, "from_wave": c.from_wave} for c in self.scenario.changes
                ],
                "outcome": f"{self.label} at wave {self.horizon}",
                "sites": per_site.to_dict(orient="records"),
                "mean_delta_rate": float(mean_delta.mean()),
                "mean_delta_rate_q05": float(np.quantile(mean_delta, INTERVAL[0])),
                "mean_delta_rate_q95": float(np.quantile(mean_delta, INTERVAL[1])),
                "notes": list(self.scenario.notes),
            }
        return {
            "quantity": self.label,
            "horizon": self.horizon,
            "step": self.step,
            "n_draws": int(self.rate.shape[0]),
            "forecasts": records,
            "scenario": scenario,
            "notes": list(self.notes),
        }


def forecast_rates(
    posterior: Posterior,
    table: pd.DataFrame,
    last: np.ndarray,
    known: np.ndarray,
    *,
    horizon: int,
    step: float,
    changes: tuple[Change, ...],
    seed: int,
    region_mode: str,
    notes: list[str],
) -> CountForecast:
    """A count model's forecast (see the module docstring, Counts): :func:`forecast` checks the inputs first.

    Draw order of ``np.random.default_rng(seed)``: the group effects of sites not in the fit
    (:func:`site_effects`), shared by baseline and scenario (common random numbers).
    """
    spec = posterior.spec
    names = numeric_predictors(spec)
    if not spec.time_trend:
        notes.append(
            "the model has no time trend: the rate stays the same over the future waves unless a what-if changes "
            "the predictors"
        )
    values, _ = predictor_paths(last, names, horizon, (), spec.scale)
    rows = rate_rows(table, spec, values, step)
    effects = site_effects(posterior, rows, np.random.default_rng(seed), region_mode)
    rate = expected_rates(posterior, rows, effects, len(table))
    scenario = None
    if changes:
        changed, clamped = predictor_paths(last, names, horizon, changes, spec.scale)
        rate_changed = expected_rates(posterior, rate_rows(table, spec, changed, step), effects, len(table))
        scenario = CountScenario(
            changes=changes, rate=rate_changed, delta=rate_changed[:, :, -1] - rate[:, :, -1], notes=tuple(clamped)
        )
    return CountForecast(
        sites=tuple(table[spec.group].astype(str)),
        start_time=table[_time_column(spec)].to_numpy(dtype=float),
        label=get_family(spec.family).planned_label(spec),
        step=step,
        horizon=horizon,
        rate=rate,
        known=known,
        scenario=scenario,
        notes=tuple(notes),
    )
