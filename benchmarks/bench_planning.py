"""Benchmark: planning 1,000 candidate sites over 4,000 posterior draws.

Reference workload: the bundled example (40 sites × 5 units, bernoulli E + C + F + site) fitted
with 1000 draws × 4 chains = 4,000 posterior draws (the fit itself is not timed), then 1,000
simulated candidate services (E, C, F uniform on 1-5, rounded to 2 dp) planned as new sites:

* ``what_if``   — ΔP for F +1 and C +0.5 (before and after share the site-effect draws);
* ``levers``    — ΔP for +1 on each of E, C, F, ranked per site;
* ``levers_sd`` — the same with one SD of each predictor as the step;
* ``target``    — the smallest F with P(P(embedded) ≥ 0.8) ≥ 0.9 (exact search on the draws);
* ``rank``      — order by new-site P(embedded), with P(best) from the joint draws;
* ``lever_curve`` (one site, 81 values) — what the figure computes.

Each operation runs ``--repeat`` times after one untimed warm-up; the table gives the median
and the fastest wall time, and the peak extra memory of one run (tracemalloc).

Run by hand:  .venv/bin/python benchmarks/bench_planning.py [--sites 1000 --draws 1000 --chains 4]
Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def candidates(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(1, 5, (n, 3)).round(2)
    return pd.DataFrame({
        "site": [f"C{i:05d}" for i in range(n)],
        "E": scores[:, 0], "C": scores[:, 1], "F": scores[:, 2],
    })


def timed(fn, repeat: int) -> dict[str, float]:
    fn()  # warm-up (imports, first-touch allocations)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"median_s": statistics.median(times), "min_s": min(times), "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import mbct_bayes as mb
    from mbct_bayes.planning import scenarios as planning

    obs = mb.read_observations(ROOT / "data" / "example" / "observations.csv")
    spec = mb.ModelSpec.from_toml(ROOT / "models" / "bernoulli.toml")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = mb.fit(obs, spec, seed=1, draws=args.draws, tune=args.tune, chains=args.chains)
    fit_s = time.perf_counter() - start
    _ = fit.draws  # materialise the (S, ...) arrays outside the timings
    sites = candidates(args.sites)
    print(f"fit: {fit.n_draws} draws in {fit_s:.1f} s (not part of the timings); "
          f"{len(sites)} candidate sites")

    ops = {
        "what_if (F +1, C +0.5)": lambda: planning.what_if(fit, sites, {"F": 1.0, "C": 0.5}),
        "levers (step 1)": lambda: planning.levers(fit, sites, 1.0),
        "levers (step sd)": lambda: planning.levers(fit, sites, "sd"),
        "target (F, p 0.8, prob 0.9)": lambda: planning.target(fit, sites, "F", 0.8, 0.9),
        "rank (new-site P, P(best))": lambda: planning.rank(fit, sites),
        "lever_curve (1 site × 81 values)": lambda: planning.lever_curve(
            fit, sites.iloc[[0]], "F", n_grid=81, p=0.8),
    }
    rows = []
    for name, fn in ops.items():
        r = timed(fn, args.repeat)
        rows.append({"operation": name, **r})
        print(f"{name:36s} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  "
              f"peak {r['peak_mb']:.0f} MiB", flush=True)
    print()
    print(f"| operation ({len(sites)} sites × {fit.n_draws} draws) | median (s) | fastest (s) "
          "| peak extra memory (MiB) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['operation']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['peak_mb']:.0f} |")
    print(f"\nnumpy {np.__version__}, pandas {pd.__version__}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
