"""Benchmark: centred vs non-centred site effects on a grid of designs (issue 12, item 5).

Cells: bernoulli with 5 units per site; binomial with 1 row of 8 trials per site and with 5 rows of
8 trials (40 trials) per site; each with 20 and 100 sites; no regions (so only the site effects'
geometry is compared). Per fit, sigma_site is drawn from the spec's own prior (the shipped
``models/bernoulli.toml`` / ``models/binomial.toml``: HalfNormal(1)); the other parameters are
:func:`mbct_bayes.model.simulate.default_truth` (intercept -0.3, beta E/C/F 0.3/0.5/0.9). Both
parametrisations fit the *same* datasets with the same sampler seed; each (cell, parametrisation)
model is compiled once and the datasets are swapped in (``CompiledModel.sample(table=...)``).

A fit "diverges" when it has at least one divergent transition; R-hat and ESS are the package's
gate (:func:`mbct_bayes.model.fit.diagnostics`, over every saved parameter including the site effects).

Run by hand (about 15 min of CPU on 2 shared cores at the defaults)::

    PYTHONPATH=. .venv/bin/python benchmarks/parametrisation_grid.py --fits 24 --out grid.json
    PYTHONPATH=. .venv/bin/python benchmarks/parametrisation_grid.py --summarise grid.json

``--summarise`` re-simulates each dataset from its seed, asks the current
:func:`mbct_bayes.model.choose_centered` which arm it picks, and prints the grid table with the
automatic choice's row (the picked arm's result for each dataset) as Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: (cell name, family, rows per site, trials per row)
CELLS = (
    ("bernoulli 5/site", "bernoulli", 5, 1),
    ("binomial 8/site", "binomial", 1, 8),
    ("binomial 40/site", "binomial", 5, 8),
)
SITES = (20, 100)


def draw_from_prior(prior: dict, rng: np.random.Generator) -> float:
    """One draw of a positive scale from a HalfNormal or HalfStudentT prior dict."""
    if prior["dist"] == "HalfNormal":
        return float(abs(rng.normal(0.0, prior["sigma"])))
    if prior["dist"] == "HalfStudentT":
        return float(abs(rng.standard_t(prior["nu"])) * prior["sigma"])
    raise ValueError(f"no sampler for prior {prior}")


def cell_spec(family: str):
    import mbct_bayes as mb

    spec = mb.ModelSpec.from_toml(ROOT / "models" / f"{family}.toml")
    priors = {k: v for k, v in spec.priors.items() if k != "sigma_region"}
    return dataclasses.replace(spec, region=None, priors=priors, parametrization="auto")


def simulate(family: str, n_sites: int, rows: int, trials: int, seed: int):
    """One dataset of a cell; sigma_site drawn from the spec's prior with this seed."""
    from mbct_bayes.errors import DataError
    from mbct_bayes.model.simulate import default_truth, simulate_observations
    from mbct_bayes.schema import validate_observations

    spec = cell_spec(family)
    rng = np.random.default_rng(10_000 + seed)
    for attempt in range(20):  # a degenerate (all-0 / all-1) dataset is refused by the schema: redraw
        truth = default_truth(family, n_regions=0)
        truth["sigma_site"] = draw_from_prior(spec.prior_for("sigma_site"), rng)
        table, _ = simulate_observations(
            n_sites, rows, family, n_regions=0, seed=seed * 100 + attempt, truth=truth, trials=trials
        )
        try:
            validate_observations(table, spec)
        except DataError:
            continue
        return table, truth["sigma_site"]
    raise RuntimeError("no usable dataset in 20 attempts")


def run(fits: int, draws: int, tune: int, chains: int, out: Path) -> None:
    import mbct_bayes as mb
    from mbct_bayes.model.fit import compile_model

    warnings.simplefilter("ignore", mb.ConvergenceWarning)
    results = []
    for name, family, rows, trials in CELLS:
        for n_sites in SITES:
            datasets = [simulate(family, n_sites, rows, trials, seed) for seed in range(fits)]
            spec = cell_spec(family)
            for centered in (True, False):
                t0 = time.perf_counter()
                compiled = compile_model(datasets[0][0], spec, centered=centered)
                compiled._nutpie_model()  # compile now, so the first fit's time is sampling only
                compile_s = time.perf_counter() - t0
                for seed, (table, sigma) in enumerate(datasets):
                    t0 = time.perf_counter()
                    fitted = compiled.sample(table, seed=seed, draws=draws, tune=tune, chains=chains)
                    elapsed = time.perf_counter() - t0
                    d = fitted.diagnostics
                    results.append({
                        "cell": name, "family": family, "n_sites": n_sites, "rows": rows, "trials": trials,
                        "seed": seed, "sigma_site": sigma, "centered": centered,
                        "divergences": d["divergences"], "max_r_hat": d["max_r_hat"],
                        "min_ess_bulk": d["min_ess_bulk"], "min_ess_tail": d["min_ess_tail"],
                        "seconds": elapsed, "compile_seconds": compile_s,
                    })
                r = [x for x in results if x["cell"] == name and x["n_sites"] == n_sites and x["centered"] == centered]
                print(f"{name:18s} {n_sites:4d} sites {'centred' if centered else 'non-centred':12s} "
                      f"divergent fits {sum(x['divergences'] > 0 for x in r):3d}  "
                      f"R-hat>1.01 {sum(x['max_r_hat'] > 1.01 for x in r):3d}  "
                      f"{sum(x['seconds'] for x in r):6.1f} s", flush=True)
                out.write_text(json.dumps({"draws": draws, "tune": tune, "chains": chains, "fits": results}, indent=1))


def summarise(path: Path) -> str:
    """The grid table (Markdown) with the current automatic choice's row per cell."""
    from mbct_bayes.model.build import choose_centered, prepare_data

    saved = json.loads(path.read_text())
    fits = saved["fits"]
    lines = [
        "| cell | sites | arm | divergent fits | fits R-hat > 1.01 | fits R-hat > 1.05 | min bulk ESS: median fit "
        "| min bulk ESS: worst fit | min tail ESS: median fit | s per fit (median) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, family, rows, trials in CELLS:
        for n_sites in SITES:
            cell = [x for x in fits if x["cell"] == name and x["n_sites"] == n_sites]
            if not cell:
                continue
            spec = cell_spec(family)
            seeds = sorted({x["seed"] for x in cell})
            picks = {}
            for seed in seeds:
                table, _ = simulate(family, n_sites, rows, trials, seed)
                picks[seed] = choose_centered(prepare_data(table, spec), spec)
            arms = {
                "centred": [x for x in cell if x["centered"]],
                "non-centred": [x for x in cell if not x["centered"]],
                f"**auto** ({sum(picks.values())}/{len(seeds)} centred)": [
                    x for x in cell if x["centered"] == picks[x["seed"]]
                ],
                "the arm auto did not pick": [x for x in cell if x["centered"] != picks[x["seed"]]],
            }
            for arm, r in arms.items():
                bulk = np.array([x["min_ess_bulk"] for x in r])
                lines.append(
                    f"| {name} | {n_sites} | {arm} | {sum(x['divergences'] > 0 for x in r)}/{len(r)} | "
                    f"{sum(x['max_r_hat'] > 1.01 for x in r)} | {sum(x['max_r_hat'] > 1.05 for x in r)} | "
                    f"{np.median(bulk):.0f} | {bulk.min():.0f} | {np.median([x['min_ess_tail'] for x in r]):.0f} | "
                    f"{np.median([x['seconds'] for x in r]):.2f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=24, help="datasets per cell (each fitted both ways)")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("parametrisation_grid.json"))
    parser.add_argument("--summarise", type=Path, help="print the table of a saved run instead of running")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    run(args.fits, args.draws, args.tune, args.chains, args.out)
    print(summarise(args.out))


if __name__ == "__main__":
    sys.exit(main())
