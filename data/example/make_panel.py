"""Regenerate the example implementation journeys in this folder (seed 2027; simulated data).

    python data/example/make_panel.py

40 services in 4 UK-nation-like regions, surveyed once a year for 6 years (2019-2024), with the
embeddedness level (none < partial < embedded) of each year drawn from the transition model of
``models/journey.toml`` with the known parameters in ``panel_truth.json``. The shape follows the
study's account of the journey: services start bottom-up (champions, so facilitation F is the
strongest element and context C weak), many gain top-down investment later (C rises from a year
on), and some stall when the champion leaves (F drops by 1.5 from that year on). See README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.families import get_family
from mbct_bayes.io import write_json, write_table
from mbct_bayes.model.design import design_matrix
from mbct_bayes.model.simulate import UK_REGION_WEIGHTS, region_names
from mbct_bayes.spec import ModelSpec

SEED = 2027
HERE = Path(__file__).resolve().parent
SPEC_FILE = HERE.parents[1] / "models" / "journey.toml"
N_SITES = 40
YEARS = tuple(range(2019, 2025))

#: The generating parameters (the transition model of models/journey.toml). Coefficients are
#: log-odds per scale point of the previous year's scores, and the shift of the cumulative logit
#: for each previous level above "none".
TRUTH: dict[str, Any] = {
    "beta": {"E": 0.3, "C": 0.5, "F": 0.9, "previous[partial]": 1.8, "previous[embedded]": 3.6},
    "cutpoints": [0.5, 2.8],
    "sigma_site": 0.5,
    "sigma_region": 0.3,
    "first_year_levels": {"none": 0.7, "partial": 0.25, "embedded": 0.05},
    "scores": {
        "E": "site mean ~ Normal(3.4, 0.5), constant over years",
        "C": "site mean ~ Normal(2.5, 0.5); from its top-down year on it rises by 0.3 a year",
        "F": "site mean ~ Normal(3.3, 0.6) (champions first); rises by 0.1 a year; "
        "falls by 1.5 from the year the champion leaves",
        "noise": "each year adds Normal(0, 0.15) to each score; clipped to 1-5, rounded to 2 dp",
    },
    "top_down_share": 0.6,
    "top_down_years": [2021, 2023],
    "champion_leaves_sites": 10,
    "champion_leaves_years": [2021, 2023],
}


def scores(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, int], dict[str, int]]:
    """E, C, F per site and year (n_sites, n_years, 3), and the top-down and champion-leaves years."""
    n_years = len(YEARS)
    years = np.arange(n_years)
    e = rng.normal(3.4, 0.5, N_SITES)[:, None] + 0 * years
    c = rng.normal(2.5, 0.5, N_SITES)[:, None] + 0.0 * years
    f = rng.normal(3.3, 0.6, N_SITES)[:, None] + 0.1 * years
    sites = [f"J{i + 1:02d}" for i in range(N_SITES)]
    lo, hi = TRUTH["top_down_years"]
    top_down = {}
    for i in np.flatnonzero(rng.random(N_SITES) < TRUTH["top_down_share"]):
        start = int(rng.integers(lo, hi + 1))
        c[i] += 0.3 * np.clip(np.array(YEARS) - start + 1, 0, None)
        top_down[sites[i]] = start
    lo, hi = TRUTH["champion_leaves_years"]
    leaves = {}
    for i in np.sort(rng.choice(N_SITES, TRUTH["champion_leaves_sites"], replace=False)):
        year = int(rng.integers(lo, hi + 1))
        f[i] -= 1.5 * (np.array(YEARS) >= year)
        leaves[sites[i]] = year
    values = np.stack([e, c, f], axis=-1) + rng.normal(0.0, 0.15, (N_SITES, n_years, 3))
    return np.round(np.clip(values, 1.0, 5.0), 2), top_down, leaves


def main(out: Path = HERE) -> None:
    """Write panel.csv, panel_sites.csv and panel_truth.json into ``out``."""
    rng = np.random.default_rng(SEED)
    spec = ModelSpec.from_toml(SPEC_FILE)
    family = get_family(spec.family)
    levels = list(family.state_levels(spec))  # type: ignore[misc]
    sites = [f"J{i + 1:02d}" for i in range(N_SITES)]
    regions_all = region_names(4)
    region = np.asarray(regions_all, dtype=object)[rng.choice(4, N_SITES, p=UK_REGION_WEIGHTS)]
    u_region = dict(zip(regions_all, rng.normal(0.0, TRUTH["sigma_region"], 4), strict=True))
    u_site = rng.normal(0.0, TRUTH["sigma_site"], N_SITES)
    values, top_down, leaves = scores(rng)
    first = list(TRUTH["first_year_levels"].values())
    state = rng.choice(len(levels), N_SITES, p=first)
    unknown = sorted(set(TRUTH["beta"]) - set(spec.coef_names))
    if unknown:
        raise SystemExit(f"truth names {unknown}, which models/journey.toml does not have ({spec.coef_names})")
    beta = np.array([TRUTH["beta"].get(name, 0.0) for name in spec.coef_names])
    cutpoints = np.asarray(TRUTH["cutpoints"])[None, :]
    effect = u_site + np.array([u_region[r] for r in region])
    frames = []
    for k, year in enumerate(YEARS):
        frame = pd.DataFrame({
            "site": sites, "region": region, "year": year,
            "E": values[:, k, 0], "C": values[:, k, 1], "F": values[:, k, 2],
        })
        if k > 0:
            # the transition row of each site: last year's scores, last year's level, a gap of 1 year
            previous = frames[-1].assign(previous=frames[-1]["level"], gap=1.0, year=year)
            eta = design_matrix(previous, spec) @ beta + effect
            state = family.draw_codes(rng, eta[None, :], None, {"cutpoints": cutpoints})[0]
        frames.append(frame.assign(level=np.asarray(levels, dtype=object)[state]))
    panel = pd.concat(frames, ignore_index=True).sort_values(["site", "year"], ignore_index=True)
    latest = panel[panel.year == YEARS[-1]].drop(columns=[]).reset_index(drop=True)
    # two services not in the panel, surveyed in the last year: one in a known region, one unknown
    new = pd.DataFrame({
        "site": ["NEWA", "NEWB"], "region": ["Wales", ""], "year": [YEARS[-1]] * 2,
        "E": [3.6, 3.0], "C": [2.4, 3.2], "F": [4.0, 2.6], "level": ["partial", "none"],
    })
    truth = {
        **TRUTH,
        "seed": SEED,
        "years": list(YEARS),
        "levels": levels,
        "site_effects": dict(zip(sites, u_site.round(6).tolist(), strict=True)),
        "region_effects": {r: round(float(v), 6) for r, v in u_region.items()},
        "site_regions": dict(zip(sites, region.tolist(), strict=True)),
        "top_down_year": top_down,
        "champion_leaves_year": leaves,
        "coefficient_order": list(spec.coef_names),
    }
    write_table(out / "panel.csv", panel)
    write_table(out / "panel_sites.csv", pd.concat([latest, new], ignore_index=True))
    write_json(out / "panel_truth.json", truth)


if __name__ == "__main__":
    main()
