"""Simulation-based calibration of panel models (issue 14): designs, and the results collected.

Issue 14 asks that on simulated panels every coefficient's and SD's 90% interval contains the
truth. One data set cannot show that honestly: with about ten parameters, ten 90% intervals all
hold with probability about 0.35 even for a perfect sampler. ``mbct-bayes check`` (SBC, Talts et
al. 2018) asks the calibrated question instead, over many data sets drawn from the priors at a
given design. This script writes the three designs and, after the runs, collects their results.

Designs (40 sites × 6 waves, the size of ``data/example/panel.csv``):

* ``bernoulli_gaps``: a bernoulli transition model with unequal gaps (1 or 2 years, drawn per
  step), so the spec has the gap terms ``gap`` and ``gap:previous[1]`` (centre 1.5 years); no
  regions. Design: :func:`mbct_bayes.model.simulate.simulate_panel` (40, 6, gaps 1 and 2, seed 1).
* ``ordinal_journey``: ``models/journey.toml`` (ordinal transition, none < partial < embedded,
  E, C, F at the previous wave, site and region effects) on ``data/example/panel.csv`` (annual).
* ``ordinal_gaps``: the ordinal transition model with unequal gaps (1 or 2 years; gap terms
  ``gap``, ``gap:previous[partial]``, ``gap:previous[embedded]``), no regions. Design:
  :func:`~mbct_bayes.model.simulate.simulate_panel` (40, 6, ``"ordinal"``, gaps 1 and 2, seed 1).
* ``bernoulli_trend``: ``time_trend = true`` (population trend, site slopes correlated with the
  site intercepts, LKJ prior) on :func:`mbct_bayes.model.simulate.simulate_observations` (40
  sites × 6 waves, default truth with :func:`~mbct_bayes.model.simulate.default_time_trend`, no
  regions, seed 1); ``time = "wave"``.

Only each design's sites, times, E, C, F (and regions) are used by the check: every outcome is
simulated from prior draws (a transition model's states forward from each site's observed first
wave), so the design's own truth does not matter.

Usage::

    python benchmarks/sbc_panel.py make OUT_DIR          # writes <name>.csv and <name>.toml
    mbct-bayes check OUT_DIR/<name>.toml --like OUT_DIR/<name>.csv --reps 200 --out OUT_DIR/<name>
    python benchmarks/sbc_panel.py collect OUT_DIR benchmarks/results_sbc_panel.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mbct_bayes as mb
from mbct_bayes.model.simulate import default_time_trend, default_truth, simulate_observations, simulate_panel

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ("bernoulli_gaps", "ordinal_journey", "ordinal_gaps", "bernoulli_trend")


def make(folder: Path) -> None:
    """Write each design's observations (CSV) and spec (TOML) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    panel, truth = simulate_panel(40, 6, "bernoulli", gaps=(1.0, 2.0), n_regions=0, seed=1)
    spec = mb.ModelSpec.from_dict(truth["spec"]).with_changes(name="sbc-bernoulli-gaps")
    panel.to_csv(folder / "bernoulli_gaps.csv", index=False)
    (folder / "bernoulli_gaps.toml").write_text(spec.to_toml(), encoding="utf-8")

    panel, truth = simulate_panel(40, 6, "ordinal", gaps=(1.0, 2.0), n_regions=0, seed=1)
    spec = mb.ModelSpec.from_dict(truth["spec"]).with_changes(name="sbc-ordinal-gaps")
    panel.to_csv(folder / "ordinal_gaps.csv", index=False)
    (folder / "ordinal_gaps.toml").write_text(spec.to_toml(), encoding="utf-8")

    journey = mb.ModelSpec.from_toml(ROOT / "models" / "journey.toml")
    (folder / "ordinal_journey.csv").write_text((ROOT / "data" / "example" / "panel.csv").read_text(encoding="utf-8"))
    (folder / "ordinal_journey.toml").write_text(journey.to_toml(), encoding="utf-8")

    trend_truth = default_truth("bernoulli", n_regions=0)
    trend_truth["time_trend"] = default_time_trend()
    obs, _ = simulate_observations(40, 6, "bernoulli", n_regions=0, seed=1, truth=trend_truth)
    trend = mb.ModelSpec(family="bernoulli", time="wave", time_trend=True, name="sbc-bernoulli-trend")
    obs.to_csv(folder / "bernoulli_trend.csv", index=False)
    (folder / "bernoulli_trend.toml").write_text(trend.to_toml(), encoding="utf-8")


def collect(folder: Path, out: Path) -> None:
    """Gather each run's ``check.json`` (and ``time.txt`` from ``/usr/bin/time -v``, if there) into one JSON."""
    results = {}
    for name in DESIGNS:
        path = folder / name / "check.json"
        if not path.is_file():
            continue
        check = json.loads(path.read_text(encoding="utf-8"))
        entry = {k: check[k] for k in (
            "reps", "fitted_reps", "degenerate_reps", "degenerate_share", "divergent_fits", "low_ess_fits",
            "rank_draws", "bins", "threshold", "rule", "passed", "settings",
        )}
        entry["parameters"] = check["parameters"]
        timing = folder / name / "time.txt"
        if timing.is_file():
            entry["time_v"] = {
                line.split(": ", 1)[0].strip(): line.split(": ", 1)[1].strip()
                for line in timing.read_text(encoding="utf-8").splitlines()
                if any(key in line for key in ("Elapsed (wall clock)", "User time", "System time", "Percent of CPU"))
            }
        results[name] = entry
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "make":
        make(Path(args[0]))
    elif command == "collect":
        collect(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}; use make or collect")
