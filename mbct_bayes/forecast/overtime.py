"""Evaluation over time: fit on the waves up to t, forecast every site's next waves (expanding window).

``evaluate --by time`` answers *how well does a transition model forecast where a service goes
next?* For each cut time ``t`` (every distinct time of the panel from the ``min_waves``-th to the
one before the last), the model is refitted on the modelled rows (transitions) up to ``t`` and
every site observed at ``t`` is forecast from its state there for its next ``horizon`` waves with
:func:`mbct_bayes.forecast.journey.forecast` (E, C, F held at their values at ``t``: what is known
then). The forecast of the ``k``-th wave ahead is scored against the site's ``k``-th observed wave
after ``t`` (its actual time may differ from ``t + k·step`` where the panel has gaps).

Beside the model, two baselines from the same training rows, each a proper forecast:

* **base rate**: the outcome's shares among the training transitions (Jeffreys pseudo-counts);
* **persistence**: "the same state as at the last wave", with probability the share of training
  transitions that kept their state (Jeffreys), the rest spread evenly over the other states.

Scores come from :func:`mbct_bayes.forecast.rules.score_table` with skill intervals from a site
bootstrap. The model is compiled once and each cut is a refit on a subset of rows
(:meth:`mbct_bayes.model.fit.CompiledModel.sample` with ``rows``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes._validate import level_codes
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.families._base import BASELINE_PSEUDO
from mbct_bayes.forecast.journey import Forecast, check_horizon, check_transition_fit, forecast
from mbct_bayes.forecast.rules import score_table
from mbct_bayes.io import check_output_dir, write_json, write_table
from mbct_bayes.model.fit import compile_model
from mbct_bayes.model.sampling import SamplerSettings, sampler_settings
from mbct_bayes.schema import validate_observations
from mbct_bayes.spec import ModelSpec


def base_rate_forecast(train_codes: np.ndarray, n_states: int) -> np.ndarray:
    """(K,) the states' shares among the training outcomes, with Jeffreys pseudo-counts."""
    counts = np.bincount(train_codes, minlength=n_states) + BASELINE_PSEUDO
    return counts / counts.sum()


def persistence_forecast(train_previous: np.ndarray, train_codes: np.ndarray, last: np.ndarray, n_states: int) -> np.ndarray:
    """(n, K) "the same state as at the last wave" with the training share of kept states (Jeffreys).

    The rest of the probability is spread evenly over the other states, so the forecast is a
    proper distribution (a bare point forecast would score minus infinity on every change).
    """
    kept = (np.sum(train_previous == train_codes) + BASELINE_PSEUDO) / (train_codes.size + 2 * BASELINE_PSEUDO)
    out = np.full((last.size, n_states), (1.0 - kept) / (n_states - 1))
    out[np.arange(last.size), last] = kept
    return out


@dataclass(frozen=True)
class TimeEvaluation:
    """What :func:`evaluate_over_time` returns.

    Attributes
    ----------
    predictions
        One row per (cut, site, wave ahead): ``cut``, site, ``ahead``, the observed ``time`` and
        state, the model's ``p_<level>``, and the baselines' ``base_<level>``, ``persist_<level>``.
    metrics
        ``{"vs_base_rate": score_table(...), "vs_persistence": score_table(...), "cuts", "horizon",
        "n_forecasts", "notes"}``.
    """

    predictions: pd.DataFrame
    metrics: dict[str, Any]

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``predictions.csv`` and ``metrics.json`` into ``directory`` (created if missing)."""
        folder = check_output_dir(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"predictions": folder / "predictions.csv", "metrics": folder / "metrics.json"}
        write_table(paths["predictions"], self.predictions)
        write_json(paths["metrics"], self.metrics)
        return paths


def evaluate_over_time(
    obs: pd.DataFrame,
    spec: ModelSpec,
    *,
    horizon: int = 1,
    min_waves: int = 3,
    sampler: SamplerSettings | None = None,
    n_boot: int = 1000,
    progress: Callable[[str], None] | None = None,
    source: str = "observations",
) -> TimeEvaluation:
    """Expanding-window evaluation of a transition model's forecasts (module docstring).

    Parameters
    ----------
    obs
        The panel: one row per site and time.
    spec
        A transition model's spec (``dynamics = "transition"``).
    horizon
        Waves ahead forecast from each cut (each scored against the site's observed waves).
    min_waves
        The first cut is the ``min_waves``-th distinct time (so the first fit has
        ``min_waves - 1`` transitions per site).
    sampler
        Draws, tune, chains and seed of every refit; each cut's sampler and forecast seeds come
        from ``np.random.SeedSequence(seed)`` (same seed, same numbers).
    n_boot
        Site resamples of the skill intervals.
    """
    check_transition_fit(spec)
    horizon = check_horizon(horizon)
    settings = sampler_settings(sampler)
    panel = validate_observations(obs, spec, source=source)
    time, group = spec.time, spec.group
    assert time is not None
    times = np.sort(panel[time].unique())
    if isinstance(min_waves, bool) or not isinstance(min_waves, int) or min_waves < 2:
        raise DataError(f"min_waves must be a whole number >= 2 (the first fit needs a transition); got {min_waves!r}")
    if len(times) < min_waves + 1:
        raise DataError(
            f"{source}: {len(times)} distinct times; evaluation over time needs at least {min_waves + 1} "
            f"(fits on the first {min_waves}, forecasts a later one); lower min_waves or add waves"
        )
    cuts = times[min_waves - 1 : -1]
    compiled = compile_model(panel, spec, sampler=settings, source=source)
    rows = compiled.table  # the modelled (lagged) rows the compiled model holds
    levels = compiled.spec.state_levels
    n_states = len(levels)
    row_codes = level_codes(rows[spec.outcome], levels, source)
    row_previous = level_codes(rows["previous"], levels, source)
    seeds = np.random.SeedSequence(settings.seed).spawn(len(cuts))
    ordered = panel.sort_values([group, time])
    records = []
    for cut, seq in zip(cuts, seeds, strict=True):
        sample_seed, forecast_seed = (int(x) for x in seq.generate_state(2))
        train = rows[time].to_numpy(dtype=float) <= cut
        if progress is not None:
            progress(f"cut {time} {cut:g}: refit on {int(train.sum())} transitions, forecast {horizon} wave(s) ahead")
        fit = compiled.sample(rows=train, settings=dataclasses.replace(settings, seed=sample_seed % 2**31))
        fold = dataclasses.replace(fit, data=rows[train].reset_index(drop=True))
        start = ordered[ordered[time] == cut]
        later = ordered[ordered[time] > cut].groupby(group, sort=False).head(horizon)
        later = later.assign(ahead=later.groupby(group, sort=False).cumcount() + 1)
        start = start[start[group].isin(later[group])]
        if start.empty:
            continue
        result = forecast(fold, start, horizon=horizon, seed=forecast_seed % 2**31, source=source)
        assert isinstance(result, Forecast)  # check_transition_fit above: a transition model forecasts states
        mean = result.p.mean(axis=0)  # (n, H, K)
        position = {site: i for i, site in enumerate(result.sites)}
        base = base_rate_forecast(row_codes[train], n_states)
        last = level_codes(start[spec.outcome], levels, source)
        persist = persistence_forecast(row_previous[train], row_codes[train], last, n_states)
        start_index = {site: i for i, site in enumerate(start[group].astype(str))}
        for row in later.itertuples(index=False):
            site, ahead = str(getattr(row, group)), int(row.ahead)
            record: dict[str, Any] = {"cut": float(cut), group: site, "ahead": ahead, time: float(getattr(row, time)),
                                      spec.outcome: getattr(row, spec.outcome)}
            p = mean[position[site], ahead - 1]
            for m, level in enumerate(levels):
                record[f"p_{level}"] = float(p[m])
                record[f"base_{level}"] = float(base[m])
                record[f"persist_{level}"] = float(persist[start_index[site], m])
            records.append(record)
    predictions = pd.DataFrame.from_records(records)
    if predictions.empty:
        raise DataError(f"{source}: no site has a wave after a cut; nothing to forecast")
    y = level_codes(predictions[spec.outcome], levels, source)
    model = predictions[[f"p_{level}" for level in levels]].to_numpy()
    family = get_family(spec.family)

    def scores(baseline_prefix: str) -> dict[str, Any]:
        baseline = predictions[[f"{baseline_prefix}_{level}" for level in levels]].to_numpy()
        if family.ordered_levels:
            return score_table(model, y, predictions[group], family=spec.family, baseline=baseline,  # type: ignore[arg-type]
                               n_boot=n_boot, seed=settings.seed)
        return score_table(model[:, -1], y, predictions[group], family=spec.family,  # type: ignore[arg-type]
                           baseline=baseline[:, -1], n_boot=n_boot, seed=settings.seed)

    metrics = {
        "by": "time",
        "horizon": horizon,
        "cuts": [float(c) for c in cuts],
        "n_forecasts": len(predictions),
        "vs_base_rate": scores("base"),
        "vs_persistence": scores("persist"),
        "notes": [
            f"expanding window: refit on the transitions up to each cut, forecast each site {horizon} wave(s) ahead "
            "from its state at the cut, E, C, F held at their values there",
            "base rate: the states' shares among the training transitions; persistence: the same state as at the "
            "cut with probability the training share of kept states (both with Jeffreys pseudo-counts)",
            "the k-th wave ahead is scored against the site's k-th observed wave after the cut",
        ],
    }
    return TimeEvaluation(predictions=predictions, metrics=metrics)
